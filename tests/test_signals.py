"""SIGTERM (kill, timeout, Slurm) and Ctrl-C (SIGINT to the whole process group) stop a run cleanly:
exit 143 / 130 within seconds, one line on stderr and no traceback, no process of the run left, the
staging and lock files gone (the work directory keeps only finished shards: no partial file), and the
hub published before byte for byte unchanged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import snapshot

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc"),
    pytest.mark.slow,  # three demo runs
]


def _cli(out: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "nttracks.cli", "genome", "demo", "--out", str(out), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _state(pid: int) -> str | None:
    """The process state letter (R, S, T, Z, ...), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _writers(pid: int) -> list[int]:
    """The run's bigWig writer processes (spawned workers, not multiprocessing's resource tracker)."""
    found = []
    for kid in _children(pid):
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
            found.append(kid)
    return found


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="module")
def previous_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub published by an earlier, complete run (the live hub a stopped run must leave alone). It holds
    one chromosome, so that the runs below, of the whole genome, have work to do."""
    out = tmp_path_factory.mktemp("previous") / "hub"
    proc = _cli(out, "--chroms", "chr3")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def _stopped_mid_write(out: Path, previous: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """A run of the demo frozen (SIGSTOP) while its bigWig writers are writing into staging; returns it
    and its child processes. A run that got past the writers before it could be frozen is retried."""
    bw_dir = out.parent / f".{out.name}.nttracks-staging" / "demo" / "bw"

    def writing(proc: subprocess.Popen[str]) -> bool:
        return len(_writers(proc.pid)) >= 1 and any(bw_dir.glob("*.bw"))

    for _attempt in range(3):
        proc = _cli(out)
        # Generous: spawning writers on a busy 2-core machine takes seconds.
        _wait(lambda p=proc: p.poll() is not None or writing(p), 300)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGSTOP)
            assert _wait(lambda p=proc: _state(p.pid) == "T", 60)
            if writing(proc):
                return proc, _children(proc.pid)
            os.kill(proc.pid, signal.SIGCONT)
        proc.communicate(timeout=300)  # finished too soon: that run published; put the old hub back
        shutil.rmtree(out)
        shutil.copytree(previous, out)
    pytest.fail("could not catch a run while its bigWig writers were running")


@pytest.mark.parametrize(
    ("signum", "code", "to_group"),
    [pytest.param(signal.SIGTERM, 143, False, id="SIGTERM"), pytest.param(signal.SIGINT, 130, True, id="ctrl-c")],
)
def test_signal_stops_the_run(
    previous_hub: Path, tmp_path: Path, signum: signal.Signals, code: int, to_group: bool
) -> None:
    out = tmp_path / "hub"
    shutil.copytree(previous_hub, out)
    before = snapshot(out)
    proc, children = _stopped_mid_write(out, previous_hub)
    if to_group:  # a Ctrl-C in a terminal: every process of the foreground group gets SIGINT
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    os.kill(proc.pid, signal.SIGCONT)
    try:
        _, err = proc.communicate(timeout=120)  # a guard against a hang, not a speed check: CI may be busy
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"nttracks: stopped by {signal.Signals(signum).name}")
    # Every process of the run is gone (a zombie waiting for init to reap it is gone too).
    assert _wait(lambda: all(_state(pid) in (None, "Z") for pid in children), 60), children
    for what in ("staging", "lock"):
        assert not (tmp_path / f".hub.nttracks-{what}").exists(), what
    assert not list((tmp_path / ".hub.nttracks-work").rglob("*.part"))
    assert snapshot(out) == before
