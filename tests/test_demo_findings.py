"""What the shipped demo models find on the chromosome they never saw (chr2), through the whole pipeline of
``nttracks genome demo`` (its default config) and ``nttracks evaluate``: the planted exons, splice sites and
promoters in the element tracks, the planted motifs in the constraint track, the planted enhancers in the
activity tracks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from nttracks.demo import generate
from nttracks.demo_models import HELD_OUT, background_bases, planted_motif_sites

pytestmark = pytest.mark.slow

RECOVERED = ("exon", "splice_donor", "splice_acceptor", "promoter_Tissue_invariant", "promoter_Tissue_specific")


@pytest.fixture(scope="module")
def held_out_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nttracks.config import load_config
    from nttracks.planning import RunRequest
    from nttracks.resources import resource_dir
    from nttracks.runs import run_genome

    out = tmp_path_factory.mktemp("held-out") / "hub"
    config = load_config(resource_dir("configs") / "demo.yaml")
    run_genome(RunRequest(genome="demo", config=config, out=out, chroms=(HELD_OUT,), device="cpu"))
    return out


def _track(hub: Path, family: str, channel: str) -> np.ndarray:
    manifest = json.loads((hub / "manifest.json").read_text())
    bw = pyBigWig.open(str(hub / manifest["families"][family]["tracks"][channel]))
    try:
        return np.asarray(bw.values(HELD_OUT, 0, bw.chroms(HELD_OUT), numpy=True), dtype=np.float64)  # NaN: unscored
    finally:
        bw.close()


def _held_out() -> tuple[bytes, list]:
    seqs, elements = generate()
    return seqs[HELD_OUT], [e for e in elements if e.chrom == HELD_OUT]


def test_element_tracks_recover_planted_genes(held_out_hub: Path) -> None:
    from nttracks.evaluate import evaluate

    result = evaluate(held_out_hub, "demo")
    auroc = {r.cls: r.scores.auroc for r in result.rows if r.chrom == HELD_OUT}
    assert {c: round(auroc[c], 3) for c in RECOVERED if not auroc[c] >= 0.9} == {}
    # every class was scored against planted truth on chr2 (none left out for lack of positives)
    assert len(auroc) == 14 and all(np.isfinite(list(auroc.values())))


def test_constraint_is_higher_on_planted_motifs(held_out_hub: Path) -> None:
    seq, elements = _held_out()
    constraint = _track(held_out_hub, "sensitivity", "constraint")
    scored = np.isfinite(constraint)
    motifs = planted_motif_sites(seq, elements) & scored
    background = background_bases(len(seq), elements) & scored
    assert motifs.sum() > 500 and background.sum() > 50_000
    assert constraint[motifs].mean() > constraint[background].mean()


def test_enhancer_activity_rises_on_planted_enhancers(held_out_hub: Path) -> None:
    seq, elements = _held_out()
    background = background_bases(len(seq), elements)
    for channel, kind in (("developmental", "enhancer_Tissue_specific"), ("housekeeping", "enhancer_Tissue_invariant")):
        activity = _track(held_out_hub, "enhancer", channel)
        planted = np.zeros(len(seq), dtype=bool)
        for e in elements:
            if e.name == kind:
                planted[e.start : e.end] = True
        on, off = planted & np.isfinite(activity), background & np.isfinite(activity)
        assert on.sum() > 1000
        assert activity[on].mean() > activity[off].mean() + 0.5, channel  # log2 units: 0.75 per motif site
