"""Stitching kernels: weights, quantization, overlap-add over a contig and seam QC, with known answers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nttracks.bases import Geometry
from nttracks.stitch import MODES, ContigStitcher, array_module, quantize, window_weights
from nttracks.tiling import TilePlan, plan_tiles

GEOMETRY = Geometry(window=120, multiple=24, min_length=48, grid=6)

# ----------------------------------------------------------------------------- weights


@pytest.mark.parametrize("length", [1, 6, 48, 1200, 1201])
def test_taper_positive_symmetric_peaked(length: int) -> None:
    w = window_weights(np, length, "taper")
    assert w.dtype == np.float32 and w.shape == (length,)
    assert np.all(w > 0) and np.all(w <= 1)
    assert np.array_equal(w, w[::-1])
    centre = (length - 1) / 2
    assert np.argmax(w) in (int(np.floor(centre)), int(np.ceil(centre)))
    half = w[: (length + 1) // 2]
    assert np.all(np.diff(half) > 0)


def test_taper_by_hand() -> None:
    w = window_weights(np, 4, "taper")
    assert w.tolist() == [0.25, 0.75, 0.75, 0.25]


def test_nearest_and_mean_weights() -> None:
    assert window_weights(np, 5, "mean").tolist() == [1] * 5
    assert window_weights(np, 6, "nearest", (2, 5)).tolist() == [0, 0, 1, 1, 1, 0]
    assert window_weights(np, 3, "nearest").tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="bogus"):
        window_weights(np, 3, "bogus")


def test_array_module_numpy() -> None:
    assert array_module(np.zeros(3)) is np


# ----------------------------------------------------------------------------- quantize


def test_quantize_per_channel() -> None:
    values = np.array([[0.1234, 0.1234, 0.1234], [0.51, 0.998, -0.26]], dtype=np.float32)
    out = quantize(values, [1 / 255, 0.25, 0])
    assert out.dtype == np.float32
    expected = np.array(
        [[np.float32(31 / 255), 0.0, 0.1234], [np.float32(130 / 255), 1.0, -0.26]], dtype=np.float32
    )
    assert np.array_equal(out, expected)
    assert np.array_equal(out[:, 2], values[:, 2])  # quantum 0: untouched, bit for bit
    # Values on the grid stay there, bit for bit (float32(k / 255), not k * float32(1 / 255)).
    on_grid = (np.arange(-255, 256) / 255).astype(np.float32)[:, None]
    assert np.array_equal(quantize(on_grid, [1 / 255]), on_grid)
    assert np.array_equal(quantize(on_grid + np.float32(0.0015), [1 / 255]), on_grid)
    tenths = (np.arange(50) / 10).astype(np.float32)[:, None]
    assert np.array_equal(quantize(tenths, [0.1]), tenths)


# ----------------------------------------------------------------------------- ContigStitcher


def _weights(plan: TilePlan, i: int, mode: str) -> np.ndarray:
    start, end = int(plan.start[i]), int(plan.end[i])
    keep = (int(plan.keep_start[i]) - start, int(plan.keep_end[i]) - start)
    return window_weights(np, end - start, mode, keep)


def _stitch(
    plan: TilePlan, predict: Callable[[int], np.ndarray], mode: str, channels: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Stitch every contig of the plan; returns per contig the values (scored, channels) and seam QC."""
    results, seams = [], []
    for ci in range(len(plan.contig_start)):
        cs, se = int(plan.contig_start[ci]), int(plan.scored_end[ci])
        stitcher = ContigStitcher(np, cs, se, channels, plan.geometry.window)
        parts, expected_start = [], cs
        for i in np.flatnonzero(plan.contig == ci):
            start, values = stitcher.add(int(plan.start[i]), predict(int(i)), _weights(plan, int(i), mode))
            assert start == expected_start
            expected_start += len(values)
            parts.append(values)
        start, values = stitcher.finish()
        assert start == expected_start and start + len(values) == se
        parts.append(values)
        results.append(np.concatenate(parts))
        seams.append(stitcher.seam_qc())
    return results, seams


