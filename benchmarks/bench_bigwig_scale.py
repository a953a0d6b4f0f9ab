"""bigWig writing at genome scale: time, peak memory and file size per writer, and read-back checks.

    python benchmarks/bench_bigwig_scale.py                       # 250-Mbp chromosome + smaller ones, 14 channels
    python benchmarks/bench_bigwig_scale.py --mbp 10              # everything scaled down 25x
    python benchmarks/bench_bigwig_scale.py --methods pybigwig --layout today --mbp 5
    python benchmarks/bench_bigwig_scale.py --noise 0.01          # + per-base noise (short runs)

Signal (deterministic, random access, so a reader check can regenerate any interval): per channel, a
baseline of exactly 0 with smooth Gaussian bumps (a few hundred bp to a few kb wide, heights up to 1,
density varying by channel as SegmentNT's element classes do), optional per-base Gaussian noise (sd
``--noise``), clipped to [0, 1] and quantized to 1/255 with ``nttracks.stitch.quantize``. Chromosomes
(genome order): ``--mbp`` Mbp, an unscored one (no entry: it must still be in every header), then
0.24, 0.06 and 0.004 times ``--mbp``; each has an unscored telomere (10 kb) and N gaps (100 kb every 30 Mbp).

Methods (each in a fresh process tree; ``--processes`` writer processes, channels dealt round-robin):
- ``pybigwig``: pyBigWig as nttracks wrote until now: fixedStep entries (span 1, step 1) per
  contiguous scored run, ``maxZooms=10``.
- ``pybigtools``: pybigtools' ``open(path, "w").write(chroms, iterable)`` fed (chrom, start, end, value)
  intervals, equal consecutive values merged into one (``--no-rle``: one interval per base).
- ``nttracks``: ``nttracks.bigwigfile.BigWigFile``, the streaming writer nttracks uses now.
- ``none``: the signal is generated and dropped (what the methods' times include for it).

``--layout today`` keeps all of a process's files open at once and feeds them chunk by chunk, as the
run does (every file's zoom data is held at once); ``--layout serial`` (default) writes one file after
the other in each process, which is what lets pyBigWig run at full size on a small machine at all.

Reported per method: wall time, peak resident memory of the whole process tree (polled from /proc
every 0.2 s) and of its largest process (``ru_maxrss``), file size per channel, and the checks: pyBigWig
and pybbi read ``--samples`` random intervals per file back with values identical to the signal (NaN
where unscored), both list every chromosome in genome order, and their summaries agree with each other
and with the exact statistics (whole-file mean/min/max/coverage from the header; binned means and
maxima over 1-Mbp bins, which come from the zoom levels).

Measured (2026-12, 2 cores shared with other jobs: load 3-4, so times are upper bounds; ``none`` is the
signal generation the times include). Full size, 14 channels, 326 Mbp, serial layout:

    none        74 s                                    0.32 GiB tree
    nttracks   186 s   48 MB/channel   headers ok       0.23 GiB tree, 0.11 GiB largest process
    pybigtools 141 s   39 MB/channel   headers WRONG    0.21 GiB tree (no chrUn_empty in any header)
    pybigwig  1432 s  182 MB/channel   headers ok       7.35 GiB tree, 3.66 GiB largest process

One file, one process, --mbp 40 (52 Mbp): clean nttracks 3.1 s / pybigtools 0.5 s / pybigwig 14.7 s
(net of the signal), 0.08 / 0.08 / 0.58 GiB, 6.8 / 4.3 / 27 MB; --noise 0.01: 10.5 / 25 / 23 s,
44 / 122 / 79 MB. Every file read back identically by pyBigWig and pybbi.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import multiprocessing as mp

import numpy as np

BLOCK = 1 << 20  # noise is drawn per block of this many bases, seeded by its index: random access
CHUNK = 1 << 20  # bases fed to a writer at a time
QUANTUM = 1 / 255


def chrom_sizes(mbp: float) -> list[tuple[str, int]]:
    big = int(mbp * 1e6)
    return [("chr1", big), ("chrUn_empty", 50_000), ("chr2", int(big * 0.24)), ("chr3", int(big * 0.06)),
            ("chrM", max(int(big * 0.004), 20_000))]


def scored_runs(chrom: str, size: int) -> list[tuple[int, int]]:
    """[start, end) runs that carry values: no telomere, no 100-kb gap every 30 Mbp, none on chrUn_empty."""
    if chrom == "chrUn_empty":
        return []
    runs, start = [], 10_000
    for gap in range(30_000_000, size - 100_000, 30_000_000):
        runs.append((start, gap))
        start = gap + 100_000
    runs.append((start, size - 10_000))
    return [(a, b) for a, b in runs if b > a]


class Signal:
    """One channel's quantized values over any interval of the genome."""

    def __init__(self, channel: int, sizes: list[tuple[str, int]], noise: float, seed: int) -> None:
        self.channel, self.noise, self.seed = channel, noise, seed
        density = [1 / 20_000, 1 / 5_000, 1 / 50_000, 1 / 200_000][channel % 4]  # bumps per base
        self.bumps: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for k, (chrom, size) in enumerate(sizes):
            rng = np.random.default_rng([seed, channel, k])
            n = rng.poisson(size * density)
            centre = np.sort(rng.uniform(0, size, n))
            width = rng.uniform(100, 2_000, n)
            height = rng.uniform(0.05, 1.0, n)
            self.bumps[chrom] = (centre, width, height)
        self._index = {c: k for k, (c, _) in enumerate(sizes)}

    def values(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Quantized float32 values of bases [start, end) (as if every base were scored)."""
        from nttracks.stitch import quantize

        x = np.zeros(end - start, dtype=np.float64)
        centre, width, height = self.bumps[chrom]
        lo, hi = np.searchsorted(centre, [start - 8_000, end + 8_000])
        pos = np.arange(start, end, dtype=np.float64)
        for c, w, h in zip(centre[lo:hi], width[lo:hi], height[lo:hi], strict=True):
            a, b = max(int(c - 4 * w), start), min(int(c + 4 * w) + 1, end)
            if a < b:
                sl = slice(a - start, b - start)
                x[sl] += h * np.exp(-0.5 * ((pos[sl] - c) / w) ** 2)
        if self.noise > 0:
            for block in range(start // BLOCK, (end - 1) // BLOCK + 1):
                rng = np.random.default_rng([self.seed, self.channel, self._index[chrom], block, 1])
                eps = rng.normal(0, self.noise, BLOCK)
                a, b = max(block * BLOCK, start), min((block + 1) * BLOCK, end)
                x[a - start : b - start] += eps[a - block * BLOCK : b - block * BLOCK]
        np.clip(x, 0, 1, out=x)
        return quantize(x.astype(np.float32)[:, None], np.array([QUANTUM]))[:, 0]

    def pieces(self, chrom: str, size: int):
        """(start, values) over the scored runs of ``chrom``, at most CHUNK bases each, in order."""
        for a, b in scored_runs(chrom, size):
            for s in range(a, b, CHUNK):
                yield s, self.values(chrom, s, min(s + CHUNK, b))


# ---- writers: each takes (paths, channels, sizes, args) and writes those files -------------------------------


def _groups(paths, signals, layout):
    """The files a process has open at once: all of them (today's layout) or one at a time."""
    pairs = list(zip(paths, signals, strict=True))
    return [pairs] if layout == "today" else [[p] for p in pairs]


def _feed(signals, sizes):
    """(chrom, start, [values of each channel]) in genome order, chunk by chunk."""
    for chrom, size in sizes:
        gens = [s.pieces(chrom, size) for s in signals]
        for parts in zip(*gens, strict=True):
            yield chrom, parts[0][0], [v for _, v in parts]


def write_pybigwig(paths, signals, sizes, args) -> None:
    import pyBigWig

    def opened(path):
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(sizes, maxZooms=10)
        return bw

    groups = _groups(paths, signals, args.layout)
    for group in groups:
        files = [opened(p) for p, _ in group]
        for chrom, start, values in _feed([s for _, s in group], sizes):
            for bw, v in zip(files, values, strict=True):
                bw.addEntries(chrom, start, values=v, span=1, step=1)
        for bw in files:
            bw.close()


def _intervals(signal, sizes, rle: bool):
    for chrom, size in sizes:
        for start, v in signal.pieces(chrom, size):
            if rle:
                cut = np.flatnonzero(v[1:] != v[:-1]) + 1
                starts = np.concatenate(([0], cut))
                ends = np.concatenate((cut, [len(v)]))
            else:
                starts = np.arange(len(v))
                ends = starts + 1
            yield from zip([chrom] * len(starts), (starts + start).tolist(), (ends + start).tolist(),
                           v[starts].astype(np.float64).tolist(), strict=True)


def write_pybigtools(paths, signals, sizes, args) -> None:
    import threading

    import pybigtools

    def one(path, signal):
        pybigtools.open(str(path), "w").write(dict(sizes), _intervals(signal, sizes, not args.no_rle))

    if args.layout == "today":  # every file of the process at once: one thread each (write() blocks)
        threads = [threading.Thread(target=one, args=ps) for ps in zip(paths, signals, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for ps in zip(paths, signals, strict=True):
            one(*ps)


def write_nttracks(paths, signals, sizes, args) -> None:
    from nttracks.bigwigfile import BigWigFile

    groups = _groups(paths, signals, args.layout)
    for group in groups:
        files = [BigWigFile(p, sizes) for p, _ in group]
        for chrom, start, values in _feed([s for _, s in group], sizes):
            for bw, v in zip(files, values, strict=True):
                bw.add(chrom, start, v)
        for bw in files:
            bw.close()


def write_none(paths, signals, sizes, args) -> None:
    for _ in _feed(signals, sizes):
        pass


WRITERS = {"pybigwig": write_pybigwig, "pybigtools": write_pybigtools, "nttracks": write_nttracks, "none": write_none}


def _process(method, paths, channels, sizes, args) -> dict:
    t0 = time.perf_counter()
    signals = [Signal(j, sizes, args.noise, args.seed) for j in channels]
    WRITERS[method](paths, signals, sizes, args)
    return {"seconds": time.perf_counter() - t0, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_method(args) -> None:
    """(In the method's own process.) Write every channel with --processes writer processes."""
    sizes = chrom_sizes(args.mbp)
    out = Path(args.out)
    groups = [list(range(args.channels))[i :: args.processes] for i in range(args.processes)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(len(groups), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_process, args.method, [str(out / f"ch{j}.bw") for j in g], g, sizes, args)
                   for g in groups]
        workers = [f.result() for f in futures]
    print(json.dumps({"wall": time.perf_counter() - t0, "workers": workers}))


# ---- the parent: run each method in a fresh process tree and watch its memory ---------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(method: str, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--_method", method, "--_out", str(out), "--mbp", str(args.mbp),
           "--channels", str(args.channels), "--processes", str(args.processes), "--noise", str(args.noise),
           "--seed", str(args.seed), "--layout", args.layout] + (["--no-rle"] if args.no_rle else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.2)
    stdout = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_mb"] = peak / 2**20
    return result


def check(files: list[Path], sizes, args, rng) -> dict:
    """Both readers against the signal and against each other."""
    import bbi
    import pyBigWig

    worst_value = 0.0
    stat_diff_readers = 0.0
    stat_diff_exact = 0.0
    header_ok = True
    expected_order = [c for c, _ in sizes]
    for j, path in enumerate(files):
        signal = Signal(j, sizes, args.noise, args.seed)
        with pyBigWig.open(str(path)) as bw:
            header_ok &= list(bw.chroms()) == expected_order and list(bw.chroms().values()) == [n for _, n in sizes]
            header_ok &= list(bbi.chromsizes(str(path))) == expected_order
            info = bbi.info(str(path))["summary"]
            covered = sum(b - a for c, n in sizes for a, b in scored_runs(c, n))
            header_ok &= info["basesCovered"] == covered == bw.header()["nBasesCovered"]
            for _ in range(args.samples):
                chrom, size = sizes[int(rng.integers(len(sizes)))]
                a = int(rng.integers(0, max(size - 20_000, 1)))
                b = min(a + int(rng.integers(1, 20_000)), size)
                expected = np.full(b - a, np.nan, dtype=np.float32)
                for ra, rb in scored_runs(chrom, size):
                    lo, hi = max(ra, a), min(rb, b)
                    if lo < hi:
                        expected[lo - a : hi - a] = signal.values(chrom, lo, hi)
                if chrom not in bw.chroms():  # a header without this chromosome: nothing to read
                    header_ok = False
                    continue
                got = np.asarray(bw.values(chrom, a, b), dtype=np.float32)
                fetched = bbi.fetch(str(path), chrom, a, b, missing=np.nan).astype(np.float32)
                for arr in (got, fetched):
                    if not np.array_equal(np.isnan(arr), np.isnan(expected)):
                        worst_value = np.inf
                    else:
                        ok = ~np.isnan(expected)
                        worst_value = max(worst_value, float(np.abs(arr[ok] - expected[ok]).max(initial=0)))
            # Binned summaries over the big chromosome (1-Mbp bins: these come from the zoom levels).
            chrom, size = sizes[0]
            nb = size // 1_000_000
            end = nb * 1_000_000
            for kind in ("mean", "max"):
                p = np.array(bw.stats(chrom, 0, end, type=kind, nBins=nb), dtype=np.float64)
                q = np.asarray(bbi.fetch(str(path), chrom, 0, end, bins=nb, summary=kind), dtype=np.float64)
                stat_diff_readers = max(stat_diff_readers, float(np.nanmax(np.abs(p - q))))
                if j == 0:  # exact, from the signal itself (costly: one channel)
                    exact = np.full(nb, np.nan)
                    for i in range(nb):
                        lo, hi = i * 1_000_000, (i + 1) * 1_000_000
                        parts = [signal.values(chrom, max(ra, lo), min(rb, hi)) for ra, rb in scored_runs(chrom, size)
                                 if max(ra, lo) < min(rb, hi)]
                        if parts:
                            v = np.concatenate(parts).astype(np.float64)
                            exact[i] = v.mean() if kind == "mean" else v.max()
                    stat_diff_exact = max(stat_diff_exact, float(np.nanmax(np.abs(p - exact))))
    return {"values_max_abs_diff": worst_value, "headers_ok": bool(header_ok),
            "binned_stats_readers_max_diff": stat_diff_readers, "binned_stats_vs_exact_max_diff": stat_diff_exact}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=250.0, help="size of the largest chromosome in Mbp (default 250)")
    ap.add_argument("--channels", type=int, default=14)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--noise", type=float, default=0.0, help="per-base noise sd before quantizing (default 0)")
    ap.add_argument("--methods", default="none,nttracks,pybigtools,pybigwig")
    ap.add_argument("--layout", choices=("serial", "today"), default="serial")
    ap.add_argument("--no-rle", action="store_true", help="pybigtools: one interval per base")
    ap.add_argument("--samples", type=int, default=30, help="random intervals read back per file")
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--_method", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._method:
        args.method, args.out = args._method, args._out
        run_method(args)
        return

    sizes = chrom_sizes(args.mbp)
    total = sum(n for _, n in sizes)
    covered = sum(b - a for c, n in sizes for a, b in scored_runs(c, n))
    print(f"{len(sizes)} chromosomes, {total / 1e6:.1f} Mbp ({covered / 1e6:.1f} scored), "
          f"largest {sizes[0][1] / 1e6:.0f} Mbp; {args.channels} channels, noise sd {args.noise}, "
          f"layout {args.layout}, {args.processes} writer processes, {os.cpu_count()} CPUs", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench_bigwig_scale_", dir=args.dir))
    rng = np.random.default_rng(args.seed + 1)
    try:
        for method in args.methods.split(","):
            out = scratch / method
            out.mkdir()
            r = measure(method, out, args)
            files = [out / f"ch{j}.bw" for j in range(args.channels)]
            line = (f"{method:10s} wall {r['wall']:8.1f} s   tree peak {r['tree_peak_mb'] / 1024:6.2f} GiB   "
                    f"largest process {max(w['maxrss_mb'] for w in r['workers']) / 1024:6.2f} GiB")
            if method != "none":
                mb = [p.stat().st_size / 1e6 for p in files]
                c = check(files, sizes, args, rng)
                line += (f"   {np.mean(mb):7.1f} MB/channel ({min(mb):.1f}-{max(mb):.1f})   values max|diff| "
                         f"{c['values_max_abs_diff']:.1e}   headers {'ok' if c['headers_ok'] else 'WRONG'}   "
                         f"binned stats: readers differ by {c['binned_stats_readers_max_diff']:.1e}, "
                         f"vs exact {c['binned_stats_vs_exact_max_diff']:.1e}")
                shutil.rmtree(out)
            print(line, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
