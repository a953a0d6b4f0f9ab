"""``nttracks evaluate``: a hub's element tracks against a truth annotation, with SegmentNT's metrics.

For each element track of a family (default ``elements``: the 14 SegmentNT classes) and each class the
truth annotates: AUROC, AUPRC, MCC at 0.5 and MCC at the best threshold, per chromosome and overall,
over the bases the track scored (bases it left unscored, N and contig ends, are not counted). Written to
``<assembly>/<family>_evaluation.tsv`` and ``<assembly>/<family>_evaluation.png`` in the hub, shown on
the family's description page, and added to the manifest's files (a rebuild of the hub removes them
with the rest of what it no longer writes).

The truth is a BED whose name column holds SegmentNT class names (the demo genome's annotation is one),
or a GENCODE/Ensembl-style GTF (or GFF) read with pybedtools, turned into classes: genes by gene type
(protein_coding -> protein_coding_gene, lncRNA -> lncRNA), exons, introns between consecutive exons of
each transcript, splice donors and acceptors (an intron's first and last 6 bases on its strand, as
SegmentNT and the demo annotation define them) and UTRs (``five_prime_utr``/``three_prime_utr``, or
GENCODE's ``UTR`` split by the side of the transcript's CDS it lies on). Classes a GTF does not carry
(promoters, enhancers, CTCF sites, polyA signals) are not evaluated.
"""

from __future__ import annotations

import html
import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UsageError
from .files import atomic_writer
from .metrics import Scores, from_histograms, histograms
from .models.segment_nt import FEATURES

SPLICE_SITE = 6  # bp: an intron's first (donor) and last (acceptor) bases
SEGMENT_NT_MEAN_MCC = 0.45  # SegmentNT's published average MCC over the 14 classes, 30 kb windows
PAGE_START, PAGE_END = "<!-- nttracks evaluate -->", "<!-- /nttracks evaluate -->"
GENE_TYPES = {"protein_coding": "protein_coding_gene", "lncRNA": "lncRNA", "lincRNA": "lncRNA"}
COLUMNS = ("track", "class", "chrom", "positives", "negatives", "auroc", "auprc", "mcc_0.5", "mcc_best",
           "best_threshold")

Truth = dict[str, dict[str, list[tuple[int, int]]]]  # class -> chrom -> [(start, end)]


@dataclass(frozen=True)
class Row:
    track: str
    cls: str
    chrom: str
    scores: Scores

    def tsv(self) -> str:
        s = self.scores
        values = (s.auroc, s.auprc, s.mcc_05, s.mcc_best, s.best_threshold)
        return "\t".join([self.track, self.cls, self.chrom, str(s.positives), str(s.negatives),
                          *(f"{v:.4f}" if np.isfinite(v) else "NA" for v in values)])


@dataclass(frozen=True)
class Evaluation:
    rows: list[Row]
    tsv: Path
    png: Path
    page: Path | None
    skipped: list[str]  # classes of the family the truth does not annotate

    def overall(self) -> list[Row]:
        return [r for r in self.rows if r.chrom == "all"]


# --- the truth ------------------------------------------------------------------------------------


def read_truth(path: str | os.PathLike[str]) -> Truth:
    """Class -> chrom -> intervals of a BED (class in the name column) or a GTF/GFF (see the module doc);
    ``demo`` names the demo genome's annotation."""
    import pybedtools

    from .summaries import resolve_annotation

    path = resolve_annotation(str(path))
    if not path.is_file():
        raise UsageError(f"truth annotation {path} does not exist; give a BED or GTF file")
    try:
        intervals = list(pybedtools.BedTool(str(path)))
    except Exception as exc:  # pybedtools raises several kinds on malformed lines
        raise UsageError(f"cannot read truth annotation {path}: {exc}") from exc
    if not intervals:
        raise UsageError(f"truth annotation {path} is empty")
    if intervals[0].file_type == "gff":
        truth = _from_gtf(intervals)
    else:
        truth = defaultdict(lambda: defaultdict(list))
        for iv in intervals:
            if len(iv.fields) < 4:
                line = " ".join(iv.fields)
                raise UsageError(f"{path}: BED line {line!r} has no name column; the truth BED needs chrom, "
                                 "start, end and a SegmentNT class name")
            if iv.name in FEATURES:
                truth[iv.name][iv.chrom].append((iv.start, iv.end))
    if not truth:
        raise UsageError(f"truth annotation {path} holds none of the classes {', '.join(FEATURES[:4])}, ...; "
                         "a BED needs SegmentNT class names in its name column")
    return {c: dict(v) for c, v in truth.items()}


