"""Genome-browser hubs: the track catalog, the UCSC hub writer, the WashU datahub and a validator.

``write_hub`` turns a run manifest (``HubSpec``) into a UCSC track hub and a WashU datahub, styled by the
catalog in ``trackhubs/catalog.yaml``. Layout, relative to the hub directory::

    hub.txt                  hub stanza; written last, so a reader never sees a half-written hub
    genomes.txt              one genome stanza (assembly hubs add twoBitPath, organism, defaultPos, ...)
    hub.html                 descriptionUrl: the hub overview page
    washu.json               WashU datahub (only with a base_url: WashU needs absolute URLs)
    <genome>/trackDb.txt     one container per family (composite or multiWig) and one leaf per channel
    <genome>/<track>.html    a description page for every stanza, containers included
    <genome>/groups.txt      assembly hubs only: the track groups
    <genome>/description.html  assembly hubs only: the assembly's page (htmlPath)

``validate_hub`` mirrors UCSC hubCheck's rules (see ``shared/reference/hubs.md`` §1) plus our own
stricter ones (name pattern, 17/76 label limits, files inside the hub, non-empty bigWigs).
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import string
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from nttracks.errors import ConfigError, OutputError
from nttracks.resources import resource_dir

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
GENOME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
SHORT_LABEL_MAX = 17
LONG_LABEL_MAX = 76
VISIBILITIES = ("hide", "dense", "squish", "pack", "full")
CONTAINERS = ("composite", "multiWig", "none")
WASHU_FILE = "washu.json"
# Settings a template may use; anything else in a template is a catalog error.
TEMPLATE_FIELDS = ("family_label", "family_long_label", "track_label", "track_long_label", "channel",
                   "genome", "model")

# ---------------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackStyle:
    """How one model output channel is drawn. ``quantum`` is the step values are stored at (1/255)."""

    family: str
    channel: str
    name: str
    short_label: str
    long_label: str
    color: tuple[int, int, int]
    view_limits: tuple[float, float]
    quantum: float
    visibility: str
    priority: float
    autoscale: bool = False
    height: tuple[int, int, int] = (64, 32, 8)  # maxHeightPixels max:default:min


@dataclass(frozen=True)
class FamilyStyle:
    """A track family: its container stanza and its tracks in display order.

    ``html`` is the template's file name in the catalog folder; ``html_template`` its text.
    """

    family: str
    short_label: str
    long_label: str
    container: str
    html: str
    tracks: tuple[TrackStyle, ...]
    group: str = ""
    visibility: str = "full"
    priority: float = 0.0
    html_template: str = ""


@dataclass(frozen=True)
class Catalog:
    families: tuple[FamilyStyle, ...]
    groups: tuple[tuple[str, str], ...]  # (name, label), in order
    path: Path

    def family(self, name: str) -> FamilyStyle:
        for fam in self.families:
            if fam.family == name:
                return fam
        known = ", ".join(f.family for f in self.families)
        raise ConfigError(f"unknown track family {name!r} (catalog {self.path} has: {known})")

    def track(self, family: str, channel: str) -> TrackStyle:
        fam = self.family(family)
        for t in fam.tracks:
            if t.channel == channel:
                return t
        known = ", ".join(t.channel for t in fam.tracks)
        raise ConfigError(
            f"unknown channel {channel!r} of family {family!r} (catalog {self.path} has: {known})")


_FAMILY_KEYS = {"short_label", "long_label", "container", "html", "group", "visibility", "priority",
                "defaults", "tracks"}
_TRACK_KEYS = {"channel", "suffix", "short_label", "long_label", "color", "view_limits", "autoscale",
               "quantum", "height", "visibility", "priority"}
_DEFAULTABLE = _TRACK_KEYS - {"channel", "suffix", "short_label", "long_label"}


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and check the track catalog (default: the packaged ``trackhubs/catalog.yaml``).

    Every problem is a ``ConfigError`` naming the file and the key, e.g. ``families.toy.tracks[2].color``.
    """
    path = Path(path) if path is not None else resource_dir("trackhubs") / "catalog.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read track catalog {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"track catalog {path} is not valid YAML: {e}") from e
    err = _Complainer(path)
    top = err.mapping(raw, "catalog", required={"families", "groups"}, allowed={"families", "groups"})
    groups = []
    for i, g in enumerate(err.sequence(top["groups"], "groups")):
        g = err.mapping(g, f"groups[{i}]", required={"name", "label"}, allowed={"name", "label"})
        name = err.name(g["name"], f"groups[{i}].name")
        groups.append((name, err.text(g["label"], f"groups[{i}].label", LONG_LABEL_MAX)))
    group_names = {g[0] for g in groups}
    if len(group_names) != len(groups):
        err.fail("groups", "group names must be unique")

    families = []
    seen_names: dict[str, str] = {}
    for fam_name, fam in err.mapping(top["families"], "families").items():
        where = f"families.{fam_name}"
        err.name(fam_name, where)
        fam = err.mapping(fam, where, required=_FAMILY_KEYS - {"defaults", "group", "visibility", "priority"},
                          allowed=_FAMILY_KEYS)
        container = fam["container"]
        if container not in CONTAINERS:
            err.fail(f"{where}.container", f"{container!r} is not one of {', '.join(CONTAINERS)}")
        group = fam.get("group", groups[0][0] if groups else "")
        if group not in group_names:
            err.fail(f"{where}.group", f"{group!r} is not a group listed under 'groups'")
        template_name = err.text(fam["html"], f"{where}.html", 200)
        template = _read_template(path.parent / template_name, err, f"{where}.html")
        defaults = err.mapping(fam.get("defaults", {}), f"{where}.defaults", allowed=_DEFAULTABLE)
        tracks = []
        for i, t in enumerate(err.sequence(fam["tracks"], f"{where}.tracks")):
            tw = f"{where}.tracks[{i}]"
            t = {**defaults, **err.mapping(t, tw, allowed=_TRACK_KEYS)}
            missing = sorted(_TRACK_KEYS - t.keys())
            if missing:
                err.fail(tw, f"missing key(s) {', '.join(missing)} (set them on the track or in defaults)")
            tracks.append(_track_style(fam_name, t, tw, err))
        if not tracks:
            err.fail(f"{where}.tracks", "a family needs at least one track")
        if container == "multiWig" and len(tracks) < 2:
            err.fail(f"{where}.container", "a multiWig needs at least two tracks; use composite or none")
        for t in [*tracks, None]:
            name = t.name if t else fam_name
            if name in seen_names:
                err.fail(where, f"track name {name!r} is also used by {seen_names[name]}")
            seen_names[name] = where
        channels = [t.channel for t in tracks]
        if len(set(channels)) != len(channels):
            err.fail(f"{where}.tracks", "channels must be unique within a family")
        families.append(FamilyStyle(
            family=fam_name,
            short_label=err.text(fam["short_label"], f"{where}.short_label", SHORT_LABEL_MAX),
            long_label=err.text(fam["long_label"], f"{where}.long_label", LONG_LABEL_MAX),
            container=container, html=template_name, tracks=tuple(tracks), group=group,
            visibility=err.choice(fam.get("visibility", "full"), f"{where}.visibility", VISIBILITIES),
            priority=err.number(fam.get("priority", len(families) + 1), f"{where}.priority"),
            html_template=template,
        ))
    if not families:
        err.fail("families", "the catalog lists no track family")
    return Catalog(families=tuple(families), groups=tuple(groups), path=path)


