"""Inference: a tiling plan and a model -> per-window outputs, batched, on the chosen device.

Shapes are static: full-length windows go in batches of exactly ``batch_size`` (the last one
padded with copies of a real window, whose outputs are dropped), so a compiled or graph-captured
model never sees a new shape. The few windows shorter than the model's window (contigs shorter than
one window) run on their own. A producer thread reads the genome and assembles the next batches
while the device works on the current one. Outputs are yielded in plan order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .errors import UsageError
from .models.base import TrackModel
from .tiling import TilePlan

_DONE = object()


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> the first CUDA device when there is one, else the CPU. Explicit names are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise UsageError(f"--device {name}: only cpu and cuda devices are supported")
    return device


@dataclass(frozen=True)
class Batch:
    """indices: (n_real,) plan rows; codes: (batch, length) uint8, rows past n_real are padding."""

    indices: np.ndarray
    codes: torch.Tensor


def iter_batches(plan: TilePlan, read_codes: Callable[[str], np.ndarray], batch_size: int) -> Iterator[Batch]:
    """Full-length windows in fixed-size batches, in plan order; shorter windows alone.

    A shorter window is yielded as soon as it is read, so it can come before the full-length batch
    still being filled with the windows before it; ``predict_windows`` restores plan order.
    """
    window = plan.geometry.window
    current_chrom = -1
    codes = np.zeros(0, dtype=np.uint8)
    rows: list[int] = []
    for i in range(plan.n_windows):
        chrom = int(plan.chrom[i])
        if chrom != current_chrom:
            codes = read_codes(plan.chroms[chrom])
            current_chrom = chrom
        start, end = int(plan.start[i]), int(plan.end[i])
        if end - start != window:
            yield Batch(np.array([i]), torch.from_numpy(codes[start:end].copy()).unsqueeze(0))
            continue
        rows.append(i)
        if len(rows) == 1:
            block = np.empty((batch_size, window), dtype=np.uint8)
        block[len(rows) - 1] = codes[start:end]
        if len(rows) == batch_size:
            yield Batch(np.array(rows), torch.from_numpy(block))
            rows = []
    if rows:
        block[len(rows) :] = block[0]  # dummies: copies of a real window, outputs dropped
        yield Batch(np.array(rows), torch.from_numpy(block))


def predict_windows(
    model: TrackModel,
    plan: TilePlan,
    read_codes: Callable[[str], np.ndarray],
    *,
    batch_size: int,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
    prefetch: int = 3,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (plan row, output (length, channels) float32 on ``device``) for every window, in plan order.

    read_codes(chrom) returns a whole chromosome's uint8 codes. progress(n) is called with the number
    of newly scored bases after each batch.
    """
    batches: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in iter_batches(plan, read_codes, batch_size):
                codes = batch.codes.pin_memory() if device.type == "cuda" else batch.codes
                if not put(Batch(batch.indices, codes)):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    producer = threading.Thread(target=produce, name="nttracks-batches", daemon=True)
    producer.start()
    pending: dict[int, torch.Tensor] = {}
    next_row = 0
    try:
        with torch.inference_mode():
            while True:
                item = batches.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                out = model(item.codes.to(device, non_blocking=True)).float()
                for k, row in enumerate(item.indices.tolist()):
                    pending[row] = out[k]
                if progress is not None:
                    progress(int(plan.new_bases[item.indices].sum()))
                while next_row in pending:
                    yield next_row, pending.pop(next_row)
                    next_row += 1
    finally:
        stop.set()
        producer.join(timeout=5)
    if next_row != plan.n_windows:
        raise RuntimeError(f"predicted {next_row} of {plan.n_windows} windows")
