"""The model interface the pipeline runs: geometry, channel names and one forward.

Every model nttracks slides across a genome (toy models, SegmentNT, the enhancer head, the
masked-LM sensitivity model) is a ``torch.nn.Module`` that declares its ``Geometry`` in one place
and maps a batch of base codes to per-base outputs.

``Geometry`` and the base codes (A=0, C=1, G=2, T=3, N=4) live in the torch-free ``nttracks.bases``
and are re-exported here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..bases import BASES, PER_WINDOW, A, C, G, Geometry, N, T

__all__ = ["BASES", "PER_WINDOW", "A", "C", "G", "Geometry", "N", "T", "TrackModel"]


@runtime_checkable
class TrackModel(Protocol):
    """What the pipeline needs of a model.

    ``forward(codes)``: codes (batch, length) uint8 on the model's device ->
    (batch, geometry.outputs(length), channels) float32 outputs (per base, per k bases or per window).
    """

    geometry: Geometry
    channels: tuple[str, ...]

    def __call__(self, codes: torch.Tensor) -> torch.Tensor: ...
