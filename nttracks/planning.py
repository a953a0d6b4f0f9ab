"""Planning a run: which windows every track family needs, checked before anything is written.

``plan_run`` checks the config, the genome, the chromosome names, the regions and the window
geometry of every family, tiles the selected chromosomes' contigs and cuts the tiling into shards.
Regions and exclusions choose which bases are written, never what the model sees: the windows are
those of the whole-genome plan that touch the written bases, with their full genomic context. A dry
run writes nothing anywhere: a registered genome that is not downloaded yet (or the demo, not
generated yet) is planned from its shipped chromosome sizes, and a FASTA without an index from its
sequence lengths, offline. Everything a run will use is checked here, so a dry run fails where the
run would: config values, the device, each family's checkpoint, and that ``--out`` and the cache can
be written. ``RunPlan.summary`` is what ``--dry-run`` prints: windows, bases scored and not scored
(and why), estimated compute time on the chosen device and output size.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bases import Geometry
from .config import Config
from .errors import ChromosomeError, ConfigError, ModelError, NothingToScoreError, OutputError, UsageError
from .estimates import BYTES_PER_BASE, LONG_RUN, Rate, device_rate, duration, makespan, size
from .families import Family, WindowSettings, get_family
from .genome import Contig, Genome, default_name, fasta_sizes, is_indexed
from .registry import REGISTRY, chrom_sizes_of, open_genome, registered_fasta_path
from .resources import cache_dir
from .tiling import Shard, TilePlan, cut_shards, plan_tiles, resolve_stride

SHARD_BASES = 2_000_000  # written bases per shard: small enough to hold, large enough to amortize the halo


@dataclass(frozen=True)
class RunRequest:
    """What to build. genome: a registered name or a FASTA path."""

    genome: str | Path
    config: Config
    out: Path | None = None
    chroms: tuple[str, ...] | None = None
    device: str = "auto"
    regions: Path | None = None
    exclude: Path | None = None
    base_url: str | None = None
    cache_dir: Path | None = None
    shard_bases: int = SHARD_BASES
    force: bool = False  # write into an --out that holds files nttracks did not write
    batch_size: int | None = None  # windows per forward pass for every family (None: each family's own)
    single_file: bool = False  # the UCSC hub as one hub.txt with useOneFile on
    executor: str = "local"  # local (this process) or ray (a Ray cluster: ray_executor.py)
    ray_address: str | None = None  # the Ray cluster (None: $RAY_ADDRESS, this machine's, or a new local one)
    gpus: int | None = None  # Ray: use at most this many workers; the dry run: estimate the wall time on this many
    shared_fs: bool = True  # Ray: workers write shard files into the work dir (False: through the object store)


@dataclass(frozen=True)
class FamilyPlan:
    """One track family: its settings, geometry, channels, tiling and shards."""

    name: str
    family: Family
    settings: WindowSettings
    geometry: Geometry
    channels: tuple[str, ...]
    plan: TilePlan
    shards: tuple[Shard, ...]
    unscored: dict[str, int | None]  # bases left unscored, by reason (see UNSCORED)
    notes: tuple[str, ...] = ()  # things the user should know (an overlap rounded to the grid, ...)

    @property
    def bases_scored(self) -> int:
        """Bases written (every scored base, or those of --regions/--exclude)."""
        return sum(s.bases for s in self.shards)

    @functools.cached_property
    def window_rows(self) -> np.ndarray:
        """The plan rows the shards run, each once."""
        if not self.shards:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([s.rows for s in self.shards]))

    @functools.cached_property
    def flops(self) -> float:
        """Forward FLOPs of the windows the shards run."""
        return self.family.flops(self.settings, self.plan.window_lengths()[self.window_rows])

    @functools.cached_property
    def shard_flops(self) -> np.ndarray:
        """(shards,) forward FLOPs of each shard's windows, its halo included."""
        lengths = self.plan.window_lengths()
        return np.array([self.family.flops(self.settings, lengths[s.rows]) for s in self.shards], dtype=np.float64)


UNSCORED = {
    "n_bases": "N",
    "iupac_codes": "IUPAC ambiguity codes (R, Y, K, ...: no model reads them)",
    "contig_ends": "at contig ends (windows end on the model's grid and length multiple)",
    "short_stretches": "in N-free stretches shorter than the model's minimum window",
    "outside_regions": "outside --regions or inside --exclude",
}


