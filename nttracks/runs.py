"""The run: plan -> fingerprints -> executor -> writers -> hub -> publish.

``run_genome`` plans first (``planning.plan_run``: nothing is written before every input is checked),
takes the lock on ``--out`` and fingerprints every shard (``fingerprints``). The hub's work directory
(``nightly``) keeps finished shards by key, so a run computes only the shards it does not find there:
an interrupted run resumes, and a changed chromosome, model or setting recomputes only the shards it
touches. A family whose build key is unchanged keeps its published bigWigs (hard-linked into the new
hub, never rewritten); the others are written from their shards in genome order. When every input
matches the published hub's manifest, the run does nothing at all: no inference, no file written.

The hub is built in a staging directory beside ``--out`` and published only when complete and valid
(``hubdir.publish``: bigWigs first, hub.txt last, unchanged files left as they are, stale ones removed).
On any error the staging directory is removed and ``--out`` is left as it was; finished shards stay
in the work directory for the next run. Each run appends to the work directory's log and records its
outcome in ``last-run.json`` (``nttracks status`` reads both).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from . import __version__
from .bigwig import BigWigWriters
from .catalog import Catalog
from .errors import ModelError, NttracksError, OutputError, UsageError
from .executors import FamilyJob, ShardResult, make_executor
from .families import Summary
from .fingerprints import OUTPUT_FORMAT, FamilyKeys, FingerprintedFamily, fingerprint_plan, hub_key
from .genome import Genome
from .hubbuild import check_before_publish, hub_spec_json
from .hubdir import (
    MANIFEST,
    fresh_dir,
    hub_lock,
    link_or_copy,
    publish,
    published_files,
    read_manifest,
    sibling,
    written_by_nttracks,
)
from .hubs import AssemblySpec, BigWigTrack, FamilyRun, HubSpec, write_hub
from .nightly import FILE_ONLY, RESULTS, SHARDS, diff_html, nightly_diff, now, run_log, unit_records, write_last_run
from .planning import FamilyPlan, RunPlan, RunRequest, plan_run
from .shards import ShardCache, read_header, read_shard
from .tiling import Shard
from .twobit import write_twobit

log = logging.getLogger("nttracks")
MODEL_RECORD = "model.json"  # beside a family's cached shards: the digest and label of the model that made them


class ProgressBar(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[str, int], ProgressBar]
"""progress(description, total_bases) -> a bar with update(n) and close() (tqdm fits)."""


@dataclass
class RunResult:
    """What a run did. changed: False when every input was unchanged (nothing written); computed and
    reused: shards scored by this run and shards found finished; files: the files it published."""

    out: Path
    manifest: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    changed: bool = True
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0


def check_out(out: Path, *, force: bool = False) -> None:
    """--out must be a new directory, an empty one, or a hub nttracks wrote (unless ``force``)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; pass a directory (it is created when missing)")
    if force or not out.is_dir() or written_by_nttracks(out) or not any(out.iterdir()):
        return
    what = "a hub nttracks did not write" if (out / "hub.txt").exists() else "files nttracks did not write"
    raise UsageError(
        f"--out {out} holds {what}; pass a new or empty directory, or --force to write the hub into it "
        "(files nttracks does not publish are left alone, files of the same name are replaced)"
    )


