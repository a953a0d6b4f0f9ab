"""bigWig writing: per-contig arrays -> one bigWig per output channel.

Entries are fixedStep runs (span 1, step 1) over scored bases only: bases no model scored (N gaps,
contig tails, excluded regions) are absent, never 0 and never NaN. Values arrive already quantized
(float32 on a per-track grid, which zlib compresses 2-6x better than raw floats). Every header lists
all of the genome's chromosomes in the genome's order, and entries must arrive in that order.

Writers run in worker processes, each owning some of the channels, so the producer (the GPU loop)
never waits on zlib and zoom-level construction. A bounded queue holds at most a few regions per
worker, and a writer holds only its own files' buffers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError

MAX_ZOOMS = 10  # pyBigWig's default; IGV breaks without zoom levels


def _writer(inbox: Any, outbox: Any, paths: list[str], chrom_sizes: list[tuple[str, int]]) -> None:
    """Worker: write the channels in ``paths``; messages are (chrom, start, values (k, n)) or None."""
    try:
        import pyBigWig

        files = []
        for path in paths:
            # pyBigWig crashes the process (SIGSEGV) on a path it cannot create: try it in Python first,
            # which raises an OSError that names the path and the reason.
            open(path, "wb").close()
            bw = pyBigWig.open(path, "w")
            if bw is None:
                raise OSError(f"cannot create {path}")
            bw.addHeader(chrom_sizes, maxZooms=MAX_ZOOMS)
            files.append(bw)
        counts = [0] * len(paths)
        while (msg := inbox.get()) is not None:
            chrom, start, values = msg
            for j, bw in enumerate(files):
                bw.addEntries(chrom, int(start), values=values[j], span=1, step=1)
                counts[j] += values.shape[1]
        for bw in files:
            bw.close()
        outbox.put(("ok", counts))
    except Exception as exc:  # reported to the parent, which raises OutputError
        outbox.put(("error", f"{type(exc).__name__}: {exc}"))


class BigWigWriters:
    """Parallel bigWig writers for ``paths`` (one per channel, in channel order).

    Use as a context manager; add(chrom, start, values) with values (n, channels) float32 in genome
    order; the files are complete when the ``with`` block ends without an error.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        chrom_sizes: Sequence[tuple[str, int]],
        *,
        processes: int | None = None,
        queue_size: int = 4,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.chrom_sizes = [(str(c), int(n)) for c, n in chrom_sizes]
        self._order = {c: i for i, (c, _) in enumerate(self.chrom_sizes)}
        n = processes or min(len(self.paths), max(1, (os.cpu_count() or 1)))
        self._groups = [list(range(len(self.paths)))[i::n] for i in range(n)]
        ctx = mp.get_context("spawn")
        self._outbox = ctx.Queue()
        self._inboxes = [ctx.Queue(maxsize=queue_size) for _ in self._groups]
        self._procs = [
            ctx.Process(
                target=_writer,
                args=(inbox, self._outbox, [str(self.paths[j]) for j in group], self.chrom_sizes),
                name=f"nttracks-bigwig-{i}",
                daemon=True,
            )
            for i, (inbox, group) in enumerate(zip(self._inboxes, self._groups, strict=True))
        ]
        self._last: tuple[int, int] = (-1, 0)
        self.counts = np.zeros(len(self.paths), dtype=np.int64)
        for proc in self._procs:
            proc.start()

    def add(self, chrom: str, start: int, values: np.ndarray) -> None:
        """values: (n, channels) float32 for bases [start, start + n) of ``chrom``; never NaN."""
        n = values.shape[0]
        if n == 0:
            return
        if values.shape[1] != len(self.paths):
            raise ValueError(f"{values.shape[1]} channels given for {len(self.paths)} bigWig files")
        if chrom not in self._order:
            raise ValueError(f"{chrom} is not among the {len(self._order)} chromosomes of the bigWig header")
        if start < 0:
            raise ValueError(f"{chrom}:{start}: negative start")
        if np.isnan(values).any():  # a NaN entry would poison every zoom-level summary over it
            raise ValueError(f"{chrom}:{start}-{start + n}: NaN values; leave unscored bases out instead")
        position = (self._order[chrom], start)
        if position < self._last:
            raise ValueError(f"{chrom}:{start} arrives after an entry at a later position")
        if start + n > self.chrom_sizes[position[0]][1]:
            raise ValueError(f"{chrom}:{start}-{start + n} runs past the chromosome end")
        self._last = (position[0], start + n)
        channel_major = np.ascontiguousarray(values.T, dtype=np.float32)
        for inbox, group, proc in zip(self._inboxes, self._groups, self._procs, strict=True):
            self._put(inbox, proc, (chrom, start, channel_major[group]))
        self.counts += n

    def _put(self, inbox: Any, proc: Any, msg: Any) -> None:
        while True:
            try:
                inbox.put(msg, timeout=1.0)
                return
            except queue.Full:
                if not proc.is_alive():
                    self._fail()

    def close(self) -> None:
        """Finish every file; raise OutputError if any writer failed or a track would be empty."""
        empty = [p.name for p, c in zip(self.paths, self.counts, strict=True) if c == 0]
        if empty:
            self.abort()
            for path in self.paths:
                path.unlink(missing_ok=True)
            raise OutputError(f"no scored base for {', '.join(empty)}: an empty bigWig is never written")
        for inbox, proc in zip(self._inboxes, self._procs, strict=True):
            self._put(inbox, proc, None)
        self._collect()

    def _collect(self) -> None:
        errors = []
        received = 0
        waited = 0.0
        while received < len(self._procs):
            try:
                status, detail = self._outbox.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                if any(proc.is_alive() for proc in self._procs):
                    if waited < 600:
                        continue
                    errors.append("a bigWig writer did not finish within 10 minutes")
                    break
                # Every writer has exited, so what they sent is in the pipe; one that sent nothing died.
                status, detail = self._drain()
                if status is None:
                    codes = ", ".join(str(proc.exitcode) for proc in self._procs)
                    errors.append(f"a bigWig writer process died without a report (exit codes {codes})")
                    break
            received += 1
            waited = 0.0
            if status == "error":
                errors.append(detail)
        for proc in self._procs:
            proc.join(timeout=10)
        if errors:
            self.abort()
            raise OutputError(
                f"writing bigWig files in {self.paths[0].parent} failed: {'; '.join(errors)} "
                "(is the disk full or the directory not writable?)"
            )

    def _drain(self) -> tuple[Any, Any]:
        try:
            return self._outbox.get(timeout=0.5)
        except queue.Empty:
            return None, None

    def _fail(self) -> None:
        self.abort()
        detail = "a bigWig writer process died"
        while (msg := self._drain())[0] is not None:
            if msg[0] == "error":  # not another writer's "ok"
                detail = msg[1]
                break
        raise OutputError(f"writing bigWig files in {self.paths[0].parent} failed: {detail}")

    def abort(self) -> None:
        """Stop every writer without finishing the files."""
        for inbox in self._inboxes:
            # Messages no writer will read must not block this process's exit (the queue's feeder
            # thread is otherwise joined at exit, stuck writing into a full pipe).
            inbox.cancel_join_thread()
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)

    def __enter__(self) -> BigWigWriters:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
