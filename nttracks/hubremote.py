"""``nttracks hub check DIR|URL``: the validator on a directory, or on a hub as a web server serves it.

For a URL the hub's text files (hub.txt, genomes.txt, trackDb, html pages, chrom sizes, groups, WashU and
JBrowse files) are fetched into a temporary mirror and checked there by the same validator. The binary
files (bigWigs, .2bit) are not downloaded: each is probed with a byte-range request, which must come back
206 with CORS (every browser needs both; UCSC's udc exits on a 200), start with the right signature, and,
for a bigWig, hold a chromosome tree whose chromosomes belong to the genome (read with range requests).
"""

from __future__ import annotations

import json
import re
import struct
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .catalog import WASHU_FILE
from .errors import UsageError
from .hubcheck import ra_stanzas, validate_hub
from .hubfiles import BIGWIG_MAGIC, TWOBIT_MAGIC, chrom_problem
from .jbrowse import JBROWSE_ALIASES, JBROWSE_CONFIG

_TIMEOUT = 30
_MAX_TEXT = 256 << 20  # UCSC's cap on a trackDb/hub file


def check_target(target: str) -> tuple[list[str], str]:
    """(problems, what was checked) for a hub directory or the URL of a served hub (or of its hub.txt)."""
    if re.match(r"^https?://", target):
        base = target if target.endswith("/") else (target.rsplit("/", 1)[0] + "/" if target.endswith(".txt")
                                                     else target + "/")
        return check_url(base), urljoin(base, "hub.txt")
    path = Path(target)
    if not path.is_dir():
        raise UsageError(f"{target} is not a hub directory or an http(s) URL; give the directory holding hub.txt")
    return validate_hub(path), str(path)


def check_url(base: str) -> list[str]:
    """The validator's problems for the hub served at ``base`` (a directory URL ending in '/')."""
    with tempfile.TemporaryDirectory(prefix="nttracks-hubcheck-") as tmp:
        mirror = _Mirror(base, Path(tmp))
        mirror.fetch_hub()
        problems = validate_hub(mirror.root, binary=mirror.probe, check_permissions=False)
        return mirror.problems + [_to_url(p, base) for p in problems]


def _to_url(problem: str, base: str) -> str:
    """'demo/trackDb.txt:3: ...' -> '<base>demo/trackDb.txt:3: ...' (the mirror's paths are the URL's)."""
    where, sep, rest = problem.partition(": ")
    return f"{base}{where}{sep}{rest}" if sep and not re.match(r"^(/|[A-Za-z][A-Za-z0-9+.-]*://)", where) else problem