CONTIGS = [("chr1", 0, 1000), ("chr1", 1030, 1100), ("chr2", 7, 127), ("chr2", 200, 230)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", [6, 60, 96, 120])
def test_constant_predictions(mode: str, stride: int) -> None:
    plan = plan_tiles(CONTIGS, GEOMETRY, stride=stride)
    const = np.array([0.25, -3.5], dtype=np.float32)

    def predict(i: int) -> np.ndarray:
        return np.tile(const, (int(plan.end[i] - plan.start[i]), 1))

    results, seams = _stitch(plan, predict, mode, 2)
    for ci, values in enumerate(results):
        assert values.shape == (plan.scored_end[ci] - plan.contig_start[ci], 2)
        np.testing.assert_allclose(values, np.broadcast_to(const, values.shape), rtol=1e-6)
    for seam in seams:
        assert np.array_equal(seam, [0, 0])


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(MODES),
    st.integers(1, 20).map(lambda k: 6 * k),
    st.lists(st.integers(1, 700), min_size=1, max_size=4),
    st.integers(0, 2**32 - 1),
)
def test_truth_recovered(mode: str, stride: int, lengths: list[int], seed: int) -> None:
    """Windows that each report the truth over their span stitch back to the truth."""
    contigs, pos = [], 0
    for length in lengths:
        contigs.append(("chr1", pos + 5, pos + 5 + length))
        pos += 5 + length
    plan = plan_tiles(contigs, GEOMETRY, stride=stride)
    rng = np.random.default_rng(seed)
    truth = (rng.integers(0, 256, size=(pos, 3)) / 255).astype(np.float32)

    def predict(i: int) -> np.ndarray:
        return truth[plan.start[i] : plan.end[i]].copy()

    results, seams = _stitch(plan, predict, mode, 3)
    for ci, values in enumerate(results):
        expected = truth[plan.contig_start[ci] : plan.scored_end[ci]]
        assert values.dtype == np.float32
        assert np.array_equal(values, expected)  # exactly, also in bases covered by one window only
        assert np.array_equal(seams[ci], [0, 0, 0])


@pytest.mark.parametrize("mode", MODES)
def test_disagreeing_windows(mode: str) -> None:
    """Window i predicts the constant i; neighbours disagree by exactly 1 over each overlap."""
    plan = plan_tiles([("chr1", 0, 480)], GEOMETRY, stride=60)
    assert plan.start.tolist() == [0, 60, 120, 180, 240, 300, 360]

    def predict(i: int) -> np.ndarray:
        return np.full((120, 1), i, dtype=np.float32)

    (values,), (seam,) = _stitch(plan, predict, mode, 1)
    assert seam.tolist() == [1.0]
    values = values[:, 0]
    if mode == "nearest":
        # Boundaries at the midpoints of centres: 90, 150, ..., 390.
        expected = np.repeat(np.arange(7), [90, 60, 60, 60, 60, 60, 90])
        assert np.array_equal(values, expected)
    elif mode == "mean":
        expected = np.concatenate([np.zeros(60), np.arange(6).repeat(60) + 0.5, np.full(60, 6)])
        np.testing.assert_allclose(values, expected, rtol=1e-6)
    else:
        assert np.all(values[:60] == 0) and np.all(values[-60:] == 6)  # single windows: as is
        assert np.all(np.diff(values) >= 0)


def test_seam_qc_known_value_per_channel() -> None:
    """WindowPositionModel-like outputs: i/length; neighbours at stride s disagree by s/length."""
    plan = plan_tiles([("chr1", 0, 600)], GEOMETRY, stride=48)
    assert plan.start.tolist() == [0, 48, 96, 144, 192, 240, 288, 336, 384, 432, 480]

    def predict(i: int) -> np.ndarray:
        pos = np.arange(120, dtype=np.float32) / 120
        return np.stack([pos, np.zeros(120, dtype=np.float32)], axis=1)

    _, (seam,) = _stitch(plan, predict, "taper", 2)
    np.testing.assert_allclose(seam, [48 / 120, 0], rtol=1e-6)


