"""Planning a run: which windows every track family needs, checked before anything is written.

``plan_run`` checks the config, the genome, the chromosome names, the regions and the window
geometry of every family, tiles the selected chromosomes' contigs and cuts the tiling into shards.
Regions and exclusions choose which bases are written, never what the model sees: the windows are
those of the whole-genome plan that touch the written bases, with their full genomic context. A dry
run of a registered genome that is not downloaded yet plans from the shipped chromosome sizes,
offline. ``RunPlan.summary`` is what ``--dry-run`` prints: windows, bases scored, estimated GPU time
and output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bases import Geometry
from .config import Config
from .errors import ChromosomeError, ConfigError, ModelError, NothingToScoreError
from .families import Family, WindowSettings, get_family
from .genome import Contig, Genome
from .registry import REGISTRY, chrom_sizes_of, open_genome, registered_fasta_path
from .tiling import Shard, TilePlan, cut_shards, plan_tiles, resolve_stride

SHARD_BASES = 2_000_000  # written bases per shard: small enough to hold, large enough to amortize the halo
# Bytes per scored base per quantized per-base track, with zoom levels (engineering.md §1):
# sparse signals ~0.9, dense ~2.5.
BYTES_PER_BASE = (0.9, 2.5)
H100_BF16_FLOPS = 989e12  # dense bf16 peak
ASSUMED_MFU = 0.4  # engineering.md §2: 40-55% is reachable for the 500M shape with fused attention


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

    @property
    def bases_scored(self) -> int:
        """Bases written (every scored base, or those of --regions/--exclude)."""
        return sum(s.bases for s in self.shards)

    def window_rows(self) -> np.ndarray:
        """The plan rows the shards run, each once."""
        if not self.shards:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([s.rows for s in self.shards]))

    def flops(self) -> float:
        return self.family.flops(self.settings, self.plan.window_lengths()[self.window_rows()])


@dataclass(frozen=True)
class RunPlan:
    """A checked plan. ``genome`` is None for a dry run of a registered genome not downloaded yet:
    then the contigs are whole chromosomes from the shipped size table (N gaps unknown)."""

    genome_name: str
    chrom_sizes: dict[str, int]
    source: str
    genome: Genome | None
    contigs: tuple[Contig, ...]
    families: tuple[FamilyPlan, ...]

    def summary(self) -> str:
        """The plan as a person reads it (what --dry-run prints)."""
        lines = [
            f"genome {self.genome_name}: {len(self.chrom_sizes)} chromosomes, "
            f"{sum(self.chrom_sizes.values()):,} bp ({self.source})",
            f"selected: {len(self.contigs):,} contigs, {sum(c.length for c in self.contigs):,} bp",
        ]
        total_lo = total_hi = 0.0
        gpu_seconds = 0.0
        for fam in self.families:
            p = fam.plan
            channels = len(fam.channels)
            lo, hi = (b * fam.bases_scored * channels for b in BYTES_PER_BASE)
            total_lo, total_hi = total_lo + lo, total_hi + hi
            lines.append(
                f"{fam.name}: {len(fam.window_rows()):,} windows of {fam.geometry.window:,} bp "
                f"(overlap {p.overlap:,} bp, stitch {fam.settings.stitch}, batch {fam.settings.batch_size}); "
                f"{fam.bases_scored:,} bases scored, {p.bases_unscored:,} unscored; "
                f"{channels} bigWig tracks, about {_size(lo)}-{_size(hi)}; {len(fam.shards):,} shards"
            )
            flops = fam.flops()
            if flops:
                seconds = flops / (H100_BF16_FLOPS * ASSUMED_MFU)
                gpu_seconds += seconds
                lines.append(
                    f"  {flops:.3g} FLOP: about {_duration(seconds)} on one H100 "
                    f"(bf16 at {ASSUMED_MFU:.0%} of its {H100_BF16_FLOPS / 1e12:.0f} TFLOP/s peak)"
                )
        if gpu_seconds:
            lines.append(f"estimated GPU time: {_duration(gpu_seconds)} on one H100")
        lines.append(f"estimated output: {_size(total_lo)}-{_size(total_hi)}")
        return "\n".join(lines)


def plan_run(
    request: RunRequest,
    *,
    dry_run: bool = False,
    download_progress: Callable[[int, int | None], None] | None = None,
) -> RunPlan:
    """Open the genome and tile every family; raises before anything is written.

    dry_run: a registered genome that is not in the cache yet is planned from its shipped chromosome
    sizes instead of being downloaded (whole chromosomes, N gaps unknown).
    """
    config = request.config
    families = {name: get_family(name) for name in config.families}
    geometries = {
        name: _family_geometry(name, families[name], settings, config) for name, settings in config.families.items()
    }
    genome: Genome | None = None
    if dry_run and _registered_not_cached(request):
        name = str(request.genome)
        sizes = chrom_sizes_of(name)
        source = "shipped chromosome sizes; not downloaded yet, so N gaps count as sequence"
        contigs = _whole_chromosomes(name, sizes, request.chroms)
    else:
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
    plans = []
    for fam_name, settings in config.families.items():
        family, geometry = families[fam_name], geometries[fam_name]
        plan = plan_tiles(spans, geometry, stride=resolve_stride(geometry, settings.overlap), chroms=list(sizes))
        shards = cut_shards(plan, fam_name, shard_bases=request.shard_bases, keep=keep)
        if not shards:
            raise NothingToScoreError(
                f"nothing to score for {fam_name}: the selected sequence "
                f"({sum(c.length for c in written):,} bp in {len(written)} N-free pieces) has no stretch of at "
                f"least {geometry.min_length} bp that a window covers; check --chroms, --regions and --exclude"
            )
        channels = family.channels(settings)
        plans.append(FamilyPlan(fam_name, family, settings, geometry, channels, plan, shards))
    return RunPlan(name, dict(sizes), source, genome, tuple(written), tuple(plans))


def _ranges_by_chrom(contigs: Sequence[Contig]) -> dict[str, np.ndarray]:
    out: dict[str, list[tuple[int, int]]] = {}
    for c in contigs:
        out.setdefault(c.chrom, []).append((c.start, c.end))
    return {chrom: np.asarray(r, dtype=np.int64).reshape(-1, 2) for chrom, r in out.items()}


def _registered_not_cached(request: RunRequest) -> bool:
    name = request.genome
    if not isinstance(name, str) or name not in REGISTRY or REGISTRY[name].path is None:
        return False
    fasta = registered_fasta_path(name, request.cache_dir)
    return not (fasta.is_file() or fasta.with_name(fasta.name + ".gz").is_file())


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


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
