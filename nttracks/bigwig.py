"""bigWig writing: per-contig arrays -> one bigWig per output channel.

Entries cover scored bases only: bases no model scored (N gaps, contig tails, excluded regions) are
absent, never 0 and never NaN. Values arrive already quantized (float32 on a per-track grid), so most
of a track is long runs of one value, which ``bigwigfile.BigWigFile`` stores as one item each. Every
header lists all of the genome's chromosomes in the genome's order, and entries must arrive in that order.

Writers run in worker processes, each owning some of the channels, so the producer (the GPU loop)
never waits on zlib and zoom levels. A run feeds them shard files (``add_shard``): only the file's name
passes through the queue, and each writer maps its channels from the file, through the page cache that
all of them share, so no value is copied through this process or pickled. A bounded queue holds at
most a few messages per worker, and a
writer holds one section and a little zoom state per file: memory does not grow with the genome
(``bigwigfile`` says where the bytes go).

A writer that is slow is waited for, however long: its files are finished work. One that dies is
reported (``WriterDiedError``, naming its files and how it ended). Writer processes ignore SIGINT
(a Ctrl-C reaches the whole process group; the parent stops them) and die with the parent, even a
SIGKILLed one (Linux: PR_SET_PDEATHSIG; elsewhere they notice within a second that it is gone).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError
from .shards import read_shard_header

Progress = Callable[[int, int], Any]
"""progress(files_done, files_total): called when the files start finishing (0) and as each one is done."""


class WriterDiedError(OutputError):
    """A bigWig writer process ended without finishing or reporting (killed, out of memory, crashed)."""


def _stay_with_parent(parent: int) -> None:
    """In a writer process: ignore SIGINT, and die when the parent does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # the inbox loop's parent check still ends this process
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _writer(index: int, inbox: Any, outbox: Any, paths: list[str], columns: list[int],
            chrom_sizes: list[tuple[str, int]], parent: int) -> None:
    """Worker ``index``: write the files ``paths``, the channels ``columns``. Messages: (chrom, start,
    values (k, n)); ("shard", path): the worker reads its channels from the shard file itself; None:
    finish. Reports (status, index, detail): ("done", index, path) per finished file, then
    ("ok", index, counts) or ("error", index, message)."""
    _stay_with_parent(parent)
    from .bigwigfile import BigWigFile

    files: list[Any] = []
    try:
        for path in paths:
            files.append(BigWigFile(path, chrom_sizes))
        counts = [0] * len(paths)
        while True:
            try:
                msg = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if msg is None:
                break
            if msg[0] == "shard":
                shard = read_shard_header(Path(msg[1]))
                for start, piece in shard.pieces(columns):
                    if np.isnan(piece).any():
                        raise ValueError(f"{shard.path.name}: NaN values at {shard.chrom}:{start}")
                    for j, bw in enumerate(files):
                        bw.add(shard.chrom, start, piece[:, j])
                        counts[j] += piece.shape[0]
                continue
            chrom, start, values = msg
            for j, bw in enumerate(files):
                bw.add(chrom, int(start), values[j])
                counts[j] += values.shape[1]
        while files:
            files[0].close()
            outbox.put(("done", index, str(files.pop(0).path)))
        outbox.put(("ok", index, counts))
    except Exception as exc:  # reported to the parent, which raises OutputError
        for bw in files:
            bw.abort()
        outbox.put(("error", index, f"{type(exc).__name__}: {exc}"))


