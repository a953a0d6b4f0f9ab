"""``nttracks serve``: byte ranges, HEAD, validators, CORS and containment, over real sockets; UCSC's own
reader (pybbi, which embeds kent's udc) reading the served bigWigs; many readers at once."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyBigWig
import pytest
from conftest import serving

from nttracks.serve import ByteRange, hub_links, parse_range


def request(url: str, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: (status, lower-cased headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("site")
    (root / "hub").mkdir()
    (root / "hub" / "data.bin").write_bytes(bytes(range(256)) * 40)  # 10,240 bytes, each offset known
    (root / "hub" / "hub.txt").write_text("hub x\n")
    (root / "hub" / "index.html").write_text("<p>viewer</p>\n")
    (root / "hub" / "sub").mkdir()
    (root / "hub" / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "hub" / ".hidden").write_text("secret\n")
    (root / "secret.txt").write_text("outside the hub\n")
    (root / "hub" / "escape.txt").symlink_to(root / "secret.txt")
    with serving(root / "hub") as url:
        yield root / "hub", url


DATA = bytes(range(256)) * 40


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-63", 0, 63), ("bytes=100-4195", 100, 4195), ("bytes=10000-", 10000, 10239),
    ("bytes=-100", 10140, 10239), ("bytes=10200-99999", 10200, 10239), ("bytes=-99999", 0, 10239),
])
def test_byte_ranges_answer_206_with_content_range(site: tuple[Path, str], header: str, first: int,
                                                   last: int) -> None:
    _, url = site
    status, headers, body = request(url, "/data.bin", Range=header)
    assert status == 206
    assert body == DATA[first:last + 1]
    assert headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert headers["content-length"] == str(last - first + 1)
    assert headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010", "bytes=-0"])
def test_an_unsatisfiable_range_is_416_with_the_size(site: tuple[Path, str], header: str) -> None:
    status, headers, _ = request(site[1], "/data.bin", Range=header)
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(DATA)}"
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-5", "bytes=0-1,5-6", "bytes=x-"])
def test_a_range_it_does_not_answer_gets_the_whole_file(site: tuple[Path, str], header: str) -> None:
    status, headers, body = request(site[1], "/data.bin", Range=header)
    assert status == 200 and body == DATA and "content-range" not in headers


def test_parse_range_by_hand() -> None:
    assert parse_range("bytes=0-0", 1) == ByteRange(0, 0)
    assert parse_range("bytes=-5", 3) == ByteRange(0, 2)
    assert parse_range("bytes=0-", 0) == "unsatisfiable"
    assert parse_range("bytes=-", 10) is None


def test_head_sends_the_headers_of_get_without_a_body(site: tuple[Path, str]) -> None:
    status, headers, body = request(site[1], "/data.bin", method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(DATA)) and headers["content-type"] == "application/octet-stream"
    status, headers, body = request(site[1], "/data.bin", method="HEAD", Range="bytes=1-2")
    assert status == 206 and body == b"" and headers["content-range"] == f"bytes 1-2/{len(DATA)}"


def test_etag_and_last_modified_revalidate_and_guard_ranges(site: tuple[Path, str]) -> None:
    _, url = site
    _, headers, _ = request(url, "/data.bin")
    etag, modified = headers["etag"], headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    assert request(url, "/data.bin", If_None_Match=etag)[0] == 304
    assert request(url, "/data.bin", If_None_Match='"other"')[0] == 200
    assert request(url, "/data.bin", If_Modified_Since=modified)[0] == 304
    assert request(url, "/data.bin", Range="bytes=0-9", If_Range=etag)[0] == 206
    status, _, body = request(url, "/data.bin", Range="bytes=0-9", If_Range='"changed"')
    assert status == 200 and body == DATA  # the client's copy is stale: the whole new file


def test_cors_on_every_reply_and_the_preflight(site: tuple[Path, str]) -> None:
    _, url = site
    status, headers, body = request(url, "/data.bin", method="OPTIONS", Origin="https://igv.org",
                                    Access_Control_Request_Method="GET", Access_Control_Request_Headers="range")
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == "*"
    assert "Range" in headers["access-control-allow-headers"]
    assert "GET" in headers["access-control-allow-methods"]
    _, headers, _ = request(url, "/data.bin", Range="bytes=0-1", Origin="https://igv.org")
    exposed = headers["access-control-expose-headers"]
    assert "Content-Range" in exposed and "Content-Length" in exposed
    assert request(url, "/missing.bw")[1]["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                                  "/escape.txt", "/.hidden", "/%2Ehidden", "/missing.bw", "/data.bin%00",
                                  "/..%2fsecret.txt", "//../secret.txt"])
def test_nothing_outside_the_directory_is_ever_served(site: tuple[Path, str], path: str) -> None:
    status, _, body = request(site[1], path)
    assert status == 404, path
    assert b"outside the hub" not in body and b"secret" not in body


def test_directories_serve_their_index(site: tuple[Path, str]) -> None:
    _, url = site
    assert request(url, "/")[2] == b"<p>viewer</p>\n"
    assert request(url, "/sub/")[2] == b"<p>sub</p>\n"
    status, headers, _ = request(url, "/sub")
    assert status == 301 and headers["location"] == "/sub/"
    assert request(url, "/hub.txt")[1]["content-type"] == "text/plain; charset=utf-8"


def test_64_concurrent_range_readers_get_their_bytes(site: tuple[Path, str]) -> None:
    _, url = site
    rng = np.random.default_rng(14)
    ranges = []
    for _ in range(64):
        first = int(rng.integers(0, len(DATA) - 1))
        ranges.append((first, int(rng.integers(first, len(DATA)))))

    def read(r: tuple[int, int]) -> bool:
        status, headers, body = request(url, "/data.bin", Range=f"bytes={r[0]}-{r[1]}")
        return status == 206 and body == DATA[r[0]:r[1] + 1] and headers["content-range"].startswith(
            f"bytes {r[0]}-{r[1]}/")

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(read, ranges))
    assert all(results), f"{results.count(False)} of 64 concurrent readers got wrong bytes"


PYBBI_READ = """
import json, sys
import bbi
out = {}
for url in sys.argv[1:]:
    with bbi.open(url) as f:
        out[url] = {c: f.fetch(c, 0, n, missing=float("nan")).tolist() for c, n in f.chromsizes.items() if n <= 300_000}
