"""Genome throughput: nttracks end to end, nttracks model only, and a naive pipeline, in one run.

    python benchmarks/bench_genome.py                                  # CPU, tiny SegmentNT, 2 Mbp
    python benchmarks/bench_genome.py --shape real --device cuda --mbp 20 --json out.json   # a GPU

The same synthetic chromosome (random sequence with N gaps) and the same random weights for all three:
- nttracks: ``run_genome`` with the elements family on a random SegmentNT checkpoint saved in HF layout
  (bf16 on a GPU), bigWigs and hub included;
- model only: the same model over the same windows through ``predict_windows``, outputs left on the
  device, synchronised at the end: the pace the GPU sets;
- naive, as a user writes it without nttracks: fp32, one window at a time in a Python loop, attention
  computed eagerly (matmul, an additive all-zero padding mask, softmax: HF's eager path), outputs copied
  to numpy per window, stitched by a per-window overlap-add into whole-chromosome arrays, then one
  pyBigWig ``addEntries`` per window's owned bases per track.

Shapes: ``tiny`` (hidden 64, 2 layers, 4 heads; 1,200-bp windows) for CPUs; ``real`` (NT-v2-500M:
hidden 1024, 29 layers, 16 heads, SwiGLU 4096; SegmentNT head; 30-kb windows) for GPUs. Prints bases/s,
the ratios, an estimate of the GPU busy fraction (model-only time / end-to-end time) and MFU (forward
FLOPs over model-only time and the bf16 peak), and checks the naive and nttracks bigWigs agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyBigWig
import torch

SHAPES = {
    "tiny": {"hidden": 64, "layers": 2, "heads": 4, "window": 1200, "batch": 16},
    "real": {"hidden": 1024, "layers": 29, "heads": 16, "window": 30_000, "batch": None},  # None: automatic
}
PEAK_BF16 = 989e12


def synthetic_fasta(path: Path, mbp: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = int(mbp * 1e6)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=n)].copy()
    for start in rng.integers(0, n - 5000, size=max(1, n // 2_000_000)):
        seq[start : start + int(rng.integers(100, 5000))] = ord("N")
    with open(path, "wb") as fh:
        fh.write(b">chrS\n")
        for i in range(0, n, 60):
            fh.write(seq[i : i + 60].tobytes() + b"\n")


def eager_attention(q, k, v, attn_mask=None, **_):
    """HF's eager path: scores, an additive padding mask (all zeros here), softmax, weighted values."""
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    pad = torch.zeros(scores.shape[0], 1, 1, scores.shape[-1], dtype=scores.dtype, device=scores.device)
    return torch.softmax(scores + pad, dim=-1) @ v


def naive(model, genome, plan, out_dir: Path, names: list[str], quanta: np.ndarray, device) -> None:
    """The pipeline as written without nttracks (see the module docstring)."""
    import nttracks.models.nt as nt

    sizes = genome.chrom_sizes
    acc = {c: np.zeros((n, len(names))) for c, n in sizes.items()}
    wsum = {c: np.zeros(n) for c, n in sizes.items()}
    real_sdpa, nt.F.scaled_dot_product_attention = nt.F.scaled_dot_product_attention, eager_attention
    try:
        with torch.no_grad():
            for row in range(plan.n_windows):
                chrom = plan.chroms[plan.chrom[row]]
                s, e = int(plan.start[row]), int(plan.end[row])
                codes = torch.from_numpy(genome.codes(chrom, s, e))[None].to(device)
                pred = model(codes)[0].float().cpu().numpy()
                i = np.arange(e - s)
                w = np.minimum(i + 0.5, e - s - i - 0.5) / ((e - s) / 2)
                acc[chrom][s:e] += w[:, None] * pred
                wsum[chrom][s:e] += w
    finally:
        nt.F.scaled_dot_product_attention = real_sdpa
    files = [pyBigWig.open(str(out_dir / f"{n}.bw"), "w") for n in names]
    for f in files:
        f.addHeader(list(sizes.items()))
    own_end = np.append(plan.start[1:], 0)
    for row in range(plan.n_windows):
        chrom = plan.chroms[plan.chrom[row]]
        lo = int(plan.start[row])
        last = row == plan.n_windows - 1 or plan.contig[row + 1] != plan.contig[row]
        hi = int(plan.scored_end[plan.contig[row]]) if last else int(own_end[row])
        values = acc[chrom][lo:hi] / wsum[chrom][lo:hi, None]
        for j, f in enumerate(files):
            q = np.round(values[:, j] / quanta[j]) * quanta[j]
            f.addEntries(chrom, lo, values=q.astype(np.float32), span=1, step=1)
    for f in files:
        f.close()


