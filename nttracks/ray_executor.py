"""The Ray executor: a family's shards scored on every GPU of a Ray cluster, with output identical to local.

``RayExecutor.run`` has ``LocalExecutor.run``'s interface and runs the same shard function
(``executors.run_shard``). One Ray actor per GPU (on a cluster without GPUs, one per CPU), started once
per run, loads each family's model once; the driver hands out shards longest first, at most two in
flight per worker, and ships each shard's sequence through the object store (so only the driver reads
the FASTA). A worker
writes its shard's output file into the run's work directory, which every node must see at the same
path; with ``shared_fs=False`` the file's bytes come back through the object store and the driver
writes them. Results are yielded in genome order, so the driver writes the bigWigs as on a local run.

A worker that dies (its process killed, its node lost) is restarted by Ray, which loads the model
again and retries the shards it held; a shard file is written atomically, so a half-written one never
counts. Ray is optional (``pip install 'nttracks[ray]'``) and imported only here, only when used.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExecutorError, NttracksError, OutputError, UsageError
from .executors import FamilyJob, FamilyScores, ReadCodes, ShardResult, load_model, run_shard
from .families import LoadedModel, get_family
from .tiling import Shard

IN_FLIGHT = 2  # shards queued per worker: the next one's sequence is there when the current one ends
RETRIES = 3  # times a lost worker is restarted (and its shards retried) before the run fails


def require_ray() -> Any:
    """The ``ray`` module, or a UsageError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray, which is not installed here: pip install 'nttracks[ray]' "
            "(on every node of the cluster too), or run with --executor local"
        ) from None
    return ray


def check_ray(device: str, workers: int | None = None) -> Any:
    """The ``ray`` module, once ``device`` and ``workers`` are checked to make sense for a Ray run."""
    ray = require_ray()
    if device.split(":")[0] not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {device!r} is not a device; use auto, cpu or cuda")
    if ":" in device:
        raise UsageError(
            f"--device {device} names one GPU, but Ray gives each worker its own; use --device cuda "
            "(and --gpus N to use N of them)"
        )
    if workers is not None and workers < 1:
        raise UsageError(f"--gpus {workers}: give at least 1")
    return ray


def dry_run_gpus(address: str | None) -> int | None:
    """The GPUs a Ray run would use, for the dry run's wall-time estimate (None: none): a running cluster's
    (``address``, or $RAY_ADDRESS), asked without starting anything; else this machine's."""
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS")
    if address is None:
        import torch

        return torch.cuda.device_count() or None
    started = not ray.is_initialized()
    if started:
        _connect(ray, address)
    try:
        return int(ray.cluster_resources().get("GPU", 0)) or None
    finally:
        if started:
            ray.shutdown()


