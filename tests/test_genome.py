"""Genome access: codes, contigs, FASTA errors, bgzip and where the FASTA index goes."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nttracks import genome
from nttracks.bases import BASES
from nttracks.errors import ChromosomeError, GenomeError, MalformedFastaError
from nttracks.genome import Contig, Genome, open_fasta
from nttracks.registry import open_genome

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


NOBODY = 65534  # uid and gid of "nobody"

# Runs in a fresh interpreter. As root it drops to NOBODY itself, once its imports are done (including
# those nttracks makes lazily when opening a FASTA): setpriv or runuser would start the interpreter as
# NOBODY, who may not be able to read it (here it lives under /root, mode 0700).
_UNPRIVILEGED_OPEN = """
import os, sys
from pathlib import Path

import platformdirs, pyfaidx  # noqa: F401
from nttracks.genome import open_fasta

fasta, case, nobody = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(nobody)
    os.setuid(nobody)
try:
    open(str(fasta) + ".fai", "a").close()
except PermissionError:
    pass
else:
    sys.exit("this process can write the index beside the FASTA: the test would prove nothing")
if case != "read-only-dir":
    os.access = lambda *args, **kwargs: True  # as os.access answers on NFS with root squash, say
with open_fasta(fasta) as g:
    print(g.codes("a").tolist(), [(c.start, c.end) for c in g.contigs()])
"""


@pytest.mark.parametrize("case", ["read-only-dir", "read-only-dir-access-says-yes", "stale-index-not-ours"])
def test_index_goes_to_cache_when_this_user_cannot_write_beside_the_fasta(case: str) -> None:
    # Outside pytest's tmp_path, whose parents are 0700: NOBODY must reach the FASTA and the cache.
    base = Path(tempfile.mkdtemp(prefix="nttracks-ro-"))
    folder, cache = base / "fasta", base / "cache"
    root = os.geteuid() == 0
    try:
        base.chmod(0o755)
        folder.mkdir()
        cache.mkdir()
        fasta = write_fasta(folder / "g.fa", {"a": "ACGTNNAC"})
        fasta.chmod(0o644)
        stale = folder / "g.fa.fai"
        if case == "stale-index-not-ours":  # a writable folder, but an old index this user may not rewrite
            stale.write_text("a\t4\t3\t4\t5\n")
            os.utime(stale, (0, 0))
            stale.chmod(0o444)
            folder.chmod(0o777)
        else:  # root's folder, 0755, or (not root) one of our own made read-only
            folder.chmod(0o755 if root else 0o555)
        cache.chmod(0o755)
        if root:
            os.chown(cache, NOBODY, NOBODY)
        env = {**os.environ, "NTTRACKS_CACHE": str(cache)}
        done = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_OPEN, str(fasta), case, str(NOBODY)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[0] == "[0, 1, 2, 3, 4, 4, 0, 1] [(0, 4), (6, 8)]"
        if case == "stale-index-not-ours":
            assert stale.read_text() == "a\t4\t3\t4\t5\n"  # left as it was
        else:
            assert not stale.exists()
        assert sorted(p.name for p in folder.iterdir()) == sorted(["g.fa", *(["g.fa.fai"] * stale.exists())])
        assert [p.name.split("-", 1)[1] for p in (cache / "fai").iterdir()] == ["g.fa.fai"]
        if root:
            assert (cache / "fai").stat().st_uid == NOBODY  # made by the unprivileged process
    finally:
        if folder.exists():
            folder.chmod(0o755)
        shutil.rmtree(base)
