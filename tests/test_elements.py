"""The elements family end to end: a tiny random SegmentNT checkpoint in HF layout, made here, runs
through `nttracks genome` on the demo genome; and the production configs plan offline."""

from __future__ import annotations

import json
from pathlib import Path

import bbi
import numpy as np
import pyBigWig
import pytest
import torch
from test_cli import run_cli

from nttracks.config import config_for_genome, load_config
from nttracks.hubs import validate_hub
from nttracks.models import FEATURES, load_segment_nt, save_random_segment_nt
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import REGISTRY, open_genome


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_segment_nt(tmp_path_factory.mktemp("segment_nt"), hidden=32, layers=2, heads=4, seed=0)


def test_random_segment_nt_through_the_cli(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "elements.yaml"
    config.write_text(
        f"families:\n  elements:\n    checkpoint: {checkpoint}\n    window: 1200\n    overlap: 600\n    batch_size: 8\n"
        "    stitch: nearest\n"
    )
    out = tmp_path / "hub"
    code, _, err = run_cli(
        ["genome", "demo", "--config", str(config), "--out", str(out), "--chroms", "chr2,chr3"], capsys
    )
    assert code == 0, err
    assert validate_hub(out) == []
    manifest = json.loads((out / "manifest.json").read_text())["families"]["elements"]
    assert list(manifest["tracks"]) == list(FEATURES)
    # A random model's neighbouring windows disagree somewhat: the seam QC is reported, finite, > 0.
    seam = manifest["seam_qc"]
    assert set(seam) == set(FEATURES) and all(0 < v < 1 for v in seam.values())
    assert len(manifest["checkpoint_digest"]) == 64
    genome = open_genome("demo")
    for rel in manifest["tracks"].values():
        with bbi.open(str(out / rel)) as f:
            assert dict(f.chromsizes) == genome.chrom_sizes
            summary = f.info["summary"]
            assert 0 <= summary["min"] and summary["max"] <= 1 and np.isfinite(summary["mean"])
            values = f.fetch("chr2", 0, genome.chrom_sizes["chr2"], missing=np.nan)
            scored = ~np.isnan(values)
            assert scored.sum() > 150_000
            assert not (scored & (genome.codes("chr2") == 4)).any()
            # stored on the 1/255 grid
            np.testing.assert_allclose(values[scored] * 255, np.rint(values[scored] * 255), atol=1e-3)
    trackdb = (out / "demo" / "trackDb.txt").read_text()
    assert "compositeTrack on" in trackdb and trackdb.count("parent elements") == 14
    _every_base_is_the_owning_windows_output(checkpoint, config, out, manifest["tracks"])


def _every_base_is_the_owning_windows_output(checkpoint: Path, config: Path, out: Path, tracks: dict) -> None:
    """With nearest stitching each base comes from the window whose centre is nearest: run the model on
    every third window here, and the first and last window of every contig, and compare it, at every base
    that window owns, with the bigWigs (within the 1/255 quantum): a third of the model's cost."""
    plan = plan_run(RunRequest(genome="demo", config=load_config(config), chroms=("chr2", "chr3")))
    tiles = plan.families[0].plan
    model = load_segment_nt(checkpoint, window=1200)
    genome = open_genome("demo")
    files = {ch: pyBigWig.open(str(out / rel)) for ch, rel in tracks.items()}
    try:
        stored = {
            chrom: np.stack([np.array(files[ch].values(chrom, 0, genome.chrom_sizes[chrom])) for ch in FEATURES], 1)
            for chrom in ("chr2", "chr3")
        }
    finally:
        for f in files.values():
            f.close()
    checked = 0
    lengths = tiles.window_lengths()
    sample = np.zeros(tiles.n_windows, dtype=bool)
    sample[::3] = True
    sample[np.r_[0, np.flatnonzero(np.diff(tiles.contig)), np.flatnonzero(np.diff(tiles.contig)) + 1, -1]] = True
    for length in np.unique(lengths):  # the model on its own, in plain batches of equal-length windows
        rows = np.flatnonzero((lengths == length) & sample)
        for batch in np.array_split(rows, max(1, len(rows) // 32)):
            chroms = [tiles.chroms[tiles.chrom[r]] for r in batch]
            pairs = zip(chroms, batch, strict=True)
            codes = np.stack([genome.codes(c, int(tiles.start[r]), int(tiles.end[r])) for c, r in pairs])
            with torch.inference_mode():
                outs = model(torch.from_numpy(codes)).numpy()
            for chrom, row, own in zip(chroms, batch, outs, strict=True):
                start, lo, hi = int(tiles.start[row]), int(tiles.keep_start[row]), int(tiles.keep_end[row])
                np.testing.assert_allclose(
                    stored[chrom][lo:hi], own[lo - start : hi - start], atol=0.5 / 255 + 1e-6, rtol=0
                )
                checked += hi - lo
    own = tiles.keep_end - tiles.keep_start
    assert checked == int(own[sample].sum()) and checked > plan.families[0].bases_scored / 3


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "demo"))
def test_every_registered_genome_has_a_production_config_that_plans_offline(
    name: str, capsys: pytest.CaptureFixture
) -> None:
    config = load_config(config_for_genome(name))
    assert "elements" in config.families
    assert config.families["elements"].window == 30_000
    code, out, err = run_cli(["genome", name, "--dry-run"], capsys)
    assert code == 0, err
    assert "shipped chromosome sizes" in out and "elements:" in out and "estimated GPU time" in out


def test_hg38_dry_run_numbers(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["genome", "hg38", "--dry-run", "--chroms", "chr21"], capsys)
    assert code == 0
    # chr21 is 46,709,983 bp: windows start every 15,000 bp up to the last, end-aligned on the 6-mer grid.
    n = 46_709_983
    windows = (n - 30_000) // 15_000 + 1 + (1 if (n - 30_000) % 15_000 >= 6 else 0)
    assert f"{windows:,} windows of 30,000 bp" in out
    assert f"{30_000 + (n - 30_000) // 6 * 6:,} bases scored" in out


def test_dry_run_hints_at_chr_prefix(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["genome", "hg38", "--dry-run", "--chroms", "21"], capsys)
    assert code == 3 and "did you mean chr21?" in err
