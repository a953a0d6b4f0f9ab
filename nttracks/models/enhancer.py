"""The enhancer-activity model: NT backbone -> mean-pooled embedding -> two 50-bin distributions.

As the NT paper fine-tuned on DeepSTARR: each activity (developmental, housekeeping) is predicted as a
distribution over ``NUM_BINS`` evenly spaced values (the bin centres, spanning the training targets' range
and stored with the checkpoint); the prediction is its expectation. The loss is the cross-entropy against
the target spread over its two nearest bins, weights by distance (``two_bin_targets``).

An enhancer checkpoint is a directory in HF layout that holds only what fine-tuning trained: config.json
names the base NT checkpoint (its reference and sha256 digest) and model.safetensors holds the head
(``head.weight``, ``head.bias``), the bin centres (``bins``) and, for IA3, the rescaling vectors of every
block (``ia3.layer.<i>.key`` / ``.value`` / ``.ffn``); a full fine-tune (adapter ``full``: every backbone
weight trained, for small backbones) also holds the backbone under its HF names (``esm.encoder...``).
Loading checks the base digest and every tensor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bases import PER_WINDOW, Geometry
from ..errors import CheckpointError, ModelError
from .nt import NTBackbone, add_ia3
from .tokenizer import tokenize

ACTIVITIES = ("developmental", "housekeeping")
NUM_BINS = 50
WINDOW = 249  # DeepSTARR's sequence length
ADAPTERS = ("ia3", "head", "full")  # what fine-tuning trains besides the head: IA3 vectors, nothing, everything
FORMAT = "nttracks-enhancer"
FORMAT_VERSION = 1


def enhancer_geometry(window: int = WINDOW) -> Geometry:
    """One value per window of ``window`` bp (on a 1-bp grid, any length: 6-mers then single bases)."""
    return Geometry(window=window, multiple=1, min_length=window, grid=1, resolution=PER_WINDOW)


# --- the 50-bin regression ------------------------------------------------------------------------


def bin_centres(lo: torch.Tensor, hi: torch.Tensor, num_bins: int = NUM_BINS) -> torch.Tensor:
    """(activities, num_bins) float32: ``num_bins`` evenly spaced values from lo to hi (activities,) each."""
    lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    if num_bins < 2:
        raise ModelError(f"the regression head needs at least 2 bins, got {num_bins}")
    if bool((hi <= lo).any()):
        raise ModelError(f"bin range: every upper end {hi.tolist()} must exceed its lower end {lo.tolist()}")
    steps = torch.linspace(0, 1, num_bins, dtype=torch.float64)
    return (lo.double()[:, None] + (hi - lo).double()[:, None] * steps).float()


def expectation(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """logits (batch, activities, bins), centres (activities, bins) -> (batch, activities) float32:
    the mean of each softmax distribution over the bin centres."""
    return (logits.float().softmax(dim=-1) * centres.float()).sum(-1)


def two_bin_targets(values: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """values (batch, activities), centres (activities, bins) evenly spaced -> (batch, activities, bins)
    target distributions: each value split between its two nearest centres c_i <= v <= c_{i+1} with weights
    (c_{i+1} - v) / step and (v - c_i) / step (a value on a centre puts all weight there). Values outside
    the centres' range are clipped to it."""
    centres = centres.float()
    lo, step = centres[:, 0], centres[:, 1] - centres[:, 0]
    bins = centres.shape[1]
    pos = ((values.float() - lo) / step).clamp(0, bins - 1)  # (batch, activities) in bin units
    left = pos.floor().clamp(max=bins - 2)
    frac = pos - left
    target = torch.zeros((*values.shape, bins), dtype=torch.float32, device=values.device)
    left = left.long().unsqueeze(-1)
    target.scatter_(-1, left, (1 - frac).unsqueeze(-1))
    target.scatter_add_(-1, left + 1, frac.unsqueeze(-1))
    return target


