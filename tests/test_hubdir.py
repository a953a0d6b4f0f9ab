"""The hub directory: one run at a time (lock), stale locks taken over, exactly the run's files published."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from test_runs import toy_config

from nttracks.config import parse_config
from nttracks.errors import UsageError
from nttracks.families import Family, LoadedModel, register
from nttracks.hubdir import hub_lock, sibling
from nttracks.hubs import validate_hub
from nttracks.models.toy import TOY_GEOMETRY, BaseIdentityModel
from nttracks.planning import RunRequest
from nttracks.runs import run_genome

GATE = threading.Event()
STARTED = threading.Event()


class GatedModel(BaseIdentityModel):
    """The base-identity toy that waits for GATE before its first batch: a run that is reliably mid-way."""

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        STARTED.set()
        if not GATE.wait(timeout=60):
            raise RuntimeError("the test never opened the gate")
        return super().forward(codes)


class GatedFamily(Family):
    name = "toy"  # stands in for the toy family (same catalog entry and channels)
    settings = type(toy_config().families["toy"])

    def geometry(self, settings: Any) -> Any:
        return TOY_GEOMETRY

    def channels(self, settings: Any) -> tuple[str, ...]:
        return BaseIdentityModel.channels

    def load(self, settings: Any, geometry: Any, device: Any) -> LoadedModel:
        return LoadedModel(GatedModel(geometry), "builtin", "gated toy")


def test_a_second_run_into_the_same_out_exits_at_once_naming_the_first(tmp_path: Path) -> None:
    from nttracks.families import get_family

    toy = get_family("toy")
    register(GatedFamily(), replace=True)
    out = tmp_path / "hub"
    first: dict[str, Any] = {}

    def run_first() -> None:
        try:
            first["result"] = run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr3",)))
        except BaseException as exc:  # reported below
            first["error"] = exc

    thread = threading.Thread(target=run_first)
    try:
        GATE.clear()
        STARTED.clear()
        thread.start()
        assert STARTED.wait(timeout=60), "the first run did not start"
        staging = sibling(out, "staging")
        assert staging.is_dir()
        with pytest.raises(UsageError) as info:
            run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr2",)))
        message = str(info.value)
        assert f"another nttracks run is writing {out}: pid {os.getpid()} on {socket.gethostname()}" in message
        assert "started 20" in message and "wait for it to finish" in message
        assert staging.is_dir()  # the second run touched nothing of the first's
    finally:
        GATE.set()
        thread.join(timeout=60)
        register(toy, replace=True)
    assert "error" not in first, first.get("error")
    assert validate_hub(out) == []
    assert not sibling(out, "lock").exists() and not sibling(out, "staging").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "hub"
    lock = sibling(out, "lock")
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "started": "2026-01-01T00:00:00"}))
    with caplog.at_level(logging.WARNING, logger="nttracks"):
        run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr3",)))
    assert "taking over the stale lock" in caplog.text and "2026-01-01T00:00:00" in caplog.text
    assert validate_hub(out) == [] and not lock.exists()


def test_a_lock_from_another_host_is_never_taken(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    lock = sibling(out, "lock")
    lock.write_text(json.dumps({"host": "elsewhere.example", "pid": 1, "started": "2026-01-01T00:00:00"}))
    with pytest.raises(UsageError, match=r"pid 1 on elsewhere\.example"):
        with hub_lock(out):
            pass
    assert lock.exists() and not out.exists()


def test_the_lock_is_released_when_a_run_fails(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    with pytest.raises(RuntimeError), hub_lock(out):
        raise RuntimeError("boom")
    assert not sibling(out, "lock").exists()


def test_a_published_hub_holds_exactly_the_files_of_its_run(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    first = run_genome(RunRequest(genome="demo", config=toy_config(), out=out, base_url="https://example.org/hub"))
    assert (out / "washu.json").is_file()
    (out / "notes.txt").write_text("mine")  # never published by nttracks: left alone
    config = parse_config({"families": {"toy": {"window": 1200, "model": "context_gc"}}})
    second = run_genome(RunRequest(genome="demo", config=config, out=out))
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(second.manifest["files"]) | {"notes.txt"}
    assert "washu.json" not in files and "demo/bw/toy_gc6.bw" not in files  # the old run's, removed
    assert set(first.manifest["files"]) - set(second.manifest["files"]) >= {"washu.json", "demo/bw/toy_gc6.bw"}
    assert (out / "notes.txt").read_text() == "mine"
    assert validate_hub(out) == []


def test_every_published_file_is_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = tmp_path / "hub"
        run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr3",)))
    finally:
        os.umask(old)
    for path in [out, *out.rglob("*")]:
        mode = path.stat().st_mode
        if path.is_dir():
            assert mode & 0o005 == 0o005, f"{path} is not searchable by others ({oct(mode)})"
        else:
            assert mode & 0o004, f"{path} is not readable by others ({oct(mode)})"


def test_publish_goes_bigwigs_first_hub_txt_last_and_leaves_unchanged_files_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nttracks.hubdir
    from nttracks.hubdir import publish

    out, staging = tmp_path / "hub", tmp_path / "staging"
    names = ["hub.txt", "genomes.txt", "manifest.json", "washu.json", "g/trackDb.txt", "g/a.html", "g/g.2bit",
             "g/bw/a.bw", "g/bw/b.bw", "g/unchanged.html"]
    for root in (out, staging):
        for name in names:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(f"{root.name} {name}\n" if name != "g/unchanged.html" else "same\n")
    (out / "manifest.json").write_text('{"nttracks_version": "0", "files": ["hub.txt", "g/old.bw"]}')
    (out / "g" / "old.bw").write_text("old")
    (staging / "g" / "bw" / "b.bw").unlink()
    os.link(out / "g" / "bw" / "b.bw", staging / "g" / "bw" / "b.bw")  # a kept bigWig: the live file itself
    kept = {n: (out / n).stat().st_ino for n in ("g/unchanged.html", "g/bw/b.bw")}
    moves: list[str] = []
    real = nttracks.hubdir.move

    def recording(src: Path, dst: Path) -> None:
        moves.append(dst.relative_to(out).as_posix())
        assert (out / "g" / "old.bw").exists()  # a file no longer published goes only after hub.txt
        real(src, dst)

    monkeypatch.setattr(nttracks.hubdir, "move", recording)
    moved = publish(staging, out)
    assert moves == ["g/bw/a.bw", "g/g.2bit", "g/a.html", "g/trackDb.txt", "genomes.txt", "washu.json",
                     "manifest.json", "hub.txt"]
    assert [p.relative_to(out).as_posix() for p in moved] == moves
    assert {n: (out / n).stat().st_ino for n in kept} == kept  # not replaced
    assert not (out / "g" / "old.bw").exists() and not staging.exists()
    assert (out / "hub.txt").read_text() == "staging hub.txt\n"
