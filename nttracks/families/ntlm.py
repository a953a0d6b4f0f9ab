"""What the masked-LM families (``sensitivity``, ``attention``) share: an NT masked-LM checkpoint (v1 or
v2), the demo's seeded random one, their window geometry, preflight checks and FLOP estimate.

``checkpoint: demo`` names a tiny NT-v2-architecture masked LM with seeded random weights, generated at
first use into ``<cache>/models/demo-nt-v<DEMO_MODEL_VERSION>/`` (the same bytes on every machine), for tests:
its tracks show the pipeline working, not biology. The demo hub runs the trained ``demo-nt`` the package ships.

Windows lie on the 6-mer grid of N-free contigs and are whole 6-mers (a multiple of 6 bp), so every DNA
token is a 6-mer; the default of 5,994 bp (999 tokens + CLS = 1,000) fits both NT v1 (at most 1,000
tokens) and v2 (2,048) and is the paper's 6-kb window; v2 takes windows up to 12,282 bp.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bases import Geometry
from ..errors import ConfigError, ModelError
from ..resources import cache_dir
from . import CheckpointSettings

DEFAULT_CHECKPOINT = "InstaDeepAI/nucleotide-transformer-v2-500m-multi-species"
DEMO_CHECKPOINT = "demo"
DEMO_MODEL_VERSION = 1  # bump when DEMO_MODEL changes, so caches regenerate
DEMO_MODEL: dict[str, Any] = {"version": "v2", "hidden": 32, "layers": 2, "heads": 4, "seed": 20240521}
DEFAULT_WINDOW = 5994
KMER = 6


@dataclass(frozen=True)
class MaskedLMSettings(CheckpointSettings):
    """checkpoint: an NT masked LM (directory or HF id), or ``demo``.
    annotation: BED of element classes the family's tracks are summarized over on its page (``demo``: the
        demo genome's planted elements; empty: no summary). ``--annotation`` sets it for a run.
    """

    checkpoint: str = DEFAULT_CHECKPOINT
    annotation: str = ""


def geometry(resolution: int) -> Geometry:
    return Geometry(window=DEFAULT_WINDOW, multiple=KMER, min_length=KMER, grid=KMER, resolution=resolution)


def demo_checkpoint_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models" / f"demo-nt-v{DEMO_MODEL_VERSION}"


def ensure_demo_checkpoint(cache: Path | None = None) -> Path:
    """The demo checkpoint in the cache, generated there first when missing (seeded, no network)."""
    target = demo_checkpoint_dir(cache)
    if (target / "model.safetensors").is_file():
        return target
    from ..models.loading import save_random_nt

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-nt-", dir=target.parent))
    try:
        save_random_nt(tmp, **DEMO_MODEL)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide it from other users of a shared cache
        try:
            os.replace(tmp, target)
        except OSError:  # another process made it first
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def checkpoint_dir(settings: MaskedLMSettings) -> Path:
    """The checkpoint's directory: the demo's (generated when missing), a directory, or an HF id (downloaded)."""
    if settings.checkpoint == DEMO_CHECKPOINT:
        return ensure_demo_checkpoint()
    from ..models.loading import resolve_checkpoint

    return resolve_checkpoint(settings.checkpoint)


def local_checkpoint_dir(settings: MaskedLMSettings) -> Path | None:
    """The checkpoint's directory when it is here already (None: to be generated or downloaded)."""
    if settings.checkpoint == DEMO_CHECKPOINT:
        directory = demo_checkpoint_dir()
        return directory if (directory / "model.safetensors").is_file() else None
    from ..models.loading import resolve_checkpoint

    try:
        return resolve_checkpoint(settings.checkpoint, local_only=True)
    except ModelError as exc:
        if "not in the local cache" in str(exc):
            return None
        raise


def model_label(settings: MaskedLMSettings, what: str) -> str:
    if settings.checkpoint == DEMO_CHECKPOINT:
        return (f"untrained NT-v2 demo {what} (random weights, seed {DEMO_MODEL['seed']}, "
                f"{DEMO_MODEL['layers']} layers of {DEMO_MODEL['hidden']})")
    return f"NT {what} ({settings.checkpoint})"


def check_settings(settings: MaskedLMSettings, where: str, source: str) -> None:
    if settings.window is not None and settings.window % KMER:
        raise ConfigError(f"{source}: {where}.window: {settings.window} bp is not whole 6-mers; use a multiple of 6")


