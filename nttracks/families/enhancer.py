"""The ``enhancer`` family: developmental and housekeeping enhancer activity (log2 enrichment) genome-wide.

The model is an NT backbone fine-tuned with the 2 x 50-bin regression head (``nttracks.models.enhancer``) by
``nttracks finetune enhancer``; ``checkpoint`` is the directory that command wrote (it names its base NT
checkpoint, which is loaded and checked against its digest). Windows are 249 bp (the DeepSTARR length
the head was trained on: the checkpoint's ``sequence_length``) on a 1-bp grid; the stride is window -
``overlap`` (default overlap: half a window, so a stride of 125 bp). Each window's two predictions cover
all its bases, and overlapping windows are combined with the stitch weights (taper by default): every base
is the weighted mean of the windows covering it.
A contig shorter than one window is not scored.

The description page states the training data, the test Pearson r of each activity and the units, read
from the checkpoint's config.json.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bases import PER_WINDOW, Geometry
from ..errors import ConfigError, ModelError
from . import CheckpointSettings, Family, LoadedModel, Summary, register, torch_dtype

WINDOW = 249  # = models.enhancer.WINDOW
CHANNELS = ("developmental", "housekeeping")  # = models.enhancer.ACTIVITIES


@dataclass(frozen=True)
class EnhancerSettings(CheckpointSettings):
    """checkpoint: a directory written by ``nttracks finetune enhancer`` (or an HF id of one)."""

    batch_size: int = 64


class EnhancerFamily(Family):
    name = "enhancer"
    settings = EnhancerSettings
    summary = "NT fine-tuned enhancer activity, developmental and housekeeping (log2 enrichment, per 249-bp window)"

    def check(self, settings: EnhancerSettings, where: str, source: str) -> None:
        if not settings.checkpoint.strip():
            raise ConfigError(f"{source}: {where}.checkpoint: the enhancer family needs the directory written by "
                              "'nttracks finetune enhancer'")

    def geometry(self, settings: EnhancerSettings) -> Geometry:
        """Windows of the length the head was trained on (config.json's sequence_length when the checkpoint
        is here; else DeepSTARR's 249 bp), also the shortest it scores."""
        window = WINDOW
        try:
            config = json.loads((self._directory(settings, local_only=True) / "config.json").read_text())
            window = int(config["sequence_length"])
        except (ModelError, OSError, KeyError, TypeError, ValueError):
            pass  # not here yet, or not an enhancer checkpoint: preflight says what is wrong
        return Geometry(window=window, multiple=1, min_length=window, grid=1, resolution=PER_WINDOW)

    def channels(self, settings: EnhancerSettings) -> tuple[str, ...]:
        return CHANNELS

    def _directory(self, settings: EnhancerSettings, *, local_only: bool) -> Path:
        from ..models.loading import resolve_checkpoint

        return resolve_checkpoint(settings.checkpoint, local_only=local_only)

    def preflight(self, settings: EnhancerSettings, geometry: Geometry, *, dry_run: bool) -> list[str]:
        """The checkpoint is an enhancer checkpoint for these two activities, and its base is here (a real
        run downloads an HF base here)."""
        from ..finetune import resolve_base
        from ..models.enhancer import read_enhancer_config

        try:
            directory = self._directory(settings, local_only=dry_run)
        except ModelError as exc:
            if dry_run and "not in the local cache" in str(exc):
                return [f"enhancer: checkpoint {settings.checkpoint} is not downloaded yet; the run downloads it"]
            raise
        config = read_enhancer_config(directory)
        if tuple(config["activities"]) != CHANNELS:
            raise ModelError(f"enhancer checkpoint {directory} predicts {config['activities']}, not "
                             f"{', '.join(CHANNELS)}")
        if geometry.window != int(config["sequence_length"]):
            raise ModelError(
                f"enhancer: window of {geometry.window} bp, but checkpoint {directory} was trained on "
                f"{config['sequence_length']}-bp sequences; remove families.enhancer.window or set it to "
                f"{config['sequence_length']}")
        base = str(config["base_checkpoint"])
        if dry_run:
            return []
        resolve_base(base)
        return []

    def load(self, settings: EnhancerSettings, geometry: Geometry, device: Any) -> LoadedModel:
        from ..finetune import resolve_base
        from ..models.enhancer import load_enhancer, read_enhancer_config
        from ..models.loading import checkpoint_digest

        directory = self._directory(settings, local_only=False)
        config = read_enhancer_config(directory)
        model = load_enhancer(directory, resolve_base=resolve_base, device=device,
                              dtype=torch_dtype(settings.precision, device))
        label = (f"NT enhancer head ({config['adapter']} fine-tune of {config['base_checkpoint']}; "
                 f"{settings.checkpoint})")
        return LoadedModel(model, checkpoint_digest(Path(directory)), label)

    def flops(self, settings: EnhancerSettings, lengths: np.ndarray) -> float:
        """The backbone's forward (as the masked-LM families count it) with the tokens of a 249-bp window
        (41 6-mers + 3 single bases + CLS); the head is negligible."""
        from . import ntlm

        arch = ntlm.architecture(self._base_config(settings))
        lengths = np.asarray(lengths, dtype=np.float64)
        # tokens = length // 6 + length % 6 + CLS; ntlm counts length // 6 + CLS, so add the singles as bp
        equivalent = lengths + (lengths % 6) * 6
        return ntlm.forward_flops(arch, equivalent, layers=arch["layers"], passes=1, head_tokens=False)

    def _base_config(self, settings: EnhancerSettings) -> dict[str, Any] | None:
        """The architecture fields of the checkpoint's config.json when it is here (None: NT-v2-500M's)."""
        try:
            config = json.loads((self._directory(settings, local_only=True) / "config.json").read_text())
            return {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                           "intermediate_size")} | {"vocab_size": 4107, "max_position_embeddings": 2050,
                                                                    "add_bias_fnn": False}
        except (ModelError, OSError, KeyError, ValueError):
            return None

    def summarize(self, settings: EnhancerSettings, tracks: Mapping[str, Any]) -> Summary | None:
        """The training data, split sizes, test and validation Pearson r and the base, from config.json."""
        from ..models.enhancer import read_enhancer_config

        config = read_enhancer_config(self._directory(settings, local_only=True))
        training = config.get("training", {})
        test, val = training.get("test_pearson", {}), training.get("val_pearson", {})
        sizes = training.get("sequences", {})
        rows = "".join(
            f"<tr><td>{html.escape(a)}</td><td>{_r(test.get(a))}</td><td>{_r(val.get(a))}</td></tr>\n"
            for a in CHANNELS)
        text = (
            "<h2>Training</h2>\n"
            f"<p>Values are predicted <b>log2 enrichment</b> (log2 of STARR-seq RNA over input DNA) of each "
            f"{int(config['sequence_length'])}-bp window. Training data: "
            f"<code>{html.escape(str(training.get('data', '?')))}</code> "
            f"({', '.join(f'{html.escape(str(k))} {v:,}' for k, v in sizes.items())} sequences). Base model: "
            f"<code>{html.escape(str(config['base_checkpoint']))}</code> "
            f"(sha256 <code>{html.escape(config['base_digest'])}</code>), fine-tuned with adapter "
            f"<code>{html.escape(config['adapter'])}</code>, "
            f"{int(config['num_bins'])} bins per activity.</p>\n"
            "<table>\n<tr><th>activity</th><th>test Pearson r</th><th>validation Pearson r</th></tr>\n"
            f"{rows}</table>\n")
        data = {"training_data": training.get("data"), "sequences": sizes, "test_pearson": test,
                "val_pearson": val, "base_checkpoint": config["base_checkpoint"], "adapter": config["adapter"],
                "units": "log2 enrichment"}
        return Summary(text, {}, data)


def _r(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "not measured"


register(EnhancerFamily())
