"""File-level checks of a hub: readable by a web server, and the binary files being what they claim.

Used by the validator (``hubcheck``): a hub can pass every rule about its text files and still fail in a
browser because a file is mode 0600 (nginx runs as www-data: a 403) or a bigWig is empty or of another
assembly.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

BIGWIG_MAGIC = 0x888FFC26
TWOBIT_MAGIC = 0x1A412743


def permission_problems(root: Path) -> list[tuple[str, str]]:
    """(where, message) for every file under ``root`` others cannot read (no S_IROTH) and every directory
    they cannot enter (no S_IXOTH), ``root`` itself included; ``where`` is relative to ``root``.

    Browsers fetch the hub from a web server (nginx, Apache), whose workers run as another user
    (www-data): a file only its owner can read is a 403 there, though it passes every other check.
    """
    root = Path(root).resolve()
    problems: list[tuple[str, str]] = []

    def walk_error(e: OSError) -> None:
        problems.append((_rel(root, Path(e.filename)), f"cannot list this directory: {e.strerror or e}"))

    for top, dirs, files in os.walk(root, onerror=walk_error):
        dirs.sort()
        here = Path(top)
        for path, is_dir in [(here, True)] + [(here / f, False) for f in sorted(files)]:
            where = path.relative_to(root).as_posix()  # "." for the hub directory; links unresolved
            try:
                mode = path.stat().st_mode
            except OSError as e:
                problems.append((where, f"cannot be read: {e.strerror or e}"))
                continue
            if is_dir and not mode & stat.S_IXOTH:
                problems.append((where, f"others cannot enter this directory (mode {stat.S_IMODE(mode):04o}), "
                                 "so a web server running as another user (e.g. www-data) cannot reach the files "
                                 f"in it; run 'chmod o+x {path}' (or 'chmod -R o+rX' on the hub) and check the "
                                 "umask of the process that created it"))
            elif not is_dir and not mode & stat.S_IROTH:
                problems.append((where, f"others cannot read this file (mode {stat.S_IMODE(mode):04o}), so a "
                                 "web server running as another user (e.g. www-data) cannot serve it; run "
                                 f"'chmod o+r {path}' (or 'chmod -R o+rX' on the hub) and check the umask of "
                                 "the process that wrote it"))
    return problems


def _rel(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def magic(path: Path) -> int | None:
    """The first 4 bytes of ``path`` as a bigWig or .2bit signature (either byte order), else as read."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if len(head) != 4:
        return None
    little = int.from_bytes(head, "little")
    big = int.from_bytes(head, "big")
    return little if little in (BIGWIG_MAGIC, TWOBIT_MAGIC) else big


def bigwig_problem(path: Path, chroms: dict[str, int] | None) -> str | None:
    """Why ``path`` is not a usable bigWig, or None. The magic check keeps libBigWig's stderr quiet."""
    if magic(path) != BIGWIG_MAGIC:
        return "is not a big wig file"
    import pyBigWig  # lazy: only the validator opens bigWigs

    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:
        return "is not a big wig file (cannot be opened)"
    try:
        if not bw.isBigWig():
            return "is not a big wig file"
        if bw.header()["nBasesCovered"] == 0:
            return "is an empty bigWig (no data); browsers cannot read it"
        if chroms is not None:
            return chrom_problem(bw.chroms(), chroms)
    finally:
        bw.close()
    return None


def chrom_problem(found: dict[str, int], chroms: dict[str, int]) -> str | None:
    """Why a bigWig with chromosomes ``found`` (name -> length) does not fit a genome's ``chroms``."""
    for chrom, size in found.items():
        if chroms.get(chrom) != size:
            return (f"has chromosome {chrom} of length {size}, which is not in chromSizes"
                    if chrom not in chroms else
                    f"has chromosome {chrom} of length {size}, but chromSizes says {chroms[chrom]}")
    return None
