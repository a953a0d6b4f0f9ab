"""The .2bit writer, checked against py2bit (kent's reader)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import UMASK_MODES, mode, umask
from test_genome import TOY, write_fasta

from nttracks import genome
from nttracks.errors import MalformedFastaError
from nttracks.genome import Genome, open_fasta
from nttracks.registry import open_genome
from nttracks.twobit import write_twobit


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Genome]:
    with open_fasta(write_fasta(tmp_path / "toy.fa", TOY, width=7)) as g:
        yield g


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


def test_twobit_rejects_non_letters(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "digits.fa", {"ok": "ACGTACGT", "chrX": "ACGTAC1TAA"}, width=4)
    with open_fasta(path) as g:
        with pytest.raises(MalformedFastaError, match="chrX"):
            write_twobit(g, tmp_path / "x.2bit")
    assert not (tmp_path / "x.2bit").exists()


@pytest.mark.parametrize(("mask", "want"), UMASK_MODES)
def test_twobit_readable_by_others(tmp_path: Path, toy: Genome, mask: int, want: int) -> None:
    out = tmp_path / "toy.2bit"
    with umask(mask):
        write_twobit(toy, out)
    assert mode(out) == want  # a web server running as another user serves it
