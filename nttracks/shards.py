"""Shard outputs on disk: a shard's stitched, quantized values in a compact binary file.

Layout (little-endian)::

    b"NTSHARD\\0"             8 bytes, magic
    uint32 header_length    bytes of the JSON header that follows
    header                  UTF-8 JSON: format, family, chrom, index, runs [[start, end], ...],
                            channels, quanta, dtype, meta (what the run records: the shard's key,
                            seam QC sums, model digest and label, seconds); padded with spaces to a
                            multiple of 8 bytes
    values                  (bases, channels) row-major, in ``dtype``, the runs one after another

Quantized channels are stored as their whole number of steps k (``stitch.quantum_counts``) in the
smallest integer type that holds them (uint8 for probabilities at 1/255); reading divides by the
steps again, which gives back exactly the float32 that ``stitch.quantize`` gives. A file is written
to a temporary name and renamed, so a shard file is complete or absent.

``ShardCache`` keeps a hub's finished shards between runs, named by key (``fingerprints``): a run
reuses every shard whose key it finds, so an interrupted run resumes and an unchanged one computes
nothing. Its layout, under the hub's work directory::

    shards/<family>/<key>.shard      finished shard outputs
    shards/<family>/.<key>.shard.part  a write a killed run left (removed by the next run)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError
from .stitch import quantum_steps

MAGIC = b"NTSHARD\0"
FORMAT = 2  # 2: the header carries ``meta``
_INT_TYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32)


@dataclass(frozen=True, eq=False)
class ShardValues:
    """A shard's output: runs (m, 2) [start, end) on ``chrom`` and values (bases, channels) float32."""

    family: str
    chrom: str
    index: int
    runs: np.ndarray
    channels: tuple[str, ...]
    quanta: np.ndarray
    values: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def pieces(self) -> Iterator[tuple[int, np.ndarray]]:
        """(start, values (n, channels)) of each run, in order."""
        offset = 0
        for start, end in self.runs.tolist():
            yield start, self.values[offset : offset + end - start]
            offset += end - start


def write_shard(
    path: Path,
    *,
    family: str,
    chrom: str,
    index: int,
    runs: np.ndarray,
    channels: Sequence[str],
    quanta: np.ndarray,
    counts: np.ndarray,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a shard file. counts: (bases, channels) float32 whole steps (``quantum_counts``), or the
    values themselves for channels whose quantum is 0. meta: plain JSON data kept in the header."""
    runs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
    if counts.shape != (int((runs[:, 1] - runs[:, 0]).sum()), len(channels)):
        raise ValueError(f"shard {family}/{chrom}/{index}: values {counts.shape} do not fit its runs")
    data = pack_counts(counts, quanta)
    header = {
        "format": FORMAT,
        "family": family,
        "chrom": chrom,
        "index": index,
        "runs": runs.tolist(),
        "channels": list(channels),
        "quanta": [float(q) for q in quanta],
        "dtype": data.dtype.str,
        "meta": dict(meta or {}),
    }
    text = json.dumps(header).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 8)
    tmp = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + np.uint32(len(text)).astype("<u4").tobytes() + text)
            fh.write(np.ascontiguousarray(data).tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_shard(path: Path) -> ShardValues:
    """Read a shard file back as float32 values equal to ``stitch.quantize`` of what was stitched."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise OutputError(f"cannot read shard output {path}: {exc.strerror or exc}") from exc
    header, body = _header(path, raw, len(raw))
    channels = tuple(header["channels"])
    runs = np.asarray(header["runs"], dtype=np.int64).reshape(-1, 2)
    stored = np.frombuffer(raw, dtype=np.dtype(header["dtype"]), offset=body).reshape(-1, len(channels))
    quanta = np.asarray(header["quanta"], dtype=np.float64)
    return ShardValues(
        family=header["family"],
        chrom=header["chrom"],
        index=int(header["index"]),
        runs=runs,
        channels=channels,
        quanta=quanta,
        values=_unpack(stored, quanta),
        meta=header.get("meta") or {},
    )


@dataclass(frozen=True, eq=False)
class ShardHeader:
    """What a shard file holds, without its values: where they lie (``offset``, ``dtype``) and cover."""

    path: Path
    family: str
    chrom: str
    index: int
    runs: np.ndarray
    channels: tuple[str, ...]
    quanta: np.ndarray
    dtype: np.dtype
    offset: int

    @property
    def bases(self) -> int:
        return int((self.runs[:, 1] - self.runs[:, 0]).sum())

    def stored(self) -> np.ndarray:
        """The stored values (bases, channels) in ``dtype``, mapped from the file (read on demand)."""
        n = self.bases
        if n == 0:
            return np.zeros((0, len(self.channels)), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=(n, len(self.channels)))

    def pieces(self, columns: Sequence[int] | None = None, chunk: int = 1 << 20) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 values (n, len(columns))) of each run, in pieces of at most ``chunk`` bases:
        what ``read_shard`` gives, for some channels, never holding more than a piece in memory."""
        cols = list(range(len(self.channels))) if columns is None else list(columns)
        stored = self.stored()
        quanta = self.quanta[cols]
        offset = 0
        for start, end in self.runs.tolist():
            for a in range(start, end, chunk):
                b = min(a + chunk, end)
                yield a, _unpack(stored[offset + a - start : offset + b - start, cols], quanta)
            offset += end - start


def read_shard_header(path: Path) -> ShardHeader:
    """A shard file's header as a ``ShardHeader`` (checked against the file's size), without its values:
    what a bigWig writer maps its channels from."""
    path = Path(path)
    header, body = _read_head(path)
    return ShardHeader(
        path=path,
        family=header["family"],
        chrom=header["chrom"],
        index=int(header["index"]),
        runs=np.asarray(header["runs"], dtype=np.int64).reshape(-1, 2),
        channels=tuple(header["channels"]),
        quanta=np.asarray(header["quanta"], dtype=np.float64),
        dtype=np.dtype(header["dtype"]),
        offset=body,
    )


def read_header(path: Path) -> dict[str, Any]:
    """A shard file's header, checked against the file's size (a complete file), without its values."""
    return _read_head(path)[0]


def _read_head(path: Path) -> tuple[dict[str, Any], int]:
    """(header, offset of the values) of a shard file, reading only its head."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_MAX)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise OutputError(f"cannot read shard output {path}: {exc.strerror or exc}") from exc
    return _header(path, head, size)


