"""Tiling: where the model's windows go.

Windows lie inside N-free contigs, start on the model's grid (6 bp: the 6-mer grid of the contig,
so overlapping windows tokenize alike) and step by ``stride``. The last window of a contig is
aligned to the contig end (on the grid), so at most ``grid - 1`` bases at a contig's end go
unscored. A contig shorter than one window gets the longest valid window that fits (a multiple of
the model's ``multiple``); the fewer than ``multiple`` bases left at its end are unscored, and a
contig shorter than the model's minimum is not scored at all.

The plan is plain data: a frozen dataclass of arrays, one row per window, in genome order.

Shards are the unit of work: a shard is one family's windows over a chunk of one chromosome, cut on
the window grid. Each window owns the bases from its start to the next window's start (the last one of
a contig to the contig's scored end); a shard writes the bases its own windows own (restricted to the
bases a run writes, e.g. ``--regions``), and runs its own windows plus, as halo, the earlier windows
that overlap those bases. Every written base is therefore stitched from exactly the windows that
cover it in the whole-genome plan, whatever the shard size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .bases import Geometry
from .errors import ConfigError


@dataclass(frozen=True)
class TilePlan:
    """Windows over a set of contigs.

    chroms: chromosome names; ``contig_chrom`` and ``chrom`` index into it.
    contig_chrom, contig_start, contig_end: (contigs,) the N-free runs tiled.
    scored_end: (contigs,) end of the scored part of each contig (== contig_start when unscored).
    contig, chrom, start, end: (windows,) each window's contig, chromosome and [start, end).
    keep_start, keep_end: (windows,) the bases nearer this window's centre than any neighbour's.
    new_bases: (windows,) bases this window scores that no earlier window did (progress accounting).
    """

    geometry: Geometry
    stride: int
    chroms: tuple[str, ...]
    contig_chrom: np.ndarray
    contig_start: np.ndarray
    contig_end: np.ndarray
    scored_end: np.ndarray
    contig: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    keep_start: np.ndarray
    keep_end: np.ndarray
    new_bases: np.ndarray

    @property
    def n_windows(self) -> int:
        return len(self.start)

    @property
    def bases_scored(self) -> int:
        return int((self.scored_end - self.contig_start).sum())

    @property
    def bases_unscored(self) -> int:
        """Bases inside the tiled contigs that no window covers (contig tails, too-short contigs)."""
        return int((self.contig_end - self.scored_end).sum())

    @property
    def overlap(self) -> int:
        return self.geometry.window - self.stride

    def window_lengths(self) -> np.ndarray:
        return self.end - self.start


def resolve_stride(geometry: Geometry, overlap: int | None) -> int:
    """Stride for the requested overlap: window - overlap, rounded down to the grid (never below it).

    overlap None means half a window.
    """
    window = geometry.window
    if overlap is None:
        overlap = window // 2
    if not 0 <= overlap < window:
        raise ConfigError(
            f"overlap of {overlap} bp must be at least 0 and less than the window ({window} bp)"
        )
    stride = (window - overlap) // geometry.grid * geometry.grid
    return max(stride, geometry.grid)


def plan_tiles(
    contigs: Sequence[tuple[str, int, int]],
    geometry: Geometry,
    *,
    stride: int,
    chroms: Sequence[str] | None = None,
) -> TilePlan:
    """Tile contigs, given as (chrom, start, end) in genome order, with windows of ``geometry.window``.

    ``chroms`` fixes the chromosome index order (default: order of first appearance).
    """
    window = geometry.window
    if stride % geometry.grid or not 0 < stride <= window:
        raise ConfigError(
            f"stride {stride} must be a positive multiple of {geometry.grid} bp, at most {window}"
        )
    names = list(chroms) if chroms is not None else list(dict.fromkeys(c for c, _, _ in contigs))
    index = {name: i for i, name in enumerate(names)}

    c_chrom, c_start, c_end, c_scored = [], [], [], []
    w_contig, w_start, w_end = [], [], []
    for ci, (name, cs, ce) in enumerate(contigs):
        length = ce - cs
        c_chrom.append(index[name])
        c_start.append(cs)
        c_end.append(ce)
        if length >= window:
            starts = np.arange(0, length - window + 1, stride, dtype=np.int64)
            last = (length - window) // geometry.grid * geometry.grid
            if starts[-1] != last:
                starts = np.append(starts, last)
            ends = starts + window
        elif length >= geometry.min_length:
            starts = np.zeros(1, dtype=np.int64)
            ends = starts + length // geometry.multiple * geometry.multiple
        else:
            starts = ends = np.zeros(0, dtype=np.int64)
        c_scored.append(cs + (int(ends[-1]) if len(ends) else 0))
        w_contig.append(np.full(len(starts), ci, dtype=np.int32))
        w_start.append(starts + cs)
        w_end.append(ends + cs)

    contig = _cat(w_contig, np.int32)
    start = _cat(w_start, np.int64)
    end = _cat(w_end, np.int64)
    contig_chrom = np.asarray(c_chrom, dtype=np.int32)
    keep_start, keep_end, new_bases = _ownership(contig, start, end)
    return TilePlan(
        geometry=geometry,
        stride=stride,
        chroms=tuple(names),
        contig_chrom=contig_chrom,
        contig_start=np.asarray(c_start, dtype=np.int64),
        contig_end=np.asarray(c_end, dtype=np.int64),
        scored_end=np.asarray(c_scored, dtype=np.int64),
        contig=contig,
        chrom=contig_chrom[contig] if len(contig) else np.zeros(0, dtype=np.int32),
        start=start,
        end=end,
        keep_start=keep_start,
        keep_end=keep_end,
        new_bases=new_bases,
    )


def _ownership(contig: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nearest-centre ownership intervals and newly covered bases per window.

    Between neighbours j and j+1 of one contig the boundary is the midpoint of their centres,
    floor((s_j + e_j + s_{j+1} + e_{j+1}) / 4), which lies inside both windows when they overlap.
    """
    keep_start = start.copy()
    keep_end = end.copy()
    new_bases = end - start
    if len(start) > 1:
        same = contig[1:] == contig[:-1]
        boundary = (start[:-1] + end[:-1] + start[1:] + end[1:]) // 4
        keep_end[:-1] = np.where(same, boundary, end[:-1])
        keep_start[1:] = np.where(same, boundary, start[1:])
        new_bases[1:] = np.where(same, end[1:] - np.maximum(start[1:], end[:-1]), new_bases[1:])
    return keep_start, keep_end, new_bases


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


