"""A streaming bigWig file writer: bounded memory, every chromosome in the header, UCSC's layout.

Why not pyBigWig or pybigtools (``benchmarks/bench_bigwig_scale.py`` has the numbers): pyBigWig keeps
every zoom level in memory until ``close()`` and builds them there, which costs time and memory linear
in the data (about 10 GB and 17 minutes for one hg38 track: past any sane limit with 14 tracks).
pybigtools streams, but its header lists only the chromosomes that got data (with ids in order of
appearance), puts the chromosome tree after the data (which the WashU browser rejects, bigtools #83)
and prints a write error instead of raising it.

This writer streams, and writes the file as the format specifies (Kent et al. 2010, UCSC's
``bwgCreate.c``):

    header (64 bytes), 10 zoom headers, total summary       patched at close
    chromosome B+ tree                                      every chromosome, genome order, id = index
    section count, data sections                            zlib-compressed, streamed as they fill
    R-tree index of the data sections
    per zoom level: record count, compressed zoom blocks (copied from a temporary file), R-tree index
    magic

Sections are deflated at zlib level 1 (``ZLIB_LEVEL``). Data sections hold at most 1024 items, each
either fixedStep (one float32 per base) or bedGraph (one (start, end, value) per run of equal values),
whichever is smaller: quantized tracks are mostly long runs of one value, noisy ones mostly short
runs. Readers see the same value at every base either way.
Zoom levels summarize 160 x 4**k bases (k = 0..9, as bigtools; pyBigWig starts at 16 bp, which makes
its first level most of the file), bins aligned to multiples of the level, each record trimmed to the
bases it covers. Memory: one added run's sections and a block of pending zoom records per level; the
zoom blocks and the index rows of the data sections (32 bytes a section: 100 MB for a per-base hg38
track written fixedStep) go to temporary files, which ``close`` reads back through the page cache.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

BIGWIG_MAGIC = 0x888FFC26
BPT_MAGIC = 0x78CA8C91
CIR_MAGIC = 0x2468ACE0
ITEMS_PER_SLOT = 1024  # items per data section and zoom records per block (UCSC's default)
BLOCK_SIZE = 256  # children per R-tree node (UCSC's default)
MAX_LEAF_CHROMS = 0x7FFF  # chromosomes in one B+ tree leaf (libBigWig's limit)
ZOOM_LEVELS = 10
FIRST_ZOOM = 160
HEADER_BYTES = 64 + 24 * ZOOM_LEVELS  # header and room for every zoom header
BEDGRAPH, FIXEDSTEP = 1, 3
# zlib level 1: on per-base float32 sections 18 M values/s against 9.5 M at its default 6, for files 5%
# larger (measured on a 2-core x86 box); readers inflate any level. At 14+ tracks per base the writers'
# CPU is the pipeline's largest cost after the model, and on a small machine they share its cores.
# (ISA-L through python-isal was 2.6x faster still, but with it the same shard files now and then gave
# different bigWig bytes (equal values) from run to run, never seen with zlib; cause not found: left out.)
ZLIB_LEVEL = 1

_LEAF = np.dtype([("c0", "<u4"), ("s", "<u4"), ("c1", "<u4"), ("e", "<u4"), ("offset", "<u8"), ("size", "<u8")])
_NODE = np.dtype([("c0", "<u4"), ("s", "<u4"), ("c1", "<u4"), ("e", "<u4"), ("offset", "<u8")])
_ZOOM = np.dtype([("chrom", "<u4"), ("start", "<u4"), ("end", "<u4"), ("count", "<u4"),
                  ("min", "<f4"), ("max", "<f4"), ("sum", "<f4"), ("sq", "<f4")])
_RUN = np.dtype([("start", "<u4"), ("end", "<u4"), ("value", "<f4")])


class BigWigFile:
    """Write one bigWig: ``add`` runs of values in genome order, then ``close``.

    chrom_sizes: every chromosome of the genome, in the genome's order (all of them go into the header).
    """

    def __init__(self, path: Path | str, chrom_sizes: Sequence[tuple[str, int]]) -> None:
        self.path = Path(path)
        self.chrom_sizes = [(str(c), int(n)) for c, n in chrom_sizes]
        if not self.chrom_sizes:
            raise ValueError("a bigWig needs at least one chromosome")
        self._ids = {c: i for i, (c, _) in enumerate(self.chrom_sizes)}
        largest = max(n for _, n in self.chrom_sizes)
        reductions = [FIRST_ZOOM * 4**k for k in range(ZOOM_LEVELS)]
        self._f: BinaryIO = open(self.path, "wb")
        # IGV needs at least one zoom level; none is coarser than the largest chromosome.
        self._zooms = _Zooms([r for r in reductions if r < largest] or reductions[:1], self.path.parent)
        self._f.write(bytes(HEADER_BYTES + 40))  # header, zoom headers, total summary: written at close
        self._chrom_tree_offset = self._f.tell()
        _write_chrom_tree(self._f, self.chrom_sizes)
        self._data_offset = self._f.tell()
        self._f.write(bytes(8))  # section count, written at close
        self._index = tempfile.TemporaryFile(dir=self.path.parent, prefix=".nttracks-index-")  # _LEAF rows
        self._max_block = 0
        self._last = (-1, 0)
        self.bases = 0
        self._min, self._max, self._sum, self._sq = np.inf, -np.inf, 0.0, 0.0

    def add(self, chrom: str, start: int, values: np.ndarray) -> None:
        """values: (n,) float32 for bases [start, start + n) of ``chrom``, after everything added before."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        n = values.shape[0]
        if n == 0:
            return
        cid = self._ids[chrom]
        if (cid, start) < self._last or start < 0 or start + n > self.chrom_sizes[cid][1]:
            raise ValueError(f"{chrom}:{start}-{start + n} is out of order or outside the chromosome")
        if cid != self._last[0]:
            self._zooms.end_chrom()
        self._last = (cid, start + n)
        v64 = values.astype(np.float64)
        self.bases += n
        self._min, self._max = min(self._min, float(v64.min())), max(self._max, float(v64.max()))
        self._sum += float(v64.sum())
        self._sq += float(np.dot(v64, v64))
        self._write_sections(cid, start, values)
        self._zooms.add(cid, start, values, v64)

    def _write_sections(self, cid: int, start: int, values: np.ndarray) -> None:
        """Sections of at most ITEMS_PER_SLOT items over the bases [start, start + n), each bedGraph
        (runs of equal values) or fixedStep (every base), whichever holds fewer bytes."""
        n = len(values)
        cut = np.flatnonzero(values[1:] != values[:-1]) + 1
        run_start = np.concatenate(([0], cut))
        run_end = np.concatenate((cut, [n]))
        rows = []
        pos, k = 0, 0  # the next base to write, and the run it lies in
        offset = self._f.tell()
        while pos < n:
            m = min(ITEMS_PER_SLOT, len(run_start) - k)
            end = int(run_end[k + m - 1])
            if end - pos > 3 * m:  # 12 bytes per run beat 4 bytes per base
                runs = np.empty(m, dtype=_RUN)
                runs["start"] = run_start[k : k + m] + start
                runs["start"][0] = pos + start  # the first run may have begun in the previous section
                runs["end"] = run_end[k : k + m] + start
                runs["value"] = values[run_start[k : k + m]]
                head = struct.pack("<IIIIIBBH", cid, start + pos, start + end, 0, 0, BEDGRAPH, 0, m)
                block = head + runs.tobytes()
                k += m
            else:
                end = min(pos + ITEMS_PER_SLOT, n)
                head = struct.pack("<IIIIIBBH", cid, start + pos, start + end, 1, 1, FIXEDSTEP, 0, end - pos)
                block = head + values[pos:end].tobytes()
                k = int(np.searchsorted(run_end, end, side="right"))
            packed = zlib.compress(block, ZLIB_LEVEL)
            self._f.write(packed)
            self._max_block = max(self._max_block, len(block))
            rows.append((cid, start + pos, cid, start + end, offset, len(packed)))
            offset += len(packed)
            pos = end
        self._index.write(np.array(rows, dtype=_LEAF).tobytes())

    def close(self) -> None:
        """Write the index, the zoom levels and the header; the file is complete when this returns."""
        f = self._f
        self._zooms.end_chrom()
        self._index.flush()
        size = self._index.tell()
        f.seek(self._data_offset)
        f.write(struct.pack("<Q", size // _LEAF.itemsize))
        f.seek(0, os.SEEK_END)
        index_offset = f.tell()
        if size:
            with mmap.mmap(self._index.fileno(), size, access=mmap.ACCESS_READ) as rows:
                sections = np.frombuffer(rows, dtype=_LEAF)
                _write_rtree(f, sections)
                del sections  # before the map closes
        else:
            _write_rtree(f, np.zeros(0, dtype=_LEAF))
        self._index.close()
        zoom_headers = []
        for level in self._zooms.levels:
            data_offset = f.tell()
            f.write(struct.pack("<I", level.records))
            blocks = level.copy_to(f)
            self._max_block = max(self._max_block, level.max_block)
            zoom_index = f.tell()
            _write_rtree(f, blocks)
            zoom_headers.append(struct.pack("<IIQQ", level.reduction, 0, data_offset, zoom_index))
        f.write(struct.pack("<I", BIGWIG_MAGIC))
        f.seek(0)
        f.write(struct.pack("<IHHQQQHHQQIQ", BIGWIG_MAGIC, 4, len(zoom_headers), self._chrom_tree_offset,
                            self._data_offset, index_offset, 0, 0, 0, HEADER_BYTES, self._max_block, 0))
        f.write(b"".join(zoom_headers))
        if self.bases:
            f.seek(HEADER_BYTES)
            f.write(struct.pack("<Qdddd", self.bases, self._min, self._max, self._sum, self._sq))
        f.close()

    def abort(self) -> None:
        """Close without finishing: the file is incomplete (the caller removes it)."""
        self._zooms.close()
        self._index.close()
        self._f.close()


class _Level:
    """One zoom level: its records, compressed in blocks of ITEMS_PER_SLOT into a temporary file."""

    def __init__(self, reduction: int, directory: Path) -> None:
        self.reduction = reduction
        self.tmp = tempfile.TemporaryFile(dir=directory, prefix=".nttracks-zoom-")
        self.last = np.zeros(0, dtype=_ZOOM)  # the record of the bin that may still grow
        self.done: list[np.ndarray] = []  # final records not yet in a block
        self.n_done = 0
        self.blocks: list[tuple[int, int, int, int, int, int]] = []  # index rows, offsets in tmp
        self.records = 0
        self.max_block = 0

    def emit(self, rec: np.ndarray, whole: bool) -> None:
        """Final records; ``whole``: write every one of them (the chromosome ended), else full blocks."""
        if len(rec):
            self.done.append(rec)
            self.n_done += len(rec)
        if self.n_done < ITEMS_PER_SLOT and not (whole and self.n_done):
            return
        recs = np.concatenate(self.done)
        full = len(recs) if whole else len(recs) // ITEMS_PER_SLOT * ITEMS_PER_SLOT
        for i in range(0, full, ITEMS_PER_SLOT):
            block = recs[i : min(i + ITEMS_PER_SLOT, full)]
            raw = block.tobytes()
            packed = zlib.compress(raw, ZLIB_LEVEL)
            self.blocks.append((int(block["chrom"][0]), int(block["start"][0]), int(block["chrom"][-1]),
                                int(block["end"][-1]), self.tmp.tell(), len(packed)))
            self.tmp.write(packed)
            self.max_block = max(self.max_block, len(raw))
            self.records += len(block)
        self.done = [recs[full:]] if full < len(recs) else []
        self.n_done = len(recs) - full

    def copy_to(self, f: BinaryIO) -> np.ndarray:
        """Copy the blocks to ``f`` at its position; returns their index rows (_LEAF) there."""
        at = f.tell()
        self.tmp.seek(0)
        while chunk := self.tmp.read(1 << 24):
            f.write(chunk)
        self.tmp.close()
        rows = np.array(self.blocks, dtype=_LEAF) if self.blocks else np.zeros(0, dtype=_LEAF)
        rows["offset"] += at
        return rows


class _Zooms:
    """Every zoom level, fed in genome order: level 0 from the values, each level from the one below."""

    def __init__(self, reductions: list[int], directory: Path) -> None:
        self.levels: list[_Level] = []
        try:
            for r in reductions:
                self.levels.append(_Level(r, directory))
        except BaseException:
            self.close()
            raise

    def add(self, cid: int, start: int, v32: np.ndarray, v64: np.ndarray) -> None:
        """Bases [start, start + n) of chromosome ``cid``, as float32 (min, max) and float64 (sums)."""
        r = self.levels[0].reduction
        n = len(v32)
        edges = np.arange((start // r + 1) * r, start + n, r) - start  # bin boundaries inside the run
        idx = np.concatenate(([0], edges))
        rec = np.empty(len(idx), dtype=_ZOOM)
        rec["chrom"] = cid
        rec["start"] = idx + start
        rec["end"] = np.concatenate((edges, [n])) + start
        rec["count"] = rec["end"] - rec["start"]
        rec["min"] = np.minimum.reduceat(v32, idx)
        rec["max"] = np.maximum.reduceat(v32, idx)
        rec["sum"] = np.add.reduceat(v64, idx)
        rec["sq"] = np.add.reduceat(v64 * v64, idx)
        self._push(0, rec)

    def _push(self, i: int, rec: np.ndarray) -> None:
        """Records (of level i's bins or finer, in order) into level i: all but the last bin are final."""
        level = self.levels[i]
        rec = _merge(np.concatenate([level.last, rec]), level.reduction)
        level.last = rec[-1:]
        final = rec[:-1]
        level.emit(final, whole=False)
        if i + 1 < len(self.levels) and len(final):
            self._push(i + 1, final)

    def end_chrom(self) -> None:
        """The chromosome is done: every pending bin is final (level by level, upwards)."""
        for i, level in enumerate(self.levels):
            last, level.last = level.last, level.last[:0]
            level.emit(last, whole=True)
            if i + 1 < len(self.levels) and len(last):
                self._push(i + 1, last)

    def close(self) -> None:
        for level in self.levels:
            level.tmp.close()


def _merge(rec: np.ndarray, reduction: int) -> np.ndarray:
    """Merge consecutive records that fall into the same ``reduction``-base bin of one chromosome."""
    if len(rec) < 2:
        return rec
    key = rec["start"].astype(np.int64) // reduction + (rec["chrom"].astype(np.int64) << 32)
    idx = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
    if len(idx) == len(rec):
        return rec
    out = np.empty(len(idx), dtype=_ZOOM)
    out["chrom"] = rec["chrom"][idx]
    out["start"] = rec["start"][idx]
    out["end"] = rec["end"][np.concatenate((idx[1:], [len(rec)])) - 1]
    out["count"] = np.add.reduceat(rec["count"], idx)
    out["min"] = np.minimum.reduceat(rec["min"], idx)
    out["max"] = np.maximum.reduceat(rec["max"], idx)
    out["sum"] = np.add.reduceat(rec["sum"].astype(np.float64), idx)
    out["sq"] = np.add.reduceat(rec["sq"].astype(np.float64), idx)
    return out


def _write_chrom_tree(f: BinaryIO, chrom_sizes: list[tuple[str, int]]) -> None:
    """B+ tree of name -> (id, size). One leaf in genome order (the order every reader lists) while
    the chromosomes fit in one; beyond that, leaves sorted by name under a root, as lookups need."""
    names = [c.encode() for c, _ in chrom_sizes]
    key = max(len(b) for b in names)
    items = [(b.ljust(key, b"\0"), i, n) for i, (b, (_, n)) in enumerate(zip(names, chrom_sizes, strict=True))]
    per_block = min(len(items), MAX_LEAF_CHROMS)
    f.write(struct.pack("<IIIIQQ", BPT_MAGIC, per_block, key, 8, len(items), 0))
    leaves = [items]
    if len(items) > MAX_LEAF_CHROMS:
        items.sort()
        leaves = [items[i : i + per_block] for i in range(0, len(items), per_block)]
        node_bytes = 4 + per_block * (key + 8)
        first_leaf = f.tell() + node_bytes
        f.write(struct.pack("<BBH", 0, 0, len(leaves)))
        f.write(b"".join(leaf[0][0] + struct.pack("<Q", first_leaf + j * node_bytes) for j, leaf in enumerate(leaves)))
        f.write(bytes((per_block - len(leaves)) * (key + 8)))
    for leaf in leaves:
        f.write(struct.pack("<BBH", 1, 0, len(leaf)))
        f.write(b"".join(k + struct.pack("<II", i, n) for k, i, n in leaf))
        f.write(bytes((per_block - len(leaf)) * (key + 8)))


def _write_rtree(f: BinaryIO, leaves: np.ndarray) -> None:
    """The R-tree (cirTree) index of ``leaves`` (_LEAF rows in file order), at the file's position."""
    at = f.tell()
    tiers = [leaves]  # tiers[t]: the rows held by the nodes of tier t (0: the leaves); row j of
    while len(tiers[-1]) > BLOCK_SIZE:  # tier t + 1 describes node j of tier t
        below = tiers[-1]
        first = np.arange(0, len(below), BLOCK_SIZE)
        last = np.minimum(first + BLOCK_SIZE, len(below)) - 1
        up = np.zeros(len(first), dtype=_NODE)
        up["c0"], up["s"] = below["c0"][first], below["s"][first]
        up["c1"], up["e"] = below["c1"][last], below["e"][last]
        tiers.append(up)
    bounds = (0, 0, 0, 0)
    if len(leaves):
        bounds = (int(leaves["c0"][0]), int(leaves["s"][0]), int(leaves["c1"][-1]), int(leaves["e"][-1]))
    f.write(struct.pack("<IIQIIIIQII", CIR_MAGIC, BLOCK_SIZE, len(leaves), *bounds, at, ITEMS_PER_SLOT, 0))
    order = tiers[::-1]  # written root first
    starts, pos = [], f.tell()
    for rows in order:  # every node of a tier but its last is full
        starts.append(pos)
        pos += 4 * max(1, -(-len(rows) // BLOCK_SIZE)) + len(rows) * rows.dtype.itemsize
    for t, rows in enumerate(order):
        leaf = t == len(order) - 1
        if not leaf:
            rows = rows.copy()
            rows["offset"] = starts[t + 1] + np.arange(len(rows)) * (4 + BLOCK_SIZE * order[t + 1].dtype.itemsize)
        for i in range(0, max(len(rows), 1), BLOCK_SIZE):
            chunk = rows[i : i + BLOCK_SIZE]
            f.write(struct.pack("<BBH", 1 if leaf else 0, 0, len(chunk)) + chunk.tobytes())