def preflight(settings: MaskedLMSettings, geometry: Geometry, family: str, *, dry_run: bool) -> tuple[list[str], Any]:
    """Check the checkpoint (present, an NT masked LM whose positions hold the window) and the annotation;
    returns (notes, the checkpoint's architecture or None when it is not here yet)."""
    from ..models.loading import read_config
    from ..models.tokenizer import vocabulary_for
    from ..summaries import DEMO_ANNOTATION, read_annotation, resolve_annotation

    notes = []
    if settings.annotation:
        bed = resolve_annotation(settings.annotation, generate=not dry_run)
        if bed.is_file() or settings.annotation != DEMO_ANNOTATION:  # the demo's is made with the demo genome
            read_annotation(bed)
    directory = local_checkpoint_dir(settings) if dry_run else checkpoint_dir(settings)
    if directory is None:
        what = "generated at first use" if settings.checkpoint == DEMO_CHECKPOINT else "downloaded by the run"
        notes.append(f"{family}: checkpoint {settings.checkpoint} is not here yet; it is {what}")
        return notes, None
    config = read_config(directory)
    if not any(p.suffix in (".safetensors", ".bin") for p in directory.iterdir()):
        raise ModelError(f"checkpoint {directory} has no weights (*.safetensors or *.bin); give the full checkpoint")
    vocabulary_for(int(config.get("vocab_size", 0)))
    arch = architecture(config)
    max_bp = (arch["max_tokens"] - 1) * KMER
    if geometry.window > max_bp:
        raise ModelError(
            f"{family}: window of {geometry.window} bp is longer than checkpoint {settings.checkpoint} takes "
            f"({arch['max_tokens']} tokens with CLS, at most {max_bp} bp); set families.{family}.window to "
            f"{max_bp} or less"
        )
    return notes, arch


def architecture(config: dict[str, Any] | None) -> dict[str, Any]:
    """The shapes the FLOP estimate needs, from a checkpoint's config.json (None: NT-v2-500M's).

    The feed-forward is taken as SwiGLU when the checkpoint has no FFN biases (NT v2), GELU otherwise (v1).
    """
    if config is None:
        config = {"hidden_size": 1024, "num_hidden_layers": 29, "num_attention_heads": 16,
                  "intermediate_size": 4096, "vocab_size": 4107, "max_position_embeddings": 2050,
                  "add_bias_fnn": False}
    return {
        "hidden": int(config["hidden_size"]),
        "layers": int(config["num_hidden_layers"]),
        "heads": int(config["num_attention_heads"]),
        "intermediate": int(config["intermediate_size"]),
        "vocab": int(config["vocab_size"]),
        "max_tokens": int(config["max_position_embeddings"]) - 2,
        "glu": not bool(config.get("add_bias_fnn", True)),
    }


def local_architecture(settings: MaskedLMSettings) -> dict[str, Any]:
    """The architecture of the checkpoint when it is here (the demo's even before it is generated),
    else NT-v2-500M's, never downloading."""
    if settings.checkpoint == DEMO_CHECKPOINT:
        from ..models.loading import nt_config_to_hf, tiny_nt_config

        arch = {k: DEMO_MODEL[k] for k in ("hidden", "layers", "heads")}
        return architecture(nt_config_to_hf(tiny_nt_config(DEMO_MODEL["version"], **arch)))
    from ..models.loading import read_config

    try:
        directory = local_checkpoint_dir(settings)
        return architecture(read_config(directory) if directory is not None else None)
    except (ModelError, KeyError, ValueError):  # not an NT config: preflight says what is wrong with it
        return architecture(None)


def forward_flops(arch: dict[str, Any], lengths: np.ndarray, *, layers: int, passes: np.ndarray | int,
                  head_tokens: bool) -> float:
    """FLOPs of ``passes`` backbone passes through ``layers`` blocks per window (tokens = length / 6 + CLS),
    plus the LM head once per DNA token when ``head_tokens``.

    Per token per block: 8h^2 (q, k, v, o), 6hf (SwiGLU) or 4hf (GELU), 4Th (scores and values); the LM
    head 2h^2 + 2hV per token (engineering.md §2, as ``elements``).
    """
    h, f, v = arch["hidden"], arch["intermediate"], arch["vocab"]
    tokens = np.asarray(lengths, dtype=np.float64) // KMER + 1
    per_block = 8 * h * h + (6 if arch["glu"] else 4) * h * f + 4 * tokens * h
    total = np.asarray(passes, dtype=np.float64) * tokens * layers * per_block
    if head_tokens:
        total = total + (tokens - 1) * (2 * h * h + 2 * h * v)
    return float(total.sum())
