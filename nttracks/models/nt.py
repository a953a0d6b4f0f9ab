"""Nucleotide Transformer backbones (v1 and v2) and the masked-LM head, in plain PyTorch.

v1: learned positions with the ESM offset (CLS at position 2), the token-dropout rescale (x0.88 when
no ``<mask>`` is present), GELU feed-forward with bias. v2: rotary embeddings (optionally NTK-rescaled
as SegmentNT does) and the bias-free SwiGLU feed-forward. Both: pre-LayerNorm blocks with q/k/v/o
biases, a final LayerNorm, attention through ``scaled_dot_product_attention`` (no mask unless a batch
is padded). Module names follow the HF checkpoint layout through ``hf_name`` (see ``loading.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .base import Geometry
from .tokenizer import ACGT_TO_NT, KMER, Tokens, Vocabulary, kmer_base_matrix, vocabulary_for

ROPE_BASE = 10000.0


@dataclass(frozen=True)
class NTConfig:
    """Architecture of one NT backbone (read from an HF config.json by ``loading.py``).

    glu: SwiGLU feed-forward (fc1 has 2*intermediate outputs, first half gated) else GELU.
    ffn_bias: biases on the two feed-forward linears (v1 and upstream-ESM rotary: True; NT v2: False).
    rotary: rotary positions (v2) else learned positions with the ESM offset (v1).
    max_positions: rows of the learned position table (v1: 1002 -> at most 1000 tokens incl. CLS);
        for rotary models the training length + 2 (2050 -> 2048 tokens), advisory only.
    rope_scaling: NTK factor s applied to the rotary base (base * s^(d/(d-2))); None = unscaled.
    rope_long_context: above this many tokens (incl. CLS) the factor becomes tokens / 2048
        (SegmentNT's rule for inputs longer than its 30 kb training length); None = never.
    """

    vocab_size: int = 4107
    hidden: int = 1024
    layers: int = 29
    heads: int = 16
    intermediate: int = 4096
    glu: bool = True
    ffn_bias: bool = False
    rotary: bool = True
    token_dropout: bool = False
    max_positions: int = 2050
    layer_norm_eps: float = 1e-12
    rope_scaling: float | None = None
    rope_long_context: int | None = None

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ModelError(f"hidden size {self.hidden} is not divisible by {self.heads} attention heads")
        if self.rotary and (self.hidden // self.heads) % 2:
            raise ModelError(
                f"rotary embeddings need an even head dimension, got {self.hidden // self.heads}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def vocab(self) -> Vocabulary:
        return vocabulary_for(self.vocab_size)

    @property
    def max_tokens(self) -> int:
        """Most tokens (incl. CLS) per window: the learned table size minus the ESM offset of 2."""
        return self.max_positions - 2

    def rope_factor(self, num_tokens: int) -> float | None:
        """NTK factor for a window of ``num_tokens`` tokens (incl. CLS), or None for no rescaling."""
        if self.rope_long_context is not None and num_tokens > self.rope_long_context:
            return num_tokens / (self.max_positions - 2)
        return self.rope_scaling

    def rope_base(self, num_tokens: int) -> float:
        """Rotary base for ``num_tokens``: 10000 * s^(d/(d-2)) with d the head dimension."""
        factor = self.rope_factor(num_tokens)
        if factor is None:
            return ROPE_BASE
        d = self.head_dim
        return ROPE_BASE * factor ** (d / (d - 2))

    def with_(self, **changes: object) -> NTConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


def rotary_cos_sin(
    num_tokens: int, head_dim: int, base: float, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """cos, sin: (tokens, head_dim) float32 for non-interleaved (rotate-half) RoPE, positions 0..T-1."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    angles = torch.outer(torch.arange(num_tokens, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (batch, heads, tokens, head_dim); rotation computed in float32, returned in x's dtype."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


class FeedForward(nn.Module):
    """GELU (exact erf, as the checkpoints were trained) or SwiGLU feed-forward."""

    def __init__(self, config: NTConfig) -> None:
        super().__init__()
        width = 2 * config.intermediate if config.glu else config.intermediate
        self.glu = config.glu
        self.fc1 = nn.Linear(config.hidden, width, bias=config.ffn_bias)
        self.fc2 = nn.Linear(config.intermediate, config.hidden, bias=config.ffn_bias)
        # IA3 rescaling of the activation (intermediate,), or None: see ``add_ia3``
        self.register_parameter("ia3_scale", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.glu:
            gate, value = h.chunk(2, dim=-1)  # the first half is the gated one
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        if self.ia3_scale is not None:
            h = h * self.ia3_scale
        return self.fc2(h)


class Block(nn.Module):
    """Pre-LayerNorm encoder block: x + o(attn(LN(x))), then h + ffn(LN(h))."""

    def __init__(self, config: NTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.attn_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.q = nn.Linear(config.hidden, config.hidden)
        self.k = nn.Linear(config.hidden, config.hidden)
        self.v = nn.Linear(config.hidden, config.hidden)
        self.o = nn.Linear(config.hidden, config.hidden)
        self.ffn_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        # IA3 rescaling of keys and values (heads, 1, head_dim), or None: see ``add_ia3``
        self.register_parameter("ia3_key", None)
        self.register_parameter("ia3_value", None)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """x: (batch, tokens, hidden); attn_mask: (batch, 1, 1, tokens) bool, True = attend, or None."""
        q, k, v = self.qkv(x, rotary)
        return self.update(x, F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask))

    def qkv(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of LN(x), rotary applied: each (batch, heads, tokens, head_dim)."""
        batch, tokens, hidden = x.shape
        h = self.attn_norm(x)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, tokens, self.heads, hidden // self.heads).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        if self.ia3_key is not None:
            k, v = k * self.ia3_key, v * self.ia3_value
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return q, k, v

    def update(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The block's output from its input x (batch, tokens, hidden) and the attention output a
        (batch, heads, tokens, head_dim): x + o(a), then the feed-forward half."""
        batch, tokens, hidden = x.shape
        x = x + self.o(a.transpose(1, 2).reshape(batch, tokens, hidden))
        return x + self.ffn(self.ffn_norm(x))


class NTBackbone(nn.Module):
    """Token embeddings, the encoder blocks and the final LayerNorm.

    ``forward(ids)``: ids (batch, tokens) int64 -> (batch, tokens, hidden) post-LayerNorm embeddings.
    """

    def __init__(self, config: NTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        self.pos_embed = None if config.rotary else nn.Embedding(config.max_positions, config.hidden)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids: (batch, tokens); pad_mask: (batch, tokens) bool, True at <pad>, or None (no padding)."""
        return self.hidden_states(ids, self.config.layers, pad_mask)

    def hidden_states(
        self, ids: torch.Tensor, layer: int, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token embeddings after ``layer`` blocks: (batch, tokens, hidden).

        layer 0 is the embedding output, 1..L-1 the raw block outputs, and L (the last) the output
        after the final LayerNorm -- the numbering of HF's ``hidden_states``.
        """
        config = self.config
        if not 0 <= layer <= config.layers:
            raise ModelError(f"layer {layer} does not exist: this model has layers 0..{config.layers}")
        x, rotary, attn_mask = self.embed_tokens(ids, pad_mask)
        for block in self.blocks[:layer]:
            x = block(x, rotary, attn_mask)
        if layer == config.layers:
            x = self.final_norm(x)
        return x

    def embed_tokens(
        self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        """What the blocks take: the token embeddings (batch, tokens, hidden), the rotary cos/sin
        (tokens, head_dim) or None, and the attention mask (batch, 1, 1, tokens) or None."""
        config = self.config
        tokens = ids.shape[1]
        if not config.rotary and tokens > config.max_tokens:
            raise ModelError(
                f"{tokens} tokens exceed this model's {config.max_tokens} learned positions; "
                f"use windows of at most {(config.max_tokens - 1) * 6} bp"
            )
        dtype = self.final_norm.weight.dtype
        x = self.embed(ids)
        vocab = config.vocab
        if config.token_dropout:
            # ESM token dropout: <mask> embeddings zeroed, the rest rescaled by the training
            # keep-rate (1 - 0.15*0.8) over this sequence's keep-rate (x0.88 when nothing is masked).
            is_mask = ids.eq(vocab.mask)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            lengths = tokens if pad_mask is None else (~pad_mask).sum(-1, keepdim=True)
            observed = is_mask.sum(-1, keepdim=True).float() / lengths
            x = (x * ((1 - 0.15 * 0.8) / (1 - observed)).unsqueeze(-1)).to(dtype)
        if self.pos_embed is not None:
            keep = ids.ne(vocab.pad).long()
            positions = keep.cumsum(dim=1) * keep + vocab.pad  # ESM offset: CLS at 2, pads at 1
            x = x + self.pos_embed(positions)
        attn_mask = None
        if pad_mask is not None:
            x = x * (~pad_mask).unsqueeze(-1).to(dtype)
            attn_mask = (~pad_mask)[:, None, None, :]
        rotary = None
        if config.rotary:
            rotary = rotary_cos_sin(tokens, config.head_dim, config.rope_base(tokens), ids.device)
        return x, rotary, attn_mask


class LMHead(nn.Module):
    """RoBERTa-style masked-LM head: dense -> GELU -> LayerNorm -> decoder + bias."""

    def __init__(self, config: NTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.layer_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.features(x)) + self.bias

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder reads: LN(GELU(dense(x))), (..., hidden). ``decoder(features) + bias`` are the
        logits; a caller that wants some tokens' logits only (the 6-mers) applies those rows alone."""
        return self.layer_norm(F.gelu(self.dense(x)))


class NTForMaskedLM(nn.Module):
    """NT backbone + masked-LM head. ``forward(ids)`` -> logits (batch, tokens, vocab)."""

    def __init__(self, config: NTConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = NTBackbone(config)
        self.lm_head = LMHead(config)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.lm_head(self.backbone(ids, pad_mask))


# --- the explicit attention path -----------------------------------------------------------------


@dataclass(frozen=True)
class AttentionMaps:
    """What ``attention_maps`` returns.

    hidden: (batch, tokens, hidden) output of the last block run (after the final LayerNorm when every
        block ran, as ``NTBackbone.forward``).
    probs: {layer: (batch, heads, queries, keys) float32}: each query's attention weights over the keys
        (rows sum to 1), for the layers asked for; layers count blocks from 0.
    """

    hidden: torch.Tensor
    probs: dict[int, torch.Tensor]


def attention_maps(
    backbone: NTBackbone,
    ids: torch.Tensor,
    layers: tuple[int, ...] | None = None,
    pad_mask: torch.Tensor | None = None,
) -> AttentionMaps:
    """Run ``backbone`` with explicit attention, softmax(q k^T / sqrt(head_dim)) v, at ``layers``.

    ids: (batch, tokens) token ids; layers: blocks (0-based) whose attention weights to keep (None: every
    block; the blocks after the last one asked for are not run). The other blocks run the fused path.
    Scores and weights are float32 whatever the model's dtype. Every track family but ``attention``
    runs the fused ``scaled_dot_product_attention`` path only (``NTBackbone.forward``); this one
    materializes (batch, heads, tokens, tokens) per kept layer.
    """
    config = backbone.config
    wanted = tuple(range(config.layers)) if layers is None else tuple(layers)
    for layer in wanted:
        if not 0 <= layer < config.layers:
            raise ModelError(f"attention layer {layer} does not exist: this model has layers 0..{config.layers - 1}")
    last = max(wanted, default=-1) if layers is not None else config.layers - 1
    x, rotary, attn_mask = backbone.embed_tokens(ids, pad_mask)
    probs: dict[int, torch.Tensor] = {}
    for index, block in enumerate(backbone.blocks[: last + 1]):
        if index not in wanted:
            x = block(x, rotary, attn_mask)
            continue
        q, k, v = block.qkv(x, rotary)
        scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        probs[index] = weights
        x = block.update(x, (weights.to(v.dtype) @ v))
    if last == config.layers - 1:
        x = backbone.final_norm(x)
    return AttentionMaps(x, probs)


def add_ia3(backbone: NTBackbone) -> list[nn.Parameter]:
    """Give every block IA3 rescaling vectors (Liu et al. 2022, as the NT paper fine-tuned): keys and values
    (heads, 1, head_dim) after their projection, and the feed-forward activation (intermediate,) before the
    second linear, all initialised to 1 (the model's outputs are unchanged until they are trained).

    Keys are rescaled before the rotary rotation, i.e. the rescaling is part of the key projection (nt_spec.md
    §5 leaves the order open). Returns the new parameters, in block order (key, value, ffn); a backbone that
    has them already keeps its own.
    """
    config = backbone.config
    out = []
    for block in backbone.blocks:
        if block.ia3_key is None:
            like = block.k.weight
            shape = (config.heads, 1, config.head_dim)
            block.ia3_key = nn.Parameter(torch.ones(shape, dtype=like.dtype, device=like.device))
            block.ia3_value = nn.Parameter(torch.ones(shape, dtype=like.dtype, device=like.device))
            block.ffn.ia3_scale = nn.Parameter(
                torch.ones(config.intermediate, dtype=like.dtype, device=like.device)
            )
        out += [block.ia3_key, block.ia3_value, block.ffn.ia3_scale]
    return out


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def nt_geometry(config: NTConfig) -> Geometry:
    """Window geometry of an NT masked-LM: the longest window whose 6-mers (+ CLS) fit max_tokens."""
    return Geometry(window=(config.max_tokens - 1) * KMER, multiple=KMER, min_length=KMER, grid=KMER)


# --- per-nucleotide views -------------------------------------------------------------------------


def per_base_embeddings(embeddings: torch.Tensor, tokens: Tokens) -> torch.Tensor:
    """Repeat each token's embedding over its bases.

    embeddings: (batch, tokens, hidden) -> (batch, length, hidden).
    """
    index = tokens.token_of_base.unsqueeze(-1).expand(-1, -1, embeddings.shape[-1])
    return embeddings.gather(1, index)


def per_base_probabilities(logits: torch.Tensor, tokens: Tokens, vocab: Vocabulary) -> torch.Tensor:
    """Masked-LM logits -> per-position base probabilities, columns A, C, G, T.

    logits: (batch, tokens, vocab) -> (batch, length, 4) float32. Bases in a 6-mer token get the
    marginal of the softmax over the 4096 6-mers at their offset inside the token; bases in a
    single-nucleotide token (run remainders, N) get the softmax over the four single-base tokens.
    """
    logits = logits.float()
    kmer_logits = logits[..., vocab.kmer_offset : vocab.kmer_offset + 4096]
    kmer_probs = kmer_logits.softmax(dim=-1)
    marginals = torch.einsum("btk,kic->btic", kmer_probs, kmer_base_matrix(vocab).to(logits.device))
    single_cols = torch.tensor(ACGT_TO_NT, device=logits.device) + vocab.single_offset
    single = logits[..., single_cols].softmax(dim=-1)  # (batch, tokens, 4)
    batch, length = tokens.token_of_base.shape
    tok = tokens.token_of_base
    rows = torch.arange(batch, device=logits.device).unsqueeze(1).expand(batch, length)
    from_kmer = marginals[rows, tok, tokens.offset_in_token]
    from_single = single[rows, tok]
    return torch.where(tokens.in_kmer.unsqueeze(-1), from_kmer, from_single)


def init_weights(module: nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """Seeded random weights for test and demo models: normal(0, std) matrices, LayerNorms near 1."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("norm.weight", "layer_norm.weight")):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=generator) * max(std, fan_in**-0.5))