def run_genome(
    request: RunRequest,
    *,
    progress: ProgressFactory | None = None,
    executor: Any = None,
    download_progress: Callable[[int, int | None], None] | None = None,
) -> RunResult:
    """Build the hub for ``request`` and publish it atomically into ``request.out``; compute only what
    changed since the hub's last build (see the module docstring).

    executor: what scores the shards (default: ``make_executor(request)``: local on ``request.device``, or
        Ray; one made here is closed at the end).
    download_progress(done, total): bytes of a registered genome's download, when one is needed.
    """
    if request.out is None:
        raise UsageError("no output directory: pass --out DIR")
    out = Path(request.out)
    check_out(out, force=request.force)
    t0 = time.perf_counter()
    run = plan_run(request, download_progress=download_progress)
    for warning in run.warnings:
        log.warning("%s", warning)
    own = executor is None
    if executor is None:
        executor = make_executor(request)
    staging, work = sibling(out, "staging"), sibling(out, "work")
    with hub_lock(out), _closing(executor if own else None):
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the work directory {work}: {exc.strerror or exc}") from exc
        record: dict[str, Any] = {"started": now(), "pid": os.getpid(), "result": "running", "out": str(out)}
        write_last_run(work, record)
        with run_log(work):
            log.info("run started on %s: genome %s, families %s", out, run.genome_name,
                     ", ".join(f.name for f in run.families))
            stage = ["building"]
            try:
                result = _build_and_publish(run, request, executor, out, staging, work, progress, stage)
            except BaseException as exc:
                error = _explain(exc, out, staging, work, stage[0])
                if isinstance(exc, Exception):
                    why = str(error if error is not None else exc) or type(exc).__name__
                else:  # Ctrl-C, or SIGTERM as the CLI raises it
                    signum = getattr(exc, "signum", None)
                    why = f"stopped by signal {signum}" if signum else f"stopped ({type(exc).__name__})"
                record.update(result="failed", finished=now(), seconds=round(time.perf_counter() - t0, 3), error=why)
                write_last_run(work, record)
                # for the log file: the caller reports the error itself (the CLI prints it once)
                log.error("run failed: %s", why, extra={FILE_ONLY: True})
                if error is not None:
                    raise error from exc
                raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            result.seconds = round(time.perf_counter() - t0, 3)
            record.update(result="built" if result.changed else "up to date", finished=now(),
                          seconds=result.seconds, computed=result.computed, reused=result.reused,
                          published=len(result.files))
            write_last_run(work, record)
            log.info("run finished in %.1f s: %s (%d shards computed, %d reused, %d files published)",
                     result.seconds, RESULTS[record["result"]], result.computed, result.reused, len(result.files))
    return result


@contextmanager
def _closing(executor: Any) -> Iterator[None]:
    """Close ``executor`` (a Ray executor shuts down the Ray it started) when it has a close()."""
    try:
        yield
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()


def _explain(exc: BaseException, out: Path, staging: Path, work: Path, stage: str) -> NttracksError | None:
    """The error a user reads for ``exc`` (None: raise it as it is)."""
    if stage == "publishing":
        where = (f"publishing into {out} was interrupted part way: the hub there is valid but may mix "
                 "files of the previous and the new build until the next run, which finishes it")
    else:
        where = f"nothing was published: {out} is unchanged (the previous hub is intact)"
    kept = f"finished shards are kept in {work} and the next run resumes from them"
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        target = exc.filename or staging
        if exc.errno == errno.ENOSPC or "No space left" in str(exc):
            return OutputError(f"the disk is full ({what}: {target}); {where}; {kept}. Free disk space, then run again")
        return OutputError(f"writing the hub failed ({what}: {target}); {where}; {kept}. "
                           "Fix the permissions or free disk space, then run again")
    if isinstance(exc, OutputError):
        full = " (the disk is full)" if "No space left" in str(exc) else ""
        return type(exc)(f"{exc}{full}; {where}; {kept}")
    return None


