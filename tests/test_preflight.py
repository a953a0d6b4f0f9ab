"""Everything checked before compute: each mistake fails the dry run where the run would, with its
message, and leaves --out and the cache as they were; a dry run writes nothing anywhere."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from conftest import snapshot
from test_cli import live_hub, run_cli, write  # noqa: F401 (live_hub is a fixture)
from test_genome import write_fasta
from test_registry import SMALL, _publish, server, small_tables  # noqa: F401 (fixtures)

from nttracks.config import parse_config
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome

TOY = "families:\n  toy:\n    window: 1200\n"

# name -> (arguments after "genome", files to write first {name: text}, exit code, message)
MISTAKES = {
    "hub name with a space": (
        ["demo", "--config", "{c}"], {"c": "hub:\n  name: my hub\n" + TOY}, 2, "hub.name: 'my hub' must be one word"
    ),
    "hub short label too long": (
        ["demo", "--config", "{c}"],
        {"c": "hub:\n  short_label: A label much too long for UCSC\n" + TOY},
        2,
        "hub.short_label: 'A label much too long for UCSC' has 30 characters; browsers show at most 19",
    ),
    "duplicate YAML key": (
        ["demo", "--config", "{c}"], {"c": TOY + "    window: 600\n"}, 2, "line 4: key 'window' appears twice"
    ),
    "checkpoint under toy": (
        ["demo", "--config", "{c}"], {"c": TOY + "    checkpoint: x\n"}, 2, "families.toy.checkpoint: unknown key"
    ),
    "missing checkpoint directory": (
        ["demo", "--config", "{c}"],
        {"c": "families:\n  elements:\n    checkpoint: /nonexistent/segment_nt\n    window: 1200\n"},
        4,
        "'/nonexistent/segment_nt' is neither a directory nor a HuggingFace model id",
    ),
    "checkpoint without weights": (
        ["demo", "--config", "{c}"],
        {"c": "families:\n  elements:\n    checkpoint: {ckpt}\n    window: 1200\n", "ckpt/config.json": "{}"},
        4,
        "has no weights (*.safetensors or *.bin)",
    ),
    "empty chromosome name": (["demo", "--chroms", "chr1,"], {}, 2, "--chroms 'chr1,' has an empty chromosome name"),
    "only a comma": (["demo", "--chroms", ","], {}, 2, "has an empty chromosome name"),
    "chromosome twice": (["demo", "--chroms", "chr1,chr1"], {}, 2, "names chr1 twice"),
    "RNA letters": (["--fasta", "{rna}"], {"rna": ">r\nACGUACGU\n"}, 3, "'U' at position 4 (line 2), which is no DNA"),
    "protein letters": (  # M and K are IUPAC codes: L is the first letter that is no DNA
        ["--fasta", "{prot}"], {"prot": ">p\nACGT\nMKLEVA\n"}, 3, "letter 'L' at position 7 (line 3)"
    ),
}


def _args(tmp_path: Path, args: list[str], files: dict[str, str]) -> list[str]:
    """Write ``files`` under tmp_path ("c" -> c.yaml, "rna" -> rna.fa, "dir/file" -> dir/file) and fill
    "{name}" in the arguments and texts with their paths."""
    paths = {}
    for name in files:
        top = name.split("/")[0]
        paths[top] = tmp_path / ("c.yaml" if top == "c" else f"{top}.fa" if top in ("rna", "prot") else top)

    def fill(text: str) -> str:
        for key, path in paths.items():
            text = text.replace("{" + key + "}", str(path))
        return text

    for name, text in files.items():
        path = paths[name] if "/" not in name else paths[name.split("/")[0]] / name.split("/")[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill(text))
    return [fill(a) for a in args]


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_a_mistake_fails_the_dry_run_and_the_run_alike_before_any_compute(
    case: str, live_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    args, files, exit_code, message = MISTAKES[case]
    argv = _args(tmp_path, args, files)
    cache = Path(os.environ["NTTRACKS_CACHE"])
    open_genome("demo").close()  # the demo genome is generated into the cache once, before the snapshot
    before_out, before_cache = snapshot(live_hub), snapshot(cache)
    for extra in (["--dry-run"], ["--out", str(live_hub)], ["--out", str(tmp_path / "new")]):
        code, _, err = run_cli(["genome", *argv, *extra], capsys)
        assert code == exit_code, err
        assert err.startswith("nttracks: error: ") and message in err, err
        assert "Traceback" not in err
    assert snapshot(live_hub) == before_out
    assert snapshot(cache) == before_cache
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if "nttracks-" in p.name]


def test_a_dry_run_writes_nothing_anywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("NTTRACKS_CACHE", str(cache))
    fasta_dir = tmp_path / "mine"
    fasta = write((fasta_dir.mkdir() or fasta_dir) / "g.fa", ">a\n" + "ACGT" * 300 + "\n>b\n" + "GGCC" * 100 + "\n")
    for argv in (["demo"], ["--fasta", str(fasta)], ["hg38", "--chroms", "chr21"]):
        code, out, err = run_cli(["genome", *argv, "--dry-run", "--out", str(tmp_path / "hub")], capsys)
        assert code == 0, err
        assert "unscored:" in out
    assert not cache.exists()  # the demo was not generated, nothing downloaded
    assert sorted(p.name for p in fasta_dir.iterdir()) == ["g.fa"]  # no .fai beside the user's FASTA
    assert not (tmp_path / "hub").exists()
    code, out, _ = run_cli(["genome", "--fasta", str(fasta), "--dry-run"], capsys)
    assert "genome g: 2 chromosomes, 1,600 bp" in out and "not indexed yet" in out


def test_out_or_cache_that_cannot_be_written_fails_before_compute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = write(tmp_path / "a-file", "x")
    code, _, err = run_cli(["genome", "demo", "--out", str(blocker / "hub"), "--dry-run"], capsys)
    assert code == 5 and f"--out: {blocker} is a file" in err, err
    # /proc refuses new files even to root, where os.access says yes: the run tries it
    code, _, err = run_cli(["genome", "demo", "--out", "/proc/nttracks-hub"], capsys)
    assert code == 5 and "--out: cannot write in /proc" in err, err
    monkeypatch.setenv("NTTRACKS_CACHE", "/proc/nttracks-cache")
    code, _, err = run_cli(["genome", "demo", "--out", str(tmp_path / "hub")], capsys)
    assert code == 5 and "the cache ($NTTRACKS_CACHE): cannot write in /proc" in err, err
    assert not (tmp_path / "hub").exists()


def test_out_holding_other_files_is_refused_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.html").write_text("my page")  # a file nttracks does not publish
    before = snapshot(out)
    code, _, err = run_cli(["genome", "demo", "--out", str(out), "--chroms", "chr3"], capsys)
    assert code == 2 and "holds files nttracks did not write" in err and "--force" in err
    (out / "hub.txt").write_text("hub someone_elses\n")
    code, _, err = run_cli(["genome", "demo", "--out", str(out), "--chroms", "chr3"], capsys)
    assert code == 2 and "holds a hub nttracks did not write" in err
    assert snapshot(out) == {**before, "hub.txt": b"hub someone_elses\n"}
    code, _, err = run_cli(["genome", "demo", "--out", str(out), "--chroms", "chr3", "--force"], capsys)
    assert code == 0, err
    assert (out / "notes.html").read_text() == "my page" and "hub nttracks_demo" in (out / "hub.txt").read_text()


def test_unscored_bases_are_accounted_for_by_reason(tmp_path: Path) -> None:
    config = parse_config({"families": {"toy": {"window": 1200, "overlap": 601}}})
    result = run_genome(RunRequest(genome="demo", config=config, out=tmp_path / "hub"))
    fam = result.manifest["families"]["toy"]
    genome = open_genome("demo")
    n_bases = sum(int((genome.codes(c) == 4).sum()) for c in genome.chroms)
    assert fam["bases_unscored"]["n_bases"] == n_bases and fam["bases_unscored"]["iupac_codes"] == 0
    total = sum(genome.chrom_sizes.values())
    assert fam["bases_scored"] + sum(fam["bases_unscored"].values()) == total  # every base accounted for
    assert fam["bases_unscored"]["contig_ends"] > 0
    plan = plan_run(RunRequest(genome="demo", config=config))
    text = plan.summary()
    assert f"{n_bases:,} bp N" in text and "at contig ends" in text
    assert "warning: toy: overlap 601 bp is used as 606 bp: the stride (window - overlap) is rounded down" in text


def test_iupac_codes_are_counted_apart_from_n(tmp_path: Path) -> None:
    fasta = write(tmp_path / "iupac.fa", ">c\n" + "ACGT" * 30 + "RYKM" + "NN" + "ACGT" * 30 + "\n")
    plan = plan_run(RunRequest(genome=fasta, config=parse_config({"families": {"toy": {"window": 96}}})))
    assert plan.families[0].unscored["iupac_codes"] == 4 and plan.families[0].unscored["n_bases"] == 2


def test_the_dry_run_says_weeks_for_hg38_on_a_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["genome", "hg38", "--dry-run", "--device", "cpu"], capsys)
    assert code == 0
    assert "weeks on this machine's" in out and "CPU core" in out
    assert "warning: this run would take about" in out and "--device cuda" in out
    assert "estimated GPU time:" in out  # and what a GPU would take


def test_a_fasta_named_like_a_registered_genome_is_not_that_genome(tmp_path: Path) -> None:
    fasta = write(tmp_path / "hg38.fa", ">chrA\n" + "ACGT" * 600 + "\n")
    out = tmp_path / "hub"
    result = run_genome(RunRequest(genome=fasta, config=parse_config({"families": {"toy": {}}}), out=out))
    genomes = (out / "genomes.txt").read_text()
    assert "organism hg38" in genomes and "Homo sapiens" not in genomes and "Human" not in genomes
    assert result.manifest["genome"]["fasta"] == str(fasta.resolve())


def test_the_manifest_records_absolute_input_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "g.fa", ">a\n" + "ACGT" * 300 + "\n")
    write(tmp_path / "c.yaml", TOY)
    write(tmp_path / "keep.bed", "a\t0\t600\n")
    code, _, err = run_cli(["genome", "--fasta", "g.fa", "--config", "c.yaml", "--regions", "keep.bed", "--out", "hub"],
                           capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "hub" / "manifest.json").read_text())
    assert manifest["genome"]["fasta"] == str(tmp_path / "g.fa")
    assert manifest["genome"]["regions"] == str(tmp_path / "keep.bed")
    assert manifest["config"] == str(tmp_path / "c.yaml")


def test_help_shows_flags_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["genome", "--help"], capsys)
    assert code == 0 and "--dry-run" in out and "--force" in out
    assert "<bool>" not in out and "BOOLEAN" not in out


def test_a_registered_genome_download_reports_progress(
    small_tables: dict[str, int], server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    url, root = server
    served = _publish(root, "dm6", gzip.compress(write_fasta(tmp_path / "src.fa", SMALL).read_bytes()))
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", url)
    calls: list[tuple[int, int | None]] = []
    config = parse_config({"families": {"toy": {"window": 96}}})
    request = RunRequest(genome="dm6", config=config, out=tmp_path / "hub", cache_dir=tmp_path / "cache")
    run_genome(request, download_progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (served.stat().st_size,) * 2
