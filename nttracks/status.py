"""``nttracks status DIR``: is the hub up to date with its inputs, what is stale and why, how the last run went.

``hub_status`` re-plans the hub from what its manifest recorded (the genome, the config file it was
built from, the chromosomes, regions and shard size), fingerprints every unit (family x chromosome)
as a run would (``fingerprints``) and compares each with the manifest's record: a unit is up to date
when its key is the same, else stale, with the inputs that changed (sequence, model weights, settings,
output format). Nothing is written and no model is run. The last run's outcome comes from the work
directory (``nightly``): built, up to date (nothing to do), failed (and why), running, or interrupted
(it said "running" and no process holds the lock any more).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import NttracksError, UsageError
from .fingerprints import why_stale
from .hubdir import lock_holder, sibling
from .nightly import LOG_FILE, RESULTS, SHARDS, read_last_run


@dataclass
class UnitStatus:
    family: str
    chrom: str
    up_to_date: bool
    reasons: list[str]
    shards: int
    built: str | None = None
    bases_per_second: float | None = None


@dataclass
class HubStatus:
    out: str
    built: str | None
    code_version: str | None
    up_to_date: bool
    units: list[UnitStatus] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # hub-level: a family added or dropped, config, files
    last_run: dict[str, Any] | None = None
    log: str | None = None
    error: str | None = None  # the inputs could not be checked (genome or config gone): why

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def summary(self) -> str:
        """The status as a person reads it."""
        lines = [f"hub {self.out}: built {self.built or 'never'}" + (f" by {self.code_version}" if self.code_version
                                                                     else "")]
        stale = [u for u in self.units if not u.up_to_date]
        if self.error is not None:
            lines.append(f"status: unknown: {self.error}")
        elif self.up_to_date:
            lines.append(f"status: up to date ({len(self.units)} units, family x chromosome)")
        else:
            lines.append(f"status: stale: {len(stale)} of {len(self.units)} units need computing"
                         + (f"; {'; '.join(self.reasons)}" if self.reasons else ""))
        for u in self.units:
            state = "up to date" if u.up_to_date else "stale: " + ", ".join(u.reasons)
            rate = f", {u.bases_per_second:,.0f} bases/s" if u.bases_per_second else ""
            built = f", built {u.built}" if u.up_to_date and u.built else ""
            lines.append(f"  {u.family} {u.chrom}: {state} ({u.shards} shards{built}{rate})")
        run = self.last_run
        if run:
            result = run.get("result", "?")
            text = RESULTS.get(result, result)
            if result == "failed" and run.get("error"):
                text = f"failed: {run['error']}"
            took = f", took {run['seconds']:.1f} s" if isinstance(run.get("seconds"), (int, float)) else ""
            when = run.get("finished") or run.get("started")
            done = ""
            if "computed" in run:
                done = f" ({run['computed']} shards computed, {run.get('reused', 0)} reused)"
            lines.append(f"last run: {text}, {when}{took}{done}")
        else:
            lines.append("last run: none recorded")
        if self.log:
            lines.append(f"log: {self.log}")
        return "\n".join(lines)


def hub_status(out: Path, *, config: Path | None = None) -> HubStatus:
    """The status of the hub in ``out`` (see the module docstring). config: check against this config
    file instead of the one the manifest names."""
    from .hubdir import read_manifest

    out = Path(out)
    manifest = read_manifest(out)
    if not manifest:
        raise UsageError(f"{out} holds no hub nttracks published (no manifest.json); build one with nttracks genome")
    work = sibling(out, "work")
    status = HubStatus(str(out), manifest.get("created"), f"nttracks {manifest.get('nttracks_version')}", False,
                       last_run=_last_run(out, work), log=str(work / LOG_FILE) if (work / LOG_FILE).is_file() else None)
    try:
        _compare(out, manifest, config, status)
    except NttracksError as exc:
        status.error = str(exc)
    return status


def _last_run(out: Path, work: Path) -> dict[str, Any] | None:
    run = read_last_run(work)
    if run is not None and run.get("result") == "running" and lock_holder(out) is None:
        finished = sum(1 for _ in (work / SHARDS).glob("*/*.shard"))
        run = {**run, "result": "interrupted",
               "error": f"it stopped without finishing (killed?); the next run resumes from the {finished} "
               "finished shards"}
    return run


def _compare(out: Path, manifest: dict[str, Any], config_path: Path | None, status: HubStatus) -> None:
    from .config import load_config
    from .fingerprints import fingerprint_plan, hub_key
    from .hubdir import published_files
    from .planning import RunRequest, plan_run

    request_info = manifest.get("request") or {}
    genome_info = manifest.get("genome") or {}
    source = config_path or (Path(manifest["config"]) if manifest.get("config") else None)
    if source is None or not Path(source).is_file():
        source = out / "config.yaml"  # the resolved config the hub was built with
    config = load_config(source)
    request = RunRequest(
        genome=request_info.get("genome") or genome_info.get("fasta"),
        config=config,
        chroms=tuple(genome_info["chroms"]) if genome_info.get("chroms") else None,
        device="cpu",  # planning only: the device a run used is part of the settings digest below
        regions=Path(genome_info["regions"]) if genome_info.get("regions") else None,
        exclude=Path(genome_info["exclude"]) if genome_info.get("exclude") else None,
        base_url=request_info.get("base_url"),
        **({"shard_bases": int(request_info["shard_bases"])} if request_info.get("shard_bases") else {}),
    )
    run = plan_run(request)
    device_type = str(manifest.get("device") or "cpu").split(":")[0] or "cpu"
    fams, catalog, hub_genome = fingerprint_plan(run, device_type)
    recorded = manifest.get("families") or {}
    for fb in fams:
        prev = recorded.get(fb.fam.name)
        if prev is None:
            status.reasons.append(f"family {fb.fam.name} is new in the config")
        units = (prev or {}).get("units") or {}
        for chrom, unit in fb.keys.units.items():
            rec = units.get(chrom)
            reasons = why_stale(rec, unit)
            status.units.append(UnitStatus(fb.fam.name, chrom, not reasons, reasons, len(unit.shards),
                                           (rec or {}).get("built"), (rec or {}).get("bases_per_second")))
        dropped = sorted(set(units) - set(fb.keys.units))
        if dropped:
            status.reasons.append(f"{fb.fam.name}: chromosomes {', '.join(dropped)} no longer selected")
    for name in sorted(set(recorded) - {fb.fam.name for fb in fams}):
        status.reasons.append(f"family {name} is no longer in the config")
    missing = sorted(f for f in published_files(out) if not (out / f).is_file())
    if missing:
        status.reasons.append(f"{len(missing)} published files are missing (first: {missing[0]})")
    same_hub = manifest.get("hub_key") == hub_key(request, catalog, hub_genome, fams)
    if not same_hub and not status.reasons and all(u.up_to_date for u in status.units):
        status.reasons.append("the hub's config, labels or code version changed: its pages will be rewritten")
    status.up_to_date = same_hub and not missing and all(u.up_to_date for u in status.units)
