"""Checkpoints in HF layout: find them, read them, check every tensor, build NT models.

A checkpoint is a directory with ``config.json`` and weights as ``model.safetensors``,
``pytorch_model.bin`` or a sharded index of either, or a HuggingFace model id (downloaded through
``huggingface_hub`` and cached). Loading is strict, as in nanoGPT's ``from_pretrained``: every tensor
the model expects must be there with its shape, tensors known to be unused are ignored by name, and
anything else is an error naming the tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ModelError
from .nt import NTBackbone, NTConfig, NTForMaskedLM, init_weights

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

# Tensors HF/ESM checkpoints carry that no NT model uses: recomputed rotary frequencies (also the
# shared "layer.*" key transformers 5 writes), position-id buffers, ESM's protein contact head and
# EsmModel's pooler.
_UNUSED = re.compile(
    r"(.*rotary_embeddings\.inv_freq|.*position_ids|(esm\.)?contact_head\..*|(esm\.)?pooler\..*)"
)

# our block parameter names -> the HF layer names
_BLOCK_TO_HF = {
    "attn_norm": "attention.LayerNorm",
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "ffn_norm": "LayerNorm",
    "ffn.fc1": "intermediate.dense",
    "ffn.fc2": "output.dense",
}
_BACKBONE_TO_HF = {
    "embed": "embeddings.word_embeddings",
    "pos_embed": "embeddings.position_embeddings",
    "final_norm": "encoder.emb_layer_norm_after",
}


def backbone_hf_name(name: str, prefix: str = "esm.") -> str:
    """HF checkpoint name of an ``NTBackbone`` parameter.

    e.g. blocks.0.q.weight -> esm.encoder.layer.0.attention.self.query.weight
    """
    module, _, leaf = name.rpartition(".")
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", module)
    if match:
        return f"{prefix}encoder.layer.{match[1]}.{_BLOCK_TO_HF[match[2]]}.{leaf}"
    return f"{prefix}{_BACKBONE_TO_HF[module]}.{leaf}"


def lm_hf_name(name: str) -> str:
    """HF name of an ``NTForMaskedLM`` parameter (backbone under ``esm.``, head under ``lm_head.``)."""
    if name.startswith("backbone."):
        return backbone_hf_name(name.removeprefix("backbone."))
    return name


# --- finding and reading checkpoints --------------------------------------------------------------


def resolve_checkpoint(path_or_id: str | os.PathLike[str], *, local_only: bool = False) -> Path:
    """A local checkpoint directory for ``path_or_id`` (a directory, or an HF id downloaded and cached).

    local_only: never download; an HF id that is not in the local cache is a ModelError saying so.
    The names of the demo models shipped in the package (``demo-nt``, ``demo-segment-nt``,
    ``demo-enhancer``; see ``nttracks.demo_models``) give their directories.
    """
    from ..demo_models import SHIPPED, shipped

    if str(path_or_id) in SHIPPED:
        return shipped(SHIPPED[str(path_or_id)])
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(
            f"checkpoint {path} is a file; pass the directory holding config.json and the weights"
        )
    text = str(path_or_id)
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text):
        raise ModelError(
            f"checkpoint {text!r} is neither a directory nor a HuggingFace model id (owner/name); "
            "pass a directory with config.json and model.safetensors"
        )
    return _download(text, local_only=local_only)


def _download(repo_id: str, *, local_only: bool = False) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelError(
            f"loading {repo_id!r} from HuggingFace needs huggingface_hub: pip install 'nttracks[hf]', "
            "or pass a local directory with config.json and model.safetensors"
        ) from exc
    # Read the switch ourselves: huggingface_hub reads HF_HUB_OFFLINE once, at import.
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    if local_only:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached: nothing was fetched
            raise ModelError(f"model {repo_id!r} is not in the local cache") from None
    try:
        # safetensors first; the .bin files only for repos without them (many carry both)
        where = Path(
            snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors"], local_files_only=offline)
        )
        if not any((where / name).is_file() for name in WEIGHT_FILES[:2]):
            where = Path(
                snapshot_download(repo_id, allow_patterns=["*.json", "*.bin"], local_files_only=offline)
            )
    except Exception as exc:  # network, auth and cache errors all end here
        raise ModelError(
            f"could not get model {repo_id!r} from HuggingFace ({type(exc).__name__}: {exc}). "
            f"Without network, download https://huggingface.co/{repo_id} (config.json and "
            "model.safetensors or pytorch_model.bin) on another machine, copy the files into a "
            "directory and pass that directory instead of the id"
        ) from exc
    return where


def checkpoint_digest(directory: Path) -> str:
    """sha256 over a checkpoint's config and weight files (names and bytes), hex."""
    h = hashlib.sha256()
    for path in sorted(Path(directory).iterdir()):
        if path.suffix in (".json", ".safetensors", ".bin") and path.is_file():
            h.update(path.name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda f=fh: f.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()


def read_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory} has no config.json; an HF-layout checkpoint needs one")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory, on the CPU, by name."""
    for filename in WEIGHT_FILES:
        path = directory / filename
        if not path.is_file():
            continue
        if filename.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            except (OSError, json.JSONDecodeError, KeyError) as exc:
                raise CheckpointError(f"cannot read shard index {path}: {exc}") from exc
            tensors: dict[str, torch.Tensor] = {}
            for shard in shards:
                tensors.update(_read_file(directory / shard))
            return tensors
        return _read_file(path)
    raise CheckpointError(f"{directory} has no weights: expected one of {', '.join(WEIGHT_FILES)}")


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights from {path}: {exc}") from exc


