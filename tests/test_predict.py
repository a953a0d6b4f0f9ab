"""Inference loop: batching, plan order, batch-size invariance, errors, devices (toy models, tiny genomes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nttracks.errors import UsageError
from nttracks.models.base import Geometry
from nttracks.models.toy import BaseIdentityModel, WindowPositionModel
from nttracks.predict import iter_batches, predict, predict_windows, resolve_device, tile_windows
from nttracks.tiling import TilePlan, plan_tiles

GEOMETRY = Geometry(window=96, multiple=24, min_length=48, grid=6)
CPU = torch.device("cpu")


def _genome(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.integers(0, 4, size=n).astype(np.uint8) for name, n in [("chr1", 700), ("chr2", 400)]}


GENOME = _genome()
# Long contigs, a short one in the middle of a chromosome (one window of 72 bp), one too short for any.
CONTIGS = [("chr1", 0, 300), ("chr1", 310, 385), ("chr1", 400, 700), ("chr2", 3, 40), ("chr2", 50, 397)]


def _plan(stride: int = 48) -> TilePlan:
    return plan_tiles(CONTIGS, GEOMETRY, stride=stride)


def _expected(codes: np.ndarray) -> np.ndarray:
    """One-hot A..T and the GC fraction of each 6-mer (by hand, in NumPy)."""
    onehot = np.eye(5, dtype=np.float32)[codes][:, :4]
    gc = np.isin(codes, (1, 2)).astype(np.float32).reshape(-1, 6).mean(1).repeat(6)
    return np.concatenate([onehot, gc[:, None]], axis=1)


def test_plan_has_short_windows() -> None:
    plan = _plan()
    lengths = plan.window_lengths()
    assert sorted(set(lengths.tolist())) == [72, 96]
    assert plan.chrom[lengths == 72].tolist() == [0]


# ----------------------------------------------------------------------------- iter_batches


@pytest.mark.parametrize("batch_size", [1, 3, 4, 100])
def test_iter_batches(batch_size: int) -> None:
    plan = _plan()
    reads: list[str] = []

    def read_codes(chrom: str) -> np.ndarray:
        reads.append(chrom)
        return GENOME[chrom]

    batches = list(iter_batches(tile_windows(plan, read_codes), batch_size))
    assert reads == ["chr1", "chr2"]  # each chromosome read once
    rows = np.concatenate([b.keys for b in batches])
    assert sorted(rows.tolist()) == list(range(plan.n_windows))  # every window exactly once
    assert sorted(np.concatenate([b.seqs for b in batches]).tolist()) == list(range(plan.n_windows))
    full_rows, full_batches = [], 0
    for batch in batches:
        assert batch.codes.dtype == torch.uint8
        lengths = set(plan.window_lengths()[batch.keys].tolist())
        assert len(lengths) == 1  # one length per batch
        length = lengths.pop()
        assert batch.codes.shape == (batch_size, length)  # static shape, short windows too, padded when needed
        padding = batch.codes[len(batch.keys) :]
        assert all(torch.equal(row, batch.codes[0]) for row in padding)
        if length == 96:
            full_rows.extend(batch.keys)
            full_batches += len(batch.keys) == batch_size
        for k, i in enumerate(batch.keys):
            chrom = plan.chroms[plan.chrom[i]]
            assert np.array_equal(batch.codes[k].numpy(), GENOME[chrom][plan.start[i] : plan.end[i]])
    assert full_rows == sorted(full_rows)  # full-length windows go in plan order
    n_full = int((plan.window_lengths() == 96).sum())
    assert full_batches == n_full // batch_size  # only the last full-length batch is padded


def test_short_windows_are_batched_by_length_and_come_back_in_order() -> None:
    """Windows of three lengths interleaved: each length gets full static batches; outputs in input order."""
    rng = np.random.default_rng(3)
    lengths = [96, 72, 96, 48, 72, 96, 48, 48, 72, 96, 96, 72]
    windows = [(f"w{i}", rng.integers(0, 4, size=n).astype(np.uint8)) for i, n in enumerate(lengths)]
    batches = list(iter_batches(iter(windows), 2, lag=100))
    shapes = sorted(tuple(b.codes.shape) for b in batches)
    assert shapes == [(2, 48), (2, 48), (2, 72), (2, 72), (2, 96), (2, 96), (2, 96)]
    model = BaseIdentityModel(Geometry(window=96, multiple=24, min_length=48, grid=6))
    out = list(predict(model, iter(windows), batch_size=2, device=CPU))
    assert [key for key, _ in out] == [key for key, _ in windows]
    for (_, codes), (_, values) in zip(windows, out, strict=True):
        assert np.array_equal(values.numpy(), _expected(codes))


def test_a_stale_partial_batch_is_sent_after_lag_windows() -> None:
    windows = [("short", np.zeros(48, dtype=np.uint8))] + [(i, np.zeros(96, dtype=np.uint8)) for i in range(9)]
    batches = list(iter_batches(iter(windows), 4, lag=5))
    # the lone 48-bp window goes out padded once 5 later windows have arrived, not at the very end
    assert [b.keys for b in batches] == [[0, 1, 2, 3], ["short"], [4, 5, 6, 7], [8]]


# ----------------------------------------------------------------------------- predict_windows


def _run(plan: TilePlan, batch_size: int, model: torch.nn.Module | None = None, **kw: object) -> list:
    model = model or BaseIdentityModel(GEOMETRY)
    return list(predict_windows(model, plan, GENOME.__getitem__, batch_size=batch_size, device=CPU, **kw))


def test_predict_base_identity() -> None:
    plan = _plan()
    out = _run(plan, 3)
    assert [row for row, _ in out] == list(range(plan.n_windows))
    for row, values in out:
        codes = GENOME[plan.chroms[plan.chrom[row]]][plan.start[row] : plan.end[row]]
        assert values.dtype == torch.float32 and values.device.type == "cpu"
        assert values.shape == (len(codes), 5)
        assert np.array_equal(values.numpy(), _expected(codes))


def test_predict_batch_size_invariance() -> None:
    plan = _plan(stride=30)
    runs = [_run(plan, b) for b in (1, 3, 8)]
    for other in runs[1:]:
        assert [r for r, _ in other] == [r for r, _ in runs[0]]
        for (_, a), (_, b) in zip(runs[0], other, strict=True):
            assert torch.equal(a, b)


def test_predict_window_position() -> None:
    plan = _plan()
    for row, values in _run(plan, 4, WindowPositionModel(GEOMETRY)):
        length = int(plan.end[row] - plan.start[row])
        assert torch.equal(values[:, 0], torch.arange(length, dtype=torch.float32) / length)


def test_progress_totals_bases_scored() -> None:
    plan = _plan()
    calls: list[int] = []
    _run(plan, 3, progress=calls.append)
    assert sum(calls) == plan.bases_scored
    assert all(n > 0 for n in calls)


def test_producer_error_reaches_consumer() -> None:
    plan = _plan()

    def read_codes(chrom: str) -> np.ndarray:
        if chrom == "chr2":
            raise OSError("disk went away")
        return GENOME[chrom]

    gen = predict_windows(BaseIdentityModel(GEOMETRY), plan, read_codes, batch_size=2, device=CPU)
    with pytest.raises(OSError, match="disk went away"):
        for _ in gen:
            pass


def test_consumer_stops_early() -> None:
    plan = _plan()
    gen = predict_windows(BaseIdentityModel(GEOMETRY), plan, GENOME.__getitem__, batch_size=1, device=CPU)
    row, _ = next(gen)
    assert row == 0
    gen.close()  # the producer thread is told to stop; nothing hangs


def test_empty_plan() -> None:
    plan = plan_tiles([("chr1", 0, 10)], GEOMETRY, stride=48)
    assert _run(plan, 4) == []


# ----------------------------------------------------------------------------- devices


def test_resolve_device() -> None:
    assert resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected
    with pytest.raises(UsageError, match="not a device"):
        resolve_device("gpu0")
    with pytest.raises(UsageError, match="only cpu and cuda"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_resolve_cuda_without_cuda() -> None:
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device("cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_predict_cuda_matches_cpu() -> None:
    plan = _plan()
    device = resolve_device("cuda")
    assert resolve_device("auto").type == "cuda"
    with pytest.raises(UsageError, match="only"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    model = BaseIdentityModel(GEOMETRY)
    gpu = list(predict_windows(model, plan, GENOME.__getitem__, batch_size=3, device=device))
    cpu = _run(plan, 3)
    assert [r for r, _ in gpu] == [r for r, _ in cpu]
    for (_, a), (_, b) in zip(gpu, cpu, strict=True):
        assert a.device.type == "cuda"
        assert torch.equal(a.cpu(), b)