def test_overlap_add_by_hand() -> None:
    """Two windows of 8 bp at 0 and 4 with taper weights: the formula over the overlap."""
    w = window_weights(np, 8, "taper")
    assert w.tolist() == [1 / 8, 3 / 8, 5 / 8, 7 / 8, 7 / 8, 5 / 8, 3 / 8, 1 / 8]
    a = np.full((8, 1), 2.0, dtype=np.float32)
    b = np.full((8, 1), 6.0, dtype=np.float32)
    stitcher = ContigStitcher(np, 100, 112, 1, 8)
    start, first = stitcher.add(100, a, w)
    assert start == 100 and first.shape == (0, 1)
    start, second = stitcher.add(104, b, w)
    assert start == 100 and second[:, 0].tolist() == [2, 2, 2, 2]
    start, rest = stitcher.finish()
    assert start == 104
    overlap = (w[4:] * 2 + w[:4] * 6) / (w[4:] + w[:4])
    np.testing.assert_allclose(rest[:4, 0], overlap, rtol=1e-6)
    np.testing.assert_allclose(rest[:4, 0], [2 + 4 * x for x in (1 / 8, 3 / 8, 5 / 8, 7 / 8)], rtol=1e-6)
    assert rest[4:, 0].tolist() == [6, 6, 6, 6]
    assert stitcher.seam_qc().tolist() == [4.0]
    assert stitcher.seam_bases == 4


def test_out_of_order_window_raises() -> None:
    stitcher = ContigStitcher(np, 0, 20, 1, 8)
    w = np.ones(8, dtype=np.float32)
    stitcher.add(0, np.zeros((8, 1), dtype=np.float32), w)
    stitcher.add(6, np.zeros((8, 1), dtype=np.float32), w)
    with pytest.raises(ValueError, match="window at 4"):
        stitcher.add(4, np.zeros((8, 1), dtype=np.float32), w)


def test_holes_raise() -> None:
    w = np.ones(8, dtype=np.float32)
    # A gap between two windows.
    stitcher = ContigStitcher(np, 0, 20, 1, 8)
    stitcher.add(0, np.zeros((8, 1), dtype=np.float32), w)
    with pytest.raises(ValueError, match="base 8 has no stitch weight"):
        stitcher.add(10, np.zeros((8, 1), dtype=np.float32), w)
    # A first window that starts after the contig start.
    stitcher = ContigStitcher(np, 0, 20, 1, 8)
    with pytest.raises(ValueError, match="base 0 has no stitch weight"):
        stitcher.add(2, np.zeros((8, 1), dtype=np.float32), w)
    # Windows that stop short of the scored end.
    stitcher = ContigStitcher(np, 0, 10, 1, 8)
    stitcher.add(0, np.zeros((8, 1), dtype=np.float32), w)
    with pytest.raises(ValueError, match="base 8 has no stitch weight"):
        stitcher.finish()
    # nearest weights that own nothing at a base.
    stitcher = ContigStitcher(np, 0, 8, 1, 8)
    stitcher.add(0, np.zeros((8, 1), dtype=np.float32), window_weights(np, 8, "nearest", (0, 5)))
    with pytest.raises(ValueError, match="base 5 has no stitch weight"):
        stitcher.finish()


def test_window_longer_than_buffer_raises() -> None:
    stitcher = ContigStitcher(np, 0, 20, 1, 8)
    with pytest.raises(ValueError, match="exceeds the stitch buffer"):
        stitcher.add(0, np.zeros((12, 1), dtype=np.float32), np.ones(12, dtype=np.float32))


def test_seam_qc_without_overlap_is_zero() -> None:
    stitcher = ContigStitcher(np, 0, 16, 2, 8)
    w = np.ones(8, dtype=np.float32)
    stitcher.add(0, np.zeros((8, 2), dtype=np.float32), w)
    stitcher.add(8, np.ones((8, 2), dtype=np.float32), w)
    start, values = stitcher.finish()
    assert start == 8 and values.tolist() == [[1, 1]] * 8
    assert stitcher.seam_qc().tolist() == [0, 0] and stitcher.seam_bases == 0
