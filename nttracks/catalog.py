"""The track catalog: how each model output channel is drawn, read from ``trackhubs/catalog.yaml``.

``load_catalog`` turns the YAML (and the description templates beside it) into frozen ``Catalog`` /
``FamilyStyle`` / ``TrackStyle`` data; every problem is a ``ConfigError`` naming the file and the key.
The naming and label rules here are shared by the hub writer (``hubs``) and the validator (``hubcheck``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nttracks.errors import ConfigError
from nttracks.families import registered
from nttracks.resources import resource_dir

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
GENOME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
SHORT_LABEL_MAX = 17
LONG_LABEL_MAX = 76
VISIBILITIES = ("hide", "dense", "squish", "pack", "full")
CONTAINERS = ("composite", "multiWig", "none")
WASHU_CONTAINERS = ("none", "matplot")  # matplot: the family's bigwigs overlaid as lines in one WashU track
WASHU_FILE = "washu.json"
# Settings a template may use; anything else in a template is a catalog error.
TEMPLATE_FIELDS = ("family_label", "family_long_label", "track_label", "track_long_label", "channel",
                   "genome", "model")


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
class TrackTemplate:
    """The style of channels that depend on a family's settings (e.g. attention heads ``L3H7``).

    ``pattern`` is a regular expression a channel must match in full; ``entry`` holds the track keys, whose
    text keys (suffix and labels) are ``string.Template`` texts over ``$channel`` and the pattern's named
    groups. ``where`` names the entry in the catalog file, for errors.
    """

    family: str
    pattern: str
    entry: dict[str, Any]
    path: Path
    where: str

    def derive(self, channel: str) -> TrackStyle | None:
        """The style of ``channel``, or None when it does not match the pattern."""
        match = re.fullmatch(self.pattern, channel)
        if match is None:
            return None
        fields = {"channel": channel, **{k: v for k, v in match.groupdict().items() if v is not None}}
        return self._style(channel, fields)

    def _style(self, channel: str, fields: dict[str, str]) -> TrackStyle:
        err = _Complainer(self.path)
        t = dict(self.entry)
        for key in _TEMPLATE_TEXT_KEYS:
            try:
                t[key] = string.Template(err.text(t[key], f"{self.where}.{key}", 200)).substitute(fields)
            except (KeyError, ValueError) as e:
                err.fail(f"{self.where}.{key}", f"unknown or malformed placeholder {e}; known: "
                         f"{', '.join('$' + k for k in fields)}")
        t["channel"] = channel
        return _track_style(self.family, t, self.where, err)


@dataclass(frozen=True)
class FamilyStyle:
    """A track family: its container stanza and its tracks in display order.

    ``html`` is the template's file name in the catalog folder; ``html_template`` its text.
    ``template``: the style of channels not listed in ``tracks`` (those that depend on the family's
    settings), or None when every channel is listed.
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
    template: TrackTemplate | None = None
    washu: str = "none"

    def style(self, channel: str) -> TrackStyle | None:
        """The listed track of ``channel``, else its style derived from the template; None when neither."""
        for t in self.tracks:
            if t.channel == channel:
                return t
        return self.template.derive(channel) if self.template is not None else None


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
        style = fam.style(channel)
        if style is not None:
            return style
        known = ", ".join(t.channel for t in fam.tracks)
        if fam.template is not None:
            known = f"{known}, and " if known else ""
            known += f"channels matching {fam.template.pattern}"
        raise ConfigError(
            f"unknown channel {channel!r} of family {family!r} (catalog {self.path} has: {known})")


_FAMILY_KEYS = {"short_label", "long_label", "container", "html", "group", "visibility", "priority",
                "defaults", "tracks", "track_template", "washu"}
_TRACK_KEYS = {"channel", "suffix", "short_label", "long_label", "color", "view_limits", "autoscale",
               "quantum", "height", "visibility", "priority"}
