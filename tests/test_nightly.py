"""Nightly regeneration: incremental, resumable, atomic and observable.

Counts come from the shard function itself (``executors.score_shard``, wrapped to record each shard it
scores); "no file rewritten" is checked by inode, mtime and bytes; crashes are real SIGKILLs of the CLI
in a subprocess (``killpoint.py``) while a reader polls the live hub with the validator.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

import nttracks.executors
from nttracks.cli import main
from nttracks.config import parse_config
from nttracks.errors import ModelError
from nttracks.hubs import validate_hub
from nttracks.planning import RunRequest
from nttracks.runs import run_genome
from nttracks.status import hub_status

HERE = Path(__file__).parent


def toy(**settings: object) -> object:
    return parse_config({"families": {"toy": {"window": 1200, "overlap": 600, **settings}}}, source="<test>")


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The chromosome of every shard the shard function scores, in order."""
    calls: list[str] = []
    real = nttracks.executors.score_shard

    def counting(model, job, shard, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(shard.chrom)
        return real(model, job, shard, *args, **kwargs)

    monkeypatch.setattr(nttracks.executors, "score_shard", counting)
    return calls


def files(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``out``: (inode, mtime in ns, bytes)."""
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(out.rglob("*")) if p.is_file()}


def values(out: Path) -> dict[tuple[str, str], np.ndarray]:
    """Every bigWig of the hub at every base of every chromosome (NaN where unscored)."""
    manifest = json.loads((out / "manifest.json").read_text())
    got = {}
    for family in manifest["families"].values():
        for rel in family["tracks"].values():
            bw = pyBigWig.open(str(out / rel))
            try:
                for chrom, size in bw.chroms().items():
                    got[rel, chrom] = np.array(bw.values(chrom, 0, size), dtype=np.float64)
            finally:
                bw.close()
    return got


def assert_same_values(a: Path, b: Path) -> None:
    va, vb = values(a), values(b)
    assert va.keys() == vb.keys()
    for k in va:
        np.testing.assert_array_equal(va[k], vb[k], err_msg=str(k))  # NaN where NaN, equal elsewhere


def fasta(path: Path, seed: int = 0, change: tuple[str, int] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    chroms = {name: list(rng.choice(list("ACGT"), size=n)) for name, n in (("chrA", 7000), ("chrB", 6000),
                                                                         ("chrC", 5000))}
    if change is not None:
        chrom, pos = change
        chroms[chrom][pos] = "G" if chroms[chrom][pos] in "AT" else "A"  # GC content changes
    text = "".join(f">{c}\n" + "\n".join("".join(s[i : i + 60]) for i in range(0, len(s), 60)) + "\n"
                   for c, s in chroms.items())
    path.write_text(text)
    return path


def test_rerun_with_nothing_changed_scores_nothing_and_writes_nothing(tmp_path: Path, scored: list[str]) -> None:
    out = tmp_path / "hub"
    request = RunRequest(genome="demo", config=toy(model="context_gc"), out=out, chroms=("chr2", "chr3"),
                         shard_bases=50_000)
    first = run_genome(request)
    assert first.changed and first.computed == len(scored) == 5  # chr2: 4 shards of about 50 kb; chr3: 1
    before = files(out)
    work = tmp_path / ".hub.nttracks-work"
    scored.clear()
    again = run_genome(request)
    assert scored == [] and not again.changed and again.files == [] and again.reused == 5
    assert files(out) == before  # same inodes, mtimes and bytes: nothing rewritten
    record = json.loads((work / "last-run.json").read_text())
    assert record["result"] == "up to date" and record["computed"] == 0
    assert "nothing to do" in (work / "nttracks.log").read_text()
    # a setting that never changes a value (batch size) rewrites the pages' config, never a bigWig
    rebatched = run_genome(RunRequest(genome="demo", config=toy(model="context_gc", batch_size=3), out=out,
                                      chroms=("chr2", "chr3"), shard_bases=50_000))
    assert scored == [] and rebatched.changed
    after = files(out)
    bigwigs = [rel for rel in before if rel.endswith(".bw")]
    assert bigwigs and all(after[rel][:2] == before[rel][:2] for rel in bigwigs)
    assert after["config.yaml"] != before["config.yaml"]
    # a bigWig that is not the one published (replaced by hand, or by an interrupted publish) is rebuilt
    # from the finished shards, never trusted
    bigwig = out / bigwigs[0]
    good = bigwig.read_bytes()
    bigwig.write_bytes(good[: len(good) // 2])
    repaired = run_genome(request)
    assert scored == [] and repaired.changed and bigwig.read_bytes() == good


def test_changing_one_chromosome_recomputes_only_its_shards(
    tmp_path: Path, scored: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, fresh = tmp_path / "hub", tmp_path / "fresh"
    genome = fasta(tmp_path / "g.fa")
    config = toy(model="context_gc")
    first = run_genome(RunRequest(genome=genome, config=config, out=out, shard_bases=2000))
    per_chrom = {c: scored.count(c) for c in ("chrA", "chrB", "chrC")}
    assert all(n >= 2 for n in per_chrom.values()) and first.computed == sum(per_chrom.values())
    fasta(genome, change=("chrB", 3001))

    status = hub_status(out)  # status sees it before the run does
    assert not status.up_to_date
    stale = {(u.chrom, tuple(u.reasons)) for u in status.units if not u.up_to_date}
    assert stale == {("chrB", ("sequence changed",))}
    assert "toy chrB: stale: sequence changed" in status.summary()
    capsys.readouterr()
    with pytest.raises(SystemExit) as code:
        main(["status", str(out), "--json"])
    assert code.value.code == 6  # stale
    report = json.loads(capsys.readouterr().out)
    assert [(u["chrom"], u["reasons"]) for u in report["units"] if not u["up_to_date"]] == [
        ("chrB", ["sequence changed"])]
    assert report["last_run"]["result"] == "built"

    scored.clear()
    second = run_genome(RunRequest(genome=genome, config=config, out=out, shard_bases=2000))
    # context_gc reads +-50 bp: only the shards whose windows hold base 3001 change, all on chrB
    assert scored and set(scored) == {"chrB"} and len(scored) <= per_chrom["chrB"]
    assert second.computed == len(scored) and second.reused == first.computed - len(scored)
    run_genome(RunRequest(genome=genome, config=config, out=fresh, shard_bases=2000))
    assert_same_values(out, fresh)  # the incremental hub equals a hub built from scratch, at every base

    diff = second.manifest["families"]["toy"]["diff"]
    gc = diff["tracks"]["gc_context"]
    assert gc["changed"] and gc["chromosome"] == "chrB" and gc["mean_abs_change"] > 0
    assert set(gc["by_chromosome"]) == {"chrB"}  # the unchanged chromosomes are the same bytes
    page = (out / "hub.html").read_text()
    assert "Changes since the build of" in page and "<td>toy_gc_context</td><td>chrB</td>" in page
    unit = second.manifest["families"]["toy"]["units"]["chrB"]
    assert unit["key"] != first.manifest["families"]["toy"]["units"]["chrB"]["key"]
    assert {"inputs", "shards", "seconds", "bases_per_second", "seam_qc", "code_version", "built"} <= set(unit)
    assert hub_status(out).up_to_date


def test_a_changed_model_or_setting_is_named_and_recomputes_its_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scored: list[str]
) -> None:
    from nttracks.families.toy import ToyFamily

    out, genome = tmp_path / "hub", fasta(tmp_path / "g.fa")
    first = run_genome(RunRequest(genome=genome, config=toy(model="context_gc"), out=out, shard_bases=4000))
    (tmp_path / "taper.yaml").write_text("families:\n  toy: {window: 1200, overlap: 600, model: context_gc}\n")
    (tmp_path / "mean.yaml").write_text(
        "families:\n  toy: {window: 1200, overlap: 600, model: context_gc, stitch: mean}\n")
    assert hub_status(out, config=tmp_path / "taper.yaml").up_to_date
    status = hub_status(out, config=tmp_path / "mean.yaml")
    assert {tuple(u.reasons) for u in status.units} == {("settings changed",)}
    monkeypatch.setattr(ToyFamily, "weights_digest", lambda self, settings: "retrained")
    status = hub_status(out)
    assert {tuple(u.reasons) for u in status.units} == {("model weights changed",)}
    scored.clear()
    retrained = run_genome(RunRequest(genome=genome, config=toy(model="context_gc"), out=out, shard_bases=4000))
    assert len(scored) == retrained.computed == first.computed  # every shard of the model, once
    assert retrained.manifest["families"]["toy"]["checkpoint_digest"] == "retrained"
    assert hub_status(out).up_to_date
    # weights that change between the fingerprint and the loading: an error, nothing published
    before = files(out)
    load = ToyFamily.load
    monkeypatch.setattr(ToyFamily, "load", lambda self, *a: dataclasses.replace(load(self, *a), digest="other"))
    with pytest.raises(ModelError, match="weights changed while this run read them"):
        run_genome(RunRequest(genome=genome, config=toy(model="context_gc", stitch="mean"), out=out,
                              shard_bases=4000))
    assert files(out) == before


def test_a_full_disk_leaves_the_previous_hub_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], scored: list[str]
) -> None:
    out = tmp_path / "hub"
    (tmp_path / "new.yaml").write_text("families:\n  toy: {window: 1200, overlap: 600, model: context_gc}\n")
    args = ["genome", "demo", "--out", str(out), "--chroms", "chr2,chr3", "--shard-size", "50000", "--quiet"]
    run_genome(RunRequest(genome="demo", config=toy(model="context_gc", stitch="mean"), out=out,
                          chroms=("chr2", "chr3"), shard_bases=50_000))
    before = files(out)
    real = nttracks.executors.write_shard

    def filling(path: Path, **kwargs: object) -> Path:
        if len(scored) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nttracks.executors, "write_shard", filling)
    scored.clear()
    with pytest.raises(SystemExit) as info:
        main([*args, "--config", str(tmp_path / "new.yaml")])
    err = capsys.readouterr().err
    assert info.value.code == 5
    assert "the disk is full" in err and f"{out} is unchanged" in err and "resumes" in err
    assert len(err.strip().splitlines()) == 1, err  # said once
    assert files(out) == before
    status = hub_status(out)
    assert status.last_run is not None and status.last_run["result"] == "failed"
    assert "disk is full" in status.summary()
    monkeypatch.setattr(nttracks.executors, "write_shard", real)
    scored.clear()
    with pytest.raises(SystemExit) as done:
        main([*args, "--config", str(tmp_path / "new.yaml")])
    assert done.value.code in (0, None) and len(scored) == 5 - 2  # the two shards written before are reused
    assert capsys.readouterr() == ("", "")  # --quiet: nothing printed when all is well


class Reader(threading.Thread):
    """Polls the live hub with the validator until stopped; records every problem it ever saw."""

    def __init__(self, out: Path) -> None:
        super().__init__(daemon=True)
        self.out, self.stop, self.polls, self.problems = out, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            self.problems += validate_hub(self.out)
            self.polls += 1


def test_sigkill_anywhere_then_rerun_gives_the_uninterrupted_hub(tmp_path: Path, scored: list[str]) -> None:
    out, reference = tmp_path / "hub", tmp_path / "reference"
    new = tmp_path / "new.yaml"
    new.write_text("families:\n  toy: {window: 1200, overlap: 600, model: context_gc, stitch: taper}\n")
    common = dict(genome="demo", chroms=("chr2", "chr3"), shard_bases=25_000)
    run_genome(RunRequest(config=toy(model="context_gc", stitch="taper"), out=reference, **common))
    run_genome(RunRequest(config=toy(model="context_gc", stitch="mean"), out=out, **common))  # last night's
    previous = files(out)
    work = tmp_path / ".hub.nttracks-work"
    args = ["genome", "demo", "--config", str(new), "--out", str(out), "--chroms", "chr2,chr3",
            "--shard-size", "25000", "--quiet"]
    reader = Reader(out)
    reader.start()
    try:
        for point, n in [("shard", 3), ("bigwig", 4), ("publish", 3)]:
            done = subprocess.run([sys.executable, str(HERE / "killpoint.py"), point, str(n), "--", *args],
                                  capture_output=True, text=True, timeout=240, env=os.environ.copy())
            assert done.returncode == -9, (point, done.stderr)
            if point == "shard":  # killed mid-inference: a partial shard file, and nothing published
                assert list((work / "shards" / "toy").glob(".*.part"))
                assert files(out) == previous
            if point == "publish":  # killed mid-publish: the new bigWig is in, hub.txt still the old one's
                now = files(out)
                assert now["demo/bw/toy_gc_context.bw"] != previous["demo/bw/toy_gc_context.bw"]
                assert now["hub.txt"] == previous["hub.txt"]
        status = hub_status(out)
        assert status.last_run is not None and status.last_run["result"] == "interrupted"
        scored.clear()
        final = run_genome(RunRequest(config=toy(model="context_gc", stitch="taper"), out=out, **common))
    finally:
        reader.stop.set()
        reader.join()
    assert scored == [] and final.computed == 0  # every shard was finished by the killed runs
    assert_same_values(out, reference)
    assert reader.polls > 10 and reader.problems == []
    assert validate_hub(out) == []
    assert not list((work / "shards").glob("*/.*.part"))  # the killed run's leftovers are gone
    assert not (tmp_path / ".hub.nttracks-staging").exists()
    assert hub_status(out).up_to_date