def _build_and_publish(
    run: RunPlan,
    request: RunRequest,
    executor: Any,
    out: Path,
    staging: Path,
    work: Path,
    progress: ProgressFactory | None,
    stage: list[str],
) -> RunResult:
    genome = run.genome
    if genome is None:
        raise UsageError("a run needs the genome's FASTA; only a dry run plans from chromosome sizes")
    previous = read_manifest(out)
    cache = ShardCache(work / SHARDS)
    leftovers = cache.clean()
    if leftovers:
        log.info("removed %d partial shard files an interrupted run left", len(leftovers))
    device_type = str(
        getattr(executor, "device_kind", None)  # an executor whose device is known only once it starts (Ray)
        or getattr(getattr(executor, "device", None), "type", None)
        or getattr(executor, "device", "cpu")
    )
    fams, catalog, hub_genome = fingerprint_plan(run, device_type)
    key = hub_key(request, catalog, hub_genome, fams)
    if _up_to_date(previous, key, out, fams):
        log.info("every input is unchanged since the build of %s: nothing to do", previous.get("created"))
        return RunResult(out, previous, [], changed=False, reused=sum(len(f.keys.shards) for f in fams))
    fresh_dir(staging)
    started = datetime.now(timezone.utc)
    tracks: list[BigWigTrack] = []
    family_runs: list[FamilyRun] = []
    manifest_families: dict[str, Any] = {}
    computed = reused = 0
    rebuilt: set[str] = set()  # families whose bigWigs this run wrote (the others are kept as they were)
    for fb in fams:
        built = _build_family(fb, catalog, genome, executor, out, staging, cache, previous, progress)
        computed, reused = computed + built.computed, reused + built.reused
        if built.rebuilt:
            rebuilt.add(fb.fam.name)
        fam = fb.fam
        summary = _summarize(fam, staging, fb.rel, hub_genome, genome, run, _driver_device(executor))
        description = fam.family.describe(fam.settings, fam.geometry, fam.plan.overlap)
        family_runs.append(FamilyRun(fam.name, built.label, fb.keys.weights,
                                     yaml.safe_dump(description, sort_keys=False), built.seam_qc,
                                     summary.html if summary is not None else "", fam.geometry.window,
                                     fam.plan.stride, fam.settings.stitch))
        tracks += [BigWigTrack(fam.name, ch, r) for ch, r in zip(fam.channels, fb.rel, strict=True)]
        entry = {
            "model": built.label,
            "checkpoint_digest": fb.keys.weights,
            "window": fam.geometry.window,
            "stride": fam.plan.stride,
            "stitch": fam.settings.stitch,
            "settings": description,
            "settings_digest": fb.keys.settings,
            "build_key": fb.keys.build,
            "built": built.built_at,
            "windows": len(fam.window_rows),
            "shards": len(fam.shards),
            "bases_scored": fam.bases_scored,
            "bases_unscored": fam.unscored,
            "seconds": built.seconds,
            "seam_qc": built.seam_qc,
            "tracks": dict(zip(fam.channels, fb.rel, strict=True)),
            "bigwigs": stamps(staging, fb.rel),  # (size, mtime) as published: a later run checks them
            "units": built.units,
        }
        if built.diff:
            entry["diff"] = built.diff
        if summary is not None:
            entry["summary"] = dict(summary.data)
        manifest_families[fam.name] = entry
    assembly = _write_assembly(genome, hub_genome, staging) if genome.ucsc_name is None else None
    spec = HubSpec(
        hub_name=request.config.hub.name,
        short_label=request.config.hub.short_label,
        long_label=request.config.hub.long_label,
        email=request.config.hub.email,
        genome=hub_genome,
        assembly=assembly,
        tracks=tuple(tracks),
        families=tuple(family_runs),
        created=started.isoformat(timespec="seconds"),
        code_version=f"nttracks {__version__}",
        changes_html=diff_html(
            {name: entry["diff"] for name, entry in manifest_families.items() if entry.get("diff") and name in rebuilt},
            {(fb.fam.name, ch): catalog.track(fb.fam.name, ch).name for fb in fams for ch in fb.fam.channels},
        ),
    )
    write_hub(spec, staging, catalog=catalog, base_url=request.base_url, single_file=request.single_file)
    check_before_publish(staging)
    (staging / "config.yaml").write_text(request.config.to_yaml())
    manifest = {
        "nttracks_version": __version__,
        "created": spec.created,
        "hub_key": key,
        "output_format": OUTPUT_FORMAT,
        "genome": {
            "name": genome.name,
            "hub_genome": hub_genome,
            "fasta": str(genome.fasta.resolve()),
            "chroms": list(request.chroms) if request.chroms else None,
            "regions": str(Path(request.regions).resolve()) if request.regions else None,
            "exclude": str(Path(request.exclude).resolve()) if request.exclude else None,
        },
        "request": {
            "genome": str(request.genome) if isinstance(request.genome, str) else str(Path(request.genome).resolve()),
            "base_url": request.base_url,
            "shard_bases": request.shard_bases,
            "device": request.device,
        },
        "config": str(Path(request.config.source).resolve()) if Path(request.config.source).is_file() else None,
        "device": str(getattr(executor, "device", "")),
        "families": manifest_families,
        # what `nttracks hub build` rewrites the hub from
        "hub": hub_spec_json(spec, request.base_url, single_file=request.single_file),
    }
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    manifest["files"] = sorted([*files, MANIFEST])
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    stage[0] = "publishing"
    published = publish(staging, out)
    stage[0] = "published"
    try:
        freed = cache.keep_only({fb.fam.name: {k.key for k in fb.keys.shards} for fb in fams})
    except OSError as exc:  # the hub is published: an untidy cache is no reason to fail the run
        log.warning("could not remove old shard outputs in %s: %s", cache.root, exc.strerror or exc)
        freed = 0
    if freed:
        log.info("removed %s of shard outputs no longer part of the hub", f"{freed:,} bytes")
    return RunResult(out, manifest, published, changed=True, computed=computed, reused=reused)