_HEAD_MAX = 1 << 24  # the runs of a 2-Mb shard take a few kB; --regions with many intervals more


def _header(path: Path, head: bytes, size: int) -> tuple[dict[str, Any], int]:
    if head[: len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + 4:
        raise OutputError(f"{path} is not an nttracks shard file; delete it and run again")
    length = int(np.frombuffer(head, dtype="<u4", count=1, offset=len(MAGIC))[0])
    body = len(MAGIC) + 4 + length
    try:
        header = json.loads(head[len(MAGIC) + 4 : body])
    except ValueError:
        raise OutputError(f"{path}: corrupt shard header; delete it and run again") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise OutputError(f"{path}: shard format {found} is not {FORMAT}; delete it and run again")
    runs = np.asarray(header["runs"], dtype=np.int64).reshape(-1, 2)
    n = int((runs[:, 1] - runs[:, 0]).sum())
    if size - body != n * len(header["channels"]) * np.dtype(header["dtype"]).itemsize:
        raise OutputError(f"{path}: shard file is truncated; delete it and run again")
    return header, body


class ShardCache:
    """A hub's finished shard outputs, by family and key (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, family: str) -> Path:
        return self.root / family

    def path(self, family: str, key: str) -> Path:
        return self.root / family / f"{key}.shard"

    def find(self, family: str, key: str) -> dict[str, Any] | None:
        """The header of the finished shard ``key`` (None when absent; a damaged file is removed)."""
        path = self.path(family, key)
        if not path.is_file():
            return None
        try:
            header = read_header(path)
        except OutputError:
            path.unlink(missing_ok=True)
            return None
        if header.get("meta", {}).get("key") != key:
            path.unlink(missing_ok=True)
            return None
        return header

    def clean(self) -> list[Path]:
        """Remove the partial writes a killed run left; returns them."""
        if not self.root.is_dir():
            return []
        leftovers = [p for p in self.root.glob("*/.*.part") if p.is_file()]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return leftovers

    def keep_only(self, keys: Mapping[str, set[str]]) -> int:
        """Remove every shard file that is not among ``keys`` ({family: keys}); returns bytes freed."""
        freed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.glob("*/*.shard"):
            if path.stem not in keys.get(path.parent.name, set()):
                freed += path.stat().st_size
                path.unlink(missing_ok=True)
        for folder in self.root.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return freed


def pack_counts(counts: Any, quanta: np.ndarray) -> Any:
    """Whole steps (n, channels) in the smallest integer type that holds them when every channel is
    quantized, else float32: how a shard file stores them. NumPy or CuPy (cast on the device, so only
    the small integers are copied to the host)."""
    if (np.asarray(quanta) > 0).all() and counts.size:
        lo, hi = float(counts.min()), float(counts.max())
        for dtype in _INT_TYPES:
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return counts.astype(dtype)
    return counts.astype(np.float32, copy=False)


def _unpack(stored: np.ndarray, quanta: np.ndarray) -> np.ndarray:
    # k / steps is quantize()'s float32; an unquantized channel has steps 1 and comes back as stored.
    return stored.astype(np.float32) / quantum_steps(quanta)
