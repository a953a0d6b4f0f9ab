"""Parallel bigWig writers: files both pyBigWig and pybbi read back, with gaps absent and errors typed."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import bbi
import numpy as np
import pyBigWig
import pytest

from nttracks.bigwig import BigWigWriters, WriterDiedError
from nttracks.errors import OutputError

SIZES = [("chr2", 500), ("chr1", 300), ("chrM", 40)]  # genome order, not sorted


def _values(n: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, channels)) / 255).astype(np.float32)


def _read(path: Path, chrom: str, size: int) -> np.ndarray:
    with pyBigWig.open(str(path)) as bw:
        return np.asarray(bw.values(chrom, 0, size), dtype=np.float32)


def test_write_and_read_back(tmp_path: Path) -> None:
    paths = [tmp_path / f"ch{j}.bw" for j in range(3)]
    runs = [("chr2", 10, _values(100, 3, 1)), ("chr2", 110, _values(50, 3, 2)),  # contiguous adds
            ("chr2", 300, _values(200, 3, 3)), ("chr1", 0, _values(7, 3, 4))]
    with BigWigWriters(paths, SIZES, processes=2) as writers:
        for chrom, start, values in runs:
            writers.add(chrom, start, values)
        writers.add("chr1", 7, np.zeros((0, 3), dtype=np.float32))  # nothing to add: ignored
    assert writers.counts.tolist() == [357] * 3
    for j, path in enumerate(paths):
        with pyBigWig.open(str(path)) as bw:
            assert list(bw.chroms().items()) == SIZES
            assert bw.header()["nLevels"] > 0  # zoom levels present
            intervals = bw.intervals("chr2")
            assert len(intervals) == 357 - 7
        assert list(bbi.chromsizes(str(path)).items()) == SIZES
        info = bbi.info(str(path))
        assert math.isfinite(info["summary"]["mean"])
        assert info["summary"]["basesCovered"] == 357
        for chrom, size in SIZES:
            expected = np.full(size, np.nan, dtype=np.float32)
            for c, start, values in runs:
                if c == chrom:
                    expected[start : start + len(values)] = values[:, j]
            got = _read(path, chrom, size)
            assert np.array_equal(got, expected, equal_nan=True)
            fetched = bbi.fetch(str(path), chrom, 0, size, missing=np.nan)
            assert np.array_equal(fetched.astype(np.float32), expected, equal_nan=True)
        # Bases not added are absent: the gaps hold no stored value (not 0, not NaN).
        with pyBigWig.open(str(path)) as bw:
            assert bw.intervals("chr2", 0, 10) is None
            assert bw.intervals("chr2", 160, 300) is None
            assert bw.intervals("chrM") is None


def test_more_channels_than_processes(tmp_path: Path) -> None:
    paths = [tmp_path / f"t{j}.bw" for j in range(5)]
    values = _values(40, 5, 7)
    with BigWigWriters(paths, SIZES, processes=2) as writers:
        writers.add("chr1", 100, values)
    for j, path in enumerate(paths):
        assert np.array_equal(_read(path, "chr1", 300)[100:140], values[:, j])


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_shard_files_fed_to_the_writers_give_the_files_values_give(tmp_path: Path, processes: int) -> None:
    """add_shard (each writer maps its channels from the file) writes byte-identical bigWigs to add()
    of the shard's values; runs longer than a read chunk are read in pieces."""
    from nttracks import shards
    from nttracks.stitch import quantum_counts, quantum_steps

    quanta = np.array([1 / 255, 1 / 100, 0.0, 1 / 255, 0.5])  # channel 2 unquantized: stored as float32
    written = []
    for index, (chrom, runs) in enumerate([("chr2", [[10, 260], [300, 500]]), ("chr1", [[0, 300]])]):
        runs = np.array(runs)
        v = _values(int((runs[:, 1] - runs[:, 0]).sum()), 5, index)
        counts = np.where(quanta > 0, quantum_counts(v, quantum_steps(quanta)), v)
        written.append(shards.write_shard(tmp_path / f"{index}.shard", family="f", chrom=chrom, index=index,
                                          runs=runs, channels=tuple("abcde"), quanta=quanta, counts=counts))
    by_file, by_values = tmp_path / "file", tmp_path / "values"
    for d in (by_file, by_values):
        d.mkdir()
    with BigWigWriters([by_file / f"{c}.bw" for c in "abcde"], SIZES, processes=processes) as writers:
        for path in written:
            writers.add_shard(path)
    with BigWigWriters([by_values / f"{c}.bw" for c in "abcde"], SIZES, processes=processes) as writers:
        for path in written:
            shard = shards.read_shard(path)
            for start, values in shard.pieces():
                writers.add(shard.chrom, start, values)
    assert writers.counts.tolist() == [750] * 5
    for c in "abcde":
        assert (by_file / f"{c}.bw").read_bytes() == (by_values / f"{c}.bw").read_bytes()
    header = shards.read_shard_header(written[0])
    pieces = list(header.pieces([4, 1], chunk=64))  # what a writer of channels e and b reads
    assert [start for start, _ in pieces] == [10, 74, 138, 202, 300, 364, 428, 492]
    expected = shards.read_shard(written[0]).values[:, [4, 1]]
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), expected)


