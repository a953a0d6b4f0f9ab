"""Stitched toy tracks computed by hand, independently of nttracks' tiling and stitching code.

DESIGN.md's rules written out plainly: windows of ``window`` bp every ``stride`` bp from each N-free
contig's start, the last one end-aligned on the 6-mer grid; a contig shorter than a window gets one
window of the longest multiple of 24 that fits (at least 48 bp). Overlap-add with the taper, mean or
nearest-centre weights, normalized by the summed weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

GC = (1, 2)


def windows_of(length: int, window: int, stride: int, grid: int = 6, multiple: int = 24, minimum: int = 48) -> list:
    """[(start, end)] of one contig of ``length`` bp, offsets from the contig start."""
    if length >= window:
        starts = list(range(0, length - window + 1, stride))
        last = (length - window) // grid * grid
        if starts[-1] != last:
            starts.append(last)
        return [(s, s + window) for s in starts]
    if length >= minimum:
        return [(0, length // multiple * multiple)]
    return []


def weights(start: int, end: int, mode: str, keep: tuple[int, int]) -> np.ndarray:
    n = end - start
    i = np.arange(n)
    if mode == "taper":
        return np.minimum(i + 0.5, n - i - 0.5) / (n / 2)
    if mode == "mean":
        return np.ones(n)
    w = np.zeros(n)
    w[keep[0] - start : keep[1] - start] = 1
    return w


def stitch_contig(codes: np.ndarray, wins: list, model: Callable[[np.ndarray], np.ndarray], mode: str) -> np.ndarray:
    """(len(codes), channels) stitched values over one contig's codes; NaN where no window reaches."""
    keeps = []
    for j, (s, e) in enumerate(wins):
        lo = s if j == 0 else (wins[j - 1][0] + wins[j - 1][1] + s + e) // 4
        hi = e if j == len(wins) - 1 else (s + e + wins[j + 1][0] + wins[j + 1][1]) // 4
        keeps.append((lo, hi))
    acc = wsum = None
    for (s, e), keep in zip(wins, keeps, strict=True):
        out = model(codes[s:e])
        if acc is None:
            acc, wsum = np.zeros((len(codes), out.shape[1])), np.zeros(len(codes))
        w = weights(s, e, mode, keep)
        acc[s:e] += w[:, None] * out
        wsum[s:e] += w
    if acc is None:
        return np.full((len(codes), 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum[:, None] > 0, acc / wsum[:, None], np.nan)


def stitch_chrom(genome, chrom: str, model, *, window: int, stride: int, mode: str) -> np.ndarray:
    """(chrom length,) stitched first channel of ``model`` over every contig of ``chrom``; NaN elsewhere."""
    codes = genome.codes(chrom)
    out = np.full(len(codes), np.nan)
    for contig in genome.contigs([chrom]):
        piece = codes[contig.start : contig.end]
        wins = windows_of(len(piece), window, stride)
        if wins:
            out[contig.start : contig.end] = stitch_contig(piece, wins, model, mode)[:, 0]
    return out


def context_gc(codes: np.ndarray, radius: int = 50) -> np.ndarray:
    """The ContextGCModel by hand: GC fraction within ``radius`` bp inside the window."""
    gc = np.isin(codes, GC).astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(gc)])
    i = np.arange(len(codes))
    lo, hi = np.maximum(i - radius, 0), np.minimum(i + radius + 1, len(codes))
    return ((cum[hi] - cum[lo]) / (hi - lo))[:, None]


def window_gc(codes: np.ndarray) -> np.ndarray:
    """The WindowGCModel by hand: one value, the window's GC fraction, over all its bases."""
    return np.full((len(codes), 1), np.isin(codes, GC).mean())


def token_gc(codes: np.ndarray) -> np.ndarray:
    return np.isin(codes, GC).reshape(-1, 6).mean(1).repeat(6)[:, None]
