"""The hub directory a run writes: its lock, its staging and work directories, and the publish step.

Beside ``--out`` (``hub/``) a run keeps, while it runs:

    .hub.nttracks-lock      who is running (host, pid, start time); taken with O_EXCL, removed at the end
    .hub.nttracks-staging/  the new hub, built whole before anything is published
    .hub.nttracks-work/     kept between runs: finished shard outputs by key, the log, the last run's
                            record (``nightly``)

``publish`` moves a finished staging directory into place: a new ``--out`` by one rename; an existing
one file by file, each by one rename (``PUBLISH_ORDER``: bigWigs, then the other data, the pages,
trackDb, genomes.txt, the WashU and JBrowse JSON, the manifest, hub.txt last), so a reader polling the
hub finds every file a published file names, and never a partial one. A file whose bytes equal the
live one's (or that is the live one, hard-linked into staging) is left alone: its inode and mtime do
not change. Last, the files the previous run published that this one did not (the previous manifest
lists them) are removed, so a published hub holds exactly the files of the run that published it.
Files nttracks never published (a user's notes) are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import UsageError

log = logging.getLogger("nttracks")
MANIFEST = "manifest.json"


def sibling(out: Path, what: str) -> Path:
    """``.<out name>.nttracks-<what>`` beside ``out``."""
    return out.parent / f".{out.name}.nttracks-{what}"


@contextmanager
def hub_lock(out: Path) -> Iterator[Path]:
    """Hold the lock on ``out`` for the duration of a run.

    A second run exits at once with a UsageError naming the holder. A lock left by a dead process on
    this host is taken over with a warning; one held from another host is never taken over (remove it
    by hand once sure that run is gone).
    """
    path = sibling(out, "lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is not None and _alive(holder):
                raise UsageError(
                    f"another nttracks run is writing {out}: pid {holder.get('pid')} on {holder.get('host')}, "
                    f"started {holder.get('started')} (lock {path}); wait for it to finish, or remove the "
                    "lock if that run is gone"
                ) from None
            log.warning(
                "taking over the stale lock %s (pid %s on %s, started %s, is no longer running)",
                path, (holder or {}).get("pid"), (holder or {}).get("host"), (holder or {}).get("started"),
            )
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    else:
        raise UsageError(f"could not take the lock {path} on {out}; another run took it first")
    try:
        yield path
    finally:
        if _read_lock(path) == me:
            path.unlink(missing_ok=True)


def lock_holder(out: Path) -> dict | None:
    """Who holds the lock on ``out`` (host, pid, started), or None when no live process does."""
    holder = _read_lock(sibling(out, "lock"))
    return holder if holder is not None and _alive(holder) else None


def _read_lock(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable or half-written: a crash between create and write
    return data if isinstance(data, dict) else None


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell from here: never take another host's lock
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever an interrupted run left there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def written_by_nttracks(out: Path) -> bool:
    """True when ``out`` holds a hub an nttracks run published (its manifest says so)."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "nttracks_version" in manifest


def read_manifest(out: Path) -> dict:
    """The manifest of the hub nttracks published in ``out`` ({} when there is none)."""
    try:
        manifest = json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and "nttracks_version" in manifest else {}


def published_files(out: Path) -> set[str]:
    """Files (relative paths) the run that published ``out`` listed in its manifest; empty if none."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()}


def publish_rank(rel: str) -> int:
    """Where a hub file comes in the publish order (see the module docstring); lower goes first."""
    name = rel.rsplit("/", 1)[-1]
    if name == "hub.txt":
        return 7
    if name == MANIFEST:
        return 6
    if name.endswith((".json", ".yaml")):
        return 5  # washu.json, JBrowse config.json, config.yaml
    if name == "genomes.txt":
        return 4
    if name.endswith(".txt") and name != "chrom.sizes":
        return 3  # trackDb.txt, groups.txt
    if name.endswith(".html"):
        return 2
    if name.endswith((".bw", ".bigWig")):
        return 0
    return 1  # .2bit, chrom.sizes, pictures


def publish(staging: Path, out: Path) -> list[Path]:
    """Move the finished hub in ``staging`` into ``out`` (see the module docstring); returns the files
    it replaced or added (not those left alone because they were unchanged)."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, out)
        return sorted(p for p in out.rglob("*") if p.is_file())
    previous = published_files(out)
    moved = []
    files = sorted((p for p in staging.rglob("*") if p.is_file()),
                   key=lambda p: (publish_rank(p.relative_to(staging).as_posix()), p.as_posix()))
    new = {p.relative_to(staging).as_posix() for p in files}
    for src in files:
        dst = out / src.relative_to(staging)
        if _same(src, dst):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        move(src, dst)
        moved.append(dst)
    shutil.rmtree(staging)
    for rel in sorted(previous - new):
        stale = out / rel
        if stale.is_file() or stale.is_symlink():
            stale.unlink()
            _remove_empty_parents(stale.parent, out)
    return moved


def move(src: Path, dst: Path) -> None:
    """One file into place by one rename (a reader sees the old file or the new one)."""
    os.replace(src, dst)


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (the same file: nothing written), or a copy where links fail."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _same(src: Path, dst: Path) -> bool:
    """True when ``dst`` is ``src`` (a hard link) or has the same bytes and mode."""
    try:
        a, b = src.stat(), dst.stat()
    except OSError:
        return False
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return True
    if a.st_size != b.st_size or (a.st_mode & 0o777) != (b.st_mode & 0o777):
        return False
    with open(src, "rb") as f, open(dst, "rb") as g:
        while True:
            x, y = f.read(1 << 20), g.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _remove_empty_parents(directory: Path, top: Path) -> None:
    while directory != top and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
