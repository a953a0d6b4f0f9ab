"""What a plan will cost: compute time on the chosen device and output size, for ``--dry-run``.

Compute time is the family's forward FLOPs over a sustained rate: on a GPU, an H100's bf16 peak at
the model FLOP utilization fused attention reaches for the NT-500M shape (engineering.md §2); on the
CPU, fp32 at the rate measured here (a full 30-kb SegmentNT window, 8.5 TFLOP, took 57 s on 2 cores:
about 75 GFLOP/s per core). Output size is per scored base per quantized track (engineering.md §1).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from dataclasses import dataclass

H100_BF16_FLOPS = 989e12  # dense bf16 peak
ASSUMED_MFU = 0.4  # engineering.md §2: 40-55% is reachable for the 500M shape with fused attention
CPU_FLOPS_PER_CORE = 75e9  # fp32, measured: SegmentNT 30-kb window, 8.5e12 FLOP in 57 s on 2 cores
BYTES_PER_BASE = (0.9, 2.5)  # per quantized per-base track with zoom levels: sparse ~0.9, dense ~2.5
LONG_RUN = 86_400.0  # seconds: a run longer than a day is warned about before it starts


@dataclass(frozen=True)
class Rate:
    """A device's sustained FLOP rate and how to say it."""

    flops: float
    device: str  # "one H100" / "this machine's 2 CPU cores"
    basis: str  # how the rate was arrived at

    def seconds(self, flops: float) -> float:
        return flops / self.flops


def device_rate(device: str) -> Rate:
    """The rate of ``--device`` (auto, cpu, cuda, cuda:N), without allocating anything on it."""
    kind = device.split(":")[0]
    if kind == "auto":
        import torch

        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        return Rate(
            H100_BF16_FLOPS * ASSUMED_MFU,
            "one H100",
            f"bf16 at {ASSUMED_MFU:.0%} of its {H100_BF16_FLOPS / 1e12:.0f} TFLOP/s peak",
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Rate(
        CPU_FLOPS_PER_CORE * cores,
        f"this machine's {cores} CPU core{'s' * (cores != 1)}",
        f"fp32 at about {CPU_FLOPS_PER_CORE / 1e9:.0f} GFLOP/s per core",
    )


def duration(seconds: float) -> str:
    """A duration as a person says it: 40 s, 12 min, 3.5 h, 2.1 days, 19 weeks."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 14 * 86_400:
        return f"{seconds / 86_400:.1f} days"
    return f"{seconds / 604_800:.0f} weeks"


def size(n: float) -> str:
    """Bytes as a person says them (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def makespan(costs: Sequence[float], workers: int) -> float:
    """The time ``workers`` workers take for jobs of ``costs``, handed out longest first, each to the worker
    that frees up first (as the Ray executor does)."""
    free = [0.0] * max(1, min(workers, len(costs)))
    for cost in sorted(costs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + float(cost))
    return max(free)