print(json.dumps(out))
"""


def test_pybbi_reads_the_served_demo_bigwigs_as_the_local_files(toy_demo_hub: Path) -> None:
    bigwigs = sorted((toy_demo_hub / "demo/bw").glob("*.bw"))
    assert len(bigwigs) == 5
    with serving(toy_demo_hub) as url:
        urls = [f"{url}demo/bw/{p.name}" for p in bigwigs]
        # pybbi embeds UCSC's udc, which exits the process on a server without ranges: a subprocess
        done = subprocess.run([sys.executable, "-c", PYBBI_READ, *urls], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout)
    for path, u in zip(bigwigs, urls, strict=True):
        bw = pyBigWig.open(str(path))
        try:
            assert set(remote[u]) == set(bw.chroms())
            for chrom, values in remote[u].items():
                local = np.array(bw.values(chrom, 0, bw.chroms()[chrom]), dtype=np.float64)
                got = np.array(values, dtype=np.float64)
                assert np.isfinite(local).sum() > 0
                np.testing.assert_array_equal(np.isnan(got), np.isnan(local), err_msg=f"{u} {chrom}")
                np.testing.assert_allclose(got[~np.isnan(got)], local[~np.isnan(local)], rtol=0, atol=1e-6)
        finally:
            bw.close()


def test_the_command_prints_the_browser_links(toy_demo_hub: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    expected = len(hub_links(toy_demo_hub, "http://127.0.0.1:1/"))  # the lines to read; never block on more
    proc = subprocess.Popen([sys.executable, "-m", "nttracks.cli", "serve", str(toy_demo_hub), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(1 + expected)]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()
    assert lines[0].startswith(f"serving {toy_demo_hub} at http://127.0.0.1:"), lines
    url = lines[0].split(" at ")[1].split()[0]
    links = dict(line.strip().split(": ", 1) for line in lines[1:] if line.strip())
    assert links == hub_links(toy_demo_hub, url)
    assert links["igv.js viewer page"] == f"{url}index.html"
    assert links["JBrowse 2"].endswith(f"config={url}jbrowse/config.json")
    assert links["UCSC Genome Browser"] == f"https://genome.ucsc.edu/cgi-bin/hgTracks?hubUrl={url}hub.txt"
    assert "WashU Epigenome Browser" not in links  # WashU does not host the demo assembly


def test_serve_refuses_a_missing_directory(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "nttracks.cli", "serve", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is not a directory" in done.stderr
