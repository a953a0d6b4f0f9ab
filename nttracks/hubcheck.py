"""A hubCheck-style validator for UCSC track hubs and WashU datahubs.

``validate_hub`` mirrors UCSC hubCheck's rules (see ``shared/reference/hubs.md`` §1.1-1.5) plus our own
stricter ones (name pattern, 17/76 label limits, files inside the hub, non-empty bigWigs, every file
readable by a web server running as another user). It is the project's hub checker: UCSC's own
``hubCheck`` binary is not on PyPI or apt and has no prebuilt download reachable from our machines, so
the tests cannot run it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nttracks.catalog import (
    GENOME_RE,
    LONG_LABEL_MAX,
    NAME_RE,
    SHORT_LABEL_MAX,
    VISIBILITIES,
    WASHU_FILE,
    parse_color,
)
from nttracks.hubfiles import TWOBIT_MAGIC, bigwig_problem, magic, permission_problems
from nttracks.jbrowse import JBROWSE_CONFIG, check_jbrowse

_SUPPORTED_TYPES = ("wig", "bigWig", "bigBed", "vcfTabix", "bigPsl", "bigMaf", "longTabix", "bigGenePred",
                    "bigChain", "bigBarChart", "bam", "bigInteract", "bigLolly", "bigDbSnp", "hic")
_WASHU_FILE_TYPES = ("bigwig", "bedgraph", "bigbed", "hic", "bam", "bed", "refbed", "longrange", "methylc",
                     "categorical", "qbed", "dynseq", "g3d", "cool", "vcf", "bedcolor", "rgbpeak",
                     "genomealign")


def ra_stanzas(text: str) -> list[tuple[int, list[tuple[int, str, str]]]]:
    """The stanzas of a UCSC .ra text: 'key value' lines, blank lines between stanzas, '#' comments,
    '\\' continues a line. Each stanza as (its first line, [(line, key, value), ...]), lines from 1."""
    stanzas: list[tuple[int, list[tuple[int, str, str]]]] = []
    current: list[tuple[int, str, str]] | None = None
    pending = ""
    start = 0  # first physical line of the (possibly continued) line being read
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
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
            current = []
            stanzas.append((start, current))
        current.append((start, key, value.strip()))
    return stanzas


@dataclass
class _Stanza:
    file: str  # hub-relative, for messages
    line: int
    settings: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


BinaryProbe = Callable[[Path, str, "dict[str, int] | None"], "str | None"]
"""probe(path, kind, chroms) -> problem or None, for kind "bigWig" or "2bit" (``hub check URL``'s range probes)."""


def validate_hub(directory: Path, *, binary: BinaryProbe | None = None, check_permissions: bool = True) -> list[str]:
    """Check the hub in ``directory`` the way UCSC hubCheck would; return the problems (empty = valid).

    Each problem names the file (and line) it is about. Remote URLs (http, https, ftp) are not fetched;
    local files are resolved like UCSC resolves relative URLs and must stay inside ``directory``.
    Also checks ``washu.json`` when it is present, and that every file under ``directory`` is readable
    by others and every directory (``directory`` itself included) can be entered by others: a web server
    serving the hub runs as another user. The directories above ``directory`` need that too; where the
    hub is served from is the server's business, so they are not checked.

    binary: checks the bigWig and .2bit files instead of opening them (``hub check URL`` probes them by
    range requests on the server, its mirror holding empty stand-ins); check_permissions: False for such a
    mirror (the server's replies are checked instead).
    """
    return _Validator(Path(directory), binary, check_permissions).run()


class _Validator:
    def __init__(self, directory: Path, binary: BinaryProbe | None = None, check_permissions: bool = True) -> None:
        self.root = directory.resolve()
        self.binary = binary
        self.permissions = check_permissions
        self.problems: list[str] = []
        self.names: dict[str, str] = {}  # track name -> where, across the whole hub
        self.genome_chroms: dict[str, dict[str, int] | None] = {}  # genome -> chrom sizes (assembly hubs)

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def run(self) -> list[str]:
        self.check_hub()
        if self.permissions:
            self.check_permissions()
        return self.problems

    def check_hub(self) -> None:
        hub_path = self.root / "hub.txt"
        if not hub_path.is_file():
            self.add("hub.txt", f"missing; {self.root} is not a hub directory")
            return
        stanzas = self.read_ra(hub_path)
        if not stanzas:
            self.add("hub.txt", "empty")
            return
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
            genome_stanzas = stanzas[1:]
            first_track = next((i for i, s in enumerate(genome_stanzas) if "track" in s.settings), None)
            tracks = genome_stanzas[first_track:] if first_track is not None else []
            genome_stanzas = genome_stanzas[:first_track]
            if len(genome_stanzas) != 1 or "genome" not in genome_stanzas[0].settings:
                self.add("hub.txt", "a useOneFile hub needs exactly one 'genome' stanza after the hub stanza")
                return
            self.check_genome(hub_path, genome_stanzas[0], tracks)
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
                    self.check_genome(genomes_path, st, None)
        washu = self.root / WASHU_FILE
        if washu.exists():
            self.check_washu(washu)
        if (self.root / JBROWSE_CONFIG).exists():
            for where, message in check_jbrowse(self.root, self.genome_chroms, self.bigwig_problem):
                self.add(where, message)

    def check_permissions(self) -> None:
        for where, message in permission_problems(self.root):
            self.add(where, message)

    # -- files -----------------------------------------------------------------------------------

    def read_ra(self, path: Path) -> list[_Stanza]:
        """Stanzas of a UCSC .ra file: 'key value' lines, blank lines between stanzas, '\\' continues."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self.add(self.rel(path), f"cannot read: {e}")
            return []
        stanzas: list[_Stanza] = []
        for first, lines in ra_stanzas(text):
            current = _Stanza(self.rel(path), first, {})
            stanzas.append(current)
            for start, key, value in lines:
                if key in current.settings:
                    self.add(f"{current.file}:{start}", f"setting '{key}' appears twice in one stanza")
                current.settings[key] = value
        return stanzas

    def local_file(self, base: Path, url: str, where: str, what: str, *,
                   must_exist: bool = True) -> Path | None:
        """Resolve ``url`` relative to the file ``base`` like UCSC does; None for remote URLs or problems."""
        if re.match(r"^(https?|ftp)://", url):
            return None
        if not url or url.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            self.add(where, f"{what} {url!r} must be a relative path or an http(s) URL")
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in url):
            self.add(where, f"{what} {url!r} contains control characters")
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

    def check_genome(self, genomes_path: Path, st: _Stanza, tracks: list[_Stanza] | None) -> None:
        """Check one genome stanza and its tracks: ``tracks`` are given for a useOneFile hub (whose
        hub.txt holds them), else read from the stanza's trackDb."""
        s = st.settings
        if tracks is None and ("genome" not in s or "trackDb" not in s):
            self.add(st.where, "Genome stanza should have at least two lines, one with 'genome' and one with "
                     "'trackDb'")
            return
        genome = s["genome"]
        if not GENOME_RE.fullmatch(genome):
            self.add(st.where, f"Bad genome name {genome!r} ([A-Za-z0-9_])")
        groups: set[str] | None = None
        chroms: dict[str, int] | None = None
        if "twoBitPath" in s:  # assembly hub
            for key in ("organism", "defaultPos"):
                if key not in s:
                    self.add(st.where, f"must have '{key}' set in assembly hub")
            two_bit = self.local_file(genomes_path, s["twoBitPath"], st.where, "twoBitPath")
            if two_bit is not None and self.binary is not None:
                problem = self.binary(two_bit, "2bit", None)
                if problem:
                    self.add(st.where, f"twoBitPath {s['twoBitPath']} {problem}")
            elif two_bit is not None and magic(two_bit) != TWOBIT_MAGIC:
                self.add(st.where, f"twoBitPath {s['twoBitPath']} is not a .2bit file")
            if "groups" in s:
                path = self.local_file(genomes_path, s["groups"], st.where, "groups")
                if path is not None:
                    groups = {g.settings.get("name", "") for g in self.read_ra(path)}
            if "chromSizes" in s:
                path = self.local_file(genomes_path, s["chromSizes"], st.where, "chromSizes")
                chroms = self.read_chrom_sizes(path) if path is not None else None
            if "defaultPos" in s:
                m = re.fullmatch(r"([^\s:]+):([0-9]+)-([0-9]+)", s["defaultPos"])
                if m is None or int(m[2]) > int(m[3]):
                    self.add(st.where, f"defaultPos {s['defaultPos']!r} must look like chr1:1-10000")
                elif chroms is not None and m[1] not in chroms:
                    self.add(st.where, f"defaultPos chromosome {m[1]} is not in chromSizes")
            if "htmlPath" in s:
                self.local_file(genomes_path, s["htmlPath"], st.where, "htmlPath")
        self.genome_chroms[genome] = chroms
        trackdb: Path | None = genomes_path
        if tracks is None:
            trackdb = self.local_file(genomes_path, s["trackDb"], st.where, "trackDb")
            if trackdb is None:
                return
            tracks = self.read_ra(trackdb)
        self.check_tracks(genome, trackdb, tracks, groups, chroms)

    def read_chrom_sizes(self, path: Path) -> dict[str, int] | None:
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
        parent_name = s.get("parent", "").split()[:1]  # "parent toy on": the name is the first word
        parent = by_name.get(parent_name[0]) if parent_name else None
        if parent is not None and parent.settings.get("superTrack", "").startswith("on") and len(
                s.get("parent", "").split()) > 1:
            self.add(where, f"track {name} is a child of superTrack {parent_name[0]}: its parent line must be "
                     f"'parent {parent_name[0]}' without on/off (superTrack children set their own visibility)")
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
            if key in s and parse_color(s[key]) is None:
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
        kind, *extra = s["type"].split() or [""]  # an empty "type" line is unsupported, not a crash
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
        problem = self.bigwig_problem(path, chroms)
        if problem:
            self.add(where, f"{s['bigDataUrl']} {problem} (bigDataUrl of track {name})")

    def bigwig_problem(self, path: Path, chroms: dict[str, int] | None) -> str | None:
        return self.binary(path, "bigWig", chroms) if self.binary is not None else bigwig_problem(path, chroms)

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
        self.check_washu_tracks(where, data)

    def check_washu_tracks(self, where: str, data: list) -> None:
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
            if isinstance(kind, str) and kind.lower() in ("matplot", "dynamic"):
                members = track.get("tracks")
                if not isinstance(members, list) or len(members) < 2:
                    self.add(at, f"a {kind} track must list at least two member tracks under 'tracks'")
                else:
                    self.check_washu_tracks(f"{at}.tracks", members)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
