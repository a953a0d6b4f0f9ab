"""The run: plan -> executor -> writers -> hub -> publish.

``run_genome`` plans first (``planning.plan_run``: nothing is written before every input is checked),
takes the lock on ``--out``, has the executor score every family's shards into the work directory,
writes each family's bigWigs from the shard outputs in genome order, builds the hub in a staging
directory beside ``--out`` and publishes it only when complete (``hubdir.publish``: hub.txt last,
stale files removed). On any error the staging and work directories are removed and ``--out`` is left
untouched; only when a bigWig writer process died are the work directory's shard outputs kept.
"""

from __future__ import annotations

import json
import logging
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
from .bigwig import BigWigWriters, WriterDiedError
from .catalog import Catalog
from .errors import OutputError, UsageError
from .executors import FamilyJob, make_executor
from .families import Summary
from .genome import Genome
from .hubdir import MANIFEST, fresh_dir, hub_lock, publish, sibling, written_by_nttracks
from .hubs import AssemblySpec, BigWigTrack, FamilyRun, HubSpec, load_catalog, validate_hub, write_hub
from .planning import FamilyPlan, RunPlan, RunRequest, plan_run
from .shards import read_shard
from .twobit import write_twobit

log = logging.getLogger("nttracks")


class ProgressBar(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[str, int], ProgressBar]
"""progress(description, total_bases) -> a bar with update(n) and close() (tqdm fits)."""