@dataclass(eq=False)
class _Built:
    label: str
    seam_qc: dict[str, float]
    units: dict[str, Any]
    seconds: float
    built_at: str
    computed: int = 0
    reused: int = 0
    diff: dict[str, Any] | None = None
    rebuilt: bool = True


def _up_to_date(previous: dict[str, Any], key: str, out: Path, fams: list[FingerprintedFamily]) -> bool:
    """The published hub was built from exactly these inputs, every file it lists is there and its
    bigWigs are the ones it published (not replaced since, e.g. by an interrupted publish)."""
    if previous.get("hub_key") != key:
        return False
    files = published_files(out)
    recorded = previous.get("families") or {}
    return (bool(files) and all((out / f).is_file() for f in files)
            and all((recorded.get(fb.fam.name) or {}).get("bigwigs") == stamps(out, fb.rel) for fb in fams))


def stamps(root: Path, rels: list[str]) -> dict[str, list[int]] | None:
    """{path: [size, mtime in ns]} of files under ``root`` (None when one is missing)."""
    out = {}
    for rel in rels:
        try:
            st = (root / rel).stat()
        except OSError:
            return None
        out[rel] = [st.st_size, st.st_mtime_ns]
    return out


def _build_family(
    fb: FingerprintedFamily,
    catalog: Catalog,
    genome: Genome,
    executor: Any,
    out: Path,
    staging: Path,
    cache: ShardCache,
    previous: dict[str, Any],
    progress: ProgressFactory | None,
) -> _Built:
    """The family's bigWigs in ``staging``: the live ones linked when its build key is unchanged, else
    written from its shards, computing only those the cache lacks."""
    fam, keys = fb.fam, fb.keys
    prev = (previous.get("families") or {}).get(fam.name) or {}
    paths = [staging / r for r in fb.rel]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    intact = bool(prev.get("bigwigs")) and prev.get("bigwigs") == stamps(out, fb.rel)  # the previous build's files
    if prev.get("build_key") == keys.build and intact:
        for r, path in zip(fb.rel, paths, strict=True):
            link_or_copy(out / r, path)
        log.info("%s: unchanged (%d shards); its bigWigs are kept as they are", fam.name, len(fam.shards))
        return _Built(prev.get("model", fam.name), prev.get("seam_qc", {}), prev.get("units", {}),
                      prev.get("seconds", 0.0), prev.get("built", ""), reused=len(fam.shards),
                      diff=prev.get("diff"), rebuilt=False)
    shard_keys = {s.index: k.key for s, k in zip(fam.shards, keys.shards, strict=True)}
    headers = {s.index: cache.find(fam.name, shard_keys[s.index]) for s in fam.shards}
    todo = tuple(s for s in fam.shards if headers[s.index] is None)
    log.info("%s: %d of %d shards to compute, %d finished already", fam.name, len(todo), len(fam.shards),
             len(fam.shards) - len(todo))
    label = _model_label(cache, fam.name, keys.weights, prev)
    folder = cache.folder(fam.name)
    folder.mkdir(parents=True, exist_ok=True)
    results: Iterator[ShardResult] = iter(())
    if todo or label is None:
        label, results = _score(fb, todo, shard_keys, headers, genome, executor, cache, progress)
    files = [cache.path(fam.name, shard_keys[s.index]) for s in fam.shards]
    diff_chroms = _changed_chroms(prev, keys) if intact else set()
    pieces = _write_bigwigs(fb, genome, paths, files, {s.index for s in todo}, results, diff_chroms, progress)
    units = unit_records(fam.shards, fam.channels, keys, headers)
    seam_sum = np.sum([u.pop("_seam_sum") for u in units.values()], axis=0)
    seam_bases = sum(u["seam_bases"] for u in units.values())
    seam = np.asarray(seam_sum, dtype=np.float64).reshape(-1) / max(seam_bases, 1)
    diff = None
    if diff_chroms:
        diff = {"previous": previous.get("created"),
                "tracks": nightly_diff({ch: out / r for ch, r in zip(fam.channels, fb.rel, strict=True)},
                                       pieces, fam.channels)}
    return _Built(
        label, {ch: float(v) for ch, v in zip(fam.channels, seam, strict=True)}, units,
        round(sum(u["seconds"] for u in units.values()), 3), now(), computed=len(todo),
        reused=len(fam.shards) - len(todo), diff=diff,
    )


