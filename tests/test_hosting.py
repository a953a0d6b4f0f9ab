"""The demo hub served by a real nginx whose workers run as www-data, as a browser would reach it.

Genome browsers read a hub from a web server, which runs as another user than the one who built the hub:
every file must be readable by others, and bigWigs are read by byte ranges (206) across origins (CORS).
This is the end-to-end check of both, over HTTP: every file of ``nttracks genome demo`` is fetched
whole and compared byte for byte, a bigWig is read by ranges, and ``validate_hub`` (our stand-in for
UCSC's hubCheck, which cannot be installed here) passes on the same directory.

nginx comes from ``bash scripts/test`` (apt-get, or conda). Without it the tests fail under CI and skip
elsewhere.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from nttracks import __version__
from nttracks.hubs import validate_hub

CONTENT_TYPES = {".txt": "text/plain", ".html": "text/html", ".json": "application/json",
                 ".bw": "application/octet-stream", ".2bit": "application/octet-stream"}

# The CORS part is the README's ("Hosting"); nginx answers byte ranges of static files by itself.
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        text/plain txt;
        text/html html;
        application/json json;
        application/octet-stream bw 2bit;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Allow-Methods "GET, HEAD, OPTIONS" always;
            add_header Access-Control-Allow-Headers "Range" always;
            add_header Access-Control-Expose-Headers "Content-Length, Content-Range" always;
            if ($request_method = OPTIONS) {{ return 204; }}
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Hosted:
    hub: Path  # the hub directory on disk
    url: str  # its URL, e.g. http://127.0.0.1:PORT/hub


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def get(url: str, method: str = "GET", **headers: str) -> Reply:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        reason = "nginx is not installed; run 'bash scripts/test', which installs it (apt-get or conda)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must run these tests, never skip them
        pytest.skip(reason)
    return found


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def others_can_enter_ancestors(path: Path) -> None:
    for parent in [path, *path.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            pytest.fail(f"{parent} cannot be entered by others, so nginx's www-data workers cannot reach "
                        f"{path}; point TMPDIR at a directory others can enter")


def workers_run_as_www_data(master: int) -> None:
    """The served files are read by the workers: they, not the root master, must be www-data."""
    uid = pwd.getpwnam("www-data").pw_uid
    deadline = time.monotonic() + 10
    while True:
        workers = {}
        for proc in Path("/proc").iterdir():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == master:
                    uids = next(line for line in (proc / "status").read_text().splitlines()
                                if line.startswith("Uid:"))
                    workers[proc.name] = int(uids.split()[2])  # effective uid
            except (OSError, ValueError, IndexError):
                continue  # not a process, or gone meanwhile
        # a worker just forked is still root until it switches to www-data: wait for that, not the fork
        if (workers and all(u == uid for u in workers.values())) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert workers and all(u == uid for u in workers.values()), f"nginx workers (pid: uid) {workers}, not www-data"


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    nginx = nginx_binary()
    # The served tree must be reachable by www-data; pytest's tmp_path sits under a 0700 directory.
    served = Path(tempfile.mkdtemp(prefix="nttracks-hosting-"))
    proc = None
    try:
        served.chmod(0o755)
        others_can_enter_ancestors(served)
        hub = served / "hub"
        build = subprocess.run([sys.executable, "-m", "nttracks.cli", "genome", "demo", "--out", str(hub)],
                               capture_output=True, text=True, timeout=600)
        if build.returncode != 0:
            pytest.fail(f"nttracks genome demo --out {hub} failed (exit {build.returncode}):\n{build.stderr}")

        tmp = tmp_path_factory.mktemp("nginx")  # config, pid, logs, temp paths: opened by the root master
        port = unused_port()
        user = "user www-data;\n" if os.geteuid() == 0 else ""  # workers run as another user, as in production
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=served))
        with (tmp / "stderr.log").open("wb") as stderr:
            proc = subprocess.Popen([nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
                                    stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log = "".join(p.read_text() for p in (tmp / "stderr.log", tmp / "error.log") if p.exists())
                pytest.fail(f"nginx exited with status {proc.returncode}:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx did not answer on 127.0.0.1:{port} within 60 s")
                time.sleep(0.05)
        if user:
            workers_run_as_www_data(proc.pid)
        yield Hosted(hub, f"http://127.0.0.1:{port}/hub")
    finally:
        if proc is not None:
            proc.terminate()  # nginx: fast shutdown, the master stops its workers
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(served, ignore_errors=True)


def hub_files(hub: Path) -> list[str]:
    return sorted(p.relative_to(hub).as_posix() for p in hub.rglob("*") if p.is_file())


def test_every_file_of_the_demo_hub_is_served_whole_to_www_data(hosted: Hosted) -> None:
    files = hub_files(hosted.hub)
    assert {"hub.txt", "genomes.txt", "hub.html", "demo/trackDb.txt", "demo/demo.2bit"} <= set(files)
    assert any(f.endswith(".bw") for f in files)
    wrong = []
    for rel in files:
        reply = get(f"{hosted.url}/{quote(rel)}")
        if reply.status != 200:
            wrong.append(f"{rel}: HTTP {reply.status}")
        elif reply.body != (hosted.hub / rel).read_bytes():
            wrong.append(f"{rel}: served bytes differ from the file")
        elif Path(rel).suffix in CONTENT_TYPES and reply.headers["content-type"] != CONTENT_TYPES[Path(rel).suffix]:
            wrong.append(f"{rel}: Content-Type {reply.headers['content-type']}")
        elif reply.headers.get("access-control-allow-origin") != "*":
            wrong.append(f"{rel}: no CORS header")
    assert not wrong, "nginx (workers running as www-data) did not serve the hub as built:\n" + "\n".join(wrong)


def largest_bigwig(hub: Path) -> str:
    """The hub's largest bigWig, as a path under the hub (long enough for the byte ranges below)."""
    return max(hub.rglob("*.bw"), key=lambda p: p.stat().st_size).relative_to(hub).as_posix()


@pytest.mark.parametrize(("first", "last"), [(0, 63), (100, 4195)])
def test_a_bigwig_is_served_by_byte_ranges(hosted: Hosted, first: int, last: int) -> None:
    rel = largest_bigwig(hosted.hub)
    data = (hosted.hub / rel).read_bytes()
    assert len(data) > last
    reply = get(f"{hosted.url}/{quote(rel)}", Range=f"bytes={first}-{last}")
    assert reply.status == 206  # UCSC (udc) and @gmod/bbi refuse a 200 reply to a range request
    assert reply.body == data[first:last + 1]
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "Content-Range" in reply.headers["access-control-expose-headers"]


def test_a_cors_preflight_for_a_range_read_is_allowed(hosted: Hosted) -> None:
    reply = get(f"{hosted.url}/{quote(largest_bigwig(hosted.hub))}", method="OPTIONS", Origin="https://igv.org",
                **{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == "*"
    assert "Range" in reply.headers["access-control-allow-headers"]


def test_the_served_pages_name_the_code_version_once(hosted: Hosted) -> None:
    for rel in (f for f in hub_files(hosted.hub) if f.endswith(".html") and f != "demo/description.html"):
        page = get(f"{hosted.url}/{quote(rel)}").body.decode()
        assert page.count(f"nttracks {__version__}") == 1, rel
        assert "nttracks nttracks" not in page, rel
    assert "<code>nttracks serve DIR</code>" in get(f"{hosted.url}/hub.html").body.decode()


def test_validate_hub_passes_on_the_served_hub(hosted: Hosted) -> None:
    assert validate_hub(hosted.hub) == []