@dataclass(frozen=True, eq=False)
class Shard:
    """One family's work over a chunk of one chromosome.

    index: position among the family's shards (genome order).
    rows: (k,) plan rows to run, in plan order: halo windows first, then the shard's own.
    core: rows[core:] are the shard's own windows, rows[:core] its halo.
    writes: (m, 2) [start, end) base ranges this shard writes, in order, disjoint.
    """

    family: str
    index: int
    chrom: str
    rows: np.ndarray
    core: int
    writes: np.ndarray

    @property
    def bases(self) -> int:
        return int((self.writes[:, 1] - self.writes[:, 0]).sum())

    @property
    def name(self) -> str:
        return f"{self.family}-{self.index:06d}-{self.chrom}"


def owned_ranges(plan: TilePlan) -> tuple[np.ndarray, np.ndarray]:
    """(own_start, own_end), (windows,) each: the bases each window owns.

    A window owns [its start, the next window's start) of its contig; the last window of a contig owns up
    to the contig's scored end. Together they partition every contig's scored bases.
    """
    own_start = plan.start.copy()
    own_end = plan.scored_end[plan.contig] if plan.n_windows else plan.end.copy()
    if plan.n_windows > 1:
        same = plan.contig[1:] == plan.contig[:-1]
        own_end[:-1] = np.where(same, plan.start[1:], own_end[:-1])
    return own_start, own_end


