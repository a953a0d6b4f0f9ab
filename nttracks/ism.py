"""``nttracks ism``: exact in-silico mutagenesis over small regions, as bigWig tracks in a hub.

Every base of the regions (merged, intersected with the genome's N-free contigs: ``regions.restrict_contigs``)
is mutated to each of its three alternatives, and each SNV is scored exactly as ``nttracks variants`` scores
it (``variants.score_sites``: its own window centred on it, the masked-LM LLR with its token masked, the
embedding distances). Per chosen score (``ISM_SCORES``) the hub gets five tracks: ``<score>_max``, the maximum
over the three alternatives, and ``<score>_A`` .. ``<score>_T``, the score of mutating to that base (0 where
it is the reference base: no change). Bases with no window keeping ``min_flank`` bp each side within their
contig are absent from the tracks, never 0.

The hub is written with ``hubs.write_hub`` and its own track catalog (``trackhubs/ism_catalog.yaml``), as an
assembly hub for a genome UCSC does not host; a new --out is staged beside it and renamed into place.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import UsageError, VariantsError
from .sites import KMER, Site, place
from .variants import VariantSettings, score_sites

ISM_SCORES = ("llr", "l1_mean", "l2_mean", "l1_token", "l2_token")
DEFAULT_SCORES = ("llr", "l2_mean")
ALTS = "ACGT"
MAX_BASES = 100_000  # 3 windows per base: more is a genome-wide run, not ISM over small regions
QUANTUM = 1e-4


def ism_channels(scores: Sequence[str]) -> list[str]:
    return [f"{s}_{alt}" for s in scores for alt in ("max", *ALTS)]


@dataclass(frozen=True)
class IsmResult:
    out: Path
    tracks: dict[str, str]
    bases: int
    unscored: int


def check_scores(scores: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in scores if s not in ISM_SCORES]
    if unknown or not scores:
        raise UsageError(f"--scores {','.join(scores)}: choose from {', '.join(ISM_SCORES)}")
    if len(set(scores)) != len(scores):
        raise UsageError(f"--scores {','.join(scores)} names a score twice")
    return tuple(scores)


def ism_values(model: Any, genome: Any, chrom: str, start: int, end: int, contig: tuple[int, int],
               settings: VariantSettings, scores: Sequence[str], *, device: Any,
               progress: Callable[[int], Any] | None = None, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(scored (n,) bool, values (n, len(scores) * 5) float32) for bases [start, end) of ``chrom`` (inside the
    N-free ``contig``), columns in ``ism_channels(scores)`` order."""
    codes = genome.codes(chrom)

    def read(name: str) -> np.ndarray:
        return codes

    n = end - start
    values = np.zeros((n, len(scores) * 5), dtype=np.float32)
    scored = np.zeros(n, dtype=bool)
    for lo in range(start, end, chunk):
        hi = min(lo + chunk, end)
        sites: list[Site] = []
        where: list[tuple[int, int]] = []  # (base index, alt code) of each site
        for p in range(lo, hi):
            ref = int(codes[p])
            for alt in range(4):
                if alt == ref:
                    continue
                site = place(chrom, p, p + 1, ALTS[ref], ALTS[alt], contig, settings)
                if site is None:
                    break
                sites.append(site)
                where.append((p - start, alt))
        result = score_sites(model, sites, read, batch_size=settings.batch_size, device=device,
                             reverse_complement=settings.reverse_complement, llr=True)
        for (i, alt), row in zip(where, result, strict=True):
            scored[i] = True
            for k, name in enumerate(scores):
                values[i, 5 * k + 1 + alt] = row[name]
        if progress is not None:
            progress(hi - lo)
    for k in range(len(scores)):
        block = values[:, 5 * k + 1 : 5 * k + 5]
        ref = codes[start:end]
        alt_only = np.where(np.arange(4)[None, :] == ref[:, None], -np.inf, block)
        values[:, 5 * k] = alt_only.max(axis=1)
    values[~scored] = 0
    return scored, values


