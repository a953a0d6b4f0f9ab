"""Genome access: a FASTA (plain or bgzip) -> chromosome sizes, N-free contigs and uint8 base codes.

A genome is either a registered name (``demo``, ``hg38``, ``hg19``, ``mm10``, ``mm39``, ``dm6``),
found in the cache directory and downloaded there when missing (``demo`` is generated, offline),
or any FASTA file (``--fasta PATH``).

Base codes are those of ``nttracks.bases``: A=0, C=1, G=2, T=3, N=4. Soft-masked lowercase
is folded to uppercase; every other letter (IUPAC ambiguity codes, N) is N. Contigs are the maximal
N-free runs: the only stretches a model is ever shown.

Shipped chromosome-size tables (``nttracks/data/<name>.chrom.sizes``) let a dry run plan a
registered genome without downloading it. They are UCSC's names and lengths of the very FASTA
the registry downloads: hg38 analysis set (195), hg19 (93, haplotypes included), mm10 (66),
mm39 (61) and dm6 (1870), in karyotypic order (a FASTA's own order may differ).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, BinaryIO

import numpy as np

from .bases import ASCII_TO_CODE, NOT_A_LETTER, A, C, G, N, T
from .errors import ChromosomeError, GenomeError, GenomeUnavailableError, MalformedFastaError
from .resources import resource_dir

__all__ = [
    "REGISTRY",
    "Contig",
    "Genome",
    "GenomeSource",
    "cache_dir",
    "chrom_sizes_of",
    "download",
    "open_fasta",
    "open_genome",
    "registered_fasta_path",
    "write_twobit",
]

CACHE_ENV = "NTTRACKS_CACHE"
MIRROR_ENV = "NTTRACKS_UCSC_MIRROR"
DEFAULT_MIRROR = "https://hgdownload.soe.ucsc.edu"

Progress = Callable[[int, "int | None"], None]
"""progress(done, total): bytes received so far and the expected total (None when unknown)."""

_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a") : ord("z") + 1] -= 32
_UPPER.setflags(write=False)


# ----------------------------------------------------------------------------- registry and cache


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


def cache_dir() -> Path:
    """Where genomes (and FASTA indexes that cannot sit beside their FASTA) are kept.

    ``$NTTRACKS_CACHE`` when set, else the user's cache directory (e.g. ``~/.cache/nttracks``).
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nttracks", appauthor=False))


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


def _is_bgzip(head: bytes) -> bool:
    """True for a BGZF block header: gzip magic, FEXTRA flag and a 'BC' extra subfield (SAM spec 4.1)."""
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and bool(head[3] & 4) and head[12:14] == b"BC"


