"""Toy models whose outputs are known functions of the sequence.

They run through the same pipeline as the real models, so a stitched bigWig can be checked at
every base by hand (tangermeme's toy-model idea):

- ``BaseIdentityModel``: channels A, C, G, T are the one-hot identity of each base, and ``gc6`` is
  the GC fraction of the 6-mer token containing the base, counted on the window's 6-mer grid. Both are
  independent of where a window lies, *provided* windows start on the contig's 6-mer grid as the
  tiler promises: a window shifted by one base changes ``gc6``. Every stitched base therefore equals
  the function computed on the contig directly.
- ``WindowPositionModel``: one channel, the relative position of each base within its window
  (i / length). It depends on the window on purpose: neighbouring windows disagree over their
  overlap by exactly stride / window, a known seam-QC figure.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import C, G, Geometry

TOY_GEOMETRY = Geometry(window=1200, multiple=24, min_length=48, grid=6)


class BaseIdentityModel(nn.Module):
    """codes (batch, length) uint8 -> (batch, length, 5): one-hot A, C, G, T and the 6-mer GC fraction."""

    channels = ("A", "C", "G", "T", "gc6")

    def __init__(self, geometry: Geometry = TOY_GEOMETRY) -> None:
        super().__init__()
        self.geometry = geometry

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        batch, length = codes.shape
        self.geometry.check_length(length)
        onehot = nn.functional.one_hot(codes.long(), 5)[..., :4].float()  # N -> all zeros
        gc = ((codes == C) | (codes == G)).float()
        gc6 = gc.view(batch, length // 6, 6).mean(-1).repeat_interleave(6, dim=1)
        return torch.cat([onehot, gc6.unsqueeze(-1)], dim=-1)


class WindowPositionModel(nn.Module):
    """codes (batch, length) -> (batch, length, 1): i / length for the i-th base of each window."""

    channels = ("pos",)

    def __init__(self, geometry: Geometry = TOY_GEOMETRY) -> None:
        super().__init__()
        self.geometry = geometry

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        batch, length = codes.shape
        self.geometry.check_length(length)
        pos = torch.arange(length, device=codes.device, dtype=torch.float32) / length
        return pos.expand(batch, length).unsqueeze(-1).contiguous()
