"""Element summaries: a family's finished bigWigs read over the element classes of an annotation BED.

The paper reads the masked-LM tracks per genomic element class (mean reconstruction accuracy, perplexity
and constraint; attention enrichment per head). A family that summarizes its tracks does so after they
are written, from the bigWigs themselves, so a summary describes exactly the stored (quantized) values:

- ``read_annotation``: BED -> ``Annotation``, each class's intervals per chromosome, merged (a base lies in a
  class at most once; classes may overlap one another, as exons lie inside genes);
- ``class_sums``: one track -> per class the sum of its values and the number of scored bases in the class,
  and the same over the whole track (``interval_totals`` is the array kernel);
- ``table_html`` and ``heatmap_png``: the table and the picture on the family's description pages.

The annotation: plain or gzip text, tab- (or whitespace-) separated, columns chrom, 0-based start, exclusive
end, class name (BED's name column; further columns ignored); blank, ``#``, ``track`` and ``browser`` lines
skipped. Intervals on chromosomes the tracks lack (another run's --chroms) are ignored. ``demo`` names the
demo genome's planted annotation.
"""

from __future__ import annotations

import gzip
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

DEMO_ANNOTATION = "demo"
CHUNK = 4_000_000  # bases of a track read at a time


@dataclass(frozen=True)
class Annotation:
    """classes: {class: {chrom: (n, 2) int64 sorted, merged [start, end)}}, classes sorted by name."""

    path: Path
    classes: Mapping[str, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class ClassSums:
    """One track over an annotation: per class the sum of its values and its scored bases; totals over
    the whole track."""

    sums: Mapping[str, float]
    bases: Mapping[str, int]
    total_sum: float
    total_bases: int

    def mean(self, name: str) -> float:
        """Mean value over the class's scored bases (NaN when it has none)."""
        return self.sums[name] / self.bases[name] if self.bases[name] else math.nan

    def enrichment(self, name: str) -> float:
        """(share of the track's total on the class) / (share of the scored bases in the class)."""
        if not self.bases[name] or not self.total_sum:
            return math.nan
        return (self.sums[name] / self.total_sum) / (self.bases[name] / self.total_bases)


def resolve_annotation(text: str, *, generate: bool = True) -> Path:
    """The BED a family's ``annotation`` setting names: ``demo`` (the demo genome's planted elements,
    generated on first use unless not ``generate``) or a path."""
    if text == DEMO_ANNOTATION:
        from .demo import demo_annotation_path, demo_dir

        return demo_annotation_path() if generate else demo_dir() / "demo.bed"
    return Path(text).expanduser()


def read_annotation(path: str | Path) -> Annotation:
    """Read an annotation BED (module docstring); ConfigError naming the file and line for any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"annotation {path} is not a file; give a BED file of element classes (chrom, start, "
                          "end, class)")
    raw: dict[str, dict[str, list[tuple[int, int]]]] = {}
    try:
        with path.open("rb") as head:
            compressed = head.read(2) == b"\x1f\x8b"
        opened = gzip.open(path, "rt") if compressed else path.open()
        with opened as lines:
            for lineno, line in enumerate(lines, 1):
                fields = line.rstrip("\n").split("\t") if "\t" in line else line.split()
                if not fields or not fields[0] or fields[0].startswith("#") or fields[0] in ("track", "browser"):
                    continue
                if len(fields) < 4:
                    raise ConfigError(f"{path}:{lineno}: expected chrom, start, end and a class name, got "
                                      f"{line.strip()!r}; the annotation is a BED with the class in column 4")
                chrom, start, end, name = fields[0], fields[1], fields[2], fields[3].strip()
                try:
                    a, b = int(start), int(end)
                except ValueError:
                    raise ConfigError(f"{path}:{lineno}: start {start!r} and end {end!r} must be whole numbers"
                                      ) from None
                if not 0 <= a <= b or not name:
                    raise ConfigError(f"{path}:{lineno}: {chrom}:{start}-{end} {name!r} is not an interval "
                                      "0 <= start <= end with a class name")
                if b > a:
                    raw.setdefault(name, {}).setdefault(chrom, []).append((a, b))
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"annotation {path} cannot be read: {exc}") from None
    if not raw:
        raise ConfigError(f"annotation {path} holds no interval; give a BED of element classes")
    classes = {name: {chrom: merge(np.asarray(iv, dtype=np.int64)) for chrom, iv in raw[name].items()}
               for name in sorted(raw)}
    return Annotation(path, classes)


def merge(intervals: np.ndarray) -> np.ndarray:
    """(n, 2) [start, end) in any order -> sorted, overlapping or touching ones merged."""
    if len(intervals) == 0:
        return intervals.reshape(0, 2)
    iv = intervals[np.lexsort((intervals[:, 1], intervals[:, 0]))]
    reach = np.maximum.accumulate(iv[:, 1])
    starts = np.r_[True, iv[1:, 0] > reach[:-1]]
    first = np.flatnonzero(starts)
    ends = reach[np.r_[first[1:] - 1, len(iv) - 1]]
    return np.stack([iv[first, 0], ends], axis=1)


def interval_totals(values: np.ndarray, intervals: np.ndarray) -> tuple[float, int]:
    """Sum of the finite values and their count over intervals (n, 2) of offsets into ``values``
    (a chunk of a track, NaN where no base was scored), from cumulative sums."""
    finite = np.isfinite(values)
    csum = np.r_[0.0, np.cumsum(np.where(finite, values, 0.0), dtype=np.float64)]
    count = np.r_[0, np.cumsum(finite, dtype=np.int64)]
    lo, hi = intervals[:, 0], intervals[:, 1]
    return float((csum[hi] - csum[lo]).sum()), int((count[hi] - count[lo]).sum())


def class_sums(track: str | Path, annotation: Annotation) -> ClassSums:
    """Sums and scored bases of one bigWig per annotation class, and over the whole track."""
    import pyBigWig

    bw = pyBigWig.open(str(track))
    if bw is None:
        raise ConfigError(f"cannot read bigWig {track}")
    sums = dict.fromkeys(annotation.classes, 0.0)
    bases = dict.fromkeys(annotation.classes, 0)
    total_sum, total_bases = 0.0, 0
    try:
        for chrom, size in bw.chroms().items():
            for lo in range(0, size, CHUNK):
                hi = min(size, lo + CHUNK)
                values = np.asarray(bw.values(chrom, lo, hi, numpy=True), dtype=np.float64)
                s, n = interval_totals(values, np.array([[0, hi - lo]]))
                if not n:
                    continue
                total_sum, total_bases = total_sum + s, total_bases + n
                for name, by_chrom in annotation.classes.items():
                    iv = by_chrom.get(chrom)
                    if iv is None:
                        continue
                    iv = iv[(iv[:, 1] > lo) & (iv[:, 0] < hi)]
                    if len(iv):
                        s, n = interval_totals(values, np.clip(iv, lo, hi) - lo)
                        sums[name], bases[name] = sums[name] + s, bases[name] + n
    finally:
        bw.close()
    return ClassSums(sums, bases, total_sum, total_bases)


# ----------------------------------------------------------------------------- the page


def _number(x: float) -> str:
    return "&ndash;" if not math.isfinite(x) else f"{x:.4g}"


def table_html(caption: str, rows: Sequence[str], columns: Sequence[str], values: np.ndarray,
               bases: Sequence[int]) -> str:
    """An HTML table: one row per class (with its scored bases), one column per value."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["class", "scored bases", *columns])
    body = "".join(
        f"<tr><td>{html.escape(r)}</td><td>{n:,}</td>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>\n"
        for r, n, row in zip(rows, bases, values, strict=True))
    return f"<table>\n<caption>{html.escape(caption)}</caption>\n<tr>{head}</tr>\n{body}</table>\n"


def heatmap_png(rows: Sequence[str], columns: Sequence[str], values: np.ndarray, title: str, *,
                colors: np.ndarray | None = None, cmap: str = "viridis", center: float | None = None,
                colorbar: str = "") -> bytes:
    """A heatmap (rows x columns), each cell labelled with its value, as PNG bytes (matplotlib, Agg).

    colors: what the colour shows, when not ``values`` (e.g. values scaled per column); center: a value the
    colour scale is centred on (a diverging map).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = np.asarray(values if colors is None else colors, dtype=np.float64)
    finite = shown[np.isfinite(shown)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if center is not None:
        spread = max(abs(vmax - center), abs(vmin - center), 1e-9)
        vmin, vmax = center - spread, center + spread
    fig = Figure(figsize=(1.6 + 0.9 * len(columns), 1.0 + 0.32 * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, "" if not math.isfinite(values[i, j]) else f"{values[i, j]:.3g}", ha="center",
                    va="center", fontsize=7, color="black",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(colorbar, fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight", metadata={"Software": None})
    return out.getvalue()
