"""Registered genomes: names -> UCSC downloads, the cache, shipped chromosome sizes.

A registered name (``demo``, ``hg38``, ``hg19``, ``mm10``, ``mm39``, ``dm6``) is found in the cache
directory (``nttracks.resources.cache_dir``) and downloaded there when missing (``demo`` is
generated, offline). ``open_genome`` takes such a name or any FASTA path and returns an open
``nttracks.genome.Genome``.

Shipped chromosome-size tables (``nttracks/data/<name>.chrom.sizes``) let a dry run plan a
registered genome without downloading it. They are UCSC's names and lengths of the very FASTA
the registry downloads: hg38 analysis set (195), hg19 (93, haplotypes included), mm10 (66),
mm39 (61) and dm6 (1870), in karyotypic order (a FASTA's own order may differ).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from .errors import GenomeError, GenomeUnavailableError
from .files import atomic_writer
from .genome import Genome, _is_bgzip, open_fasta
from .resources import cache_dir, resource_dir

__all__ = [
    "REGISTRY",
    "GenomeSource",
    "chrom_sizes_of",
    "download",
    "open_genome",
    "registered_fasta_path",
]

MIRROR_ENV = "NTTRACKS_UCSC_MIRROR"
DEFAULT_MIRROR = "https://hgdownload.soe.ucsc.edu"

Progress = Callable[[int, "int | None"], None]
"""progress(done, total): bytes received so far and the expected total (None when unknown)."""


@dataclass(frozen=True)
class GenomeSource:
    """A registered genome: where its FASTA comes from and what UCSC calls it.

    path: location of the FASTA under the UCSC download mirror (``None``: generated, e.g. ``demo``).
    The mirror defaults to ``https://hgdownload.soe.ucsc.edu`` and is overridden by
    ``$NTTRACKS_UCSC_MIRROR`` (read when ``url`` is asked for, so tests and mirrors can point elsewhere).
    """

    name: str
    organism: str
    ucsc_name: str | None
    path: str | None
    description: str = ""

    @property
    def url(self) -> str | None:
        if self.path is None:
            return None
        base = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        return f"{base.rstrip('/')}/{self.path}"


def _ucsc(name: str, organism: str, description: str, file: str | None = None) -> GenomeSource:
    return GenomeSource(
        name, organism, name, f"goldenPath/{name}/bigZips/{file or name + '.fa.gz'}", description
    )


REGISTRY: Mapping[str, GenomeSource] = MappingProxyType(
    {
        "demo": GenomeSource("demo", "synthetic", None, None, "nttracks demo genome (generated, offline)"),
        # hg38: UCSC's analysis set, the no-alt FASTA that aligners and ML pipelines use: primary
        # chromosomes, _random and chrUn_ contigs, chrEBV; the 261 _alt haplotypes (which would be
        # scored twice) are left out and the chrY PARs are N-masked (already scored on chrX).
        "hg38": _ucsc(
            "hg38", "Homo sapiens", "Human GRCh38/hg38 (analysis set)", "analysisSet/hg38.analysisSet.fa.gz"
        ),
        "hg19": _ucsc("hg19", "Homo sapiens", "Human GRCh37/hg19"),
        "mm10": _ucsc("mm10", "Mus musculus", "Mouse GRCm38/mm10"),
        "mm39": _ucsc("mm39", "Mus musculus", "Mouse GRCm39/mm39"),
        "dm6": _ucsc("dm6", "Drosophila melanogaster", "D. melanogaster BDGP Release 6/dm6"),
    }
)


def registered_fasta_path(name: str, cache: Path | None = None) -> Path:
    """Where the plain FASTA of registered genome ``name`` lives in the cache (bgzip: same + ``.gz``)."""
    return (cache or cache_dir()) / "genomes" / name / f"{name}.fa"


def chrom_sizes_of(name: str) -> dict[str, int]:
    """Chromosome sizes of a registered genome from its shipped table, with no download.

    ``demo`` is generated on first use, offline. Raises GenomeError for names without a table.
    """
    if name == "demo":
        from . import demo

        return dict(demo.DEMO_CHROM_SIZES)
    table = resource_dir("data") / f"{name}.chrom.sizes"
    if not table.is_file():
        tables = resource_dir("data").glob("*.chrom.sizes")
        known = sorted(p.name.removesuffix(".chrom.sizes") for p in tables)
        raise GenomeError(
            f"no chromosome-size table for genome {name!r}; tables ship for: demo, {', '.join(known)}. "
            "Pass --fasta PATH to plan from a FASTA instead"
        )
    return _read_sizes(table)


def _read_sizes(path: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise GenomeError(f"{path}:{lineno}: expected 'chrom<TAB>size', got {line!r}")
        sizes[fields[0]] = int(fields[1])
    return sizes


# ----------------------------------------------------------------------------- download


def download(url: str, dest: Path, *, progress: Progress | None = None, chunk: int = 1 << 20) -> Path:
    """Fetch ``url`` to ``dest``: written to a temporary name beside it and renamed when complete.

    The file gets mode 0666 & ~umask (``nttracks.files.atomic_writer``), like any file its user creates.

    A gzip-compressed body (URL ending in .gz) that is not bgzip is decompressed on the fly (UCSC's
    ``<db>.fa.gz`` is plain gzip, which pyfaidx cannot index). A bgzip body is kept compressed: it is
    written to ``dest`` + ``.gz`` unless ``dest`` already ends in ``.gz``. Returns the path written.
    ``progress(done, total)`` is called with compressed bytes received and Content-Length (or None).
    Raises GenomeUnavailableError when the transfer fails or is cut short; nothing is left at ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GenomeUnavailableError(f"could not download {url} ({_reason(exc)})") from exc
    with response:
        total_header = response.headers.get("Content-Length")
        total = int(total_header) if total_header and total_header.isdigit() else None
        done = 0

        def chunks() -> Iterator[bytes]:
            nonlocal done
            while True:
                try:
                    block = response.read(chunk)
                except (OSError, urllib.error.URLError) as exc:
                    raise GenomeUnavailableError(f"could not download {url} ({_reason(exc)})") from exc
                if not block:
                    break
                done += len(block)
                if progress is not None:
                    progress(done, total)
                yield block

        stream = chunks()
        first = next(stream, b"")
        gzipped = first[:2] == b"\x1f\x8b"
        bgzip = _is_bgzip(first)
        if bgzip and dest.suffix != ".gz":
            dest = dest.with_name(dest.name + ".gz")
        if url.endswith(".gz") and not gzipped:
            raise GenomeUnavailableError(
                f"could not download {url} (the server sent no gzip data: starts with {first[:20]!r})"
            )
        inflate = gzipped and not bgzip
        with atomic_writer(dest) as out:
            if inflate:
                _gunzip_to(out, _prepend(first, stream), url)
            else:
                for block in _prepend(first, stream):
                    out.write(block)
            if total is not None and done != total:
                raise GenomeUnavailableError(
                    f"could not download {url} (connection closed after {done} of {total} bytes)"
                )
    return dest


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip_to(out: BinaryIO, blocks: Iterator[bytes], url: str) -> None:
    """Inflate a (possibly multi-member) gzip stream block by block into ``out``."""
    inflater = zlib.decompressobj(wbits=31)
    open_member = False  # bytes fed to a member that has not ended yet
    try:
        for block in blocks:
            while block:
                open_member = True
                out.write(inflater.decompress(block))
                if inflater.eof:
                    block = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    open_member = False
                else:
                    block = b""
    except zlib.error as exc:
        raise GenomeUnavailableError(f"could not download {url} (corrupt gzip data: {exc})") from exc
    if open_member:
        raise GenomeUnavailableError(f"could not download {url} (gzip data ends early: truncated transfer)")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


