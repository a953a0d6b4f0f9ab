"""The command line: the demo run, --dry-run, --help, and every bad input -> a clear message, a non-zero
exit, and --out left exactly as it was."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from conftest import snapshot

from nttracks.cli import main
from nttracks.config import config_for_genome, load_config
from nttracks.models import save_random_nt
from nttracks.planning import RunRequest, plan_run


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def live_hub(tmp_path: Path) -> Path:
    """An --out directory that already holds a hub nttracks wrote (which a failed run must not touch)."""
    out = tmp_path / "hub"
    (out / "demo").mkdir(parents=True)
    (out / "hub.txt").write_text("hub previous\n")
    (out / "demo" / "trackDb.txt").write_text("track old\n")
    files = ["hub.txt", "demo/trackDb.txt", "manifest.json"]
    (out / "manifest.json").write_text(json.dumps({"nttracks_version": "0.1.0", "files": files}))
    return out


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_INPUTS = {
    "missing FASTA": (lambda d: ["--fasta", str(d / "nope.fa")], 3, "FASTA file not found"),
    "malformed FASTA": (lambda d: ["--fasta", str(write(d / "bad.fa", "ACGT\nACGT\n"))], 3, "bad.fa"),
    "ragged FASTA": (
        lambda d: ["--fasta", str(write(d / "ragged.fa", ">a\nACGTACGT\nACG\nACGTACGT\n"))],
        3,
        "ragged.fa",
    ),
    "unknown genome name": (lambda d: ["hg99"], 3, "unknown genome 'hg99'"),
    "config unknown key": (
        lambda d: ["demo", "--config", str(write(d / "c.yaml", "families:\n  toy:\n    windw: 1200\n"))],
        2,
        "families.toy.windw: unknown key",
    ),
    "config wrong type": (
        lambda d: ["demo", "--config", str(write(d / "c.yaml", "families:\n  toy:\n    window: big\n"))],
        2,
        "families.toy.window: expected int",
    ),
    "config window not a multiple of 24": (
        lambda d: ["demo", "--config", str(write(d / "c.yaml", "families:\n  toy:\n    window: 1000\n"))],
        2,
        "multiple of 24",
    ),
    "missing config": (lambda d: ["demo", "--config", str(d / "none.yaml")], 2, "none.yaml does not exist"),
    "unknown chromosome": (lambda d: ["demo", "--chroms", "chr1,chr9"], 3, "chr9"),
    "no CUDA": (lambda d: ["demo", "--device", "cuda"], 2, "no CUDA device"),
    "regions on a chromosome the genome lacks": (
        lambda d: ["demo", "--regions", str(write(d / "r.bed", "1\t0\t100\n"))],
        2,
        "r.bed",
    ),
    "missing exclude BED": (lambda d: ["demo", "--exclude", str(d / "none.bed")], 2, "none.bed"),
    "name and --fasta": (lambda d: ["demo", "--fasta", str(d / "x.fa")], 2, "not both"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_leaves_out_untouched(
    case: str, live_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_args, exit_code, message = BAD_INPUTS[case]
    if case == "no CUDA":
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    before = snapshot(live_hub)
    for out in (live_hub, tmp_path / "new-hub"):
        code, _, err = run_cli(["genome", *make_args(tmp_path), "--out", str(out)], capsys)
        assert code == exit_code, err
        assert err.startswith("nttracks: error: ") and message in err, err
        assert "Traceback" not in err
    assert snapshot(live_hub) == before
    assert not (tmp_path / "new-hub").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_registered_genome_offline_says_where_to_place_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NTTRACKS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", f"http://127.0.0.1:{unused_port()}")
    code, _, err = run_cli(["genome", "hg38", "--out", str(tmp_path / "hub")], capsys)
    assert code == 3
    expected_place = tmp_path / "cache" / "genomes" / "hg38" / "hg38.fa"
    assert "could not download hg38" in err and f"place the FASTA (plain or bgzip) at {expected_place}" in err
    assert not (tmp_path / "hub").exists()


def test_out_is_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = write(tmp_path / "hub", "not a directory")
    code, _, err = run_cli(["genome", "demo", "--out", str(out)], capsys)
    assert code == 2
    assert f"--out {out} is an existing file" in err
    assert out.read_text() == "not a directory"


def test_out_required_without_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["genome", "demo"], capsys)
    assert code == 2 and "pass --out DIR" in err


def test_demo_run_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default demo (configs/demo.yaml: the shipped demo models): its plan, then a run (one chromosome)."""
    code, out, _ = run_cli(["genome", "demo", "--dry-run"], capsys)
    assert code == 0
    plan = plan_run(RunRequest(genome="demo", config=load_config(config_for_genome("demo"))), dry_run=True)
    assert [fam.name for fam in plan.families] == ["elements", "enhancer", "sensitivity", "attention"]
    for fam in plan.families:
        assert f"{fam.name}: {len(fam.window_rows):,} windows of {fam.geometry.window:,} bp" in out
    assert "toy:" not in out and "estimated output" in out
    hub = tmp_path / "hub"
    code, out, err = run_cli(["genome", "demo", "--out", str(hub), "--chroms", "chr3",
                              "--base-url", "https://example.org/hub"], capsys)
    assert code == 0, err
    assert f"wrote {hub}/hub.txt" in out
    assert (hub / "hub.txt").is_file() and (hub / "washu.json").is_file() and (hub / "manifest.json").is_file()
    assert "families:" in (hub / "config.yaml").read_text()
    manifest = json.loads((hub / "manifest.json").read_text())
    assert list(manifest["families"]) == ["elements", "enhancer", "sensitivity", "attention"]


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["genome", "--help"], capsys)
    assert code == 0
    for option in ("--fasta", "--out", "--config", "--chroms", "--regions", "--exclude", "--device", "--dry-run"):
        assert option in out


def test_models_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = save_random_nt(tmp_path / "tiny", version="v2", hidden=32, layers=2, heads=4)
    code, out, err = run_cli(["models", "inspect", str(checkpoint)], capsys)
    assert code == 0, err
    assert "param" in out.lower() and "4107" in out
    code, _, err = run_cli(["models", "inspect", str(tmp_path / "missing")], capsys)
    assert code == 4 and "missing" in err
