"""The embedding map: mean-pooled backbone embeddings of windows centred on annotated elements, in 2-D.

One of the paper's analyses: windows centred on the elements of each class of an annotation (and random
windows as a background class) go through the model; each window's per-token embeddings are averaged
(mean pooling) and the points are projected to two dimensions with t-SNE, coloured by class. Classes the
model tells apart form their own clusters; the share of each point's nearest neighbours in the map that
share its class (``neighbour_purity``) says how well, beside what chance would give (``chance_purity``).

The stages, each a plain function:

- ``pick_windows``: annotation + N-free contigs -> ``Windows`` (plain arrays): per class at most
  ``per_class`` windows (seeded choice), each centred on one element (its merged interval), on the 6-mer
  grid of its contig and inside it, so every window is N-free; ``background``: random windows whose centre
  lies in no annotated element;
- ``read_windows``: ``Windows`` + a reader ``(chrom, start, end) -> codes`` -> (n, window) uint8 codes;
- ``mean_embeddings``: a token-embedding model + codes -> (n, width) mean-pooled embeddings;
- ``project``: (n, width) -> (n, 2) by scikit-learn's t-SNE (seeded, PCA initialisation: deterministic);
- ``map_png``, ``points_tsv``: the picture and the table of the points.

``BackboneTokens`` turns an NT backbone into such a token-embedding model (one layer's embeddings, CLS
dropped); ``models.embedding.KmerOneHotModel`` is another, whose mean-pooled embedding is the window's
6-mer spectrum (the tests' model, known by hand).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .genome import Contig
from .summaries import Annotation, merge

BACKGROUND = "background"
PER_CLASS = 40  # windows per class at most: enough for a picture, a few seconds of compute
NEIGHBOURS = 10  # the k of the neighbour purity
MIN_POINTS = 10  # fewer windows than this make no map (t-SNE needs a neighbourhood)
SEED = 20240521
TSNE_ITERATIONS = 500  # 250 of them early exaggeration: a few hundred points settle well before
TRIES = 50  # random background draws per window wanted

ReadCodes = Callable[[str, int, int], np.ndarray]


@dataclass(frozen=True)
class Windows:
    """The windows of a map: classes (names; ``label`` indexes them), per window its class, chromosome and
    start (n,), all ``window`` bp long; in class order, then genome order."""

    classes: tuple[str, ...]
    label: np.ndarray  # (n,) int64
    chrom: np.ndarray  # (n,) str
    start: np.ndarray  # (n,) int64
    window: int

    def __len__(self) -> int:
        return len(self.label)

    def counts(self) -> dict[str, int]:
        """Windows per class, every class (0 for a class no window fits)."""
        n = np.bincount(self.label, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n, strict=True)}


@dataclass(frozen=True)
class EmbeddingMap:
    """Windows, their points xy (n, 2) in the t-SNE map, and its neighbour purity beside chance."""

    windows: Windows
    xy: np.ndarray
    purity: float
    chance: float


def _starts(centres: np.ndarray, contigs: Sequence[Contig], window: int, grid: int) -> np.ndarray:
    """Per centre, the start of the window of ``window`` bp centred on it on its contig's ``grid``, or -1
    where no such window fits inside a contig (centres: sorted or not, one chromosome's contigs)."""
    out = np.full(len(centres), -1, dtype=np.int64)
    if not contigs:
        return out
    lo = np.array([c.start for c in contigs], dtype=np.int64)
    hi = np.array([c.end for c in contigs], dtype=np.int64)
    which = np.searchsorted(lo, centres, side="right") - 1
    inside = (which >= 0) & (centres < hi[np.maximum(which, 0)])
    first = lo[np.maximum(which, 0)]
    start = first + (centres - window // 2 - first) // grid * grid
    fits = inside & (start >= first) & (start + window <= hi[np.maximum(which, 0)])
    out[fits] = start[fits]
    return out


def _outside(centres: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """centres (n,) -> True where a centre lies in none of the sorted, merged intervals (m, 2)."""
    if len(intervals) == 0:
        return np.ones(len(centres), dtype=bool)
    i = np.searchsorted(intervals[:, 0], centres, side="right") - 1
    return ~((i >= 0) & (centres < intervals[np.maximum(i, 0), 1]))


def pick_windows(annotation: Annotation, contigs: Sequence[Contig], window: int, *, grid: int = 6,
                 per_class: int = PER_CLASS, seed: int = SEED) -> Windows:
    """Windows centred on the elements of each class of ``annotation`` on ``contigs`` (the run's N-free
    runs, genome order), at most ``per_class`` per class chosen at random (seeded), and as many random
    ``background`` windows whose centre lies in no element."""
    rng = np.random.default_rng(seed)
    by_chrom: dict[str, list[Contig]] = {}
    for c in contigs:
        by_chrom.setdefault(c.chrom, []).append(c)
    for cs in by_chrom.values():
        cs.sort(key=lambda c: c.start)
    chroms = list(by_chrom)
    background = BACKGROUND if BACKGROUND not in annotation.classes else f"random_{BACKGROUND}"
    classes = (*annotation.classes, background)
    labels: list[np.ndarray] = []
    where: list[np.ndarray] = []  # (k, 2): chromosome index, start
    for label, name in enumerate(annotation.classes):
        found = []
        for ci, chrom in enumerate(chroms):
            iv = annotation.classes[name].get(chrom)
            if iv is None:
                continue
            starts = _starts((iv[:, 0] + iv[:, 1]) // 2, by_chrom[chrom], window, grid)
            starts = np.unique(starts[starts >= 0])
            found.append(np.stack([np.full(len(starts), ci), starts], axis=1))
        picked = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
        if len(picked) > per_class:
            picked = picked[np.sort(rng.choice(len(picked), per_class, replace=False))]
        labels.append(np.full(len(picked), label))
        where.append(picked)
    where.append(_background(annotation, by_chrom, window, grid, per_class, rng))
    labels.append(np.full(len(where[-1]), len(classes) - 1))
    at = np.concatenate(where).astype(np.int64).reshape(-1, 2)
    return Windows(classes, np.concatenate(labels).astype(np.int64),
                   np.array([chroms[i] for i in at[:, 0]], dtype=str), at[:, 1], window)


def _background(annotation: Annotation, by_chrom: dict[str, list[Contig]], window: int, grid: int,
                wanted: int, rng: np.random.Generator) -> np.ndarray:
    """(k <= wanted, 2) chromosome index and start of random grid windows inside the contigs whose centre
    lies in no annotated element, in genome order."""
    slots = [(ci, c, (c.length - window) // grid + 1) for ci, cs in enumerate(by_chrom.values()) for c in cs
             if c.length >= window]
    if not slots or not wanted:
        return np.zeros((0, 2), dtype=np.int64)
    counts = np.array([n for _, _, n in slots], dtype=np.float64)
    draw = rng.choice(len(slots), size=TRIES * wanted, p=counts / counts.sum())
    offset = (rng.random(TRIES * wanted) * counts[draw]).astype(np.int64)
    ci = np.array([slots[d][0] for d in draw], dtype=np.int64)
    start = np.array([slots[d][1].start for d in draw], dtype=np.int64) + offset * grid
    keep = np.ones(len(draw), dtype=bool)
    chroms = list(by_chrom)
    for i, chrom in enumerate(chroms):
        on = ci == i
        covered = [iv[chrom] for iv in annotation.classes.values() if chrom in iv]
        if covered:
            keep[on] = _outside(start[on] + window // 2, merge(np.concatenate(covered)))
    at = np.stack([ci[keep], start[keep]], axis=1)
    _, first = np.unique(at, axis=0, return_index=True)  # a window drawn twice counts once
    at = at[np.sort(first)][:wanted]
    return at[np.lexsort((at[:, 1], at[:, 0]))]


def read_windows(windows: Windows, read: ReadCodes) -> np.ndarray:
    """The windows' base codes (n, window) uint8 (A0 C1 G2 T3), from ``read(chrom, start, end)``."""
    out = np.empty((len(windows), windows.window), dtype=np.uint8)
    for i, (chrom, start) in enumerate(zip(windows.chrom, windows.start, strict=True)):
        out[i] = read(str(chrom), int(start), int(start) + windows.window)
    return out


def mean_embeddings(model: Any, codes: np.ndarray, *, batch_size: int = 64, device: Any = "cpu") -> np.ndarray:
    """Mean-pooled embeddings (n, width) float64 of windows ``codes`` (n, length) uint8, from ``model``:
    a torch module mapping codes (batch, length) uint8 -> (batch, tokens, width) token embeddings."""
    import torch

    parts = []
    with torch.no_grad():
        for lo in range(0, len(codes), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(codes[lo : lo + batch_size])).to(device)
            parts.append(model(x).float().mean(dim=1).cpu().numpy().astype(np.float64))
    width = int(parts[0].shape[1]) if parts else 0
    return np.concatenate(parts) if parts else np.zeros((0, width))


def perplexity_for(n: int) -> float:
    """The t-SNE perplexity for n points: scikit-learn's 30, less for few points (it must stay below n)."""
    return float(min(30.0, max(2.0, (n - 1) / 3)))


def project(x: np.ndarray, *, seed: int = SEED) -> np.ndarray:
    """t-SNE of the points x (n, width) -> (n, 2): seeded, PCA initialisation, ``TSNE_ITERATIONS``
    iterations, one thread (more only spin against the tracks' work): the same points give the same map."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    tsne = TSNE(n_components=2, perplexity=perplexity_for(len(x)), init="pca", random_state=seed, n_jobs=1,
                max_iter=TSNE_ITERATIONS)
    with threadpool_limits(1):
        return tsne.fit_transform(np.asarray(x, dtype=np.float64)).astype(np.float64)


def neighbour_purity(xy: np.ndarray, label: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Mean over the points of the share of their k nearest other points (Euclidean) of the same class."""
    n = len(xy)
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return float((label[nearest] == label[:, None]).mean())


def chance_purity(label: np.ndarray) -> float:
    """The neighbour purity of a map that ignores the classes: the chance that another point drawn at
    random shares a point's class, averaged over the points."""
    n = len(label)
    if n < 2:
        return float("nan")
    counts = np.bincount(label)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def embedding_map(model: Any, read: ReadCodes, windows: Windows, *, seed: int = SEED, batch_size: int = 64,
                  device: Any = "cpu") -> EmbeddingMap | None:
    """The map of ``model``'s mean-pooled embeddings of ``windows`` (``pick_windows``), their codes from
    ``read``; None when there are fewer than ``MIN_POINTS`` windows, or windows of one class only."""
    if len(windows) < MIN_POINTS or len(np.unique(windows.label)) < 2:
        return None
    x = mean_embeddings(model, read_windows(windows, read), batch_size=batch_size, device=device)
    xy = project(x, seed=seed)
    return EmbeddingMap(windows, xy, neighbour_purity(xy, windows.label), chance_purity(windows.label))


class BackboneTokens:
    """An NT backbone as a token-embedding model: codes (batch, length) uint8, length % 6 == 0 ->
    (batch, length // 6, hidden) embeddings of layer ``layer`` (HF ``hidden_states`` numbering: 0 the
    token embeddings, L the last block after the final LayerNorm), CLS dropped."""

    def __init__(self, backbone: Any, layer: int | None = None) -> None:
        # a layer the model lacks: the family's preflight names the setting; hidden_states refuses it too
        self.layer = backbone.config.layers if layer is None else layer
        self.backbone = backbone

    def __call__(self, codes: Any) -> Any:
        from .models.tokenizer import tokenize_acgt

        ids = tokenize_acgt(codes, self.backbone.config.vocab)
        return self.backbone.hidden_states(ids, self.layer)[:, 1:]


# ----------------------------------------------------------------------------- the picture and the table


# tab20's dark shades, then its light ones, without its greys (the background's colour)
_TAB20 = (0, 2, 4, 6, 8, 10, 12, 16, 18, 1, 3, 5, 7, 9, 11, 13, 17, 19)


def _colours(n: int) -> list[Any]:
    """n colours: one per element class (tab10's, or tab20's past 9 classes, cycling past 18) and grey for
    the last class, the background."""
    from matplotlib import colormaps

    if n - 1 <= 9:
        table = [c for i, c in enumerate(colormaps["tab10"].colors) if i != 7]  # 7: tab10's grey
    else:
        table = [colormaps["tab20"].colors[i] for i in _TAB20]
    return [table[i % len(table)] for i in range(n - 1)] + [(0.55, 0.55, 0.55)]


def map_png(m: EmbeddingMap, title: str) -> bytes:
    """The map as PNG bytes (matplotlib, Agg): one colour per class, the legend with each class's count."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w = m.windows
    fig = Figure(figsize=(8.0, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (name, colour) in enumerate(zip(w.classes, _colours(len(w.classes)), strict=True)):
        on = w.label == i
        if on.any():
            ax.scatter(m.xy[on, 0], m.xy[on, 1], s=14, color=colour, alpha=0.85, linewidths=0,
                       label=f"{name} ({int(on.sum())})")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, markerscale=1.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight", metadata={"Software": None})
    return out.getvalue()


def points_tsv(m: EmbeddingMap) -> bytes:
    """One row per window: class, chrom, start (0-based), end, x, y."""
    w = m.windows
    rows = ["class\tchrom\tstart\tend\tx\ty\n"]
    rows += [f"{w.classes[c]}\t{chrom}\t{s}\t{s + w.window}\t{x:.4f}\t{y:.4f}\n"
             for c, chrom, s, (x, y) in zip(w.label, w.chrom, w.start.tolist(), m.xy.tolist(), strict=True)]
    return "".join(rows).encode()
