"""Runs: every track family of a checked plan through predict -> stitch -> bigWig, then the hub.

``run_genome`` plans first (``planning.plan_run``: nothing is written before every input is
checked), then builds the whole hub in a staging directory beside ``--out`` and publishes it only
when complete: into a new ``--out`` by one rename, into an
existing one file by file with ``hub.txt`` last, so a browser reading the hub never sees a
half-written file. On any error the staging directory is removed and ``--out`` is left untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import __version__
from .bigwig import BigWigWriters
from .errors import ConfigError, ModelError, OutputError, UsageError
from .genome import Genome
from .hubs import (
    AssemblySpec,
    BigWigTrack,
    FamilyRun,
    HubSpec,
    TrackStyle,
    load_catalog,
    validate_hub,
    write_hub,
)
from .models.base import TrackModel
from .planning import FamilyPlan, RunPlan, RunRequest, plan_run
from .registry import REGISTRY
from .stitch import ContigStitcher, array_module, quantize, window_weights
from .twobit import write_twobit

FLUSH_BASES = 1 << 20  # stitched bases gathered before a hand-off to the bigWig writers


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


def check_out(out: Path) -> None:
    """--out must be a directory or not exist yet."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; pass a directory (it is created when missing)")


def run_genome(request: RunRequest, *, progress: ProgressFactory | None = None) -> RunResult:
    """Build the hub for ``request`` and publish it atomically into ``request.out``."""
    if request.out is None:
        raise UsageError("no output directory: pass --out DIR")
    out = Path(request.out)
    check_out(out)
    run = plan_run(request)
    assert run.genome is not None  # only a dry run plans without the FASTA
    from .predict import resolve_device

    device = resolve_device(request.device)
    staging = out.parent / f".{out.name}.nttracks-staging"
    try:
        if staging.exists():
            shutil.rmtree(staging)  # left by an interrupted run
        staging.mkdir(parents=True)
        manifest, files = _build(run, request, device, staging, progress)
        published = _publish(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"writing the hub failed ({exc.strerror or exc}: {exc.filename or staging}); nothing was published "
            f"and {out} is unchanged. Free disk space or fix permissions, then run again"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RunResult(out, manifest, published or files)


def _build(
    run: RunPlan, request: RunRequest, device: Any, staging: Path, progress: ProgressFactory | None
) -> tuple[dict[str, Any], list[Path]]:
    genome = run.genome
    catalog = load_catalog()
    hub_genome = genome.ucsc_name or re.sub(r"[^A-Za-z0-9_]", "_", genome.name)
    started = datetime.now(timezone.utc)
    tracks: list[BigWigTrack] = []
    family_runs: list[FamilyRun] = []
    manifest_families: dict[str, Any] = {}
    for fam in run.families:
        t0 = time.perf_counter()
        model, digest, label = _load_model(fam, device)
        styles = [catalog.track(fam.name, ch) for ch in model.channels]
        rel = [f"{hub_genome}/bw/{s.name}.bw" for s in styles]
        for path in rel:
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
        seam = _run_family(fam, model, styles, genome, [staging / r for r in rel], device, progress)
        seam_qc = {ch: float(v) for ch, v in zip(model.channels, seam, strict=True)}
        settings_yaml = run_config_yaml(fam)
        family_runs.append(FamilyRun(fam.name, label, digest, settings_yaml, seam_qc))
        tracks += [BigWigTrack(fam.name, ch, r) for ch, r in zip(model.channels, rel, strict=True)]
        manifest_families[fam.name] = {
            "model": label,
            "checkpoint_digest": digest,
            "window": fam.geometry.window,
            "stride": fam.plan.stride,
            "stitch": fam.settings.stitch,
            "windows": fam.plan.n_windows,
            "bases_scored": fam.plan.bases_scored,
            "seconds": round(time.perf_counter() - t0, 3),
            "seam_qc": seam_qc,
            "tracks": dict(zip(model.channels, rel, strict=True)),
        }
    assembly = None
    if genome.ucsc_name is None:
        assembly = _write_assembly(genome, hub_genome, staging)
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
    files = write_hub(spec, staging, catalog=catalog, base_url=request.base_url)
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
            "fasta": str(genome.fasta),
            "chroms": list(request.chroms) if request.chroms else None,
            "regions": str(request.regions) if request.regions else None,
            "exclude": str(request.exclude) if request.exclude else None,
        },
        "device": str(device),
        "families": manifest_families,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest, files


