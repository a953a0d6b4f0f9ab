"""The local executor: shards scored one after another give the same bigWigs whatever the shard size,
and every base still equals the toy model's known function (or its hand-stitched value)."""

from __future__ import annotations

from pathlib import Path

import handstitch
import numpy as np
import pyBigWig
import pytest
from test_runs import check_hub, toy_config

from nttracks.config import parse_config
from nttracks.errors import ModelError
from nttracks.executors import FamilyJob, LocalExecutor
from nttracks.genome import Genome
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome

SHARD_SIZES = (1, 5_000, 10**9)  # one window per shard, a few windows, whole chromosomes


@pytest.fixture(scope="module")
def demo() -> Genome:
    return open_genome("demo")


def values(path: Path, genome: Genome) -> dict[str, np.ndarray]:
    bw = pyBigWig.open(str(path))
    try:
        return {c: np.array(bw.values(c, 0, n), dtype=np.float64) for c, n in genome.chrom_sizes.items()}
    finally:
        bw.close()


@pytest.mark.parametrize(
    ("settings", "chroms"),
    [
        ({"stitch": "taper", "batch_size": 4}, ("chr2",)),
        ({"stitch": "nearest", "batch_size": 1}, ("chr3", "chr1")),
        ({"stitch": "mean", "batch_size": 16, "overlap": 0}, ("chr2",)),
    ],
)
def test_base_identity_is_exact_for_every_shard_size(
    demo: Genome, tmp_path: Path, settings: dict, chroms: tuple[str, ...]
) -> None:
    for size in SHARD_SIZES:
        out = tmp_path / f"hub-{size}"
        result = run_genome(RunRequest(genome="demo", config=toy_config(**settings), out=out, chroms=chroms,
                                       shard_bases=size))
        check_hub(out, demo, chroms)
        if size == 1:
            assert result.manifest["families"]["toy"]["shards"] == result.manifest["families"]["toy"]["windows"]


@pytest.mark.parametrize("stitch", ["taper", "nearest"])
def test_context_model_bigwigs_are_identical_whatever_the_shard_size(demo: Genome, tmp_path: Path, stitch: str) -> None:
    """The context-dependent toy: a shard cut without its halo, or a window cut in the wrong place, shows."""
    config = parse_config({"families": {"toy": {"model": "context_gc", "window": 1200, "overlap": 600,
                                                  "stitch": stitch, "batch_size": 3}}})
    runs = []
    for size in SHARD_SIZES:
        out = tmp_path / f"hub-{size}"
        run_genome(RunRequest(genome="demo", config=config, out=out, chroms=("chr2",), shard_bases=size))
        runs.append(values(out / "demo" / "bw" / "toy_gc_context.bw", demo))
    for other in runs[1:]:
        for chrom in demo.chroms:
            np.testing.assert_array_equal(other[chrom], runs[0][chrom])  # bit for bit, NaN where unscored
    want = handstitch.stitch_chrom(demo, "chr2", handstitch.context_gc, window=1200, stride=600, mode=stitch)
    got = runs[0]["chr2"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], atol=1e-4, rtol=0)


def test_a_model_that_emits_other_channels_is_refused(demo: Genome) -> None:
    plan = plan_run(RunRequest(genome="demo", config=toy_config(), chroms=("chr3",)))
    fam = plan.families[0]
    job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, ("A", "C"), np.ones(2), fam.shards)
    with pytest.raises(ModelError, match="emits channels A, C, G, T, gc6 but the family declares A, C"):
        LocalExecutor(__import__("torch").device("cpu")).run(job, demo.codes, Path("unused"))


def test_nan_from_the_model_is_reported_at_its_first_written_base(demo: Genome) -> None:
    """Shard values stay on the device until the shard ends; a NaN is still named at its base."""
    import torch

    from nttracks.executors import score_shard

    plan = plan_run(RunRequest(genome="demo", config=toy_config(), chroms=("chr3",), shard_bases=5_000))
    fam = plan.families[0]
    job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, fam.channels, np.full(5, 1 / 255), fam.shards)
    inner = fam.family.load(fam.settings, fam.geometry, torch.device("cpu")).model

    class NaNAtT(torch.nn.Module):
        channels, geometry = inner.channels, inner.geometry

        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            out = inner(codes)
            out[..., 2] = torch.where(codes == 3, torch.nan, out[..., 2])  # channel G: NaN at every T
            return out

    shard = fam.shards[len(fam.shards) // 2]
    a, b = (int(x) for x in shard.writes[0])
    first_t = a + int(np.argmax(demo.codes("chr3", a, b) == 3))
    with pytest.raises(ModelError, match=rf"no value at chr3:{first_t + 1}: the model produced NaN"):
        score_shard(NaNAtT(), job, shard, demo.codes, torch.device("cpu"))
