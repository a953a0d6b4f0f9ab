"""--compare: the metric kernels on answers known by hand, and the join of TSV, tabix-indexed and bigWig scores
(across chromosome naming) into the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nttracks.compare import auprc, auroc, compare, cross_validated, rankdata, spearman
from nttracks.errors import VariantsError
from nttracks.variants import SCORE_NAMES, SCORES
from nttracks.vcf import TsvWriter


def test_rankdata_auroc_auprc_by_hand() -> None:
    assert rankdata(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of the 4 pairs ordered right
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auroc(np.array([1.0, 1.0]), np.array([1, 0])) == 0.5  # a tie counts half
    assert math.isnan(auroc(np.array([1.0, 2.0]), np.array([1, 1])))
    # ranked 1 0 1 0: precision 1 at recall 1/2, 2/3 at recall 1
    assert auprc(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # tied scores are one threshold: all four at once, precision 1/2
    assert auprc(np.ones(4), np.array([1, 0, 1, 0])) == pytest.approx(0.5)


def test_spearman_and_cross_validated_logistic_regression() -> None:
    x = np.arange(20.0)
    rho = spearman(np.c_[x, x**3, -x, np.r_[np.nan, x[1:]]])
    assert rho[0, 1] == pytest.approx(1) and rho[0, 2] == pytest.approx(-1) and rho[0, 3] == pytest.approx(1)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    informative = y + rng.normal(0, 0.3, 200)
    noise = rng.normal(0, 1, 200)
    p = cross_validated(np.c_[informative, noise], y, folds=5, seed=1)
    assert auroc(p, y) > 0.95
    assert np.array_equal(p, cross_validated(np.c_[informative, noise], y, folds=5, seed=1))  # seeded
    p_noise = cross_validated(noise[:, None], y, folds=5, seed=1)
    assert 0.3 < auroc(p_noise, y) < 0.7


@pytest.fixture
def scored(tmp_path: Path):
    """A variants.tsv of 80 scored SNVs on '1' (Ensembl) whose LLR is low for positives, and labels."""
    from nttracks.vcf import Allele

    rng = np.random.default_rng(4)
    tsv = tmp_path / "variants.tsv"
    writer = TsvWriter(tsv, SCORES)
    labels = rng.integers(0, 2, 80)
    labels[:2] = (0, 1)
    rows = []
    for i, lab in enumerate(labels):
        scores = {name: float(rng.normal()) for name in SCORE_NAMES}
        scores["llr"] = float(-2 * lab + rng.normal(0, 0.5))
        a = Allele(i + 1, 1, "1", 100 + 10 * i, ".", "A", "G", ".", ".")
        writer.write(a, "scored", "", "", scores)
        rows.append((100 + 10 * i, scores))
    writer.write(Allele(81, 1, "1", 5000, ".", "A", "<DEL>", ".", "."), "skipped", "symbolic_alt", "no sequence", {})
    writer.close()
    return tsv, labels, rows


def test_compare_joins_tsv_tabix_and_bigwig_scores_and_reports(scored, tmp_path: Path) -> None:
    import pyBigWig
    import pysam

    tsv, labels, rows = scored
    rng = np.random.default_rng(5)
    cadd = labels + rng.normal(0, 0.8, len(labels))
    ext = tmp_path / "cadd.tsv"
    lines = ["#Chrom\tPos\tRef\tAlt\tRawScore\tlabel"]
    lines += [f"chr1\t{pos}\tA\tG\t{c:.4f}\t{'pathogenic' if lab else 'benign'}"
              for (pos, _), c, lab in zip(rows, cadd, labels, strict=True)]
    lines.append("chr1\t99999\tA\tG\t3.0\tbenign")  # not among the variants: ignored
    ext.write_text("\n".join(lines) + "\n")
    indexed = tmp_path / "deepsea.tsv"
    indexed.write_text("#chrom\tpos\tref\talt\tdeepsea\n" + "".join(
        f"chr1\t{pos}\tA\tG\t{i / 100}\n" for i, (pos, _) in enumerate(rows) if i % 2 == 0))
    pysam.tabix_index(str(indexed), seq_col=0, start_col=1, end_col=1, zerobased=False, force=True, meta_char="#")
    bw_path = tmp_path / "gerp.bw"
    bw = pyBigWig.open(str(bw_path), "w")
    bw.addHeader([("chrM", 100), ("1", 10_000)])
    bw.addEntries("1", [pos - 1 for pos, _ in rows], values=[float(pos) for pos, _ in rows], span=1)
    bw.close()

    out = tmp_path / "compare"
    result = compare(tsv, [ext, Path(f"{indexed}.gz"), bw_path], out, labels="label")
    assert result["alleles"] == 80  # the skipped allele is not compared
    assert result["external"] == {"cadd:RawScore": 80, "deepsea:deepsea": 40, "gerp": 80}
    assert result["labels"] == {"positives": int(labels.sum()), "negatives": int((1 - labels).sum()), "unlabelled": 0}
    m = result["metrics"]
    assert m["cadd:RawScore"]["auroc"] == pytest.approx(auroc(np.round(cadd, 4), labels))
    assert m["llr"]["auroc"] == pytest.approx(auroc(-np.array([s["llr"] for _, s in rows]), labels))  # negated
    assert m["llr"]["auroc"] > 0.9
    assert m["NT + cadd:RawScore"]["n"] == 80 and m["NT + cadd:RawScore"]["cross_validated"]
    assert m["NT + deepsea:deepsea"]["n"] == 40
    assert result["spearman"]["gerp"]["gerp"] == pytest.approx(1.0)
    joined = (out / "compare.tsv").read_text().splitlines()
    assert len(joined) == 81 and joined[0].split("\t")[-1] == "label"
    first = dict(zip(joined[0].split("\t"), joined[1].split("\t"), strict=True))
    assert float(first["gerp"]) == rows[0][0] and first["deepsea:deepsea"] == "0"
    assert second_na(joined)
    for png in ("roc.png", "pr.png", "spearman.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.html").read_text()
    assert "AUROC" in report and 'src="roc.png"' in report and "NT + cadd:RawScore" in report
    assert json.loads((out / "compare.json").read_text())["metrics"]["llr"]["n"] == 80


def second_na(joined: list[str]) -> bool:
    header = joined[0].split("\t")
    return dict(zip(header, joined[2].split("\t"), strict=True))["deepsea:deepsea"] == "NA"


def test_bad_labels_are_refused(scored, tmp_path: Path) -> None:
    tsv, _, rows = scored
    ext = tmp_path / "x.tsv"
    ext.write_text("chrom\tpos\tref\talt\tmark\n" + "".join(f"1\t{p}\tA\tG\tmaybe\n" for p, _ in rows))
    with pytest.raises(VariantsError, match="not labels"):
        compare(tsv, [ext], tmp_path / "c", labels="mark")
    with pytest.raises(VariantsError, match="neither a file nor a column"):
        compare(tsv, [ext], tmp_path / "c", labels="nosuch")
    ext.write_text("chromosome\tposition\n1\t2\n")
    with pytest.raises(VariantsError, match="no ref column"):
        compare(tsv, [ext], tmp_path / "c")


def test_labels_from_a_file(scored, tmp_path: Path) -> None:
    tsv, labels, rows = scored
    ext = tmp_path / "gerp.tsv"
    ext.write_text("chrom\tpos\tref\talt\tgerp\n" + "".join(f"chr1\t{p}\tA\tG\t{i}\n" for i, (p, _) in enumerate(rows)))
    lab = tmp_path / "truth.tsv"
    lab.write_text("chrom\tpos\tref\talt\tclass\n" + "".join(
        f"1\t{p}\tA\tG\t{'positive' if y else 'negative'}\n" for (p, _), y in zip(rows[:60], labels, strict=False)))
    result = compare(tsv, [ext], tmp_path / "c", labels=str(lab))
    assert result["labels"] == {"positives": int(labels[:60].sum()), "negatives": int(60 - labels[:60].sum()),
                                "unlabelled": 20}
    gerp = np.arange(80.0)[:60]
    assert result["metrics"]["gerp:gerp"]["auroc"] == pytest.approx(auroc(gerp, labels[:60]))
    assert result["metrics"]["gerp:gerp"]["n"] == 60
