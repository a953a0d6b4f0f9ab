"""Fingerprints: what every shard, unit and family build was made from, as digests.

A shard's key is the SHA-256 of four inputs, each a digest of its own so a change can be named:

    sequence   the shard's bases with its halo (every window it runs, start to end), its windows'
               positions and the bases it writes: a changed base, N gap or window layout changes it
    weights    the model's weights (``Family.weights_digest``: the checkpoint files), read without
               loading the model
    settings   the family's resolved settings (``Family.describe``, without ``batch_size``, which never
               changes the output), its channels and their quanta, and the device type (``precision:
               auto`` means bf16 on a GPU)
    format     the shard file format and bigWig layout version (``OUTPUT_FORMAT``)

``fingerprint_plan`` keys every family of a run plan; ``hub_key`` digests everything the published
hub is made of (config values, base URL, catalog, code version and every family's build key): a run
whose hub key matches the live hub's manifest has nothing to do.

A unit is one family on one chromosome: its key digests its shards' keys; its components digest the
shards' components, so ``nttracks status`` can say which input changed. A family's build key digests
its units' keys with the genome's chromosome sizes and the tracks' paths: a family's bigWigs are
rewritten exactly when it changes. The code version is in the hub key (the pages show it), never in a
shard's or a build's: upgrading nttracks rewrites the pages but recomputes nothing unless
``OUTPUT_FORMAT`` changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from . import __version__
from .catalog import Catalog, load_catalog
from .errors import UsageError
from .genome import Genome
from .planning import FamilyPlan, RunPlan, RunRequest
from .shards import FORMAT as SHARD_FORMAT
from .tiling import Shard, TilePlan

OUTPUT_FORMAT = f"shard{SHARD_FORMAT}-bigwig1"
COMPONENTS = ("sequence", "weights", "settings", "format")
NOT_KEYED = ("batch_size",)  # settings that never change a value (the batch-size invariance tests hold it)

ReadCodes = Callable[[str, int, int], np.ndarray]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two part lists hash alike
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class ShardKey:
    """One shard's key and the digests it is made of."""

    key: str
    sequence: str


@dataclass(frozen=True)
class UnitKey:
    """One family on one chromosome: its key, its component digests and its shards' keys in order."""

    family: str
    chrom: str
    key: str
    components: dict[str, str]
    shards: tuple[str, ...]
    bases: int


@dataclass(frozen=True)
class FamilyKeys:
    """Every key of one family's build, in genome order."""

    family: str
    shards: tuple[ShardKey, ...]  # parallel to the family's shards
    units: dict[str, UnitKey]  # by chromosome
    build: str  # the family's bigWigs: changes exactly when a unit, the chromosome sizes or a path does
    weights: str
    settings: str


def settings_digest(described: Mapping[str, Any], channels: Sequence[str], quanta: Sequence[float],
                    device_type: str) -> str:
    """Digest of a family's resolved settings (``Family.describe``) as they bear on its values."""
    keyed = {k: v for k, v in described.items() if k not in NOT_KEYED}
    text = json.dumps({"settings": keyed, "channels": list(channels), "quanta": [float(q) for q in quanta],
                       "device": device_type}, sort_keys=True, default=str)
    return _digest("settings", text)


def _span(plan: TilePlan, rows: np.ndarray) -> tuple[int, int]:
    return int(plan.start[rows[0]]), int(plan.end[rows].max())


def _sequence_digest(plan: TilePlan, chrom: str, rows: np.ndarray, writes: np.ndarray, codes: np.ndarray,
                     offset: int) -> str:
    """Digest of the bases ``rows``' windows see (``codes`` holds the chromosome from ``offset``), the
    windows' positions and the bases written."""
    lo, hi = _span(plan, rows)
    layout = np.stack([plan.start[rows], plan.end[rows], plan.keep_start[rows], plan.keep_end[rows]]).astype("<i8")
    return _digest(
        "sequence", chrom, np.asarray([lo, hi], dtype="<i8").tobytes(),
        np.ascontiguousarray(codes[lo - offset : hi - offset]).tobytes(), layout.tobytes(),
        np.ascontiguousarray(writes, dtype="<i8").tobytes(),
    )


