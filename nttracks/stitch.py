"""Stitching: overlapping window predictions -> one value per base, with seam QC.

Array kernels only: nothing here opens files, logs or reads config. The same code runs on NumPy
arrays (CPU) and CuPy arrays (GPU): every function takes the array module from its inputs and uses
only slicing and elementwise operations that both provide.

Overlap-add: each window's prediction is multiplied by a weight per base and added into an
accumulator; the result is the accumulator divided by the summed weights. The weight decides the
mode:
- taper: a triangle peaking at the window centre and positive at its edges, so bases near a
  window's edge (with the least context) count least, and a base covered by one window only (at a
  contig end) takes that window's value as is;
- nearest: 1 on the bases nearer this window's centre than any neighbour's (ChromBPNet-style), 0
  elsewhere;
- mean: 1 everywhere.

Outputs coarser than one base (one value per k bases, or one per window) are first spread over the
bases they cover (``spread``), then stitched with the same weights and normalization.

``ContigStitcher`` streams one contig: windows arrive in increasing start order, and the bases
before the newest window's start are final, so it emits them and keeps a buffer of one window.
Given the quantization steps it emits whole steps instead of values (``normalize_counts``): on a GPU
one fused CuPy kernel divides by the weights, rounds to float32 and to the step, so a shard's bases
leave the device once, as small integers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

MODES = ("taper", "nearest", "mean")


def array_module(a: Any) -> ModuleType:
    """numpy for NumPy arrays, cupy for CuPy arrays."""
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def window_weights(xp: ModuleType, length: int, mode: str, keep: tuple[int, int] | None = None) -> Any:
    """Per-base weights (length,) float32 of a window for stitching ``mode``.

    keep: (lo, hi) offsets within the window of the bases it owns, for ``nearest``.
    """
    if mode == "taper":
        i = xp.arange(length, dtype=xp.float32)
        return xp.minimum(i + 0.5, length - i - 0.5) / xp.float32(length / 2)
    if mode == "mean":
        return xp.ones(length, dtype=xp.float32)
    if mode == "nearest":
        lo, hi = keep if keep is not None else (0, length)
        w = xp.zeros(length, dtype=xp.float32)
        w[lo:hi] = 1
        return w
    raise ValueError(f"unknown stitch mode {mode!r}; expected one of {MODES}")


def spread(values: Any, length: int) -> Any:
    """Outputs (n, channels) of a window of ``length`` bp -> (length, channels): each of the n values
    covers length / n consecutive bases (n == length: per base, returned as is; n == 1: the whole window)."""
    n = values.shape[0]
    if n == length:
        return values
    if n == 0 or length % n:
        raise ValueError(f"{n} output values cannot be spread evenly over a window of {length} bp")
    return array_module(values).repeat(values, length // n, axis=0)


def quantum_steps(quanta: Any, xp: ModuleType = np) -> Any:
    """Steps per unit of each channel (channels,) float32: 1 / quantum (255 for 1/255), 1 where the
    quantum is 0 (a channel left unquantized)."""
    q = xp.asarray(quanta, dtype=xp.float64)
    return xp.where(q > 0, 1 / xp.where(q > 0, q, 1), 1).astype(xp.float32)


def quantize(values: Any, quanta: Any) -> Any:
    """Round each channel of values (n, channels) to a multiple of its quantum (channels,), as float32.

    A quantum of 0 leaves that channel as it is.
    """
    xp = array_module(values)
    q = xp.asarray(quanta, dtype=xp.float64)
    # Steps per unit (255 for 1/255), so the result is k / 255 correctly rounded: multiplying k by
    # float32(1/255) instead would put about half of the grid one ulp off float32(k / 255).
    steps = quantum_steps(q, xp)
    rounded = quantum_counts(values, steps) / steps
    return xp.where(q > 0, rounded, values).astype(xp.float32, copy=False)


def quantum_counts(values: Any, steps: Any) -> Any:
    """values (n, channels) float32 -> the whole number of steps k nearest each (float32): ``quantize``
    is k / steps, so storing k (a small integer) and dividing again gives the same float32 exactly."""
    return array_module(values).rint(values * steps)


def normalize_counts(acc: Any, wsum: Any, steps: Any) -> Any:
    """Accumulated (n, channels) float64 over summed weights (n,) -> whole quantum steps (n, channels)
    float32: ``quantum_counts`` of the float32 stitched values, NaN where no weight fell.

    NumPy: the same operations as stitching then ``quantum_counts``. CuPy: one elementwise kernel doing
    them in the same order and rounding (float64 divide, round to float32, float32 multiply, rint:
    IEEE round-half-even), so both give the same bits.
    """
    xp = array_module(acc)
    if xp is np:
        safe = np.where(wsum > 0, wsum, np.nan)
        return np.rint((acc / safe[:, None]).astype(np.float32) * steps)
    return _cupy_kernels()["normalize_counts"](acc, wsum[:, None], steps)


def overlap_add(acc: Any, wsum: Any, pred: Any, weights: Any) -> None:
    """acc (L, channels) float64 += weights (L,) x pred (L, channels) float32; wsum (L,) += weights,
    in place. NumPy, or one fused CuPy kernel for the products and sums (float32 x float32 is exact in
    float64, so both give the same bits)."""
    xp = array_module(acc)
    if xp is np:
        w = weights.astype(np.float64)
        acc += w[:, None] * pred
        wsum += w
        return
    _cupy_kernels()["overlap_add"](pred, weights[:, None], acc)
    wsum += weights


_KERNELS: dict[str, Any] = {}


def _cupy_kernels() -> dict[str, Any]:
    if not _KERNELS:
        import cupy

        _KERNELS["normalize_counts"] = cupy.ElementwiseKernel(
            "float64 acc, float64 wsum, float32 steps",
            "float32 k",
            "k = wsum > 0 ? rintf(__fmul_rn(__double2float_rn(acc / wsum), steps)) : __int_as_float(0x7fc00000)",
            "nttracks_normalize_counts",
        )
        _KERNELS["overlap_add"] = cupy.ElementwiseKernel(
            "float32 pred, float32 w",
            "float64 acc",
            "acc = acc + (double)w * (double)pred",  # the product is exact: fused or not, one rounding
            "nttracks_overlap_add",
        )
    return _KERNELS


class ContigStitcher:
    """Overlap-add over one contig [start, scored_end) for ``channels`` output channels.

    add(window_start, pred, weights) takes windows in increasing start order and returns the
    region made final by it as (region_start, values (n, channels)); finish() returns the rest.
    With ``steps`` (``quantum_steps``), the regions hold whole quantum steps (``normalize_counts``).
    Seam QC: for each pair of neighbouring windows, the absolute difference of their predictions
    over their overlap is summed per channel (``seam_sum``) with the number of bases (``seam_bases``).

    A base no window gives weight to is an error (a hole in the tiling), unless ``allow_holes``: then it
    comes out NaN, for a caller that keeps only some of the bases (a shard: its halo windows' far
    sides, or the bases between regions, are not written).
    """

    def __init__(
        self,
        xp: ModuleType,
        start: int,
        scored_end: int,
        channels: int,
        buffer: int,
        *,
        allow_holes: bool = False,
        steps: Any = None,
    ) -> None:
        self.xp = xp
        self.allow_holes = allow_holes
        self.steps = None if steps is None else xp.asarray(steps, dtype=xp.float32)
        self.done = start
        self.scored_end = scored_end
        # float64 accumulators: a float32 weight times a float32 value is exact in float64, so a base
        # covered by one window gets that window's value as is, and agreeing windows give it exactly.
        self.acc = xp.zeros((buffer, channels), dtype=xp.float64)
        self.wsum = xp.zeros(buffer, dtype=xp.float64)
        self.seam_sum = xp.zeros(channels, dtype=xp.float64)
        self.seam_bases = 0
        self._prev: tuple[int, Any] | None = None

    def add(self, window_start: int, pred: Any, weights: Any, *, seam: bool = True) -> tuple[int, Any]:
        """pred: (length, channels) float32; weights: (length,). Returns the finished region.

        seam: count this window's disagreement with the previous one in the seam QC (a shard's halo
        windows are counted by the shard that owns them, not again).
        """
        length = pred.shape[0]
        if window_start < self.done:
            raise ValueError(f"window at {window_start} arrives after bases up to {self.done} were emitted")
        if length > self.acc.shape[0]:
            raise ValueError(f"window of {length} bp exceeds the stitch buffer of {self.acc.shape[0]} bp")
        if self._prev is not None and seam:
            prev_start, prev = self._prev
            overlap = prev_start + prev.shape[0] - window_start
            if overlap > 0:
                diff = self.xp.abs(prev[window_start - prev_start :] - pred[:overlap])
                self.seam_sum += diff.sum(axis=0, dtype=self.xp.float64)
                self.seam_bases += overlap
        self._prev = (window_start, pred)
        region = self._emit(window_start - self.done)
        overlap_add(self.acc[:length], self.wsum[:length], pred, weights)
        return region

    def finish(self) -> tuple[int, Any]:
        """Emit everything up to the contig's scored end."""
        self._prev = None
        return self._emit(self.scored_end - self.done)

    def _emit(self, n: int) -> tuple[int, Any]:
        """Emit the first ``n`` buffered bases and shift the buffer by ``n``."""
        start = self.done
        # Every window added lies in the buffer, so bases past its end have no weight either.
        wsum = self.wsum[:n]
        if n > self.acc.shape[0] or (n and not self.allow_holes and bool((wsum <= 0).any())):
            holes = wsum <= 0
            gap = int(self.xp.argmax(holes)) if bool(holes.any()) else self.acc.shape[0]
            raise ValueError(f"base {start + gap} has no stitch weight: the windows leave a hole")
        if self.steps is not None:
            values = normalize_counts(self.acc[:n], wsum, self.steps)
        else:
            if self.allow_holes:
                wsum = self.xp.where(wsum > 0, wsum, self.xp.nan)
            values = (self.acc[:n] / wsum[:, None]).astype(self.xp.float32)
        keep = self.acc.shape[0] - n
        self.acc[:keep] = self.acc[n:].copy()
        self.acc[keep:] = 0
        self.wsum[:keep] = self.wsum[n:].copy()
        self.wsum[keep:] = 0
        self.done += n
        return start, values

    def seam_qc(self) -> Any:
        """Mean absolute disagreement per channel over all overlaps so far (zeros when none)."""
        return self.seam_sum / max(self.seam_bases, 1)