def _from_gtf(intervals: list) -> Truth:
    truth: Truth = defaultdict(lambda: defaultdict(list))
    exons: dict[str, list[tuple[str, int, int, str]]] = defaultdict(list)
    cds: dict[str, list[int]] = defaultdict(list)
    utrs: list[tuple[str, int, int, str, str]] = []
    for iv in intervals:
        kind, attrs = iv.fields[2], iv.attrs
        if kind == "gene":
            gene_type = attrs.get("gene_type") or attrs.get("gene_biotype") or ""
            if gene_type in GENE_TYPES:
                truth[GENE_TYPES[gene_type]][iv.chrom].append((iv.start, iv.end))
        elif kind == "exon":
            truth["exon"][iv.chrom].append((iv.start, iv.end))
            tx = attrs.get("transcript_id")
            if tx:
                exons[tx].append((iv.chrom, iv.start, iv.end, iv.strand))
        elif kind == "CDS":
            cds[attrs.get("transcript_id", "")] += [iv.start, iv.end]
        elif kind in ("five_prime_utr", "5UTR"):
            truth["5UTR"][iv.chrom].append((iv.start, iv.end))
        elif kind in ("three_prime_utr", "3UTR"):
            truth["3UTR"][iv.chrom].append((iv.start, iv.end))
        elif kind == "UTR":
            utrs.append((iv.chrom, iv.start, iv.end, iv.strand, attrs.get("transcript_id", "")))
    for chrom, start, end, strand, tx in utrs:  # GENCODE's UTR: 5' or 3' by its side of the CDS
        if not cds.get(tx):
            continue
        upstream = end <= min(cds[tx]) if strand != "-" else start >= max(cds[tx])
        truth["5UTR" if upstream else "3UTR"][chrom].append((start, end))
    for parts in exons.values():
        parts.sort(key=lambda p: p[1])
        for (chrom, _, a_end, strand), (_, b_start, _, _) in itertools.pairwise(parts):
            if b_start <= a_end:
                continue
            truth["intron"][chrom].append((a_end, b_start))
            first = (a_end, min(a_end + SPLICE_SITE, b_start))
            last = (max(b_start - SPLICE_SITE, a_end), b_start)
            donor, acceptor = (first, last) if strand != "-" else (last, first)
            truth["splice_donor"][chrom].append(donor)
            truth["splice_acceptor"][chrom].append(acceptor)
    return truth


def mask(intervals: list[tuple[int, int]], size: int) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    for start, end in intervals:
        out[max(start, 0) : min(end, size)] = True
    return out


# --- scoring --------------------------------------------------------------------------------------


def element_tracks(hub: Path, family: str) -> dict[str, Path]:
    """Class -> bigWig path of ``family``'s tracks in the hub's manifest."""
    manifest_path = hub / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{hub} is not an nttracks hub (cannot read {manifest_path}: {exc}); give the --out "
                         "directory of an nttracks genome run") from exc
    families = manifest.get("families", {})
    if family not in families:
        raise UsageError(f"hub {hub} has no {family!r} family (it has: {', '.join(families) or 'none'}); build "
                         f"it with the {family} family in the config, or pass --family")
    tracks = {name: hub / rel for name, rel in families[family].get("tracks", {}).items() if name in FEATURES}
    if not tracks:
        raise UsageError(f"family {family!r} of hub {hub} has no element tracks (SegmentNT class names)")
    return tracks


def evaluate(hub: str | os.PathLike[str], truth_path: str | os.PathLike[str], *, family: str = "elements",
             chroms: tuple[str, ...] | None = None) -> Evaluation:
    """Score the hub's element tracks against the truth; write the TSV, the plot and the page section."""
    import pyBigWig

    hub = Path(hub)
    tracks = element_tracks(hub, family)
    truth = read_truth(truth_path)
    rows: list[Row] = []
    skipped = [c for c in tracks if c not in truth]
    for cls, bw_path in tracks.items():
        if cls not in truth:
            continue
        bw = pyBigWig.open(str(bw_path))
        try:
            sizes = bw.chroms()
            total = np.zeros((2, 4096), dtype=np.int64)
            for chrom in sorted(sizes, key=list(sizes).index):
                if chroms is not None and chrom not in chroms:
                    continue
                values = np.asarray(bw.values(chrom, 0, sizes[chrom], numpy=True), dtype=np.float64)
                scored = np.isfinite(values)
                if not scored.any():
                    continue
                counts = histograms(values[scored], mask(truth[cls].get(chrom, []), sizes[chrom])[scored])
                total += counts
                rows.append(Row(cls, cls, chrom, from_histograms(counts)))
        finally:
            bw.close()
        rows.append(Row(cls, cls, "all", from_histograms(total)))
    if not rows:
        raise UsageError(f"the truth annotation {truth_path} annotates none of the tracks' classes on the hub's "
                         "chromosomes")
    assembly = Path(next(iter(tracks.values()))).relative_to(hub).parts[0]
    tsv, png = hub / assembly / f"{family}_evaluation.tsv", hub / assembly / f"{family}_evaluation.png"
    with atomic_writer(tsv) as out:
        out.write(("\t".join(COLUMNS) + "\n" + "".join(r.tsv() + "\n" for r in rows)).encode())
    overall = [r for r in rows if r.chrom == "all"]
    _plot(overall, png, Path(truth_path).name)
    page = hub / assembly / f"{family}.html"
    page = _add_to_page(page, overall, tsv.name, png.name, Path(truth_path).name, skipped)
    _add_to_manifest(hub, [tsv, png])
    return Evaluation(rows, tsv, png, page, skipped)


