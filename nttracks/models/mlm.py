"""Masked-LM tracks: per-position scores from NT's 6-mer token distribution, and the masking passes.

For each DNA token the LM head gives logits over the vocabulary; restricted to the 4,096 6-mer tokens
and renormalized (the only tokens a window of full 6-mers holds), they are a distribution over the
token's 6-mer. Per position i of the token it marginalizes into base probabilities

    p_i(b) = sum over 6-mers k with base b at offset i of p(k)        (nt_spec.md, per_base_probabilities)

computed as one matrix product on probabilities relative to the token's most likely 6-mer, then logged.
Per base, with ref the genome's base and logs in base 2:

- ``constraint``     = log2 p(ref) - log2 max_{alt != ref} p(alt)   bits; > 0 where the model prefers the
                       reference over every alternative, < 0 where it prefers an alternative;
- ``entropy``        = -sum_b p(b) log2 p(b)                          bits, 0 (certain) .. 2 (uniform);
- ``ref_prob``       = p(ref)                                          probability, 0 .. 1;

and per token, the same value on each of its six bases:

- ``recon_accuracy`` = 1 when the most likely 6-mer is the window's own (ties count as reconstructed), else 0;
- ``perplexity``     = exp(-ln p(true 6-mer)) = 1 / p(true 6-mer)      1 (certain and right); 4,096 for
                       uniform guessing; more where the true 6-mer gets less than uniform mass (at most e^80).

Masking: ``none`` runs one unmasked pass per window; ``every_k`` runs k passes, pass j replacing DNA tokens
j, j + k, j + 2k, ... with ``<mask>``, and takes each token's distribution from the pass that masked it, so
every token is predicted while masked exactly once (passes that would mask nothing, j >= tokens, are
skipped). The LM head runs only on the tokens a pass predicts, and only its 6-mer rows. The CLS token is
never scored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .base import Geometry
from .nt import NTConfig, NTForMaskedLM
from .tokenizer import KMER, NUM_KMERS, V2, kmer_base_matrix, tokenize_acgt

CHANNELS = ("constraint", "entropy", "ref_prob", "recon_accuracy", "perplexity")
MASKINGS = ("none", "every_k")
_LN2 = math.log(2.0)
MAX_LOG_PERPLEXITY = 80.0  # a perplexity above e^80 (p(true) < 2e-35) is stored as e^80: float32 overflows at e^88


def check_window_fits(geometry: Geometry, config: NTConfig) -> None:
    """Raise ModelError when the geometry's window holds more tokens than the model takes."""
    max_bp = (config.max_tokens - 1) * KMER
    if geometry.window > max_bp:
        raise ModelError(
            f"window of {geometry.window} bp is longer than this model takes: {config.max_tokens} tokens "
            f"with CLS, i.e. at most {max_bp} bp; set the family's window to {max_bp} or less"
        )


def check_acgt_window(codes: torch.Tensor, geometry: Geometry, what: str) -> None:
    """Raise ModelError for a batch of windows a 6-mer model cannot score: wrong shape or length, or N
    (a window of N-free sequence only, which the tiling guarantees)."""
    if codes.dim() != 2 or codes.dtype != torch.uint8:
        raise ModelError(f"{what} take uint8 codes (batch, length), got {codes.dtype} {tuple(codes.shape)}")
    geometry.check_length(codes.shape[1])
    bad = codes.gt(3)
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ModelError(
            f"{what} score N-free windows only: window {row} has a non-ACGT base at position {col}; "
            "score N-free contigs (the tiling keeps N out)"
        )


def kmer_logits(lm: NTForMaskedLM, hidden: torch.Tensor) -> torch.Tensor:
    """Post-LayerNorm hidden states (..., hidden) -> the LM head's logits of the 4,096 6-mer tokens only,
    (..., 4096) float32 (the decoder's other rows are never computed)."""
    head, vocab = lm.lm_head, lm.config.vocab
    rows = slice(vocab.kmer_offset, vocab.kmer_offset + NUM_KMERS)
    return F.linear(head.features(hidden), head.decoder.weight[rows], head.bias[rows]).float()


