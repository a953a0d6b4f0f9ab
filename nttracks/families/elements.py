"""The ``elements`` family: SegmentNT's 14 genomic-element probabilities per nucleotide.

SegmentNT is an NT-v2-500M backbone with a 1-D U-Net head (``nttracks.models.segment_nt``); windows are
multiples of 24 bp, 30 kb (5,000 tokens) as trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bases import Geometry
from . import CheckpointSettings, Family, LoadedModel, register, torch_dtype

SEGMENT_NT_HEAD_PARAMS = 66.25e6  # nt_spec.md §3.3


@dataclass(frozen=True)
class ElementsSettings(CheckpointSettings):
    checkpoint: str = "InstaDeepAI/segment_nt"


class ElementsFamily(Family):
    name = "elements"
    settings = ElementsSettings
    summary = "SegmentNT genomic-element probabilities (14 per-base tracks)"

    def geometry(self, settings: ElementsSettings) -> Geometry:
        from ..models.segment_nt import GEOMETRY

        return GEOMETRY

    def channels(self, settings: ElementsSettings) -> tuple[str, ...]:
        from ..models.segment_nt import FEATURES

        return tuple(FEATURES)

    def load(self, settings: ElementsSettings, geometry: Geometry, device: Any) -> LoadedModel:
        from ..models.loading import checkpoint_digest, resolve_checkpoint
        from ..models.segment_nt import load_segment_nt

        directory = resolve_checkpoint(settings.checkpoint)
        dtype = torch_dtype(settings.precision, device)
        model = load_segment_nt(directory, device=device, dtype=dtype, window=geometry.window)
        return LoadedModel(model, checkpoint_digest(Path(directory)), f"SegmentNT ({settings.checkpoint})")

    def flops(self, settings: ElementsSettings, lengths: np.ndarray) -> float:
        """Per token per layer: 8h^2 (q, k, v, o) + 6 h f (SwiGLU up and down) + 4 T h (attention scores
        and values), engineering.md §2; the U-Net head adds about 2 FLOP per parameter per token. For the
        published shapes (NT-v2-500M backbone)."""
        from ..models.nt import NTConfig

        cfg = NTConfig()
        tokens = np.asarray(lengths, dtype=np.float64) // 6 + 1
        per_layer = 8 * cfg.hidden**2 + 6 * cfg.hidden * cfg.intermediate + 4 * tokens * cfg.hidden
        return float((tokens * (cfg.layers * per_layer + 2 * SEGMENT_NT_HEAD_PARAMS)).sum())


register(ElementsFamily())
