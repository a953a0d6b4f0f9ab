"""nttracks evaluate: metrics known by hand on a hand-made hub, and GTF -> classes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from typer.testing import CliRunner

from nttracks.cli import app
from nttracks.errors import UsageError
from nttracks.evaluate import evaluate, read_truth
from nttracks.metrics import score

# chrA: exon truth at [0, 3); scores 0.9 0.8 0.7 | 0.625 then 0.125 x 6; bases 10..11 unscored (absent)
# chrB: exon truth at [0, 2); scores 0.25 0.375 | 0.625 0.75 (every positive below every negative)
CHR_A = [0.875, 0.75, 0.625, 0.5, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125]
CHR_B = [0.25, 0.375, 0.625, 0.75]


def write_bw(path: Path, chroms: dict[str, list[float]], sizes: dict[str, int]) -> None:
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, values in chroms.items():
        bw.addEntries(chrom, 0, values=[float(v) for v in values], span=1, step=1)
    bw.close()


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    hub = tmp_path / "hub"
    (hub / "g" / "bw").mkdir(parents=True)
    sizes = {"chrA": 12, "chrB": 4}
    write_bw(hub / "g" / "bw" / "elements_exon.bw", {"chrA": CHR_A, "chrB": CHR_B}, sizes)
    write_bw(hub / "g" / "bw" / "elements_intron.bw", {"chrA": CHR_A, "chrB": CHR_B}, sizes)
    manifest = {"nttracks_version": "test", "families": {"elements": {"tracks": {
        "exon": "g/bw/elements_exon.bw", "intron": "g/bw/elements_intron.bw"}}},
        "files": ["g/bw/elements_exon.bw", "g/bw/elements_intron.bw", "g/elements.html", "manifest.json"]}
    (hub / "manifest.json").write_text(json.dumps(manifest))
    (hub / "g" / "elements.html").write_text("<h1>elements</h1>\n")
    return hub


def test_metrics_known_by_hand() -> None:
    s = score(np.array(CHR_A), np.arange(10) < 3)
    assert s.positives == 3 and s.negatives == 7
    assert s.auroc == 1.0 and s.auprc == 1.0 and s.mcc_best == pytest.approx(1.0)
    assert 0.5 < s.best_threshold <= 0.625
    # at 0.5: 4 called (3 true, 1 false), 6 not called (all false)
    assert s.mcc_05 == pytest.approx((3 * 6 - 1 * 0) / math.sqrt(4 * 3 * 7 * 6))
    s = score(np.array(CHR_B), np.arange(4) < 2)
    assert s.auroc == 0.0
    # a tie between a positive and a negative counts a half
    assert score(np.array([0.5, 0.5, 0.25]), np.array([True, False, False])).auroc == pytest.approx(0.75)


def test_evaluate_per_chromosome_and_overall(hub: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.bed"
    truth.write_text("chrA\t0\t3\texon\t0\t+\nchrB\t0\t2\texon\t0\t+\nchrA\t5\t6\trepeat\t0\t.\n")
    result = evaluate(hub, truth)
    assert result.skipped == ["intron"]  # the truth has no introns: that track is not scored
    rows = {(r.cls, r.chrom): r.scores for r in result.rows}
    assert set(rows) == {("exon", "chrA"), ("exon", "chrB"), ("exon", "all")}
    assert rows["exon", "chrA"].auroc == 1.0 and rows["exon", "chrB"].auroc == 0.0
    overall = rows["exon", "all"]
    assert (overall.positives, overall.negatives) == (5, 9)  # chrA's unscored bases 10, 11 not counted
    # pooled AUROC: the share of the 5 x 9 (positive, negative) pairs the positive wins, ties a half
    pos = np.array([0.875, 0.75, 0.625, 0.25, 0.375])
    neg = np.array([0.5, *[0.125] * 6, 0.625, 0.75])
    pairs = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    assert overall.auroc == pytest.approx(pairs / 45)
    lines = result.tsv.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["track", "class", "chrom"]
    assert [line.split("\t")[2] for line in lines[1:]] == ["chrA", "chrB", "all"]
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (hub / "g" / "elements.html").read_text()
    assert "elements_evaluation.png" in page and "Evaluation against truth.bed" in page
    evaluate(hub, truth)  # again: the page section is replaced, not repeated
    assert (hub / "g" / "elements.html").read_text().count("<h2>Evaluation against") == 1
    files = json.loads((hub / "manifest.json").read_text())["files"]
    assert "g/elements_evaluation.tsv" in files and "g/elements_evaluation.png" in files


GTF = """\
chrA\tt\tgene\t101\t400\t.\t+\t.\tgene_id "g1"; gene_type "protein_coding";
chrA\tt\texon\t101\t150\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrA\tt\texon\t201\t300\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrA\tt\texon\t351\t400\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrA\tt\tCDS\t121\t150\t.\t+\t0\tgene_id "g1"; transcript_id "t1";
chrA\tt\tCDS\t201\t260\t.\t+\t0\tgene_id "g1"; transcript_id "t1";
chrA\tt\tUTR\t101\t120\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrA\tt\tUTR\t261\t300\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrA\tt\tUTR\t351\t400\t.\t+\t.\tgene_id "g1"; transcript_id "t1";
chrB\tt\tgene\t1001\t1300\t.\t-\t.\tgene_id "g2"; gene_type "lncRNA";
chrB\tt\texon\t1001\t1100\t.\t-\t.\tgene_id "g2"; transcript_id "t2";
chrB\tt\texon\t1201\t1300\t.\t-\t.\tgene_id "g2"; transcript_id "t2";
chrB\tt\tgene\t2001\t2100\t.\t+\t.\tgene_id "g3"; gene_type "miRNA";
"""


def test_gtf_to_segment_nt_classes(tmp_path: Path) -> None:
    path = tmp_path / "genes.gtf"
    path.write_text(GTF)
    truth = read_truth(path)
    # GTF is 1-based closed; the classes are 0-based half-open
    assert truth["protein_coding_gene"] == {"chrA": [(100, 400)]}
    assert truth["lncRNA"] == {"chrB": [(1000, 1300)]}  # the miRNA gene is neither class
    assert truth["exon"]["chrA"] == [(100, 150), (200, 300), (350, 400)]
    assert truth["intron"] == {"chrA": [(150, 200), (300, 350)], "chrB": [(1100, 1200)]}
    # + strand: donor at the intron's 5' end; - strand: at its 3' end in genome coordinates
    assert truth["splice_donor"] == {"chrA": [(150, 156), (300, 306)], "chrB": [(1194, 1200)]}
    assert truth["splice_acceptor"] == {"chrA": [(194, 200), (344, 350)], "chrB": [(1100, 1106)]}
    assert truth["5UTR"] == {"chrA": [(100, 120)]}
    assert truth["3UTR"] == {"chrA": [(260, 300), (350, 400)]}


def test_cli_and_errors(hub: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.bed"
    truth.write_text("chrA\t0\t3\texon\nchrA\t3\t5\tintron\n")
    result = CliRunner().invoke(app, ["evaluate", str(hub), "--truth", str(truth), "--chroms", "chrA"])
    assert result.exit_code == 0, result.output
    assert "exon\t1.000\t1.000" in result.output
    tsv = (hub / "g" / "elements_evaluation.tsv").read_text()
    assert "chrB" not in tsv
    with pytest.raises(UsageError, match="no 'attention' family"):
        evaluate(hub, truth, family="attention")
    other = tmp_path / "other.bed"
    other.write_text("chrA\t0\t3\tgene\n")
    with pytest.raises(UsageError, match="holds none of the classes"):
        evaluate(hub, other)
    with pytest.raises(UsageError, match="does not exist"):
        evaluate(hub, tmp_path / "missing.bed")
