"""Attention tracks: the attention mass each DNA token receives from chosen (layer, head) pairs.

For one (layer, head) and a window of T DNA tokens after CLS (token 0), with A[q, j] the weight query q
puts on key j (rows sum to 1; from the explicit path ``nt.attention_maps``), the track of DNA token j is

    mass[j] = (1 / T) * sum over the DNA queries q = 1..T of A[q, j]          (j = 1..T)

the mean over the window's DNA tokens of the weight they put on token j: 1 / T where attention is
uniform, 0 .. 1 in all. CLS is part of the model's input, so every query attends over it as a key and it
has a query row of its own, but it is neither a query nor a key of a track: its row (what CLS looks at) is
left out of the mean, and its column (the weight the DNA tokens put on CLS, 1 - sum_j mass[j]) is dropped.
The output is one value per token (geometry resolution 6), which stitching spreads over its six bases.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from .base import Geometry
from .mlm import check_acgt_window, check_window_fits
from .nt import NTBackbone, attention_maps
from .tokenizer import tokenize_acgt


def pair_channel(layer: int, head: int) -> str:
    """Channel name of a (layer, head) pair: ``L<layer>H<head>``, both counted from 0."""
    return f"L{layer}H{head}"


class AttentionTracks(nn.Module):
    """An NT backbone as a ``TrackModel``: forward(codes (batch, length) uint8, N-free, length % 6 == 0)
    -> (batch, length // 6, pairs) float32 attention mass per DNA token, one channel per pair."""

    def __init__(self, backbone: NTBackbone, geometry: Geometry, pairs: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        config = backbone.config
        if not pairs:
            raise ModelError("attention tracks need at least one (layer, head) pair")
        for layer, head in pairs:
            if not (0 <= layer < config.layers and 0 <= head < config.heads):
                raise ModelError(
                    f"attention head {pair_channel(layer, head)} does not exist: this model has layers "
                    f"0..{config.layers - 1} and heads 0..{config.heads - 1} (L<layer>H<head>, from 0)"
                )
        check_window_fits(geometry, config)
        self.backbone = backbone
        self.geometry = geometry
        self.pairs = tuple(pairs)
        self.layers = tuple(sorted({layer for layer, _ in pairs}))
        self.channels = tuple(pair_channel(layer, head) for layer, head in pairs)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        check_acgt_window(codes, self.geometry, "attention tracks")
        ids = tokenize_acgt(codes, self.backbone.config.vocab)
        probs = attention_maps(self.backbone, ids, layers=self.layers).probs
        # (batch, DNA queries, DNA keys) per pair: CLS's row and column dropped, mean over the queries
        return torch.stack([probs[layer][:, head, 1:, 1:].mean(dim=1) for layer, head in self.pairs], dim=-1)