def _model_label(cache: ShardCache, family: str, digest: str, prev: dict[str, Any]) -> str | None:
    """The model's label without loading it: from the cache's record or the previous build of this digest."""
    try:
        record = json.loads((cache.folder(family) / MODEL_RECORD).read_text())
        if record.get("digest") == digest and record.get("label"):
            return str(record["label"])
    except (OSError, ValueError, AttributeError):
        pass
    if prev.get("checkpoint_digest") == digest and prev.get("model"):
        return str(prev["model"])
    return None


def _score(
    fb: FingerprintedFamily,
    todo: tuple[Shard, ...],
    shard_keys: dict[int, str],
    headers: dict[int, dict[str, Any] | None],
    genome: Genome,
    executor: Any,
    cache: ShardCache,
    progress: ProgressFactory | None,
) -> tuple[str, Iterator[ShardResult]]:
    """Have the executor score ``todo`` into the cache: (the model's label, the results as they come, in
    genome order, each filling ``headers``). The model is loaded here; the shards are scored as the
    results are consumed, so the bigWig writers take each shard while the next one is scored."""
    fam = fb.fam
    job = FamilyJob(fam.name, fam.settings, fam.geometry, fam.plan, fam.channels, fb.quanta, todo,
                    {s.index: shard_keys[s.index] for s in todo})
    bar = progress(fam.name, sum(s.bases for s in todo)) if progress is not None and todo else None
    try:
        scores = executor.run(job, genome.codes, cache.folder(fam.name), bar.update if bar is not None else None)
        if scores.digest != fb.keys.weights:
            raise ModelError(
                f"the {fam.name} model's weights changed while this run read them (digest {scores.digest[:12]}, "
                f"expected {fb.keys.weights[:12]}); run again once the checkpoint is in place"
            )
        record = cache.folder(fam.name) / MODEL_RECORD
        record.write_text(json.dumps({"digest": scores.digest, "label": scores.label}) + "\n")
    except BaseException:
        if bar is not None:
            bar.close()
        raise

    def results() -> Iterator[ShardResult]:
        try:
            for result in scores.results:
                headers[result.shard.index] = read_header(result.path)
                yield result
        finally:
            if bar is not None:
                bar.close()

    return scores.label, results()


def _changed_chroms(prev: dict[str, Any], keys: FamilyKeys) -> set[str]:
    """Chromosomes whose unit differs from the previous build's (for the nightly diff)."""
    units = prev.get("units") or {}
    return {c for c, u in keys.units.items() if (units.get(c) or {}).get("key") != u.key}