def run_config_yaml(fam: FamilyPlan) -> str:
    s = fam.settings
    return (
        f"checkpoint: {s.checkpoint}\nwindow: {fam.geometry.window}\noverlap: {fam.plan.overlap}\n"
        f"stitch: {s.stitch}\nbatch_size: {s.batch_size}\nprecision: {s.precision}\n"
    )


def _load_model(fam: FamilyPlan, device: Any) -> tuple[TrackModel, str, str]:
    """(model on device, checkpoint digest, model label)."""
    import torch

    if fam.name == "toy":
        from .models.toy import BaseIdentityModel

        return BaseIdentityModel(fam.geometry).to(device), "builtin", "toy base-identity model"
    if fam.name == "elements":
        from .models.loading import resolve_checkpoint
        from .models.segment_nt import load_segment_nt

        if fam.settings.checkpoint is None:
            raise ConfigError("families.elements.checkpoint: not set; give a SegmentNT directory or HF id")
        bf16 = fam.settings.precision == "bf16" or (fam.settings.precision == "auto" and device.type == "cuda")
        directory = resolve_checkpoint(fam.settings.checkpoint)
        model = load_segment_nt(
            directory,
            device=device,
            dtype=torch.bfloat16 if bf16 else torch.float32,
            window=fam.geometry.window,
        )
        return model, checkpoint_digest(Path(directory)), f"SegmentNT ({fam.settings.checkpoint})"
    raise ConfigError(f"track family {fam.name!r} has no model yet")


