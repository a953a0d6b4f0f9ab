"""Region selection: ``--regions BED`` restricts a run to intervals, ``--exclude BED`` masks intervals.

The result is the genome's contigs (maximal N-free runs) intersected with the union of the regions
and minus the union of the excluded intervals, in genome order (chromosome order of the genome,
then position), touching pieces merged, never an empty interval.

BED files are read and validated here, in Python, so that every problem is reported with its file,
line and a fix; the interval algebra is then done by bedtools (through pybedtools) on normalized
copies written to a private temporary directory. pybedtools' own temporary files are never created
(every call names its output), so nothing is left behind and no global pybedtools setting is touched.

Accepted input: plain or gzip/bgzip-compressed text; tab-separated columns (or, for a line with no
tab, any whitespace); only the first three columns are read (chrom, 0-based start, exclusive end),
extra columns are ignored; blank lines, ``#`` comments, ``track`` and ``browser`` lines and a
column-name header on the first line (``chrom start end``) are skipped. Zero-length intervals
(start == end) cover no base and are ignored. Every chromosome must be in the genome, and every
interval within its chromosome: an interval past the end means the file was made for another
assembly, so it is an error rather than silently clipped.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import RegionsError
from .genome import Contig

__all__ = ["read_bed", "restrict_contigs"]

Interval = tuple[str, int, int]

INSTALL_HINT = "install bedtools: apt-get install bedtools / conda install -c bioconda bedtools"
_INTEGER = re.compile(r"-?\d+")
_SHOWN = 5  # unknown chromosome names listed in an error


def restrict_contigs(
    contigs: Sequence[Contig],
    chrom_sizes: Mapping[str, int],
    *,
    regions: str | os.PathLike[str] | None = None,
    exclude: str | os.PathLike[str] | None = None,
) -> list[Contig]:
    """``contigs`` ∩ union(``regions``) minus union(``exclude``), as Contigs in genome order.

    contigs: the genome's N-free runs (any order; chromosomes must be keys of ``chrom_sizes``).
    chrom_sizes: chromosome -> length, in the genome's chromosome order (the output's order).
    regions / exclude: BED files (plain or gzip); either may be None.

    With neither file the input comes back unchanged (as a new list) and pybedtools is not imported.
    The result may be empty (the caller decides whether that is an error). Pieces that touch are
    merged; no empty interval is returned. Raises RegionsError for a missing or malformed file,
    a chromosome the genome lacks, an interval past its chromosome's end, an empty regions file,
    or when pybedtools or the bedtools program is missing.
    """
    if regions is None and exclude is None:
        return list(contigs)
    rank = {chrom: i for i, chrom in enumerate(chrom_sizes)}
    for contig in contigs:
        if contig.chrom not in rank:  # a caller's bug, not a user's input
            raise ValueError(f"contig {contig} is on a chromosome that chrom_sizes lacks")
    pybedtools = _import_pybedtools()
    region_intervals = None if regions is None else read_bed(regions, chrom_sizes, role="regions")
    exclude_intervals = None if exclude is None else read_bed(exclude, chrom_sizes, role="exclude")
    if region_intervals is not None and not region_intervals:
        raise RegionsError(
            f"regions file {regions} has no intervals (only blank, comment, header or zero-length "
            "lines), so nothing would be scored; give a BED file with at least one interval"
        )

    def key(iv: Interval) -> tuple[int, int, int]:
        return rank[iv[0]], iv[1], iv[2]

    pieces = sorted(((c.chrom, c.start, c.end) for c in contigs if c.end > c.start), key=key)
    with tempfile.TemporaryDirectory(prefix="nttracks-regions-") as tmp:
        step = _Steps(pybedtools, Path(tmp))
        current = step.write("contigs", pieces)
        if region_intervals is not None:
            merged = step.run("merge", step.write("regions", sorted(region_intervals, key=key)))
            current = step.run("intersect", current, b=merged)
        if exclude_intervals:
            current = step.run("subtract", current, b=step.write("exclude", exclude_intervals))
        current = step.run("merge", step.run("sort", current))
        result = [Contig(chrom, start, end) for chrom, start, end in _read_plain_bed(current) if end > start]
    result.sort(key=lambda c: (rank[c.chrom], c.start))
    return result


def read_bed(
    path: str | os.PathLike[str], chrom_sizes: Mapping[str, int], *, role: str = "BED"
) -> list[Interval]:
    """The non-empty intervals of a BED file as (chrom, start, end), in file order, validated.

    role names the file in messages ("regions", "exclude"). Raises RegionsError naming the file,
    the line and what to do for anything that is not usable BED on this genome.
    """
    path = Path(path).expanduser()
    what = f"{role} file {path}"
    if not path.exists():
        raise RegionsError(f"{what} not found; check the path")
    if not path.is_file():
        raise RegionsError(f"{what} is not a file; pass the path of a BED file")
    intervals: list[Interval] = []
    unknown: dict[str, int] = {}  # chromosome -> first line naming it
    seen_data = False
    for lineno, line in _lines(path, what):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if fields[0] in ("track", "browser"):
            continue
        first, seen_data = not seen_data, True
        if len(fields) < 3:
            raise RegionsError(
                f"{path}:{lineno}: expected at least 3 columns (chrom, start, end), got {line!r}; "
                f"the {role} file must be BED"
            )
        chrom, start_text, end_text = fields[:3]
        if first and not _INTEGER.fullmatch(start_text) and not _INTEGER.fullmatch(end_text):
            continue  # a column-name header such as "chrom start end"
        for label, text in (("start", start_text), ("end", end_text)):
            if not _INTEGER.fullmatch(text):
                raise RegionsError(
                    f"{path}:{lineno}: {label} {text!r} is not an integer; BED coordinates are whole "
                    "numbers (0-based start, exclusive end) with no commas or exponents"
                )
        start, end = int(start_text), int(end_text)
        if start < 0 or end < 0:
            raise RegionsError(
                f"{path}:{lineno}: negative coordinate in {chrom}:{start}-{end}; BED coordinates are 0-based "
                "and never negative"
            )
        if start > end:
            raise RegionsError(
                f"{path}:{lineno}: start {start} is after end {end} in {chrom}:{start}-{end}; "
                "BED intervals are [start, end) with start <= end"
            )
        size = chrom_sizes.get(chrom)
        if size is None:
            unknown.setdefault(chrom, lineno)
            continue
        if end > size:
            raise RegionsError(
                f"{path}:{lineno}: interval {chrom}:{start}-{end} runs past the end of {chrom} "
                f"(length {size}); is the {role} file made for another assembly? Use one for this "
                "genome, or fix the interval"
            )
        if end > start:
            intervals.append((chrom, start, end))
    if unknown:
        raise RegionsError(_unknown_message(path, role, unknown, chrom_sizes))
    return intervals


# ----------------------------------------------------------------------------- reading


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) of a plain or gzip text file."""
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rt") if gzipped else open(path) as text:
            for lineno, line in enumerate(text, 1):
                yield lineno, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RegionsError(
            f"{what} is not a text BED file ({exc.reason}); give a plain or gzipped BED"
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise RegionsError(f"cannot read {what}: {exc}; give a plain or gzipped BED file") from exc


def _unknown_message(path: Path, role: str, unknown: dict[str, int], chrom_sizes: Mapping[str, int]) -> str:
    names = sorted(unknown, key=unknown.__getitem__)
    listed = ", ".join(f"{n!r} (line {unknown[n]})" for n in names[:_SHOWN])
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    genome_names = list(chrom_sizes)
    shown = ", ".join(genome_names[:8]) + (", ..." if len(genome_names) > 8 else "")
    message = (
        f"{role} file {path} names {len(names)} chromosome(s) the genome does not have: {listed}{more}; "
        f"the genome has {len(genome_names)}: {shown}."
    )
    renamed = {n: _renamed(n, chrom_sizes) for n in names}
    matches = [f"{n!r} -> {r!r}" for n, r in renamed.items() if r is not None]
    if matches:
        adding = any(r.startswith("chr") for r in renamed.values() if r is not None)
        fix = "add the 'chr' prefix" if adding else "remove the 'chr' prefix"
        example = "sed 's/^/chr/'" if adding else "sed 's/^chr//'"
        message += (
            f" The file and the genome name chromosomes differently (e.g. {', '.join(matches[:3])}): "
            f"{fix} to the file's chromosome names (e.g. {example}; chrM is MT in Ensembl naming)."
        )
    else:
        message += " Use a BED file made for this genome, or remove the lines of the other chromosomes."
    return message


def _renamed(chrom: str, chrom_sizes: Mapping[str, int]) -> str | None:
    """The genome's name for ``chrom`` under the other naming convention (UCSC chr1/chrM vs Ensembl 1/MT)."""
    candidates = (
        {"chrM": "MT", "MT": "chrM", "M": "chrM"}.get(chrom),
        (chrom.removeprefix("chr") if chrom.startswith("chr") else "chr" + chrom),
    )
    return next((c for c in candidates if c is not None and c in chrom_sizes), None)


# ----------------------------------------------------------------------------- bedtools


def _import_pybedtools() -> Any:
    try:
        import pybedtools
    except ImportError as exc:
        raise RegionsError(
            "--regions/--exclude need the pybedtools package (pip install pybedtools) and the bedtools "
            f"program ({INSTALL_HINT})"
        ) from exc
    configured = pybedtools.helpers.get_bedtools_path()
    binary = os.path.join(configured, "bedtools") if configured else shutil.which("bedtools")
    if not binary or not os.access(binary, os.X_OK):
        raise RegionsError(
            f"--regions/--exclude need the bedtools program, which was not found; {INSTALL_HINT}"
        )
    return pybedtools


class _Steps:
    """bedtools calls file to file inside one private directory (no pybedtools tempfiles)."""

    def __init__(self, pybedtools: Any, tmp: Path) -> None:
        self.pybedtools = pybedtools
        self.tmp = tmp
        self.count = 0

    def _path(self, name: str) -> Path:
        self.count += 1
        return self.tmp / f"{self.count:02d}-{name}.bed"

    def write(self, name: str, intervals: Iterable[Interval]) -> Path:
        path = self._path(name)
        with open(path, "w") as out:
            out.writelines(f"{chrom}\t{start}\t{end}\n" for chrom, start, end in intervals)
        return path

    def run(self, program: str, a: Path, **files: Path) -> Path:
        """bedtools ``program`` on ``a`` (and ``-b`` etc. from ``files``) -> the output file's path."""
        out = self._path(program)
        if a.stat().st_size == 0:  # bedtools' answer on empty input, without asking it
            out.touch()
            return out
        tool = self.pybedtools.BedTool(str(a))
        try:
            getattr(tool, program)(output=str(out), **{k: str(v) for k, v in files.items()})
        except self.pybedtools.helpers.BEDToolsError as exc:
            said = " ".join(str(getattr(exc, "msg", exc)).split())
            raise RegionsError(
                f"bedtools {program} failed ({getattr(exc, 'cmd', program)}): {said}; check that bedtools "
                f"works (bedtools --version) and is 2.27 or later ({INSTALL_HINT})"
            ) from exc
        return out


def _read_plain_bed(path: Path) -> Iterator[Interval]:
    with open(path) as fh:
        for line in fh:
            chrom, start, end = line.rstrip("\n").split("\t")[:3]
            yield chrom, int(start), int(end)
