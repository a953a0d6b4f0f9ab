"""SegmentNT's per-nucleotide metrics: AUROC, AUPRC (average precision) and MCC (at 0.5 and at the best
threshold), from score histograms.

Scores are probabilities in [0, 1]; each is counted into one of ``BINS`` equal bins (bin k holds scores
in [k / BINS, (k + 1) / BINS), 1.0 in the last), separately for true and false positions. Histograms of
chromosomes add up, so a genome is scored one chromosome at a time in bounded memory, and the overall
metrics are exact functions of the summed counts. Thresholds are the bin edges (0.5 is one: BINS is
even); scores within one bin count as tied (AUROC by the trapezoid rule, i.e. Mann-Whitney with
mid-ranks). bigWig tracks store probabilities on a coarser grid than 1 / BINS, so no two distinct
stored values share a bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 4096


@dataclass(frozen=True)
class Scores:
    """Metrics of one track against one truth (NaN where undefined: no positives or no negatives)."""

    positives: int
    negatives: int
    auroc: float
    auprc: float
    mcc_05: float
    mcc_best: float
    best_threshold: float


def histograms(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(2, BINS) int64 counts of scores at false (row 0) and true (row 1) positions."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    k = np.clip((scores * BINS).astype(np.int64), 0, BINS - 1)
    return np.stack([np.bincount(k[~truth], minlength=BINS), np.bincount(k[truth], minlength=BINS)])


def mcc(tp: np.ndarray | float, fp: np.ndarray | float, fn: np.ndarray | float, tn: np.ndarray | float) -> np.ndarray:
    """Matthews correlation coefficient of confusion counts (0 where a margin is empty)."""
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1.0), 0.0)


def from_histograms(counts: np.ndarray) -> Scores:
    """Every metric from (2, BINS) counts (``histograms``, summed over as many chromosomes as wanted)."""
    neg_h, pos_h = (np.asarray(c, dtype=np.float64) for c in counts)
    pos, neg = pos_h.sum(), neg_h.sum()
    # calling "present" at score >= edge k / BINS, k = BINS-1 .. 0 (descending thresholds)
    tp = np.cumsum(pos_h[::-1])
    fp = np.cumsum(neg_h[::-1])
    thresholds = np.arange(BINS - 1, -1, -1) / BINS
    half = BINS // 2
    tp05, fp05 = pos_h[half:].sum(), neg_h[half:].sum()
    mcc05 = float(mcc(tp05, fp05, pos - tp05, neg - fp05))
    if pos == 0 or neg == 0:
        nan = float("nan")
        return Scores(int(pos), int(neg), nan, nan if pos == 0 else 1.0, mcc05, nan, nan)
    tpr, fpr = np.r_[0.0, tp / pos], np.r_[0.0, fp / neg]
    auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    called = tp + fp
    precision = np.divide(tp, called, out=np.ones_like(tp), where=called > 0)
    auprc = float(np.sum(precision * np.diff(np.r_[0.0, tp]) / pos))
    sweep = mcc(tp, fp, pos - tp, neg - fp)
    best = int(np.argmax(sweep))
    return Scores(int(pos), int(neg), auroc, auprc, mcc05, float(sweep[best]), float(thresholds[best]))


def score(scores: np.ndarray, truth: np.ndarray) -> Scores:
    """Every metric of one track (scores in [0, 1]) against a truth over the same positions."""
    return from_histograms(histograms(scores, truth))