def test_shards_out_of_order_raise_before_anything_is_sent(tmp_path: Path) -> None:
    from nttracks import shards

    path = shards.write_shard(tmp_path / "s.shard", family="f", chrom="chr1", index=0, runs=np.array([[0, 10]]),
                              channels=("a",), quanta=np.array([1 / 255]), counts=np.zeros((10, 1), np.float32))
    with BigWigWriters([tmp_path / "a.bw"], SIZES) as writers:
        writers.add("chr1", 20, _values(5, 1, 0))
        with pytest.raises(ValueError, match=r"chr1:0-10 is out of order"):
            writers.add_shard(path)
    assert writers.counts.tolist() == [5]


def test_out_of_order_and_overlapping_adds_raise(tmp_path: Path) -> None:
    with BigWigWriters([tmp_path / "a.bw"], SIZES, processes=1) as writers:
        writers.add("chr1", 20, _values(10, 1, 0))
        with pytest.raises(ValueError, match="chr1:25"):
            writers.add("chr1", 25, _values(10, 1, 0))  # overlaps the last entry
        with pytest.raises(ValueError, match="chr2:0"):
            writers.add("chr2", 0, _values(10, 1, 0))  # chr2 comes before chr1
        with pytest.raises(ValueError, match="runs past the chromosome end"):
            writers.add("chr1", 295, _values(10, 1, 0))
        with pytest.raises(ValueError, match="2 channels"):
            writers.add("chr1", 40, _values(10, 2, 0))
        with pytest.raises(ValueError, match="chrX is not among"):
            writers.add("chrX", 0, _values(10, 1, 0))
        with pytest.raises(ValueError, match="NaN"):
            writers.add("chr1", 40, np.full((10, 1), np.nan, dtype=np.float32))
        writers.add("chrM", 0, _values(40, 1, 0))  # the whole of the last chromosome
    assert _read(tmp_path / "a.bw", "chrM", 40).shape == (40,)


def test_empty_channel_is_an_error(tmp_path: Path) -> None:
    paths = [tmp_path / "a.bw", tmp_path / "b.bw"]
    with pytest.raises(OutputError, match=r"a\.bw, b\.bw"), BigWigWriters(paths, SIZES, processes=2):
        pass
    assert list(tmp_path.iterdir()) == []


def test_exception_in_block_aborts(tmp_path: Path) -> None:
    with pytest.raises(KeyError), BigWigWriters([tmp_path / "a.bw"], SIZES, processes=1) as writers:
        writers.add("chr1", 0, _values(5, 1, 0))
        raise KeyError("stop")
    assert all(not proc.is_alive() for proc in writers._procs)


def test_unwritable_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(OutputError, match=re.escape(str(missing))) as info:
        with BigWigWriters([missing / "a.bw"], SIZES, processes=1) as writers:
            writers.add("chr1", 0, _values(5, 1, 0))
    assert "No such file or directory" in str(info.value) and "a.bw" in str(info.value)


def test_writer_killed_is_reported(tmp_path: Path) -> None:
    writers = BigWigWriters([tmp_path / "a.bw"], SIZES, processes=1)
    writers.add("chr1", 0, _values(5, 1, 0))
    writers._procs[0].kill()
    writers._procs[0].join()
    with pytest.raises(OutputError, match="died without a report"):
        writers.close()


FAILING_WRITER = """
import numpy as np
from nttracks.bigwig import BigWigWriters, WriterDiedError
from nttracks.errors import OutputError

if __name__ == "__main__":
    writers = BigWigWriters([{path!r}], [("chr1", 10_000_000)], processes=1, queue_size=2)
    try:
        for start in range(0, 10_000_000, 200_000):
            writers.add("chr1", start, np.zeros((200_000, 1), np.float32))
        writers.close()
    except OutputError as exc:
        print("OutputError:", exc)
"""


