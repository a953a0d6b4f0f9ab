#!/usr/bin/env python
"""The README figure: a demo hub's tracks over one planted gene of the held-out chromosome, with the gene's
true promoter, exons and splice sites drawn beneath.

    nttracks genome demo --out hub/
    python scripts/readme_figure.py hub/ docs/demo_gene.png

It picks the first protein-coding gene on the held-out chromosome (chr2) with two or more introns, and
plots the tracks the hub has of: elements (exon, intron, splice donor, splice acceptor, promoters),
sensitivity (constraint, its running mean) and enhancer (developmental); the truth row marks the gene's
planted motif sites (TATA/CCAAT boxes, AU-rich elements, the polyA signal) as ticks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nttracks.demo import generate, read_annotation  # noqa: E402
from nttracks.demo_models import HELD_OUT, planted_motif_sites  # noqa: E402

PANELS = [
    ("elements", "exon", "exon", "#1b9e77"),
    ("elements", "intron", "intron", "#7570b3"),
    ("elements", "splice_donor", "splice donor", "#d95f02"),
    ("elements", "splice_acceptor", "splice acceptor", "#e7298a"),
    ("elements", "promoter_Tissue_invariant", "promoter (invariant)", "#66a61e"),
    ("elements", "promoter_Tissue_specific", "promoter (specific)", "#a6761d"),
    ("sensitivity", "constraint", "constraint (bits)", "#444444"),
    ("enhancer", "developmental", "enhancer dev.", "#e6ab02"),
]
FLANK = 400
SMOOTH = 25  # bp: the constraint panel's running mean


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyBigWig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hub", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--annotation", type=Path, default=None, help="demo annotation BED (default: the cache's)")
    args = parser.parse_args()
    manifest = json.loads((args.hub / "manifest.json").read_text())
    elements = read_annotation(args.annotation)
    genes = [e for e in elements if e.chrom == HELD_OUT and e.name == "protein_coding_gene"]
    parts = {g.id: [e for e in elements if e.id.startswith(g.id + ".") or e.id == g.id] for g in genes}
    gene = next(g for g in genes if sum(e.name == "intron" for e in parts[g.id]) >= 2)
    promoter = next(e for e in parts[gene.id] if e.name.startswith("promoter"))
    lo = min(gene.start, promoter.start) - FLANK
    hi = max(gene.end, promoter.end) + FLANK
    x = np.arange(lo, hi)
    panels = [(f, c, label, color) for f, c, label, color in PANELS
              if c in manifest["families"].get(f, {}).get("tracks", {})]
    if not panels:
        raise SystemExit(f"{args.hub} has none of the element, sensitivity or enhancer tracks; build it with "
                         "nttracks genome demo (configs/demo.yaml)")
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(10, 0.85 * len(panels) + 1.6), sharex=True, dpi=120,
                             gridspec_kw={"height_ratios": [1] * len(panels) + [1.2]})
    for ax, (family, channel, label, color) in zip(axes, panels, strict=False):
        bw = pyBigWig.open(str(args.hub / manifest["families"][family]["tracks"][channel]))
        y = np.asarray(bw.values(gene.chrom, lo, hi, numpy=True), dtype=np.float64)
        bw.close()
        if family == "sensitivity":  # per-base bits are noisy: their running mean over SMOOTH bp, about 0
            y = np.convolve(np.nan_to_num(y), np.ones(SMOOTH) / SMOOTH, mode="same")
            ax.axhline(0, color="#999999", linewidth=0.5)
            ax.plot(x, y, color=color, linewidth=0.8)
            label = f"{label}\n{SMOOTH}-bp mean"
        else:
            ax.fill_between(x, np.nan_to_num(y), color=color, linewidth=0, step="mid")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        if family == "elements":
            ax.set_ylim(0, 1)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    truth = axes[-1]
    truth.plot([gene.start, gene.end], [0, 0], color="k", linewidth=1)
    for e in parts[gene.id]:
        if e.name == "exon":
            truth.add_patch(plt.Rectangle((e.start, -0.3), e.end - e.start, 0.6, color="#1b9e77"))
        elif e.name == "splice_donor":
            truth.plot([e.start, e.start], [0.35, 0.8], color="#d95f02", linewidth=2)
        elif e.name == "splice_acceptor":
            truth.plot([e.end, e.end], [-0.8, -0.35], color="#e7298a", linewidth=2)
        elif e.name.startswith("promoter"):
            truth.add_patch(plt.Rectangle((e.start, -0.15), e.end - e.start, 0.3, color="#66a61e"))
    seq = generate()[0][gene.chrom]
    sites = np.flatnonzero(planted_motif_sites(seq, parts[gene.id]))  # TATA/CCAAT boxes, AREs, polyA signal
    truth.plot(sites, np.full(sites.size, -0.55), "|", color="#444444", markersize=5)
    truth.set_ylim(-1, 1)
    truth.set_yticks([])
    truth.set_ylabel(f"truth\n{gene.id} ({gene.strand})", rotation=0, ha="right", va="center", fontsize=8)
    truth.set_xlabel(f"{gene.chrom} (held out from training), bp", fontsize=8)
    truth.tick_params(labelsize=7)
    for side in ("top", "right", "left"):
        truth.spines[side].set_visible(False)
    fig.suptitle("nttracks demo: the trained demo models over a planted gene they never saw", fontsize=10)
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png)
    print(f"wrote {args.png} ({gene.id}, {gene.chrom}:{lo}-{hi})")


if __name__ == "__main__":
    main()