def checkpoint_digest(directory: Path) -> str:
    """sha256 over a checkpoint's config and weight files (names and bytes), hex."""
    h = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.suffix in (".json", ".safetensors", ".bin") and path.is_file():
            h.update(path.name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda f=fh: f.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()


def _run_family(
    fam: FamilyPlan,
    model: TrackModel,
    styles: Sequence[TrackStyle],
    genome: Genome,
    paths: Sequence[Path],
    device: Any,
    progress: ProgressFactory | None,
) -> np.ndarray:
    """Predict, stitch and write one family; returns the seam QC per channel."""
    from .predict import predict_windows

    plan = fam.plan
    quanta = np.array([s.quantum for s in styles], dtype=np.float32)
    channels = len(styles)
    xp = _stitch_module(device)
    seam_sum = np.zeros(channels)
    seam_bases = 0
    bar = progress(fam.name, plan.bases_scored) if progress is not None else None
    sizes = list(genome.chrom_sizes.items())
    try:
        with BigWigWriters(paths, sizes) as writers:
            flush = _Flusher(writers, xp, quanta)
            stitcher: ContigStitcher | None = None
            current = -1
            taper: dict[int, Any] = {}
            windows = predict_windows(
                model,
                plan,
                genome.codes,
                batch_size=fam.settings.batch_size,
                device=device,
                progress=bar.update if bar is not None else None,
            )
            for row, out in windows:
                ci = int(plan.contig[row])
                if ci != current:
                    if stitcher is not None:
                        seam_sum, seam_bases = _close_contig(stitcher, flush, seam_sum, seam_bases)
                    chrom = plan.chroms[plan.contig_chrom[ci]]
                    stitcher = ContigStitcher(
                        xp,
                        int(plan.contig_start[ci]),
                        int(plan.scored_end[ci]),
                        channels,
                        fam.geometry.window,
                    )
                    flush.start_contig(chrom)
                    current = ci
                assert stitcher is not None
                start, length = int(plan.start[row]), int(plan.end[row] - plan.start[row])
                if fam.settings.stitch == "nearest":
                    keep = (int(plan.keep_start[row]) - start, int(plan.keep_end[row]) - start)
                    weights = window_weights(xp, length, "nearest", keep)
                else:
                    if length not in taper:
                        taper[length] = window_weights(xp, length, fam.settings.stitch)
                    weights = taper[length]
                flush.add(*stitcher.add(start, _to_xp(out, xp), weights))
            if stitcher is not None:
                seam_sum, seam_bases = _close_contig(stitcher, flush, seam_sum, seam_bases)
    finally:
        if bar is not None:
            bar.close()
    return seam_sum / max(seam_bases, 1)


def _close_contig(
    stitcher: ContigStitcher, flush: _Flusher, seam_sum: np.ndarray, seam_bases: int
) -> tuple[np.ndarray, int]:
    flush.add(*stitcher.finish())
    flush.flush()
    return seam_sum + _to_numpy(stitcher.seam_sum), seam_bases + stitcher.seam_bases


class _Flusher:
    """Gathers a contig's finished regions and hands them, quantized, to the writers in ~1 Mbp pieces."""

    def __init__(self, writers: BigWigWriters, xp: Any, quanta: np.ndarray) -> None:
        self.writers = writers
        self.xp = xp
        self.quanta = xp.asarray(quanta)
        self.chrom = ""
        self.parts: list[Any] = []
        self.start = 0
        self.bases = 0

    def start_contig(self, chrom: str) -> None:
        self.chrom = chrom

    def add(self, start: int, values: Any) -> None:
        if values.shape[0] == 0:
            return
        if not self.parts:
            self.start = start
        self.parts.append(values)
        self.bases += values.shape[0]
        if self.bases >= FLUSH_BASES:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        xp = self.xp
        values = self.parts[0] if len(self.parts) == 1 else xp.concatenate(self.parts)
        if bool(xp.isnan(values).any()):
            where = int(xp.argmax(xp.isnan(values).any(axis=1)))
            raise ModelError(
                f"the model produced NaN at {self.chrom}:{self.start + where + 1}; check the checkpoint "
                "(and try --device cpu or precision fp32)"
            )
        self.writers.add(self.chrom, self.start, _to_numpy(quantize(values, self.quanta)))
        self.parts = []
        self.bases = 0


def _stitch_module(device: Any) -> Any:
    """CuPy when the model runs on a GPU and CuPy can use it; NumPy otherwise."""
    if getattr(device, "type", "cpu") == "cuda":
        try:
            import cupy

            if cupy.is_available():
                return cupy
        except ImportError:
            pass
    return np


def _to_xp(t: Any, xp: Any) -> Any:
    if xp is np:
        return t.detach().cpu().numpy()
    return xp.from_dlpack(t.detach().contiguous())


def _to_numpy(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else array_module(a).asnumpy(a)


def _write_assembly(genome: Genome, hub_genome: str, staging: Path) -> AssemblySpec:
    """The .2bit and chrom.sizes of an assembly hub (a genome UCSC does not host)."""
    folder = staging / hub_genome
    folder.mkdir(parents=True, exist_ok=True)
    write_twobit(genome, folder / f"{hub_genome}.2bit")
    sizes = "".join(f"{c}\t{n}\n" for c, n in genome.chrom_sizes.items())
    (folder / "chrom.sizes").write_text(sizes)
    first, length = next(iter(genome.chrom_sizes.items()))
    source = REGISTRY.get(genome.name)
    return AssemblySpec(
        twobit=f"{hub_genome}/{hub_genome}.2bit",
        chrom_sizes=f"{hub_genome}/chrom.sizes",
        organism=source.organism if source is not None else genome.name,
        default_pos=f"{first}:1-{min(length, 20_000)}",
        description=source.description if source is not None else f"{genome.name} ({genome.fasta.name})",
    )


def _publish(staging: Path, out: Path) -> list[Path]:
    """Move the finished hub into place: a new --out by one rename; else file by file, hub.txt last."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, out)
        return sorted(p for p in out.rglob("*") if p.is_file())
    moved = []
    files = sorted((p for p in staging.rglob("*") if p.is_file()), key=lambda p: p.name == "hub.txt")
    for src in files:
        dst = out / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved.append(dst)
    shutil.rmtree(staging)
    return moved