def run_ism(
    genome: Any,
    regions: Path,
    out: Path,
    settings: VariantSettings,
    *,
    model: Any = None,
    model_label: str = "",
    digest: str = "",
    scores: Sequence[str] = DEFAULT_SCORES,
    device: Any = "auto",
    max_bases: int = MAX_BASES,
    progress: Callable[[int], Any] | None = None,
    hub_name: str = "nttracks_ism",
) -> IsmResult:
    """Score every SNV of ``regions`` and write the bigWigs and hub into ``out`` (see the module docstring)."""
    from .bigwigfile import BigWigFile
    from .catalog import load_catalog
    from .hubs import BigWigTrack, FamilyRun, HubSpec, validate_hub, write_hub
    from .predict import resolve_device
    from .regions import restrict_contigs
    from .registry import open_genome
    from .resources import resource_dir
    from .runs import _write_assembly
    from .stitch import quantize
    from .variants import load_variant_model

    scores = check_scores(scores)
    if not Path(regions).is_file():
        raise VariantsError(f"--regions {regions}: no such file; give a BED file of the regions to mutate")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "ism.json").is_file())):
        raise UsageError(f"--out {out} holds files nttracks ism did not write; pass a new or empty directory")
    device = resolve_device(device) if isinstance(device, str) else device
    genome = genome if hasattr(genome, "chrom_sizes") else open_genome(genome)
    if model is None:
        model, model_label, digest = load_variant_model(settings, device)
    pieces = restrict_contigs(genome.contigs(), genome.chrom_sizes, regions=regions)
    total = sum(p.length for p in pieces)
    if not pieces:
        raise VariantsError(f"--regions {regions}: no N-free base of the genome lies in the regions")
    if total > max_bases:
        raise VariantsError(f"--regions {regions} covers {total:,} N-free bases; in-silico mutagenesis scores 3 "
                            f"SNVs per base, so it is limited to {max_bases:,}: give smaller regions, or raise "
                            "--max-bases")
    catalog = load_catalog(resource_dir("trackhubs") / "ism_catalog.yaml")
    hub_genome = genome.ucsc_name or re.sub(r"[^A-Za-z0-9_]", "_", genome.name)
    channels = ism_channels(scores)
    staging = out.with_name(f".{out.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / hub_genome / "bw").mkdir(parents=True)
    rel = {ch: f"{hub_genome}/bw/{catalog.track('ism', ch).name}.bw" for ch in channels}
    sizes = list(genome.chrom_sizes.items())
    files = [BigWigFile(staging / rel[ch], sizes) for ch in channels]
    contigs = {c.chrom: [] for c in genome.contigs()}
    for c in genome.contigs():
        contigs[c.chrom].append((c.start, c.end))
    scored_total = 0
    try:
        for piece in pieces:
            contig = next((s, e) for s, e in contigs[piece.chrom] if s <= piece.start and piece.end <= e)
            scored, values = ism_values(model, genome, piece.chrom, piece.start, piece.end, contig, settings,
                                        scores, device=device, progress=progress)
            values = quantize(values, np.full(values.shape[1], QUANTUM))
            scored_total += int(scored.sum())
            for run_start, run_end in _runs(scored):
                for j, bw in enumerate(files):
                    bw.add(piece.chrom, piece.start + run_start, values[run_start:run_end, j])
        if not scored_total:
            raise VariantsError(f"--regions {regions}: every base is within min_flank ({settings.flank} bp) of a "
                                "contig end, so none could be scored; lower min_flank or --window")
        for bw in files:
            bw.close()
        description = {"regions": str(Path(regions).resolve()), "scores": list(scores),
                       **dataclasses.asdict(settings)}
        spec = HubSpec(
            hub_name=hub_name, short_label="nttracks ISM", long_label=f"NT in-silico mutagenesis on {genome.name}",
            email="nttracks@example.org", genome=hub_genome,
            assembly=_write_assembly(genome, hub_genome, staging) if genome.ucsc_name is None else None,
            tracks=tuple(BigWigTrack("ism", ch, rel[ch]) for ch in channels),
            families=(FamilyRun("ism", model_label, digest, yaml.safe_dump(description, sort_keys=False), {}),),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            code_version=_version(),
        )
        write_hub(spec, staging, catalog=catalog)
        problems = validate_hub(staging)
        if problems:
            raise VariantsError("the ISM hub fails validation (a bug in nttracks):\n  " + "\n  ".join(problems))
        summary = {"genome": genome.name, "regions": description["regions"], "bases": total,
                   "bases_scored": scored_total, "model": model_label, "tracks": rel, "settings": description}
        (staging / "ism.json").write_text(json.dumps(summary, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        for bw in files:
            bw.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return IsmResult(out, rel, total, total - scored_total)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _version() -> str:
    from . import __version__

    return f"nttracks {__version__}"


__all__ = ["ALTS", "ISM_SCORES", "KMER", "IsmResult", "ism_channels", "ism_values", "run_ism"]
