"""The JBrowse 2 configuration of a hub: ``jbrowse/config.json``, and its checks.

The config holds the hub's assembly (the hub's .2bit for an assembly hub, UCSC's public .2bit for a
genome UCSC hosts) with refName aliases (``chr1`` = ``1``, ``chrM`` = ``MT``), one ``QuantitativeTrack``
with a ``BigWigAdapter`` per bigWig, grouped by family in categories, and a default session showing the
first family's tracks (the element tracks in a full hub). Locations are URIs relative to the config
file, so the hub works wherever it is served: a JBrowse web instance opened with
``?config=<hub url>/jbrowse/config.json`` resolves them against that URL, and ``jbrowse`` (the
``@jbrowse/cli``) takes the file as it is.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hubfiles import bigwig_problem

if TYPE_CHECKING:
    from .catalog import FamilyStyle, TrackStyle
    from .hubs import BigWigTrack, HubSpec

JBROWSE_DIR = "jbrowse"
JBROWSE_CONFIG = f"{JBROWSE_DIR}/config.json"
JBROWSE_ALIASES = f"{JBROWSE_DIR}/aliases.txt"
UCSC_TWOBIT = "https://hgdownload.soe.ucsc.edu/goldenPath/{g}/bigZips/{g}.2bit"
UCSC_SIZES = "https://hgdownload.soe.ucsc.edu/goldenPath/{g}/bigZips/{g}.chrom.sizes"


def jbrowse_files(spec: HubSpec, plan: list[tuple[FamilyStyle, list[tuple[TrackStyle, BigWigTrack]]]],
                  chroms: list[str], licences: dict[str, str]) -> dict[str, str]:
    """{hub-relative path: text} of the JBrowse config and its alias file.

    plan: the hub's families with their (style, track) pairs, in display order; chroms: the genome's
    chromosome names (for the aliases); licences: family -> licence of its model weights.
    """
    g = spec.genome

    def loc(rel: str) -> dict[str, str]:  # hub-relative path -> a location relative to the config file
        return {"uri": posixpath.relpath(rel, JBROWSE_DIR), "locationType": "UriLocation"}

    def remote(url: str) -> dict[str, str]:
        return {"uri": url, "locationType": "UriLocation"}

    if spec.assembly is not None:
        adapter = {"type": "TwoBitAdapter", "twoBitLocation": loc(spec.assembly.twobit),
                   "chromSizesLocation": loc(spec.assembly.chrom_sizes)}
        display_name = f"{spec.assembly.organism} ({g})"
    else:
        adapter = {"type": "TwoBitAdapter", "twoBitLocation": remote(UCSC_TWOBIT.format(g=g)),
                   "chromSizesLocation": remote(UCSC_SIZES.format(g=g))}
        display_name = g
    runs = {r.family: r for r in spec.families}
    tracks: list[dict[str, Any]] = []
    for fam, members in plan:
        run = runs[fam.family]
        for style, track in members:
            lo, hi = style.view_limits
            display: dict[str, Any] = {
                "type": "LinearWiggleDisplay", "displayId": f"{style.name}-LinearWiggleDisplay",
                "height": style.height[1] * 2,
                "renderers": {"XYPlotRenderer": {"type": "XYPlotRenderer",
                                                 "color": "rgb({},{},{})".format(*style.color)}},
            }
            if style.autoscale:
                display["autoscale"] = "local"
            else:
                display.update(minScore=lo, maxScore=hi)
            tracks.append({
                "type": "QuantitativeTrack",
                "trackId": style.name,
                "name": style.short_label,
                "description": style.long_label,
                "assemblyNames": [g],
                "category": [fam.short_label],
                "adapter": {"type": "BigWigAdapter", "bigWigLocation": loc(track.path)},
                "displays": [display],
                "metadata": {"family": fam.family, "channel": style.channel, "model": run.model,
                             "checkpoint": run.checkpoint_digest, "licence": licences.get(fam.family, ""),
                             "html": posixpath.relpath(f"{g}/{style.name}.html", JBROWSE_DIR)},
            })
    first = plan[0][1]
    region = _default_region(spec, chroms)
    session_tracks = [{"type": "QuantitativeTrack", "configuration": style.name,
                       "displays": [{"type": "LinearWiggleDisplay",
                                     "configuration": f"{style.name}-LinearWiggleDisplay"}]}
                      for style, _ in first]
    view: dict[str, Any] = {"id": "view", "type": "LinearGenomeView", "tracks": session_tracks}
    if region is not None:
        chrom, start, end = region
        view["displayedRegions"] = [{"refName": chrom, "start": start, "end": end, "assemblyName": g}]
    config = {
        "assemblies": [{
            "name": g, "displayName": display_name,
            "sequence": {"type": "ReferenceSequenceTrack", "trackId": f"{g}-ReferenceSequenceTrack",
                         "adapter": adapter},
            "refNameAliases": {"adapter": {"type": "RefNameAliasAdapter", "location": loc(JBROWSE_ALIASES)}},
        }],
        "tracks": tracks,
        "defaultSession": {"name": spec.short_label, "views": [view]},
    }
    return {JBROWSE_CONFIG: json.dumps(config, indent=2) + "\n", JBROWSE_ALIASES: _aliases(chroms)}


def _default_region(spec: HubSpec, chroms: list[str]) -> tuple[str, int, int] | None:
    if spec.assembly is not None:
        m = re.fullmatch(r"([^\s:]+):([0-9]+)-([0-9]+)", spec.assembly.default_pos)
        if m:
            return m[1], max(int(m[2]) - 1, 0), int(m[3])
    return None


def _aliases(chroms: list[str]) -> str:
    """One line per chromosome: its name, then the other naming convention's (UCSC chr1 <-> Ensembl 1)."""
    lines = []
    for c in chroms:
        if c in ("chrM", "MT"):
            other = "MT" if c == "chrM" else "chrM"
        elif c.startswith("chr"):
            other = c[3:]
        else:
            other = f"chr{c}"
        if other:
            lines.append(f"{c}\t{other}\n")
    return "".join(lines)


