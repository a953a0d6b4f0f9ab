"""Variant-scoring models: per-token embeddings of a window, and the masked LM's base distribution at masked tokens.

A variant model maps a batch of windows to ``(batch, tokens, width)`` float32: per 6-mer token, the embedding
of the chosen layer (``hidden`` columns) and, with an LM (``has_lm``), 24 more columns: at each *masked* token
the natural-log base probabilities of its six offsets (offset-major, columns A, C, G, T; 0 at unmasked tokens).

On the CPU the attention runs by its plain formula, so every score is exactly the same whatever the batch
size (the fused kernel's rounding depends on it); on a GPU, scores agree across batch sizes to float rounding.

Windows are base codes (A=0, C=1, G=2, T=3) whose masked tokens are written as ``MASK_CODE`` (5) on all six of
their bases, so the windows of ``nttracks.predict`` (key, uint8 codes) carry the masking with them and one
batched forward serves unmasked (embedding) and masked (log-likelihood) windows alike.

- ``NTVariantModel``: an NT masked LM (v1 or v2). Embeddings of layer ``layer`` (HF ``hidden_states``
  numbering: 0 the token embeddings, L the last block after the final LayerNorm); the LM head runs only on
  the masked tokens, and only its 4,096 6-mer rows (``models.mlm``).
- ``KmerOneHotModel``: the toy of the tests: each token's embedding is the one-hot of its 6-mer (4,096
  columns), so every distance is known by hand (an SNV's token: L1 = 2, L2 = sqrt 2, dot = 0, cosine = 0).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..errors import ModelError
from .base import Geometry
from .mlm import kmer_logits, position_log_marginals
from .nt import NTForMaskedLM
from .tokenizer import KMER, NUM_KMERS, tokenize_acgt

MASK_CODE = 5
LM_COLUMNS = KMER * 4  # per masked token: 6 offsets x (A, C, G, T) log-probabilities


def _split(codes: torch.Tensor, geometry: Geometry, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (batch, length) uint8 -> (codes with masked bases as A, masked tokens (batch, tokens) bool)."""
    if codes.dim() != 2 or codes.dtype != torch.uint8:
        raise ModelError(f"{what} takes uint8 codes (batch, length), got {codes.dtype} {tuple(codes.shape)}")
    geometry.check_length(codes.shape[1])
    masked = codes.eq(MASK_CODE)
    clean = codes.masked_fill(masked, 0)
    bad = clean.gt(3)
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ModelError(f"{what} scores N-free windows only: window {row} has a non-ACGT base at {col}")
    batch, length = codes.shape
    return clean, masked.view(batch, length // KMER, KMER).any(-1)


def _batch_independent_attention(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type != "cpu":
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False, enable_math=True)
    return sdpa_kernel(SDPBackend.MATH)


class NTVariantModel(nn.Module):
    """forward(codes (batch, length) uint8, length % 6 == 0, masked tokens as MASK_CODE) ->
    (batch, length // 6, hidden + 24) float32: layer ``layer``'s token embeddings, then the masked tokens'
    per-offset base log-probabilities."""

    has_lm = True

    def __init__(self, lm: NTForMaskedLM, geometry: Geometry, layer: int | None = None) -> None:
        super().__init__()
        layers = lm.config.layers
        self.layer = layers if layer is None else layer
        if not 0 <= self.layer <= layers:
            raise ModelError(f"layer {layer}: this model has layers 0..{layers} (0: token embeddings, "
                             f"{layers}: the last, after the final LayerNorm)")
        self.lm = lm
        self.vocab = lm.config.vocab
        self.geometry = geometry
        self.hidden = lm.config.hidden
        self.width = self.hidden + LM_COLUMNS

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        # On the CPU, attention by its plain formula: the fused CPU kernel splits its work by batch size, so a
        # window's scores would depend (in the last bits) on how many windows share its batch.
        with _batch_independent_attention(codes.device):
            return self._forward(codes)

    def _forward(self, codes: torch.Tensor) -> torch.Tensor:
        clean, masked = _split(codes, self.geometry, "the variant scorer")
        ids = tokenize_acgt(clean, self.vocab)
        ids[:, 1:].masked_fill_(masked, self.vocab.mask)
        backbone = self.lm.backbone
        any_masked = bool(masked.any())
        x, rotary, attn_mask = backbone.embed_tokens(ids)
        blocks = backbone.blocks if any_masked else backbone.blocks[: self.layer]
        embedding = x if self.layer == 0 else None
        for i, block in enumerate(blocks, start=1):
            x = block(x, rotary, attn_mask)
            if i == self.layer and i < len(backbone.blocks):
                embedding = x
        if embedding is None or any_masked:
            final = backbone.final_norm(x)
            if embedding is None:
                embedding = final
        out = torch.zeros((*masked.shape, self.width), dtype=torch.float32, device=codes.device)
        out[..., : self.hidden] = embedding[:, 1:].float()
        if any_masked:
            # One masked token at a time: a matrix product's rounding may depend on its row count, and a
            # variant's score must not depend on how many other masked tokens share its batch.
            rows = final[:, 1:][masked]  # (masked tokens, hidden)
            logs = [position_log_marginals(kmer_logits(self.lm, rows[j : j + 1]).unsqueeze(0))[0]
                    for j in range(rows.shape[0])]  # each (1, 6, 4)
            out[..., self.hidden :][masked] = torch.cat(logs).reshape(-1, LM_COLUMNS)
        return out


class KmerOneHotModel(nn.Module):
    """forward(codes (batch, length) uint8 A/C/G/T, length % 6 == 0) -> (batch, length // 6, 4096) float32:
    the one-hot of each token's 6-mer, index sum_i code_i * 4^(5 - i). No LM (``has_lm`` False)."""

    has_lm = False
    hidden = NUM_KMERS

    def __init__(self, geometry: Geometry | None = None) -> None:
        super().__init__()
        self.geometry = geometry or Geometry(window=120, multiple=KMER, min_length=KMER, grid=KMER)
        self.width = NUM_KMERS

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        clean, masked = _split(codes, self.geometry, "the k-mer one-hot model")
        if bool(masked.any()):
            raise ModelError("the k-mer one-hot model has no LM: it takes no masked tokens")
        batch, length = clean.shape
        weights = torch.tensor([4 ** (KMER - 1 - i) for i in range(KMER)], device=codes.device)
        index = (clean.long().view(batch, length // KMER, KMER) * weights).sum(-1)
        return nn.functional.one_hot(index, NUM_KMERS).float()
