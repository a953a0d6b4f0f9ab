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

embedding_map: with an annotation, also a t-SNE map of the backbone's mean-pooled embeddings of windows
    centred on the annotation's elements, by class (``nttracks.embedmap``), on the page with its points as a
    TSV. An error without ``annotation``.
embedding_layer: the layer whose embeddings the map shows (0: the token embeddings; default: the last,
    after the final LayerNorm). Only with ``embedding_map``.

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
MAP_PICTURE, MAP_TABLE = "sensitivity_embedding_map.png", "sensitivity_embedding_map.tsv"


@dataclass(frozen=True)
class SensitivitySettings(ntlm.MaskedLMSettings):
    channels: tuple[str, ...] = CHANNELS
    masking: str = "none"
    k: int | None = None
    embedding_map: bool = False
    embedding_layer: int | None = None


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
        if settings.embedding_map and not settings.annotation:
            raise ConfigError(
                f"{source}: {where}.embedding_map: the embedding map colours windows centred on annotated "
                f"elements by class, so it needs {where}.annotation (demo, or a BED of element classes); set it "
                "or remove embedding_map"
            )
        if settings.embedding_layer is not None and not settings.embedding_map:
            raise ConfigError(f"{source}: {where}.embedding_layer: chooses the layer of the embedding map; set "
                              "embedding_map: true too, or remove it")
        if settings.embedding_layer is not None and settings.embedding_layer < 0:
            raise ConfigError(f"{source}: {where}.embedding_layer: {settings.embedding_layer} is not a layer; "
                              "give 0 (the token embeddings) up to the model's layer count (the last)")

    def geometry(self, settings: SensitivitySettings) -> Geometry:
        return ntlm.geometry(resolution=1)

    def channels(self, settings: SensitivitySettings) -> tuple[str, ...]:
        return tuple(settings.channels)

    def preflight(self, settings: SensitivitySettings, geometry: Geometry, *, dry_run: bool) -> list[str]:
        notes, arch = ntlm.preflight(settings, geometry, self.name, dry_run=dry_run)
        if arch is not None and settings.embedding_layer is not None and settings.embedding_layer > arch["layers"]:
            raise ConfigError(
                f"families.{self.name}.embedding_layer: {settings.embedding_layer}, but checkpoint "
                f"{settings.checkpoint} has layers 0..{arch['layers']} (0: the token embeddings, {arch['layers']}: "
                "the last); choose one of them"
            )
        return notes

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

    def model_summary(self, settings: SensitivitySettings, geometry: Geometry, genome: Any, contigs: Any,
                      device: Any) -> Summary | None:
        """With ``embedding_map``: the t-SNE map of the backbone's mean-pooled embeddings of windows centred
        on the annotation's elements (``nttracks.embedmap``), its PNG and its points' TSV."""
        if not settings.embedding_map:
            return None
        import logging
        import time

        from .. import embedmap, summaries
        from ..models.loading import load_nt_backbone

        began = time.perf_counter()
        annotation = summaries.read_annotation(summaries.resolve_annotation(settings.annotation))
        backbone = load_nt_backbone(ntlm.checkpoint_dir(settings), device=device,
                                    dtype=torch_dtype(settings.precision, device))
        model = embedmap.BackboneTokens(backbone, settings.embedding_layer)
        layers = backbone.config.layers
        windows = embedmap.pick_windows(annotation, contigs, geometry.window, grid=geometry.grid)
        found = embedmap.embedding_map(model, genome.codes, windows, batch_size=settings.batch_size or 64,
                                       device=device)
        logging.getLogger(__name__).info("sensitivity: embedding map of %d windows in %.1f s", len(windows),
                                         time.perf_counter() - began)
        chroms = sorted({c.chrom for c in contigs}, key=[c.chrom for c in contigs].index)
        where = f"{len(chroms)} chromosomes" if len(chroms) > 3 else ", ".join(chroms)
        label = ntlm.model_label(settings, "masked LM")
        head = "<h2>Embedding map</h2>\n"
        if found is None:
            elements = len(windows) - windows.counts()[windows.classes[-1]]
            text = (f"{head}<p>No embedding map: {elements} windows of {geometry.window:,} bp centred on elements "
                    f"of the annotation <code>{html.escape(str(annotation.path))}</code> fit in the N-free contigs "
                    f"of {html.escape(where)}, and {len(windows) - elements} background windows; a map needs "
                    f"{embedmap.MIN_POINTS} windows in all and an element class beside the background.</p>\n")
            return Summary(text, {}, {"embedding_map": None})
        w = found.windows
        counts = w.counts()
        title = (f"{label}, layer {model.layer} of {layers}\nmean-pooled embeddings of {w.window:,}-bp windows "
                 f"({where})")
        depth = ("the token embeddings" if model.layer == 0 else
                 "after the final LayerNorm" if model.layer == layers else "a block's output")
        shown = [c for c in w.classes if counts[c]]
        absent = [c for c in w.classes if not counts[c]]
        table = ("<table>\n<caption>Windows per class</caption>\n<tr><th>class</th><th>windows</th></tr>\n"
                 + "".join(f"<tr><td>{html.escape(c)}</td><td>{counts[c]}</td></tr>\n" for c in shown)
                 + "</table>\n")
        text = (
            f"{head}<p><img src=\"{MAP_PICTURE}\" alt=\"t-SNE map of window embeddings coloured by element "
            "class\"></p>\n"
            f"<p>Each point is one window of {w.window:,} bp on {html.escape(where)}: centred on an element of the "
            f"annotation <code>{html.escape(str(annotation.path))}</code> (at most {embedmap.PER_CLASS} per class, "
            f"chosen at random with seed {embedmap.SEED}), or, for <em>{html.escape(w.classes[-1])}</em>, a random "
            "window whose centre lies in no element; every window lies inside an N-free contig. Its position is "
            f"the t-SNE (scikit-learn, perplexity {embedmap.perplexity_for(len(w)):.3g}, PCA initialisation, "
            f"{embedmap.TSNE_ITERATIONS} iterations, seed {embedmap.SEED}) of its embedding from "
            f"{html.escape(label)} at layer {model.layer} of {layers} "
            f"({depth}), "
            "averaged over the window's 6-mer tokens (CLS excluded). Classes may overlap (an exon lies in a gene), "
            f"so their windows may too. Neighbour purity, the share of each point's {embedmap.NEIGHBOURS} nearest "
            f"neighbours in the map that share its class: {found.purity:.3f} (chance: {found.chance:.3f}). "
            f'The points: <a href="{MAP_TABLE}">{MAP_TABLE}</a> (class, chrom, start, end, x, y).</p>\n'
            + table
            + (f"<p>No window fits for: {html.escape(', '.join(absent))}.</p>\n" if absent else "")
        )
        data = {"embedding_map": {
            "picture": MAP_PICTURE, "points": MAP_TABLE, "window": w.window, "layer": model.layer,
            "windows": counts, "neighbour_purity": _finite(found.purity), "chance_purity": _finite(found.chance),
        }}
        files = {MAP_PICTURE: embedmap.map_png(found, title), MAP_TABLE: embedmap.points_tsv(found)}
        return Summary(text, files, data)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


register(SensitivityFamily())