def position_log_marginals(kmer_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """6-mer logits (batch, tokens, 4096) -> (per-offset base log-probabilities (batch, tokens, 6, 4), natural
    log, columns A, C, G, T; the log normalizer logsumexp(logits) (batch, tokens)).

    One matrix product with the (4096, 6 x 4) one-hot table of which base each 6-mer has at each offset
    (``kmer_base_matrix``), on exp(logit - max logit) so the most likely 6-mer counts 1; the four marginals of
    an offset add up to the normalizer. A marginal below float32's smallest normal number (1e-38) of the most
    likely 6-mer's weight is taken as that (a log2 ratio of at most 126 bits).
    """
    batch, tokens, _ = kmer_logits.shape
    top = kmer_logits.amax(dim=-1, keepdim=True)
    weights = (kmer_logits - top).exp()
    table = kmer_base_matrix(V2).to(kmer_logits.device)  # the same for every vocabulary
    marginals = (weights @ table.reshape(NUM_KMERS, KMER * 4)).reshape(batch, tokens, KMER, 4)
    log_norm = marginals[:, :, 0].sum(dim=-1).log()
    logs = marginals.clamp_min(torch.finfo(torch.float32).tiny).log() - log_norm[..., None, None]
    return logs, top.squeeze(-1) + log_norm


def base_scores(log_marginals: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-base constraint, entropy (bits) and p(ref).

    log_marginals: (batch, length, 4) natural-log base probabilities, columns A, C, G, T;
    ref: (batch, length) genome codes 0..3. Returns {channel: (batch, length) float32}.
    """
    ref = ref.long().unsqueeze(-1)
    log_ref = log_marginals.gather(-1, ref).squeeze(-1)
    is_ref = torch.zeros_like(log_marginals, dtype=torch.bool).scatter_(-1, ref, True)
    log_alt = log_marginals.masked_fill(is_ref, float("-inf")).amax(dim=-1)
    p = log_marginals.exp()
    return {
        "constraint": (log_ref - log_alt) / _LN2,
        "entropy": -(p * log_marginals).sum(dim=-1) / _LN2,
        "ref_prob": log_ref.exp(),
    }


def token_scores(kmer_logits: torch.Tensor, true_kmer: torch.Tensor, log_z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-token reconstruction accuracy and perplexity.

    kmer_logits: (batch, tokens, 4096) 6-mer logits; true_kmer: (batch, tokens) the window's 6-mer indices
    (0..4095); log_z: (batch, tokens) logsumexp of the logits. Returns {channel: (batch, tokens) float32}.
    """
    true = kmer_logits.gather(-1, true_kmer.unsqueeze(-1)).squeeze(-1)
    return {
        "recon_accuracy": (true >= kmer_logits.amax(dim=-1)).float(),
        "perplexity": (log_z - true).clamp(max=MAX_LOG_PERPLEXITY).exp(),
    }


def masking_passes(tokens: int, masking: str, k: int | None) -> list[torch.Tensor | None]:
    """The DNA-token indices (0-based, CLS excluded) each pass masks and predicts; [None] for one
    unmasked pass."""
    if masking == "none":
        return [None]
    if masking != "every_k" or k is None or k < 1:
        raise ModelError(f"masking {masking!r} with k={k}: use masking none, or every_k with k >= 1")
    return [torch.arange(j, tokens, k) for j in range(min(k, tokens))]


class MaskedLMTracks(nn.Module):
    """NT masked LM as a ``TrackModel``: forward(codes (batch, length) uint8, N-free, length % 6 == 0)
    -> (batch, length, channels) float32 per-base scores, channels in the order asked for."""

    def __init__(
        self,
        lm: NTForMaskedLM,
        geometry: Geometry,
        channels: tuple[str, ...] = CHANNELS,
        masking: str = "none",
        k: int | None = None,
    ) -> None:
        super().__init__()
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown or not channels:
            raise ModelError(f"masked-LM channels {list(channels)}: choose from {', '.join(CHANNELS)}")
        masking_passes(1, masking, k)  # checks the masking
        self.lm = lm
        self.vocab = lm.config.vocab
        self.geometry = geometry
        self.channels = tuple(channels)
        self.masking, self.k = masking, k
        check_window_fits(geometry, lm.config)

    def token_kmer_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (batch, 1 + tokens), CLS first -> (batch, tokens, 4096) 6-mer logits of the DNA tokens, each
        from the pass that predicts it (CLS is never scored)."""
        batch, width = ids.shape
        tokens = width - 1
        passes = masking_passes(tokens, self.masking, self.k)
        if passes == [None]:
            return kmer_logits(self.lm, self.lm.backbone(ids)[:, 1:])
        out = torch.empty((batch, tokens, NUM_KMERS), dtype=torch.float32, device=ids.device)
        for predicted in passes:
            where = predicted.to(ids.device)
            masked = ids.clone()
            masked[:, where + 1] = self.vocab.mask
            out[:, where] = kmer_logits(self.lm, self.lm.backbone(masked)[:, where + 1])
        return out

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        check_acgt_window(codes, self.geometry, "masked-LM tracks")
        batch, length = codes.shape
        ids = tokenize_acgt(codes, self.vocab)
        logits = self.token_kmer_logits(ids)  # (batch, tokens, 4096)
        scores: dict[str, torch.Tensor] = {}
        if any(c in ("constraint", "entropy", "ref_prob") for c in self.channels):
            marginals, log_z = position_log_marginals(logits)
            scores.update(base_scores(marginals.reshape(batch, length, 4), codes))
        else:
            log_z = logits.logsumexp(dim=-1)
        if any(c in ("recon_accuracy", "perplexity") for c in self.channels):
            true_kmer = ids[:, 1:] - self.vocab.kmer_offset
            for name, value in token_scores(logits, true_kmer, log_z).items():
                scores[name] = value.repeat_interleave(KMER, dim=1)
        return torch.stack([scores[c] for c in self.channels], dim=-1)

