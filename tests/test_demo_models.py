"""The demo models shipped in the package: they load with the strict loaders, and the activity rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nttracks.demo import generate
from nttracks.demo_models import HELD_OUT, MOTIF_WEIGHT, enhancer_activities, models_dir, motif_counts, shipped
from nttracks.errors import CheckpointError, ModelError
from nttracks.models.loading import checkpoint_digest, load_nt, read_tensors, resolve_checkpoint, save_checkpoint
from nttracks.models.segment_nt import FEATURES, load_segment_nt


def test_motif_counts_known_by_hand() -> None:
    # GATA (AGATAAG) once forward, once as its reverse complement CTTATCT; SP1 (GGGGCGGGG) once
    seq = b"ttAGATAAGcc" + b"CTTATCT" + b"aaGGGGCGGGGaa"
    assert motif_counts(seq) == (2, 1)
    assert motif_counts(b"ACGTACGTACGT") == (0, 0)
    dev, hk = enhancer_activities(seq, np.random.default_rng(0))
    assert abs(dev - 2 * MOTIF_WEIGHT) < 0.5 and abs(hk - MOTIF_WEIGHT) < 0.5


def test_shipped_names_resolve_to_the_package() -> None:
    assert resolve_checkpoint("demo-nt") == models_dir() / "nt"
    assert resolve_checkpoint("demo-segment-nt") == models_dir() / "segment_nt"
    with pytest.raises(ModelError, match="use one of"):
        shipped("nope")


def test_shipped_models_load_strictly(tmp_path) -> None:
    lm = load_nt("demo-nt")
    assert lm.config.rotary and lm.config.glu  # NT-v2 architecture
    seg = load_segment_nt("demo-segment-nt", window=1200)
    assert seg.channels == FEATURES
    codes = torch.from_numpy(np.random.default_rng(1).integers(0, 4, size=(2, 1200)).astype(np.uint8))
    probs = seg(codes)
    assert probs.shape == (2, 1200, 14) and bool(((probs >= 0) & (probs <= 1)).all())
    # the same loaders reject a shipped checkpoint with a tensor taken away
    tensors = read_tensors(shipped("segment_nt"))
    tensors.pop("fc.bias")
    config = json.loads((shipped("segment_nt") / "config.json").read_text())
    save_checkpoint(tmp_path / "broken", config, tensors)
    with pytest.raises(CheckpointError, match=r"lacks tensor fc\.bias"):
        load_segment_nt(tmp_path / "broken")


def test_shipped_enhancer_loads_on_its_shipped_base() -> None:
    from nttracks.finetune import resolve_base
    from nttracks.models.enhancer import load_enhancer

    model = load_enhancer(shipped("enhancer"), resolve_base=resolve_base)  # checks the base digest too
    assert model.geometry.window == 249


def test_activity_table_is_deepstarr_style() -> None:
    lines = (models_dir() / "enhancer_activity.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert {"ID", "Dev_log2_enrichment", "Hk_log2_enrichment"} <= set(header)
    seqs, _ = generate()
    row = dict(zip(header, lines[1].split("\t"), strict=True))
    window = seqs[row["chrom"]][int(row["start"]) : int(row["end"])]
    dev, hk = motif_counts(window)
    # the table's activity is MOTIF_WEIGHT per site plus noise of sd 0.1
    assert abs(float(row["Dev_log2_enrichment"]) - MOTIF_WEIGHT * dev) < 0.6
    assert abs(float(row["Hk_log2_enrichment"]) - MOTIF_WEIGHT * hk) < 0.6
    held = [line for line in lines[1:] if line.split("\t")[header.index("chrom")] == HELD_OUT]
    assert held and all(line.split("\t")[header.index("split")] != "train" for line in held)


def test_the_demo_builds_on_the_shipped_models_and_evaluates(tmp_path) -> None:
    """``nttracks genome demo`` (no --config: configs/demo.yaml) runs every family but the toy on the shipped
    models (chr3 only, to stay fast), and nttracks evaluate scores the hub against the demo annotation
    without breaking the hub."""
    from typer.testing import CliRunner

    from nttracks.cli import app
    from nttracks.hubcheck import validate_hub

    out = tmp_path / "hub"
    runner = CliRunner()
    built = runner.invoke(app, ["genome", "demo", "--chroms", "chr3", "--out", str(out)])
    assert built.exit_code == 0, built.output
    manifest = json.loads((out / "manifest.json").read_text())
    families = manifest["families"]
    assert set(families) == {"elements", "enhancer", "sensitivity", "attention"}
    for name, checkpoint in [("elements", "demo-segment-nt"), ("enhancer", "demo-enhancer"),
                             ("sensitivity", "demo-nt"), ("attention", "demo-nt")]:
        assert checkpoint in families[name]["model"], (name, families[name]["model"])
        assert families[name]["checkpoint_digest"] == checkpoint_digest(resolve_checkpoint(checkpoint)), name
    assert {"recon_accuracy", "perplexity"} <= set(families["sensitivity"]["tracks"])  # reconstruction channels
    assert "hub nttracks_demo\n" in (out / "hub.txt").read_text()
    scored = runner.invoke(app, ["evaluate", str(out), "--truth", "demo"])  # the demo's annotation by name
    assert scored.exit_code == 0, scored.output
    rows = (out / "demo" / "elements_evaluation.tsv").read_text().splitlines()[1:]
    assert {tuple(r.split("\t")[1:3]) for r in rows} == {(c, k) for c in FEATURES for k in ("chr3", "all")}
    # chr3 holds one planted element class, a CTCF site: the others have no true base there (AUROC NA)
    auroc = {r.split("\t")[1]: r.split("\t")[5] for r in rows if r.split("\t")[2] == "all"}
    assert auroc.pop("CTCF-bound") != "NA" and set(auroc.values()) == {"NA"}
    assert "elements_evaluation.png" in (out / "demo" / "elements.html").read_text()
    # chr3's two elements (at 300 and 560 bp) fit 300-bp windows centred on them: the map is drawn
    summary = json.loads((out / "manifest.json").read_text())["families"]["sensitivity"]["summary"]
    assert summary["embedding_map"]["windows"]["CTCF-bound"] == 1
    assert '<img src="sensitivity_embedding_map.png"' in (out / "demo" / "sensitivity.html").read_text()
    assert validate_hub(out) == []
