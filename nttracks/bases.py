"""Base codes and window geometry: the vocabulary the data layer and the models share, without torch.

Base codes are uint8: A=0, C=1, G=2, T=3, N=4. Soft-masked lowercase is folded to uppercase; the
IUPAC ambiguity codes (R Y S W K M B D H V) and N are N. ``encode`` and ``ASCII_TO_CODE`` turn FASTA
bytes into codes; any other byte (a digit, '-', or a letter that is no DNA code: U of RNA, E F I L P Q
of protein, ...) comes out as ``NOT_A_LETTER`` (255), which readers reject with its position.

``Geometry`` is where and how long a model's windows may be; each model declares one, and tiling
plans windows from it. It lives here, not with the models, so planning a run never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ModelError

__all__ = [
    "ASCII_TO_CODE",
    "BASES",
    "IUPAC_AMBIGUOUS",
    "NOT_A_LETTER",
    "PER_WINDOW",
    "A",
    "C",
    "G",
    "Geometry",
    "N",
    "T",
    "encode",
]

A, C, G, T, N = 0, 1, 2, 3, 4
BASES = "ACGTN"
"""The letter of each code: ``BASES[code]``."""

PER_WINDOW = 0
"""Geometry.resolution of a model that emits one value per window."""

NOT_A_LETTER = 255
"""ASCII_TO_CODE value of bytes that are no DNA letter: a malformed FASTA (or not DNA at all)."""

IUPAC_AMBIGUOUS = "RYSWKMBDHVN"
"""DNA letters other than A, C, G, T: ambiguity codes and N, all read as N."""

ASCII_TO_CODE = np.full(256, NOT_A_LETTER, dtype=np.uint8)
"""(256,) uint8 lookup table: byte -> base code (IUPAC ambiguity codes -> N, other bytes -> 255)."""
for _letter in IUPAC_AMBIGUOUS:
    ASCII_TO_CODE[ord(_letter)] = ASCII_TO_CODE[ord(_letter.lower())] = N
for _base, _code in (("A", A), ("C", C), ("G", G), ("T", T)):
    ASCII_TO_CODE[ord(_base)] = ASCII_TO_CODE[ord(_base.lower())] = _code
ASCII_TO_CODE.setflags(write=False)


def encode(seq: bytes | str | np.ndarray) -> np.ndarray:
    """ASCII sequence -> uint8 codes (n,): A0 C1 G2 T3, lowercase folded, any other letter N (4).

    Bytes that are no DNA letter come out as 255 (``NOT_A_LETTER``); ``Genome`` rejects them as malformed FASTA.
    """
    if isinstance(seq, str):
        seq = seq.encode("ascii")
    raw = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, bytes | bytearray) else seq
    return ASCII_TO_CODE[raw]


@dataclass(frozen=True)
class Geometry:
    """Where and how long a model's windows may be.

    window: default window length in bp (a multiple of ``multiple``).
    multiple: every window length must be a multiple of this (6 for 6-mer tokens, 24 for SegmentNT).
    min_length: shortest window the model accepts (a multiple of ``multiple``).
    grid: window starts lie on this grid of their contig (6: overlapping windows tokenize alike).
    resolution: bp per output value (1 = per nucleotide, 6 = per 6-mer token; it divides ``multiple``),
        or ``PER_WINDOW`` (0): one value per window, whatever its length.
    """

    window: int
    multiple: int = 6
    min_length: int = 6
    grid: int = 6
    resolution: int = 1

    def __post_init__(self) -> None:
        for name in ("window", "multiple", "min_length", "grid"):
            if getattr(self, name) < 1:
                raise ModelError(f"model geometry: {name}={getattr(self, name)} must be >= 1")
        if self.resolution < 0 or (self.resolution and self.multiple % self.resolution):
            raise ModelError(
                f"model geometry: resolution {self.resolution} must be 0 (one value per window) or "
                f"divide the multiple {self.multiple}"
            )
        if self.window % self.multiple or self.min_length % self.multiple:
            raise ModelError(
                f"model geometry: window {self.window} and min_length {self.min_length} "
                f"must be multiples of {self.multiple}"
            )
        if self.min_length > self.window:
            raise ModelError(f"model geometry: min_length {self.min_length} > window {self.window}")
        if self.multiple % self.grid:
            raise ModelError(
                f"model geometry: multiple {self.multiple} must be a multiple of grid {self.grid}"
            )

    def with_window(self, window: int) -> Geometry:
        """The same geometry with another window length (checked)."""
        return Geometry(window, self.multiple, self.min_length, self.grid, self.resolution)

    def outputs(self, length: int) -> int:
        """Values the model emits for a window of ``length`` bp."""
        return 1 if self.resolution == PER_WINDOW else length // self.resolution

    def check_length(self, length: int) -> None:
        """Raise ModelError unless ``length`` is a valid window length for this model."""
        if length % self.multiple or length < self.min_length:
            raise ModelError(
                f"window of {length} bp: this model takes windows of at least {self.min_length} bp "
                f"in multiples of {self.multiple} bp"
            )