class RayExecutor:
    """Scores shards on a Ray cluster: one worker (actor) per GPU, or per CPU on a cluster without GPUs.

    device: auto (GPUs when the cluster has them, else CPUs), cuda, or cpu.
    address: the cluster (``host:6379``, ``ray://host:10001``, ``auto``); None: $RAY_ADDRESS, else the
        cluster ``ray start`` started on this machine, else a Ray started here for this run. When Ray is
        already initialized in this process, that connection is used (and left open).
    workers: use at most this many workers (default: every GPU, or every CPU).
    shared_fs: workers write shard files into the work directory (which every node must see); False:
        the files' bytes come back through the object store. Read at each ``run``.
    before_shard(shard): called in the worker before each shard (instrumentation; tests stall shards with it).
        Read as each shard is handed out.
    """

    def __init__(
        self,
        device: str = "auto",
        *,
        address: str | None = None,
        workers: int | None = None,
        shared_fs: bool = True,
        retries: int = RETRIES,
        before_shard: Callable[[Shard], Any] | None = None,
    ) -> None:
        self.ray = check_ray(device, workers)
        self.requested = device
        self.address = address
        self.workers = workers
        self.shared_fs = shared_fs
        self.retries = retries
        self.before_shard = before_shard
        self._started = False
        self._placement: tuple[str, int] | None = None  # (device kind, workers) once started
        self._actors: list[Any] = []

    @property
    def device(self) -> str:
        """What the manifest records as the run's device."""
        if self._placement is None:
            return f"ray ({self.requested})"
        kind, n = self._placement
        return f"ray: {n} {'GPU' if kind == 'cuda' else 'CPU'} worker{'s' * (n != 1)}"

    def close(self) -> None:
        """Stop the workers, and shut Ray down when this executor started it."""
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []
        if self._started:
            self.ray.shutdown()
            self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, job: FamilyJob, read: ReadCodes, work: Path, progress: Callable[[int], Any] | None = None
    ) -> FamilyScores:
        """Have the workers (started on the first call, one per GPU) load the family's model, then (lazily,
        as the results are consumed) score every shard, longest first, yielding the results in genome order."""
        ray = self.ray
        actors = self._pool()[: max(1, len(job.shards))]
        work = Path(work).absolute()
        work.mkdir(parents=True, exist_ok=True)
        job_ref, key = ray.put(job), uuid.uuid4().hex
        digest, label = self._check_workers(actors, key, job_ref, job, work)
        return FamilyScores(digest, label, self._results(actors, key, job_ref, job, read, work, progress))

    def _pool(self) -> list[Any]:
        """The workers: one per GPU of the cluster (at most ``workers``), or one per CPU without GPUs."""
        if self._actors:
            return self._actors
        ray = self.ray
        kind, available = self._kind()
        if available < 1:
            raise UsageError("the Ray cluster has no CPU to run a worker on; add a node (ray start --address HEAD)")
        n = min(available, self.workers or available)
        options: dict[str, Any] = {"max_restarts": self.retries, "max_task_retries": self.retries, "num_cpus": 1}
        if kind == "cuda":
            options["num_gpus"] = 1
        actor = ray.remote(_Worker).options(**options)
        self._actors = [actor.remote(kind) for _ in range(n)]
        self._placement = (kind, n)
        return self._actors

    @property
    def device_kind(self) -> str:
        """cuda or cpu: what the workers compute on (part of every shard's fingerprint, so it is known
        before any worker starts)."""
        return self._placement[0] if self._placement is not None else self._kind()[0]

    def _kind(self) -> tuple[str, int]:
        """(cuda or cpu, how many of them the cluster has), connecting to Ray if need be."""
        ray = self.ray
        if not ray.is_initialized():
            _connect(ray, self.address)
            self._started = True
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if self.requested == "cuda" and not gpus:
            raise UsageError(
                f"--device cuda: the Ray cluster has no GPU (it has {cpus} CPUs); start GPU workers "
                "(ray start --address HEAD --num-gpus N) or use --device cpu"
            )
        kind = "cuda" if gpus and self.requested != "cpu" else "cpu"
        return kind, gpus if kind == "cuda" else cpus

    def _check_workers(
        self, actors: list[Any], key: str, job_ref: Any, job: FamilyJob, work: Path
    ) -> tuple[str, str]:
        """Every worker loaded the same weights and (with a shared filesystem) sees the work directory."""
        probe = work / f".probe-{uuid.uuid4().hex}"
        probe.touch()
        try:
            refs = [a.info.remote(key, job_ref, str(probe) if self.shared_fs else None) for a in actors]
            infos = [self._get(ref, job, None) for ref in refs]
        finally:
            probe.unlink(missing_ok=True)
        for digest, _, node, sees in infos:
            if not sees:
                raise OutputError(
                    f"the work directory {work} is not visible on Ray node {node}: put --out on a filesystem "
                    "every node mounts at the same path, or pass --no-shared-fs"
                )
            if digest != infos[0][0]:
                raise ExecutorError(
                    f"the Ray workers loaded different {job.family} weights (digest {infos[0][0]} on "
                    f"{infos[0][2]}, {digest} on {node}); give every node the same checkpoint"
                )
        return infos[0][0], infos[0][1]

    def _results(
        self,
        actors: list[Any],
        key: str,
        job_ref: Any,
        job: FamilyJob,
        read: ReadCodes,
        work: Path,
        progress: Callable[[int], Any] | None,
    ) -> Iterator[ShardResult]:
        ray = self.ray
        pending = longest_first(job)
        running: dict[Any, tuple[int, int, Any]] = {}  # ref -> (worker, shard index, its sequence's ref)
        done: dict[int, ShardResult] = {}
        target = None if not self.shared_fs else str(work)

        def submit(worker: int) -> None:
            index = pending.pop(0)
            shard = job.shards[index]
            lo, hi = _span(job, shard)
            codes = ray.put(read(shard.chrom, lo, hi))
            ref = actors[worker].score.remote(key, job_ref, index, codes, lo, target, self.before_shard)
            running[ref] = (worker, index, codes)

        for _ in range(IN_FLIGHT):
            for worker in range(len(actors)):
                if pending:
                    submit(worker)
        following = 0
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            worker, index, _codes = running.pop(ref)
            shard = job.shards[index]
            got = self._get(ref, job, shard)
            done[index] = got if target is not None else _save(work, job, shard, *got)
            if progress is not None:
                progress(shard.bases)
            if pending:
                submit(worker)
            while following in done:
                yield done.pop(following)
                following += 1

    def _get(self, ref: Any, job: FamilyJob, shard: Shard | None) -> Any:
        """``ray.get``, with the worker's own nttracks error raised as it is and a lost worker explained."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, NttracksError):
                raise cause from None
            what = f"shard {shard.name}" if shard is not None else f"loading the {job.family} model"
            raise ExecutorError(f"a Ray worker failed {what}: {type(cause).__name__}: {cause}") from exc
        except ray.exceptions.RayActorError as exc:
            what = f"shard {shard.name} ({_where(job, shard)})" if shard is not None else f"the {job.family} model"
            raise ExecutorError(
                f"a Ray worker was lost more often than its {self.retries} restarts allow (last on {what}), so "
                "the run stopped and nothing was published. Check the workers' memory and logs "
                "(/tmp/ray/session_latest/logs on each node)"
            ) from exc


class _Worker:
    """A Ray actor: the family's model, loaded once on this worker's device (the GPU Ray assigned, or CPU).

    The model loads on the first call for a job (``info``, at the start of each family), and again on the
    first call after Ray restarted a lost worker, from the job each call names (Ray keeps it in the node's
    object store); ``key`` names the job.
    """

    def __init__(self, kind: str) -> None:
        import torch

        if kind == "cpu":
            torch.set_num_threads(1)  # one CPU per worker, as Ray reserved it
        self.device = torch.device(kind)
        self.key: str | None = None
        self.loaded: LoadedModel | None = None

    def _load(self, key: str, job: FamilyJob) -> LoadedModel:
        if self.key != key or self.loaded is None:
            self.key, self.loaded = None, None  # the previous family's model goes before the next one loads
            self.loaded, self.key = load_model(job, self.device), key
        return self.loaded

    def info(self, key: str, job: FamilyJob, probe: str | None) -> tuple[str, str, str, bool]:
        """Load the model: (digest, label, where this worker runs, whether it sees the file ``probe``)."""
        loaded = self._load(key, job)
        node = f"{socket.gethostname()} (pid {os.getpid()})"
        return loaded.digest, loaded.label, node, probe is None or Path(probe).exists()

    def score(
        self,
        key: str,
        job: FamilyJob,
        index: int,
        codes: np.ndarray,
        lo: int,
        work: str | None,
        before_shard: Callable[[Shard], Any] | None = None,
    ) -> Any:
        """Score shard ``index`` from its sequence ``codes`` (from base ``lo``): the ShardResult of the file
        written into ``work``, or (with work None) the file's bytes and its seam sums."""
        model = self._load(key, job).model
        shard = job.shards[index]
        if before_shard is not None:
            before_shard(shard)

        def read(chrom: str, start: int, end: int) -> np.ndarray:
            return codes[start - lo : end - lo]

        if work is not None:
            return run_shard(model, job, shard, read, Path(work), self.device)
        with tempfile.TemporaryDirectory(prefix="nttracks-shard-") as tmp:
            result = run_shard(model, job, shard, read, Path(tmp), self.device)
            return result.path.read_bytes(), result.seam_sum, result.seam_bases


