"""``nttracks variants --compare``: NT scores beside the user's own (CADD, GERP, DeepSEA, ...), with metrics.

External scores are joined to the scored alleles of ``variants.tsv``:

- a TSV (plain or gzip; a header line naming its columns) keyed by chrom, pos (1-based), ref, alt: every
  other numeric column is a score, named ``<file stem>:<column>``;
- the same, bgzipped and tabix-indexed (``.tbi`` beside it; a CADD file): only the variants' positions are
  read, so a whole-genome file is never loaded;
- a bigWig of per-base scores (GERP, phyloP): the value at the variant's first REF base, named after the file.

Chromosome names are matched across naming conventions (chr1 = 1, chrM = MT). With ``labels`` (a column of a
compared file, or a TSV chrom, pos, ref, alt, label; 1/0, true/false, positive/negative, pathogenic/benign)
every score gets its AUROC and AUPRC; so do NT's scores combined with each external score by a logistic
regression, out-of-fold (stratified k-fold cross-validation, seeded), as the paper combined NT with CADD, GERP
and DeepSEA. Scores where lower means "more likely functional" (similarities, the LLR) are negated first
(``ORIENTED``). A Spearman correlation matrix of all scores, and ``report.html`` with its PNG plots, go into
``out``. The numerics are NumPy kernels apart from the I/O.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VariantsError

NT_FEATURES = ("l1_mean", "l2_mean", "cosine_mean", "l1_token", "l2_token", "cosine_token", "llr")
ORIENTED = {"cosine_mean": -1.0, "cosine_token": -1.0, "dot_mean": -1.0, "dot_token": -1.0, "llr": -1.0,
            "logp_alt": -1.0}  # lower = more likely functional: negated for AUROC/AUPRC
_POSITIVE = {"1", "true", "yes", "positive", "pos", "pathogenic", "likely_pathogenic", "functional", "case"}
_NEGATIVE = {"0", "false", "no", "negative", "neg", "benign", "likely_benign", "neutral", "control"}
Key = tuple[str, int, str, str]


def norm_chrom(chrom: str) -> str:
    """A naming-independent chromosome key: chr1 and 1 -> 1; chrM, MT and M -> M."""
    name = chrom.removeprefix("chr")
    return "M" if name in ("M", "MT") else name


# ----------------------------------------------------------------------------- kernels


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` (n,), ties given their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values = x[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        if e - s > 1:
            ranks[order[s:e]] = (s + 1 + e) / 2
    return ranks


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg), ties counted half); NaN without both classes."""
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of precision x recall gained (tied scores one step)."""
    pos = labels.astype(bool)
    if not pos.any() or pos.all():
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], pos[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last index of each run of tied scores
    tp = np.cumsum(y)[last]
    n = (np.arange(1, len(s) + 1))[last]
    precision, recall = tp / n, tp / pos.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at each distinct threshold, from (0, 0) to (1, 1)."""
    pos = labels.astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], pos[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def spearman(matrix: np.ndarray) -> np.ndarray:
    """(n, k) scores -> (k, k) Spearman correlations, each pair over the rows where both are finite."""
    k = matrix.shape[1]
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i, k):
            ok = np.isfinite(matrix[:, i]) & np.isfinite(matrix[:, j])
            if ok.sum() > 2:
                a, b = rankdata(matrix[ok, i]), rankdata(matrix[ok, j])
                if a.std() > 0 and b.std() > 0:
                    out[i, j] = out[j, i] = float(np.corrcoef(a, b)[0, 1])
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Weights (k + 1,) (intercept first) of an L2-penalized logistic regression by Newton's method.
    x: (n, k) standardized features; y: (n,) 0/1. The intercept is not penalized."""
    design = np.c_[np.ones(len(x)), x]
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2 * len(x))
    penalty[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -35, 35)))
        grad = design.T @ (p - y) + penalty * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def cross_validated(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities (n,) of a logistic regression on x (n, k) (NaN: the training folds' mean),
    stratified into ``folds`` folds (fewer when a class is smaller), seeded."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    folds = max(2, min(folds, int(y.sum()), int((1 - y).sum())))
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    out = np.empty(len(y))
    for f in range(folds):
        train, test = fold != f, fold == f
        mean = np.nanmean(np.where(np.isfinite(x[train]), x[train], np.nan), axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        filled = np.where(np.isfinite(x), x, mean)
        std = filled[train].std(axis=0)
        std[std == 0] = 1.0
        z = (filled - filled[train].mean(axis=0)) / std
        w = fit_logistic(z[train], y[train].astype(np.float64))
        out[test] = 1.0 / (1.0 + np.exp(-np.clip(np.c_[np.ones(test.sum()), z[test]] @ w, -35, 35)))
    return out


# ----------------------------------------------------------------------------- reading


@dataclass
class Table:
    """Scored alleles (keys in variants.tsv order) and their score columns (n,) float64, NaN where missing."""

    keys: list[Key]
    columns: dict[str, np.ndarray]
    nt: tuple[str, ...]


def read_nt(tsv: Path) -> Table:
    keys: list[Key] = []
    rows: list[dict[str, str]] = []
    with open(tsv, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["status"] == "scored":
                keys.append((norm_chrom(row["chrom"]), int(row["pos"]), row["ref"].upper(), row["alt"].upper()))
                rows.append(row)
    if not rows:
        raise VariantsError(f"{tsv} has no scored allele to compare")
    names = [c for c in rows[0] if c not in ("record", "allele", "chrom", "pos", "id", "ref", "alt", "status",
                                              "reason", "detail")]
    columns = {n: np.array([_float(r[n]) for r in rows]) for n in names}
    return Table(keys, columns, tuple(names))


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "", "NA", ".", "nan") else math.nan
    except ValueError:
        return math.nan


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)  # type: ignore[return-value]


_KEY_NAMES = {"chrom": ("chrom", "chr", "chromosome", "#chrom", "#chr"), "pos": ("pos", "position", "bp"),
              "ref": ("ref", "reference"), "alt": ("alt", "alternative", "alternate")}


def _key_columns(header: Sequence[str], path: Path) -> dict[str, int]:
    lower = [h.strip().lstrip("#").lower() for h in header]
    found = {}
    for key, names in _KEY_NAMES.items():
        hit = next((i for i, h in enumerate(lower) if h in {n.lstrip("#") for n in names}), None)
        if hit is None:
            raise VariantsError(f"{path}: no {key} column in its header ({', '.join(header)}); name the columns "
                                "chrom, pos, ref, alt (1-based pos) and the scores")
        found[key] = hit
    return found


def _header(path: Path) -> list[str]:
    last = None
    with _open_text(path) as f:
        for line in f:
            if not line.startswith("#") or line.startswith("#chrom") or line.lower().startswith("#chr"):
                last = line
                break
            last = line
    if last is None:
        raise VariantsError(f"{path} is empty; give a TSV with a header line")
    return last.rstrip("\n").lstrip("#").split("\t")


def read_external(path: Path, table: Table, genome_chroms: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The score columns of ``path`` aligned to ``table.keys`` (NaN where the file has no value)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VariantsError(f"--compare {path}: no such file")
    if path.suffix.lower() in (".bw", ".bigwig"):
        return {path.stem: _bigwig_values(path, table)}
    header = _header(path)
    keys = _key_columns(header, path)
    score_cols = [i for i in range(len(header)) if i not in keys.values()]
    wanted = {k: i for i, k in enumerate(table.keys)}
    out = {f"{path.stem.removesuffix('.tsv')}:{header[i].strip()}": np.full(len(table.keys), np.nan)
           for i in score_cols}
    names = list(out)
    text: dict[str, list[str | None]] = {n: [None] * len(table.keys) for n in names}

    def take(fields: list[str]) -> None:
        if len(fields) <= max(keys.values()):
            return
        try:
            key = (norm_chrom(fields[keys["chrom"]]), int(fields[keys["pos"]]), fields[keys["ref"]].upper(),
                   fields[keys["alt"]].upper())
        except ValueError:
            return
        row = wanted.get(key)
        if row is None:
            return
        for name, i in zip(names, score_cols, strict=True):
            value = fields[i] if i < len(fields) else ""
            out[name][row] = _float(value)
            text[name][row] = value

    if Path(f"{path}.tbi").is_file():
        import pysam

        tabix = pysam.TabixFile(str(path))
        contigs = {norm_chrom(c): c for c in tabix.contigs}
        for chrom, pos in sorted({(k[0], k[1]) for k in table.keys}):
            if chrom in contigs:
                for line in tabix.fetch(contigs[chrom], pos - 1, pos):
                    take(line.split("\t"))
        tabix.close()
    else:
        with _open_text(path) as f:
            for line in f:
                if not line.startswith("#"):
                    take(line.rstrip("\n").split("\t"))
    # text columns (a label column, say) are kept as text for labels; numeric ones as numbers
    return {n: (v if not _is_text(text[n]) else np.array(text[n], dtype=object)) for n, v in out.items()}


def _is_text(values: list[str | None]) -> bool:
    given = [v for v in values if v not in (None, "", ".", "NA")]
    return bool(given) and all(math.isnan(_float(v)) for v in given)


def _bigwig_values(path: Path, table: Table) -> np.ndarray:
    import pyBigWig

    bw = pyBigWig.open(str(path))
    if bw is None:
        raise VariantsError(f"--compare {path}: not a bigWig file")
    chroms = {norm_chrom(c): c for c in bw.chroms()}
    out = np.full(len(table.keys), np.nan)
    for i, (chrom, pos, _, _) in enumerate(table.keys):
        name = chroms.get(chrom)
        if name is not None and pos <= bw.chroms()[name]:
            value = bw.values(name, pos - 1, pos)[0]
            out[i] = value if value is not None else np.nan
    bw.close()
    return out


def read_labels(labels: str, table: Table, external: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n,) 1.0 / 0.0 / NaN (unlabelled) from a labels file or a column of a compared file."""
    column = next((v for n, v in external.items() if n == labels or n.split(":", 1)[-1] == labels), None)
    if column is None:
        path = Path(labels).expanduser()
        if not path.is_file():
            known = ", ".join(n.split(":", 1)[-1] for n in external) or "none"
            raise VariantsError(f"--labels {labels}: neither a file nor a column of the compared files ({known})")
        column = next(iter(_label_file(path, table).values()))
    out = np.full(len(table.keys), np.nan)
    bad = set()
    for i, v in enumerate(column):
        text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip().lower()
        text = text.removesuffix(".0")
        if text in _POSITIVE:
            out[i] = 1.0
        elif text in _NEGATIVE:
            out[i] = 0.0
        elif text not in ("", ".", "na"):
            bad.add(text)
    if bad:
        raise VariantsError(f"--labels {labels}: values {sorted(bad)[:5]} are not labels; use 1/0, true/false, "
                            "positive/negative or pathogenic/benign")
    return out


