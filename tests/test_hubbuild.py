"""``nttracks hub build`` (rewrite the hub files from the manifest, recomputing nothing) and
``nttracks hub check DIR|URL`` (the validator on a directory, or on the hub as a server serves it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import serving
from test_cli import run_cli

from nttracks.hubbuild import rebuild_hub
from nttracks.hubcheck import validate_hub
from nttracks.hubremote import check_url
from nttracks.jbrowse import JBROWSE_CONFIG


@pytest.fixture
def hub(toy_demo_hub: Path, tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    copy = tmp_path / "hub"
    shutil.copytree(toy_demo_hub, copy)
    return copy


def test_the_run_records_the_hub_and_every_browser_file(toy_demo_hub: Path) -> None:
    manifest = json.loads((toy_demo_hub / "manifest.json").read_text())
    record = manifest["hub"]
    assert record["base_url"] == "http://127.0.0.1:1/hub/" and record["single_file"] is False
    assert [t["channel"] for t in record["spec"]["tracks"]] == ["A", "C", "G", "T", "gc6"]
    run = record["spec"]["families"][0]
    assert (run["window"], run["stride"], run["stitch"]) == (1200, 600, "taper")
    assert {"index.html", "washu.json", JBROWSE_CONFIG, "jbrowse/aliases.txt"} <= set(manifest["files"])
    assert validate_hub(toy_demo_hub) == []


def test_hub_build_rewrites_the_hub_files_without_recomputing_tracks(hub: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bigwig = hub / "demo/bw/toy_gc6.bw"
    before = (bigwig.stat().st_ino, bigwig.stat().st_mtime_ns, bigwig.read_bytes())
    code, out, err = run_cli(["hub", "build", str(hub), "--base-url", "https://example.org/tracks/",
                              "--long-label", "Toy tracks of the demo genome"], capsys)
    assert code == 0, err
    assert "passes 'nttracks hub check'" in out
    assert (bigwig.stat().st_ino, bigwig.stat().st_mtime_ns, bigwig.read_bytes()) == before  # same file
    washu = json.loads((hub / "washu.json").read_text())
    assert washu[0]["url"] == "https://example.org/tracks/demo/bw/toy_A.bw"
    assert "longLabel Toy tracks of the demo genome" in (hub / "hub.txt").read_text()
    manifest = json.loads((hub / "manifest.json").read_text())
    assert manifest["hub"]["base_url"] == "https://example.org/tracks/"
    assert manifest["hub"]["spec"]["long_label"] == "Toy tracks of the demo genome"
    assert validate_hub(hub) == []
    assert not list(hub.parent.glob(".*rebuild*"))  # the staging directory is gone


def test_hub_build_single_file_then_back(hub: Path) -> None:
    rebuild_hub(hub, single_file=True)
    text = (hub / "hub.txt").read_text()
    assert "useOneFile on" in text and "genomesFile" not in text
    stanzas = text.split("\n\n")
    assert stanzas[0].startswith("hub nttracks_demo\n") and stanzas[1].startswith("genome demo\n")
    assert stanzas[2].startswith("track toy\n")
    assert "bigDataUrl demo/bw/toy_A.bw" in text and "html demo/toy_A.html" in text  # relative to hub.txt
    assert not (hub / "genomes.txt").exists() and not (hub / "demo/trackDb.txt").exists()
    assert validate_hub(hub) == []
    manifest = json.loads((hub / "manifest.json").read_text())
    assert "genomes.txt" not in manifest["files"] and manifest["hub"]["single_file"] is True
    rebuild_hub(hub, single_file=False)
    assert (hub / "genomes.txt").is_file() and "useOneFile" not in (hub / "hub.txt").read_text()
    assert validate_hub(hub) == []


def test_hub_build_with_a_local_igv_copy(hub: Path, tmp_path: Path) -> None:
    igv = tmp_path / "igv.min.js"
    igv.write_text("window.igv = {};\n")
    rebuild_hub(hub, igv_js=igv)
    assert (hub / "igv/igv.min.js").read_text() == "window.igv = {};\n"
    assert (hub / "igv/igv.min.js").stat().st_mode & 0o004
    assert '<script src="igv/igv.min.js">' in (hub / "index.html").read_text()
    rebuild_hub(hub, base_url="https://example.org/x/")  # the copy stays the page's igv.js
    assert '<script src="igv/igv.min.js">' in (hub / "index.html").read_text()


def test_hub_build_changes_nothing_when_the_new_hub_is_wrong(hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in hub.rglob("*") if p.is_file()}
    code, _, err = run_cli(["hub", "build", str(hub), "--base-url", "example.org/hub"], capsys)
    assert code == 2 and "must be an absolute http(s) URL" in err
    assert {p: p.read_bytes() for p in hub.rglob("*") if p.is_file()} == before
    (hub / "demo/bw/toy_C.bw").write_bytes(b"not a bigWig")  # the rebuilt hub fails the check
    before = {p: p.read_bytes() for p in hub.rglob("*") if p.is_file()}
    code, _, err = run_cli(["hub", "build", str(hub), "--base-url", "https://example.org/y/"], capsys)
    assert code == 5 and "fails validation, so it was not published" in err and "toy_C.bw is not a big wig" in err
    assert {p: p.read_bytes() for p in hub.rglob("*") if p.is_file()} == before


def test_hub_build_needs_a_manifest_with_the_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["hub", "build", str(tmp_path)], capsys)
    assert code == 2 and "manifest.json does not exist" in err
    (tmp_path / "manifest.json").write_text('{"nttracks_version": "0.0.1"}')
    code, _, err = run_cli(["hub", "build", str(tmp_path)], capsys)
    assert code == 2 and "records no hub" in err


def test_hub_check_exits_non_zero_with_the_problems(hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["hub", "check", str(hub)], capsys)
    assert code == 0 and "no problems found" in out
    (hub / "demo/toy_A.html").unlink()
    code, out, err = run_cli(["hub", "check", str(hub)], capsys)
    assert code == 1
    assert out.strip() == "demo/trackDb.txt:15: html page toy_A.html of track toy_A does not exist"
    assert "1 problem(s)" in err


def test_hub_check_url_passes_a_hub_served_by_nttracks_serve(toy_demo_hub: Path) -> None:
    with serving(toy_demo_hub) as url:
        assert check_url(url) == []
        done = subprocess.run([sys.executable, "-m", "nttracks.cli", "hub", "check", f"{url}hub.txt"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no problems found" in done.stdout, done.stdout + done.stderr


def test_hub_check_url_reports_what_the_server_breaks(hub: Path) -> None:
    (hub / "demo/toy_T.html").unlink()
    (hub / "demo/bw/toy_G.bw").unlink()
    with serving(hub) as url:
        problems = check_url(url)
    assert f"{url}demo/trackDb.txt:43: Couldn't open bw/toy_G.bw (bigDataUrl of track toy_G)" in problems
    assert f"{url}demo/trackDb.txt:57: html page toy_T.html of track toy_T does not exist" in problems
    assert any(p.startswith(f"{url}jbrowse/config.json: track 'toy_G'.adapter: bigWigLocation") for p in problems)


@pytest.fixture
def plain_server(toy_demo_hub: Path) -> Iterator[str]:
    """Python's http.server: no byte ranges, no CORS (what hubCheck itself does not notice)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(toy_demo_hub))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_hub_check_url_rejects_a_server_without_byte_ranges(plain_server: str) -> None:
    problems = check_url(plain_server)
    assert f"{plain_server}demo/trackDb.txt:71: bw/toy_gc6.bw the server ignored a byte-range request" in \
        "\n".join(problems)
    assert any("twoBitPath demo/demo.2bit the server ignored a byte-range request" in p for p in problems)


