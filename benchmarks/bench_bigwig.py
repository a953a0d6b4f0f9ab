"""bigWig writing throughput: nttracks' parallel BigWigWriters vs a single-process pyBigWig loop.

    python benchmarks/bench_bigwig.py                          # 10 Mbp (2 chromosomes) x 5 channels
    python benchmarks/bench_bigwig.py --mbp 50 --channels 14 --processes 4
    python benchmarks/bench_bigwig.py --bedgraph               # + a bedGraph (RLE) baseline on channel 0

Signal: per channel a smooth logistic random field (about 200 bp correlation) plus per-base noise, as in
engineering.md §1 "dense", quantized to 1/255 with ``nttracks.stitch.quantize``; held as (n, channels)
float32 per chromosome, the layout the stitcher hands to the writers.

Methods (the pyBigWig ones with its default 10 zoom levels):
- nttracks: ``BigWigWriters`` (spawned writer processes, channels split among them, each streaming
  through ``bigwigfile.BigWigFile``: fixedStep or bedGraph sections, zooms from 160 bp), fed in
  shard-sized pieces (``planning.SHARD_BASES``) as ``runs`` feeds them from the shard outputs. Also
  shown: the time the producer spends inside ``add()`` (blocked on the bounded queues) and in
  ``close()`` (waiting for the writers).
- naive: pyBigWig in one process, each channel's file after the other, one fixedStep ``addEntries``
  (span 1, step 1) per chromosome.
- bedgraph (``--bedgraph``): channel 0 only, run-length encoded, bedGraph entries (chroms, starts, ends, values).

Check: the files are read back with pyBigWig at ``--samples`` random 10 kb intervals per channel and
compared with the quantized signal (max abs diff, expected 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyBigWig

from nttracks.bigwig import BigWigWriters
from nttracks.planning import SHARD_BASES as FLUSH_BASES
from nttracks.stitch import quantize

MAX_ZOOMS = 10  # pyBigWig's default, for the pyBigWig baselines


def make_signal(n: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """(n, channels) float32 in [0, 1]: logistic of a ~200 bp smooth field plus noise sd 0.01, quantized to 1/255."""
    out = np.empty((n, channels), dtype=np.float32)
    for j in range(channels):
        c = np.cumsum(rng.standard_normal(n + 200), dtype=np.float64)
        field = ((c[200:] - c[:-200]) / np.sqrt(200)).astype(np.float32)  # 200 bp moving sum, sd 1
        out[:, j] = 1 / (1 + np.exp(-2 * field)) + rng.normal(0, 0.01, n).astype(np.float32)
    np.clip(out, 0, 1, out=out)
    return quantize(out, np.full(channels, 1 / 255, dtype=np.float32))


def write_nttracks(paths, sizes, signal, processes) -> dict[str, float]:
    t0 = time.perf_counter()
    writers = BigWigWriters(paths, sizes, processes=processes)
    t_start = time.perf_counter() - t0
    t_add = 0.0
    with writers:
        for chrom, values in signal.items():
            for s in range(0, values.shape[0], FLUSH_BASES):
                a = time.perf_counter()
                writers.add(chrom, s, values[s : s + FLUSH_BASES])
                t_add += time.perf_counter() - a
        t_close0 = time.perf_counter()
    t_close = time.perf_counter() - t_close0
    return {"total": time.perf_counter() - t0, "spawn": t_start, "add": t_add, "close": t_close}


def write_naive(paths, sizes, signal) -> float:
    t0 = time.perf_counter()
    for j, path in enumerate(paths):
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(sizes, maxZooms=MAX_ZOOMS)
        for chrom, values in signal.items():
            bw.addEntries(chrom, 0, values=np.ascontiguousarray(values[:, j]), span=1, step=1)
        bw.close()
    return time.perf_counter() - t0


def write_bedgraph(path, sizes, signal, channel: int) -> float:
    t0 = time.perf_counter()
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(sizes, maxZooms=MAX_ZOOMS)
    for chrom, values in signal.items():
        v = values[:, channel]
        cut = np.flatnonzero(v[1:] != v[:-1]) + 1
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [len(v)]))
        for k in range(0, len(starts), 1_000_000):  # chunks keep the list of chromosome names small
            sl = slice(k, k + 1_000_000)
            n = len(starts[sl])
            bw.addEntries([chrom] * n, starts[sl].tolist(), ends=ends[sl].tolist(), values=v[starts[sl]].tolist())
    bw.close()
    return time.perf_counter() - t0


def check(paths, signal, samples: int, rng: np.random.Generator, channels=None) -> float:
    """Max abs diff between the files and the signal over random 10 kb intervals."""
    worst = 0.0
    chroms = list(signal)
    for j, path in zip(channels or range(len(paths)), paths, strict=True):
        bw = pyBigWig.open(str(path))
        for _ in range(samples):
            chrom = chroms[rng.integers(len(chroms))]
            n = signal[chrom].shape[0]
            s = int(rng.integers(0, n - 10_000))
            got = bw.values(chrom, s, s + 10_000, numpy=True)
            worst = max(worst, float(np.abs(got - signal[chrom][s : s + 10_000, j]).max()))
        bw.close()
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=10.0, help="total signal length in Mbp (default 10)")
    ap.add_argument("--chroms", type=int, default=2, help="chromosomes the signal is split into")
    ap.add_argument("--channels", type=int, default=5)
    ap.add_argument("--processes", type=int, default=None, help="BigWigWriters processes (default: its own)")
    ap.add_argument("--bedgraph", action="store_true", help="also time a bedGraph (RLE) write of channel 0")
    ap.add_argument("--samples", type=int, default=20, help="10 kb intervals read back per channel")
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    total = int(args.mbp * 1e6)
    per = total // args.chroms
    sizes = [(f"chr{i + 1}", per) for i in range(args.chroms)]
    t0 = time.perf_counter()
    signal = {chrom: make_signal(n, args.channels, rng) for chrom, n in sizes}
    mbp = per * args.chroms / 1e6
    print(
        f"{mbp:.1f} Mbp in {args.chroms} chromosomes x {args.channels} channels, quantized to 1/255 "
        f"(signal made in {time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPUs; pyBigWig, maxZooms={MAX_ZOOMS}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench_bigwig_", dir=args.dir))
    try:
        dirs = {name: scratch / name for name in ("nttracks", "naive", "bedgraph")}
        for d in dirs.values():
            d.mkdir()
        paths = {name: [d / f"ch{j}.bw" for j in range(args.channels)] for name, d in dirs.items()}

        nt = write_nttracks(paths["nttracks"], sizes, signal, args.processes)
        t_naive = write_naive(paths["naive"], sizes, signal)
        rows = [("nttracks BigWigWriters", nt["total"], paths["nttracks"], args.channels)]
        rows.append(("naive single process", t_naive, paths["naive"], args.channels))
        if args.bedgraph:
            t_bg = write_bedgraph(paths["bedgraph"][0], sizes, signal, 0)
            rows.append(("bedGraph RLE, channel 0 only", t_bg, paths["bedgraph"][:1], 1))

        n_proc = args.processes or min(args.channels, max(1, os.cpu_count() or 1))
        print(
            f"nttracks: {n_proc} writer processes; spawn {nt['spawn']:.2f} s, producer inside add() "
            f"{nt['add']:.2f} s, close() {nt['close']:.2f} s"
        )
        print(
            f"{'method':30s} {'seconds':>8s} {'ch·Mbp/s':>9s} {'vs naive':>9s} {'MB/channel':>11s} {'max|diff|':>10s}"
        )
        for name, t, files, ch in rows:
            size = sum(p.stat().st_size for p in files) / len(files) / 1e6
            diff = check(files, signal, args.samples, rng)
            rate = mbp * ch / t
            ratio = rate / (mbp * args.channels / t_naive)
            print(f"{name:30s} {t:8.2f} {rate:9.2f} {ratio:8.2f}x {size:11.1f} {diff:10.2e}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
