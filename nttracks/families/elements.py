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
from ..errors import ModelError
from . import CheckpointSettings, Family, LoadedModel, compiled, register, torch_dtype

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

    def preflight(self, settings: ElementsSettings, geometry: Geometry, *, dry_run: bool) -> list[str]:
        """The checkpoint is there (a real run downloads an HF id here, before any compute) and is a
        SegmentNT with this family's 14 features."""
        from ..models.loading import read_config, resolve_checkpoint

        try:
            directory = resolve_checkpoint(settings.checkpoint, local_only=dry_run)
        except ModelError as exc:
            if dry_run and "not in the local cache" in str(exc):
                return [f"elements: checkpoint {settings.checkpoint} is not downloaded yet; the run downloads it"]
            raise
        config = read_config(directory)
        weights = [p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin")]
        if not weights:
            raise ModelError(
                f"checkpoint {directory} has no weights (*.safetensors or *.bin); give the full checkpoint"
            )
        features = tuple(config.get("features") or self.channels(settings))
        if features != self.channels(settings):
            raise ModelError(
                f"checkpoint {directory} predicts {len(features)} features ({', '.join(features[:4])}, ...), not "
                f"SegmentNT's 14 genomic elements; the elements family needs a SegmentNT checkpoint"
            )
        return []

    def weights_digest(self, settings: ElementsSettings) -> str:
        from ..models.loading import checkpoint_digest, resolve_checkpoint

        return checkpoint_digest(resolve_checkpoint(settings.checkpoint))

    def load(self, settings: ElementsSettings, geometry: Geometry, device: Any) -> LoadedModel:
        from ..models.loading import checkpoint_digest, resolve_checkpoint
        from ..models.segment_nt import load_segment_nt

        directory = resolve_checkpoint(settings.checkpoint)
        dtype = torch_dtype(settings.precision, device)
        model = compiled(load_segment_nt(directory, device=device, dtype=dtype, window=geometry.window), settings)
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