_TEMPLATE_TEXT_KEYS = ("suffix", "short_label", "long_label")
_DEFAULTABLE = _TRACK_KEYS - {"channel", *_TEMPLATE_TEXT_KEYS}
_TEMPLATE_KEYS = (_TRACK_KEYS - {"channel"}) | {"channel_pattern"}


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and check the track catalog (default: the packaged ``trackhubs/catalog.yaml``).

    Registered families that carry their own entry (``Family.catalog_entry`` and ``html_template``: a
    plug-in, or a family defined in a test) are added after the file's, unless the file lists them.
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

    entries = dict(err.mapping(top["families"], "families"))
    templates: dict[str, str] = {}
    for plugin in registered().values():
        if plugin.catalog_entry is not None and plugin.name not in entries:
            entries[plugin.name] = {"html": f"{plugin.name}.html", **plugin.catalog_entry}
            if plugin.html_template is None:
                err.fail(f"families.{plugin.name}", "a family with its own catalog entry needs html_template")
            templates[plugin.name] = plugin.html_template

    families = []
    seen_names: dict[str, str] = {}
    for fam_name, fam in entries.items():
        where = f"families.{fam_name}"
        err.name(fam_name, where)
        fam = err.mapping(fam, where, allowed=_FAMILY_KEYS,
                          required=_FAMILY_KEYS - {"defaults", "group", "visibility", "priority", "track_template",
                                                  "washu"})
        container = fam["container"]
        if container not in CONTAINERS:
            err.fail(f"{where}.container", f"{container!r} is not one of {', '.join(CONTAINERS)}")
        group = fam.get("group", groups[0][0] if groups else "")
        if group not in group_names:
            err.fail(f"{where}.group", f"{group!r} is not a group listed under 'groups'")
        template_name = err.text(fam["html"], f"{where}.html", 200)
        page = _check_template(
            templates[fam_name] if fam_name in templates else _read(path.parent / template_name, err, f"{where}.html"),
            template_name, err, f"{where}.html")
        defaults = err.mapping(fam.get("defaults", {}), f"{where}.defaults", allowed=_DEFAULTABLE)
        tracks = []
        for i, t in enumerate(err.sequence(fam["tracks"], f"{where}.tracks")):
            tw = f"{where}.tracks[{i}]"
            t = {**defaults, **err.mapping(t, tw, allowed=_TRACK_KEYS)}
            missing = sorted(_TRACK_KEYS - t.keys())
            if missing:
                err.fail(tw, f"missing key(s) {', '.join(missing)} (set them on the track or in defaults)")
            tracks.append(_track_style(fam_name, t, tw, err))
        template = None
        if "track_template" in fam:
            template = _track_template(fam_name, fam["track_template"], defaults, f"{where}.track_template", err)
        if not tracks and template is None:
            err.fail(f"{where}.tracks", "a family needs at least one track (or a track_template)")
        if container == "multiWig" and len(tracks) < 2 and template is None:
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
            html_template=page, template=template,
            washu=err.choice(fam.get("washu", "none"), f"{where}.washu", WASHU_CONTAINERS),
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


def _track_template(family: str, raw: Any, defaults: dict[str, Any], where: str, err: _Complainer) -> TrackTemplate:
    """Check a family's ``track_template``: its pattern compiles, and a channel that matches it gets a valid
    style (checked on a stand-in channel, every placeholder ``0``)."""
    entry = {**defaults, **err.mapping(raw, where, allowed=_TEMPLATE_KEYS)}
    missing = sorted(_TEMPLATE_KEYS - entry.keys())
    if missing:
        err.fail(where, f"missing key(s) {', '.join(missing)} (set them on the template or in defaults)")
    pattern = err.text(entry.pop("channel_pattern"), f"{where}.channel_pattern", 200)
    try:
        groups = re.compile(pattern).groupindex
    except re.error as e:
        err.fail(f"{where}.channel_pattern", f"{pattern!r} is not a regular expression: {e}")
    template = TrackTemplate(family, pattern, entry, err.path, where)
    template._style("x", {"channel": "x", **dict.fromkeys(groups, "0")})
    return template


def _read(path: Path, err: _Complainer, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        return err.fail(where, f"cannot read description template {path}: {e.strerror or e}")


def _check_template(text: str, name: str, err: _Complainer, where: str) -> str:
    try:
        string.Template(text).substitute({k: "x" for k in TEMPLATE_FIELDS})
    except (KeyError, ValueError) as e:
        err.fail(where, f"template {name} uses an unknown or malformed placeholder {e}; "
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
        rgb = parse_color(value if isinstance(value, str) else "")
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


def parse_color(value: str) -> tuple[int, int, int] | None:
    """``"R,G,B"`` (each 0-255) as a tuple, or None when ``value`` is not one."""
    parts = value.split(",")
    if len(parts) != 3 or not all(re.fullmatch(r"\s*[0-9]{1,3}\s*", p) for p in parts):
        return None
    rgb = tuple(int(p) for p in parts)
    if not all(0 <= v <= 255 for v in rgb):
        return None
    return rgb[0], rgb[1], rgb[2]
