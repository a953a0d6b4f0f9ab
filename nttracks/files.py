"""Writing files atomically, with the permissions any other program's files would get.

A reader (a genome browser, a web server, another run) never sees half a file: it is written to a
temporary name beside its destination and renamed onto it when complete. The temporary file is
created with mode 0o666 and the process umask (and any default ACL of the directory) applied, as
``open(path, "w")`` would, so under the usual umask 022 the result is 0644: readable by a web
server running as another user. (``tempfile.mkstemp`` would create it 0600, readable by its owner only.)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer"]

_ATTEMPTS = 100  # temporary names tried before giving up (a clash needs the same 32 random bits)


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file (writable, seekable) that replaces ``path`` when the ``with`` block completes.

    The file is ``.<name>.<random>.part`` in ``path``'s directory, which must exist. When the block
    raises, the temporary file is removed and ``path`` is left as it was. The final file has mode
    ``0o666 & ~umask``, whatever mode an earlier file at ``path`` had.
    """
    path = Path(path)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, empty temporary file beside ``path``: (descriptor open for writing, its path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            # 0o666: the kernel applies the umask (or the directory's default ACL) itself, so the
            # umask is never read or changed here (os.umask is process-wide, and not thread-safe).
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} tries")