@dataclass(frozen=True)
class RunPlan:
    """A checked plan. ``genome`` is None for a dry run that did not open the FASTA (a registered genome
    not downloaded yet, the demo not generated yet, a FASTA without an index): then the contigs are
    whole chromosomes from the chromosome sizes (N gaps unknown)."""

    genome_name: str
    chrom_sizes: dict[str, int]
    source: str
    genome: Genome | None
    contigs: tuple[Contig, ...]
    families: tuple[FamilyPlan, ...]
    rate: Rate  # the chosen device's compute rate, for the time estimate
    gpus: int | None = None  # the GPUs to estimate the wall time on (--gpus, or a Ray cluster's)

    @property
    def seconds(self) -> float:
        """Estimated compute time on the chosen device."""
        return sum(self.rate.seconds(fam.flops) for fam in self.families)

    def wall_seconds(self, gpus: int) -> float:
        """Estimated wall time on ``gpus`` GPUs: each family's shards, longest first, one family after another."""
        gpu = device_rate("cuda")
        return sum(makespan(gpu.seconds(fam.shard_flops), gpus) for fam in self.families)

    @property
    def warnings(self) -> list[str]:
        """What a user should hear before the run starts."""
        out = [note for fam in self.families for note in fam.notes]
        if self.gpus:
            if self.wall_seconds(self.gpus) > LONG_RUN:
                out.append(
                    f"this run would take about {duration(self.wall_seconds(self.gpus))} on {self.gpus} GPUs; "
                    "use more GPUs (--gpus), or restrict it with --chroms or --regions"
                )
        elif self.seconds > LONG_RUN:
            out.append(
                f"this run would take about {duration(self.seconds)} on {self.rate.device} "
                f"({self.rate.basis}); run it where there is a GPU (--device cuda), or restrict it with "
                "--chroms or --regions"
            )
        return out

    def summary(self) -> str:
        """The plan as a person reads it (what --dry-run prints)."""
        lines = [
            f"genome {self.genome_name}: {len(self.chrom_sizes)} chromosomes, "
            f"{sum(self.chrom_sizes.values()):,} bp ({self.source})",
            f"selected: {len(self.contigs):,} contigs, {sum(c.length for c in self.contigs):,} bp",
        ]
        total_lo = total_hi = 0.0
        gpu = device_rate("cuda")
        gpu_seconds = 0.0
        for fam in self.families:
            p = fam.plan
            channels = len(fam.channels)
            lo, hi = (b * fam.bases_scored * channels for b in BYTES_PER_BASE)
            total_lo, total_hi = total_lo + lo, total_hi + hi
            lines.append(
                f"{fam.name}: {len(fam.window_rows):,} windows of {fam.geometry.window:,} bp "
                f"(overlap {p.overlap:,} bp, stitch {fam.settings.stitch}, batch {fam.settings.batch_size or 'auto'}); "
                f"{fam.bases_scored:,} bases scored; "
                f"{channels} bigWig tracks, about {size(lo)}-{size(hi)}; {len(fam.shards):,} shards"
            )
            reasons = [
                f"{n:,} bp {UNSCORED[k]}" for k, n in fam.unscored.items() if n
            ] or ["none"]
            unknown = " (N gaps unknown: the FASTA was not read)" if fam.unscored["n_bases"] is None else ""
            lines.append(f"  unscored: {'; '.join(reasons)}{unknown}")
            flops = fam.flops
            if flops:
                gpu_seconds += gpu.seconds(flops)
                lines.append(
                    f"  {flops:.3g} FLOP: about {duration(self.rate.seconds(flops))} on {self.rate.device} "
                    f"({self.rate.basis})"
                )
        if gpu_seconds:
            lines.append(f"estimated GPU time: {duration(gpu_seconds)} on {gpu.device} ({gpu.basis})")
            if self.gpus:
                longest = max(gpu.seconds(fam.shard_flops.max()) for fam in self.families if len(fam.shards))
                lines.append(
                    f"estimated wall time on {self.gpus} GPU{'s' * (self.gpus != 1)}: "
                    f"{duration(self.wall_seconds(self.gpus))} (shards longest first; the longest takes "
                    f"{duration(longest)}; model loading not counted)"
                )
            elif self.rate.device != gpu.device:
                lines.append(f"estimated time on the chosen device: {duration(self.seconds)} on {self.rate.device}")
        lines.append(f"estimated output: {size(total_lo)}-{size(total_hi)}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def plan_run(
    request: RunRequest,
    *,
    dry_run: bool = False,
    download_progress: Callable[[int, int | None], None] | None = None,
) -> RunPlan:
    """Check everything the run will use and tile every family; raises before anything is written.

    dry_run: write nothing anywhere: a genome whose FASTA is not at hand yet, or not indexed yet, is
    planned from its chromosome sizes (whole chromosomes, N gaps unknown), and checkpoints are looked
    for without downloading them.
    """
    config = request.config
    rate = _executor_rate(request)
    families = {name: get_family(name) for name in config.families}
    geometries = {
        name: _family_geometry(name, families[name], settings, config) for name, settings in config.families.items()
    }
    if request.out is not None:
        _check_writable(Path(request.out).parent, "--out", dry_run)
    genome: Genome | None = None
    cache = request.cache_dir or cache_dir()
    unopened = _unopened_sizes(request, cache) if dry_run else None
    if unopened is not None:
        name, sizes, source = unopened
        contigs = _whole_chromosomes(name, sizes, request.chroms)
    else:
        if _needs_cache(request, cache):
            _check_writable(cache, "the cache ($NTTRACKS_CACHE)", dry_run)
        genome = open_genome(request.genome, cache_dir=request.cache_dir, progress=download_progress)
        name, sizes, source = genome.name, genome.chrom_sizes, str(genome.fasta)
        contigs = genome.contigs(list(request.chroms) if request.chroms else None)
    keep = None
    written = contigs
    if request.regions is not None or request.exclude is not None:
        from .regions import restrict_contigs

        written = restrict_contigs(contigs, sizes, regions=request.regions, exclude=request.exclude)
        if not written:
            raise NothingToScoreError(
                "--regions/--exclude leave no base of the selected chromosomes to score; "
                "check that the BED files are for this genome"
            )
        keep = _ranges_by_chrom(written)
    spans = [(c.chrom, c.start, c.end) for c in contigs]
    unknown = None
    if genome is not None:
        counts = [genome.unknown_bases(c) for c in (request.chroms or genome.chroms)]
        unknown = (sum(n for n, _ in counts), sum(i for _, i in counts))
    plans = []
    # Each family's model needs last: the genome's problems are the user's first (and cheapest) to fix.
    for fam_name, settings in config.families.items():
        family, geometry = families[fam_name], geometries[fam_name]
        if request.batch_size is not None:
            settings = dataclasses.replace(settings, batch_size=request.batch_size)
        stride = resolve_stride(geometry, settings.overlap)
        plan = plan_tiles(spans, geometry, stride=stride, chroms=list(sizes))
        shards = cut_shards(plan, fam_name, shard_bases=request.shard_bases, keep=keep)
        if not shards:
            raise NothingToScoreError(
                f"nothing to score for {fam_name}: the selected sequence "
                f"({sum(c.length for c in written):,} bp in {len(written)} N-free pieces) has no stretch of at "
                f"least {geometry.min_length} bp that a window covers; check --chroms, --regions and --exclude"
            )
        notes = list(family.preflight(settings, geometry, dry_run=dry_run))
        if settings.overlap is not None and plan.overlap != settings.overlap:
            notes.append(
                f"{fam_name}: overlap {settings.overlap:,} bp is used as {plan.overlap:,} bp: the stride "
                f"(window - overlap) is rounded down to the model's {geometry.grid}-bp grid"
            )
        scored_any = plan.scored_end > plan.contig_start
        unscored = {
            "n_bases": None if unknown is None else unknown[0],
            "iupac_codes": None if unknown is None else unknown[1],
            "contig_ends": int((plan.contig_end - plan.scored_end)[scored_any].sum()),
            "short_stretches": int((plan.contig_end - plan.contig_start)[~scored_any].sum()),
            "outside_regions": plan.bases_scored - sum(s.bases for s in shards),
        }
        channels = family.channels(settings)
        plans.append(
            FamilyPlan(fam_name, family, settings, geometry, channels, plan, shards, unscored, tuple(notes))
        )
    return RunPlan(name, dict(sizes), source, genome, tuple(written), tuple(plans), rate, request.gpus)


