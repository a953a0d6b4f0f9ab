"""The ``attention`` family: where chosen attention heads of an NT backbone look.

For each configured (layer, head) pair, one bigWig: the attention mass each DNA token receives, the mean over
the window's DNA-token queries of the weight they put on it, spread over the token's six bases (definition,
and what happens to CLS: ``nttracks.models.attention``; the explicit attention path: ``nt.attention_maps``).
The tracks are grouped in one composite; the catalog styles them from the family's ``track_template``, since
which channels exist depends on the settings.

Settings, besides the window settings, ``checkpoint``, ``precision`` and ``annotation`` of the masked-LM
families (``families.ntlm``):

heads: the pairs, as ``L<layer>H<head>`` counted from 0 (e.g. ``[L0H1, L11H3]``); required, since which
    heads are worth a track depends on the model. Each is one channel, named as written.

With an annotation, the page and the manifest carry each head's attention enrichment per element class:
the share of the head's attention mass on the class divided by the share of the scored bases in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bases import Geometry
from ..errors import ConfigError, ModelError
from . import Family, LoadedModel, Summary, ntlm, register, torch_dtype

HEAD_RE = re.compile(r"L(0|[1-9][0-9]*)H(0|[1-9][0-9]*)")
PICTURE = "attention_summary.png"


@dataclass(frozen=True)
class AttentionSettings(ntlm.MaskedLMSettings):
    heads: tuple[str, ...] = ()


def pairs(settings: AttentionSettings) -> tuple[tuple[int, int], ...]:
    """The (layer, head) pairs of the settings' ``heads``, in order."""
    out = []
    for text in settings.heads:
        match = HEAD_RE.fullmatch(text)
        if match is None:
            raise ModelError(f"attention head {text!r} is not L<layer>H<head>")
        out.append((int(match[1]), int(match[2])))
    return tuple(out)


class AttentionFamily(Family):
    name = "attention"
    settings = AttentionSettings
    summary = "NT attention mass each base receives, per chosen (layer, head)"

    def check(self, settings: AttentionSettings, where: str, source: str) -> None:
        ntlm.check_settings(settings, where, source)
        if not settings.heads:
            raise ConfigError(
                f"{source}: {where}.heads: list the attention heads to draw as L<layer>H<head>, counted from 0, "
                "e.g. heads: [L0H1, L11H3]"
            )
        for i, text in enumerate(settings.heads):
            if not HEAD_RE.fullmatch(text):
                raise ConfigError(
                    f"{source}: {where}.heads[{i}]: {text!r} is not L<layer>H<head> (e.g. L0H1; numbers from 0, "
                    "no leading zeros)"
                )
        if len(set(settings.heads)) != len(settings.heads):
            raise ConfigError(f"{source}: {where}.heads: {list(settings.heads)} names a head twice")

    def geometry(self, settings: AttentionSettings) -> Geometry:
        return ntlm.geometry(resolution=ntlm.KMER)  # one value per token

    def channels(self, settings: AttentionSettings) -> tuple[str, ...]:
        return tuple(settings.heads)

    def preflight(self, settings: AttentionSettings, geometry: Geometry, *, dry_run: bool) -> list[str]:
        """The checkpoint check of the masked-LM families, that it has every head, and that the catalog can
        style every head's track (its labels fit)."""
        from ..catalog import load_catalog

        catalog = load_catalog()
        for head in settings.heads:
            catalog.track(self.name, head)
        notes, arch = ntlm.preflight(settings, geometry, self.name, dry_run=dry_run)
        if arch is not None:
            for head, (layer, index) in zip(settings.heads, pairs(settings), strict=True):
                if layer >= arch["layers"] or index >= arch["heads"]:
                    raise ModelError(
                        f"attention: head {head} is not in checkpoint {settings.checkpoint}, which has layers "
                        f"0..{arch['layers'] - 1} and heads 0..{arch['heads'] - 1}; fix families.attention.heads"
                    )
        return notes

    def weights_digest(self, settings: AttentionSettings) -> str:
        from ..models.loading import checkpoint_digest

        return checkpoint_digest(ntlm.checkpoint_dir(settings))

    def load(self, settings: AttentionSettings, geometry: Geometry, device: Any) -> LoadedModel:
        from ..models.attention import AttentionTracks
        from ..models.loading import checkpoint_digest, load_nt_backbone

        directory = ntlm.checkpoint_dir(settings)
        backbone = load_nt_backbone(directory, device=device, dtype=torch_dtype(settings.precision, device))
        model = AttentionTracks(backbone, geometry, pairs(settings)).to(device)
        label = ntlm.model_label(settings, "backbone, explicit attention")
        return LoadedModel(model, checkpoint_digest(Path(directory)), label)

    def flops(self, settings: AttentionSettings, lengths: np.ndarray) -> float:
        """The blocks up to the deepest head asked for, one pass, no LM head."""
        arch = ntlm.local_architecture(settings)
        layers = max(layer for layer, _ in pairs(settings)) + 1
        return ntlm.forward_flops(arch, lengths, layers=min(layers, arch["layers"]), passes=1, head_tokens=False)

    def summarize(self, settings: AttentionSettings, tracks: Mapping[str, Any]) -> Summary | None:
        """Each head's attention enrichment per annotation class."""
        from .. import summaries

        if not settings.annotation:
            return None
        annotation = summaries.read_annotation(summaries.resolve_annotation(settings.annotation))
        heads = list(settings.heads)
        sums = {h: summaries.class_sums(tracks[h], annotation) for h in heads}
        first = sums[heads[0]]
        rows = [c for c in annotation.classes if first.bases[c]]
        empty = [c for c in annotation.classes if not first.bases[c]]
        enrichment = np.array([[sums[h].enrichment(c) for h in heads] for c in rows]).reshape(len(rows), len(heads))
        shares = [first.bases[c] / first.total_bases for c in rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            log2 = np.log2(enrichment)
        picture = summaries.heatmap_png(rows, heads, enrichment, "Attention enrichment per element class",
                                        colors=log2, cmap="RdBu_r", center=0.0, colorbar="log2 enrichment")
        text = (
            "<h2>Element summaries</h2>\n"
            "<p>Attention enrichment of each head per element class of the annotation "
            f"<code>{html.escape(str(annotation.path))}</code>: the share of the head's attention mass (summed over "
            "the scored bases of the track) that falls on the class, divided by the share of the scored bases in "
            "the class. 1: the head attends to the class as much as to any base; above 1: more. Read from the "
            "finished bigWigs; classes may overlap, and a base counts once per class.</p>\n"
            + summaries.table_html("Attention enrichment per element class", rows, heads, enrichment,
                                   [first.bases[c] for c in rows])
            + f'<p><img src="{PICTURE}" alt="heatmap of attention enrichment per element class"></p>\n'
            + (f"<p>No scored base in: {html.escape(', '.join(empty))}.</p>\n" if empty else "")
        )
        data = {
            "annotation": str(annotation.path),
            "classes": {
                c: {"bases": int(first.bases[c]), "share_of_bases": share,
                    "enrichment": {h: (float(e) if np.isfinite(e) else None) for h, e in zip(heads, row, strict=True)}}
                for c, share, row in zip(rows, shares, enrichment, strict=True)
            },
        }
        return Summary(text, {PICTURE: picture}, data)


register(AttentionFamily())