def bin_loss(logits: torch.Tensor, values: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean over batch and activities of the cross-entropy of softmax(logits) against ``two_bin_targets``."""
    target = two_bin_targets(values, centres)
    return -(target * logits.float().log_softmax(dim=-1)).sum(-1).mean()


# --- the model ------------------------------------------------------------------------------------


class EnhancerModel(nn.Module):
    """NT backbone + the 2 x 50-bin head, a per-window ``TrackModel``.

    ``forward(codes)``: codes (batch, length) uint8 -> (batch, 1, activities) float32 predicted activities
    (one value per window). ``logits(ids, pad_mask)``: token ids (batch, tokens), CLS first ->
    (batch, activities, bins).
    """

    def __init__(self, backbone: NTBackbone, centres: torch.Tensor, *, adapter: str = "ia3",
                 window: int = WINDOW, activities: tuple[str, ...] = ACTIVITIES) -> None:
        super().__init__()
        if adapter not in ADAPTERS:
            raise ModelError(f"adapter {adapter!r}: use one of {', '.join(ADAPTERS)}")
        if tuple(centres.shape) != (len(activities), centres.shape[1]):
            raise ModelError(f"bin centres of shape {tuple(centres.shape)} do not fit {len(activities)} activities")
        self.backbone = backbone
        self.adapter = adapter
        self.activities = tuple(activities)
        self.channels = self.activities
        self.geometry = enhancer_geometry(window)
        self.num_bins = int(centres.shape[1])
        hidden = backbone.config.hidden
        self.head = nn.Linear(hidden, len(activities) * self.num_bins)
        self.register_buffer("bins", centres.float().clone())
        backbone.requires_grad_(adapter == "full")
        if adapter == "ia3":
            for p in add_ia3(backbone):
                p.requires_grad_(True)

    def pooled(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the final embeddings over the DNA tokens (CLS and padding dropped): (batch, hidden)."""
        x = self.backbone(ids, pad_mask)[:, 1:]
        if pad_mask is None:
            return x.mean(1)
        keep = (~pad_mask[:, 1:]).unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(1) / keep.sum(1).clamp(min=1)

    def logits(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.head(self.pooled(ids, pad_mask))
        return out.view(ids.shape[0], len(self.activities), self.num_bins)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        tokens = tokenize(codes, self.backbone.config.vocab)
        return expectation(self.logits(tokens.ids, tokens.pad_mask), self.bins).unsqueeze(1)


def trained_tensors(model: EnhancerModel) -> dict[str, torch.Tensor]:
    """What fine-tuning trains (and the checkpoint stores), by checkpoint name."""
    out = {"head.weight": model.head.weight, "head.bias": model.head.bias, "bins": model.bins}
    if model.adapter == "ia3":
        for i, block in enumerate(model.backbone.blocks):
            out[f"ia3.layer.{i}.key"] = block.ia3_key
            out[f"ia3.layer.{i}.value"] = block.ia3_value
            out[f"ia3.layer.{i}.ffn"] = block.ffn.ia3_scale
    if model.adapter == "full":
        from .loading import backbone_hf_name

        for name, param in model.backbone.named_parameters():
            out[backbone_hf_name(name)] = param
    return out


# --- checkpoints ----------------------------------------------------------------------------------


def enhancer_config(model: EnhancerModel, base: str, base_digest: str, training: dict[str, Any]) -> dict[str, Any]:
    """config.json of an enhancer checkpoint."""
    config = model.backbone.config
    return {
        "architectures": ["NTEnhancerRegression"],
        "model_type": FORMAT,
        "format_version": FORMAT_VERSION,
        "base_checkpoint": base,
        "base_digest": base_digest,
        "adapter": model.adapter,
        "activities": list(model.activities),
        "num_bins": model.num_bins,
        "sequence_length": model.geometry.window,
        "units": "log2 enrichment",
        "hidden_size": config.hidden,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "intermediate_size": config.intermediate,
        "training": training,
    }


def save_enhancer(directory: str | os.PathLike[str], model: EnhancerModel, *, base: str, base_digest: str,
                  training: dict[str, Any]) -> Path:
    """Write the checkpoint directory (config.json + model.safetensors) atomically: into a temporary
    sibling first, then renamed into place (an existing directory of that name is replaced)."""
    import shutil
    import tempfile

    from .loading import save_checkpoint

    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_checkpoint(tmp, enhancer_config(model, base, base_digest, training), trained_tensors(model))
        tmp.chmod(0o755)
        for p in tmp.iterdir():
            p.chmod(0o644)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_enhancer_config(directory: Path) -> dict[str, Any]:
    """config.json of an enhancer checkpoint, its fields checked (CheckpointError naming the field)."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory} has no config.json; an enhancer checkpoint needs one "
                              "(write one with: nttracks finetune enhancer)")
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if config.get("model_type") != FORMAT:
        raise CheckpointError(
            f"{path}: model_type {config.get('model_type')!r} is not {FORMAT!r}; the enhancer family needs a "
            "checkpoint written by nttracks finetune enhancer")
    for field in ("base_checkpoint", "base_digest", "adapter", "activities", "num_bins", "sequence_length"):
        if field not in config:
            raise CheckpointError(f"{path} lacks the field {field!r}")
    if config["adapter"] not in ADAPTERS:
        raise CheckpointError(f"{path}: adapter {config['adapter']!r} is not one of {', '.join(ADAPTERS)}")
    return config


def load_enhancer(
    directory: str | os.PathLike[str],
    *,
    resolve_base: Callable[[str], Path],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    check_digest: bool = True,
) -> EnhancerModel:
    """An enhancer model from its checkpoint directory, in eval mode.

    resolve_base: the base checkpoint reference (config.json's ``base_checkpoint``) -> its directory.
    The base's digest must match ``base_digest`` (unless ``check_digest`` is False), and the checkpoint
    must hold exactly the tensors its config describes, with their shapes: a missing tensor, a wrong shape
    or an unknown tensor is a CheckpointError naming it.
    """
    from .loading import checkpoint_digest, load_nt_backbone, prepare_for_inference, read_tensors

    directory = Path(directory)
    config = read_enhancer_config(directory)
    tensors = read_tensors(directory)
    base_dir = resolve_base(str(config["base_checkpoint"]))
    if check_digest:
        digest = checkpoint_digest(base_dir)
        if digest != config["base_digest"]:
            raise CheckpointError(
                f"enhancer checkpoint {directory} was trained on base {config['base_checkpoint']} with digest "
                f"{config['base_digest'][:12]}..., but {base_dir} has digest {digest[:12]}...; point it at the "
                "base checkpoint it was trained on")
    backbone = load_nt_backbone(base_dir)
    if "bins" not in tensors:
        raise CheckpointError(f"checkpoint {directory} lacks tensor bins (shape ({len(config['activities'])}, "
                              f"{config['num_bins']})); it is incomplete")
    model = EnhancerModel(backbone, torch.zeros(len(config["activities"]), int(config["num_bins"])),
                          adapter=config["adapter"], window=int(config["sequence_length"]),
                          activities=tuple(config["activities"]))
    load_trained(model, tensors, str(directory))
    centres = model.bins.clone()
    model = prepare_for_inference(model, device, dtype)  # type: ignore[assignment]
    model.bins = centres.to(device)  # the bin centres stay float32 whatever the model's dtype
    return model


def load_trained(model: EnhancerModel, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy the checkpoint's trained tensors into ``model``: each must be there with its shape, and every
    tensor of the checkpoint must be one of them."""
    expected = trained_tensors(model)
    for name, param in expected.items():
        if name not in tensors:
            raise CheckpointError(
                f"checkpoint {source} lacks tensor {name} (shape {tuple(param.shape)}); it is incomplete, or its "
                "config.json does not describe it")
        if tuple(tensors[name].shape) != tuple(param.shape):
            raise CheckpointError(f"checkpoint {source}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                                  f"expected {tuple(param.shape)} from config.json")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(f"checkpoint {source} has tensor(s) this model does not use: "
                              f"{', '.join(unexpected[:5])}; config.json and the weights do not agree")
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(tensors[name])
