"""Executors: a family's shards -> stitched, quantized values in the run's work directory.

``score_shard`` is the shard function: read the shard's sequence once, run its windows through the
model (``predict``), spread coarse outputs over their bases, stitch (``stitch.ContigStitcher``), keep
the bases the shard writes, check them for NaN and quantize them. ``LocalExecutor`` loads a family's
model once and scores its shards one after another, on one device, writing each shard's output file
atomically (``shards.write_shard``) and yielding the results in genome order. ``RayExecutor``
(``ray_executor.py``) runs the same shard function on many GPUs; ``make_executor`` picks one for a run.

The executor interface, all an executor sees of a run::

    executor.run(job: FamilyJob, read: ReadCodes, work: Path, progress) -> FamilyScores

``job`` lists the shards to score (only those the run's cache lacks: the decision which shards run is
the caller's, ``runs.py``) and the key of each; the executor writes each shard's output atomically to
``work / job.file_name(shard)`` (``run_shard`` does) and yields a ``ShardResult`` per shard in the
job's order. The file's header keeps the key, the seam QC sums and the seconds it took, so a shard
finished before a crash is reused as it is. ``FamilyScores.digest`` must be the loaded model's
``LoadedModel.digest`` (the run checks it against ``Family.weights_digest``). An executor may expose
``device`` (a torch.device or its name): its type is part of every shard's settings digest.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .bases import Geometry
from .errors import ModelError
from .families import LoadedModel, get_family
from .shards import pack_counts, write_shard
from .stitch import ContigStitcher, array_module, quantum_steps, spread, window_weights
from .tiling import Shard, TilePlan

log = logging.getLogger(__name__)

ReadCodes = Callable[[str, int, int], np.ndarray]
"""read(chrom, start, end) -> uint8 codes of chrom[start:end] (``Genome.codes``)."""


@dataclass(frozen=True, eq=False)
class FamilyJob:
    """What an executor needs to score one family's shards: plain data, so it pickles to a worker."""

    family: str
    settings: Any
    geometry: Geometry
    plan: TilePlan
    channels: tuple[str, ...]
    quanta: np.ndarray  # (channels,) quantization step of each channel
    shards: tuple[Shard, ...]
    keys: Mapping[int, str] = field(default_factory=dict)  # shard index -> fingerprint key

    def file_name(self, shard: Shard) -> str:
        """The name of ``shard``'s output file in the work directory: its key, when it has one."""
        key = self.keys.get(shard.index)
        return f"{key}.shard" if key else f"{shard.name}.shard"


@dataclass(frozen=True, eq=False)
class ShardResult:
    """A scored shard: its output file and its seam QC sums (per channel, over its own windows)."""

    shard: Shard
    path: Path
    seam_sum: np.ndarray
    seam_bases: int


@dataclass(frozen=True, eq=False)
class FamilyScores:
    """A family being scored: its loaded model's digest and label, and the shard results in genome order."""

    digest: str
    label: str
    results: Iterator[ShardResult]


@dataclass(frozen=True, eq=False)
class _Scored:
    runs: np.ndarray
    counts: np.ndarray
    seam_sum: np.ndarray
    seam_bases: int


class LocalExecutor:
    """Scores shards one after another in this process, on ``device`` (a torch.device)."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def run(
        self, job: FamilyJob, read: ReadCodes, work: Path, progress: Callable[[int], Any] | None = None
    ) -> FamilyScores:
        """Load the family's model, then (lazily, as the results are consumed) score every shard."""
        loaded = load_model(job, self.device)

        def results() -> Iterator[ShardResult]:
            for shard in job.shards:
                yield run_shard(loaded.model, job, shard, read, work, self.device, progress)

        return FamilyScores(loaded.digest, loaded.label, results())


def make_executor(request: Any) -> Any:
    """The executor a ``RunRequest`` asks for: a ``LocalExecutor`` on its device, or a ``RayExecutor``."""
    if request.executor == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(
            request.device, address=request.ray_address, workers=request.gpus, shared_fs=request.shared_fs
        )
    from .predict import resolve_device

    return LocalExecutor(resolve_device(request.device))


def load_model(job: FamilyJob, device: Any) -> LoadedModel:
    """The family's model on ``device``, checked to emit the channels the plan expects."""
    loaded = get_family(job.family).load(job.settings, job.geometry, device)
    channels = tuple(loaded.model.channels)
    if channels != job.channels:
        raise ModelError(
            f"the {job.family} model emits channels {', '.join(channels)} but the family declares "
            f"{', '.join(job.channels)}; the checkpoint does not match the family"
        )
    return loaded


