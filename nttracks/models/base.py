"""The model interface the pipeline runs: geometry, channel names and one forward.

Every model nttracks slides across a genome (toy models, SegmentNT, the enhancer head, the
masked-LM sensitivity model) is a ``torch.nn.Module`` that declares its geometry here, in one place,
and maps a batch of base codes to per-base outputs.

Base codes are the genome's uint8 codes (see ``nttracks.genome``): A=0, C=1, G=2, T=3, N=4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..errors import ModelError

A, C, G, T, N = 0, 1, 2, 3, 4
BASES = "ACGTN"
PER_WINDOW = 0  # Geometry.resolution of a model that emits one value per window


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


@runtime_checkable
class TrackModel(Protocol):
    """What the pipeline needs of a model.

    ``forward(codes)``: codes (batch, length) uint8 on the model's device ->
    (batch, geometry.outputs(length), channels) float32 outputs (per base, per k bases or per window).
    """

    geometry: Geometry
    channels: tuple[str, ...]

    def __call__(self, codes: torch.Tensor) -> torch.Tensor: ...
