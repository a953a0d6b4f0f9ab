"""``nttracks models inspect``: what a checkpoint is, loaded strictly on the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch import nn

from .base import PER_WINDOW, Geometry
from .loading import load_nt, read_config, read_tensors, resolve_checkpoint
from .nt import NTConfig, nt_geometry, num_parameters


@dataclass(frozen=True)
class ModelInfo:
    """What ``nttracks models inspect`` shows about a checkpoint."""

    source: str
    kind: str
    architecture: str
    config: NTConfig
    parameters: int
    ignored_tensors: int
    geometry: Geometry
    channels: tuple[str, ...]

    def format(self) -> str:
        c, g = self.config, self.geometry
        rope = ""
        if c.rotary:
            rope = f"rotary base {c.rope_base(2):,.1f}"
            if c.rope_scaling is not None:
                rope += f" (10000 rescaled by x{c.rope_scaling:.10g}"
                if c.rope_long_context is not None:
                    rope += f"; by tokens/{c.max_tokens} above {c.rope_long_context} tokens"
                rope += ")"
        lines = [
            f"model         {self.source}",
            f"kind          {self.kind}",
            f"architecture  {self.architecture}",
            f"shape         hidden {c.hidden}, {c.layers} layers, {c.heads} heads (head dim {c.head_dim}), "
            f"FFN {c.intermediate}",
            f"positions     {rope or f'learned, {c.max_tokens} tokens incl. CLS'}",
            f"parameters    {self.parameters:,} ({self.ignored_tensors} unused checkpoint tensors ignored)",
            f"vocabulary    {c.vocab_size} tokens (NT {c.vocab.name}: 6-mers from id {c.vocab.kmer_offset}, "
            f"A/T/C/G/N from {c.vocab.single_offset}, <cls> {c.vocab.cls}, <pad> {c.vocab.pad})",
            f"window        {g.window:,} bp default, lengths a multiple of {g.multiple} bp, at least "
            f"{g.min_length} bp, starts on a {g.grid}-bp grid, "
            + ("one output per window" if g.resolution == PER_WINDOW else f"{g.resolution} bp per output"),
            f"channels      {len(self.channels)}: {', '.join(self.channels)}",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def describe_model(path_or_id: str | os.PathLike[str]) -> ModelInfo:
    """Load a checkpoint (strictly, on the CPU) and describe it.

    Kind, architecture, parameter count, vocabulary and window geometry; ``str()`` of the result
    is the text ``nttracks models inspect`` prints.
    """
    directory = resolve_checkpoint(path_or_id)
    config_json, tensors = read_config(directory), read_tensors(directory)
    if "SegmentNT" in (config_json.get("architectures") or []) or any(k.startswith("unet.") for k in tensors):
        from .segment_nt import load_segment_nt

        model: nn.Module = load_segment_nt(directory)
        kind, geometry, channels = "SegmentNT (NT-v2 backbone + U-Net head)", model.geometry, model.channels
    else:
        model = load_nt(directory)
        kind = f"Nucleotide Transformer {model.config.vocab.name} masked LM"
        geometry, channels = nt_geometry(model.config), ("A", "C", "G", "T")
    config: NTConfig = model.config  # type: ignore[assignment]
    ffn = "SwiGLU FFN" if config.glu else "GELU FFN"
    ffn += " with bias" if config.ffn_bias else " without bias"
    positions = "rotary positions" if config.rotary else "learned positions"
    architecture = f"pre-LayerNorm encoder, {positions}, {ffn}"
    if config.token_dropout:
        architecture += ", token-dropout rescale"
    used = num_parameters(model)
    return ModelInfo(
        source=str(path_or_id),
        kind=kind,
        architecture=architecture,
        config=config,
        parameters=used,
        ignored_tensors=len(tensors) - len(model.state_dict()),
        geometry=geometry,
        channels=tuple(channels),
    )
