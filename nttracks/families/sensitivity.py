"""The ``sensitivity`` family: an NT masked LM's zero-shot view of every base.

Per base: ``constraint`` (log2 p(ref) - log2 max p(alt), bits), ``entropy`` (bits) and ``ref_prob``, from the
6-mer token distribution marginalized per position; per token, spread over its six bases, the paper's
``recon_accuracy`` and ``perplexity`` (definitions: ``nttracks.models.mlm``; formulas and units on the
description page, trackhubs/sensitivity.html).

Settings, besides the window settings, ``checkpoint``, ``precision`` and ``annotation`` of the masked-LM
families (``families.ntlm``):

channels: which of the five to write (default all), in that order or any other.
masking: ``none`` (one unmasked pass per window: the cheap default for nightly runs) or ``every_k``.
k: with ``every_k``, the passes per window: pass j masks tokens j, j + k, j + 2k, ..., so each token is
    predicted while masked exactly once, and the run costs about k times as much. Required with ``every_k``,
    an error without it.

With an annotation, the page and the manifest carry the mean reconstruction accuracy, perplexity and
constraint per element class, read from the finished bigWigs.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bases import Geometry
from ..errors import ConfigError
from . import Family, LoadedModel, Summary, ntlm, register, torch_dtype

CHANNELS = ("constraint", "entropy", "ref_prob", "recon_accuracy", "perplexity")  # = models.mlm.CHANNELS
MASKINGS = ("none", "every_k")
SUMMARIZED = ("recon_accuracy", "perplexity", "constraint")
PICTURE = "sensitivity_summary.png"


@dataclass(frozen=True)
class SensitivitySettings(ntlm.MaskedLMSettings):
    channels: tuple[str, ...] = CHANNELS
    masking: str = "none"
    k: int | None = None


class SensitivityFamily(Family):
    name = "sensitivity"
    settings = SensitivitySettings
    summary = "NT masked-LM constraint, entropy, p(ref), reconstruction accuracy and perplexity per base"

    def check(self, settings: SensitivitySettings, where: str, source: str) -> None:
        ntlm.check_settings(settings, where, source)
        unknown = [c for c in settings.channels if c not in CHANNELS]
        if unknown or not settings.channels:
            raise ConfigError(
                f"{source}: {where}.channels: {list(settings.channels)} must name one or more of "
                f"{', '.join(CHANNELS)}" + (f" ({', '.join(unknown)} is not one)" if unknown else "")
            )
        if len(set(settings.channels)) != len(settings.channels):
            raise ConfigError(f"{source}: {where}.channels: {list(settings.channels)} names a channel twice")
        if settings.masking not in MASKINGS:
            raise ConfigError(f"{source}: {where}.masking: {settings.masking!r} is not one of {', '.join(MASKINGS)}")
        if settings.masking == "every_k" and (settings.k is None or settings.k < 1):
            raise ConfigError(
                f"{source}: {where}.k: masking every_k needs k >= 1 (passes per window; k = 6 predicts every "
                f"token masked in 6 passes), got {settings.k}"
            )
        if settings.masking == "none" and settings.k is not None:
            raise ConfigError(
                f"{source}: {where}.k: k is the pass count of masking every_k; with masking none remove it, "
                "or set masking: every_k"
            )

    def geometry(self, settings: SensitivitySettings) -> Geometry:
        return ntlm.geometry(resolution=1)

    def channels(self, settings: SensitivitySettings) -> tuple[str, ...]:
        return tuple(settings.channels)

    def preflight(self, settings: SensitivitySettings, geometry: Geometry, *, dry_run: bool) -> list[str]:
        return ntlm.preflight(settings, geometry, self.name, dry_run=dry_run)[0]

    def weights_digest(self, settings: SensitivitySettings) -> str:
        from ..models.loading import checkpoint_digest

        return checkpoint_digest(ntlm.checkpoint_dir(settings))

    def load(self, settings: SensitivitySettings, geometry: Geometry, device: Any) -> LoadedModel:
        from ..models.loading import checkpoint_digest, load_nt
        from ..models.mlm import MaskedLMTracks

        directory = ntlm.checkpoint_dir(settings)
        lm = load_nt(directory, device=device, dtype=torch_dtype(settings.precision, device))
        model = MaskedLMTracks(lm, geometry, self.channels(settings), settings.masking, settings.k).to(device)
        masking = "unmasked" if settings.masking == "none" else f"every {settings.k}th token masked"
        label = f"{ntlm.model_label(settings, 'masked LM')}, {masking}"
        return LoadedModel(model, checkpoint_digest(Path(directory)), label)

    def flops(self, settings: SensitivitySettings, lengths: np.ndarray) -> float:
        """A backbone pass per masking pass (k of them with every_k, fewer for a window of fewer tokens), the
        LM head once per token."""
        arch = ntlm.local_architecture(settings)
        lengths = np.asarray(lengths)
        passes = 1 if settings.masking == "none" else np.minimum(settings.k or 1, lengths // ntlm.KMER)
        return ntlm.forward_flops(arch, lengths, layers=arch["layers"], passes=passes, head_tokens=True)

    def summarize(self, settings: SensitivitySettings, tracks: Mapping[str, Any]) -> Summary | None:
        """Mean recon_accuracy, perplexity and constraint (those written) per annotation class."""
        from .. import summaries

        metrics = [c for c in SUMMARIZED if c in tracks]
        if not settings.annotation or not metrics:
            return None
        annotation = summaries.read_annotation(summaries.resolve_annotation(settings.annotation))
        sums = {m: summaries.class_sums(tracks[m], annotation) for m in metrics}
        first = sums[metrics[0]]
        rows = [c for c in annotation.classes if first.bases[c]]
        empty = [c for c in annotation.classes if not first.bases[c]]
        means = np.array([[sums[m].total_sum / max(sums[m].total_bases, 1) for m in metrics]]
                         + [[sums[m].mean(c) for m in metrics] for c in rows])
        labels, bases = ["all scored bases", *rows], [first.total_bases, *(first.bases[c] for c in rows)]
        units = {"recon_accuracy": "recon_accuracy", "perplexity": "perplexity", "constraint": "constraint (bits)"}
        columns = [units[m] for m in metrics]
        low, high = np.nanmin(means, axis=0), np.nanmax(means, axis=0)
        scaled = (means - low) / np.where(high > low, high - low, 1)
        picture = summaries.heatmap_png(labels, columns, means, "Mean per element class", colors=scaled,
                                        colorbar="each column scaled to its range")
        text = (
            "<h2>Element summaries</h2>\n"
            f"<p>Mean of each track over the scored bases of each element class of the annotation "
            f"<code>{html.escape(str(annotation.path))}</code> (classes may overlap; a base counts once "
            "per class), read from the finished bigWigs.</p>\n"
            + summaries.table_html("Mean per element class", labels, columns, means, bases)
            + f'<p><img src="{PICTURE}" alt="heatmap of the mean per element class"></p>\n'
            + (f"<p>No scored base in: {html.escape(', '.join(empty))}.</p>\n" if empty else "")
        )
        data = {
            "annotation": str(annotation.path),
            "classes": {
                label: {"bases": int(n), **{m: _finite(v) for m, v in zip(metrics, row, strict=True)}}
                for label, n, row in zip(labels, bases, means, strict=True)
            },
        }
        return Summary(text, {PICTURE: picture}, data)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


register(SensitivityFamily())
