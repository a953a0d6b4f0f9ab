"""Nucleotide Transformer models in plain PyTorch: tokenizer, NT v1/v2 masked LM, SegmentNT, loading."""

from __future__ import annotations

from .base import Geometry, TrackModel
from .inspect import ModelInfo, describe_model
from .loading import (
    load_nt,
    load_nt_backbone,
    resolve_checkpoint,
    save_random_nt,
    tiny_nt_config,
)
from .nt import (
    NTBackbone,
    NTConfig,
    NTForMaskedLM,
    nt_geometry,
    per_base_embeddings,
    per_base_probabilities,
)
from .segment_nt import FEATURES, SegmentNT, load_segment_nt, save_random_segment_nt
from .tokenizer import V1, V2, Tokens, Vocabulary, tokenize

__all__ = [
    "FEATURES",
    "V1",
    "V2",
    "Geometry",
    "ModelInfo",
    "NTBackbone",
    "NTConfig",
    "NTForMaskedLM",
    "SegmentNT",
    "Tokens",
    "TrackModel",
    "Vocabulary",
    "describe_model",
    "load_nt",
    "load_nt_backbone",
    "load_segment_nt",
    "nt_geometry",
    "per_base_embeddings",
    "per_base_probabilities",
    "resolve_checkpoint",
    "save_random_nt",
    "save_random_segment_nt",
    "tiny_nt_config",
    "tokenize",
]
