"""Registered genomes: the registry, the cache, shipped chromosome sizes and download (from 127.0.0.1 only)."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import UMASK_MODES, mode, umask
from test_genome import expected_codes, write_fasta

from nttracks import demo, registry
from nttracks.errors import GenomeError, GenomeUnavailableError
from nttracks.registry import REGISTRY, chrom_sizes_of, download, open_genome, registered_fasta_path
from nttracks.resources import cache_dir

# ----------------------------------------------------------------------------- registry, names, cache


def test_registry() -> None:
    assert {"demo", "hg38", "hg19", "mm10", "mm39", "dm6"} <= set(REGISTRY)
    assert REGISTRY["hg38"].ucsc_name == "hg38"
    assert REGISTRY["demo"].url is None and REGISTRY["demo"].ucsc_name is None
    assert REGISTRY["dm6"].organism == "Drosophila melanogaster"


def test_registry_url_follows_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NTTRACKS_UCSC_MIRROR", raising=False)
    assert REGISTRY["hg38"].url == (
        "https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/analysisSet/hg38.analysisSet.fa.gz"
    )
    assert REGISTRY["mm10"].url == "https://hgdownload.soe.ucsc.edu/goldenPath/mm10/bigZips/mm10.fa.gz"
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", "http://mirror.example/ucsc/")
    assert REGISTRY["mm39"].url == "http://mirror.example/ucsc/goldenPath/mm39/bigZips/mm39.fa.gz"


def test_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTTRACKS_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert registered_fasta_path("hg38") == tmp_path / "genomes" / "hg38" / "hg38.fa"
    monkeypatch.delenv("NTTRACKS_CACHE")
    assert cache_dir().name == "nttracks"


def test_chrom_sizes_tables() -> None:
    hg38 = chrom_sizes_of("hg38")
    assert hg38["chr1"] == 248_956_422 and hg38["chrX"] == 156_040_895 and hg38["chrM"] == 16_569
    assert [f"chr{i}" for i in [*range(1, 23), "X", "Y", "M"]] == list(hg38)[:25]
    assert chrom_sizes_of("hg19")["chr1"] == 249_250_621 and len(chrom_sizes_of("hg19")) == 93
    assert chrom_sizes_of("mm10")["chr1"] == 195_471_971
    assert chrom_sizes_of("mm39")["chr1"] == 195_154_279
    assert chrom_sizes_of("dm6")["chr2L"] == 23_513_712
    assert len(hg38) == 195 and hg38["chrEBV"] == 171_823 and not any(c.endswith("_alt") for c in hg38)
    totals = {name: sum(chrom_sizes_of(name).values()) for name in ("hg19", "mm10", "mm39", "dm6")}
    assert totals == {"hg19": 3_137_161_264, "mm10": 2_730_871_774, "mm39": 2_728_222_451, "dm6": 143_726_002}
    assert [len(chrom_sizes_of(name)) for name in ("mm10", "mm39", "dm6")] == [66, 61, 1870]
    assert chrom_sizes_of("demo") == demo.DEMO_CHROM_SIZES
    with pytest.raises(GenomeError, match=r"'hg99'.*--fasta"):
        chrom_sizes_of("hg99")


def test_unknown_genome_name_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenomeError, match=r"unknown genome 'hg99'.*demo, hg38.*--fasta PATH"):
        open_genome("hg99", cache_dir=tmp_path)


def test_fasta_path_given_as_string(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "mine.fasta", {"c": "ACGT"})
    with open_genome(str(path), cache_dir=tmp_path) as g:
        assert g.name == "mine" and g.ucsc_name is None and g.fasta == path


# ----------------------------------------------------------------------------- download (127.0.0.1 only)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Truncating(_Quiet):
    """Announces more bytes than it sends: a connection cut mid-transfer."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(gzip.compress(b">a\nACGT\n")[:10])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    yield from _serve(partial(_Quiet, directory=str(root)), root)


