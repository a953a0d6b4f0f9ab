"""Genome-browser hubs: the UCSC hub writer and the WashU datahub.

``write_hub`` turns a run manifest (``HubSpec``) into the files every browser opens: a UCSC track hub, a
WashU datahub (``washu``), a JBrowse 2 config (``jbrowse``) and an igv.js viewer page (``igvpage``), styled
by the catalog in ``trackhubs/catalog.yaml`` (``nttracks.catalog``). Layout, relative to the hub directory::

    hub.txt                  hub stanza; written last, so a reader never sees a half-written hub
                             (``single_file``: also the genome stanza and the tracks, ``useOneFile on``)
    genomes.txt              one genome stanza (assembly hubs add twoBitPath, organism, defaultPos, ...)
    hub.html                 descriptionUrl: the hub overview page
    index.html               the igv.js viewer page
    washu.json               WashU datahub (only with a base_url: WashU needs absolute URLs)
    jbrowse/config.json      JBrowse 2 config (and jbrowse/aliases.txt, the refName aliases)
    <genome>/trackDb.txt     per family its catalog container (composite with subgroups, multiWig, or none),
                             under a superTrack per family when the hub holds several; one leaf per channel
    <genome>/<track>.html    a description page for every stanza, containers included
    <genome>/groups.txt      assembly hubs only: the track groups
    <genome>/description.html  assembly hubs only: the assembly's page (htmlPath)

The hub it writes passes ``validate_hub`` (``nttracks.hubcheck``). The catalog and the validator are
re-exported here, so ``from nttracks.hubs import load_catalog, validate_hub, write_hub`` works.
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nttracks.catalog import (
    GENOME_RE,
    LONG_LABEL_MAX,
    NAME_RE,
    SHORT_LABEL_MAX,
    WASHU_FILE,
    Catalog,
    FamilyStyle,
    TrackStyle,
    load_catalog,
)
from nttracks.errors import ConfigError, OutputError
from nttracks.hubcheck import validate_hub
from nttracks.igvpage import IGV_JS_URL, VIEWER_FILE, viewer_page
from nttracks.jbrowse import JBROWSE_CONFIG, jbrowse_files
from nttracks.washu import check_base_url, datahub

SUPER_SUFFIX = "_super"  # the superTrack of family f is f_super

__all__ = [
    "GENOME_RE",
    "JBROWSE_CONFIG",
    "LONG_LABEL_MAX",
    "NAME_RE",
    "SHORT_LABEL_MAX",
    "VIEWER_FILE",
    "WASHU_FILE",
    "AssemblySpec",
    "BigWigTrack",
    "Catalog",
    "FamilyRun",
    "FamilyStyle",
    "HubSpec",
    "TrackStyle",
    "load_catalog",
    "validate_hub",
    "washu_tracks",
    "write_hub",
]


@dataclass(frozen=True)
class BigWigTrack:
    family: str
    channel: str
    path: str  # relative to the hub directory, POSIX separators, e.g. "demo/bw/toy_gc6.bw"


@dataclass(frozen=True)
class FamilyRun:
    """Provenance of one family's tracks, shown on its description pages.

    summary_html: the family's summary of its finished tracks (``Family.summarize``), an HTML fragment shown
    on each of its pages after the description; files it refers to are written by the caller beside them.
    """

    family: str
    model: str
    checkpoint_digest: str
    config_yaml: str
    seam_qc: dict[str, float]
    summary_html: str = ""
    window: int = 0  # bp per model window (0: not recorded)
    stride: int = 0  # bp between window starts
    stitch: str = ""  # how overlapping windows were combined (taper, nearest, mean)


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
    code_version: str  # the whole string shown on the pages, e.g. "nttracks 0.1.0"
    changes_html: str = ""  # an HTML fragment for hub.html after the track list (the nightly diff)


def write_hub(spec: HubSpec, directory: Path, *, catalog: Catalog | None = None,
              base_url: str | None = None, single_file: bool = False, igv_js: str = IGV_JS_URL) -> list[Path]:
    """Write the hub files for ``spec`` into ``directory``: UCSC, JBrowse, the viewer page, and, given
    ``base_url``, the WashU datahub.

    ``directory`` must already hold the bigWigs (and an assembly hub's .2bit and chrom sizes) at the
    relative paths the spec names. ``base_url`` is the public URL of ``directory``; WashU only takes
    absolute URLs, so without it ``washu.json`` is not written (and is absent from the returned list).
    ``single_file``: one hub.txt with ``useOneFile on`` instead of hub.txt + genomes.txt + trackDb.txt (the
    other layout's files are removed). ``igv_js``: where the viewer page loads igv.js from.
    Returns the files written, hub.txt last. Raises ``ConfigError`` for an inconsistent spec and
    ``OutputError`` for missing inputs or unwritable files.
    """
    catalog = catalog if catalog is not None else load_catalog()
    directory = Path(directory)
    if not directory.is_dir():
        raise OutputError(f"hub directory {directory} does not exist or is not a directory; "
                          "write the bigWigs into it first")
    if base_url is not None:
        check_base_url(base_url)
    plan = _plan(spec, catalog, directory)
    files = _render_ucsc(spec, catalog, plan, base_url, single_file)
    files.update(jbrowse_files(spec, plan, _chroms(spec, directory), {f.family: f.licence for f, _ in plan}))
    files[VIEWER_FILE] = viewer_page(spec, plan, igv_js=igv_js)
    if base_url is not None:
        files[WASHU_FILE] = json.dumps(datahub(spec, plan, base_url), indent=2) + "\n"
    hub_txt = files.pop("hub.txt")
    written = [_write(directory, rel, text) for rel, text in files.items()]
    written.append(_write(directory, "hub.txt", hub_txt))
    other_layout = ["genomes.txt", f"{spec.genome}/trackDb.txt"] if single_file else []
    for rel in other_layout:  # a hub rewritten as one file: the old layout's files would mislead
        (directory / rel).unlink(missing_ok=True)
    return written


def washu_tracks(spec: HubSpec, base_url: str, *, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """WashU datahub track objects (a bigwig per channel, a matplot per multiWig family), absolute URLs."""
    catalog = catalog if catalog is not None else load_catalog()
    check_base_url(base_url)
    for t in spec.tracks:
        catalog.track(t.family, t.channel)  # unknown family or channel -> ConfigError naming it
    plan = [(fam, _family_tracks(spec, fam)) for fam in catalog.families]
    return datahub(spec, [(fam, members) for fam, members in plan if members], base_url)


def _chroms(spec: HubSpec, directory: Path) -> list[str]:
    """The genome's chromosome names: an assembly hub's chrom sizes, else the first bigWig's header."""
    if spec.assembly is not None:
        text = (directory / spec.assembly.chrom_sizes).read_text(encoding="utf-8")
        return [line.split()[0] for line in text.splitlines() if line.strip()]
    import pyBigWig

    bw = pyBigWig.open(str(directory / spec.tracks[0].path))
    try:
        return list(bw.chroms())
    finally:
        bw.close()


def _family_tracks(spec: HubSpec, fam: FamilyStyle) -> list[tuple[TrackStyle, BigWigTrack]]:
    """The spec's tracks of ``fam``: the listed ones in catalog order, then those styled by the family's
    track template in spec order (their priorities counting up from the template's)."""
    by_channel = {t.channel: t for t in spec.tracks if t.family == fam.family}
    listed = [(style, by_channel.pop(style.channel)) for style in fam.tracks if style.channel in by_channel]
    derived = []
    for track in by_channel.values():
        style = fam.style(track.channel)
        if style is not None:
            derived.append((replace(style, priority=style.priority + len(derived)), track))
    return listed + derived


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
    families = {t.family for t in spec.tracks}
    for fam in sorted(families):
        if runs.count(fam) != 1:
            raise ConfigError(f"the hub spec needs exactly one FamilyRun for family {fam!r} "
                              f"(its provenance), found {runs.count(fam)}")
    for fam in runs:
        if fam not in families:
            raise ConfigError(f"the hub spec has a FamilyRun for {fam!r} but no track of that family")
    if spec.assembly is not None:
        a = spec.assembly
        _hub_file(directory, a.twobit, "assembly .2bit")
        _hub_file(directory, a.chrom_sizes, "assembly chrom sizes")
        pos = re.fullmatch(r"[^\s:]+:([0-9]+)-([0-9]+)", a.default_pos)
        if pos is None or int(pos[1]) > int(pos[2]):  # start > end fails validate_hub
            raise ConfigError(f"assembly default position {a.default_pos!r} must look like chr1:1-10000")
        for what, value in (("organism", a.organism), ("description", a.description)):
            if not value.strip() or "\n" in value or "\r" in value:
                raise ConfigError(f"assembly {what} {value!r} must be non-empty text on one line")
    plan = [(fam, _family_tracks(spec, fam)) for fam in catalog.families]
    return [(fam, members) for fam, members in plan if members]


def _hub_file(directory: Path, rel: str, what: str) -> None:
    parts = rel.split("/")
    if "\\" in rel or ".." in parts or "" in parts:  # "" also catches empty, absolute and "a//b"
        raise ConfigError(f"{what} path {rel!r} must be relative to the hub directory, '/'-separated, "
                          "inside it (no '..')")
    if not (directory / rel).is_file():
        raise OutputError(f"{what} {directory / rel} does not exist; write it before the hub")


def _render_ucsc(spec: HubSpec, catalog: Catalog, plan: list[tuple[FamilyStyle, list]],
                 base_url: str | None, single_file: bool) -> dict[str, str]:
    g = spec.genome
    runs = {r.family: r for r in spec.families}
    files: dict[str, str] = {}
    stanzas: list[list[tuple[str, str]]] = []
    used_groups: list[str] = []
    tdb_dir = "." if single_file else g  # bigDataUrl and html are relative to the file holding the tracks
    wrap = len(plan) > 1  # several families: each under its own superTrack

    def rel(path: str) -> str:  # hub-relative path -> relative to the file holding the tracks
        return posixpath.relpath(path, tdb_dir)

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
        family_page = rel(f"{g}/{fam.family}.html")
        outer: str | None = None  # the parent of the family's top-level stanzas
        if wrap:
            outer = fam.family + SUPER_SUFFIX
            stanzas.append([("track", outer), ("superTrack", "on show"), ("shortLabel", fam.short_label),
                            ("longLabel", fam.long_label), *top, ("priority", _num(fam.priority)),
                            ("html", family_page)])
            top = []  # a superTrack's children take its group
        lo = min(s.view_limits[0] for s, _ in members)
        hi = max(s.view_limits[1] for s, _ in members)
        if container != "none":
            settings = [("track", fam.family)]
            if outer is not None:
                settings.append(("parent", outer))
            settings += [("compositeTrack", "on")] if container == "composite" else [
                ("container", "multiWig"), ("aggregate", "transparentOverlay"),
                ("showSubtrackColorOnUi", "on")]
            settings += [
                ("shortLabel", fam.short_label), ("longLabel", fam.long_label),
                ("type", f"bigWig {_num(lo)} {_num(hi)}"), *top,
                ("visibility", fam.visibility), ("priority", _num(1 if wrap else fam.priority)),
                ("autoScale", "on" if any(s.autoscale for s, _ in members) else "off"),
                ("viewLimits", f"{_num(lo)}:{_num(hi)}"),
                ("maxHeightPixels", ":".join(str(max(s.height[i] for s, _ in members)) for i in range(3))),
                ("html", family_page),
            ]
            if container == "composite":
                for i, sg in enumerate(fam.subgroups, start=1):
                    members_text = " ".join(f"{k}={v}" for k, v in sg.members)
                    settings.append((f"subGroup{i}", f"{sg.tag} {sg.title} {members_text}"))
                if fam.subgroups:
                    settings += [("dimensions", " ".join(f"dim{'XYABCDEFG'[i]}={sg.tag}"
                                                         for i, sg in enumerate(fam.subgroups))),
                                 ("sortOrder", " ".join(f"{sg.tag}=+" for sg in fam.subgroups))]
                settings.append(("dragAndDrop", "subTracks"))
            stanzas.append(settings)
            subs = "".join(f"<li><b>{html.escape(s.short_label)}</b> ({html.escape(s.channel)}): "
                           f"{html.escape(s.long_label)}</li>\n" for s, _ in members)
            files[f"{g}/{fam.family}.html"] = _page(
                fam, fields(fam, fam.short_label, fam.long_label, "all channels"), runs[fam.family], spec,
                [s for s, _ in members], extra=f"<h2>Subtracks</h2>\n<ul>\n{subs}</ul>\n")
        elif wrap:  # standalone tracks under the superTrack: its page is the family's
            files[f"{g}/{fam.family}.html"] = _page(
                fam, fields(fam, fam.short_label, fam.long_label, "all channels"), runs[fam.family], spec,
                [s for s, _ in members])
        for style, track in members:
            settings = [("track", style.name)]
            if container == "composite":
                settings.append(("parent", f"{fam.family} on"))
                if style.subgroups:
                    settings.append(("subGroups", " ".join(f"{k}={v}" for k, v in style.subgroups)))
            elif container == "multiWig":
                settings.append(("parent", fam.family))
            elif outer is not None:
                settings.append(("parent", outer))
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
                ("priority", _num(style.priority if container != "none" or wrap
                                  else fam.priority + (style.priority - 1) / 1000)),
                ("html", rel(f"{g}/{style.name}.html")),
            ]
            stanzas.append(settings)
            files[f"{g}/{style.name}.html"] = _page(
                fam, fields(fam, style.short_label, style.long_label, style.channel), runs[fam.family], spec,
                [style])

    genome = [("genome", g)] if single_file else [("genome", g), ("trackDb", f"{g}/trackDb.txt")]
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
    files["hub.html"] = _hub_page(spec, plan, base_url)
    hub = [("hub", spec.hub_name), ("shortLabel", spec.short_label), ("longLabel", spec.long_label)]
    hub += [("useOneFile", "on")] if single_file else [("genomesFile", "genomes.txt")]
    hub += [("email", spec.email), ("descriptionUrl", "hub.html")]
    tracks = "\n".join(_stanza(s) for s in stanzas)
    if single_file:  # hub stanza, genome stanza, then the tracks, each after a blank line
        files["hub.txt"] = f"{_stanza(hub)}\n{_stanza(genome)}\n{tracks}"
    else:
        files[f"{g}/trackDb.txt"] = tracks
        files["genomes.txt"] = _stanza(genome)
        files["hub.txt"] = _stanza(hub)
    return files


def _num(x: float) -> str:
    return f"{x:g}"


def _stanza(settings: list[tuple[str, str]]) -> str:
    return "".join(f"{k} {v}\n" for k, v in settings)


def _page(fam: FamilyStyle, fields: dict[str, str], run: FamilyRun, spec: HubSpec, styles: list[TrackStyle],
          extra: str = "") -> str:
    """A description page: the family template, then the methods as run (model, checkpoint digest, licence,
    window, stitching, quantization), the seam QC and the configuration."""
    body = string.Template(fam.html_template).substitute({k: html.escape(v) for k, v in fields.items()})
    qc = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td></tr>\n"
                 for k, v in sorted(run.seam_qc.items()))
    qc = f"<table>\n{qc}</table>\n" if qc else "<p>Not measured.</p>\n"
    steps = sorted({_quantum(s.quantum) for s in styles})
    rows = [("Model", run.model), ("Checkpoint digest", run.checkpoint_digest), ("Licence of the weights", fam.licence)]
    if run.window:
        rows.append(("Window", f"{run.window:,} bp, a new window every {run.stride:,} bp "
                               f"(overlap {max(run.window - run.stride, 0):,} bp)"))
    if run.stitch:
        rows.append(("Stitching", f"{run.stitch} (overlapping windows combined by overlap-add, normalized "
                                  "by the summed weights)" if run.stitch != "nearest" else
                     "nearest (each base from the window whose centre is closest)"))
    rows += [("Quantization", ", ".join(steps) + " (values stored on this grid; unscored bases absent)"),
             ("Genome", spec.genome), ("Created", spec.created), ("Code version", spec.code_version)]
    prov = "".join(f"<tr><td>{k}</td><td><code>{html.escape(v)}</code></td></tr>\n" for k, v in rows)
    return (f"<h1>{html.escape(fields['track_long_label'])}</h1>\n{body}{extra}{run.summary_html}"
            f"<h2>Methods as run</h2>\n<table>\n{prov}</table>\n"
            f"<h3>Seam QC (disagreement between overlapping windows)</h3>\n{qc}"
            f"<h3>Configuration</h3>\n<pre>{html.escape(run.config_yaml)}</pre>\n")