def _write_bigwigs(
    fb: FingerprintedFamily,
    genome: Genome,
    paths: list[Path],
    files: list[Path],
    todo: set[int],
    results: Iterator[ShardResult],
    keep_chroms: set[str],
    progress: ProgressFactory | None,
) -> dict[str, list[tuple[str, int, np.ndarray]]]:
    """Write the family's bigWigs from its shard files in genome order, the cached ones (``files``) and
    those in ``todo`` as ``results`` brings them (scored meanwhile: the writer processes work while the
    device scores the next shard); returns the pieces of ``keep_chroms`` (for the nightly diff)."""
    fam = fb.fam
    finishing: list[ProgressBar] = []

    def tracks_done(done: int, total: int) -> None:  # "finishing tracks": one step per bigWig file
        if progress is not None and not finishing:
            finishing.append(progress(f"{fam.name}: finishing tracks", total))
        if finishing and done:
            finishing[0].update(1)

    kept: dict[str, list[tuple[str, int, np.ndarray]]] = {}
    try:
        with BigWigWriters(paths, list(genome.chrom_sizes.items()), progress=tracks_done) as writers:
            for shard, path in zip(fam.shards, files, strict=True):
                if shard.index in todo:  # scored now: the executor scores it while the writers take the last
                    result = next(results)
                    if result.shard.index != shard.index:
                        raise RuntimeError(f"{fam.name}: the executor returned shard {result.shard.name} "
                                           f"where {shard.name} was due")
                    path = result.path
                writers.add_shard(path)
                if shard.chrom in keep_chroms:
                    for start, values in read_shard(path).pieces():
                        kept.setdefault(shard.chrom, []).append((shard.chrom, start, values))
            for extra in results:
                raise RuntimeError(f"{fam.name}: the executor returned an unexpected shard {extra.shard.name}")
    finally:
        for b in finishing:
            b.close()
    return kept


def _summarize(fam: FamilyPlan, staging: Path, rel: list[str], hub_genome: str, genome: Genome, run: RunPlan,
               device: Any) -> Summary | None:
    """The family's summary of its finished bigWigs (``Family.summarize``) followed by the one its model makes
    over the genome (``Family.model_summary``); the files they show (pictures, tables) are written beside the
    family's pages."""
    parts = [fam.family.summarize(fam.settings, {ch: staging / r for ch, r in zip(fam.channels, rel, strict=True)}),
             fam.family.model_summary(fam.settings, fam.geometry, genome, run.contigs, device)]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    files: dict[str, bytes] = {}
    data: dict[str, Any] = {}
    for part in parts:
        clash = (files.keys() & part.files.keys()) | (data.keys() & part.data.keys())
        if clash:
            raise OutputError(f"the {fam.name} family's two summaries both write {', '.join(sorted(clash))}")
        files.update(part.files)
        data.update(part.data)
    for name, content in files.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise OutputError(f"the {fam.name} family's summary names a file {name!r} that is not a plain file name")
        (staging / hub_genome / name).write_bytes(content)
    return Summary("".join(p.html for p in parts), files, data)


def _driver_device(executor: Any) -> Any:
    """Where a family's model summary runs: the local executor's device; the CPU beside a Ray cluster (its
    GPUs are the workers')."""
    device = getattr(executor, "device", None)
    return device if hasattr(device, "type") else "cpu"


def _write_assembly(genome: Genome, hub_genome: str, staging: Path) -> AssemblySpec:
    """The .2bit and chrom.sizes of an assembly hub (a genome UCSC does not host)."""
    folder = staging / hub_genome
    folder.mkdir(parents=True, exist_ok=True)
    write_twobit(genome, folder / f"{hub_genome}.2bit")
    sizes = "".join(f"{c}\t{n}\n" for c, n in genome.chrom_sizes.items())
    (folder / "chrom.sizes").write_text(sizes)
    first, length = next(iter(genome.chrom_sizes.items()))
    return AssemblySpec(
        twobit=f"{hub_genome}/{hub_genome}.2bit",
        chrom_sizes=f"{hub_genome}/chrom.sizes",
        organism=genome.organism or genome.name,
        default_pos=f"{first}:1-{min(length, 20_000)}",
        description=genome.description or f"{genome.name} ({genome.fasta.name})",
    )
