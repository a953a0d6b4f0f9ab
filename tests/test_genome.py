"""Genome access: codes, contigs, errors, registry, download (from 127.0.0.1 only) and the .2bit writer."""

from __future__ import annotations

import gzip
import http.server
import pickle
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nttracks import demo, genome
from nttracks.bases import BASES
from nttracks.errors import ChromosomeError, GenomeError, GenomeUnavailableError, MalformedFastaError
from nttracks.genome import (
    REGISTRY,
    Contig,
    Genome,
    cache_dir,
    chrom_sizes_of,
    download,
    open_fasta,
    open_genome,
    registered_fasta_path,
    write_twobit,
)

# ----------------------------------------------------------------------------- helpers


def write_fasta(path: Path, records: dict[str, str], width: int = 60, newline: str = "\n") -> Path:
    lines = []
    for name, seq in records.items():
        lines.append(f">{name}")
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
    path.write_text(newline.join(lines) + newline)
    return path


def expected_codes(seq: str) -> np.ndarray:
    return np.array([BASES.index(c) if c in "ACGT" else 4 for c in seq.upper()], dtype=np.uint8)


TOY = {
    "chrA": "NNNNacgtACGTnnnnRYKMACGTacgtNN",  # soft mask, IUPAC, N at both ends
    "chrB": "ACGTACGTAC",
    "chrC": "NNNNNNNN",  # all N: no contig
}


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Genome]:
    with open_fasta(write_fasta(tmp_path / "toy.fa", TOY, width=7)) as g:
        yield g


# ----------------------------------------------------------------------------- codes and contigs


def test_toy_genome(toy: Genome) -> None:
    assert toy.name == "toy" and toy.ucsc_name is None
    assert toy.chrom_sizes == {k: len(v) for k, v in TOY.items()}
    assert toy.chroms == ("chrA", "chrB", "chrC")  # FASTA order
    for chrom, seq in TOY.items():
        np.testing.assert_array_equal(toy.codes(chrom), expected_codes(seq))
        assert toy.codes(chrom).dtype == np.uint8
    np.testing.assert_array_equal(toy.codes("chrA", 5, 13), expected_codes(TOY["chrA"][5:13]))
    assert toy.codes("chrB", 4, 4).shape == (0,)
    assert toy.raw("chrA", 4, 8).tobytes() == b"acgt"  # case kept in raw
    assert toy.soft_mask("chrA", 0, 9).tolist() == [False] * 4 + [True] * 4 + [False]


def test_contigs(toy: Genome) -> None:
    assert toy.contigs() == [
        Contig("chrA", 4, 12),
        Contig("chrA", 20, 28),
        Contig("chrB", 0, 10),
    ]
    assert toy.contigs(["chrB", "chrA"])[0] == Contig("chrA", 4, 12)  # genome order, whatever was asked
    assert toy.contigs(["chrC"]) == []
    assert Contig("chrA", 4, 12).length == 8


def test_unknown_chromosome(toy: Genome) -> None:
    with pytest.raises(ChromosomeError, match=r"'chrZ'.*chrA, chrB, chrC"):
        toy.contigs(["chrA", "chrZ"])
    with pytest.raises(ChromosomeError, match="chr9"):
        toy.codes("chr9")
    with pytest.raises(ChromosomeError, match="outside chrB"):
        toy.codes("chrB", 5, 11)


def test_sequence_digest(tmp_path: Path, toy: Genome) -> None:
    same = {"x": TOY["chrA"].upper()}
    with open_fasta(write_fasta(tmp_path / "other.fa", same, width=13)) as other:
        assert other.sequence_digest("x") == toy.sequence_digest("chrA")  # case and line width ignored
    assert toy.sequence_digest("chrA") != toy.sequence_digest("chrB")
    assert len(toy.sequence_digest("chrB")) == 64


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.text(alphabet="ACGTacgtNnRY", min_size=1, max_size=300),
    width=st.integers(1, 80),
    crlf=st.booleans(),
    data=st.data(),
)
def test_codes_match_python_slicing(tmp_path: Path, seq: str, width: int, crlf: bool, data) -> None:
    path = write_fasta(tmp_path / "h.fa", {"a": "ACGT", "s": seq, "z": "GG"}, width, "\r\n" if crlf else "\n")
    for index in tmp_path.glob("h.fa.fai"):
        index.unlink()
    start = data.draw(st.integers(0, len(seq)))
    end = data.draw(st.integers(start, len(seq)))
    with open_fasta(path) as g:
        np.testing.assert_array_equal(g.codes("s", start, end), expected_codes(seq[start:end]))
        np.testing.assert_array_equal(g.codes("s"), expected_codes(seq))
        assert g.raw("s", start, end).tobytes().decode() == seq[start:end]