def longest_first(job: FamilyJob) -> list[int]:
    """The job's shard indices, the costliest first (forward FLOPs, else window bases); ties in genome order."""
    family = get_family(job.family)
    lengths = job.plan.window_lengths()
    costs = [(family.flops(job.settings, lengths[s.rows]), int(lengths[s.rows].sum())) for s in job.shards]
    return sorted(range(len(job.shards)), key=lambda i: (-costs[i][0], -costs[i][1], i))


def _span(job: FamilyJob, shard: Shard) -> tuple[int, int]:
    """The bases the shard's windows read (as ``score_shard`` reads them)."""
    plan, rows = job.plan, shard.rows
    return int(plan.start[rows[0]]), int(plan.end[rows].max())


def _where(job: FamilyJob, shard: Shard) -> str:
    lo, hi = _span(job, shard)
    return f"{shard.chrom}:{lo + 1:,}-{hi:,}"


def _save(
    work: Path, job: FamilyJob, shard: Shard, data: bytes, seam_sum: np.ndarray, seam_bases: int
) -> ShardResult:
    """Write a shard file that came back through the object store, atomically, as a worker would
    (named by the shard's key: ``FamilyJob.file_name``)."""
    path = work / job.file_name(shard)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ShardResult(shard, path, seam_sum, seam_bases)


def _connect(ray: Any, address: str | None) -> None:
    import logging

    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as exc:
        where = f"at {address}" if address else "($RAY_ADDRESS or this machine's)"
        raise UsageError(
            f"cannot connect to the Ray cluster {where}: {exc}; start it with `ray start --head` (see the "
            "README's cluster section) or fix --ray-address"
        ) from None
