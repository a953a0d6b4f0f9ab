"""The Ray executor, on a local Ray cluster of 2 CPU workers that this module starts: the demo hub it builds
is identical at every base to the local executor's, a worker killed mid-shard costs nothing but a retry, and
without Ray ``--executor ray`` says how to install it."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import yaml
from conftest import TOY_DEMO, snapshot
from test_cli import run_cli
from test_runs import check_hub, toy_config

from nttracks.config import config_for_genome, load_config, parse_config
from nttracks.errors import ModelError, OutputError, UsageError
from nttracks.estimates import makespan
from nttracks.executors import FamilyJob
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome
from nttracks.tiling import Shard

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A fresh local Ray with 3 CPUs (2 for the shared executor's workers, 1 for the command line's), its own
    temp dir, and this directory importable by its workers (the kill test's hook lives here)."""
    ray = pytest.importorskip("ray")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), previous) if p)
    try:
        ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False,
                 object_store_memory=100 * 2**20, _temp_dir=str(tmp_path_factory.mktemp("ray")))
        yield ray
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


def ray_executor(**options: object) -> object:
    from nttracks.ray_executor import RayExecutor

    return RayExecutor("cpu", **options)


@pytest.fixture(scope="module")
def executor(cluster: object) -> Iterator[object]:
    """One executor, so one pool of 2 CPU workers, shared by the tests."""
    with ray_executor(workers=2) as ex:
        yield ex


def bigwigs(out: Path, manifest: dict) -> dict[str, Path]:
    return {rel: out / rel for fam in manifest["families"].values() for rel in fam["tracks"].values()}


def assert_identical(local: Path, remote: Path, manifest: dict) -> None:
    """Every bigWig of the two hubs holds the same value (or none) at every base, and the same bytes."""
    for rel, path in bigwigs(local, manifest).items():
        a, b = pyBigWig.open(str(path)), pyBigWig.open(str(remote / rel))
        try:
            assert a.chroms() == b.chroms()
            for chrom, n in a.chroms().items():
                np.testing.assert_array_equal(np.array(a.values(chrom, 0, n)), np.array(b.values(chrom, 0, n)),
                                              err_msg=f"{rel} {chrom}")
        finally:
            a.close()
            b.close()
        assert path.read_bytes() == (remote / rel).read_bytes(), rel


def demo_config(batch_size: int) -> object:
    """configs/demo.yaml (elements, enhancer, sensitivity, attention on the shipped demo models) plus the toy
    family, with smaller batches (a shard of a few windows then runs no padding windows)."""
    data = yaml.safe_load(config_for_genome("demo").read_text())
    data["families"] = {"toy": dict(TOY_DEMO["families"]["toy"]), **data["families"]}
    for family in data["families"].values():
        family["batch_size"] = batch_size
    return parse_config(data, source=str(config_for_genome("demo")))