def test_an_hg38_style_hub_from_tiny_models_passes_the_validator(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A genome UCSC hosts (no assembly hub) with chr names: 'hg38' stood in for by a tiny FASTA whose
    sizes the registry is told, scored by the toy model and the demo's tiny masked-LM NT."""
    import numpy as np

    from nttracks import registry
    from nttracks.config import parse_config
    from nttracks.planning import RunRequest
    from nttracks.runs import run_genome

    rng = np.random.default_rng(38)
    seqs = {"chr1": "".join(rng.choice(list("ACGT"), 4000)) + "N" * 300 + "".join(rng.choice(list("ACGT"), 2000)),
            "chr2": "".join(rng.choice(list("ACGT"), 3000)), "chrM": "".join(rng.choice(list("ACGT"), 1600))}
    cache = tmp_path / "cache"
    monkeypatch.setenv("NTTRACKS_CACHE", str(cache))
    fasta = registry.registered_fasta_path("hg38", cache)
    fasta.parent.mkdir(parents=True)
    fasta.write_text("".join(f">{c}\n{s}\n" for c, s in seqs.items()))
    monkeypatch.setattr(registry, "chrom_sizes_of", lambda name: {c: len(s) for c, s in seqs.items()})
    config = parse_config({
        "hub": {"name": "nttracks_hg38", "short_label": "nttracks hg38", "long_label": "nttracks test hub",
                "email": "nttracks@example.org"},
        "families": {"toy": {"window": 1200, "overlap": 600, "batch_size": 16},
                     "sensitivity": {"checkpoint": "demo", "window": 1200, "overlap": 120, "batch_size": 64,
                                     "channels": ["constraint", "ref_prob"]}}})
    tmp_path.chmod(0o755)
    out = tmp_path / "hub"
    run_genome(RunRequest(genome="hg38", config=config, out=out, device="cpu",
                          base_url="https://example.org/hg38hub/"))
    assert validate_hub(out) == []
    genomes = (out / "genomes.txt").read_text()
    assert genomes == "genome hg38\ntrackDb hg38/trackDb.txt\n"  # UCSC hosts it: no assembly hub
    trackdb = (out / "hg38/trackDb.txt").read_text()
    assert "track toy_super\nsuperTrack on show\n" in trackdb
    assert "track sensitivity\nparent sensitivity_super\n" in trackdb
    washu = json.loads((out / "washu.json").read_text())
    assert {t["url"] for t in washu} >= {"https://example.org/hg38hub/hg38/bw/toy_gc6.bw"}
    assert (out / "jbrowse/aliases.txt").read_text().splitlines() == ["chr1\t1", "chr2\t2", "chrM\tMT"]
    assert "hg38" in json.loads((out / "index.html").read_text().split('id="hub">')[1].split("</script>")[0])["genome"]


def test_a_run_publishes_nothing_when_its_hub_fails_the_check(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate before publishing: a hub the validator rejects (here a page lost after writing) is not
    published, and the error lists the problem."""
    from conftest import TOY_DEMO

    import nttracks.runs
    from nttracks.config import parse_config
    from nttracks.errors import OutputError
    from nttracks.planning import RunRequest
    from nttracks.runs import run_genome

    real = nttracks.runs.write_hub

    def write_then_lose_a_page(spec, directory, **kwargs):  # type: ignore[no-untyped-def]
        written = real(spec, directory, **kwargs)
        (directory / "demo/toy_gc6.html").unlink()
        return written

    monkeypatch.setattr(nttracks.runs, "write_hub", write_then_lose_a_page)
    out = tmp_path / "hub"
    with pytest.raises(OutputError, match=r"fails validation, so it was not published:\n  demo/trackDb.txt:\d+: "
                                          r"html page toy_gc6.html of track toy_gc6 does not exist"):
        run_genome(RunRequest(genome="demo", config=parse_config(TOY_DEMO), out=out, chroms=("chr3",),
                              device="cpu"))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