# -- checks ------------------------------------------------------------------------------------------


def check_jbrowse(root: Path, genome_chroms: dict[str, dict[str, int] | None],
                  bigwig: Callable[[Path, dict[str, int] | None], str | None] = bigwig_problem,
                  ) -> list[tuple[str, str]]:
    """(where, message) for every problem of ``root/jbrowse/config.json``: required keys, unique track
    ids, known assemblies, and every adapter's local file present inside the hub (and a bigWig).

    genome_chroms: the UCSC genomes of the hub with their chromosome sizes where known, to check each
    bigWig's chromosomes against.
    """
    path = root / JBROWSE_CONFIG
    where = JBROWSE_CONFIG
    problems: list[tuple[str, str]] = []
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [(where, f"not valid JSON: {e}")]
    if not isinstance(config, dict):
        return [(where, "a JBrowse config must be a JSON object")]
    assemblies = config.get("assemblies")
    if not isinstance(assemblies, list) or not assemblies:
        problems.append((where, "'assemblies' must list at least one assembly"))
        assemblies = []
    names: set[str] = set()
    for i, a in enumerate(assemblies):
        at = f"{where}: assemblies[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not isinstance(a.get("sequence"), dict):
            problems.append((at, "an assembly needs a 'name' and a 'sequence' track"))
            continue
        names.add(a["name"])
        problems += _locations(root, path, a["sequence"].get("adapter"), f"{at}.sequence.adapter", None)
        aliases = a.get("refNameAliases")
        if isinstance(aliases, dict):
            problems += _locations(root, path, aliases.get("adapter"), f"{at}.refNameAliases.adapter", None)
    tracks = config.get("tracks")
    if not isinstance(tracks, list) or not tracks:
        problems.append((where, "'tracks' must list at least one track"))
        tracks = []
    ids: set[str] = set()
    for i, t in enumerate(tracks):
        at = f"{where}: tracks[{i}]"
        if not isinstance(t, dict):
            problems.append((at, "a track must be an object"))
            continue
        tid = t.get("trackId")
        at = f"{where}: track {tid!r}" if isinstance(tid, str) else at
        for key in ("type", "trackId", "name", "assemblyNames", "adapter"):
            if key not in t:
                problems.append((at, f"missing required '{key}'"))
        if isinstance(tid, str):
            if tid in ids:
                problems.append((at, f"trackId {tid!r} is used by more than one track"))
            ids.add(tid)
        assemblies_of = t.get("assemblyNames")
        if isinstance(assemblies_of, list):
            for a in assemblies_of:
                if a not in names:
                    problems.append((at, f"assembly {a!r} is not in 'assemblies' ({', '.join(sorted(names))})"))
        adapter = t.get("adapter")
        if (t.get("type") == "QuantitativeTrack" and isinstance(adapter, dict)
                and adapter.get("type") != "BigWigAdapter"):
            problems.append((at, f"a QuantitativeTrack of a bigWig needs a BigWigAdapter, not {adapter.get('type')!r}"))
        chroms = None
        if isinstance(assemblies_of, list) and len(assemblies_of) == 1:
            chroms = genome_chroms.get(assemblies_of[0])
        problems += _locations(root, path, adapter, f"{at}.adapter", chroms, bigwig)
    session = config.get("defaultSession")
    if session is not None:
        for view in (session.get("views") or []) if isinstance(session, dict) else []:
            for st in view.get("tracks", []) if isinstance(view, dict) else []:
                conf = st.get("configuration") if isinstance(st, dict) else None
                if conf not in ids:
                    problems.append((f"{where}: defaultSession",
                                     f"shows track {conf!r}, which 'tracks' does not define"))
                elif not st.get("displays"):
                    problems.append((f"{where}: defaultSession", f"track {conf!r} lists no displays; JBrowse "
                                     "needs each session track's display (e.g. LinearWiggleDisplay)"))
    return problems


def _locations(root: Path, config: Path, adapter: Any, at: str, chroms: dict[str, int] | None,
               bigwig: Callable[[Path, dict[str, int] | None], str | None] | None = None) -> list[tuple[str, str]]:
    """Problems of the file locations (``*Location``) of an adapter: local ones must exist in the hub."""
    if not isinstance(adapter, dict):
        return [(at, "missing adapter")]
    problems = []
    for key, value in adapter.items():
        if not key.endswith("Location") and key != "location":
            continue
        if not isinstance(value, dict):
            problems.append((at, f"{key} must be an object with a 'uri'"))
            continue
        uri = value.get("uri", value.get("localPath"))
        if not isinstance(uri, str) or not uri:
            problems.append((at, f"{key} has no 'uri'"))
            continue
        if re.match(r"^https?://", uri):
            continue
        if uri.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
            problems.append((at, f"{key} {uri!r} must be relative to the config file or an http(s) URL"))
            continue
        target = (config.parent / uri).resolve()
        try:
            target.relative_to(root.resolve())
        except ValueError:
            problems.append((at, f"{key} {uri!r} points outside the hub directory"))
            continue
        if not target.is_file():
            problems.append((at, f"{key} {uri} does not exist (looked for {target.relative_to(root.resolve())})"))
            continue
        if bigwig is not None and key == "bigWigLocation":
            problem = bigwig(target, chroms)
            if problem:
                problems.append((at, f"{key} {uri} {problem}"))
    return problems
