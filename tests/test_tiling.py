"""Tiling plan: hand examples and Hypothesis properties over random contigs and geometries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nttracks.bases import Geometry
from nttracks.errors import ConfigError
from nttracks.tiling import TilePlan, plan_tiles, resolve_stride

GEOMETRY = Geometry(window=1200, multiple=24, min_length=48, grid=6)


# ----------------------------------------------------------------------------- hand examples


def test_long_contig_exact_starts() -> None:
    plan = plan_tiles([("chr1", 0, 10_000)], GEOMETRY, stride=600)
    # arange(0, 8801, 600) = 0..8400, then the end-aligned window at floor(8800 / 6) * 6 = 8796.
    expected = [*range(0, 8401, 600), 8796]
    assert plan.start.tolist() == expected
    assert plan.end.tolist() == [s + 1200 for s in expected]
    assert plan.scored_end.tolist() == [9996]
    assert plan.bases_scored == 9996 and plan.bases_unscored == 4
    assert plan.overlap == 600 and plan.n_windows == 16
    # Nearest-centre boundaries: midpoint of neighbouring centres.
    assert plan.keep_start[0] == 0 and plan.keep_end[-1] == 9996
    assert plan.keep_end[0] == 900 and plan.keep_start[1] == 900
    assert plan.keep_end[-2] == (8400 + 9600 + 8796 + 9996) // 4 == 9198
    assert plan.new_bases.tolist() == [1200] + [600] * 14 + [9996 - 9600]


def test_contig_offset_and_exact_fit() -> None:
    plan = plan_tiles([("chr2", 1_003, 1_003 + 2_400)], GEOMETRY, stride=600)
    assert plan.start.tolist() == [1003, 1603, 2203]
    assert plan.scored_end.tolist() == [3403]
    assert plan.bases_unscored == 0


def test_short_and_too_short_contigs() -> None:
    contigs = [("chrA", 0, 1000), ("chrA", 2000, 2047), ("chrB", 5, 53), ("chrB", 100, 1299)]
    plan = plan_tiles(contigs, GEOMETRY, stride=600)
    assert plan.chroms == ("chrA", "chrB")
    assert plan.contig_chrom.tolist() == [0, 0, 1, 1]
    # 1000 -> 984 (41 * 24); 47 < 48 -> nothing; 48 -> 48; 1199 -> 1176.
    assert plan.start.tolist() == [0, 5, 100]
    assert plan.end.tolist() == [984, 53, 1276]
    assert plan.contig.tolist() == [0, 2, 3]
    assert plan.chrom.tolist() == [0, 1, 1]
    assert plan.scored_end.tolist() == [984, 2000, 53, 1276]
    assert plan.bases_unscored == 16 + 47 + 0 + 23
    assert plan.keep_start.tolist() == plan.start.tolist()
    assert plan.keep_end.tolist() == plan.end.tolist()


def test_explicit_chrom_order_and_empty_plan() -> None:
    plan = plan_tiles([("chrB", 0, 10)], GEOMETRY, stride=600, chroms=["chrA", "chrB"])
    assert plan.chroms == ("chrA", "chrB")
    assert plan.contig_chrom.tolist() == [1]
    assert plan.n_windows == 0 and plan.bases_scored == 0 and plan.bases_unscored == 10
    empty = plan_tiles([], GEOMETRY, stride=600)
    assert empty.n_windows == 0 and empty.chroms == ()


@pytest.mark.parametrize(("overlap", "stride"), [(None, 600), (0, 1200), (600, 600), (1000, 198), (1199, 6)])
def test_resolve_stride(overlap: int | None, stride: int) -> None:
    assert resolve_stride(GEOMETRY, overlap) == stride


@pytest.mark.parametrize("overlap", [-1, 1200, 5000])
def test_resolve_stride_rejects(overlap: int) -> None:
    with pytest.raises(ConfigError, match=str(overlap)):
        resolve_stride(GEOMETRY, overlap)


@pytest.mark.parametrize("stride", [0, 5, 1206, -6])
def test_plan_rejects_bad_stride(stride: int) -> None:
    with pytest.raises(ConfigError, match="stride"):
        plan_tiles([("chr1", 0, 5000)], GEOMETRY, stride=stride)


# ----------------------------------------------------------------------------- properties


@st.composite
def geometries(draw: st.DrawFn) -> Geometry:
    grid = draw(st.sampled_from([1, 2, 3, 6]))
    multiple = grid * draw(st.integers(1, 4))
    window = multiple * draw(st.integers(1, 12))
    min_length = multiple * draw(st.integers(1, window // multiple))
    return Geometry(window=window, multiple=multiple, min_length=min_length, grid=grid)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], Geometry, int]:
    geometry = draw(geometries())
    stride = geometry.grid * draw(st.integers(1, geometry.window // geometry.grid))
    contigs = []
    for chrom in range(draw(st.integers(0, 3))):
        pos = 0
        for _ in range(draw(st.integers(0, 4))):
            pos += draw(st.integers(0, 50))
            length = draw(st.integers(1, 6 * geometry.window))
            contigs.append((f"chr{chrom}", pos, pos + length))
            pos += length
    return contigs, geometry, stride


def _check_plan(plan: TilePlan, contigs: list[tuple[str, int, int]], geometry: Geometry) -> None:
    g, window = geometry.grid, geometry.window
    lengths = plan.window_lengths()
    assert np.all(lengths % geometry.multiple == 0)
    assert np.all(lengths >= geometry.min_length)
    assert np.all(np.diff(plan.contig) >= 0)
    assert int(plan.new_bases.sum()) == plan.bases_scored
    assert plan.bases_scored + plan.bases_unscored == sum(e - s for _, s, e in contigs)
    for ci, (name, cs, ce) in enumerate(contigs):
        assert plan.chroms[plan.contig_chrom[ci]] == name
        rows = np.flatnonzero(plan.contig == ci)
        starts, ends = plan.start[rows], plan.end[rows]
        scored_end = int(plan.scored_end[ci])
        length = ce - cs
        assert np.all(plan.chrom[rows] == plan.contig_chrom[ci])
        if length < geometry.min_length:
            assert len(rows) == 0 and scored_end == cs
            continue
        assert len(rows) >= 1
        # Inside the contig, on its grid, in increasing order.
        assert np.all(starts >= cs) and np.all(ends <= ce)
        assert np.all((starts - cs) % g == 0)
        assert np.all(np.diff(starts) > 0)
        if length >= window:
            assert np.all(ends - starts == window)
            assert ce - scored_end < g
            assert ce - ends[-1] <= g - 1  # the last window is end-aligned
        else:
            assert len(rows) == 1
            assert ce - scored_end < geometry.multiple
        # Coverage: every base in [cs, scored_end) is in some window, nothing beyond.
        assert starts[0] == cs and ends[-1] == scored_end
        assert np.all(starts[1:] <= ends[:-1])
        covered = np.zeros(length, dtype=np.int64)
        for s, e in zip(starts, ends, strict=True):
            covered[s - cs : e - cs] += 1
        assert np.all(covered[: scored_end - cs] >= 1) and np.all(covered[scored_end - cs :] == 0)
        # Keep intervals partition the scored range and lie inside their windows.
        ks, ke = plan.keep_start[rows], plan.keep_end[rows]
        assert ks[0] == cs and ke[-1] == scored_end
        assert np.array_equal(ks[1:], ke[:-1])
        assert np.all(ke > ks)
        assert np.all(ks >= starts) and np.all(ke <= ends)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_plan_properties(case: tuple[list[tuple[str, int, int]], Geometry, int]) -> None:
    contigs, geometry, stride = case
    plan = plan_tiles(contigs, geometry, stride=stride)
    assert plan.stride == stride and plan.geometry == geometry
    assert len(plan.contig_start) == len(contigs)
    _check_plan(plan, contigs, geometry)


@settings(max_examples=100, deadline=None)
@given(geometries(), st.integers(0, 10_000))
def test_resolve_stride_properties(geometry: Geometry, overlap: int) -> None:
    if overlap >= geometry.window:
        with pytest.raises(ConfigError):
            resolve_stride(geometry, overlap)
        return
    stride = resolve_stride(geometry, overlap)
    assert stride % geometry.grid == 0 and geometry.grid <= stride <= geometry.window
    # The realised overlap is at least the requested one, unless the stride is already minimal.
    assert geometry.window - stride >= overlap or stride == geometry.grid
