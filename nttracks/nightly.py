"""What a run leaves in the hub's work directory for the next run and for ``nttracks status``.

The work directory (``.<hub>.nttracks-work/`` beside the hub, never published) holds::

    shards/            finished shard outputs by key (``shards.ShardCache``): resume and incremental runs
    last-run.json      the last run: started, finished, seconds, result, what it computed and published
    nttracks.log       every run's log, appended (rotated at 10 MB to nttracks.log.1)

A run that was killed leaves ``last-run.json`` saying "running"; ``status`` reports it as interrupted
once no process holds the hub's lock. ``nightly_diff`` compares a rebuilt family's new values with the
previous build's bigWigs, over the chromosomes whose shards changed (the others are the same bytes).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .fingerprints import FamilyKeys
from .tiling import Shard

FILE_ONLY = "nttracks_file_only"  # a log record's attribute: for the run's log file, not the terminal
LAST_RUN = "last-run.json"
LOG_FILE = "nttracks.log"
SHARDS = "shards"

RESULTS = {
    "built": "built and published",
    "up to date": "nothing to do: every input unchanged, no file written",
    "failed": "failed: nothing of it was published",
    "running": "running",
}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_last_run(work: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(work) / LAST_RUN).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_last_run(work: Path, record: Mapping[str, Any]) -> None:
    """Write ``last-run.json`` atomically (a reader sees the old record or the new one)."""
    path = Path(work) / LAST_RUN
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(json.dumps(dict(record), indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk must not hide the run's own error


@contextmanager
def run_log(work: Path) -> Iterator[Path]:
    """Append the "nttracks" logger's records (INFO and up) to the work directory's log for the block."""
    path = Path(work) / LOG_FILE
    logger = logging.getLogger("nttracks")
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 << 20, backupCount=1, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    previous = logger.level
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def nightly_diff(
    old_tracks: Mapping[str, Path],
    new_pieces: Mapping[str, Sequence[tuple[str, int, np.ndarray]]],
    channels: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Per track: mean absolute change per chromosome of the new values against the previous bigWig.

    old_tracks: {channel: previous bigWig}; new_pieces: {chrom: [(chrom, start, values (n, channels))]}
    of the chromosomes that changed. Means are over the bases scored in both builds. Returns {channel:
    {"changed": bool, "chromosome": the one with the largest change (None when none changed),
    "mean_abs_change": its mean, "by_chromosome": {chrom: mean}}}.
    """
    import pyBigWig

    out: dict[str, dict[str, Any]] = {}
    for ci, channel in enumerate(channels):
        by_chrom: dict[str, float] = {}
        bw = pyBigWig.open(str(old_tracks[channel]))
        try:
            old_chroms = bw.chroms()
            for chrom, pieces in new_pieces.items():
                total, count = 0.0, 0
                for _, start, values in pieces:
                    new = values[:, ci].astype(np.float64)
                    if chrom not in old_chroms:
                        continue
                    end = min(start + len(new), old_chroms[chrom])
                    if end <= start:
                        continue
                    old = np.asarray(bw.values(chrom, start, end, numpy=True), dtype=np.float64)
                    both = np.isfinite(old) & np.isfinite(new[: end - start])
                    total += float(np.abs(new[: end - start][both] - old[both]).sum())
                    count += int(both.sum())
                by_chrom[chrom] = round(total / count, 6) if count else 0.0
        finally:
            bw.close()
        worst = max(by_chrom, key=lambda c: by_chrom[c], default=None)
        changed = worst is not None and by_chrom[worst] > 0
        out[channel] = {
            "changed": changed,
            "chromosome": worst if changed else None,
            "mean_abs_change": by_chrom[worst] if changed and worst is not None else 0.0,
            "by_chromosome": by_chrom,
        }
    return out


def diff_html(diffs: Mapping[str, Mapping[str, Any]], names: Mapping[tuple[str, str], str]) -> str:
    """The nightly diff as an HTML fragment for the hub page: one row per track.

    diffs: {family: its manifest diff}; names: {(family, channel): track name}."""
    import html

    rows, previous = [], None
    for family, diff in diffs.items():
        previous = previous or diff.get("previous")
        for channel, d in diff.get("tracks", {}).items():
            name = html.escape(names.get((family, channel), f"{family} {channel}"))
            if d["changed"]:
                where = f"{html.escape(str(d['chromosome']))}</td><td>{d['mean_abs_change']:.6g}"
            else:
                where = "unchanged</td><td>0"
            rows.append(f"<tr><td>{name}</td><td>{where}</td></tr>")
    if not rows:
        return ""
    return (
        f"<h2>Changes since the build of {html.escape(str(previous or 'the previous build'))}</h2>\n"
        "<p>For each rebuilt track, the chromosome whose values changed most: the largest mean absolute "
        "change against the previous build, over the bases both builds scored.</p>\n"
        "<table>\n<tr><th>track</th><th>chromosome</th><th>mean |change|</th></tr>\n"
        + "\n".join(rows) + "\n</table>\n"
    )


def unit_records(
    shards: Sequence[Shard], channels: Sequence[str], keys: FamilyKeys, headers: Mapping[int, Mapping[str, Any] | None]
) -> dict[str, Any]:
    """The manifest's record of each unit of a family (one chromosome), from its shards' file headers
    ({shard index: header}): key, inputs, shards, seconds and bases/s, seam QC, code version, built."""
    units: dict[str, Any] = {}
    by_chrom: dict[str, list[dict[str, Any]]] = {}
    for shard in shards:
        by_chrom.setdefault(shard.chrom, []).append((headers[shard.index] or {}).get("meta", {}))
    for chrom, unit in keys.units.items():
        metas = by_chrom[chrom]
        seconds = sum(float(m.get("seconds", 0.0)) for m in metas)
        seam_sum = np.sum([m.get("seam_sum") or np.zeros(len(channels)) for m in metas], axis=0)
        seam_bases = sum(int(m.get("seam_bases", 0)) for m in metas)
        units[chrom] = {
            "key": unit.key,
            "inputs": unit.components,
            "shards": list(unit.shards),
            "bases": unit.bases,
            "seconds": round(seconds, 3),
            "bases_per_second": round(unit.bases / seconds, 1) if seconds > 0 else None,
            "seam_bases": seam_bases,
            "seam_qc": {ch: round(float(v) / max(seam_bases, 1), 9)
                        for ch, v in zip(channels, seam_sum, strict=True)},
            "code_version": f"nttracks {__version__}",
            "built": max((str(m.get("built", "")) for m in metas), default="") or now(),
            "_seam_sum": seam_sum,
        }
    return units
