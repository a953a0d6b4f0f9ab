"""Inference: any windows and a model -> per-window outputs, batched, on the chosen device.

The windows are any iterable of (key, codes): genome tiles (``tile_windows``), variant windows, ...
Shapes are static: windows are grouped by length into batches of exactly ``batch_size`` (a length's
last batch padded with copies of a real window, whose outputs are dropped), so a compiled or
graph-captured model sees one shape per window length, and the short windows of short contigs are
batched too, not run one by one. A producer thread reads the genome and assembles the next batches
while the device works on the current one. Outputs are yielded in input order.

On a GPU nothing here waits for the device: batches are copied from reusable pinned buffers
(``_PinnedPool``; a buffer is refilled only once its copy has completed), a model's input checks
(``check_window``) run on the host batch in the producer thread, and the next batch is launched
before the outputs of the current one are handed on (``lookahead``), so stitching the current batch
queues behind work the device already has. A batch that does not fit in device memory is a
``DeviceMemoryError`` that says what to change, never a bare CUDA crash.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import DeviceMemoryError, UsageError
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
    """keys: the n_real windows' keys; seqs: (n_real,) their positions in the input; codes: (batch,
    length) uint8, rows past n_real are padding (copies of the first window, outputs dropped)."""

    keys: list[Any]
    seqs: np.ndarray
    codes: torch.Tensor


class _Group:
    """Windows of one length waiting for a full batch."""

    def __init__(self, batch_size: int, length: int) -> None:
        self.block = np.empty((batch_size, length), dtype=np.uint8)
        self.keys: list[Any] = []
        self.seqs: list[int] = []

    def add(self, key: Any, seq: int, codes: np.ndarray) -> None:
        self.block[len(self.keys)] = codes
        self.keys.append(key)
        self.seqs.append(seq)

    def batch(self) -> Batch:
        n = len(self.keys)
        self.block[n:] = self.block[0]  # dummies: copies of a real window, outputs dropped
        return Batch(self.keys, np.array(self.seqs), torch.from_numpy(self.block))


def iter_batches(
    windows: Iterable[tuple[Any, np.ndarray]], batch_size: int, *, lag: int | None = None
) -> Iterator[Batch]:
    """(key, codes (length,) uint8) windows -> batches of exactly ``batch_size`` windows of one length.

    Windows of the same length are batched together (static shapes; short windows of short contigs
    too, not one by one); the last batch of a length is padded. A partial batch is sent padded once
    ``lag`` (default 4 x batch_size) later windows have arrived, so outputs can be returned in input
    order with a bounded backlog.
    """
    lag = 4 * batch_size if lag is None else lag
    groups: dict[int, _Group] = {}
    seq = 0
    for key, codes in windows:
        length = len(codes)
        group = groups.get(length)
        if group is None:
            group = groups[length] = _Group(batch_size, length)
        group.add(key, seq, codes)
        seq += 1
        if len(group.keys) == batch_size:
            del groups[length]
            yield group.batch()
        for stale in [n for n, g in groups.items() if seq - g.seqs[0] > lag]:
            yield groups.pop(stale).batch()
    for group in sorted(groups.values(), key=lambda g: g.seqs[0]):
        yield group.batch()


class _PinnedPool:
    """Pinned host buffers, reused: at most ``per_shape`` of each batch shape. A buffer given back
    with the CUDA event of its host-to-device copy is refilled only after that copy has completed."""

    def __init__(self, per_shape: int, stop: threading.Event) -> None:
        self.per_shape = per_shape
        self.stop = stop
        self.ready = threading.Condition()
        self.free: dict[tuple[int, ...], list[tuple[torch.Tensor, Any]]] = {}
        self.made: dict[tuple[int, ...], int] = {}

    def take(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """A pinned uint8 buffer of ``shape`` (None once ``stop`` is set)."""
        with self.ready:
            while not self.free.get(shape) and self.made.get(shape, 0) >= self.per_shape:
                if self.stop.is_set():
                    return None
                self.ready.wait(timeout=0.1)
            if self.free.get(shape):
                buf, copied = self.free[shape].pop()
            else:
                buf, copied = torch.empty(shape, dtype=torch.uint8).pin_memory(), None
                self.made[shape] = self.made.get(shape, 0) + 1
        if copied is not None:
            copied.synchronize()
        return buf

    def give(self, buf: torch.Tensor, copied: Any) -> None:
        with self.ready:
            self.free.setdefault(tuple(buf.shape), []).append((buf, copied))
            self.ready.notify()


def predict(
    model: TrackModel,
    windows: Iterable[tuple[Any, np.ndarray]],
    *,
    batch_size: int,
    device: torch.device,
    prefetch: int = 3,
) -> Iterator[tuple[Any, torch.Tensor]]:
    """Yield (key, output (n_out, channels) float32 on ``device``) for every window, in input order.

    windows: any iterable of (key, codes (length,) uint8): genome tiles, variant windows, ... A
    producer thread assembles the batches (reading the genome, checking them with the model's
    ``check_window`` when it has one, filling pinned buffers on a GPU) while the device works.
    """
    batches: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    cuda = device.type == "cuda"
    pool = _PinnedPool(prefetch + 2, stop) if cuda else None
    check = getattr(model, "check_window", None)

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
            for batch in iter_batches(windows, batch_size):
                if check is not None:
                    check(batch.codes)
                codes = batch.codes
                if pool is not None:
                    pinned = pool.take(tuple(codes.shape))
                    if pinned is None:
                        return
                    codes = pinned.copy_(codes)
                if not put(Batch(batch.keys, batch.seqs, codes)):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    def launch(item: Batch) -> torch.Tensor:
        codes = item.codes.to(device, non_blocking=True)
        if pool is not None:
            copied = torch.cuda.Event()
            copied.record()
            pool.give(item.codes, copied)
        try:
            return model(codes).float()
        except torch.cuda.OutOfMemoryError as exc:
            raise DeviceMemoryError(out_of_memory_message(device, tuple(item.codes.shape))) from exc

    producer = threading.Thread(target=produce, name="nttracks-batches", daemon=True)
    producer.start()
    pending: dict[int, tuple[Any, torch.Tensor]] = {}
    next_seq = 0
    launched: tuple[Batch, torch.Tensor] | None = None  # the batch on the device, not handed on yet
    try:
        with torch.inference_mode():
            while True:
                item = batches.get()
                if isinstance(item, BaseException):
                    raise item
                current = launch(item) if item is not _DONE else None
                if launched is not None:  # the device has the next batch queued while this one is stitched
                    done, out = launched
                    for k, (key, seq) in enumerate(zip(done.keys, done.seqs.tolist(), strict=True)):
                        pending[seq] = (key, out[k])
                    while next_seq in pending:
                        yield pending.pop(next_seq)
                        next_seq += 1
                if current is None:
                    break
                launched = (item, current)
    finally:
        stop.set()
        producer.join(timeout=5)
    if pending:
        raise RuntimeError(f"{len(pending)} window outputs were left out of order")


def out_of_memory_message(device: torch.device, shape: tuple[int, ...]) -> str:
    """What to do when a batch of ``shape`` (windows, bp) does not fit on ``device``."""
    free, total = torch.cuda.mem_get_info(device)
    batch, length = shape
    advice = (
        f"pass a smaller --batch-size (or the family's batch_size) than {batch}"
        if batch > 1
        else "use a shorter window (the family's window setting), precision bf16, or --device cpu"
    )
    name = torch.cuda.get_device_name(device)
    return (
        f"a batch of {batch} window(s) of {length:,} bp does not fit in the memory of {name} "
        f"({free / 2**30:.1f} of {total / 2**30:.1f} GiB free); {advice}"
    )


def tile_windows(
    plan: TilePlan, read_codes: Callable[[str], np.ndarray], rows: Iterable[int] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(plan row, codes) of the plan's windows (``rows``, default all, in plan order).

    read_codes(chrom) returns a whole chromosome's uint8 codes; each chromosome is read once.
    """
    current, codes = -1, np.zeros(0, dtype=np.uint8)
    for row in range(plan.n_windows) if rows is None else rows:
        chrom = int(plan.chrom[row])
        if chrom != current:
            codes, current = read_codes(plan.chroms[chrom]), chrom
        yield int(row), codes[int(plan.start[row]) : int(plan.end[row])]


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
    """Yield (plan row, output) for every window of ``plan``, in plan order (``predict`` over its tiles).

    progress(n) is called with the number of newly scored bases of each window.
    """
    windows = tile_windows(plan, read_codes)
    for row, out in predict(model, windows, batch_size=batch_size, device=device, prefetch=prefetch):
        if progress is not None:
            progress(int(plan.new_bases[row]))
        yield row, out
