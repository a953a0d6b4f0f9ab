"""On a CUDA device (skipped without one; benchmarks/gpu_check.sh runs them on a lent GPU):
CuPy stitching equals NumPy's, shards scored on the GPU equal the CPU's, and the demo with a random
SegmentNT in bf16 stays within BF16_BOUND of the fp32 CPU run at every base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch

from nttracks.config import parse_config
from nttracks.executors import FamilyJob, score_shard, stitch_module
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome
from nttracks.stitch import ContigStitcher, normalize_counts, quantize, quantum_steps, window_weights

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
# bf16 weights and activations against fp32, on probabilities: measured 1.8e-2 relative on embeddings
# (tests/test_segment_nt.py bounds one window at 3e-2); the stitched, 1/255-quantized tracks may add a quantum.
BF16_BOUND = 3e-2 + 1 / 255


def _cupy():
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():
        pytest.skip("CuPy cannot use the GPU here")
    return cupy


@pytest.mark.parametrize("mode", ["taper", "nearest", "mean"])
def test_cupy_stitching_equals_numpy(mode: str) -> None:
    cupy = _cupy()
    rng = np.random.default_rng(7)
    window, stride, n = 480, 180, 20
    preds = rng.random((n, window, 3), dtype=np.float32)
    quanta = np.array([1 / 255, 1 / 6, 1 / 100])
    out = {}
    for xp in (np, cupy):
        end = (n - 1) * stride + window
        st = ContigStitcher(xp, 0, end, 3, window)
        parts = []
        for j in range(n):
            keep = (max(0, (j * stride * 2 + window - stride) // 2 - j * stride) if j else 0,
                    window if j == n - 1 else (window + stride) // 2)
            w = window_weights(xp, window, mode, keep)
            parts.append(st.add(j * stride, xp.asarray(preds[j]), w)[1])
        parts.append(st.finish()[1])
        values = xp.concatenate(parts)
        out[xp.__name__] = (quantize(values, quanta), st.seam_sum)
    np.testing.assert_array_equal(cupy.asnumpy(out["cupy"][0]), out["numpy"][0])
    np.testing.assert_allclose(cupy.asnumpy(out["cupy"][1]), out["numpy"][1], rtol=1e-12)


def test_the_fused_normalize_quantize_kernel_gives_numpys_bits() -> None:
    """One CuPy kernel (divide, round to float32, multiply by the steps, rint) against NumPy's operations."""
    cupy = _cupy()
    rng = np.random.default_rng(3)
    n = 100_000
    wsum = rng.random(n) * 2
    wsum[::97] = 0  # holes: NaN
    acc = rng.random((n, 4)) * wsum[:, None]
    # values exactly half-way between two steps of 1/2 (k + 0.5) / 2: rint rounds them to even
    acc[:1000, 3] = (np.arange(1000) + 0.5) / 2 * wsum[:1000]
    steps = quantum_steps(np.array([1 / 255, 1 / 10000, 1 / 6, 1 / 2]))
    want = normalize_counts(acc, wsum, steps)
    got = cupy.asnumpy(normalize_counts(cupy.asarray(acc), cupy.asarray(wsum), cupy.asarray(steps)))
    np.testing.assert_array_equal(got, want)  # bit for bit, NaN where no weight
    assert np.isnan(got[::97]).all() and not np.isnan(np.delete(got, np.s_[::97], axis=0)).any()


def test_shards_scored_on_the_gpu_equal_the_cpus() -> None:
    _cupy()
    genome = open_genome("demo")
    for model in ("base_identity", "context_gc"):
        config = parse_config({"families": {"toy": {"window": 1200, "model": model}}})
        run = plan_run(RunRequest(genome="demo", config=config, chroms=("chr2",), shard_bases=50_000))
        fam = run.families[0]
        quanta = np.full(len(fam.channels), 1 / 10000)
        job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, fam.channels, quanta, fam.shards)
        for device in (torch.device("cpu"), torch.device("cuda")):
            assert stitch_module(device).__name__ == ("cupy" if device.type == "cuda" else "numpy")
        cpu_model = fam.family.load(fam.settings, fam.geometry, torch.device("cpu")).model
        gpu_model = fam.family.load(fam.settings, fam.geometry, torch.device("cuda")).model
        for shard in fam.shards[:3]:
            a = score_shard(cpu_model, job, shard, genome.codes, torch.device("cpu"))
            b = score_shard(gpu_model, job, shard, genome.codes, torch.device("cuda"))
            np.testing.assert_array_equal(a.runs, b.runs)
            np.testing.assert_allclose(a.counts, b.counts, atol=1)  # within one quantum step


def test_the_demo_on_the_gpu_in_bf16_equals_the_cpu_fp32_run_within_the_bound(tmp_path: Path) -> None:
    from nttracks.models import save_random_segment_nt

    ckpt = save_random_segment_nt(tmp_path / "segment_nt", hidden=64, layers=2, heads=4, seed=1)
    config = parse_config({"families": {"elements": {"checkpoint": str(ckpt), "window": 1200, "batch_size": 8}}})
    outs = {}
    for device in ("cpu", "cuda"):
        outs[device] = tmp_path / f"hub-{device}"
        run_genome(RunRequest(genome="demo", config=config, out=outs[device], chroms=("chr2",), device=device))
    genome = open_genome("demo")
    worst = 0.0
    for path in sorted((outs["cpu"] / "demo" / "bw").glob("*.bw")):
        a, b = (pyBigWig.open(str(o / "demo" / "bw" / path.name)) for o in (outs["cpu"], outs["cuda"]))
        try:
            va = np.array(a.values("chr2", 0, genome.chrom_sizes["chr2"]))
            vb = np.array(b.values("chr2", 0, genome.chrom_sizes["chr2"]))
        finally:
            a.close()
            b.close()
        np.testing.assert_array_equal(np.isnan(va), np.isnan(vb))
        worst = max(worst, float(np.nanmax(np.abs(va - vb))))
    assert worst <= BF16_BOUND, worst