def run_shard(
    model: Any,
    job: FamilyJob,
    shard: Shard,
    read: ReadCodes,
    work: Path,
    device: Any,
    progress: Callable[[int], Any] | None = None,
) -> ShardResult:
    """Score ``shard`` and write its output file into ``work`` (``job.file_name``)."""
    t0 = time.perf_counter()
    scored = score_shard(model, job, shard, read, device, progress)
    meta = {
        "key": job.keys.get(shard.index, ""),
        "seam_sum": [float(v) for v in scored.seam_sum],
        "seam_bases": int(scored.seam_bases),
        "seconds": round(time.perf_counter() - t0, 6),
        "built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = write_shard(
        work / job.file_name(shard),
        family=job.family,
        chrom=shard.chrom,
        index=shard.index,
        runs=scored.runs,
        channels=job.channels,
        quanta=job.quanta,
        counts=scored.counts,
        meta=meta,
    )
    return ShardResult(shard, path, scored.seam_sum, scored.seam_bases)


def score_shard(
    model: Any,
    job: FamilyJob,
    shard: Shard,
    read: ReadCodes,
    device: Any,
    progress: Callable[[int], Any] | None = None,
) -> _Scored:
    """Stitched, quantized values of the bases ``shard`` writes: runs (m, 2) and counts (bases, channels)."""
    xp = stitch_module(device)
    with stitch_context(device, xp):
        return _score_shard(model, job, shard, read, device, xp, progress)


def _score_shard(
    model: Any,
    job: FamilyJob,
    shard: Shard,
    read: ReadCodes,
    device: Any,
    xp: Any,
    progress: Callable[[int], Any] | None,
) -> _Scored:
    from .predict import predict

    plan, geometry = job.plan, job.geometry
    rows = shard.rows
    lo, hi = int(plan.start[rows[0]]), int(plan.end[rows].max())
    codes = read(shard.chrom, lo, hi)
    windows = ((int(r), codes[int(plan.start[r]) - lo : int(plan.end[r]) - lo]) for r in rows)
    segment_end = _segment_ends(plan, rows)
    own_from = int(rows[shard.core])
    stitch = job.settings.stitch
    steps = quantum_steps(job.quanta, xp)
    clip = _Clipper(shard, xp, job.quanta, progress)
    taper: dict[int, Any] = {}
    channels = len(job.channels)
    seam_sum, seam_bases = np.zeros(channels), 0
    stitcher: ContigStitcher | None = None
    batch_size = job.settings.batch_size or batch_size_for(model, job, device)
    for row, out in predict(model, windows, batch_size=batch_size, device=device):
        start, end = int(plan.start[row]), int(plan.end[row])
        length = end - start
        if out.shape != (geometry.outputs(length), channels):
            raise ModelError(
                f"the {job.family} model returned {tuple(out.shape)} for a window of {length} bp; "
                f"expected ({geometry.outputs(length)}, {channels})"
            )
        if stitcher is None or row in segment_end:
            if stitcher is not None:
                clip.take(*stitcher.finish())
                seam_sum, seam_bases = seam_sum + _to_numpy(stitcher.seam_sum), seam_bases + stitcher.seam_bases
            stitcher = ContigStitcher(
                xp, start, segment_end.get(row, end), channels, geometry.window, allow_holes=True, steps=steps
            )
        if stitch == "nearest":
            keep = (int(plan.keep_start[row]) - start, int(plan.keep_end[row]) - start)
            weights = window_weights(xp, length, "nearest", keep)
        else:
            if length not in taper:
                taper[length] = window_weights(xp, length, stitch)
            weights = taper[length]
        pred = spread(_to_xp(out, xp), length)
        clip.take(*stitcher.add(start, pred, weights, seam=row >= own_from))
    if stitcher is not None:
        clip.take(*stitcher.finish())
        seam_sum, seam_bases = seam_sum + _to_numpy(stitcher.seam_sum), seam_bases + stitcher.seam_bases
    runs, counts = clip.result()
    return _Scored(runs, counts, seam_sum, seam_bases)


