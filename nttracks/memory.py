"""Batch size from the device's free memory and the model's geometry.

On a GPU the batch is measured, not guessed: one forward pass of one window and one of two windows,
of the longest window length the plan holds, give the fixed cost (weights are already resident) and
the cost of each further window; the batch is the largest that fits in ``HEADROOM`` of the memory
free before the probe, at most ``MAX_BATCH``. A single window that does not fit is a
``DeviceMemoryError`` that says what to change. On the CPU the batch is ``CPU_BATCH``: larger batches
gain nothing there once the matrix products are wide enough.
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import DeviceMemoryError

CPU_BATCH = 8
MAX_BATCH = 64  # beyond this a 30-kb SegmentNT batch gains nothing and the stitch falls behind
HEADROOM = 0.85  # of the free memory: the allocator's fragmentation and the stitch buffers take the rest


def batch_for_memory(free: int, fixed: int, per_window: int, *, cap: int = MAX_BATCH) -> int:
    """The largest batch n with fixed + n * per_window <= HEADROOM * free (bytes), 1 <= n <= cap; 0 when
    not even one window fits."""
    room = HEADROOM * free - fixed
    if room < per_window:
        return 0
    return max(1, min(cap, int(room // max(per_window, 1))))


def auto_batch_size(model: Any, length: int, device: torch.device, *, cap: int = MAX_BATCH) -> int:
    """The batch size for windows of ``length`` bp on ``device`` (see the module docstring)."""
    if device.type != "cuda":
        return min(CPU_BATCH, cap)
    torch.cuda.synchronize(device)
    free, _total = torch.cuda.mem_get_info(device)
    base = torch.cuda.memory_allocated(device)
    peaks = []
    for n in (1, 2):
        codes = torch.randint(0, 4, (n, length), dtype=torch.uint8, device=device)
        torch.cuda.reset_peak_memory_stats(device)
        try:
            with torch.inference_mode():
                model(codes)
            torch.cuda.synchronize(device)
        except torch.cuda.OutOfMemoryError:
            if n == 1:
                raise DeviceMemoryError(_no_room(device, length, free)) from None
            return 1
        finally:
            del codes
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    torch.cuda.empty_cache()
    per_window = max(peaks[1] - peaks[0], 1)
    fixed = max(peaks[0] - per_window, 0)
    n = batch_for_memory(free, fixed, per_window, cap=cap)
    if n == 0:
        raise DeviceMemoryError(_no_room(device, length, free))
    return n


def _no_room(device: torch.device, length: int, free: int) -> str:
    return (
        f"one window of {length:,} bp does not fit in the {free / 2**30:.1f} GiB free on "
        f"{torch.cuda.get_device_name(device)}; use a shorter window (the family's window setting), "
        "precision bf16, or --device cpu"
    )
