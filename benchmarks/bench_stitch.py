"""Stitching throughput and memory: nttracks' streaming ContigStitcher vs naive whole-contig accumulators.

    python benchmarks/bench_stitch.py                                  # 20 Mbp, W 1200 and 30000, 5 and 14 ch
    python benchmarks/bench_stitch.py --mbp 100 --window 2048 --channels 14 --repeats 3
    python benchmarks/bench_stitch.py --mode nearest --no-mem

One synthetic contig of ``--mbp`` Mbp is tiled with windows of W bp at stride W/2 (the contig length is
rounded down to a multiple of the stride so every window is full length, as the slicing formulation
needs). Window predictions (W, C) float32 come from a fixed random pool (window i gets pool[i % P]), so
every method reads the same inputs and no method pays for making them, except ``slicing`` which
gathers them into (B, W, C) batches as a model would hand them over.

Methods (same weights, from ``nttracks.stitch.window_weights``):
- stitcher: ``ContigStitcher`` with a one-window buffer, as ``executors.score_shard`` uses it; emitted
  regions are only counted (no copy kept).
- naive:    full-contig (L, C) accumulator and (L,) weight sum, ``acc[s:e] += w * p`` per window, then
  one division (the simplest correct code).
- add.at:   the same with ``np.add.at`` per window, on the first ``--addat-mbp`` Mbp only (it is slow).
- slicing:  engineering.md §4 stride = W/2 formulation, batched: every interior base is covered by
  exactly two windows, out = (p[k-1, S:] w[S:] + p[k, :S] w[:S]) / (w[S:] + w[:S]), computed for
  ``--batch`` windows at a time (taper and mean only).

Every method's output is compared with naive's (max abs diff). Peak memory is the tracemalloc peak
(numpy reports its buffers to tracemalloc) of a second, untimed call of each method (for the stitcher,
the call that checks its output; the add.at run is not measured). Timed calls run without tracemalloc.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from nttracks.stitch import ContigStitcher, window_weights


class Case:
    """One contig tiled with full windows at stride W/2 and a pool of window predictions."""

    def __init__(self, mbp: float, window: int, channels: int, mode: str, seed: int = 0) -> None:
        self.window = window
        self.stride = window // 2
        self.length = int(mbp * 1e6) // self.stride * self.stride
        self.starts = np.arange(0, self.length - window + 1, self.stride, dtype=np.int64)
        self.channels = channels
        self.mode = mode
        per_window = window * channels * 4
        n_pool = int(max(2, min(256, 32e6 // per_window)))
        rng = np.random.default_rng(seed)
        self.pool = rng.random((n_pool, window, channels), dtype=np.float32)
        self.n_pool = n_pool

    def weights(self, i: int) -> np.ndarray:
        if self.mode != "nearest":
            return window_weights(np, self.window, self.mode)
        # nearest: this window owns the bases nearer its centre than its neighbours' (first/last own their ends)
        q = self.window // 4
        lo = 0 if i == 0 else q
        hi = self.window if i == len(self.starts) - 1 else self.window - q
        return window_weights(np, self.window, "nearest", (lo, hi))

    def pred(self, i: int) -> np.ndarray:
        return self.pool[i % self.n_pool]


def run_stitcher(case: Case, check: np.ndarray | None = None) -> float:
    """Stream the contig through ContigStitcher; returns the max abs diff to ``check`` (0 without)."""
    st = ContigStitcher(np, 0, case.length, case.channels, case.window)
    emitted = 0
    worst = 0.0
    w_taper = case.weights(0) if case.mode != "nearest" else None
    for i, s in enumerate(case.starts.tolist()):
        w = w_taper if w_taper is not None else case.weights(i)
        start, values = st.add(s, case.pred(i), w)
        emitted += values.shape[0]
        if check is not None and values.shape[0]:
            worst = max(worst, float(np.abs(values - check[start : start + values.shape[0]]).max()))
    start, values = st.finish()
    emitted += values.shape[0]
    if check is not None and values.shape[0]:
        worst = max(worst, float(np.abs(values - check[start : start + values.shape[0]]).max()))
    assert emitted == case.length, (emitted, case.length)
    return worst


def run_naive(case: Case, limit: int | None = None) -> np.ndarray:
    """Whole-contig accumulator, per-window slice adds, then divide."""
    length = case.length if limit is None else limit
    acc = np.zeros((length, case.channels), dtype=np.float32)
    wsum = np.zeros(length, dtype=np.float32)
    w_taper = case.weights(0) if case.mode != "nearest" else None
    for i, s in enumerate(case.starts.tolist()):
        if s + case.window > length:
            break
        w = w_taper if w_taper is not None else case.weights(i)
        acc[s : s + case.window] += w[:, None] * case.pred(i)
        wsum[s : s + case.window] += w
    acc /= wsum[:, None]
    return acc


def run_addat(case: Case, limit: int) -> np.ndarray:
    """Whole-contig accumulator with np.add.at per window (index arrays), then divide."""
    acc = np.zeros((limit, case.channels), dtype=np.float32)
    wsum = np.zeros(limit, dtype=np.float32)
    w_taper = case.weights(0) if case.mode != "nearest" else None
    for i, s in enumerate(case.starts.tolist()):
        if s + case.window > limit:
            break
        w = w_taper if w_taper is not None else case.weights(i)
        idx = np.arange(s, s + case.window)
        np.add.at(acc, idx, w[:, None] * case.pred(i))
        np.add.at(wsum, idx, w)
    acc /= wsum[:, None]
    return acc


def run_slicing(case: Case, batch: int) -> np.ndarray:
    """engineering.md §4: stride = W/2 overlap-add by slicing, ``batch`` windows at a time."""
    S, n, C = case.stride, len(case.starts), case.channels
    w = case.weights(0)
    wa, wb = w[S:, None], w[:S, None]  # tail weights of window k-1, head weights of window k
    denom = w[S:] + w[:S]
    out = np.empty((case.length, C), dtype=np.float32)
    idx_all = np.arange(n) % case.n_pool
    prev_tail = None
    for b0 in range(0, n, batch):
        p = case.pool[idx_all[b0 : b0 + batch]]  # (B, W, C): a model's output batch
        if b0 == 0:
            out[:S] = p[0, :S] * wb / w[:S, None]  # one window only: (w p) / w, as the accumulators do
        tails = p[:, S:] * wa  # (B, S, C)
        heads = p[:, :S] * wb
        # bases [k S, (k + 1) S) for window k >= 1 take the tail of window k-1 plus the head of window k
        if b0 > 0:
            out[b0 * S : (b0 + 1) * S] = (prev_tail + heads[0]) / denom[:, None]
        inner = (tails[:-1] + heads[1:]) / denom[None, :, None]  # windows b0+1 .. b0+B-1
        out[(b0 + 1) * S : (b0 + len(p)) * S] = inner.reshape(-1, C)
        prev_tail = tails[-1]
    out[n * S :] = case.pool[(n - 1) % case.n_pool][S:] * wa / w[S:, None]
    return out


def peak_mib(fn):
    """(tracemalloc peak MiB of fn() above what was allocated before, fn's result)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20, result


def best_time(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench(case: Case, args: argparse.Namespace) -> None:
    mbp = case.length / 1e6
    print(
        f"\n== {mbp:.1f} Mbp, window {case.window}, stride {case.stride}, {case.channels} ch, {args.mode}: "
        f"{len(case.starts):,} windows =="
    )
    rows = []
    mems = {}
    t_nv, ref = best_time(lambda: run_naive(case), args.repeats)
    t_st, _ = best_time(lambda: run_stitcher(case), args.repeats)
    # untimed second call: output check against naive, and its tracemalloc peak (ref already allocated)
    mems["stitcher (nttracks)"], diff_st = peak_mib(lambda: run_stitcher(case, check=ref))
    rows.append(("stitcher (nttracks)", t_st, mbp, diff_st))
    rows.append(("naive slices, full contig", t_nv, mbp, 0.0))
    addat_len = min(case.length, int(args.addat_mbp * 1e6) // case.stride * case.stride)
    if addat_len >= case.window:
        t_at, res = best_time(lambda: run_addat(case, addat_len), 1)
        last = int(case.starts[case.starts + case.window <= addat_len][-1]) + case.stride  # fully covered
        diff_at = float(np.abs(res[:last] - ref[:last]).max())
        rows.append((f"naive np.add.at ({addat_len / 1e6:.1f} Mbp)", t_at, addat_len / 1e6, diff_at))
        del res
    slicing = f"slicing W/2, batch {args.batch}"
    if args.mode != "nearest":
        t_sl, res = best_time(lambda: run_slicing(case, args.batch), args.repeats)
        rows.append((slicing, t_sl, mbp, float(np.abs(res - ref).max())))
        del res
    ref = None  # free the full-contig reference before the memory passes
    if not args.no_mem:
        mems["naive slices, full contig"] = peak_mib(lambda: run_naive(case))[0]
        if args.mode != "nearest":
            mems[slicing] = peak_mib(lambda: run_slicing(case, args.batch))[0]
    base_rate = mbp / t_nv
    print(f"{'method':34s} {'seconds':>8s} {'Mbp/s':>8s} {'vs naive':>9s} {'peak MiB':>9s} {'max|diff|':>10s}")
    for name, t, m, diff in rows:
        mem = f"{mems[name]:9.1f}" if name in mems else f"{'-':>9s}"
        print(f"{name:34s} {t:8.3f} {m / t:8.1f} {m / t / base_rate:8.2f}x {mem} {diff:10.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=20.0, help="contig length in Mbp (default 20)")
    ap.add_argument("--window", type=int, nargs="+", default=[1200, 30000], help="window lengths (bp, even)")
    ap.add_argument("--channels", type=int, nargs="+", default=[5, 14])
    ap.add_argument("--mode", choices=("taper", "mean", "nearest"), default="taper")
    ap.add_argument("--batch", type=int, default=8, help="windows per batch for the slicing method")
    ap.add_argument("--addat-mbp", type=float, default=1.0, help="Mbp run through the np.add.at baseline")
    ap.add_argument("--repeats", type=int, default=1, help="timed calls per method (best is shown)")
    ap.add_argument("--no-mem", action="store_true", help="skip the tracemalloc peak-memory pass")
    args = ap.parse_args()
    print(f"numpy {np.__version__}; ratio column = Mbp/s relative to the naive full-contig accumulator")
    for window in args.window:
        for channels in args.channels:
            bench(Case(args.mbp, window, channels, args.mode), args)


if __name__ == "__main__":
    main()