def test_failed_writer_does_not_block_exit(tmp_path: Path) -> None:
    """Large regions queued for a dead writer must not keep the process from exiting."""
    script = tmp_path / "failing.py"
    script.write_text(FAILING_WRITER.format(path=str(tmp_path / "missing" / "a.bw")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "OutputError:" in done.stdout and "No such file or directory" in done.stdout


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=re.escape(str(tmp_path))), BigWigWriters(
            [tmp_path / "a.bw"], SIZES, processes=1
        ) as writers:
            writers.add("chr1", 0, _values(5, 1, 0))
    finally:
        tmp_path.chmod(0o700)


def test_writer_failure_after_many_adds(tmp_path: Path) -> None:
    """A writer that dies early is noticed while its queue is full, not only at close."""
    missing = tmp_path / "missing"
    with pytest.raises(OutputError, match=re.escape(str(missing))), BigWigWriters(
        [missing / "a.bw"], [("chr1", 100_000)], processes=1, queue_size=2
    ) as writers:
        for start in range(0, 100_000, 1000):
            writers.add("chr1", start, _values(1000, 1, start))


def test_progress_counts_finished_files(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    paths = [tmp_path / f"t{j}.bw" for j in range(3)]
    with BigWigWriters(paths, SIZES, processes=2, progress=lambda done, total: calls.append((done, total))) as w:
        w.add("chr1", 0, _values(50, 3, 0))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_writer_killed_while_finishing_names_its_files(tmp_path: Path) -> None:
    paths = [tmp_path / f"t{j}.bw" for j in range(3)]
    writers = BigWigWriters(paths, SIZES, processes=2)
    writers.add("chr1", 0, _values(5, 3, 0))
    os.kill(writers._procs[1].pid, signal.SIGKILL)  # the writer of t1.bw
    writers._procs[1].join()
    with pytest.raises(WriterDiedError, match=r"t1\.bw.*died without a report \(killed by SIGKILL\)") as info:
        writers.close()
    assert "t0.bw" not in str(info.value) and "t2.bw" not in str(info.value)
    assert all(not proc.is_alive() for proc in writers._procs)


def test_writers_ignore_sigint(tmp_path: Path) -> None:
    """A Ctrl-C reaches every process of the terminal's group: the parent decides, the writers go on."""
    paths = [tmp_path / f"t{j}.bw" for j in range(2)]
    values = _values(100, 2, 3)
    with BigWigWriters(paths, SIZES, processes=2) as writers:
        writers.add("chr2", 0, values)
        for proc in writers._procs:
            os.kill(proc.pid, signal.SIGINT)
        writers.add("chr1", 0, values)
    for j, path in enumerate(paths):
        assert np.array_equal(_read(path, "chr1", 300)[:100], values[:, j])


ORPHANED_WRITERS = """
import json, os, signal, sys
import numpy as np
from nttracks.bigwig import BigWigWriters

if __name__ == "__main__":
    writers = BigWigWriters([{a!r}, {b!r}], [("chr1", 1000)], processes=2)
    writers.add("chr1", 0, np.zeros((10, 2), np.float32))
    print(json.dumps([p.pid for p in writers._procs]), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_writers_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = tmp_path / "orphans.py"
    script.write_text(ORPHANED_WRITERS.format(a=str(tmp_path / "a.bw"), b=str(tmp_path / "b.bw")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = json.loads(done.stdout.splitlines()[0])

    def running(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie waiting to be reaped has stopped running
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True

    for _ in range(200):
        if not any(running(pid) for pid in pids):
            break
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids), pids


def test_run_keeps_the_shard_outputs_when_a_writer_dies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scored shards are the costly part of a run: a writer that dies must not throw them away."""
    from conftest import snapshot

    from nttracks.config import parse_config
    from nttracks.planning import RunRequest
    from nttracks.runs import run_genome

    finish = BigWigWriters.close

    def close_after_a_crash(self: BigWigWriters) -> None:
        os.kill(self._procs[0].pid, signal.SIGKILL)
        self._procs[0].join()
        finish(self)

    monkeypatch.setattr(BigWigWriters, "close", close_after_a_crash)
    out = tmp_path / "hub"
    (out / "hub.txt").parent.mkdir()
    (out / "hub.txt").write_text("hub previous\n")
    (out / "manifest.json").write_text('{"nttracks_version": "0.1.0"}')  # a hub nttracks published
    before = snapshot(out)
    config = parse_config({"families": {"toy": {"window": 1200, "overlap": 600}}}, source="<test>")
    work = tmp_path / ".hub.nttracks-work"
    with pytest.raises(WriterDiedError, match=re.escape(f"kept in {work}")) as info:
        run_genome(RunRequest(genome="demo", config=config, out=out, chroms=("chr2", "chr3")))
    assert "killed by SIGKILL" in str(info.value) and "unchanged" in str(info.value)
    assert any((work / "shards" / "toy").glob("*.shard"))  # the shard outputs scored before the writer died
    assert not (tmp_path / ".hub.nttracks-staging").exists()
    assert not (tmp_path / ".hub.nttracks-lock").exists()
    assert snapshot(out) == before