def download(url: str, dest: Path, *, progress: Progress | None = None, chunk: int = 1 << 20) -> Path:
    """Fetch ``url`` to ``dest``: written to a temporary name beside it and renamed when complete.

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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if inflate:
                    _gunzip_to(out, _prepend(first, stream), url)
                else:
                    for block in _prepend(first, stream):
                        out.write(block)
            if total is not None and done != total:
                raise GenomeUnavailableError(
                    f"could not download {url} (connection closed after {done} of {total} bytes)"
                )
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
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

    Registered names come from the cache (``cache_dir`` or :func:`cache_dir`), downloaded there
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
    return cache_dir()


def _open_registered(source: GenomeSource, cache: Path, progress: Progress | None) -> Genome:
    if source.path is None:
        from . import demo

        fasta, _ = demo.ensure_demo(cache)
        return open_fasta(fasta, name=source.name, ucsc_name=source.ucsc_name, index_cache=cache)
    fasta = registered_fasta_path(source.name, cache)
    for candidate in (fasta, fasta.with_name(fasta.name + ".gz")):
        if candidate.is_file():
            return open_fasta(candidate, name=source.name, ucsc_name=source.ucsc_name, index_cache=cache)
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
    return open_fasta(got, name=source.name, ucsc_name=source.ucsc_name, index_cache=cache)


def open_fasta(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    ucsc_name: str | None = None,
    index_cache: Path | None = None,
) -> Genome:
    """Open a FASTA file (plain or bgzip) as a Genome named ``name`` (default: the file's stem).

    The .fai index (and bgzip's .gzi) is written beside the FASTA, or under the cache directory
    (``index_cache`` or :func:`cache_dir`) when that directory is not writable.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise GenomeError(f"FASTA file not found: {path}; check the path (or pass a registered genome name)")
    if not path.is_file():
        raise GenomeError(f"FASTA path is not a file: {path}; pass the path of a .fa/.fasta file")
    if name is None:
        name = _stem(path)
    return Genome(name, path, ucsc_name=ucsc_name, index_cache=index_cache)


def _stem(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".bgz", ".fa", ".fasta", ".fna", ".fas"):
        stem = stem.removesuffix(suffix)
    return stem or path.name


@dataclass(frozen=True)
class Contig:
    """A maximal N-free run of a chromosome, half-open [start, end)."""

    chrom: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class Genome:
    """An open FASTA: chromosome sizes in file order, base codes, N-free contigs.

    chrom_sizes is in FASTA order, which is "the genome's chromosome order" everywhere downstream.
    Close it (or use it as a context manager) to release the file handles.
    """

    def __init__(
        self,
        name: str,
        fasta: Path,
        *,
        ucsc_name: str | None = None,
        index_cache: Path | None = None,
    ) -> None:
        self.name = name
        self.fasta = Path(fasta)
        self.ucsc_name = ucsc_name
        self._index_cache = index_cache
        self._contigs: dict[str, list[Contig]] = {}
        self._digests: dict[str, str] = {}
        self._lock = threading.Lock()  # pyfaidx's bgzip reader keeps one file position
        self._fa = _open_pyfaidx(self.fasta, index_cache)
        self._bgzip = bool(self._fa.faidx._bgzf)
        self._index = self._fa.faidx.index
        self.chrom_sizes: dict[str, int] = {k: int(r.rlen) for k, r in self._index.items()}
        self.chroms: tuple[str, ...] = tuple(self.chrom_sizes)

    def __repr__(self) -> str:
        return f"Genome({self.name!r}, {str(self.fasta)!r}, {len(self.chroms)} chromosomes)"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles (e.g. to a Ray worker or another process) as "open this FASTA again there".
        return (_reopen, (self.name, str(self.fasta), self.ucsc_name, self._index_cache))

    def __enter__(self) -> Genome:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the FASTA file handles (idempotent)."""
        fa = getattr(self, "_fa", None)
        if fa is not None:
            fa.close()
            self._fa = None

    # ------------------------------------------------------------------ sequence

    def _check_chrom(self, chrom: str) -> None:
        if chrom not in self.chrom_sizes:
            raise ChromosomeError(_unknown_chrom(chrom, self))

    def raw(self, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
        """The FASTA's bytes of chrom[start:end] as uint8 (end-start,): case kept (soft mask), no newlines.

        Not validated: ``codes`` is what rejects bytes that are not letters.
        """
        self._check_chrom(chrom)
        size = self.chrom_sizes[chrom]
        end = size if end is None else end
        if not 0 <= start <= end <= size:
            raise ChromosomeError(
                f"region {chrom}:{start}-{end} is outside {chrom} (length {size}) in {self.fasta}"
            )
        if self._fa is None:
            raise GenomeError(f"genome {self.name} ({self.fasta}) is closed; open it again")
        if start == end:
            return np.zeros(0, dtype=np.uint8)
        if self._bgzip:
            with self._lock:
                text = self._fa[chrom][start:end]
            return np.frombuffer(bytearray(text, "ascii"), dtype=np.uint8)
        return self._read_plain(chrom, start, end)

    def _read_plain(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Read chrom[start:end] straight from the file using the .fai geometry (engineering.md §6)."""
        rec = self._index[chrom]
        lenc, lenb = int(rec.lenc), int(rec.lenb)
        first_line, last_line = start // lenc, (end - 1) // lenc
        offset = int(rec.offset) + first_line * lenb
        nbytes = (last_line - first_line) * lenb + lenc  # the last line's newline is not needed
        with open(self.fasta, "rb") as fh:
            fh.seek(offset)
            data = fh.read(nbytes)
        buf = np.frombuffer(data, dtype=np.uint8)
        if len(buf) < nbytes:  # the final line is shorter than lenc (or the file ends early)
            buf = np.concatenate([buf, np.zeros(nbytes - len(buf), dtype=np.uint8)])
        nlines = last_line - first_line + 1
        lines = np.lib.stride_tricks.as_strided(buf, shape=(nlines, lenc), strides=(lenb, 1))
        skip = start - first_line * lenc
        return lines.reshape(-1)[skip : skip + end - start].copy()

    def codes(self, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
        """Base codes of chrom[start:end]: uint8 (end-start,), A0 C1 G2 T3 N4.

        Lowercase (soft-masked) is folded to uppercase; IUPAC codes and any other letter are N.
        """
        raw = self.raw(chrom, start, end)
        out = ASCII_TO_CODE[raw]
        bad = np.flatnonzero(out == NOT_A_LETTER)
        if bad.size:
            pos = start + int(bad[0])
            raise MalformedFastaError(
                f"{self.fasta}: sequence {chrom!r} has the non-letter character {chr(raw[bad[0]])!r} "
                f"at position {pos + 1}{self._line_of(chrom, pos)}; a FASTA sequence holds letters only "
                "(fix or remove that character)"
            )
        return out

    def _line_of(self, chrom: str, pos: int) -> str:
        """' (line L)' for base ``pos`` of ``chrom`` in a plain FASTA; used in error messages only."""
        if self._bgzip:
            return ""
        rec = self._index[chrom]
        byte = int(rec.offset) + (pos // int(rec.lenc)) * int(rec.lenb) + pos % int(rec.lenc)
        with open(self.fasta, "rb") as fh:
            newlines = fh.read(byte).count(b"\n")
        return f" (line {newlines + 1})"

    def soft_mask(self, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
        """bool (end-start,): True where the FASTA has a lowercase (soft-masked) letter."""
        raw = self.raw(chrom, start, end)
        return (raw >= ord("a")) & (raw <= ord("z"))

    def contigs(self, chroms: Sequence[str] | None = None) -> list[Contig]:
        """The N-free runs of ``chroms`` (default: all), in genome order.

        Unknown names raise ChromosomeError naming them. Chromosomes are read whole once and cached.
        """
        if isinstance(chroms, str):
            chroms = [chroms]
        wanted = self.chroms if chroms is None else tuple(chroms)
        for chrom in wanted:
            self._check_chrom(chrom)
        selected = set(wanted)
        out: list[Contig] = []
        for chrom in self.chroms:
            if chrom not in selected:
                continue
            if chrom not in self._contigs:
                self._contigs[chrom] = [
                    Contig(chrom, int(s), int(e)) for s, e in zip(*_runs(self.codes(chrom) != N), strict=True)
                ]
            out.extend(self._contigs[chrom])
        return out

    def sequence_digest(self, chrom: str) -> str:
        """SHA-256 hex digest of chrom's uppercased sequence (no newlines): a stable fingerprint."""
        if chrom not in self._digests:
            raw = self.raw(chrom)
            self._digests[chrom] = hashlib.sha256(_UPPER[raw].tobytes()).hexdigest()
        return self._digests[chrom]


def _reopen(name: str, fasta: str, ucsc_name: str | None, index_cache: Path | None) -> Genome:
    return Genome(name, Path(fasta), ucsc_name=ucsc_name, index_cache=index_cache)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (half-open) of the True runs of a bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return edges[0::2], edges[1::2]


def _unknown_chrom(chrom: str, genome: Genome) -> str:
    shown = ", ".join(genome.chroms[:8]) + (", ..." if len(genome.chroms) > 8 else "")
    return (
        f"chromosome {chrom!r} is not in genome {genome.name} ({genome.fasta}); "
        f"it has {len(genome.chroms)}: {shown}"
    )


def _open_pyfaidx(path: Path, index_cache: Path | None) -> Any:  # a pyfaidx.Fasta
    import pyfaidx

    with open(path, "rb") as fh:
        head = fh.read(18)
    kwargs: dict[str, str] = {}
    if head[:2] == b"\x1f\x8b":
        if not _is_bgzip(head):
            raise MalformedFastaError(
                f"{path} is gzip-compressed but not bgzip, which cannot be read in place; "
                f"decompress it (gunzip {path}) or recompress it with bgzip"
            )
        try:
            import Bio.bgzf  # noqa: F401 (pyfaidx needs it for bgzip)
        except ImportError as exc:
            raise GenomeError(
                f"{path} is bgzip-compressed; reading it needs biopython (pip install biopython), "
                "or decompress it first"
            ) from exc
    fai = path.with_name(path.name + ".fai")
    if not _index_usable(fai, path) and not os.access(path.parent, os.W_OK):
        # The FASTA sits in a read-only place: keep its index in the cache, keyed by its absolute path.
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        where = (index_cache or cache_dir()) / "fai" / f"{key}-{path.name}"
        where.parent.mkdir(parents=True, exist_ok=True)
        kwargs["indexname"] = str(where) + ".fai"
        if head[:2] == b"\x1f\x8b":
            kwargs["gzi_indexname"] = str(where) + ".gzi"
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, **kwargs)
    except pyfaidx.FastaIndexingError as exc:
        raise MalformedFastaError(
            f"{path} is not valid FASTA: {exc} Fix the file: each sequence needs a '>name' line, and all "
            "of its lines but the last must have the same length"
        ) from exc
    except ValueError as exc:
        duplicate = re.match(r'Duplicate key "(.*)"', str(exc))
        if duplicate:
            raise MalformedFastaError(
                f"{path} is not valid FASTA: the sequence name {duplicate.group(1)!r} appears more than "
                "once; give every sequence a unique name"
            ) from exc
        raise MalformedFastaError(f"{path} is not valid FASTA: {exc}") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise GenomeError(f"cannot read FASTA {path}: {exc}") from exc


def _index_usable(fai: Path, fasta: Path) -> bool:
    return fai.is_file() and fai.stat().st_mtime >= fasta.stat().st_mtime


# ----------------------------------------------------------------------------- .2bit writer

_TWOBIT_SIGNATURE = 0x1A412743
_TWOBIT_VALUE = np.zeros(256, dtype=np.uint8)  # UCSC 2bit packing: T=0 C=1 A=2 G=3 (N stored as T)
_TWOBIT_VALUE[[A, C, G, T, N]] = [2, 1, 3, 0, 0]


def write_twobit(genome: Genome, path: Path) -> None:
    """Write ``genome`` as a UCSC .2bit (version 0): packed bases, N blocks and soft-mask blocks.

    Chromosomes keep the genome's order; one chromosome is in memory at a time. Written to a
    temporary name and renamed when complete. Layout (kent ``twoBit.c``): header (signature,
    version 0, count, reserved), index (name size, name, uint32 offset), then per sequence: dnaSize,
    nBlockCount/starts/sizes, maskBlockCount/starts/sizes, reserved, packed DNA (T=0 C=1 A=2 G=3,
    4 bases a byte, first base in the high bits). N (and any IUPAC code) is stored as T plus an N block.
    """
    path = Path(path)
    names = [chrom.encode("ascii") for chrom in genome.chroms]
    for name in names:
        if not 0 < len(name) <= 255:
            raise GenomeError(f"sequence name {name.decode()!r} cannot be stored in a .2bit (1-255 bytes)")
    index_end = 16 + sum(1 + len(name) + 4 for name in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(b"\0" * index_end)  # header and index are written last, once offsets are known
            offsets = []
            for chrom in genome.chroms:
                offsets.append(out.tell())
                if offsets[-1] > 0xFFFFFFFF:
                    raise GenomeError(
                        f"genome {genome.name} is too large for a version-0 .2bit (over 4 GiB); "
                        "use UCSC faToTwoBit -long instead"
                    )
                out.write(_twobit_record(genome, chrom))
            out.seek(0)
            out.write(np.array([_TWOBIT_SIGNATURE, 0, len(names), 0], dtype="<u4").tobytes())
            for name, offset in zip(names, offsets, strict=True):
                out.write(bytes([len(name)]) + name + np.array([offset], dtype="<u4").tobytes())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _twobit_record(genome: Genome, chrom: str) -> bytes:
    """One sequence record of a .2bit file (see write_twobit)."""
    raw = genome.raw(chrom)
    codes = ASCII_TO_CODE[raw]
    if (codes == NOT_A_LETTER).any():
        genome.codes(chrom)  # raises the MalformedFastaError that names the position
    n_starts, n_ends = _runs(codes == N)
    m_starts, m_ends = _runs((raw >= ord("a")) & (raw <= ord("z")))
    vals = _TWOBIT_VALUE[codes]
    pad = (-len(vals)) % 4
    if pad:
        vals = np.concatenate([vals, np.zeros(pad, dtype=np.uint8)])
    quads = vals.reshape(-1, 4)
    packed = (quads[:, 0] << 6) | (quads[:, 1] << 4) | (quads[:, 2] << 2) | quads[:, 3]
    u4 = np.dtype("<u4")
    return b"".join(
        [
            np.array([len(raw), len(n_starts)], dtype=u4).tobytes(),
            n_starts.astype(u4).tobytes(),
            (n_ends - n_starts).astype(u4).tobytes(),
            np.array([len(m_starts)], dtype=u4).tobytes(),
            m_starts.astype(u4).tobytes(),
            (m_ends - m_starts).astype(u4).tobytes(),
            np.array([0], dtype=u4).tobytes(),
            packed.astype(np.uint8).tobytes(),
        ]
    )