def cut_shards(
    plan: TilePlan,
    family: str,
    *,
    shard_bases: int,
    keep: Mapping[str, np.ndarray] | None = None,
) -> tuple[Shard, ...]:
    """Cut ``plan`` into shards of about ``shard_bases`` written bases each (at least one window).

    keep: chromosome -> (k, 2) sorted, disjoint [start, end) ranges of the bases to write (None: every
    scored base). Windows are those of the whole plan, so a written base has its full genomic context.
    """
    if shard_bases < 1:
        raise ConfigError(f"shard size of {shard_bases} bases must be at least 1")
    own_start, own_end = owned_ranges(plan)
    shards: list[Shard] = []
    for ci in range(len(plan.chroms)):
        rows = np.flatnonzero(plan.chrom == ci)
        if not len(rows):
            continue
        chrom = plan.chroms[ci]
        ranges = None if keep is None else keep.get(chrom, np.zeros((0, 2), dtype=np.int64))
        counts = (_kept(own_end[rows], ranges) - _kept(own_start[rows], ranges)).tolist()
        contig = plan.contig[rows]
        first = 0
        while first < len(rows):
            while first < len(rows) and counts[first] == 0:
                first += 1
            if first == len(rows):
                break
            last, total = first, 0
            while last < len(rows) and total < shard_bases:
                total += counts[last]
                last += 1
            # The rows' owned ranges are adjacent within a contig: one hull per contig, then clipped.
            breaks = np.flatnonzero(np.diff(contig[first:last])) + 1
            heads = np.r_[0, breaks] + first
            tails = np.r_[breaks, last - first] + first - 1
            hulls = np.stack([own_start[rows[heads]], own_end[rows[tails]]], axis=1)
            writes = np.concatenate([_clip(int(a), int(b), ranges) for a, b in hulls])
            run, core = _rows_covering(plan, rows, first, last, writes)
            shards.append(Shard(family, len(shards), chrom, run, core, _merge(writes)))
            first = last
    return tuple(shards)


def _kept(x: np.ndarray, ranges: np.ndarray | None) -> np.ndarray:
    """Bases of ``ranges`` (sorted, disjoint; None: every base) before each position of ``x``."""
    if ranges is None:
        return x.astype(np.int64)
    lengths = np.concatenate([[0], np.cumsum(ranges[:, 1] - ranges[:, 0])])
    k = np.searchsorted(ranges[:, 1], x, side="right")  # ranges wholly before x
    partial = np.zeros(len(x), dtype=np.int64)
    inside = k < len(ranges)
    partial[inside] = np.clip(x[inside] - ranges[k[inside], 0], 0, None)
    return lengths[k] + partial


def _clip(start: int, end: int, ranges: np.ndarray | None) -> np.ndarray:
    """[start, end) intersected with sorted disjoint ``ranges`` (None: all), as (k, 2)."""
    if start >= end:
        return np.zeros((0, 2), dtype=np.int64)
    if ranges is None:
        return np.array([[start, end]], dtype=np.int64)
    lo = np.searchsorted(ranges[:, 1], start, side="right")
    hi = np.searchsorted(ranges[:, 0], end, side="left")
    part = ranges[lo:hi].copy()
    if len(part):
        part[0, 0] = max(part[0, 0], start)
        part[-1, 1] = min(part[-1, 1], end)
    return part.astype(np.int64, copy=False)


def _rows_covering(
    plan: TilePlan, rows: np.ndarray, first: int, last: int, writes: np.ndarray
) -> tuple[np.ndarray, int]:
    """The plan rows (among ``rows``, before ``rows[last]``) whose windows overlap ``writes``, and how
    many of them come before ``rows[first]`` (the halo)."""
    lo = first
    contig = plan.contig[rows[first]]
    # Earlier windows of the same contig may reach into the first written base: the halo.
    while lo > 0 and plan.contig[rows[lo - 1]] == contig and plan.end[rows[lo - 1]] > writes[0, 0]:
        lo -= 1
    candidates = rows[lo:last]
    starts, ends = plan.start[candidates], plan.end[candidates]
    # A window overlaps some write range iff the first range ending after its start begins before its end.
    k = np.searchsorted(writes[:, 1], starts, side="right")
    hit = k < len(writes)
    hit[hit] = writes[k[hit], 0] < ends[hit]
    return candidates[hit], int(hit[: first - lo].sum())


def _merge(ranges: np.ndarray) -> np.ndarray:
    """Sorted ranges with touching neighbours merged."""
    if len(ranges) < 2:
        return ranges
    breaks = np.flatnonzero(ranges[1:, 0] != ranges[:-1, 1]) + 1
    starts = ranges[np.concatenate([[0], breaks]), 0]
    ends = ranges[np.concatenate([breaks - 1, [len(ranges) - 1]]), 1]
    return np.stack([starts, ends], axis=1)