def _label_file(path: Path, table: Table) -> dict[str, np.ndarray]:
    header = _header(path)
    keys = _key_columns(header, path)
    rest = [i for i in range(len(header)) if i not in keys.values()]
    if not rest:
        raise VariantsError(f"--labels {path}: needs a label column besides chrom, pos, ref, alt")
    wanted = {k: i for i, k in enumerate(table.keys)}
    col = np.array([None] * len(table.keys), dtype=object)
    with _open_text(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(fields) <= max(keys.values()):
                continue
            try:
                key = (norm_chrom(fields[keys["chrom"]]), int(fields[keys["pos"]]), fields[keys["ref"]].upper(),
                       fields[keys["alt"]].upper())
            except ValueError:
                continue
            if key in wanted and rest[0] < len(fields):
                col[wanted[key]] = fields[rest[0]]
    return {header[rest[0]]: col}


# ----------------------------------------------------------------------------- the report


def compare(tsv: Path, files: Sequence[Path], out: Path, *, labels: str | None = None, folds: int = 5,
            seed: int = 0) -> dict[str, Any]:
    """Join ``files`` to ``tsv``'s scored alleles; write out/compare.tsv, compare.json, report.html and PNGs.
    Returns what compare.json holds."""
    out.mkdir(parents=True, exist_ok=True)
    table = read_nt(tsv)
    external: dict[str, np.ndarray] = {}
    for path in files:
        for name, values in read_external(Path(path), table).items():
            external[name] = values
    y = read_labels(labels, table, external) if labels else None
    numeric = {n: v for n, v in external.items() if v.dtype != object and (y is None or labels not in n)}
    nt = {n: table.columns[n] for n in table.nt if np.isfinite(table.columns[n]).any()}
    scores = {**nt, **numeric}
    names = list(scores)
    matrix = np.column_stack([scores[n] for n in names])
    rho = spearman(matrix)
    result: dict[str, Any] = {
        "alleles": len(table.keys),
        "external": {n: int(np.isfinite(v).sum()) for n, v in numeric.items()},
        "spearman": {a: {b: _json(rho[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)},
    }
    pictures = {"spearman.png": _heatmap(names, rho)}
    metrics: dict[str, dict[str, Any]] = {}
    if y is not None:
        labelled = np.isfinite(y)
        for name in names:
            metrics[name] = _metrics(ORIENTED.get(name, 1.0) * scores[name], y)
        features = [n for n in NT_FEATURES if n in nt]
        x_nt = np.column_stack([scores[n] for n in features])
        combos = {"NT (logistic regression)": x_nt}
        combos.update({f"NT + {n}": np.c_[x_nt, numeric[n]] for n in numeric})
        for label, x in combos.items():
            ok = labelled & (np.isfinite(x).any(axis=1) if label.startswith("NT (") else np.isfinite(x[:, -1]))
            metrics[label] = {"n": int(ok.sum()), "positives": int(y[ok].sum()), "auroc": math.nan, "auprc": math.nan}
            if ok.sum() >= 4 and 2 <= y[ok].sum() <= ok.sum() - 2:
                p = cross_validated(x[ok], y[ok], folds=folds, seed=seed)
                metrics[label].update(auroc=auroc(p, y[ok]), auprc=auprc(p, y[ok]), cross_validated=True)
        result["labels"] = {"positives": int(np.nansum(y)), "negatives": int((y == 0).sum()),
                            "unlabelled": int((~labelled).sum())}
        result["metrics"] = {n: {k: _json(v) for k, v in m.items()} for n, m in metrics.items()}
        shown = [n for n in names if n in NT_FEATURES or n in numeric]  # the norms and dots stay in the table
        pictures["roc.png"] = _curves(scores, y, shown, "roc")
        pictures["pr.png"] = _curves(scores, y, shown, "pr")
    _write_joined(out / "compare.tsv", table, scores, y)
    for name, data in pictures.items():
        (out / name).write_bytes(data)
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.html").write_text(_html(tsv, files, result, metrics, names, rho, list(pictures)))
    return result


def _metrics(scores: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(scores) & np.isfinite(y)
    return {"n": int(ok.sum()), "positives": int(y[ok].sum()), "auroc": auroc(scores[ok], y[ok]),
            "auprc": auprc(scores[ok], y[ok])}


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _write_joined(path: Path, table: Table, scores: Mapping[str, np.ndarray], y: np.ndarray | None) -> None:
    with open(path, "w") as f:
        f.write("\t".join(["chrom", "pos", "ref", "alt", *scores, *(["label"] if y is not None else [])]) + "\n")
        for i, key in enumerate(table.keys):
            values = [f"{scores[n][i]:.6g}" if np.isfinite(scores[n][i]) else "NA" for n in scores]
            if y is not None:
                values.append("NA" if not np.isfinite(y[i]) else str(int(y[i])))
            f.write("\t".join([key[0], str(key[1]), key[2], key[3], *values]) + "\n")


def _heatmap(names: list[str], rho: np.ndarray) -> bytes:
    from .summaries import heatmap_png

    return heatmap_png(names, names, rho, "Spearman correlation", cmap="RdBu_r", center=0.0, colorbar="rho")


def pr_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at each distinct threshold, highest first."""
    pos = labels.astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], pos[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last]
    n = np.arange(1, len(s) + 1)[last]
    return tp / max(pos.sum(), 1), tp / n


def _curves(scores: Mapping[str, np.ndarray], y: np.ndarray, names: list[str], kind: str) -> bytes:
    """ROC (``kind`` roc) or precision-recall (pr) curves of the oriented scores, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name in names:
        s = ORIENTED.get(name, 1.0) * scores[name]
        ok = np.isfinite(s) & np.isfinite(y)
        if ok.any() and 0 < y[ok].sum() < ok.sum():
            if kind == "roc":
                x, v = roc_curve(s[ok], y[ok])
                ax.plot(x, v, label=f"{name} ({auroc(s[ok], y[ok]):.3f})", linewidth=1)
            else:
                x, v = pr_curve(s[ok], y[ok])
                ax.step(x, v, where="post", label=f"{name} ({auprc(s[ok], y[ok]):.3f})", linewidth=1)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC of each score (AUROC)", fontsize=9)
    else:
        ax.axhline(float(np.nanmean(y)), color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall of each score (AUPRC)", fontsize=9)
    ax.legend(fontsize=6, loc="lower right" if kind == "roc" else "upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _html(tsv: Path, files: Sequence[Path], result: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]],
          names: list[str], rho: np.ndarray, pictures: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>nttracks variant comparison</title></head><body>",
        "<h1>NT variant scores compared</h1>",
        f"<p>{result['alleles']} scored alleles of <code>{html.escape(str(tsv))}</code>, joined with "
        + ", ".join(f"<code>{html.escape(str(f))}</code>" for f in files) + ".</p>",
        "<p>Scores where lower means more likely functional are negated for AUROC/AUPRC: "
        + ", ".join(sorted(ORIENTED)) + ". Combined rows: logistic regression on NT's scores ("
        + ", ".join(NT_FEATURES) + ") with the external score, out-of-fold over stratified folds.</p>",
    ]
    if metrics:
        rows = list(metrics)
        values = np.array([[metrics[r]["n"], metrics[r]["positives"], metrics[r]["auroc"], metrics[r]["auprc"]]
                           for r in rows], dtype=np.float64)
        parts.append(_table("AUROC and AUPRC", "score", rows, ["n", "positives", "AUROC", "AUPRC"], values))
    parts.append(_table("Spearman correlation", "score", names, names, rho))
    parts += [f'<p><img src="{p}" alt="{p[:-4]}"></p>' for p in pictures]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _table(caption: str, corner: str, rows: Sequence[str], columns: Sequence[str], values: np.ndarray) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [corner, *columns])
    body = "".join(
        f"<tr><td>{html.escape(r)}</td>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>\n"
        for r, row in zip(rows, values, strict=True))
    return f"<table>\n<caption>{html.escape(caption)}</caption>\n<tr>{head}</tr>\n{body}</table>\n"


def _cell(v: float) -> str:
    if not math.isfinite(v):
        return "&ndash;"
    return f"{int(v):,}" if float(v).is_integer() and abs(v) >= 1 else f"{v:.3f}"


def check_compare_files(files: Sequence[os.PathLike[str] | str]) -> None:
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise VariantsError(f"--compare: no such file(s): {', '.join(missing)}")