def _serve(handler, root: Path) -> Iterator[tuple[str, Path]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _publish(root: Path, name: str, data: bytes) -> Path:
    """Put ``data`` where the mirror serves registered genome ``name``'s FASTA."""
    path = root / REGISTRY[name].path
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


SMALL = {"chr1": "ACGTNNNNacgtACGTAC" * 40, "chr2": "GGGCCCAAATTT" * 25, "chrM": "ACGT"}


@pytest.fixture
def small_tables(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The served genomes are SMALL, not the real hg38/mm10: let the shipped size tables say so too."""
    sizes = {k: len(v) for k, v in SMALL.items()}
    monkeypatch.setattr(registry, "chrom_sizes_of", lambda name: dict(sizes))
    return sizes


def test_download_registered_genome(
    small_tables: dict[str, int],
    tmp_path: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = server
    plain = write_fasta(tmp_path / "src.fa", SMALL).read_bytes()
    # Two gzip members, as some tools write them; UCSC's <db>.fa.gz is plain gzip, not bgzip.
    served = _publish(root, "hg38", gzip.compress(plain[:100]) + gzip.compress(plain[100:]))
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", url)
    cache = tmp_path / "cache"
    calls: list[tuple[int, int | None]] = []
    with open_genome("hg38", cache_dir=cache, progress=lambda done, total: calls.append((done, total))) as g:
        assert g.name == "hg38" and g.ucsc_name == "hg38"
        assert g.fasta == cache / "genomes" / "hg38" / "hg38.fa"
        assert g.fasta.read_bytes() == plain  # decompressed on the fly so pyfaidx can index it
        assert g.chrom_sizes == {k: len(v) for k, v in SMALL.items()}
        np.testing.assert_array_equal(g.codes("chr1", 0, 18), expected_codes(SMALL["chr1"][:18]))
    size = served.stat().st_size
    assert calls and calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert [p.name for p in g.fasta.parent.iterdir() if p.name.endswith(".part")] == []
    # Cached: opening again needs no server.
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", "http://127.0.0.1:9")
    with open_genome("hg38", cache_dir=cache) as again:
        assert again.chrom_sizes == g.chrom_sizes


def test_download_keeps_bgzip_compressed(
    small_tables: dict[str, int],
    tmp_path: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bgzf = pytest.importorskip("Bio.bgzf", reason="reading bgzip FASTA needs biopython")
    url, root = server
    target = root / "goldenPath" / "mm39" / "bigZips" / "mm39.fa.gz"
    target.parent.mkdir(parents=True)
    with bgzf.BgzfWriter(str(target), "wb") as out:
        out.write(write_fasta(tmp_path / "src.fa", SMALL).read_bytes())
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", url)
    with open_genome("mm39", cache_dir=tmp_path / "cache") as g:
        assert g.fasta.name == "mm39.fa.gz"
        assert g.fasta.read_bytes() == target.read_bytes()
        assert g.chrom_sizes["chr2"] == len(SMALL["chr2"])


def test_download_unreachable_says_where_to_place_the_file(
    small_tables: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", f"http://127.0.0.1:{port}")
    cache = tmp_path / "cache"
    expected = cache / "genomes" / "dm6" / "dm6.fa"
    with pytest.raises(GenomeUnavailableError) as info:
        open_genome("dm6", cache_dir=cache)
    message = str(info.value)
    assert f"could not download dm6 from http://127.0.0.1:{port}/goldenPath/dm6/bigZips/dm6.fa.gz" in message
    assert f"place the FASTA (plain or bgzip) at {expected}" in message
    assert "--fasta PATH" in message
    assert not expected.exists()
    # Placing the file there, as told, works offline.
    write_fasta(expected, SMALL)
    with open_genome("dm6", cache_dir=cache) as g:
        assert g.chrom_sizes == small_tables


def test_download_http_error(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, _ = server
    dest = tmp_path / "out" / "x.fa"
    with pytest.raises(GenomeUnavailableError, match="HTTP 404"):
        download(f"{url}/missing.fa.gz", dest)
    assert not dest.exists()


def test_download_truncated_leaves_nothing(tmp_path: Path) -> None:
    for url, _ in _serve(_Truncating, tmp_path):
        dest = tmp_path / "out" / "x.fa"
        with pytest.raises(GenomeUnavailableError, match=r"ends early|closed after"):
            download(f"{url}/x.fa.gz", dest)
        assert list(dest.parent.iterdir()) == []


def test_download_plain_file_as_is(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    (root / "g.fa").write_bytes(b">a\nACGT\n")
    got = download(f"{url}/g.fa", tmp_path / "g.fa")
    assert got == tmp_path / "g.fa" and got.read_bytes() == b">a\nACGT\n"


def test_download_gz_url_without_gzip_body(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    (root / "page.fa.gz").write_bytes(b"<html>not found</html>")  # e.g. a proxy's error page
    with pytest.raises(GenomeUnavailableError, match="no gzip data"):
        download(f"{url}/page.fa.gz", tmp_path / "page.fa")
    assert not (tmp_path / "page.fa").exists()


@pytest.mark.parametrize(("mask", "want"), UMASK_MODES)
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gunzipped"])
def test_downloaded_genome_readable_by_others(
    tmp_path: Path, server: tuple[str, Path], gzipped: bool, mask: int, want: int
) -> None:
    url, root = server
    data = b">a\nACGT\n"
    (root / "g.fa.gz").write_bytes(gzip.compress(data))
    (root / "g.fa").write_bytes(data)
    with umask(mask):
        got = download(f"{url}/g.fa{'.gz' if gzipped else ''}", tmp_path / "out" / "g.fa")
    assert got.read_bytes() == data
    assert mode(got) == want


def test_a_cached_fasta_that_is_not_the_registered_genome_is_refused(tmp_path: Path) -> None:
    fasta = registered_fasta_path("dm6", tmp_path)
    fasta.parent.mkdir(parents=True)
    write_fasta(fasta, SMALL)
    with pytest.raises(GenomeError) as info:
        open_genome("dm6", cache_dir=tmp_path)
    message = str(info.value)
    assert f"{fasta} is not dm6" in message and "chr1" in message and "delete it and run again" in message
    assert "missing (chr2L" in message and "--fasta PATH" in message


def test_ensembl_names_for_a_ucsc_genome_are_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "chrom_sizes_of", lambda name: {"chr2L": 120, "chr2R": 60, "chrM": 12})
    fasta = registered_fasta_path("dm6", tmp_path)
    fasta.parent.mkdir(parents=True)
    write_fasta(fasta, {"2L": "ACGT" * 30, "2R": "ACGT" * 15, "MT": "ACGT" * 3})
    with pytest.raises(GenomeError, match=r"named Ensembl-style \('2L' for 'chr2L'\)"):
        open_genome("dm6", cache_dir=tmp_path)
