"""Planning a run: which windows every track family needs, checked before anything is written.

``plan_run`` checks the config, the genome, the chromosome names, the regions and the window
geometry of every family, and tiles the selected contigs. A dry run of a registered genome that is
not downloaded yet plans from the shipped chromosome sizes, offline. ``RunPlan.summary`` is what
``--dry-run`` prints: windows, bases scored, estimated GPU time and output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .bases import Geometry
from .config import Config, FamilyConfig
from .errors import ChromosomeError, ConfigError, ModelError, NothingToScoreError
from .genome import Contig, Genome
from .registry import REGISTRY, chrom_sizes_of, open_genome, registered_fasta_path
from .tiling import TilePlan, plan_tiles, resolve_stride

SEGMENT_NT_HEAD_PARAMS = 66.25e6  # nt_spec.md §3.3
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


@dataclass(frozen=True)
class FamilyPlan:
    """One track family: its settings, geometry, tiling and the catalog styles of its channels."""

    name: str
    settings: FamilyConfig
    geometry: Geometry
    plan: TilePlan


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
            channels = len(channel_names(fam.name))
            lo, hi = (b * p.bases_scored * channels for b in BYTES_PER_BASE)
            total_lo, total_hi = total_lo + lo, total_hi + hi
            lines.append(
                f"{fam.name}: {p.n_windows:,} windows of {fam.geometry.window:,} bp "
                f"(overlap {p.overlap:,} bp, stitch {fam.settings.stitch}, batch {fam.settings.batch_size}); "
                f"{p.bases_scored:,} bases scored, {p.bases_unscored:,} unscored; "
                f"{channels} bigWig tracks, about {_size(lo)}-{_size(hi)}"
            )
            flops = plan_flops(fam)
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


def default_geometry(family: str) -> Geometry:
    """The geometry a family's model declares, known without loading its weights."""
    if family == "toy":
        from .models.toy import TOY_GEOMETRY

        return TOY_GEOMETRY
    if family == "elements":
        from .models.segment_nt import GEOMETRY

        return GEOMETRY
    raise ConfigError(f"track family {family!r} has no model yet")


def channel_names(family: str) -> tuple[str, ...]:
    """Output channels of a family's model (for planning; the loaded model's own list is used to run)."""
    if family == "toy":
        from .models.toy import BaseIdentityModel

        return BaseIdentityModel.channels
    from .models.segment_nt import FEATURES

    return tuple(FEATURES)


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
    geometries = {name: _family_geometry(name, fam, config) for name, fam in config.families.items()}
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
    if request.regions is not None or request.exclude is not None:
        from .regions import restrict_contigs

        contigs = restrict_contigs(contigs, sizes, regions=request.regions, exclude=request.exclude)
        if not contigs:
            raise NothingToScoreError(
                "--regions/--exclude leave no base of the selected chromosomes to score; "
                "check that the BED files are for this genome"
            )
    spans = [(c.chrom, c.start, c.end) for c in contigs]
    families = []
    for fam_name, fam in config.families.items():
        geometry = geometries[fam_name]
        plan = plan_tiles(spans, geometry, stride=resolve_stride(geometry, fam.overlap), chroms=list(sizes))
        if plan.n_windows == 0:
            raise NothingToScoreError(
                f"nothing to score for {fam_name}: the selected sequence "
                f"({sum(c.length for c in contigs):,} bp in {len(contigs)} N-free contigs) has no stretch of "
                f"at least {geometry.min_length} bp; check --chroms, --regions and --exclude"
            )
        families.append(FamilyPlan(fam_name, fam, geometry, plan))
    return RunPlan(name, dict(sizes), source, genome, tuple(contigs), tuple(families))


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


def plan_flops(fam: FamilyPlan) -> float:
    """Forward FLOPs of a family's windows (0 for the toy model), for the published model shapes.

    Per token per layer: 8h^2 (q, k, v, o) + 6 h f (SwiGLU up and down) + 4 T h (attention scores and
    values), engineering.md §2; SegmentNT adds its U-Net head (about 2 FLOP per parameter per token).
    """
    if fam.name != "elements":
        return 0.0
    from .models.nt import NTConfig

    cfg = NTConfig()  # SegmentNT's NT-v2-500M backbone
    lengths = fam.plan.window_lengths()
    tokens = lengths // 6 + 1
    per_token = cfg.layers * (8 * cfg.hidden**2 + 6 * cfg.hidden * cfg.intermediate + 4 * tokens * cfg.hidden)
    return float((tokens * (per_token + 2 * SEGMENT_NT_HEAD_PARAMS)).sum())


def _family_geometry(name: str, fam: FamilyConfig, config: Config) -> Geometry:
    geometry = default_geometry(name)
    if fam.window is None:
        return geometry
    try:
        return geometry.with_window(fam.window)
    except ModelError:
        raise ConfigError(
            f"{config.source}: families.{name}.window: {fam.window} bp is not a window this model takes; "
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