class BigWigWriters:
    """Parallel bigWig writers for ``paths`` (one per channel, in channel order).

    Use as a context manager; add(chrom, start, values) with values (n, channels) float32 in genome
    order; the files are complete when the ``with`` block ends without an error. progress: see
    ``Progress``. The writer processes die with the thread that made them: use one from the thread
    that lives as long as it does (the main thread, in a run).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        chrom_sizes: Sequence[tuple[str, int]],
        *,
        processes: int | None = None,
        queue_size: int = 4,
        progress: Progress | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.chrom_sizes = [(str(c), int(n)) for c, n in chrom_sizes]
        self.progress = progress
        self._order = {c: i for i, (c, _) in enumerate(self.chrom_sizes)}
        n = processes or min(len(self.paths), max(1, (os.cpu_count() or 1)))
        self._groups = [list(range(len(self.paths)))[i::n] for i in range(n)]
        self._last: tuple[int, int] = (-1, 0)
        self.counts = np.zeros(len(self.paths), dtype=np.int64)
        ctx = mp.get_context("spawn")
        self._outbox = ctx.Queue()
        self._inboxes = [ctx.Queue(maxsize=queue_size) for _ in self._groups]
        self._procs = [
            ctx.Process(
                target=_writer,
                args=(i, inbox, self._outbox, [str(self.paths[j]) for j in group], group, self.chrom_sizes,
                      os.getpid()),
                name=f"nttracks-bigwig-{i}",
                daemon=True,
            )
            for i, (inbox, group) in enumerate(zip(self._inboxes, self._groups, strict=True))
        ]
        self._finished: set[int] = set()  # processes that reported "ok" or "error"
        try:
            # SIGINT blocked while starting: a Ctrl-C now is held for this process (raised once the
            # writers run) and never reaches a writer before it ignores SIGINT.
            mask = getattr(signal, "pthread_sigmask", None)  # POSIX
            blocked = mask(signal.SIG_BLOCK, {signal.SIGINT}) if mask is not None else None
            try:
                for proc in self._procs:
                    proc.start()
            finally:
                if mask is not None:
                    mask(signal.SIG_SETMASK, blocked)
        except BaseException:
            self.abort()
            raise

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
        for i, (inbox, group) in enumerate(zip(self._inboxes, self._groups, strict=True)):
            self._put(i, inbox, (chrom, start, channel_major[group]))
        self.counts += n

    def add_shard(self, path: Path) -> None:
        """Every run of a shard file (``shards.write_shard``) with its channels in file order: each
        writer reads its own channels from the file (through the page cache, shared by all of them),
        so no values pass through this process. The file must stay until the ``with`` block ends."""
        shard = read_shard_header(path)
        if len(shard.channels) != len(self.paths):
            raise ValueError(f"{path}: {len(shard.channels)} channels for {len(self.paths)} bigWig files")
        if shard.chrom not in self._order:
            raise ValueError(f"{shard.chrom} is not among the {len(self._order)} chromosomes of the bigWig header")
        cid, size = self._order[shard.chrom], self.chrom_sizes[self._order[shard.chrom]][1]
        for start, end in shard.runs.tolist():
            if (cid, start) < self._last or start < 0 or end > size:
                raise ValueError(f"{path}: {shard.chrom}:{start}-{end} is out of order or outside the chromosome")
            self._last = (cid, end)
        for i, inbox in enumerate(self._inboxes):
            self._put(i, inbox, ("shard", str(path)))
        self.counts += shard.bases

    def _put(self, i: int, inbox: Any, msg: Any) -> None:
        while True:
            try:
                inbox.put(msg, timeout=1.0)
                return
            except queue.Full:
                if not self._procs[i].is_alive():
                    self._fail(i)

    def close(self) -> None:
        """Finish every file, waiting for the writers however long they take; raise OutputError if a
        writer failed (WriterDiedError if one died) or a track would be empty."""
        empty = [p.name for p, c in zip(self.paths, self.counts, strict=True) if c == 0]
        if empty:
            self.abort()
            for path in self.paths:
                path.unlink(missing_ok=True)
            raise OutputError(f"no scored base for {', '.join(empty)}: an empty bigWig is never written")
        for i, inbox in enumerate(self._inboxes):
            self._put(i, inbox, None)
        done = 0
        if self.progress is not None:
            self.progress(0, len(self.paths))
        errors = []
        while len(self._finished) < len(self._procs):
            try:
                status, i, detail = self._outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [i for i, p in enumerate(self._procs) if i not in self._finished and not p.is_alive()]
                if not dead:
                    continue  # slow, not dead: wait
                # What a writer sent before it exited is in the pipe by now: read it before judging.
                try:
                    status, i, detail = self._outbox.get(timeout=1.0)
                except queue.Empty:
                    self._fail(dead[0])
            if status == "done":
                done += 1
                if self.progress is not None:
                    self.progress(done, len(self.paths))
                continue
            self._finished.add(i)
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

    def _fail(self, i: int) -> None:
        """Writer ``i`` has exited: raise what it reported, or that it died."""
        detail = None
        while True:
            try:
                status, sender, msg = self._outbox.get(timeout=0.5)
            except queue.Empty:
                break
            if status == "error" and sender == i:  # not another writer's "ok" or "done"
                detail = msg
                break
        self.abort()
        if detail is not None:
            raise OutputError(f"writing bigWig files in {self.paths[0].parent} failed: {detail}")
        code = self._procs[i].exitcode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        names = ", ".join(self.paths[j].name for j in self._groups[i])
        raise WriterDiedError(
            f"the bigWig writer process of {names} (in {self.paths[0].parent}) died without a report ({how}); "
            "out of memory? The files it was writing are incomplete"
        )

    def abort(self) -> None:
        """Stop every writer without finishing the files (within seconds)."""
        for inbox in self._inboxes:
            # Messages no writer will read must not block this process's exit (the queue's feeder
            # thread is otherwise joined at exit, stuck writing into a full pipe).
            inbox.cancel_join_thread()
        started = [p for p in self._procs if p.pid is not None]
        for proc in started:
            if proc.is_alive():
                proc.terminate()
        for proc in started:
            proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=3)

    def __enter__(self) -> BigWigWriters:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