def _plot(overall: list[Row], png: Path, truth_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.cls for r in overall]
    metrics = [("AUROC", [r.scores.auroc for r in overall]), ("AUPRC", [r.scores.auprc for r in overall]),
               ("MCC (best threshold)", [r.scores.mcc_best for r in overall]),
               ("MCC at 0.5", [r.scores.mcc_05 for r in overall])]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 2.2), dpi=110)
    y = np.arange(len(names))
    height = 0.8 / len(metrics)
    for i, (label, values) in enumerate(metrics):
        ax.barh(y + (i - 1.5) * height, np.nan_to_num(values), height=height, label=label)
    ax.axvline(SEGMENT_NT_MEAN_MCC, color="0.3", linestyle="--", linewidth=1,
               label=f"SegmentNT's published mean MCC ({SEGMENT_NT_MEAN_MCC})")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, *(np.nanmin(v) for _, v in metrics if np.isfinite(v).any())), 1.0)
    ax.set_xlabel("score (over every chromosome scored)")
    ax.set_title(f"Element tracks against {truth_name}", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.4, -0.07 * 14 / max(len(names), 4)), ncol=3)
    fig.tight_layout()
    with atomic_writer(png) as out:
        fig.savefig(out, format="png")
    plt.close(fig)


def _add_to_page(page: Path, overall: list[Row], tsv: str, png: str, truth_name: str,
                 skipped: list[str]) -> Path | None:
    """Put the evaluation section on the family page (replacing an earlier one); None without a page."""
    if not page.is_file():
        return None
    text = page.read_text()
    if PAGE_START in text:
        head, rest = text.split(PAGE_START, 1)
        text = head + (rest.split(PAGE_END, 1)[1] if PAGE_END in rest else "")
    cells = "".join(
        f"<tr><td>{html.escape(r.cls)}</td><td>{r.scores.positives:,}</td>"
        + "".join(f"<td>{v:.3f}</td>" if np.isfinite(v) else "<td>NA</td>"
                  for v in (r.scores.auroc, r.scores.auprc, r.scores.mcc_05, r.scores.mcc_best))
        + "</tr>\n" for r in overall)
    note = (f"<p>Not in the truth annotation, not evaluated: {html.escape(', '.join(skipped))}.</p>\n"
            if skipped else "")
    section = (f"{PAGE_START}\n<h2>Evaluation against {html.escape(truth_name)}</h2>\n"
               f"<p>Per base, over the bases the tracks scored; per chromosome in "
               f"<a href=\"{html.escape(tsv)}\">{html.escape(tsv)}</a>. SegmentNT's published average MCC over "
               f"its 14 classes is {SEGMENT_NT_MEAN_MCC} (30 kb windows, human).</p>\n"
               f"<img src=\"{html.escape(png)}\" alt=\"metrics per element class\">\n"
               "<table>\n<tr><th>class</th><th>true bases</th><th>AUROC</th><th>AUPRC</th><th>MCC at 0.5</th>"
               f"<th>MCC best</th></tr>\n{cells}</table>\n{note}{PAGE_END}\n")
    with atomic_writer(page) as out:
        out.write((text + section).encode())
    return page


def _add_to_manifest(hub: Path, paths: list[Path]) -> None:
    manifest_path = hub / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    files = set(manifest.get("files", []))
    files.update(p.relative_to(hub).as_posix() for p in paths)
    manifest["files"] = sorted(files)
    with atomic_writer(manifest_path) as out:
        out.write((json.dumps(manifest, indent=2) + "\n").encode())