def test_demo_hub_is_identical_to_the_local_executors(executor: object, tmp_path: Path) -> None:
    """The demo config's families and the toy, in several shards a family."""
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t1000\t9000\nchr2\t150000\t158000\nchr3\t0\t1800\n")
    request = RunRequest(genome="demo", config=demo_config(batch_size=4), regions=bed, shard_bases=4_000)
    local = run_genome(replace(request, out=tmp_path / "local"))
    remote = run_genome(replace(request, out=tmp_path / "ray"), executor=executor)
    assert_identical(tmp_path / "local", tmp_path / "ray", local.manifest)
    for name, fam in local.manifest["families"].items():
        other = remote.manifest["families"][name]
        assert fam["shards"] > 3
        assert (other["checkpoint_digest"], other["seam_qc"]) == (fam["checkpoint_digest"], fam["seam_qc"])
    assert remote.manifest["device"] == "ray: 2 CPU workers"
    assert not list(tmp_path.glob(".ray.nttracks-staging*"))  # staging is gone; the work dir keeps the shards
    # fingerprints and resume as for local runs: a rerun with nothing changed computes nothing; with one
    # finished shard lost and a toy bigWig damaged, a rerun on Ray computes only that shard
    shards = sum(f["shards"] for f in local.manifest["families"].values())
    again = run_genome(replace(request, out=tmp_path / "ray"), executor=executor)
    assert (again.computed, again.reused, again.changed) == (0, shards, False)
    cached = sorted((tmp_path / ".ray.nttracks-work" / "shards" / "toy").glob("*.shard"))
    cached[len(cached) // 2].unlink()
    damaged = tmp_path / "ray" / local.manifest["families"]["toy"]["tracks"]["A"]
    damaged.write_bytes(damaged.read_bytes()[:100])
    again = run_genome(replace(request, out=tmp_path / "ray"), executor=executor)
    assert (again.computed, again.reused) == (1, shards - 1)
    assert_identical(tmp_path / "local", tmp_path / "ray", local.manifest)


class StallFirstShard:
    """Runs in the workers before each shard: records "shard-pid" in ``log``; the first shard to start
    anywhere (the one that creates ``gate``, and names itself in it) then hangs until its worker is killed."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self, shard: Shard) -> None:
        me = f"{shard.index}-{os.getpid()}"
        (self.log / me).touch()
        try:
            fd = os.open(self.log / "gate", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, me.encode())
        os.close(fd)
        time.sleep(120)


def kill_stalled_worker(log: Path, killed: list[tuple[int, int]]) -> None:
    """SIGKILL the worker process that holds the stalled shard, once it is stalled."""
    deadline, gate = time.monotonic() + 120, log / "gate"
    while not (gate.exists() and gate.read_text()):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    index, pid = (int(x) for x in gate.read_text().split("-"))
    os.kill(pid, signal.SIGKILL)
    killed.append((index, pid))


def starts(log: Path) -> list[tuple[int, int]]:
    return [(int(i), int(p)) for i, p in (f.name.split("-") for f in log.iterdir() if "gate" not in f.name)]


def test_a_worker_killed_mid_shard_is_restarted_and_the_output_is_identical(
    executor: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the object store (--no-shared-fs), the context-dependent toy (a lost halo would show)."""
    config = parse_config({"families": {"toy": {"model": "context_gc", "window": 1200, "overlap": 600,
                                                  "batch_size": 8}}})
    request = RunRequest(genome="demo", config=config, chroms=("chr2", "chr3"), shard_bases=40_000)
    local = run_genome(replace(request, out=tmp_path / "local"))
    log = tmp_path / "starts"
    log.mkdir()
    killed: list[tuple[int, int]] = []
    killer = threading.Thread(target=kill_stalled_worker, args=(log, killed))
    killer.start()
    monkeypatch.setattr(executor, "before_shard", StallFirstShard(log))
    monkeypatch.setattr(executor, "shared_fs", False)
    try:
        run_genome(replace(request, out=tmp_path / "ray"), executor=executor)
    finally:
        killer.join()
    assert len(killed) == 1
    index, pid = killed[0]
    assert any(i == index and p != pid for i, p in starts(log)), "the killed worker's shard was not retried"
    assert_identical(tmp_path / "local", tmp_path / "ray", local.manifest)


def test_the_command_line_runs_on_ray(cluster: object, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--executor ray from the command line (on the Ray this process started: one more worker, --gpus 1)."""
    config = tmp_path / "toy.yaml"
    config.write_text("families:\n  toy:\n    window: 1200\n    overlap: 600\n")
    out = tmp_path / "hub"
    code, _, err = run_cli(["genome", "demo", "--out", str(out), "--config", str(config), "--chroms", "chr3,chr2",
                            "--executor", "ray", "--device", "cpu", "--gpus", "1"], capsys)
    assert code == 0, err
    check_hub(out, open_genome("demo"), ("chr3", "chr2"))  # the toy's known answer at every base
    assert json.loads((out / "manifest.json").read_text())["device"] == "ray: 1 CPU worker"


def test_a_model_error_in_a_worker_is_the_error_a_local_run_gives(executor: object, tmp_path: Path) -> None:
    plan = plan_run(RunRequest(genome="demo", config=toy_config(), chroms=("chr3",)))
    fam = plan.families[0]
    job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, ("A", "C"), np.ones(2), fam.shards)
    with pytest.raises(ModelError, match="emits channels A, C, G, T, gc6 but the family declares A, C"):
        executor.run(job, plan.genome.codes, tmp_path / "work")


def test_a_work_directory_the_workers_cannot_see_is_refused(
    executor: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a cluster whose --out is not on a shared filesystem: the driver's probe file never reaches them."""
    plan = plan_run(RunRequest(genome="demo", config=toy_config(), chroms=("chr3",)))
    fam = plan.families[0]
    job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, fam.channels, np.ones(5), fam.shards)
    monkeypatch.setattr(Path, "touch", lambda self, *args, **kwargs: None)
    with pytest.raises(OutputError, match=r"is not visible on Ray node .*pass --no-shared-fs"):
        executor.run(job, plan.genome.codes, tmp_path / "work")
    monkeypatch.setattr(executor, "shared_fs", False)  # nothing to see: the outputs come back to the driver
    results = list(executor.run(job, plan.genome.codes, tmp_path / "work").results)
    assert [r.path.parent for r in results] == [tmp_path / "work"]


def test_shards_go_longest_first() -> None:
    from nttracks.ray_executor import longest_first

    plan = plan_run(RunRequest(genome="demo", config=toy_config(), shard_bases=10**9))
    fam = plan.families[0]
    job = FamilyJob("toy", fam.settings, fam.geometry, fam.plan, fam.channels, np.ones(5), fam.shards)
    assert [fam.shards[i].chrom for i in longest_first(job)] == ["chr1", "chr2", "chr3"]  # 250, 200, 1.8 kb


def test_makespan_hands_out_the_longest_first() -> None:
    assert makespan([3, 5, 3, 4, 3], 2) == 10  # 5+3+... by hand: A=5, B=4, B=7, A=8, B=10
    assert makespan([3, 5, 3, 4, 3], 1) == 18
    assert makespan([7, 1, 1], 8) == 7
    assert makespan([], 4) == 0


def test_dry_run_estimates_the_wall_time_on_n_gpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    request = RunRequest(genome="hg38", config=load_config(config_for_genome("hg38")), chroms=("chr21",),
                         cache_dir=tmp_path)
    plan = plan_run(replace(request, gpus=4), dry_run=True)
    one, four = plan.wall_seconds(1), plan.wall_seconds(4)
    total = sum(fam.shard_flops.sum() for fam in plan.families) / (989e12 * 0.4)
    assert one == pytest.approx(total)
    assert one / 4 <= four < one / 2
    assert "estimated wall time on 4 GPUs: " in plan.summary()
    code, out, err = run_cli(["genome", "hg38", "--chroms", "chr21", "--dry-run", "--gpus", "64"], capsys)
    assert code == 0, err
    assert "estimated wall time on 64 GPUs: " in out


def test_without_ray_the_message_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    out = tmp_path / "hub"
    for extra in ([], ["--dry-run"]):
        code, _, err = run_cli(["genome", "demo", "--out", str(out), "--executor", "ray", *extra], capsys)
        assert code == 2
        assert "pip install 'nttracks[ray]'" in err
    assert snapshot(out) is None
    assert not list(tmp_path.iterdir())
    with pytest.raises(UsageError, match=r"pip install 'nttracks\[ray\]'"):
        ray_executor()


def test_ray_options_need_the_ray_executor(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for args in (["--ray-address", "auto"], ["--no-shared-fs"], ["--gpus", "2"]):
        code, _, err = run_cli(["genome", "demo", "--out", str(tmp_path / "hub"), *args], capsys)
        assert code == 2
        assert "applies only to --executor ray" in err
    code, _, err = run_cli(["genome", "demo", "--out", str(tmp_path / "hub"), "--executor", "spark"], capsys)
    assert (code, "--executor 'spark' is not an executor; use local or ray" in err) == (2, True)


def test_a_ray_run_on_one_named_gpu_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    code, _, err = run_cli(["genome", "demo", "--dry-run", "--executor", "ray", "--device", "cuda:1"], capsys)
    assert code == 2
    assert "names one GPU, but Ray gives each worker its own; use --device cuda" in err