# ----------------------------------------------------------------------------- opening genomes


def open_genome(
    name_or_fasta: str | os.PathLike[str],
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Genome:
    """A registered genome name, or a FASTA path, as an open Genome.

    Registered names come from the cache (``cache_dir`` or ``nttracks.resources.cache_dir()``), downloaded there
    when missing; ``demo`` is generated there on first use (deterministic, no network). A
    ``Path`` (or a string that is not a registered name) is opened as a FASTA file.
    """
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    if isinstance(name_or_fasta, str) and name_or_fasta in REGISTRY:
        return _open_registered(REGISTRY[name_or_fasta], cache, progress)
    path = Path(name_or_fasta)
    if isinstance(name_or_fasta, str) and not path.exists() and os.sep not in name_or_fasta:
        raise GenomeError(
            f"unknown genome {name_or_fasta!r}: not a registered name ({', '.join(REGISTRY)}) and no "
            "such file; pass a registered name, or --fasta PATH to run on any FASTA"
        )
    return open_fasta(path, index_cache=cache)


def _default_cache() -> Path:
    # open_genome's ``cache_dir`` argument hides the function of that name.
    return cache_dir()


def _open_registered(source: GenomeSource, cache: Path, progress: Progress | None) -> Genome:
    if source.path is None:
        from . import demo

        fasta, _ = demo.ensure_demo(cache)
        return _open_source(source, fasta, cache)
    fasta = registered_fasta_path(source.name, cache)
    for candidate in (fasta, fasta.with_name(fasta.name + ".gz")):
        if candidate.is_file():
            return _open_source(source, candidate, cache)
    url = source.url
    assert url is not None  # path is not None
    try:
        got = download(url, fasta, progress=progress)
    except GenomeUnavailableError as exc:
        reason = str(exc).removeprefix(f"could not download {url} ")
        raise GenomeUnavailableError(
            f"could not download {source.name} from {url} {reason}; place the FASTA (plain or bgzip) "
            f"at {fasta} (bgzip: {fasta}.gz) and run again, or pass --fasta PATH"
        ) from exc
    return _open_source(source, got, cache)


def _open_source(source: GenomeSource, fasta: Path, cache: Path) -> Genome:
    """Open a registered genome's FASTA, checked against its shipped chromosome sizes."""
    genome = open_fasta(
        fasta,
        name=source.name,
        ucsc_name=source.ucsc_name,
        index_cache=cache,
        organism=source.organism,
        description=source.description,
    )
    if source.path is not None:
        try:
            check_sizes(genome, chrom_sizes_of(source.name), source.name)
        except GenomeError:
            genome.close()
            raise
    return genome


def check_sizes(genome: Genome, expected: Mapping[str, int], name: str) -> None:
    """Raise GenomeError unless ``genome`` has exactly the chromosomes and lengths of ``expected``.

    A FASTA placed in the cache for a registered genome must be that genome: names and lengths as the
    registry's table has them (Ensembl-style ``2L`` for UCSC's ``chr2L`` is named in the error).
    """
    have = genome.chrom_sizes
    if dict(have) == dict(expected):
        return
    where = f"{genome.fasta} is not {name}"
    renamed = {_ucsc_style(c): n for c, n in have.items()}
    if renamed == dict(expected):
        first = next(c for c in have if _ucsc_style(c) != c)
        raise GenomeError(
            f"{where} as nttracks knows it: its chromosomes are named Ensembl-style ({first!r} for "
            f"{_ucsc_style(first)!r}). Rename them UCSC-style (e.g. sed 's/^>/>chr/', MT -> chrM), or pass "
            "--fasta PATH to use it as a genome of its own"
        )
    missing = [c for c in expected if c not in have]
    extra = [c for c in have if c not in expected]
    wrong = [c for c in expected if c in have and have[c] != expected[c]]
    parts = []
    if wrong:
        c = wrong[0]
        parts.append(f"{len(wrong)} chromosome(s) of another length ({c}: {have[c]:,} bp, expected {expected[c]:,})")
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    if extra:
        parts.append(f"{len(extra)} not in {name} ({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''})")
    raise GenomeError(
        f"{where}: {'; '.join(parts)}. Replace it with the {name} FASTA (delete it and run again to "
        "download it), or pass --fasta PATH to use it as a genome of its own"
    )


def _ucsc_style(chrom: str) -> str:
    """Ensembl -> UCSC chromosome name: 1 -> chr1, MT -> chrM, 2L -> chr2L."""
    if chrom.startswith("chr"):
        return chrom
    return "chrM" if chrom == "MT" else f"chr{chrom}"
