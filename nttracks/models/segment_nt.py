"""SegmentNT: NT-v2 backbone + 1-D U-Net head -> 14 genomic-element probabilities per nucleotide.

The head reads the post-LayerNorm token embeddings without CLS, runs a two-level U-Net (two
SiLU convolutions per level, average pooling down, nearest x2 up, skip connections added), a final
convolution pair, SiLU and a linear layer whose 6 * 14 * 2 outputs per token are 6 nucleotides x
14 features x 2 classes. The probability of a feature is the softmax over the two classes, index 1.

The rotary base is always rescaled, as SegmentNT was trained: factor 2.44140625 (= 5000 / 2048)
up to 5001 tokens (30 kb), tokens / 2048 above that (SegmentNT's rule for longer inputs).

Windows must be N-free and a multiple of 24 nt (4 tokens of 6, so two poolings divide evenly);
the tiling keeps N out and the geometry declares the multiple.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ModelError
from .base import Geometry
from .loading import (
    backbone_hf_name,
    load_strict,
    nt_config_from_hf,
    nt_config_to_hf,
    prepare_for_inference,
    read_config,
    read_tensors,
    resolve_checkpoint,
    save_checkpoint,
    unused_position_table,
)
from .nt import NTBackbone, NTConfig, init_weights
from .tokenizer import KMER, V2, tokenize_acgt

FEATURES = (
    "protein_coding_gene",
    "lncRNA",
    "exon",
    "intron",
    "splice_donor",
    "splice_acceptor",
    "5UTR",
    "3UTR",
    "CTCF-bound",
    "polyA_signal",
    "enhancer_Tissue_specific",
    "enhancer_Tissue_invariant",
    "promoter_Tissue_specific",
    "promoter_Tissue_invariant",
)
TRAINING_RESCALING = 2.44140625  # 5000 DNA tokens / 2048
TRAINING_TOKENS = 5001  # 30 kb = 5000 6-mers + CLS
GEOMETRY = Geometry(window=30_000, multiple=24, min_length=240, grid=6, resolution=1)


class ConvBlock(nn.Module):
    """Two kernel-3 convolutions (or stride-1 transposed convolutions), SiLU after each but maybe the last."""

    def __init__(
        self, c_in: int, c_out: int, *, transposed: bool = False, last_activation: bool = True
    ) -> None:
        super().__init__()
        if transposed:
            # weights [in, out, 3]; stride 1 and padding 1 keep the length
            convs = [nn.ConvTranspose1d(c, c_out, 3, stride=1, padding=1) for c in (c_in, c_out)]
        else:
            convs = [nn.Conv1d(c, c_out, 3, padding="same") for c in (c_in, c_out)]
        self.conv_layers = nn.ModuleList(convs)
        self.last_activation = last_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_layers[0](x))
        x = self.conv_layers[1](x)
        return F.silu(x) if self.last_activation else x


class UNetHead(nn.Module):
    """1-D U-Net over (batch, channels, tokens); channels embed_dim * 2^i per level.

    Down level i: ConvBlock, keep as skip, average-pool by 2. Up level j (deepest first):
    transposed ConvBlock, nearest x2 (repeat each position), add the skip of the same length.
    Final: conv, SiLU, conv to 2 * (embed_dim // 2) channels.
    """

    def __init__(self, embed_dim: int, num_layers: int = 2) -> None:
        super().__init__()
        channels = [embed_dim * 2**i for i in range(num_layers)]
        self._downsample_blocks = nn.ModuleList()
        c_in = embed_dim
        for c in channels:
            self._downsample_blocks.append(ConvBlock(c_in, c))
            c_in = c
        self._upsample_blocks = nn.ModuleList()
        for c in reversed(channels):
            self._upsample_blocks.append(ConvBlock(c_in, c, transposed=True))
            c_in = c
        self.final_block = ConvBlock(c_in, 2 * (embed_dim // 2), last_activation=False)
        self.num_layers = num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, embed_dim, tokens), tokens divisible by 2^num_layers -> same shape."""
        skips = []
        for block in self._downsample_blocks:
            x = block(x)
            skips.append(x)
            x = F.avg_pool1d(x, kernel_size=2, stride=2)
        for block, skip in zip(self._upsample_blocks, reversed(skips), strict=True):
            x = block(x).repeat_interleave(2, dim=-1) + skip
        return self.final_block(x)


class SegmentNT(nn.Module):
    """SegmentNT as a ``TrackModel``.

    forward: uint8 codes (batch, length) -> (batch, length, 14) float32 feature probabilities.
    """

    def __init__(
        self, config: NTConfig, features: tuple[str, ...] = FEATURES, num_layers_head: int = 2
    ) -> None:
        super().__init__()
        if not config.rotary:
            raise ModelError("SegmentNT needs a rotary (NT v2) backbone")
        self.config = config
        self.geometry = GEOMETRY
        self.channels = tuple(features)
        self.esm = NTBackbone(config)
        self.unet = UNetHead(config.hidden, num_layers_head)
        self.fc = nn.Linear(2 * (config.hidden // 2), KMER * 2 * len(features))

    def check_window(self, codes: torch.Tensor) -> None:
        """Raise ModelError for a window SegmentNT cannot take: wrong shape, bad length, or N."""
        if codes.dim() != 2 or codes.dtype != torch.uint8:
            raise ModelError(
                f"SegmentNT takes uint8 codes (batch, length), got {codes.dtype} {tuple(codes.shape)}"
            )
        self.geometry.check_length(codes.shape[1])
        bad = codes.gt(3)
        if bool(bad.any()):
            row, col = (int(i) for i in bad.nonzero()[0])
            raise ModelError(
                f"SegmentNT cannot take N: window {row} has a non-ACGT base at position {col}; "
                "score N-free contigs only (the tiling keeps N out)"
            )

    def segment_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Head logits for token ids.

        ids: (batch, 1 + tokens) v2 ids, CLS first, tokens % 4 == 0 -> (batch, 6 * tokens, features, 2).
        """
        tokens = ids.shape[1] - 1
        if tokens % 2**self.unet.num_layers:
            raise ModelError(
                f"SegmentNT needs a token count divisible by {2**self.unet.num_layers}, got {tokens}"
            )
        x = self.esm(ids)[:, 1:]  # post-LayerNorm embeddings, CLS dropped
        x = self.unet(x.transpose(1, 2)).transpose(1, 2)
        x = self.fc(F.silu(x))  # (batch, tokens, 6 * features * 2)
        return x.reshape(ids.shape[0], tokens * KMER, len(self.channels), 2)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (batch, length) uint8, length % 24 == 0, no N -> (batch, length, features) float32."""
        if codes.device.type == "cpu":
            self.check_window(codes)
        else:  # scanning for N here would wait for the device; ``predict`` checks the host batch
            self.geometry.check_length(codes.shape[1])
        ids = tokenize_acgt(codes, V2)
        logits = self.segment_logits(ids).float()
        # softmax over (absent, present), index 1, is the sigmoid of their difference: one elementwise
        # pass instead of a softmax over a last axis of 2 (14% of a small model's CPU time).
        return torch.sigmoid(logits[..., 1] - logits[..., 0])


def segment_nt_config(config_json: dict, tensors: dict[str, torch.Tensor], source: str) -> NTConfig:
    """Backbone config of a SegmentNT checkpoint: rotary base always rescaled (config's factor)."""
    config = nt_config_from_hf(config_json, tensors, source)
    if config.vocab_size != V2.size:
        raise CheckpointError(
            f"{source}: SegmentNT uses the NT v2 vocabulary of {V2.size}, not {config.vocab_size}"
        )
    return config.with_(
        rope_scaling=config.rope_scaling if config.rope_scaling is not None else TRAINING_RESCALING,
        rope_long_context=TRAINING_TOKENS,
    )


def segment_nt_hf_name(name: str) -> str:
    """HF name of a SegmentNT parameter: backbone under ``esm.``, head under ``unet.`` and ``fc.``."""
    if name.startswith("esm."):
        return backbone_hf_name(name.removeprefix("esm."), "esm.")
    return name


def load_segment_nt(
    path_or_id: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    window: int = GEOMETRY.window,
) -> SegmentNT:
    """SegmentNT from a checkpoint directory in HF layout or an HF id (InstaDeepAI/segment_nt, ...).

    window: the default window of the model's geometry, in bp (a multiple of 24; 30 kb as trained).
    """
    geometry = GEOMETRY.with_window(window)
    directory = resolve_checkpoint(path_or_id)
    config_json, tensors = read_config(directory), read_tensors(directory)
    source = str(directory)
    config = segment_nt_config(config_json, tensors, source)
    features = tuple(config_json.get("features") or FEATURES)
    fc = tensors.get("fc.weight")
    if fc is not None and fc.shape[0] != KMER * 2 * len(features):
        raise CheckpointError(
            f"checkpoint {source}: fc.weight has {fc.shape[0]} outputs but config.json lists "
            f"{len(features)} features (expected {KMER * 2 * len(features)} = 6 x 2 x features)"
        )
    model = SegmentNT(config, features, int(config_json.get("num_layers_head", 2)))
    load_strict(model, tensors, segment_nt_hf_name, source, unused_position_table(config))
    model.geometry = geometry
    return prepare_for_inference(model, device, dtype)  # type: ignore[return-value]


def save_random_segment_nt(
    directory: str | os.PathLike[str],
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    features: tuple[str, ...] = FEATURES,
) -> Path:
    """Write a seeded random SegmentNT checkpoint in HF layout (config.json + model.safetensors).

    Tensor names as the HF SegmentNT port (``esm.*``, ``unet.*``, ``fc.*``), plus the unused learned
    position table NT v2 checkpoints carry. The default size runs a few 1,200-bp windows in
    milliseconds on a CPU.
    """
    config = NTConfig(
        vocab_size=V2.size,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=4 * hidden,
        glu=True,
        ffn_bias=False,
        rotary=True,
        max_positions=2050,
        rope_scaling=TRAINING_RESCALING,
        rope_long_context=TRAINING_TOKENS,
    )
    model = SegmentNT(config, tuple(features))
    init_weights(model, torch.Generator().manual_seed(seed))
    tensors = {segment_nt_hf_name(k): v for k, v in model.state_dict().items()}
    tensors["esm.embeddings.position_embeddings.weight"] = torch.zeros(config.max_positions, hidden)
    config_json = nt_config_to_hf(config) | {
        "architectures": ["SegmentNT"],
        "features": list(features),
        "num_layers_head": 2,
        "rescaling_factor": TRAINING_RESCALING,
    }
    return save_checkpoint(directory, config_json, tensors)
