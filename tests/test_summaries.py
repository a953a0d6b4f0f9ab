"""Element summaries: annotation BEDs read and merged, per-class sums read back from a bigWig whose values
are known by hand, and the summaries of the masked-LM families on their pages and in the manifest."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from test_cli import run_cli

from nttracks import summaries
from nttracks.config import parse_config, with_annotation
from nttracks.errors import ConfigError, UsageError
from nttracks.hubs import validate_hub
from nttracks.models.loading import save_random_nt
from nttracks.planning import RunRequest
from nttracks.runs import run_genome


def test_annotation_classes_are_merged_per_chromosome(tmp_path: Path) -> None:
    text = ("track name=x\n# comment\nbrowser position chr1\n"
            "chr1\t20\t30\texon\t0\t+\nchr1\t0\t10\texon\nchr1\t5\t12\texon\nchr1\t30\t31\texon\n"
            "chr2\t7\t9\tintron\t0\t-\textra\nchr1\t4\t4\tgap\n")
    (tmp_path / "a.bed").write_text(text)
    with gzip.open(tmp_path / "a.bed.gz", "wt") as f:
        f.write(text)
    for name in ("a.bed", "a.bed.gz"):
        annotation = summaries.read_annotation(tmp_path / name)
        assert list(annotation.classes) == ["exon", "intron"]  # sorted; the empty interval covers no base
        assert annotation.classes["exon"]["chr1"].tolist() == [[0, 12], [20, 31]]
        assert annotation.classes["intron"]["chr2"].tolist() == [[7, 9]]


@pytest.mark.parametrize(("text", "message"), [
    ("chr1\t1\t5\n", r"a\.bed:1: expected chrom, start, end and a class name"),
    ("chr1\t1\t5\tx\nchr1\t1\tfive\tx\n", r"a\.bed:2: start '1' and end 'five' must be whole numbers"),
    ("chr1\t5\t1\tx\n", r"a\.bed:1: chr1:5-1 'x' is not an interval"),
    ("# nothing\n", r"holds no interval"),
])
def test_a_bad_annotation_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "a.bed").write_text(text)
    with pytest.raises(ConfigError, match=message):
        summaries.read_annotation(tmp_path / "a.bed")
    with pytest.raises(ConfigError, match="is not a file"):
        summaries.read_annotation(tmp_path / "missing.bed")


@pytest.fixture
def track(tmp_path: Path) -> Path:
    """chr1 (100 bp): 1.0 on [10, 60), 3.0 on [60, 80), unscored elsewhere; chr2 (50 bp): 2.0 on [0, 10)."""
    path = tmp_path / "t.bw"
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([("chr1", 100), ("chr2", 50)])
    bw.addEntries("chr1", 10, values=[1.0] * 50 + [3.0] * 20, span=1, step=1)
    bw.addEntries("chr2", 0, values=[2.0] * 10, span=1, step=1)
    bw.close()
    return path


@pytest.mark.parametrize("chunk", [summaries.CHUNK, 7])
def test_class_sums_and_enrichment_by_hand(tmp_path: Path, track: Path, chunk: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summaries, "CHUNK", chunk)  # reading in pieces changes nothing
    (tmp_path / "a.bed").write_text("chr1\t0\t20\ta\nchr1\t15\t30\ta\nchr1\t55\t70\tb\nchrX\t0\t5\tc\n"
                                    "chr2\t0\t50\tb\n")
    sums = summaries.class_sums(track, summaries.read_annotation(tmp_path / "a.bed"))
    assert (sums.total_sum, sums.total_bases) == (130.0, 80)  # 50 + 60 + 20 over 50 + 20 + 10 bases
    # a: [0, 30) holds 20 scored bases of 1.0; b: [55, 70) 5 x 1.0 + 10 x 3.0, and chr2 10 x 2.0; c: none
    assert sums.sums == {"a": 20.0, "b": 55.0, "c": 0.0} and sums.bases == {"a": 20, "b": 25, "c": 0}
    assert sums.mean("a") == 1.0 and sums.mean("b") == 55 / 25 and math.isnan(sums.mean("c"))
    assert sums.enrichment("a") == pytest.approx((20 / 130) / (20 / 80))
    assert sums.enrichment("b") == pytest.approx((55 / 130) / (25 / 80))


def test_table_and_heatmap() -> None:
    values = np.array([[1.0, 2.5], [np.nan, 0.25]])
    text = summaries.table_html("Means", ["exon", "<b>"], ["x", "y"], values, [10, 2000])
    assert "<td>exon</td><td>10</td><td>1</td><td>2.5</td>" in text and "&lt;b&gt;" in text
    assert "<td>2,000</td><td>&ndash;</td>" in text
    png = summaries.heatmap_png(["exon", "intron"], ["x", "y"], values, "t", center=1.0)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_with_annotation_sets_it_for_the_families_that_summarize(tmp_path: Path) -> None:
    bed = tmp_path / "e.bed"
    bed.write_text("chr3\t0\t900\tleft\n")
    config = parse_config({"families": {"toy": {}, "sensitivity": {"checkpoint": "demo"},
                                        "attention": {"checkpoint": "demo", "heads": ["L0H0"]}}})
    updated = with_annotation(config, bed)
    assert updated.families["sensitivity"].annotation == updated.families["attention"].annotation == str(bed)
    assert updated.families["toy"] == config.families["toy"]
    with pytest.raises(UsageError, match=r"--annotation .*none of the configured families \(toy\) summarizes"):
        with_annotation(parse_config({"families": {"toy": {}}}), bed)
    with pytest.raises(UsageError, match="no such file"):
        with_annotation(config, tmp_path / "missing.bed")


def test_summaries_on_the_pages_and_in_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = save_random_nt(tmp_path / "nt", version="v2", hidden=32, layers=2, heads=4, seed=5)
    bed = tmp_path / "elements.bed"
    bed.write_text("chr3\t0\t900\tleft\nchr3\t600\t1200\tmiddle\nchr3\t1500\t1800\tright\nchr1\t0\t100\tgap\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"families:\n  sensitivity:\n    checkpoint: {checkpoint}\n    window: 240\n"
        "    channels: [constraint, entropy]\n"
        f"  attention:\n    checkpoint: {checkpoint}\n    window: 240\n    heads: [L1H0, L0H2]\n"
    )
    out = tmp_path / "hub"
    code, _, err = run_cli(["genome", "demo", "--config", str(config), "--out", str(out), "--chroms", "chr3",
                            "--annotation", str(bed)], capsys)
    assert code == 0, err
    assert validate_hub(out) == []
    manifest = json.loads((out / "manifest.json").read_text())

    def read(channel: str, family: dict) -> np.ndarray:
        bw = pyBigWig.open(str(out / family["tracks"][channel]))
        try:
            return np.array(bw.values("chr3", 0, 1800))
        finally:
            bw.close()

    sens, attn = manifest["families"]["sensitivity"], manifest["families"]["attention"]
    assert sens["settings"]["annotation"] == str(bed) and "demo/sensitivity_summary.png" in manifest["files"]
    # only the summarized channels written (constraint): per class its mean over the class's scored bases
    classes = sens["summary"]["classes"]
    assert list(classes) == ["all scored bases", "left", "middle", "right"] and set(classes["left"]) == {
        "bases", "constraint"}
    assert classes["left"]["bases"] == 900 and classes["all scored bases"]["bases"] == 1800
    values = read("constraint", sens)
    assert classes["left"]["constraint"] == pytest.approx(values[:900].mean(), rel=1e-9)
    assert classes["middle"]["constraint"] == pytest.approx(values[600:1200].mean(), rel=1e-9)
    enrichment = attn["summary"]["classes"]["right"]["enrichment"]
    mass = read("L0H2", attn)
    assert enrichment["L0H2"] == pytest.approx((mass[1500:].sum() / mass.sum()) / (300 / 1800), rel=1e-9)
    assert attn["summary"]["classes"]["right"]["share_of_bases"] == pytest.approx(300 / 1800)
    page = (out / "demo" / "sensitivity_constraint.html").read_text()
    assert "<h2>Element summaries</h2>" in page and '<img src="sensitivity_summary.png"' in page
    assert "No scored base in: gap." in page
    assert (out / "demo" / "sensitivity_summary.png").read_bytes().startswith(b"\x89PNG")
    family_page = (out / "demo" / "attention.html").read_text()
    assert "Attention enrichment per element class" in family_page and "attention_summary.png" in family_page
    assert "Element summaries" not in (out / "hub.html").read_text()


def test_the_demo_summarizes_over_its_planted_annotation(tmp_path: Path) -> None:
    config = parse_config({"families": {"sensitivity": {"checkpoint": "demo", "window": 240,
                                                         "channels": ["recon_accuracy"], "annotation": "demo"}}})
    result = run_genome(RunRequest(genome="demo", config=config, out=tmp_path / "hub", chroms=("chr3",)))
    summary = result.manifest["families"]["sensitivity"]["summary"]
    assert summary["annotation"].endswith("demo.bed")
    assert {"CTCF-bound", "repeat"} <= set(summary["classes"])  # chr3's planted elements
    assert "untrained NT-v2 demo masked LM" in result.manifest["families"]["sensitivity"]["model"]