_BATCH_SIZES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def batch_size_for(model: Any, job: FamilyJob, device: Any) -> int:
    """The automatic batch size of a loaded model (``memory.auto_batch_size`` at the family's longest
    window), measured once per model and logged."""
    if model not in _BATCH_SIZES:
        from .memory import auto_batch_size

        longest = int(job.plan.window_lengths().max()) if job.plan.n_windows else job.geometry.window
        probe = getattr(model, "_orig_mod", model)  # a compiled model: measure the module, not new graphs
        _BATCH_SIZES[model] = n = auto_batch_size(probe, longest, device)
        log.info("%s: batch size %d (automatic, %s bp windows on %s)", job.family, n, f"{longest:,}", device)
    return _BATCH_SIZES[model]


def _segment_ends(plan: TilePlan, rows: np.ndarray) -> dict[int, int]:
    """{first row of each stitch segment: the segment's end}. A segment is a run of windows that overlap
    or touch one another on one contig; with --regions a contig may hold several."""
    ends: dict[int, int] = {}
    first, reach, contig = -1, -1, -1
    for r in rows.tolist():
        if plan.contig[r] != contig or plan.start[r] > reach:
            if first >= 0:
                ends[first] = reach
            first, contig = r, plan.contig[r]
        reach = int(plan.end[r])  # window ends never decrease within a contig
    if first >= 0:
        ends[first] = reach
    return ends


class _Clipper:
    """Keeps the parts of stitched regions (whole quantum steps, ``ContigStitcher(steps=...)``) that
    the shard writes. On a GPU the parts stay on the device until the shard is done: then one check for
    NaN, one cast to the shard file's integer type and one copy to the host, so scoring a shard never
    waits on the device before its end."""

    def __init__(self, shard: Shard, xp: Any, quanta: np.ndarray, progress: Callable[[int], Any] | None) -> None:
        self.shard = shard
        self.xp = xp
        self.quanta = quanta
        self.progress = progress
        self.starts: list[int] = []
        self.parts: list[Any] = []

    def take(self, start: int, counts: Any) -> None:
        end = start + counts.shape[0]
        writes = self.shard.writes
        first = int(np.searchsorted(writes[:, 1], start, side="right"))
        for a, b in writes[first:].tolist():
            if a >= end:
                break
            a, b = max(a, start), min(b, end)
            self.starts.append(a)
            self.parts.append(counts[a - start : b - start])
            if self.progress is not None:
                self.progress(b - a)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.array([len(p) for p in self.parts], dtype=np.int64)
        if int(lengths.sum()) != self.shard.bases:
            raise RuntimeError(f"shard {self.shard.name}: stitched {int(lengths.sum())} of {self.shard.bases} bases")
        xp = self.xp
        counts = xp.concatenate(self.parts)
        missing = xp.isnan(counts).any(axis=1)
        if bool(missing.any()):
            i = int(xp.argmax(missing))
            j = int(np.searchsorted(np.cumsum(lengths), i, side="right"))
            at = self.starts[j] + i - int(lengths[:j].sum())
            raise ModelError(
                f"no value at {self.shard.chrom}:{at + 1}: the model produced NaN there; check the "
                "checkpoint (and try --device cpu or precision fp32)"
            )
        starts = np.asarray(self.starts, dtype=np.int64)
        ends = starts + lengths
        breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
        runs = np.stack([starts[np.r_[0, breaks]], ends[np.r_[breaks - 1, len(starts) - 1]]], axis=1)
        return runs, _to_numpy(pack_counts(counts, self.quanta))


@contextlib.contextmanager
def stitch_context(device: Any, xp: Any) -> Iterator[None]:
    """CuPy's kernels on the model's GPU and on torch's current stream there, so the stitching queues
    behind the forward pass that produced its inputs (DLPack hands the tensors over without a copy)."""
    if xp is np:
        yield
        return
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    with xp.cuda.Device(index), xp.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        yield


def stitch_module(device: Any) -> Any:
    """CuPy when the model runs on a GPU and CuPy can use it; NumPy otherwise."""
    if getattr(device, "type", "cpu") == "cuda":
        try:
            import cupy

            if cupy.is_available():
                return cupy
        except ImportError:
            pass
    return np


def _to_xp(t: Any, xp: Any) -> Any:
    if xp is np:
        return t.detach().cpu().numpy()
    return xp.from_dlpack(t.detach().contiguous())


def _to_numpy(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else array_module(a).asnumpy(a)
