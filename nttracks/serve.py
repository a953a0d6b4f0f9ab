"""``nttracks serve``: a static file server for a hub, with what genome browsers need of one.

UCSC (udc), igv.js, WashU and JBrowse read bigWigs and .2bit files by HTTP byte ranges and refuse a
200 reply to a range request; the three browser apps also read across origins, so they need CORS.
Python's ``http.server`` does neither (``shared/reference/hubs.md`` §4). This server answers:

- ``Range: bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` (suffix) with 206, ``Content-Range`` and
  ``Accept-Ranges: bytes``; an unsatisfiable range with 416 and ``Content-Range: bytes */size``; a list
  of several ranges with the whole file (200), which the RFC allows and no genome browser asks for;
- HEAD like GET without the body; ``ETag`` and ``Last-Modified``, with 304 for ``If-None-Match`` /
  ``If-Modified-Since`` and ``If-Range`` honoured;
- CORS on every reply (``Access-Control-Allow-Origin: *``, ``Expose-Headers`` naming Content-Range and
  Content-Length) and ``OPTIONS`` preflights (204, ``Allow-Headers`` with Range);
- only files inside the served directory: no ``..``, no symlink leading out, no hidden files (404);
- many readers at once: one thread per connection (``ThreadingHTTPServer``).

The library never prints: ``make_server`` returns the server and ``hub_links`` the links the CLI shows.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import mimetypes
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import UsageError

log = logging.getLogger("nttracks")

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Range, If-None-Match, If-Modified-Since, If-Range, Cache-Control, Content-Type"),
    ("Access-Control-Expose-Headers",
     "Content-Length, Content-Range, Content-Type, Accept-Ranges, ETag, Last-Modified"),
    ("Access-Control-Max-Age", "86400"),
)
# Content types the browsers expect; anything else is guessed by the standard library.
CONTENT_TYPES = {
    ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8", ".json": "application/json",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css",
    ".bw": "application/octet-stream", ".bigwig": "application/octet-stream", ".2bit": "application/octet-stream",
    ".bb": "application/octet-stream", ".sizes": "text/plain; charset=utf-8", ".yaml": "text/plain; charset=utf-8",
    ".png": "image/png", ".svg": "image/svg+xml",
}
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ByteRange:
    first: int
    last: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_range(header: str, size: int) -> ByteRange | str | None:
    """The one byte range ``header`` asks of a file of ``size`` bytes.

    Returns a ``ByteRange``; None when the header is to be ignored (malformed, not bytes, or several
    ranges: the whole file is sent); ``"unsatisfiable"`` when no byte of the file is in the range (416).
    """
    m = re.fullmatch(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", header)
    if m is None or (not m[1] and not m[2]):
        return None
    if not m[1]:  # suffix: the last n bytes
        n = int(m[2])
        if n == 0 or size == 0:
            return "unsatisfiable"
        return ByteRange(max(size - n, 0), size - 1)
    first = int(m[1])
    last = int(m[2]) if m[2] else size - 1
    if m[2] and last < first:
        return None  # syntactically invalid: ignored (RFC 9110 §14.1.1)
    if first >= size:
        return "unsatisfiable"
    return ByteRange(first, min(last, size - 1))


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: browsers read a bigWig in many small ranges
    server_version = "nttracks-serve"
    root: Path  # set on the subclass make_server builds

    def do_OPTIONS(self) -> None:
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("serve: %s %s", self.address_string(), format % args)

    # -----------------------------------------------------------------------------------------------

    def _cors(self) -> None:
        for key, value in CORS_HEADERS:
            self.send_header(key, value)

    def _error(self, status: HTTPStatus, message: str, extra: tuple[tuple[str, str], ...] = (),
               body: bool = True) -> None:
        data = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        self._cors()
        for key, value in extra:
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _resolve(self) -> Path | None:
        """The file the request path names, inside the served directory; None when there is none."""
        path = unquote(urlsplit(self.path).path, errors="strict")
        if "\x00" in path or "\\" in path:
            return None
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        if any(p.startswith(".") for p in parts) or ".." in path.split("/"):
            return None
        target = self.root.joinpath(*parts)
        try:
            real = target.resolve(strict=True)
            real.relative_to(self.root)  # a symlink leading out of the hub is refused
        except (OSError, ValueError, RuntimeError):
            return None
        if real.is_dir():
            index = real / "index.html"
            if not path.endswith("/") and index.is_file():
                return real  # redirected by the caller, so relative links resolve inside the directory
            return index if index.is_file() else None
        return real

    def _serve(self, body: bool) -> None:
        try:
            path = self._resolve()
        except UnicodeDecodeError:
            path = None
        if path is None:
            self._error(HTTPStatus.NOT_FOUND, "no such file in the served hub", body=body)
            return
        if path.is_dir():  # /dir without the slash: redirect like every static server
            location = quote(urlsplit(self.path).path + "/")
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self._cors()
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            f = path.open("rb")
        except OSError as e:
            status = HTTPStatus.FORBIDDEN if e.errno in (errno.EACCES, errno.EPERM) else HTTPStatus.NOT_FOUND
            self._error(status, "cannot read this file", body=body)
            return
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                self._error(HTTPStatus.NOT_FOUND, "not a file", body=body)
                return
            size = st.st_size
            etag = f'"{st.st_mtime_ns:x}-{size:x}"'
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            validators = (("ETag", etag), ("Last-Modified", modified), ("Accept-Ranges", "bytes"))
            if self._not_modified(etag, st.st_mtime):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self._cors()
                for key, value in validators:
                    self.send_header(key, value)
                self.end_headers()
                return
            wanted: ByteRange | str | None = None
            header = self.headers.get("Range")
            if header is not None and self._if_range_holds(etag, modified):
                wanted = parse_range(header, size)
            if wanted == "unsatisfiable":
                self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, f"the file has {size} bytes",
                            extra=(("Content-Range", f"bytes */{size}"), *validators), body=body)
                return
            assert not isinstance(wanted, str)
            first, length = (wanted.first, wanted.length) if wanted is not None else (0, size)
            self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted is not None else HTTPStatus.OK)
            self._cors()
            self.send_header("Content-Type", _content_type(path))
            self.send_header("Content-Length", str(length))
            if wanted is not None:
                self.send_header("Content-Range", f"bytes {wanted.first}-{wanted.last}/{size}")
            for key, value in validators:
                self.send_header(key, value)
            self.send_header("Cache-Control", "no-cache")  # revalidate: a nightly run replaces the files
            self.end_headers()
            if body:
                self._copy(f, first, length)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:
            return match.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in match.split(",")]
        since = self.headers.get("If-Modified-Since")
        if since is not None:
            try:
                when = email.utils.parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
            return when is not None and int(mtime) <= when.timestamp()
        return False

    def _if_range_holds(self, etag: str, modified: str) -> bool:
        """If-Range: the range applies only while the file is the one the client has (else: whole file)."""
        value = self.headers.get("If-Range")
        return value is None or value.strip() in (etag, modified)

    def _copy(self, f: object, first: int, length: int) -> None:
        f.seek(first)  # type: ignore[attr-defined]
        left = length
        try:
            while left > 0:
                chunk = f.read(min(_CHUNK, left))  # type: ignore[attr-defined]
                if not chunk:
                    break  # the file shrank meanwhile; the client sees a short reply
                self.wfile.write(chunk)
                left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the reader went away (a browser cancelling a read): normal


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class HubServer(ThreadingHTTPServer):
    daemon_threads = True  # a reader that never hangs up does not keep the process alive
    request_queue_size = 128  # many browsers (or 64 range readers) connecting at once
    allow_reuse_address = True


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000) -> HubServer:
    """A server for the files under ``directory`` on ``host:port`` (port 0: any free one); call
    ``serve_forever()`` on it. Raises ``UsageError`` when the directory is missing or the port is taken."""
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; give the hub directory (the one holding hub.txt)")
    handler = type("BoundHubRequestHandler", (HubRequestHandler,), {"root": root.resolve()})
    try:
        return HubServer((host, port), handler)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port "
                         "(or --port 0 for any free one)") from e


def server_url(server: HubServer) -> str:
    host, port = server.server_address[:2]
    host = str(host)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def hub_links(directory: Path, base_url: str) -> dict[str, str]:
    """Links that open the hub in ``directory`` served at ``base_url``: name -> URL.

    UCSC and WashU run on their own servers: they can open the hub only when ``base_url`` is reachable
    from the internet (not for 127.0.0.1). JBrowse and the viewer page run in the reader's browser.
    """
    from .hubs import WASHU_FILE
    from .igvpage import VIEWER_FILE
    from .jbrowse import JBROWSE_CONFIG

    root = Path(directory)
    base = base_url if base_url.endswith("/") else base_url + "/"
    links: dict[str, str] = {}
    genome, assembly = _hub_genome(root)
    if (root / "hub.txt").is_file():
        ucsc = f"https://genome.ucsc.edu/cgi-bin/hgTracks?hubUrl={quote(base + 'hub.txt', safe=':/')}"
        if genome and not assembly:
            ucsc += f"&db={quote(genome)}"
        links["UCSC Genome Browser"] = ucsc
    if (root / WASHU_FILE).is_file() and genome and not assembly:
        links["WashU Epigenome Browser"] = (f"https://epigenomegateway.wustl.edu/browser/?genome={quote(genome)}"
                                            f"&hub={quote(base + WASHU_FILE, safe=':/')}")
    if (root / JBROWSE_CONFIG).is_file():
        links["JBrowse 2"] = f"https://jbrowse.org/code/jb2/latest/?config={quote(base + JBROWSE_CONFIG, safe=':/')}"
    if (root / VIEWER_FILE).is_file():
        links["igv.js viewer page"] = base + VIEWER_FILE
    return links


def _hub_genome(root: Path) -> tuple[str | None, bool]:
    """(genome name, is an assembly hub) from genomes.txt (or a single-file hub.txt); (None, False)."""
    for name in ("genomes.txt", "hub.txt"):
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        genome = re.search(r"^\s*genome\s+(\S+)", text, re.M)
        if genome:
            return genome[1], re.search(r"^\s*twoBitPath\s", text, re.M) is not None
    return None, False