def _track_style(family: str, t: dict[str, Any], where: str, err: _Complainer) -> TrackStyle:
    suffix = t["suffix"]
    if not isinstance(suffix, str) or not re.fullmatch(r"[A-Za-z0-9_]+", suffix):
        err.fail(f"{where}.suffix", f"{suffix!r} must be letters, digits and '_' only")
    name = err.name(f"{family}_{suffix}", f"{where}.suffix")
    lo_hi = t["view_limits"]
    if (not isinstance(lo_hi, list) or len(lo_hi) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo_hi)
            or not lo_hi[0] < lo_hi[1]):
        err.fail(f"{where}.view_limits", f"{lo_hi!r} must be [lower, upper] numbers with lower < upper")
    height = t["height"]
    if (not isinstance(height, list) or len(height) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in height)
            or not height[0] >= height[1] >= height[2]):
        err.fail(f"{where}.height",
                 f"{height!r} must be [max, default, min] pixels, max >= default >= min > 0")
    if not isinstance(t["autoscale"], bool):
        err.fail(f"{where}.autoscale", f"{t['autoscale']!r} must be true or false")
    return TrackStyle(
        family=family, channel=err.text(t["channel"], f"{where}.channel", 100), name=name,
        short_label=err.text(t["short_label"], f"{where}.short_label", SHORT_LABEL_MAX),
        long_label=err.text(t["long_label"], f"{where}.long_label", LONG_LABEL_MAX),
        color=err.color(t["color"], f"{where}.color"),
        view_limits=(float(lo_hi[0]), float(lo_hi[1])),
        quantum=err.quantum(t["quantum"], f"{where}.quantum"),
        visibility=err.choice(t["visibility"], f"{where}.visibility", VISIBILITIES),
        priority=err.number(t["priority"], f"{where}.priority"),
        autoscale=t["autoscale"], height=(height[0], height[1], height[2]),
    )