def time_writer_tail() -> list[float]:
    """Time ``BigWigWriters.close`` in runs: the writers finishing after the last shard is scored, while
    the device has nothing left to do (the GPU idle time the writers cost)."""
    import nttracks.runs as runs

    tail = [0.0]
    close = runs.BigWigWriters.close

    def timed(self) -> None:
        t0 = time.perf_counter()
        try:
            close(self)
        finally:
            tail[0] += time.perf_counter() - t0

    runs.BigWigWriters.close = timed
    return tail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--mbp", type=float, default=2.0, help="synthetic chromosome length, Mbp")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--naive-mbp", type=float, default=None, help="score only this much with the naive loop")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    from nttracks.config import parse_config
    from nttracks.families import get_family
    from nttracks.hubs import load_catalog
    from nttracks.models import save_random_segment_nt
    from nttracks.planning import RunRequest, plan_run
    from nttracks.predict import predict_windows, resolve_device
    from nttracks.runs import run_genome

    shape = SHAPES[args.shape]
    device = resolve_device(args.device)
    batch = args.batch or shape["batch"]  # None: nttracks' automatic batch size (measured on the GPU)
    scratch = Path(tempfile.mkdtemp(prefix="bench_genome_"))
    figures: dict[str, object] = {"shape": args.shape, "device": str(device), "batch": batch, "mbp": args.mbp}
    if device.type == "cuda":
        figures["gpu"] = torch.cuda.get_device_name(device)
    try:
        fasta = scratch / "synthetic.fa"
        synthetic_fasta(fasta, args.mbp)
        ckpt = save_random_segment_nt(
            scratch / "segment_nt", hidden=shape["hidden"], layers=shape["layers"], heads=shape["heads"], seed=0
        )
        config = parse_config({"families": {"elements": {
            "checkpoint": str(ckpt), "window": shape["window"], "overlap": shape["window"] // 2, "batch_size": batch,
        }}})
        request = RunRequest(genome=fasta, config=config, out=scratch / "hub", device=str(device))
        run = plan_run(request)
        fam = run.families[0]
        bases = fam.bases_scored
        loaded = get_family("elements").load(fam.settings, fam.geometry, device)
        if batch is None:
            from nttracks.memory import auto_batch_size

            batch = auto_batch_size(loaded.model, fam.geometry.window, device)
            figures["batch"] = batch
            print(f"automatic batch size: {batch}")

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        def model_only() -> float:
            sync()
            t0 = time.perf_counter()
            windows = predict_windows(loaded.model, fam.plan, run.genome.codes, batch_size=batch, device=device)
            for _row, _out in windows:
                pass
            sync()
            return time.perf_counter() - t0

        model_only()  # warm-up (kernels, caches)
        t_model = model_only()
        tail = time_writer_tail()
        t0 = time.perf_counter()
        run_genome(request)
        t_e2e = time.perf_counter() - t0
        figures["writers_tail_s"] = round(tail[0], 3)
        flops = fam.flops
        rows = [("nttracks end to end", t_e2e, bases), ("nttracks model only", t_model, bases)]
        if not args.skip_naive:
            plan = fam.plan
            if args.naive_mbp is not None:
                from nttracks.tiling import plan_tiles

                keep = int(args.naive_mbp * 1e6)
                spans = [(c.chrom, c.start, min(c.end, keep)) for c in run.contigs if c.start < keep]
                plan = plan_tiles(spans, fam.geometry, stride=fam.plan.stride, chroms=list(run.chrom_sizes))
            catalog = load_catalog()
            quanta = np.array([catalog.track("elements", ch).quantum for ch in fam.channels])
            fp32_settings = dataclasses.replace(fam.settings, precision="fp32")
            fp32 = get_family("elements").load(fp32_settings, fam.geometry, device)
            naive_dir = scratch / "naive"
            naive_dir.mkdir()
            t0 = time.perf_counter()
            naive(fp32.model, run.genome, plan, naive_dir, list(fam.channels), quanta, device)
            t_naive = time.perf_counter() - t0
            rows.append(("naive (fp32, eager, per window)", t_naive, plan.bases_scored))
            ours = pyBigWig.open(str(scratch / "hub" / "synthetic" / "bw" / "elements_exon.bw"))
            theirs = pyBigWig.open(str(naive_dir / "exon.bw"))
            n = min(plan.bases_scored, int(ours.chroms("chrS")))
            a = np.array(ours.values("chrS", 0, n), dtype=np.float64)
            b = np.array(theirs.values("chrS", 0, n), dtype=np.float64)
            both = ~np.isnan(a) & ~np.isnan(b)
            figures["max_abs_diff_vs_naive"] = float(np.abs(a[both] - b[both]).max()) if both.any() else None
        print(f"{'run':36s} {'seconds':>9s} {'bases/s':>12s} {'vs naive':>9s}")
        naive_rate = rows[-1][2] / rows[-1][1] if not args.skip_naive else None
        for name, t, n in rows:
            rate = n / t
            ratio = f"{rate / naive_rate:8.2f}x" if naive_rate else f"{'-':>9s}"
            print(f"{name:36s} {t:9.2f} {rate:12,.0f} {ratio}")
            figures[name] = {"seconds": round(t, 3), "bases_per_s": round(rate)}
        figures["e2e_over_model_only"] = round(t_model / t_e2e, 3)
        print(f"end to end at {t_model / t_e2e:.0%} of model-only throughput (GPU busy fraction at least that)")
        print(f"writers finishing after the last shard: {tail[0]:.2f} s of the {t_e2e:.2f} s end to end "
              "(the device idles meanwhile)")
        if device.type == "cuda":
            mfu = flops / t_model / PEAK_BF16
            figures["mfu"] = round(mfu, 4)
            print(f"model FLOPs {flops:.3g}: MFU {mfu:.1%} of the {PEAK_BF16 / 1e12:.0f} TFLOP/s bf16 peak")
        if "max_abs_diff_vs_naive" in figures:
            print(f"bigWig exon track, nttracks vs naive: max |diff| {figures['max_abs_diff_vs_naive']}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