class _Mirror:
    def __init__(self, base: str, root: Path) -> None:
        self.base = base
        self.root = root.resolve()
        self.problems: list[str] = []
        self.binary: dict[Path, tuple[str, str | None, dict[str, int] | None]] = {}  # path -> (kind, problem, chroms)

    # -- fetching ------------------------------------------------------------------------------------

    def get(self, url: str, headers: dict[str, str] | None = None,
            limit: int = _MAX_TEXT) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, headers={"User-Agent": "nttracks-hubcheck", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read(limit + 1)
        except urllib.error.HTTPError as e:
            with e:
                return e.code, {k.lower(): v for k, v in e.headers.items()}, b""
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            return 0, {}, str(reason).encode()

    def local(self, rel_url: str, relative_to: str = "") -> tuple[str, Path] | None:
        """(absolute URL, mirror path) of a reference inside the hub; None for one outside it (not fetched)."""
        url = urljoin(urljoin(self.base, relative_to), rel_url)
        if not url.startswith(self.base) or urlsplit(url).query:
            return None
        rel = url[len(self.base):]
        path = (self.root / rel).resolve()
        try:
            path.relative_to(self.root)
        except ValueError:
            return None
        return url, path

    def text(self, rel_url: str, relative_to: str = "", *, required: bool = True) -> str | None:
        """Fetch a text file of the hub into the mirror; its text, or None (a problem when it is required)."""
        found = self.local(rel_url, relative_to)
        if found is None:
            return None
        url, path = found
        if path.exists():
            return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        status, _, body = self.get(url)
        if status != 200:
            if required and status != 404:  # a 404 shows as the validator's "does not exist"
                self.problems.append(f"{url}: {'HTTP ' + str(status) if status else body.decode()}")
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body[:_MAX_TEXT])
        return body.decode("utf-8", errors="replace")

    def binary_file(self, rel_url: str, relative_to: str, kind: str) -> None:
        """Probe a bigWig or .2bit by range requests; leave an empty stand-in the validator finds."""
        found = self.local(rel_url, relative_to)
        if found is None or found[1] in self.binary:
            return
        url, path = found
        problem, chroms = self.probe_url(url, kind)
        if problem is not None and problem.startswith("Couldn't open"):
            return  # absent from the mirror: the validator says the file does not exist
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        self.binary[path] = (kind, problem, chroms)

    def probe_url(self, url: str, kind: str) -> tuple[str | None, dict[str, int] | None]:
        status, headers, body = self.get(url, {"Range": "bytes=0-65535", "Origin": "https://genome.ucsc.edu"},
                                         limit=1 << 16)
        if status in (0, 404):
            return f"Couldn't open {url}", None
        if status == 200:
            return ("the server ignored a byte-range request (HTTP 200 instead of 206); UCSC, igv.js, WashU "
                    "and JBrowse all need byte ranges (use nttracks serve, or see README, Hosting)"), None
        if status != 206:
            return f"HTTP {status} for a byte-range request", None
        if headers.get("access-control-allow-origin") not in ("*", "https://genome.ucsc.edu"):
            return ("no CORS header (Access-Control-Allow-Origin): igv.js, WashU and JBrowse cannot read it "
                    "from another origin (see README, Hosting)"), None
        want = BIGWIG_MAGIC if kind == "bigWig" else TWOBIT_MAGIC
        if len(body) < 4 or want not in (struct.unpack("<I", body[:4])[0], struct.unpack(">I", body[:4])[0]):
            return ("is not a big wig file" if kind == "bigWig" else "is not a .2bit file"), None
        if kind != "bigWig":
            return None, None
        try:
            return None, _bigwig_chroms(body, lambda offset, n: self.get(
                url, {"Range": f"bytes={offset}-{offset + n - 1}"}, limit=n)[2])
        except (struct.error, ValueError) as e:
            return f"is not a big wig file (its chromosome tree cannot be read: {e})", None

    def probe(self, path: Path, kind: str, chroms: dict[str, int] | None) -> str | None:
        """The validator's check of a binary file of the mirror (``validate_hub(binary=...)``)."""
        entry = self.binary.get(path.resolve())
        if entry is None:
            return None
        _, problem, found = entry
        if problem is not None:
            return problem
        return chrom_problem(found, chroms) if found is not None and chroms is not None else None

    # -- what the hub references -----------------------------------------------------------------------

    def fetch_hub(self) -> None:
        hub = self.text("hub.txt")
        if hub is None:
            return
        settings = _ra(hub)
        if not settings:
            return
        if "descriptionUrl" in settings[0]:
            self.text(settings[0]["descriptionUrl"], required=False)
        if "useOneFile" in settings[0]:
            self.genomes(settings[1:], "hub.txt", one_file=True)
        elif "genomesFile" in settings[0]:
            genomes = self.text(settings[0]["genomesFile"])
            if genomes is not None:
                self.genomes(_ra(genomes), settings[0]["genomesFile"], one_file=False)
        self.text(WASHU_FILE, required=False)  # checked as served; its URLs are absolute, not fetched
        config = self.text(JBROWSE_CONFIG, required=False)
        if config is not None:
            self.jbrowse(config)

    def genomes(self, stanzas: list[dict[str, str]], at: str, *, one_file: bool) -> None:
        tracks: list[dict[str, str]] = []
        for st in stanzas:
            if "track" in st:
                tracks.append(st)
                continue
            for key in ("groups", "htmlPath", "chromSizes"):
                if key in st:
                    self.text(st[key], at, required=False)
            if "twoBitPath" in st:
                self.binary_file(st["twoBitPath"], at, "2bit")
            if not one_file and "trackDb" in st:
                tdb = self.text(st["trackDb"], at)
                if tdb is not None:
                    self.tracks(_ra(tdb), st["trackDb"])
        if one_file:
            self.tracks(tracks, at)

    def tracks(self, stanzas: list[dict[str, str]], at: str) -> None:
        for st in stanzas:
            name = st.get("track", "")
            page = st.get("html", name)
            if page:
                self.text(page if page.endswith(".html") else page + ".html", at, required=False)
            kind = st.get("type", "").split()[:1]
            if "bigDataUrl" in st and kind == ["bigWig"]:
                self.binary_file(st["bigDataUrl"], at, "bigWig")

    def jbrowse(self, text: str) -> None:
        self.text(JBROWSE_ALIASES, required=False)
        try:
            config = json.loads(text)
        except ValueError:
            return

        def walk(node: object) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(value, dict) and isinstance(value.get("uri"), str):
                        if key == "bigWigLocation":
                            self.binary_file(value["uri"], JBROWSE_CONFIG, "bigWig")
                        elif key == "twoBitLocation":
                            self.binary_file(value["uri"], JBROWSE_CONFIG, "2bit")
                        else:
                            self.text(value["uri"], JBROWSE_CONFIG, required=False)
                    else:
                        walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(config)


def _ra(text: str) -> list[dict[str, str]]:
    """The stanzas of a .ra text as dicts (the validator re-reads them with line numbers; this only finds files)."""
    return [{key: value for _, key, value in lines} for _, lines in ra_stanzas(text)]


def _bigwig_chroms(head: bytes, read: Callable[[int, int], bytes]) -> dict[str, int]:
    """The chromosome sizes of a bigWig from its header and its chromosome B+ tree (kent's bbiFile.h),
    read through ``read(offset, n)``: the tree may sit anywhere in the file."""
    order = "<" if struct.unpack("<I", head[:4])[0] == BIGWIG_MAGIC else ">"
    (tree_offset,) = struct.unpack(order + "Q", head[8:16])

    def at(offset: int, n: int) -> bytes:
        if offset + n <= len(head):
            return head[offset:offset + n]
        data = read(offset, n)
        if len(data) < n:
            raise ValueError(f"short read at byte {offset}")
        return data[:n]

    magic, _block, key_size, val_size, _count = struct.unpack(order + "IIIIQ", at(tree_offset, 24))
    if magic != 0x78CA8C91 or val_size != 8:
        raise ValueError("bad chromosome tree signature")
    chroms: dict[str, int] = {}

    def node(offset: int, depth: int) -> None:
        if depth > 32:
            raise ValueError("chromosome tree too deep")
        is_leaf, _, count = struct.unpack(order + "BBH", at(offset, 4))
        item = key_size + 8
        items = at(offset + 4, count * item)
        for i in range(count):
            key = items[i * item:i * item + key_size].rstrip(b"\0").decode("ascii", errors="replace")
            if is_leaf:
                _, size = struct.unpack(order + "II", items[i * item + key_size:(i + 1) * item])
                chroms[key] = size
            else:
                (child,) = struct.unpack(order + "Q", items[i * item + key_size:(i + 1) * item])
                node(child, depth + 1)

    node(tree_offset + 32, 0)
    return chroms