def test_pickles_as_reopen(toy: Genome) -> None:
    with pickle.loads(pickle.dumps(toy)) as copy:
        assert copy is not toy and copy.name == toy.name and copy.chrom_sizes == toy.chrom_sizes
        np.testing.assert_array_equal(copy.codes("chrA"), toy.codes("chrA"))


def test_closed_genome(tmp_path: Path) -> None:
    g = open_fasta(write_fasta(tmp_path / "c.fa", {"a": "ACGT"}))
    g.close()
    g.close()  # idempotent
    with pytest.raises(GenomeError, match="closed"):
        g.codes("a")


@given(st.lists(st.booleans(), max_size=200))
def test_runs_cover_exactly_the_true_positions(mask: list[bool]) -> None:
    starts, ends = genome._runs(np.array(mask, dtype=bool))
    rebuilt = np.zeros(len(mask), dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        assert s < e
        rebuilt[s:e] = True
    assert rebuilt.tolist() == mask
    assert all(e < s for e, s in zip(ends[:-1], starts[1:], strict=True))  # maximal: runs never touch


# ----------------------------------------------------------------------------- errors


def test_missing_fasta(tmp_path: Path) -> None:
    missing = tmp_path / "nope.fa"
    with pytest.raises(GenomeError, match=str(missing)):
        open_fasta(missing)
    with pytest.raises(GenomeError, match=str(missing)):
        open_genome(missing)
    with pytest.raises(GenomeError, match="not a file"):
        open_fasta(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "does not contain a valid sequence"),
        ("ACGT\nACGT\n", "before the first sequence definition"),
        (">a\nACGT\nAC\nACGT\n", "not consistent"),
        (">a\nACGT\n>a\nACGT\n", "'a'.*more than once"),
    ],
    ids=["empty", "no-header", "ragged", "duplicate"],
)
def test_malformed_fasta(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(text)
    with pytest.raises(MalformedFastaError, match=rf"bad\.fa.*{problem}"):
        open_fasta(path).close()


def test_non_letters_rejected_with_position(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "digits.fa", {"ok": "ACGTACGT", "chrX": "ACGTAC1TAA"}, width=4)
    with open_fasta(path) as g:
        np.testing.assert_array_equal(g.codes("ok"), expected_codes("ACGTACGT"))
        with pytest.raises(MalformedFastaError, match=r"digits\.fa.*'chrX'.*'1' at position 7 \(line 6\)"):
            g.codes("chrX")
        with pytest.raises(MalformedFastaError, match="chrX"):
            g.contigs()
        with pytest.raises(MalformedFastaError, match="chrX"):
            write_twobit(g, tmp_path / "x.2bit")
    assert not (tmp_path / "x.2bit").exists()


def test_plain_gzip_fasta_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n"))
    with pytest.raises(MalformedFastaError, match=r"g\.fa\.gz.*not bgzip.*gunzip"):
        open_fasta(path)


def test_bgzip_fasta(tmp_path: Path) -> None:
    bgzf = pytest.importorskip("Bio.bgzf", reason="reading bgzip FASTA needs biopython")
    path = tmp_path / "toy.fa.gz"
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(write_fasta(tmp_path / "plain.fa", TOY, width=7).read_bytes())
    with open_fasta(path) as g:
        assert g.name == "toy"
        assert g.chrom_sizes == {k: len(v) for k, v in TOY.items()}
        np.testing.assert_array_equal(g.codes("chrA", 3, 25), expected_codes(TOY["chrA"][3:25]))
        assert g.contigs()[0] == Contig("chrA", 4, 12)


def _bgzf_block(data: bytes) -> bytes:
    """One BGZF block (SAM spec 4.1) built with zlib alone, so this test needs no biopython."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    extra = b"BC" + struct.pack("<HH", 2, len(body) + 25)
    header = b"\x1f\x8b\x08\x04" + b"\0" * 4 + b"\0\xff" + struct.pack("<H", len(extra)) + extra
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


def test_bgzip_without_biopython_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.fa.gz"
    path.write_bytes(_bgzf_block(b">a\nACGT\n") + _bgzf_block(b""))
    assert gzip.decompress(path.read_bytes()) == b">a\nACGT\n"
    monkeypatch.setitem(sys.modules, "Bio", None)  # as if biopython were not installed
    monkeypatch.delitem(sys.modules, "Bio.bgzf", raising=False)
    with pytest.raises(GenomeError, match=r"g\.fa\.gz is bgzip-compressed.*pip install biopython"):
        open_fasta(path)


def test_index_goes_to_cache_when_fasta_dir_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    fasta = write_fasta(ro / "g.fa", {"a": "ACGTNNAC"})
    real_access = genome.os.access
    monkeypatch.setattr(genome.os, "access", lambda p, mode: False if Path(p) == ro else real_access(p, mode))
    monkeypatch.setenv("NTTRACKS_CACHE", str(tmp_path / "cache"))
    with open_fasta(fasta) as g:
        assert g.contigs() == [Contig("a", 0, 4), Contig("a", 6, 8)]
    assert not (ro / "g.fa.fai").exists()
    assert len(list((tmp_path / "cache" / "fai").glob("*g.fa.fai"))) == 1


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


def test_download_registered_genome(
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
    write_fasta(expected, {"chr2L": "ACGT"})
    with open_genome("dm6", cache_dir=cache) as g:
        assert g.chrom_sizes == {"chr2L": 4}


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


# ----------------------------------------------------------------------------- .2bit


def _check_twobit(g: Genome, path: Path) -> None:
    py2bit = pytest.importorskip("py2bit")
    tb = py2bit.open(str(path), True)  # storeMasked: lowercase comes back
    try:
        assert tb.chroms() == g.chrom_sizes
        assert list(tb.chroms()) == list(g.chroms)
        for chrom in g.chroms:
            raw = g.raw(chrom).tobytes().decode()
            codes = g.codes(chrom)
            # 2bit keeps ACGT, case and N; IUPAC codes become N, as in UCSC's faToTwoBit (py2bit
            # prints N blocks as upper-case N, soft-masked or not).
            want = "".join(
                "N" if c == 4 else ("acgt"[c] if r.islower() else "ACGT"[c])
                for r, c in zip(raw, codes, strict=True)
            )
            assert tb.sequence(chrom) == want
            n_runs = list(zip(*genome._runs(codes == 4), strict=True))
            mask_runs = list(zip(*genome._runs(g.soft_mask(chrom)), strict=True))
            assert [tuple(b) for b in tb.hardMaskedBlocks(chrom) or []] == n_runs
            assert [tuple(b) for b in tb.softMaskedBlocks(chrom) or []] == mask_runs
    finally:
        tb.close()


def test_twobit_toy(tmp_path: Path, toy: Genome) -> None:
    out = tmp_path / "toy.2bit"
    write_twobit(toy, out)
    _check_twobit(toy, out)


def test_twobit_demo(tmp_path: Path) -> None:
    with open_genome("demo", cache_dir=tmp_path) as g:
        out = tmp_path / "hub" / "demo.2bit"
        write_twobit(g, out)
        _check_twobit(g, out)
        assert out.stat().st_size < sum(g.chrom_sizes.values()) // 3  # 2 bits a base, plus blocks


def test_download_gz_url_without_gzip_body(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    (root / "page.fa.gz").write_bytes(b"<html>not found</html>")  # e.g. a proxy's error page
    with pytest.raises(GenomeUnavailableError, match="no gzip data"):
        download(f"{url}/page.fa.gz", tmp_path / "page.fa")
    assert not (tmp_path / "page.fa").exists()