def _executor_rate(request: RunRequest) -> Rate:
    """The compute rate of the device the executor runs on, the executor checked first (Ray installed)."""
    if request.gpus is not None and request.gpus < 1:
        raise UsageError(f"--gpus {request.gpus}: give at least 1")
    if request.executor == "ray":
        from .ray_executor import check_ray

        check_ray(request.device, request.gpus)
        # The workers' devices, not this machine's: a cluster's head node often has no GPU.
        return device_rate("cpu" if request.device == "cpu" else "cuda")
    if request.executor != "local":
        raise UsageError(f"--executor {request.executor!r} is not an executor; use local or ray")
    from .predict import resolve_device

    return device_rate(resolve_device(request.device).type)


def _check_writable(directory: Path, what: str, dry_run: bool) -> None:
    """Raise OutputError unless files can be created in ``directory`` (or where it would be created).

    A real run tries it (``os.access`` is not to be trusted: root, NFS, read-only mounts); a dry run,
    which writes nothing, asks ``os.access``.
    """
    existing = Path(directory).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what}: {existing} is a file, so {directory} cannot be created; pick another path")
    ok = os.access(existing, os.W_OK | os.X_OK)
    if ok and not dry_run:
        probe = existing / f".nttracks-probe-{os.getpid()}"
        try:
            probe.touch(exist_ok=False)
            probe.unlink()
        except OSError:
            ok = False
    if not ok:
        raise OutputError(
            f"{what}: cannot write in {existing}; pick a directory you can write to, or fix its permissions"
        )