@dataclass
class RunResult:
    out: Path
    manifest: dict[str, Any]
    files: list[Path] = field(default_factory=list)


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
    """Build the hub for ``request`` and publish it atomically into ``request.out``.

    executor: what scores the shards (default: ``make_executor(request)``: local on ``request.device``, or
        Ray; one made here is closed at the end).
    download_progress(done, total): bytes of a registered genome's download, when one is needed.
    """
    if request.out is None:
        raise UsageError("no output directory: pass --out DIR")
    out = Path(request.out)
    check_out(out, force=request.force)
    run = plan_run(request, download_progress=download_progress)
    for warning in run.warnings:
        log.warning("%s", warning)
    own = executor is None
    if executor is None:
        executor = make_executor(request)
    staging, work = sibling(out, "staging"), sibling(out, "work")
    with hub_lock(out), _closing(executor if own else None):
        keep_work = False
        try:
            fresh_dir(staging)
            fresh_dir(work)
            manifest = _build(run, request, executor, staging, work, progress)
            published = publish(staging, out)
        except WriterDiedError as exc:
            keep_work = True  # the scored shards are the costly part: never thrown away for a writer
            raise WriterDiedError(
                f"{exc}. Nothing was published and {out} is unchanged; the shard outputs scored so far are kept "
                f"in {work} (the next run starts afresh and removes them)"
            ) from exc
        except OSError as exc:
            raise OutputError(
                f"writing the hub failed ({exc.strerror or exc}: {exc.filename or staging}); nothing was "
                f"published and {out} is unchanged. Free disk space or fix permissions, then run again"
            ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not keep_work:
                shutil.rmtree(work, ignore_errors=True)
    return RunResult(out, manifest, published)


@contextmanager
def _closing(executor: Any) -> Iterator[None]:
    """Close ``executor`` (a Ray executor shuts down the Ray it started) when it has a close()."""
    try:
        yield
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()


def _build(
    run: RunPlan, request: RunRequest, executor: Any, staging: Path, work: Path, progress: ProgressFactory | None
) -> dict[str, Any]:
    genome = run.genome
    if genome is None:
        raise UsageError("a run needs the genome's FASTA; only a dry run plans from chromosome sizes")
    catalog = load_catalog()
    hub_genome = genome.ucsc_name or re.sub(r"[^A-Za-z0-9_]", "_", genome.name)
    started = datetime.now(timezone.utc)
    tracks: list[BigWigTrack] = []
    family_runs: list[FamilyRun] = []
    manifest_families: dict[str, Any] = {}
    for fam in run.families:
        t0 = time.perf_counter()
        rel = [f"{hub_genome}/bw/{catalog.track(fam.name, ch).name}.bw" for ch in fam.channels]
        digest, label, seam_qc = _run_family(fam, catalog, genome, executor, staging, rel, work, progress)
        summary = _summarize(fam, staging, rel, hub_genome)
        description = fam.family.describe(fam.settings, fam.geometry, fam.plan.overlap)
        family_runs.append(FamilyRun(fam.name, label, digest, yaml.safe_dump(description, sort_keys=False), seam_qc,
                                     summary.html if summary is not None else ""))
        tracks += [BigWigTrack(fam.name, ch, r) for ch, r in zip(fam.channels, rel, strict=True)]
        manifest_families[fam.name] = {
            "model": label,
            "checkpoint_digest": digest,
            "window": fam.geometry.window,
            "stride": fam.plan.stride,
            "stitch": fam.settings.stitch,
            "settings": description,
            "windows": len(fam.window_rows),
            "shards": len(fam.shards),
            "bases_scored": fam.bases_scored,
            "bases_unscored": fam.unscored,
            "seconds": round(time.perf_counter() - t0, 3),
            "seam_qc": seam_qc,
            "tracks": dict(zip(fam.channels, rel, strict=True)),
        }
        if summary is not None:
            manifest_families[fam.name]["summary"] = dict(summary.data)
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
    )
    write_hub(spec, staging, catalog=catalog, base_url=request.base_url)
    problems = validate_hub(staging)
    if problems:
        raise OutputError("the hub written fails validation (a bug in nttracks):\n  " + "\n  ".join(problems))
    (staging / "config.yaml").write_text(request.config.to_yaml())
    manifest = {
        "nttracks_version": __version__,
        "created": spec.created,
        "genome": {
            "name": genome.name,
            "hub_genome": hub_genome,
            "fasta": str(genome.fasta.resolve()),
            "chroms": list(request.chroms) if request.chroms else None,
            "regions": str(Path(request.regions).resolve()) if request.regions else None,
            "exclude": str(Path(request.exclude).resolve()) if request.exclude else None,
        },
        "config": str(Path(request.config.source).resolve()) if Path(request.config.source).is_file() else None,
        "device": str(getattr(executor, "device", "")),
        "families": manifest_families,
    }
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    manifest["files"] = sorted([*files, MANIFEST])
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _run_family(
    fam: FamilyPlan,
    catalog: Catalog,
    genome: Genome,
    executor: Any,
    staging: Path,
    rel: list[str],
    work: Path,
    progress: ProgressFactory | None,
) -> tuple[str, str, dict[str, float]]:
    """Score one family's shards and write its bigWigs from them; returns (digest, label, seam QC)."""
    quanta = np.array([catalog.track(fam.name, ch).quantum for ch in fam.channels], dtype=np.float64)
    job = FamilyJob(fam.name, fam.settings, fam.geometry, fam.plan, fam.channels, quanta, fam.shards)
    paths = [staging / r for r in rel]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    seam_sum, seam_bases = np.zeros(len(fam.channels)), 0
    bar = progress(fam.name, fam.bases_scored) if progress is not None else None
    finishing: list[ProgressBar] = []

    def tracks_done(done: int, total: int) -> None:  # "finishing tracks": one step per bigWig file
        if progress is not None and not finishing:
            finishing.append(progress(f"{fam.name}: finishing tracks", total))
        if finishing and done:
            finishing[0].update(1)

    try:
        scores = executor.run(job, genome.codes, work / fam.name, bar.update if bar is not None else None)
        written = []
        with BigWigWriters(paths, list(genome.chrom_sizes.items()), progress=tracks_done) as writers:
            for result in scores.results:
                shard = read_shard(result.path)
                for start, values in shard.pieces():
                    writers.add(shard.chrom, start, values)
                written.append(result.path)
                seam_sum, seam_bases = seam_sum + result.seam_sum, seam_bases + result.seam_bases
        for path in written:  # kept until the bigWigs are complete: a writer that dies loses no scoring
            path.unlink()
    finally:
        for b in (bar, *finishing):
            if b is not None:
                b.close()
    seam = seam_sum / max(seam_bases, 1)
    return scores.digest, scores.label, {ch: float(v) for ch, v in zip(fam.channels, seam, strict=True)}


def _summarize(fam: FamilyPlan, staging: Path, rel: list[str], hub_genome: str) -> Summary | None:
    """The family's summary of its finished bigWigs (``Family.summarize``); the files it shows (a picture)
    are written beside the family's pages."""
    summary = fam.family.summarize(fam.settings, {ch: staging / r for ch, r in zip(fam.channels, rel, strict=True)})
    if summary is None:
        return None
    for name, data in summary.files.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise OutputError(f"the {fam.name} family's summary names a file {name!r} that is not a plain file name")
        (staging / hub_genome / name).write_bytes(data)
    return summary


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