def _quantum(step: float) -> str:
    inverse = 1 / step
    return f"steps of 1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"steps of {step:g}"


def _hub_page(spec: HubSpec, plan: list[tuple[FamilyStyle, list]], base_url: str | None) -> str:
    items = "".join(
        f"<li><a href=\"{quote(spec.genome)}/"
        f"{fam.family if fam.container != 'none' or len(plan) > 1 else members[0][0].name}"
        f".html\">{html.escape(fam.long_label)}</a> ({len(members)} track{'s' * (len(members) != 1)})</li>\n"
        for fam, members in plan)
    text = (f"<h1>{html.escape(spec.long_label)}</h1>\n"
            f"<p>Genome: <b>{html.escape(spec.genome)}</b>. Created {html.escape(spec.created)} by "
            f"{html.escape(spec.code_version)}. Contact: {html.escape(spec.email)}.</p>\n"
            f"<h2>Tracks</h2>\n<ul>\n{items}</ul>\n{spec.changes_html}")
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
    text += ("<p>To be opened in a genome browser, these files must be served by a web server that supports "
             "HTTP byte-range requests and CORS (<code>nttracks serve DIR</code>, or nginx or Apache; see the "
             "nttracks README, section Hosting). <a href=\"index.html\">Open the tracks in igv.js</a>; JBrowse 2: "
             f"<code>{JBROWSE_CONFIG}</code>.</p>\n")
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
