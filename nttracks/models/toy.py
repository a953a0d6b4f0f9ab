"""Toy models whose outputs are known functions of the sequence.

They run through the same pipeline as the real models, so a stitched bigWig can be checked at
every base by hand (tangermeme's toy-model idea):

- ``BaseIdentityModel``: channels A, C, G, T are the one-hot identity of each base, and ``gc6`` is
  the GC fraction of the 6-mer token containing the base, counted on the window's 6-mer grid. Both are
  independent of where a window lies, *provided* windows start on the contig's 6-mer grid as the
  tiler promises: a window shifted by one base changes ``gc6``. Every stitched base therefore equals
  the function computed on the contig directly.
- ``ContextGCModel``: ``gc_context``, the GC fraction of the bases within ``radius`` (50) bp of each base
  *inside its window*. It depends on the window's context on purpose: near a window's edge the
  neighbourhood is cut, so a window cut in the wrong place (or a region scored without its flanks)
  changes the stitched value, which is then the stitch-weighted mean of the window outputs.
- ``TokenGCModel``: ``token_gc``, the GC fraction of each 6-mer token, one value per token
  (resolution 6): stitched, it equals ``gc6``.
- ``WindowGCModel``: ``window_gc``, the GC fraction of the whole window, one value per window
  (resolution 0): stitched, each base is the stitch-weighted mean of the windows covering it.
- ``WindowPositionModel``: one channel, the relative position of each base within its window
  (i / length). Neighbouring windows disagree over their overlap by exactly stride / window, a known
  seam-QC figure.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from .base import PER_WINDOW, C, G, Geometry

TOY_GEOMETRY = Geometry(window=1200, multiple=24, min_length=48, grid=6)
CONTEXT_RADIUS = 50


def _gc(codes: torch.Tensor) -> torch.Tensor:
    return ((codes == C) | (codes == G)).float()


class ToyModel(nn.Module):
    """A toy model: ``channels``, the output ``resolution`` (bp per value; 0 one per window), a geometry."""

    channels: ClassVar[tuple[str, ...]]
    resolution: ClassVar[int] = 1

    def __init__(self, geometry: Geometry = TOY_GEOMETRY) -> None:
        super().__init__()
        self.geometry = dataclasses.replace(geometry, resolution=self.resolution)


class BaseIdentityModel(ToyModel):
    """codes (batch, length) uint8 -> (batch, length, 5): one-hot A, C, G, T and the 6-mer GC fraction."""

    channels = ("A", "C", "G", "T", "gc6")

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        batch, length = codes.shape
        self.geometry.check_length(length)
        onehot = nn.functional.one_hot(codes.long(), 5)[..., :4].float()  # N -> all zeros
        gc6 = _gc(codes).view(batch, length // 6, 6).mean(-1).repeat_interleave(6, dim=1)
        return torch.cat([onehot, gc6.unsqueeze(-1)], dim=-1)


class ContextGCModel(ToyModel):
    """codes (batch, length) -> (batch, length, 1): GC fraction of the bases within ``radius`` bp inside
    the window, i.e. the mean over [max(0, i - radius), min(length, i + radius + 1))."""

    channels = ("gc_context",)

    def __init__(self, geometry: Geometry = TOY_GEOMETRY, radius: int = CONTEXT_RADIUS) -> None:
        super().__init__(geometry)
        self.radius = radius

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        _, length = codes.shape
        self.geometry.check_length(length)
        # Prefix sums in float64: exact counts, so the value does not depend on where the window lies.
        cum = nn.functional.pad(_gc(codes).double().cumsum(1), (1, 0))
        i = torch.arange(length, device=codes.device)
        lo = (i - self.radius).clamp(min=0)
        hi = (i + self.radius + 1).clamp(max=length)
        return ((cum[:, hi] - cum[:, lo]) / (hi - lo).double()).float().unsqueeze(-1)


class TokenGCModel(ToyModel):
    """codes (batch, length) -> (batch, length // 6, 1): GC fraction of each 6-mer token (resolution 6)."""

    channels = ("token_gc",)
    resolution = 6

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        batch, length = codes.shape
        self.geometry.check_length(length)
        return _gc(codes).view(batch, length // 6, 6).mean(-1).unsqueeze(-1)


class WindowGCModel(ToyModel):
    """codes (batch, length) -> (batch, 1, 1): the GC fraction of the whole window (one value per window)."""

    channels = ("window_gc",)
    resolution = PER_WINDOW

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        self.geometry.check_length(codes.shape[1])
        return _gc(codes).double().mean(1).float().view(-1, 1, 1)


class WindowPositionModel(ToyModel):
    """codes (batch, length) -> (batch, length, 1): i / length for the i-th base of each window."""

    channels = ("pos",)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        batch, length = codes.shape
        self.geometry.check_length(length)
        pos = torch.arange(length, device=codes.device, dtype=torch.float32) / length
        return pos.expand(batch, length).unsqueeze(-1).contiguous()


TOY_MODELS: dict[str, type[ToyModel]] = {
    "base_identity": BaseIdentityModel,
    "context_gc": ContextGCModel,
    "token_gc": TokenGCModel,
    "window_gc": WindowGCModel,
}