def load_strict(
    module: nn.Module,
    tensors: dict[str, torch.Tensor],
    to_hf: Callable[[str], str],
    source: str,
    ignore: Callable[[str], bool] = lambda name: False,
) -> None:
    """Copy ``tensors`` (by HF name) into ``module``; every parameter must be there with its shape.

    Checkpoint tensors neither used nor ignored by name are an error. LayerNorm ``gamma``/``beta``
    (how transformers 5 writes ESM LayerNorms) count as ``weight``/``bias``.
    """
    state = {}
    used = set()
    for name, param in module.state_dict().items():
        key = to_hf(name)
        candidates = [key]
        if key.endswith((".weight", ".bias")) and "LayerNorm" in key:
            stem, _, leaf = key.rpartition(".")
            candidates.append(f"{stem}.{'gamma' if leaf == 'weight' else 'beta'}")
        found = next((k for k in candidates if k in tensors), None)
        if found is None:
            raise CheckpointError(
                f"checkpoint {source} lacks tensor {key} (shape {tuple(param.shape)}); "
                "it is not a checkpoint of this architecture, or it is incomplete"
            )
        tensor = tensors[found]
        if tuple(tensor.shape) != tuple(param.shape):
            raise CheckpointError(
                f"checkpoint {source}: tensor {found} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(param.shape)} from config.json"
            )
        state[name] = tensor
        used.add(found)
    unexpected = sorted(k for k in tensors if k not in used and not _UNUSED.fullmatch(k) and not ignore(k))
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise CheckpointError(
            f"checkpoint {source} has tensor(s) this model does not use: {', '.join(unexpected[:5])}{more}; "
            "config.json and the weights do not describe the same model"
        )
    module.load_state_dict(state, strict=True)


# --- NT configs -----------------------------------------------------------------------------------


def nt_config_from_hf(
    config: dict, tensors: dict[str, torch.Tensor], source: str, prefix: str = "esm."
) -> NTConfig:
    """The architecture of an HF ESM/NT checkpoint: config.json fields plus the FFN tensor shape.

    NT v2 does not name its gated FFN in config.json (``hidden_act`` stays "gelu"): an
    ``intermediate.dense.weight`` of shape (2I, H) means SwiGLU, (I, H) a plain GELU FFN.
    """

    def field(name: str, default: object = None) -> object:
        if name in config:
            return config[name]
        if default is None:
            raise CheckpointError(f"{source}/config.json lacks the field {name!r}")
        return default

    if config.get("emb_layer_norm_before"):
        raise CheckpointError(f"{source}: emb_layer_norm_before=true is not a Nucleotide Transformer setting")
    position = field("position_embedding_type", "absolute")
    if position not in ("rotary", "absolute"):
        raise CheckpointError(f"{source}: position_embedding_type {position!r} is not 'rotary' or 'absolute'")
    hidden, intermediate = int(field("hidden_size")), int(field("intermediate_size"))
    key = f"{prefix}encoder.layer.0.intermediate.dense.weight"
    if key not in tensors:
        raise CheckpointError(f"checkpoint {source} lacks tensor {key}")
    rows = tensors[key].shape[0]
    if rows not in (intermediate, 2 * intermediate):
        raise CheckpointError(
            f"checkpoint {source}: {key} has {rows} rows; intermediate_size {intermediate} allows "
            f"{intermediate} (GELU) or {2 * intermediate} (SwiGLU)"
        )
    scaling = config.get("rescaling_factor")
    return NTConfig(
        vocab_size=int(field("vocab_size")),
        hidden=hidden,
        layers=int(field("num_hidden_layers")),
        heads=int(field("num_attention_heads")),
        intermediate=intermediate,
        glu=rows == 2 * intermediate,
        ffn_bias=bool(config.get("add_bias_fnn", True)),
        rotary=position == "rotary",
        token_dropout=bool(config.get("token_dropout", False)),
        max_positions=int(field("max_position_embeddings")),
        layer_norm_eps=float(field("layer_norm_eps")),
        rope_scaling=None if scaling is None else float(scaling),
    )


