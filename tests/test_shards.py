"""Shards: cut on the window grid with their halo, written to compact files and read back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nttracks.errors import OutputError
from nttracks.models.base import Geometry
from nttracks.shards import read_shard, write_shard
from nttracks.stitch import quantize, quantum_counts, quantum_steps
from nttracks.tiling import cut_shards, owned_ranges, plan_tiles

GEOMETRY = Geometry(window=120, multiple=24, min_length=48, grid=6)
CONTIGS = [("c1", 0, 1000), ("c1", 1100, 1150), ("c1", 1200, 1210), ("c2", 5, 700)]


def covering(plan, x: int, chrom: int) -> set[int]:
    """Plan rows whose window holds base x of chromosome ``chrom`` (by brute force)."""
    return {int(r) for r in np.flatnonzero((plan.chrom == chrom) & (plan.start <= x) & (x < plan.end))}


@pytest.mark.parametrize("shard_bases", [1, 7, 200, 10**9])
@pytest.mark.parametrize("stride", [6, 60, 120])
def test_shards_partition_the_scored_bases_and_run_every_covering_window(shard_bases: int, stride: int) -> None:
    plan = plan_tiles(CONTIGS, GEOMETRY, stride=stride, chroms=["c1", "c2"])
    shards = cut_shards(plan, "toy", shard_bases=shard_bases)
    written = np.concatenate([s.writes for s in shards])
    scored = np.stack([plan.contig_chrom, plan.contig_start, plan.scored_end], axis=1)
    scored = scored[scored[:, 2] > scored[:, 1]]
    # together the shards write every scored base once, in genome order
    assert sum(s.bases for s in shards) == plan.bases_scored
    chrom_of = [s.chrom for s in shards for _ in s.writes]
    assert [(c, int(a), int(b)) for c, (a, b) in zip(chrom_of, written, strict=True)] == sorted(
        (c, int(a), int(b)) for c, (a, b) in zip(chrom_of, written, strict=True)
    )
    bases = {(s.chrom, x) for s in shards for a, b in s.writes for x in range(a, b)}
    want = {(plan.chroms[c], x) for c, a, b in scored for x in range(a, b)}
    assert bases == want
    assert [s.index for s in shards] == list(range(len(shards)))
    for s in shards:
        ci = plan.chroms.index(s.chrom)
        rows = set(s.rows.tolist())
        assert s.rows.tolist() == sorted(rows)
        needed = set().union(*(covering(plan, x, ci) for a, b in s.writes for x in range(a, b)))
        assert rows == needed  # every window covering a written base, and no other
        own = s.rows[s.core :]
        assert (plan.start[s.rows[: s.core]] < plan.start[own[0]]).all()
        if shard_bases == 1:
            assert len(own) == 1  # one window per shard
    if shard_bases == 10**9:
        assert [s.chrom for s in shards] == ["c1", "c2"]  # whole chromosomes


def test_owned_ranges_partition_each_contig() -> None:
    plan = plan_tiles(CONTIGS, GEOMETRY, stride=42, chroms=["c1", "c2"])
    own_start, own_end = owned_ranges(plan)
    for ci in range(len(plan.contig_start)):
        rows = np.flatnonzero(plan.contig == ci)
        if len(rows):
            assert own_start[rows[0]] == plan.contig_start[ci] and own_end[rows[-1]] == plan.scored_end[ci]
            assert (own_start[rows[1:]] == own_end[rows[:-1]]).all()


def test_shards_with_kept_ranges() -> None:
    plan = plan_tiles([("c1", 0, 1000)], GEOMETRY, stride=60)
    keep = {"c1": np.array([[300, 310], [700, 900]])}
    shards = cut_shards(plan, "toy", shard_bases=100, keep=keep)
    # windows own 60 bp each: [300, 310) is 10 bases of row 5; then rows 11, 12, 13 own 20 + 60 + 60 of [700, 900)
    assert [s.writes.tolist() for s in shards] == [[[300, 310], [700, 840]], [[840, 900]]]
    assert shards[0].rows.tolist() == [4, 5, 10, 11, 12, 13]  # [240, 360) and [300, 420); [600, 720) ... [780, 900)
    assert shards[1].rows.tolist() == [13, 14, 15] and shards[1].core == 1  # [780, 900) is the halo of [840, 900)
    assert shards[0].core == 1  # [240, 360) reaches into [300, 310), which row 5 owns
    assert cut_shards(plan, "toy", shard_bases=100, keep={"c2": np.array([[0, 10]])}) == ()


def test_shard_size_must_be_positive() -> None:
    from nttracks.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 1"):
        cut_shards(plan_tiles([("c1", 0, 500)], GEOMETRY, stride=60), "toy", shard_bases=0)


# ----------------------------------------------------------------------------- shard files


@given(
    values=st.lists(st.floats(-3, 3, width=32), min_size=1, max_size=40),
    quantum=st.sampled_from([1 / 255, 1 / 6, 1 / 100, 1 / 10000, 0.0]),
)
def test_shard_file_round_trip_equals_quantize(tmp_path_factory: pytest.TempPathFactory, values, quantum) -> None:
    v = np.asarray(values, dtype=np.float32).reshape(-1, 1).repeat(2, axis=1)
    v[:, 1] = np.clip(v[:, 1], 0, 1)
    quanta = np.array([quantum, 1 / 255])
    counts = quantum_counts(v, quantum_steps(quanta))
    counts = np.where(quanta > 0, counts, v)  # an unquantized channel is stored as is
    n = len(v)
    runs = np.array([[10, 10 + n // 2], [50, 50 + n - n // 2]])
    path = tmp_path_factory.mktemp("shard") / "s.shard"
    write_shard(path, family="toy", chrom="chrX", index=3, runs=runs, channels=("a", "b"), quanta=quanta, counts=counts)
    back = read_shard(path)
    assert (back.family, back.chrom, back.index, back.channels) == ("toy", "chrX", 3, ("a", "b"))
    np.testing.assert_array_equal(back.runs, runs)
    np.testing.assert_array_equal(back.values, quantize(v, quanta))  # bit for bit
    assert [s for s, _ in back.pieces()] == [10, 50]


def test_probabilities_are_stored_one_byte_per_value(tmp_path: Path) -> None:
    v = np.linspace(0, 1, 1000, dtype=np.float32).reshape(-1, 1)
    quanta = np.array([1 / 255])
    path = write_shard(tmp_path / "p.shard", family="f", chrom="c", index=0, runs=np.array([[0, 1000]]),
                       channels=("p",), quanta=quanta, counts=quantum_counts(v, quantum_steps(quanta)))
    assert path.stat().st_size < 1000 + 256
    np.testing.assert_array_equal(read_shard(path).values, quantize(v, quanta))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"garbage" + b[7:], "not an nttracks shard file"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:12] + b"x" + b[13:], "corrupt shard header"),
    ],
)
def test_damaged_shard_files_are_named(tmp_path: Path, damage, message: str) -> None:
    quanta = np.array([1 / 255])
    path = write_shard(tmp_path / "d.shard", family="f", chrom="c", index=0, runs=np.array([[0, 4]]),
                       channels=("p",), quanta=quanta, counts=np.zeros((4, 1), dtype=np.float32))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(OutputError, match=message):
        read_shard(path)
    assert not list(tmp_path.glob(".*.part"))