def _needs_cache(request: RunRequest, cache: Path) -> bool:
    """Whether opening the genome writes into the cache (a download, or the demo's first generation)."""
    name = request.genome
    return isinstance(name, str) and name in REGISTRY and not _registered_fasta(name, cache).is_file()


def _unopened_sizes(request: RunRequest, cache: Path) -> tuple[str, dict[str, int], str] | None:
    """For a dry run: (name, sizes, source) when opening the genome would write (download, generate the
    demo, index a FASTA); None when it opens as it is."""
    name = request.genome
    if isinstance(name, str) and name in REGISTRY:
        if not _needs_cache(request, cache):
            fasta = _registered_fasta(name, cache)
            if is_indexed(fasta, cache):
                return None
            return name, fasta_sizes(fasta), f"{fasta}, not indexed yet, so N gaps count as sequence"
        what = "not generated yet" if REGISTRY[name].path is None else "not downloaded yet"
        return name, chrom_sizes_of(name), f"shipped chromosome sizes; {what}, so N gaps count as sequence"
    path = Path(name)
    if not path.is_file() or is_indexed(path, cache):
        return None  # open_genome reports a missing file as the run would
    sizes = fasta_sizes(path)
    return default_name(path), sizes, f"{path}, not indexed yet, so N gaps count as sequence"


def _registered_fasta(name: str, cache: Path) -> Path:
    if REGISTRY[name].path is None:
        from .demo import demo_dir

        return demo_dir(cache) / "demo.fa"
    fasta = registered_fasta_path(name, cache)
    return fasta if fasta.is_file() else fasta.with_name(fasta.name + ".gz")


def _ranges_by_chrom(contigs: Sequence[Contig]) -> dict[str, np.ndarray]:
    out: dict[str, list[tuple[int, int]]] = {}
    for c in contigs:
        out.setdefault(c.chrom, []).append((c.start, c.end))
    return {chrom: np.asarray(r, dtype=np.int64).reshape(-1, 2) for chrom, r in out.items()}


def _whole_chromosomes(name: str, sizes: dict[str, int], chroms: Sequence[str] | None) -> list[Contig]:
    for chrom in chroms or ():
        if chrom not in sizes:
            alias = chrom.removeprefix("chr") if chrom.startswith("chr") else f"chr{chrom}"
            hint = f" (did you mean {alias}?)" if alias in sizes else ""
            raise ChromosomeError(
                f"chromosome {chrom!r} is not in genome {name}{hint}; it has {len(sizes)}: "
                f"{', '.join(list(sizes)[:8])}{', ...' if len(sizes) > 8 else ''}"
            )
    wanted = set(chroms) if chroms else None
    return [Contig(c, 0, n) for c, n in sizes.items() if wanted is None or c in wanted]


def _family_geometry(name: str, family: Family, settings: WindowSettings, config: Config) -> Geometry:
    geometry = family.geometry(settings)
    if settings.window is None:
        return geometry
    try:
        return geometry.with_window(settings.window)
    except ModelError:
        raise ConfigError(
            f"{config.source}: families.{name}.window: {settings.window} bp is not a window this model takes; "
            f"use a multiple of {geometry.multiple} bp, at least {geometry.min_length} bp"
        ) from None