def nt_config_to_hf(config: NTConfig) -> dict:
    """config.json fields (HF ESM layout, as the NT checkpoints write them) for ``config``."""
    return {
        "architectures": ["EsmForMaskedLM"],
        "model_type": "esm",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "intermediate_size": config.intermediate,
        "hidden_act": "gelu",
        "position_embedding_type": "rotary" if config.rotary else "absolute",
        "max_position_embeddings": config.max_positions,
        "token_dropout": config.token_dropout,
        "add_bias_fnn": config.ffn_bias,
        "layer_norm_eps": config.layer_norm_eps,
        "emb_layer_norm_before": False,
        "pad_token_id": 1,
        "mask_token_id": 2,
        "tie_word_embeddings": False,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }


def unused_position_table(config: NTConfig, prefix: str = "esm.") -> Callable[[str], bool]:
    """Name test for the learned position table NT v2 checkpoints carry and rotary models never read."""
    unused_positions = f"{prefix}embeddings.position_embeddings.weight"
    return lambda name: config.rotary and name == unused_positions


def prepare_for_inference(module: nn.Module, device: str | torch.device, dtype: torch.dtype) -> nn.Module:
    """Move to device and dtype (fp32, bf16 or fp16), eval mode, no gradients."""
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ModelError(f"dtype {dtype} is not supported: use torch.float32 or torch.bfloat16")
    return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def _read_nt_checkpoint(
    path_or_id: str | os.PathLike[str],
) -> tuple[Path, dict, dict[str, torch.Tensor], NTConfig]:
    """(directory, config.json, tensors, architecture) of an NT checkpoint directory or HF id."""
    directory = resolve_checkpoint(path_or_id)
    config_json, tensors = read_config(directory), read_tensors(directory)
    return directory, config_json, tensors, nt_config_from_hf(config_json, tensors, str(directory))


def load_nt(
    path_or_id: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> NTForMaskedLM:
    """An NT masked-LM model (v1 or v2) from a checkpoint directory or HF id, in eval mode."""
    directory, config_json, tensors, config = _read_nt_checkpoint(path_or_id)
    if config_json.get("tie_word_embeddings") and "lm_head.decoder.weight" not in tensors:
        tensors["lm_head.decoder.weight"] = tensors.get(
            "esm.embeddings.word_embeddings.weight", torch.empty(0)
        )
    model = NTForMaskedLM(config)
    load_strict(model, tensors, lm_hf_name, str(directory), unused_position_table(config))
    return prepare_for_inference(model, device, dtype)  # type: ignore[return-value]


def load_nt_backbone(
    path_or_id: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> NTBackbone:
    """The backbone alone (no LM head; an LM head in the checkpoint is ignored)."""
    directory, _, tensors, config = _read_nt_checkpoint(path_or_id)
    model = NTBackbone(config)
    ignore_positions = unused_position_table(config)
    load_strict(
        model,
        tensors,
        backbone_hf_name,
        str(directory),
        lambda k: ignore_positions(k) or k.startswith("lm_head."),
    )
    return prepare_for_inference(model, device, dtype)  # type: ignore[return-value]


def save_checkpoint(
    directory: str | os.PathLike[str], config_json: dict, tensors: dict[str, torch.Tensor]
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed)."""
    from safetensors.torch import save_file

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config_json, indent=2) + "\n")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path / "model.safetensors"))
    return path


def tiny_nt_config(version: str = "v2", *, hidden: int = 64, layers: int = 2, heads: int = 4) -> NTConfig:
    """A small NT v1 or v2 architecture for tests and demos (real vocabulary, 4x FFN)."""
    if version == "v1":
        return NTConfig(
            4105,
            hidden,
            layers,
            heads,
            4 * hidden,
            glu=False,
            ffn_bias=True,
            rotary=False,
            token_dropout=True,
            max_positions=1002,
        )
    if version == "v2":
        return NTConfig(
            4107,
            hidden,
            layers,
            heads,
            4 * hidden,
            glu=True,
            ffn_bias=False,
            rotary=True,
            token_dropout=False,
            max_positions=2050,
        )
    raise ModelError(f"NT version {version!r}: use 'v1' or 'v2'")


def save_random_nt(
    directory: str | os.PathLike[str],
    *,
    version: str = "v2",
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a seeded random NT masked-LM checkpoint in HF layout (config.json + model.safetensors).

    v2 checkpoints also get the unused learned position table real NT v2 checkpoints carry.
    """
    config = tiny_nt_config(version, hidden=hidden, layers=layers, heads=heads)
    model = NTForMaskedLM(config)
    init_weights(model, torch.Generator().manual_seed(seed))
    tensors = {lm_hf_name(k): v for k, v in model.state_dict().items()}
    if config.rotary:
        tensors["esm.embeddings.position_embeddings.weight"] = torch.zeros(
            config.max_positions, config.hidden
        )
    return save_checkpoint(directory, nt_config_to_hf(config), tensors)