def family_keys(
    family: str,
    plan: TilePlan,
    shards: Sequence[Shard],
    read: ReadCodes,
    *,
    weights: str,
    settings: str,
    chrom_sizes: Mapping[str, int],
    tracks: Sequence[str],
) -> FamilyKeys:
    """The keys of every shard, unit and the build of one family (see the module docstring).

    A unit's sequence digest covers the chromosome's windows and written bases as a whole, so cutting
    it into shards of another size changes its key (other shard files) but not its sequence digest."""
    by_chrom: dict[str, list[Shard]] = {}
    for shard in shards:
        by_chrom.setdefault(shard.chrom, []).append(shard)
    keys: dict[int, ShardKey] = {}
    units = {}
    for chrom, items in by_chrom.items():
        rows = np.unique(np.concatenate([s.rows for s in items]))
        lo, hi = _span(plan, rows)
        codes = read(chrom, lo, hi)  # once per chromosome: the shards' spans are views of it
        for shard in items:
            sequence = _sequence_digest(plan, chrom, shard.rows, shard.writes, codes, lo)
            core = np.asarray([shard.core], dtype="<i8").tobytes()
            keys[shard.index] = ShardKey(_digest("shard", sequence, core, weights, settings, OUTPUT_FORMAT), sequence)
        writes = np.concatenate([s.writes for s in items])
        shard_keys = tuple(keys[s.index].key for s in items)
        components = {
            "sequence": _sequence_digest(plan, chrom, rows, writes, codes, lo),
            "weights": weights,
            "settings": settings,
            "format": OUTPUT_FORMAT,
        }
        units[chrom] = UnitKey(family, chrom, _digest("unit", *shard_keys), components, shard_keys,
                               sum(s.bases for s in items))
    sizes = json.dumps(list(chrom_sizes.items()))
    build = _digest("build", family, sizes, json.dumps(list(tracks)), *(f"{c}={u.key}" for c, u in units.items()))
    return FamilyKeys(family, tuple(keys[s.index] for s in shards), units, build, weights, settings)


@dataclass(frozen=True, eq=False)
class FingerprintedFamily:
    """A family of the plan with its tracks' paths, quanta and keys."""

    fam: FamilyPlan
    rel: list[str]  # the family's bigWigs, relative to the hub
    quanta: np.ndarray
    keys: FamilyKeys


def fingerprint_plan(run: RunPlan, device_type: str) -> tuple[list[FingerprintedFamily], Catalog, str]:
    """Every family of ``run`` with its keys (``fingerprints``), the catalog and the hub's genome name.
    device_type: the executor's ("cpu", "cuda"): part of the settings digest."""
    genome = run.genome
    if genome is None:
        raise UsageError("a run needs the genome's FASTA; only a dry run plans from chromosome sizes")
    catalog = load_catalog()
    hub_genome = genome.ucsc_name or re.sub(r"[^A-Za-z0-9_]", "_", genome.name)
    fams = [_fingerprint(fam, catalog, genome, hub_genome, device_type) for fam in run.families]
    return fams, catalog, hub_genome


def _fingerprint(
    fam: FamilyPlan, catalog: Catalog, genome: Genome, hub_genome: str, device_type: str
) -> FingerprintedFamily:
    rel = [f"{hub_genome}/bw/{catalog.track(fam.name, ch).name}.bw" for ch in fam.channels]
    quanta = np.array([catalog.track(fam.name, ch).quantum for ch in fam.channels], dtype=np.float64)
    described = fam.family.describe(fam.settings, fam.geometry, fam.plan.overlap)
    keys = family_keys(
        fam.name, fam.plan, fam.shards, genome.codes,
        weights=fam.family.weights_digest(fam.settings),
        settings=settings_digest(described, fam.channels, quanta, device_type),
        chrom_sizes=genome.chrom_sizes, tracks=rel,
    )
    return FingerprintedFamily(fam, rel, quanta, keys)


def hub_key(request: RunRequest, catalog: Catalog, hub_genome: str, fams: list[FingerprintedFamily]) -> str:
    """Digest of everything the published hub is made of: unchanged means nothing to publish."""
    text = json.dumps({
        "version": __version__,
        "format": OUTPUT_FORMAT,
        "config": yaml.safe_load(request.config.to_yaml()),  # the values, not the "resolved from" comment
        "base_url": request.base_url,
        "hub_genome": hub_genome,
        "catalog": repr(catalog),
        "builds": {f.fam.name: f.keys.build for f in fams},
    }, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def why_stale(recorded: Mapping[str, Any] | None, unit: UnitKey) -> list[str]:
    """The inputs of ``unit`` that differ from a manifest's record of it (empty: up to date)."""
    if not recorded:
        return ["never built"]
    if recorded.get("key") == unit.key:
        return []
    old = recorded.get("inputs") or {}
    changed = [c for c in COMPONENTS if old.get(c) != unit.components[c]]
    return [_REASON[c] for c in changed] or ["its shards were cut differently (shard size)"]


_REASON = {
    "sequence": "sequence changed",
    "weights": "model weights changed",
    "settings": "settings changed",
    "format": "output format changed",
}
