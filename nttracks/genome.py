"""Genome access: a FASTA (plain or bgzip) -> chromosome sizes, N-free contigs and uint8 base codes.

``open_fasta`` opens any FASTA file as a ``Genome``; registered names (``hg38``, ``demo``, ...)
are resolved, downloaded and opened by ``nttracks.registry.open_genome``.

Base codes are those of ``nttracks.bases``: A=0, C=1, G=2, T=3, N=4. Soft-masked lowercase
is folded to uppercase; every other letter (IUPAC ambiguity codes, N) is N. Contigs are the maximal
N-free runs: the only stretches a model is ever shown.

pyfaidx indexes the FASTA (``.fai``, and ``.gzi`` for bgzip) beside it, or in the cache directory
(``nttracks.resources.cache_dir``) when it cannot write there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .bases import ASCII_TO_CODE, NOT_A_LETTER, N
from .errors import ChromosomeError, GenomeError, MalformedFastaError
from .resources import cache_dir

__all__ = ["Contig", "Genome", "open_fasta"]

_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a") : ord("z") + 1] -= 32
_UPPER.setflags(write=False)


def open_fasta(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    ucsc_name: str | None = None,
    index_cache: Path | None = None,
    organism: str | None = None,
    description: str | None = None,
) -> Genome:
    """Open a FASTA file (plain or bgzip) as a Genome named ``name`` (default: the file's stem).

    ucsc_name, organism, description: what a registered genome is (the registry passes them); a plain
    FASTA has none of them, whatever its file is called.

    The .fai index (and bgzip's .gzi) is written beside the FASTA, or under the cache directory
    (``index_cache`` or ``nttracks.resources.cache_dir()``) when this process cannot write beside it
    (a read-only directory or mount, another user's files).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise GenomeError(f"FASTA file not found: {path}; check the path (or pass a registered genome name)")
    if not path.is_file():
        raise GenomeError(f"FASTA path is not a file: {path}; pass the path of a .fa/.fasta file")
    if name is None:
        name = default_name(path)
    return Genome(
        name, path, ucsc_name=ucsc_name, index_cache=index_cache, organism=organism, description=description
    )


def default_name(path: Path) -> str:
    """The genome name of a FASTA given by path: its file name without .fa/.fasta/.gz/... suffixes."""
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
        organism: str | None = None,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.fasta = Path(fasta)
        self.ucsc_name = ucsc_name
        self.organism = organism
        self.description = description
        self._index_cache = index_cache
        self._contigs: dict[str, list[Contig]] = {}
        self._unknown: dict[str, tuple[int, int]] = {}
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
        return (
            _reopen,
            (self.name, str(self.fasta), self.ucsc_name, self._index_cache, self.organism, self.description),
        )

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

        Lowercase (soft-masked) is folded to uppercase; IUPAC ambiguity codes are N. Any other byte
        (U of RNA, protein letters, digits, '-') is a MalformedFastaError naming it and its line.
        """
        raw = self.raw(chrom, start, end)
        out = ASCII_TO_CODE[raw]
        bad = np.flatnonzero(out == NOT_A_LETTER)
        if bad.size:
            pos = start + int(bad[0])
            raise MalformedFastaError(
                _bad_byte_message(self.fasta, chrom, chr(raw[bad[0]]), pos, self._line_of(chrom, pos))
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
                self._scan(chrom)
            out.extend(self._contigs[chrom])
        return out

    def unknown_bases(self, chrom: str) -> tuple[int, int]:
        """(N bases, other IUPAC ambiguity codes) of ``chrom``: the bases no model can see."""
        self._check_chrom(chrom)
        if chrom not in self._unknown:
            self._scan(chrom)
        return self._unknown[chrom]

    def _scan(self, chrom: str) -> None:
        """Read ``chrom`` once: its contigs and its counts of N and other IUPAC codes."""
        codes = self.codes(chrom)
        unknown = codes == N
        n_bases = int(unknown.sum())
        letter_n = int(np.count_nonzero(_UPPER[self.raw(chrom)] == ord("N"))) if n_bases else 0
        self._unknown[chrom] = (letter_n, n_bases - letter_n)
        self._contigs[chrom] = [Contig(chrom, int(s), int(e)) for s, e in zip(*_runs(~unknown), strict=True)]

    def sequence_digest(self, chrom: str) -> str:
        """SHA-256 hex digest of chrom's uppercased sequence (no newlines): a stable fingerprint."""
        if chrom not in self._digests:
            raw = self.raw(chrom)
            self._digests[chrom] = hashlib.sha256(_UPPER[raw].tobytes()).hexdigest()
        return self._digests[chrom]


def _reopen(
    name: str,
    fasta: str,
    ucsc_name: str | None,
    index_cache: Path | None,
    organism: str | None,
    description: str | None,
) -> Genome:
    return Genome(
        name, Path(fasta), ucsc_name=ucsc_name, index_cache=index_cache, organism=organism, description=description
    )


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


def _is_bgzip(head: bytes) -> bool:
    """True for a BGZF block header: gzip magic, FEXTRA flag and a 'BC' extra subfield (SAM spec 4.1)."""
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and bool(head[3] & 4) and head[12:14] == b"BC"


def _open_pyfaidx(path: Path, index_cache: Path | None) -> Any:  # a pyfaidx.Fasta
    import pyfaidx

    with open(path, "rb") as fh:
        head = fh.read(18)
    kwargs: dict[str, str] = {}
    gzipped = head[:2] == b"\x1f\x8b"
    if gzipped:
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
    beside = _indexes(path, path, gzipped)
    if not _can_index_beside(path, beside):
        # The FASTA sits where this process cannot write: keep its index in the cache, keyed by its absolute path.
        where = _cached_index(path, index_cache)
        where.parent.mkdir(parents=True, exist_ok=True)
        kwargs["indexname"] = str(where) + ".fai"
        if gzipped:
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


def _indexes(fasta: Path, stem: Path, gzipped: bool) -> list[Path]:
    return [stem.with_name(stem.name + ext) for ext in (".fai", ".gzi")[: 1 + gzipped]]


def _cached_index(fasta: Path, index_cache: Path | None) -> Path:
    key = hashlib.sha256(str(fasta.resolve()).encode()).hexdigest()[:16]
    return (index_cache or cache_dir()) / "fai" / f"{key}-{fasta.name}"


def is_indexed(path: Path, index_cache: Path | None = None) -> bool:
    """Whether ``path`` opens without writing an index: an up-to-date one beside it or in the cache."""
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    return any(
        all(_index_usable(index, path) for index in _indexes(path, stem, gzipped))
        for stem in (path, _cached_index(path, index_cache))
    )


def fasta_sizes(path: Path, *, block: int = 1 << 24) -> dict[str, int]:
    """Sequence names and lengths of a FASTA (plain, gzip or bgzip) by reading it, writing nothing.

    For a dry run of a FASTA that has no index yet. Letters are checked as ``Genome.codes`` checks
    them (a byte that is no DNA letter is a MalformedFastaError naming it and its line), in blocks.
    """
    import gzip

    sizes: dict[str, int] = {}
    name: str | None = None
    lines_before = 0

    def sequence(seq: bytes, text: bytes, offset: int) -> None:
        """Count ``seq`` (one sequence's bytes in ``text`` from ``offset``, newlines included)."""
        body = seq.translate(None, b"\r\n")
        if name is None:
            if body.strip():
                raise MalformedFastaError(f"{path} is not valid FASTA: sequence before the first '>name' line")
            return
        bad = np.flatnonzero(ASCII_TO_CODE[np.frombuffer(body, dtype=np.uint8)] == NOT_A_LETTER)
        if bad.size:
            k = int(bad[0])
            at = offset + _nth_sequence_byte(seq, k)
            line = lines_before + text.count(b"\n", 0, at) + 1
            raise MalformedFastaError(
                _bad_byte_message(path, name, chr(body[k]), sizes[name] + k, f" (line {line})")
            )
        sizes[name] += len(body)

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        fh = gzip.open(raw) if gzipped else raw
        rest = b""
        while True:
            chunk = fh.read(block)
            text = rest + chunk
            cut = len(text) if not chunk else text.rfind(b"\n") + 1
            text, rest = text[:cut], text[cut:]
            pos = 0
            for header in re.finditer(rb"^>(.*)$", text, re.MULTILINE):
                sequence(text[pos : header.start()], text, pos)
                words = header.group(1).split()
                name = words[0].decode("ascii", "replace") if words else ""
                if not name or name in sizes:
                    raise MalformedFastaError(
                        f"{path} is not valid FASTA: header {header.group(0)!r} has no name or repeats one; "
                        "give every sequence a unique name"
                    )
                sizes[name] = 0
                pos = header.end()
            sequence(text[pos:], text, pos)
            lines_before += text.count(b"\n")
            if not chunk:
                break
    if not sizes:
        raise MalformedFastaError(f"{path} is not valid FASTA: no '>name' line")
    return sizes


def _nth_sequence_byte(seq: bytes, k: int) -> int:
    """Offset in ``seq`` of its k-th byte that is not a newline."""
    seen = 0
    for i, byte in enumerate(seq):
        if byte not in (10, 13):
            if seen == k:
                return i
            seen += 1
    return len(seq)


def _bad_byte_message(path: Path, chrom: str, char: str, pos: int, line: str) -> str:
    """The message for a byte at 0-based ``pos`` of ``chrom`` that is no DNA letter."""
    what = "letter" if char.isalpha() else "character"
    hint = {"U": " (U is RNA: convert the sequence to DNA, U -> T)"}.get(char.upper(), "")
    if char.isalpha() and not hint:
        hint = " (is this a protein sequence? nttracks reads DNA)"
    return (
        f"{path}: sequence {chrom!r} has the {what} {char!r} at position {pos + 1}{line}, which is no DNA "
        f"base or IUPAC code{hint}; a DNA FASTA holds A, C, G, T, N and the IUPAC ambiguity codes only "
        "(fix or remove that character)"
    )


def _index_usable(index: Path, fasta: Path) -> bool:
    return index.is_file() and index.stat().st_mtime >= fasta.stat().st_mtime


def _can_index_beside(fasta: Path, indexes: list[Path]) -> bool:
    """Whether pyfaidx may keep ``indexes`` beside ``fasta``: they are up to date, or it can write them there.

    ``os.access`` alone is not to be trusted: it asks about the real user, not the effective one, and
    some file systems (NFS with root squash, FUSE) and security modules refuse writes it allows. So
    the write is tried: a new file is created (and removed) beside the FASTA and each stale index is
    opened for writing, without truncating it. Any failure (permission denied, read-only file system,
    quota, ...) means no.
    """
    stale = [index for index in indexes if not _index_usable(index, fasta)]
    if not stale:
        return True
    if not os.access(fasta.parent, os.W_OK):
        return False
    probe = fasta.with_name(f".{fasta.name}.{secrets.token_hex(4)}.nttracks-probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
        for index in stale:
            if index.exists():
                os.close(os.open(index, os.O_WRONLY))
    except OSError:
        return False
    return True