def _read_template(path: Path, err: _Complainer, where: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        err.fail(where, f"cannot read description template {path}: {e.strerror or e}")
    try:
        string.Template(text).substitute({k: "x" for k in TEMPLATE_FIELDS})
    except (KeyError, ValueError) as e:
        err.fail(where, f"template {path.name} uses an unknown or malformed placeholder {e}; "
                 f"known: {', '.join('$' + k for k in TEMPLATE_FIELDS)}")
    return text


class _Complainer:
    """Type checks for the catalog whose errors name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> Any:
        raise ConfigError(f"track catalog {self.path}: {where}: {message}")

    def mapping(self, value: Any, where: str, *, required: Set[str] = frozenset(),
                allowed: Set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(str(k) for k in value if k not in allowed)
            if unknown:
                self.fail(where,
                          f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        missing = sorted(required - value.keys())
        if missing:
            self.fail(where, f"missing key(s) {', '.join(missing)}")
        return value

    def sequence(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str, limit: int) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected non-empty text, got {value!r}")
        if not (value.isascii() and value.isprintable()) or value != value.strip():
            self.fail(where, f"{value!r} must be printable ASCII on one line, without outer spaces")
        if len(value) > limit:
            self.fail(where, f"{value!r} has {len(value)} characters; at most {limit} are allowed")
        return value

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not NAME_RE.fullmatch(value):
            self.fail(where, f"name {value!r} must match {NAME_RE.pattern}")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(where, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"{value!r} is not a number")
        return float(value)

    def color(self, value: Any, where: str) -> tuple[int, int, int]:
        rgb = _parse_color(value if isinstance(value, str) else "")
        if (isinstance(value, list) and len(value) == 3
                and all(type(v) is int and 0 <= v <= 255 for v in value)):
            rgb = (value[0], value[1], value[2])
        if rgb is None:
            self.fail(where, f"{value!r} must be \"R,G,B\" with each value 0-255")
        return rgb

    def quantum(self, value: Any, where: str) -> float:
        if isinstance(value, str) and re.fullmatch(r"1/[1-9][0-9]*", value.strip()):
            return 1.0 / int(value.strip()[2:])
        if type(value) is int and value >= 1:
            return 1.0 / value
        if type(value) is float and 0.0 < value < 1.0:
            return value
        return self.fail(where,
                         f"{value!r} must be an integer n >= 1 (step 1/n), \"1/n\", or a step in (0, 1)")


def _parse_color(value: str) -> tuple[int, int, int] | None:
    parts = value.split(",")
    if len(parts) != 3 or not all(re.fullmatch(r"\s*[0-9]{1,3}\s*", p) for p in parts):
        return None
    rgb = tuple(int(p) for p in parts)
    if not all(0 <= v <= 255 for v in rgb):
        return None
    return rgb[0], rgb[1], rgb[2]


# ---------------------------------------------------------------------------------------------------
# Manifest -> hub files
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BigWigTrack:
    family: str
    channel: str
    path: str  # relative to the hub directory, POSIX separators, e.g. "demo/bw/toy_gc6.bw"


@dataclass(frozen=True)
class FamilyRun:
    """Provenance of one family's tracks, shown on its description pages."""

    family: str
    model: str
    checkpoint_digest: str
    config_yaml: str
    seam_qc: dict[str, float]


@dataclass(frozen=True)
class AssemblySpec:
    """A genome UCSC does not host (assembly hub). Paths are relative to the hub directory."""

    twobit: str
    chrom_sizes: str
    organism: str
    default_pos: str  # e.g. "chr1:1-10000"
    description: str


@dataclass(frozen=True)
class HubSpec:
    hub_name: str
    short_label: str
    long_label: str
    email: str
    genome: str  # UCSC db name (hg38), or the assembly name of an assembly hub (demo)
    assembly: AssemblySpec | None
    tracks: tuple[BigWigTrack, ...]
    families: tuple[FamilyRun, ...]
    created: str
    code_version: str


def write_hub(spec: HubSpec, directory: Path, *, catalog: Catalog | None = None,
              base_url: str | None = None) -> list[Path]:
    """Write the UCSC hub (and, given ``base_url``, the WashU datahub) for ``spec`` into ``directory``.

    ``directory`` must already hold the bigWigs (and an assembly hub's .2bit and chrom sizes) at the
    relative paths the spec names. ``base_url`` is the public URL of ``directory``; WashU only takes
    absolute URLs, so without it ``washu.json`` is not written (and is absent from the returned list).
    Returns the files written, hub.txt last. Raises ``ConfigError`` for an inconsistent spec and
    ``OutputError`` for missing inputs or unwritable files.
    """
    catalog = catalog if catalog is not None else load_catalog()
    directory = Path(directory)
    if not directory.is_dir():
        raise OutputError(f"hub directory {directory} does not exist or is not a directory; "
                          "write the bigWigs into it first")
    if base_url is not None:
        _check_base_url(base_url)
    plan = _plan(spec, catalog, directory)
    files = _render_ucsc(spec, catalog, plan, base_url)
    if base_url is not None:
        files[WASHU_FILE] = json.dumps(washu_tracks(spec, base_url, catalog=catalog), indent=2) + "\n"
    hub_txt = files.pop("hub.txt")
    written = [_write(directory, rel, text) for rel, text in files.items()]
    written.append(_write(directory, "hub.txt", hub_txt))
    return written


def washu_tracks(spec: HubSpec, base_url: str, *, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """WashU datahub track objects (one bigwig per channel) with absolute URLs under ``base_url``."""
    catalog = catalog if catalog is not None else load_catalog()
    _check_base_url(base_url)
    for t in spec.tracks:
        catalog.track(t.family, t.channel)  # unknown family or channel -> ConfigError naming it
    runs = {r.family: r for r in spec.families}
    base = base_url.rstrip("/")
    out = []
    for fam in catalog.families:
        for style, track in _family_tracks(spec, fam):
            options: dict[str, Any] = {
                "label": style.short_label,
                "color": "#{:02x}{:02x}{:02x}".format(*style.color),
                "height": style.height[1],
                "yScale": "auto" if style.autoscale else "fixed",
            }
            if not style.autoscale:
                options["yMin"], options["yMax"] = style.view_limits
            run = runs.get(fam.family)
            out.append({
                "type": "bigwig",
                "name": style.name,
                "url": f"{base}/{quote(track.path)}",
                "showOnHubLoad": style.visibility != "hide",
                "options": options,
                "metadata": {
                    "Family": fam.short_label,
                    "Channel": style.channel,
                    "Model": run.model if run else "",
                    "Checkpoint": run.checkpoint_digest if run else "",
                },
                "details": {"description": style.long_label, "genome": spec.genome,
                            "created": spec.created, "code version": spec.code_version},
            })
    return out


def _check_base_url(base_url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", base_url) or re.search(r"\s", base_url):
        raise ConfigError(f"base URL {base_url!r} must be an absolute http(s) URL of the hub directory, "
                          "e.g. https://example.org/hub")


def _family_tracks(spec: HubSpec, fam: FamilyStyle) -> list[tuple[TrackStyle, BigWigTrack]]:
    """The spec's tracks of ``fam``, in catalog order."""
    by_channel = {t.channel: t for t in spec.tracks if t.family == fam.family}
    return [(style, by_channel[style.channel]) for style in fam.tracks if style.channel in by_channel]


def _plan(spec: HubSpec, catalog: Catalog, directory: Path) -> list[tuple[FamilyStyle, list]]:
    """Check the spec against the catalog and the disk; return [(family, [(style, track)])]."""
    if not GENOME_RE.fullmatch(spec.hub_name) or spec.hub_name[0] in ".-":
        raise ConfigError(f"hub name {spec.hub_name!r} must be one word of letters, digits, '_', '.', '-'")
    if not GENOME_RE.fullmatch(spec.genome):
        raise ConfigError(f"genome name {spec.genome!r} must be letters, digits, '_', '.', '-' only")
    for what, value in (("hub short label", spec.short_label), ("hub long label", spec.long_label),
                        ("email", spec.email), ("created", spec.created),
                        ("code version", spec.code_version)):
        if not value.strip() or "\n" in value or "\r" in value:
            raise ConfigError(f"{what} {value!r} must be non-empty text on one line")
    if not spec.tracks:
        raise ConfigError("the hub spec lists no track; a hub needs at least one bigWig")
    seen: set[tuple[str, str]] = set()
    for t in spec.tracks:
        catalog.track(t.family, t.channel)  # unknown family or channel -> ConfigError naming it
        if (t.family, t.channel) in seen:
            raise ConfigError(f"track {t.family}/{t.channel} is listed twice in the hub spec")
        seen.add((t.family, t.channel))
        _hub_file(directory, t.path, f"bigWig of {t.family}/{t.channel}")
    runs = [r.family for r in spec.families]
    for fam in sorted({t.family for t in spec.tracks}):
        if runs.count(fam) != 1:
            raise ConfigError(f"the hub spec needs exactly one FamilyRun for family {fam!r} "
                              f"(its provenance), found {runs.count(fam)}")
    for fam in runs:
        if fam not in {t.family for t in spec.tracks}:
            raise ConfigError(f"the hub spec has a FamilyRun for {fam!r} but no track of that family")
    if spec.assembly is not None:
        a = spec.assembly
        _hub_file(directory, a.twobit, "assembly .2bit")
        _hub_file(directory, a.chrom_sizes, "assembly chrom sizes")
        if not re.fullmatch(r"[^\s:]+:[0-9]+-[0-9]+", a.default_pos):
            raise ConfigError(f"assembly default position {a.default_pos!r} must look like chr1:1-10000")
        for what, value in (("organism", a.organism), ("description", a.description)):
            if not value.strip() or "\n" in value:
                raise ConfigError(f"assembly {what} {value!r} must be non-empty text on one line")
    return [(fam, _family_tracks(spec, fam)) for fam in catalog.families if _family_tracks(spec, fam)]


def _hub_file(directory: Path, rel: str, what: str) -> None:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or "\\" in rel or ".." in parts or "" in parts:
        raise ConfigError(f"{what} path {rel!r} must be relative to the hub directory, '/'-separated, "
                          "inside it (no '..')")
    if not (directory / rel).is_file():
        raise OutputError(f"{what} {directory / rel} does not exist; write it before the hub")


def _render_ucsc(spec: HubSpec, catalog: Catalog, plan: list[tuple[FamilyStyle, list]],
                 base_url: str | None) -> dict[str, str]:
    g = spec.genome
    runs = {r.family: r for r in spec.families}
    files: dict[str, str] = {}
    stanzas: list[list[tuple[str, str]]] = []
    used_groups: list[str] = []

    def rel(path: str) -> str:  # hub-relative path -> relative to <genome>/trackDb.txt
        return posixpath.relpath(path, g)

    def fields(style: FamilyStyle, track_label: str, track_long: str, channel: str) -> dict[str, str]:
        return {"family_label": style.short_label, "family_long_label": style.long_label,
                "track_label": track_label, "track_long_label": track_long, "channel": channel,
                "genome": g, "model": runs[style.family].model}

    for fam, members in plan:
        container = fam.container
        if container == "multiWig" and len(members) < 2:
            container = "composite"  # a multiWig must hold at least two tracks (hubCheck)
        top: list[tuple[str, str]] = []
        if spec.assembly is not None:
            top.append(("group", fam.group))
            if fam.group not in used_groups:
                used_groups.append(fam.group)
        lo = min(s.view_limits[0] for s, _ in members)
        hi = max(s.view_limits[1] for s, _ in members)
        if container != "none":
            settings = [("track", fam.family)]
            settings += [("compositeTrack", "on")] if container == "composite" else [
                ("container", "multiWig"), ("aggregate", "transparentOverlay"),
                ("showSubtrackColorOnUi", "on")]
            settings += [
                ("shortLabel", fam.short_label), ("longLabel", fam.long_label),
                ("type", f"bigWig {_num(lo)} {_num(hi)}"), *top,
                ("visibility", fam.visibility), ("priority", _num(fam.priority)),
                ("autoScale", "on" if any(s.autoscale for s, _ in members) else "off"),
                ("viewLimits", f"{_num(lo)}:{_num(hi)}"),
                ("maxHeightPixels", ":".join(str(max(s.height[i] for s, _ in members)) for i in range(3))),
                ("html", f"{fam.family}.html"),
            ]
            if container == "composite":
                settings.append(("dragAndDrop", "subTracks"))
            stanzas.append(settings)
            subs = "".join(f"<li><b>{html.escape(s.short_label)}</b> ({html.escape(s.channel)}): "
                           f"{html.escape(s.long_label)}</li>\n" for s, _ in members)
            files[f"{g}/{fam.family}.html"] = _page(
                fam, fields(fam, fam.short_label, fam.long_label, "all channels"), runs[fam.family], spec,
                extra=f"<h2>Subtracks</h2>\n<ul>\n{subs}</ul>\n")
        for style, track in members:
            settings = [("track", style.name)]
            if container == "composite":
                settings.append(("parent", f"{fam.family} on"))
            elif container == "multiWig":
                settings.append(("parent", fam.family))
            settings += [
                ("shortLabel", style.short_label), ("longLabel", style.long_label),
                ("type", f"bigWig {_num(style.view_limits[0])} {_num(style.view_limits[1])}"),
                ("bigDataUrl", rel(track.path)),
                *(top if container == "none" else []),
                ("color", ",".join(map(str, style.color))),
                ("autoScale", "on" if style.autoscale else "off"),
                ("viewLimits", f"{_num(style.view_limits[0])}:{_num(style.view_limits[1])}"),
                ("maxHeightPixels", ":".join(map(str, style.height))),
                ("visibility", style.visibility),
                # A standalone track sorts among the families; a subtrack within its container.
                ("priority", _num(style.priority if container != "none"
                                  else fam.priority + (style.priority - 1) / 1000)),
                ("html", f"{style.name}.html"),
            ]
            stanzas.append(settings)
            files[f"{g}/{style.name}.html"] = _page(
                fam, fields(fam, style.short_label, style.long_label, style.channel), runs[fam.family], spec)

    files[f"{g}/trackDb.txt"] = "\n".join(_stanza(s) for s in stanzas)
    genome = [("genome", g), ("trackDb", f"{g}/trackDb.txt")]
    if spec.assembly is not None:
        a = spec.assembly
        labels = dict(catalog.groups)
        files[f"{g}/groups.txt"] = "\n".join(
            _stanza([("name", name), ("label", labels[name]), ("priority", str(i + 1)),
                     ("defaultIsClosed", "0")])
            for i, name in enumerate(used_groups))
        files[f"{g}/description.html"] = (
            f"<h2>{html.escape(a.organism)} ({html.escape(g)})</h2>\n<p>{html.escape(a.description)}</p>\n"
            f"<p>Sequence: <code>{html.escape(a.twobit)}</code>; chromosome sizes: "
            f"<code>{html.escape(a.chrom_sizes)}</code>.</p>\n")
        genome += [("groups", f"{g}/groups.txt"), ("description", a.description), ("twoBitPath", a.twobit),
                   ("chromSizes", a.chrom_sizes), ("organism", a.organism), ("defaultPos", a.default_pos),
                   ("htmlPath", f"{g}/description.html")]
    files["genomes.txt"] = _stanza(genome)
    files["hub.html"] = _hub_page(spec, plan, base_url)
    files["hub.txt"] = _stanza([
        ("hub", spec.hub_name), ("shortLabel", spec.short_label), ("longLabel", spec.long_label),
        ("genomesFile", "genomes.txt"), ("email", spec.email), ("descriptionUrl", "hub.html")])
    return files


def _num(x: float) -> str:
    return f"{x:g}"


def _stanza(settings: list[tuple[str, str]]) -> str:
    return "".join(f"{k} {v}\n" for k, v in settings)


def _page(fam: FamilyStyle, fields: dict[str, str], run: FamilyRun, spec: HubSpec, extra: str = "") -> str:
    """A description page: the family template, then provenance (model, digest, config, date, seam QC)."""
    body = string.Template(fam.html_template).substitute({k: html.escape(v) for k, v in fields.items()})
    qc = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td></tr>\n"
                 for k, v in sorted(run.seam_qc.items()))
    qc = f"<table>\n{qc}</table>\n" if qc else "<p>Not measured.</p>\n"
    rows = [("Model", run.model), ("Checkpoint digest", run.checkpoint_digest), ("Genome", spec.genome),
            ("Created", spec.created), ("Code version", f"nttracks {spec.code_version}")]
    prov = "".join(f"<tr><td>{k}</td><td><code>{html.escape(v)}</code></td></tr>\n" for k, v in rows)
    return (f"<h1>{html.escape(fields['track_long_label'])}</h1>\n{body}{extra}"
            f"<h2>Provenance</h2>\n<table>\n{prov}</table>\n"
            f"<h3>Seam QC (disagreement between overlapping windows)</h3>\n{qc}"
            f"<h3>Configuration</h3>\n<pre>{html.escape(run.config_yaml)}</pre>\n")


def _hub_page(spec: HubSpec, plan: list[tuple[FamilyStyle, list]], base_url: str | None) -> str:
    items = "".join(
        f"<li><a href=\"{quote(spec.genome)}/{fam.family if fam.container != 'none' else members[0][0].name}"
        f".html\">{html.escape(fam.long_label)}</a> ({len(members)} track{'s' * (len(members) != 1)})</li>\n"
        for fam, members in plan)
    text = (f"<h1>{html.escape(spec.long_label)}</h1>\n"
            f"<p>Genome: <b>{html.escape(spec.genome)}</b>. Created {html.escape(spec.created)} by nttracks "
            f"{html.escape(spec.code_version)}. Contact: {html.escape(spec.email)}.</p>\n"
            f"<h2>Tracks</h2>\n<ul>\n{items}</ul>\n")
    if base_url is not None:
        base = base_url.rstrip("/")
        ucsc = f"https://genome.ucsc.edu/cgi-bin/hgTracks?hubUrl={quote(base + '/hub.txt', safe=':/')}"
        if spec.assembly is None:
            ucsc += f"&amp;db={quote(spec.genome)}"
        text += f"<h2>Open</h2>\n<ul>\n<li><a href=\"{ucsc}\">UCSC Genome Browser</a></li>\n"
        if spec.assembly is None:
            washu = (f"https://epigenomegateway.wustl.edu/browser/?genome={quote(spec.genome)}"
                     f"&amp;hub={quote(base + '/' + WASHU_FILE, safe=':/')}")
            text += f"<li><a href=\"{washu}\">WashU Epigenome Browser</a></li>\n"
        else:  # WashU only shows the genomes it hosts; the datahub needs a custom genome there
            text += (f"<li>WashU Epigenome Browser: <code>{WASHU_FILE}</code> lists the tracks, but WashU "
                     f"does not host the {html.escape(spec.genome)} assembly</li>\n")
        text += "</ul>\n"
    text += ("<p>The files must be served with HTTP byte-range requests and CORS "
             "(<code>nttracks serve</code> does both).</p>\n")
    return text


def _write(directory: Path, rel: str, text: str) -> Path:
    """Write ``text`` to ``directory/rel`` through a temporary file, so a reader never sees half a file."""
    path = directory / rel
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
    return path


# ---------------------------------------------------------------------------------------------------
# Validator (mirrors UCSC hubCheck; shared/reference/hubs.md §1.1-1.5)
# ---------------------------------------------------------------------------------------------------

_SUPPORTED_TYPES = ("wig", "bigWig", "bigBed", "vcfTabix", "bigPsl", "bigMaf", "longTabix", "bigGenePred",
                    "bigChain", "bigBarChart", "bam", "bigInteract", "bigLolly", "bigDbSnp", "hic")
_BIGWIG_MAGIC = 0x888FFC26
_TWOBIT_MAGIC = 0x1A412743
_WASHU_FILE_TYPES = ("bigwig", "bedgraph", "bigbed", "hic", "bam", "bed", "refbed", "longrange", "methylc",
                     "categorical", "qbed", "dynseq", "g3d", "cool", "vcf", "bedcolor", "rgbpeak",
                     "genomealign")


@dataclass
class _Stanza:
    file: str  # hub-relative, for messages
    line: int
    settings: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def validate_hub(directory: Path) -> list[str]:
    """Check the hub in ``directory`` the way UCSC hubCheck would; return the problems (empty = valid).

    Each problem names the file (and line) it is about. Remote URLs (http, https, ftp) are not fetched;
    local files are resolved like UCSC resolves relative URLs and must stay inside ``directory``.
    Also checks ``washu.json`` when it is present.
    """
    return _Validator(Path(directory)).run()


class _Validator:
    def __init__(self, directory: Path) -> None:
        self.root = directory.resolve()
        self.problems: list[str] = []
        self.names: dict[str, str] = {}  # track name -> where, across the whole hub

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def run(self) -> list[str]:
        hub_path = self.root / "hub.txt"
        if not hub_path.is_file():
            return [f"hub.txt: missing; {self.root} is not a hub directory"]
        stanzas = self.read_ra(hub_path)
        if not stanzas:
            return ["hub.txt: empty"]
        hub = stanzas[0]
        for key in ("hub", "shortLabel", "longLabel", "email"):
            if key not in hub.settings:
                self.add("hub.txt", f"Missing required setting '{key}'")
        if "hub" in hub.settings and re.search(r"\s", hub.settings["hub"]):
            self.add("hub.txt", f"hub name {hub.settings['hub']!r} must be one word")
        if "descriptionUrl" not in hub.settings:
            self.add("hub.txt", "missing hub overview description page (descriptionUrl setting)")
        else:
            self.local_file(hub_path, hub.settings["descriptionUrl"], hub.where, "descriptionUrl")
        if "useOneFile" in hub.settings:
            genomes_path, genome_stanzas = hub_path, stanzas[1:]
            first_track = next((i for i, s in enumerate(genome_stanzas) if "track" in s.settings), None)
            tracks = genome_stanzas[first_track:] if first_track is not None else []
            genome_stanzas = genome_stanzas[:first_track]
            if len(genome_stanzas) != 1 or "genome" not in genome_stanzas[0].settings:
                self.add("hub.txt", "a useOneFile hub needs exactly one 'genome' stanza after the hub stanza")
                return self.problems
            self.check_genome(hub_path, genome_stanzas[0], tracks, hub_path)
        elif "genomesFile" not in hub.settings:
            self.add("hub.txt", "Missing required setting 'genomesFile'")
        else:
            genomes_path = self.local_file(hub_path, hub.settings["genomesFile"], hub.where, "genomesFile")
            if genomes_path is not None:
                seen: set[str] = set()
                genome_stanzas = self.read_ra(genomes_path)
                if not genome_stanzas:
                    self.add(self.rel(genomes_path), "no genome stanza")
                for st in genome_stanzas:
                    name = st.settings.get("genome")
                    if name in seen:
                        self.add(st.where, f"Duplicate genome {name}")
                    seen.add(name or "")
                    self.check_genome(genomes_path, st, None, None)
        washu = self.root / WASHU_FILE
        if washu.exists():
            self.check_washu(washu)
        return self.problems

    # -- files -----------------------------------------------------------------------------------

    def read_ra(self, path: Path) -> list[_Stanza]:
        """Stanzas of a UCSC .ra file: 'key value' lines, blank lines between stanzas, '\\' continues."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self.add(self.rel(path), f"cannot read: {e}")
            return []
        stanzas: list[_Stanza] = []
        current: _Stanza | None = None
        pending = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if not line:
                current = None
                continue
            if line.startswith("#"):
                continue
            key, _, value = line.replace("\t", " ").partition(" ")
            if current is None:
                current = _Stanza(self.rel(path), number, {})
                stanzas.append(current)
            if key in current.settings:
                self.add(f"{current.file}:{number}", f"setting '{key}' appears twice in one stanza")
            current.settings[key] = value.strip()
        return stanzas

    def local_file(self, base: Path, url: str, where: str, what: str, *,
                   must_exist: bool = True) -> Path | None:
        """Resolve ``url`` relative to the file ``base`` like UCSC does; None for remote URLs or problems."""
        if re.match(r"^(https?|ftp)://", url):
            return None
        if not url or url.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            self.add(where, f"{what} {url!r} must be a relative path or an http(s) URL")
            return None
        path = (base.parent / url).resolve()
        try:
            path.relative_to(self.root)
        except ValueError:
            self.add(where, f"{what} {url!r} points outside the hub directory")
            return None
        if must_exist and not path.is_file():
            self.add(where, f"{what} {url} does not exist")
            return None
        return path

    # -- genomes -----------------------------------------------------------------------------------

    def check_genome(self, genomes_path: Path, st: _Stanza, tracks: list[_Stanza] | None,
                     trackdb_path: Path | None) -> None:
        s = st.settings
        if tracks is None and ("genome" not in s or "trackDb" not in s):
            self.add(st.where, "Genome stanza should have at least two lines, one with 'genome' and one with "
                     "'trackDb'")
            return
        genome = s["genome"]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", genome):
            self.add(st.where, f"Bad genome name {genome!r} ([A-Za-z0-9_])")
        groups: set[str] | None = None
        chroms: dict[str, int] | None = None
        if "twoBitPath" in s:  # assembly hub
            for key in ("organism", "defaultPos"):
                if key not in s:
                    self.add(st.where, f"must have '{key}' set in assembly hub")
            two_bit = self.local_file(genomes_path, s["twoBitPath"], st.where, "twoBitPath")
            if two_bit is not None and _magic(two_bit) != _TWOBIT_MAGIC:
                self.add(st.where, f"twoBitPath {s['twoBitPath']} is not a .2bit file")
            if "groups" in s:
                path = self.local_file(genomes_path, s["groups"], st.where, "groups")
                if path is not None:
                    groups = {g.settings.get("name", "") for g in self.read_ra(path)}
            if "chromSizes" in s:
                path = self.local_file(genomes_path, s["chromSizes"], st.where, "chromSizes")
                chroms = self.read_chrom_sizes(path, st.where) if path is not None else None
            if "defaultPos" in s:
                m = re.fullmatch(r"([^\s:]+):([0-9]+)-([0-9]+)", s["defaultPos"])
                if m is None or int(m[2]) > int(m[3]):
                    self.add(st.where, f"defaultPos {s['defaultPos']!r} must look like chr1:1-10000")
                elif chroms is not None and m[1] not in chroms:
                    self.add(st.where, f"defaultPos chromosome {m[1]} is not in chromSizes")
            if "htmlPath" in s:
                self.local_file(genomes_path, s["htmlPath"], st.where, "htmlPath")
        if tracks is None:
            trackdb_path = self.local_file(genomes_path, s["trackDb"], st.where, "trackDb")
            if trackdb_path is None:
                return
            tracks = self.read_ra(trackdb_path)
        assert trackdb_path is not None
        self.check_tracks(genome, trackdb_path, tracks, groups, chroms)

    def read_chrom_sizes(self, path: Path, where: str) -> dict[str, int] | None:
        sizes: dict[str, int] = {}
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            self.add(self.rel(path), f"cannot read: {e}")
            return None
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2 or not fields[1].isdigit():
                self.add(f"{self.rel(path)}:{number}", "chrom sizes lines must be '<name> <length>'")
                return None
            sizes[fields[0]] = int(fields[1])
        return sizes

    # -- tracks ------------------------------------------------------------------------------------

    def check_tracks(self, genome: str, trackdb: Path, stanzas: list[_Stanza], groups: set[str] | None,
                     chroms: dict[str, int] | None) -> None:
        by_name: dict[str, _Stanza] = {}
        tracks = []
        for st in stanzas:
            if next(iter(st.settings)) != "track":
                self.add(st.where, "stanza does not start with a 'track' line")
                continue
            name = st.settings["track"]
            if not NAME_RE.fullmatch(name):
                self.add(st.where, f"track name {name!r} must match {NAME_RE.pattern}")
            if name in by_name:
                self.add(st.where, f"Track {name} appears more than once in genome {genome}")
            elif name in self.names:
                self.add(st.where, f"Track {name} is also defined at {self.names[name]}; names must be "
                         "unique across the hub")
            by_name.setdefault(name, st)
            self.names.setdefault(name, st.where)
            tracks.append(st)
        children: dict[str, list[_Stanza]] = {}
        for st in tracks:
            parent = st.settings.get("parent", "").split()
            if not parent:
                continue
            if parent[0] not in by_name:
                self.add(st.where, f"Parent {parent[0]} of track {st.settings['track']} doesn't exist")
            else:
                children.setdefault(parent[0], []).append(st)
        for st in tracks:
            self.check_track(st, trackdb, by_name, children.get(st.settings["track"], []), groups, chroms)

    def check_track(self, st: _Stanza, trackdb: Path, by_name: dict[str, _Stanza], kids: list[_Stanza],
                    groups: set[str] | None, chroms: dict[str, int] | None) -> None:
        s, name, where = st.settings, st.settings["track"], st.where
        for key, limit in (("shortLabel", SHORT_LABEL_MAX), ("longLabel", LONG_LABEL_MAX)):
            if key not in s:
                self.add(where, f"Missing required '{key}' setting in track {name}")
            elif len(s[key]) > limit:
                self.add(where, f"{key} of track {name} has {len(s[key])} characters; at most {limit}")
        if "idInUrlSql" in s:
            self.add(where, f"Forbidden setting 'idInUrlSql' in track {name}")
        is_composite = s.get("compositeTrack", "").startswith("on")
        is_multiwig = s.get("container", "") == "multiWig"
        is_container = (is_composite or "container" in s or s.get("superTrack", "").startswith("on")
                        or "view" in s)
        parent = by_name.get(s.get("parent", "").split()[0]) if s.get("parent", "").split() else None
        if is_container:
            if not kids:
                self.add(where, f'Track "{name}" is declared superTrack, compositeTrack, view or container, '
                         "but has no subtracks")
            if "bigDataUrl" in s:
                self.add(where, f'Track "{name}" is declared superTrack, compositeTrack, view or container, '
                         "and also has a bigDataUrl")
            if is_multiwig and len(kids) == 1:
                self.add(where, f"container multiWig {name} has only one subtrack. multiWigs must have more "
                         "than one subtrack")
            if is_multiwig and parent is not None and (
                    parent.settings.get("compositeTrack", "").startswith("on") or "view" in parent.settings):
                self.add(where, f'Track "{name}" is declared container multiWig and has parent '
                         f'"{parent.settings["track"]}". Container multiWig tracks cannot be children of '
                         "composites or views")
        elif kids:
            self.add(where, f'Track "{name}" has children tracks (e.g: "{kids[0].settings["track"]}"), '
                     "but is not a compositeTrack, container, view or superTrack")
        else:
            self.check_leaf(st, trackdb, chroms)
        if is_composite:
            self.check_subgroups(st, kids)
        for key in ("color", "altColor"):
            if key in s and _parse_color(s[key]) is None:
                self.add(where,
                         f"Expecting 3 comma separated values in {s[key]} ({key} must be R,G,B, 0-255)")
        if "visibility" in s and s["visibility"] not in VISIBILITIES:
            self.add(where, f"Unknown visibility {s['visibility']}")
        for key in ("viewLimits", "viewLimitsMax"):
            if key in s:
                self.check_range(where, key, s[key])
        if "autoScale" in s:
            value = s["autoScale"]
            if value not in ("on", "off", "group"):
                self.add(where, f"autoScale {value!r} must be on, off or group")
            elif value == "group" and not is_container:
                self.add(where, f'track "{name}" has value "group" for autoScale setting, valid autoScale '
                         'values for individual bigWig tracks are "off" or "on" only')
        if "maxHeightPixels" in s and not re.fullmatch(r"[0-9]+(:[0-9]+){1,2}", s["maxHeightPixels"]):
            self.add(where, f"maxHeightPixels {s['maxHeightPixels']!r} must be max:default:min pixels")
        if "priority" in s and not _is_float(s["priority"]):
            self.add(where, f"priority {s['priority']!r} is not a number")
        if groups is not None and parent is None and "group" in s and s["group"] not in groups:
            self.add(where, f"group {s['group']!r} of track {name} is not defined in the groups file")
        page = s.get("html", name)
        page = page if page.endswith(".html") else page + ".html"
        path = self.local_file(trackdb, page, where, "html", must_exist=False)
        if path is not None and not path.is_file():
            if "html" in s:
                self.add(where, f"html page {page} of track {name} does not exist")
            else:
                self.add(where, f"missing description page for track. Add 'html {name}.html' line to the "
                         f"'{name}' track stanza")

    def check_leaf(self, st: _Stanza, trackdb: Path, chroms: dict[str, int] | None) -> None:
        s, name, where = st.settings, st.settings["track"], st.where
        if "type" not in s:
            self.add(where, f"Missing required 'type' setting in track {name}")
            return
        kind, *extra = s["type"].split()
        if kind not in _SUPPORTED_TYPES:
            self.add(where, f"Unsupported type '{s['type']}' in track {name}")
            return
        if kind == "wig":
            return
        if "bigDataUrl" not in s:
            self.add(where, f"Missing required 'bigDataUrl' setting in track {name}")
            return
        if kind != "bigWig":
            return
        if extra and (len(extra) != 2 or not all(_is_float(x) for x in extra)):
            self.add(where, f"type '{s['type']}' of track {name} must be 'bigWig' or 'bigWig <min> <max>'")
        path = self.local_file(trackdb, s["bigDataUrl"], where, "bigDataUrl", must_exist=False)
        if path is None:
            return
        if not path.is_file():
            self.add(where, f"Couldn't open {s['bigDataUrl']} (bigDataUrl of track {name})")
            return
        problem = _bigwig_problem(path, chroms)
        if problem:
            self.add(where, f"{s['bigDataUrl']} {problem} (bigDataUrl of track {name})")

    def check_subgroups(self, st: _Stanza, kids: list[_Stanza]) -> None:
        defined: dict[str, set[str]] = {}
        for key, value in st.settings.items():
            if re.fullmatch(r"subGroup[1-9]", key):
                words = value.split()
                if len(words) < 3 or not all("=" in w for w in words[2:]):
                    self.add(st.where, f"{key} must be '<tag> <Title> <member>=<Label> ...', got {value!r}")
                    continue
                defined[words[0]] = {m.split("=", 1)[0] for m in words[2:]}
        if not defined:
            return
        for kid in kids:
            kid_name = kid.settings["track"]
            if "subGroups" not in kid.settings:
                self.add(kid.where, f"missing 'subgroups' setting for subtrack {kid_name}")
                continue
            given = dict(p.split("=", 1) for p in kid.settings["subGroups"].split() if "=" in p)
            for tag in defined:
                if tag not in given:
                    self.add(kid.where, f"subtrack {kid_name} not a member of subgroup {tag}")
            for tag, value in given.items():
                if tag not in defined:
                    self.add(kid.where, f'subtrack "{kid_name}" has a subgroup "{tag}" not defined at parent '
                             "level")
                elif value not in defined[tag]:
                    self.add(kid.where, f"subtrack {kid_name} has value {value!r} for subgroup {tag}, which "
                             "the parent does not define")

    def check_range(self, where: str, key: str, value: str) -> None:
        if ":" not in value:
            self.add(where, f"Missing a colon in range value '{value}' ({key})")
            return
        lower, _, upper = value.partition(":")
        if not _is_float(lower):
            self.add(where, f"Invalid double range lower value '{lower}' ({key})")
        elif not _is_float(upper):
            self.add(where, f"Invalid double range upper value '{upper}' ({key})")
        elif float(upper) < float(lower):
            self.add(where, f"upper < lower. Should swap ({key} {value})")

    # -- WashU ---------------------------------------------------------------------------------------

    def check_washu(self, path: Path) -> None:
        where = self.rel(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            self.add(where, f"not valid JSON: {e}")
            return
        if not isinstance(data, list) or not data:
            self.add(where, "a WashU datahub must be a non-empty JSON array of track objects")
            return
        for i, track in enumerate(data):
            at = f"{where}[{i}]"
            if not isinstance(track, dict):
                self.add(at, "track must be an object")
                continue
            kind, name, url = track.get("type"), track.get("name"), track.get("url")
            if not isinstance(kind, str) or not kind:
                self.add(at, "missing 'type'")
            if not isinstance(name, str) or not name:
                self.add(at, "missing 'name'")
            if isinstance(kind, str) and kind.lower() in _WASHU_FILE_TYPES and (
                    not isinstance(url, str) or not re.match(r"^https?://[^/\s]+/", url)):
                self.add(at, f"url {url!r} must be an absolute http(s) URL (WashU skips other tracks)")
            for key in ("options", "metadata"):
                if key in track and not isinstance(track[key], dict):
                    self.add(at, f"'{key}' must be an object")
            if "showOnHubLoad" in track and not isinstance(track["showOnHubLoad"], bool):
                self.add(at, "'showOnHubLoad' must be true or false")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _magic(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if len(head) != 4:
        return None
    little = int.from_bytes(head, "little")
    big = int.from_bytes(head, "big")
    return little if little in (_BIGWIG_MAGIC, _TWOBIT_MAGIC) else big


def _bigwig_problem(path: Path, chroms: dict[str, int] | None) -> str | None:
    """Why ``path`` is not a usable bigWig, or None. The magic check keeps libBigWig's stderr quiet."""
    if _magic(path) != _BIGWIG_MAGIC:
        return "is not a big wig file"
    import pyBigWig  # lazy: only the validator opens bigWigs

    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:
        return "is not a big wig file (cannot be opened)"
    try:
        if not bw.isBigWig():
            return "is not a big wig file"
        if bw.header()["nBasesCovered"] == 0:
            return "is an empty bigWig (no data); browsers cannot read it"
        if chroms is not None:
            for chrom, size in bw.chroms().items():
                if chroms.get(chrom) != size:
                    return (f"has chromosome {chrom} of length {size}, which is not in chromSizes"
                            if chrom not in chroms else
                            f"has chromosome {chrom} of length {size}, but chromSizes says {chroms[chrom]}")
    finally:
        bw.close()
    return None
