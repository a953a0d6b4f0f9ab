"""The `variants` and `ism` commands on the demo genome: outputs, --compare, --help, and bad input -> a clear
message and a non-zero exit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_cli import run_cli

from nttracks.registry import open_genome


@pytest.fixture(scope="module")
def demo_vcf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A VCF on the demo genome with Ensembl names (1, 2), and a labelled score file for --compare."""
    d = tmp_path_factory.mktemp("vcf")
    with open_genome("demo") as genome:
        codes = genome.codes("chr1")
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    scores = ["chrom\tpos\tref\talt\tcadd\tlabel"]
    for i, p in enumerate(range(3000, 3480, 16)):
        ref, alt = "ACGT"[codes[p]], "ACGT"[(codes[p] + 1) % 4]
        lines.append(f"1\t{p + 1}\tv{i}\t{ref}\t{alt}\t.\tPASS\t.")
        scores.append(f"chr1\t{p + 1}\t{ref}\t{alt}\t{i % 7}\t{i % 2}")
    lines.append("1\t3600\t.\tA\t<DEL>\t.\tPASS\t.")
    vcf = d / "demo.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    table = d / "cadd.tsv"
    table.write_text("\n".join(scores) + "\n")
    return vcf, table


def test_variants_command_writes_tsv_vcf_and_report(demo_vcf, tmp_path: Path, capsys) -> None:
    vcf, table = demo_vcf
    out = tmp_path / "scores"
    code, stdout, err = run_cli(["variants", str(vcf), "--genome", "demo", "--out", str(out), "--device", "cpu",
                                 "--window", "240", "--compare", str(table), "--labels", "label"], capsys)
    assert code == 0, err
    assert "31 alleles: scored 30, symbolic_alt 1" in stdout
    with open(out / "variants.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 31 and rows[-1]["reason"] == "symbolic_alt"
    assert (out / "variants.vcf.gz.tbi").is_file() and (out / "variants.json").is_file()
    assert (out / "compare" / "report.html").is_file() and (out / "compare" / "roc.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--genome", "demo"], "not found"),  # the VCF is replaced by a missing path below
        (["--genome", "demo", "--fasta", "x.fa"], "either --genome NAME"),
        (["--genome", "demo", "--window", "100"], "multiple of 6"),
        (["--genome", "demo", "--labels", "label"], "--labels needs --compare"),
        (["--genome", "demo", "--compare", "nosuch.tsv"], "no such file"),
        (["--genome", "nosuch"], "unknown genome"),
    ],
)
def test_variants_bad_input(demo_vcf, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    vcf, _ = demo_vcf
    target = str(tmp_path / "missing.vcf") if message == "not found" else str(vcf)
    code, _, err = run_cli(["variants", target, "--out", str(tmp_path / "o"), "--device", "cpu", *args], capsys)
    assert code != 0 and message in err and "Traceback" not in err


def test_ism_command_and_help(tmp_path: Path, capsys) -> None:
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t3000\t3030\n")
    out = tmp_path / "ism"
    code, stdout, err = run_cli(["ism", "--genome", "demo", "--regions", str(bed), "--out", str(out),
                                 "--window", "240", "--scores", "llr", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "5 tracks over 30 bases" in stdout and (out / "hub.txt").is_file()
    code, _, err = run_cli(["ism", "--genome", "demo", "--regions", str(bed), "--out", str(tmp_path / "x"),
                            "--scores", "cosine_mean"], capsys)
    assert code == 2 and "choose from" in err
    code, stdout, _ = run_cli(["variants", "--help"], capsys)
    assert code == 0 and "--compare" in stdout and "--reverse-complement" in stdout and "skipped" in stdout
