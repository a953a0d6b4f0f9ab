"""The UCSC .2bit writer: a genome's sequence, N blocks and soft mask, for an assembly hub.

An assembly hub (a genome UCSC does not host, e.g. the demo) ships the genome as .2bit beside
its chrom.sizes; browsers read it with byte-range requests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bases import ASCII_TO_CODE, NOT_A_LETTER, A, C, G, N, T
from .errors import GenomeError
from .files import atomic_writer
from .genome import Genome, _runs

__all__ = ["write_twobit"]

_TWOBIT_SIGNATURE = 0x1A412743
_TWOBIT_VALUE = np.zeros(256, dtype=np.uint8)  # UCSC 2bit packing: T=0 C=1 A=2 G=3 (N stored as T)
_TWOBIT_VALUE[[A, C, G, T, N]] = [2, 1, 3, 0, 0]


def write_twobit(genome: Genome, path: Path) -> None:
    """Write ``genome`` as a UCSC .2bit (version 0): packed bases, N blocks and soft-mask blocks.

    Chromosomes keep the genome's order; one chromosome is in memory at a time. Written to a
    temporary name and renamed when complete (``nttracks.files.atomic_writer``: mode 0666 & ~umask, so a
    web server running as another user can serve it). Layout (kent ``twoBit.c``): header (signature,
    version 0, count, reserved), index (name size, name, uint32 offset), then per sequence: dnaSize,
    nBlockCount/starts/sizes, maskBlockCount/starts/sizes, reserved, packed DNA (T=0 C=1 A=2 G=3,
    4 bases a byte, first base in the high bits). N (and any IUPAC code) is stored as T plus an N block.
    """
    path = Path(path)
    names = [chrom.encode("ascii") for chrom in genome.chroms]
    for name in names:
        if not 0 < len(name) <= 255:
            raise GenomeError(f"sequence name {name.decode()!r} cannot be stored in a .2bit (1-255 bytes)")
    index_end = 16 + sum(1 + len(name) + 4 for name in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as out:
        out.write(b"\0" * index_end)  # header and index are written last, once offsets are known
        offsets = []
        for chrom in genome.chroms:
            offsets.append(out.tell())
            if offsets[-1] > 0xFFFFFFFF:
                raise GenomeError(
                    f"genome {genome.name} is too large for a version-0 .2bit (over 4 GiB); "
                    "use UCSC faToTwoBit -long instead"
                )
            out.write(_twobit_record(genome, chrom))
        out.seek(0)
        out.write(np.array([_TWOBIT_SIGNATURE, 0, len(names), 0], dtype="<u4").tobytes())
        for name, offset in zip(names, offsets, strict=True):
            out.write(bytes([len(name)]) + name + np.array([offset], dtype="<u4").tobytes())


def _twobit_record(genome: Genome, chrom: str) -> bytes:
    """One sequence record of a .2bit file (see write_twobit)."""
    raw = genome.raw(chrom)
    codes = ASCII_TO_CODE[raw]
    if (codes == NOT_A_LETTER).any():
        genome.codes(chrom)  # raises the MalformedFastaError that names the position
    n_starts, n_ends = _runs(codes == N)
    m_starts, m_ends = _runs((raw >= ord("a")) & (raw <= ord("z")))
    vals = _TWOBIT_VALUE[codes]
    pad = (-len(vals)) % 4
    if pad:
        vals = np.concatenate([vals, np.zeros(pad, dtype=np.uint8)])
    quads = vals.reshape(-1, 4)
    packed = (quads[:, 0] << 6) | (quads[:, 1] << 4) | (quads[:, 2] << 2) | quads[:, 3]
    u4 = np.dtype("<u4")
    return b"".join(
        [
            np.array([len(raw), len(n_starts)], dtype=u4).tobytes(),
            n_starts.astype(u4).tobytes(),
            (n_ends - n_starts).astype(u4).tobytes(),
            np.array([len(m_starts)], dtype=u4).tobytes(),
            m_starts.astype(u4).tobytes(),
            (m_ends - m_starts).astype(u4).tobytes(),
            np.array([0], dtype=u4).tobytes(),
            packed.astype(np.uint8).tobytes(),
        ]
    )
