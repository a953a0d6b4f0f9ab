"""The streaming bigWig writer: files that pyBigWig, pybbi (UCSC's code) and pybigtools read back with
the same value at every base, every chromosome in the header in genome order, gaps absent, summaries
and zoom levels right; deep index trees and many chromosomes too."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import bbi
import numpy as np
import pyBigWig
import pytest

from nttracks import bigwigfile
from nttracks.bigwigfile import BigWigFile

SIZES = [("chr2", 60_000), ("chrEmpty", 5_000), ("chr1", 30_000), ("chrM", 40)]  # genome order, not sorted


def _tracks(rng: np.random.Generator) -> list[tuple[str, int, np.ndarray]]:
    """(chrom, start, values) in genome order: noise (fixedStep), long runs (bedGraph), a mix, gaps."""
    q = lambda x: (np.round(np.asarray(x) * 255) / 255).astype(np.float32)  # noqa: E731
    bumps = np.zeros(20_000)
    bumps[3_000:3_400] = np.hanning(400)
    bumps[9_000:9_003] = 1.0
    return [
        ("chr2", 7, q(rng.random(5_000))),  # a new value at nearly every base
        ("chr2", 5_007, q(np.zeros(9_000))),  # contiguous with the run before
        ("chr2", 20_000, q(bumps)),  # runs of zeros around smooth bumps
        ("chr2", 40_001, q(rng.integers(0, 3, 19_999) / 255)),  # few values, short runs: ends at the end
        ("chr1", 0, q(np.full(1, 0.5))),  # one base
        ("chr1", 100, q(np.sin(np.arange(29_000) / 500) ** 2)),
        ("chrM", 0, q(np.full(40, 1.0))),
    ]


def _write(path: Path, tracks: list[tuple[str, int, np.ndarray]], sizes=SIZES) -> dict[str, np.ndarray]:
    expected = {c: np.full(n, np.nan, dtype=np.float32) for c, n in sizes}
    bw = BigWigFile(path, sizes)
    for chrom, start, values in tracks:
        bw.add(chrom, start, values)
        expected[chrom][start : start + len(values)] = values
    bw.close()
    return expected


def _check_values(path: Path, expected: dict[str, np.ndarray], sizes=SIZES) -> None:
    with pyBigWig.open(str(path)) as bw:
        assert list(bw.chroms().items()) == sizes
        for chrom, n in sizes:
            got = np.asarray(bw.values(chrom, 0, n), dtype=np.float32)
            assert np.array_equal(got, expected[chrom], equal_nan=True), chrom
    assert list(bbi.chromsizes(str(path)).items()) == sizes
    for chrom, n in sizes:
        fetched = bbi.fetch(str(path), chrom, 0, n, missing=np.nan).astype(np.float32)
        assert np.array_equal(fetched, expected[chrom], equal_nan=True), chrom


def test_readers_read_every_base(tmp_path: Path) -> None:
    path = tmp_path / "t.bw"
    expected = _write(path, _tracks(np.random.default_rng(1)))
    _check_values(path, expected)


def test_pybigtools_reads_it_too(tmp_path: Path) -> None:
    pybigtools = pytest.importorskip("pybigtools")
    path = tmp_path / "t.bw"
    expected = _write(path, _tracks(np.random.default_rng(1)))
    with pybigtools.open(str(path)) as bw:
        assert list(bw.chroms().items()) == SIZES
        for chrom, n in SIZES:
            got = bw.values(chrom, 0, n, fillna=None).astype(np.float32)
            assert np.array_equal(got, expected[chrom], equal_nan=True), chrom


def test_gaps_absent_and_runs_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "t.bw"
    expected = _write(path, _tracks(np.random.default_rng(2)))
    first_bump = 20_000 + int(np.flatnonzero(expected["chr2"][20_000:] > 0)[0])
    with pyBigWig.open(str(path)) as bw:
        assert bw.intervals("chrEmpty") is None
        assert bw.intervals("chr2", 0, 7) is None
        assert bw.intervals("chr2", 14_007, 20_000) is None
        assert bw.intervals("chr1", 1, 100) is None
        # Noise is stored base by base (fixedStep), long runs as one interval (bedGraph).
        assert len(bw.intervals("chr2", 7, 5_007)) == 5_000
        assert bw.intervals("chr2", 5_007, 14_007) == ((5_007, 14_007, 0.0),)
        assert bw.intervals("chr2", 20_000, first_bump) == ((20_000, first_bump, 0.0),)
        assert bw.intervals("chrM") == ((0, 40, 1.0),)


def test_summary_and_zoom_levels(tmp_path: Path) -> None:
    path = tmp_path / "t.bw"
    expected = _write(path, _tracks(np.random.default_rng(3)))
    allv = np.concatenate([v[~np.isnan(v)] for v in expected.values()]).astype(np.float64)
    info = bbi.info(str(path))
    assert info["summary"]["basesCovered"] == len(allv)
    assert math.isclose(info["summary"]["mean"], allv.mean(), rel_tol=1e-9)
    assert (info["summary"]["min"], info["summary"]["max"]) == (allv.min(), allv.max())
    with pyBigWig.open(str(path)) as bw:
        header = bw.header()
        assert header["nLevels"] == info["zoomLevels"] == 5  # 160 x 4**k bp below the largest, 60 kb
        assert header["nBasesCovered"] == len(allv)
        # Bins that are whole zoom bins: both readers summarize from the zoom records, exactly.
        chrom, n = "chr2", 60_000
        for summary in ("mean", "max", "min"):
            for width in (640, 2_560, 12_800):
                bins = n // width
                x = expected[chrom][: bins * width].reshape(bins, width).astype(np.float64)
                with warnings.catch_warnings():  # bins in the gap: all NaN, as the readers say
                    warnings.simplefilter("ignore", RuntimeWarning)
                    exact = {"mean": np.nanmean, "max": np.nanmax, "min": np.nanmin}[summary](x, axis=1)
                a = np.array(bw.stats(chrom, 0, bins * width, type=summary, nBins=bins), dtype=np.float64)
                b = bbi.fetch(str(path), chrom, 0, bins * width, bins=bins, summary=summary, missing=np.nan)
                assert np.allclose(a, exact, atol=1e-6, equal_nan=True), (summary, width)
                assert np.allclose(b, exact, atol=1e-6, equal_nan=True), (summary, width)
        assert bw.stats("chr2", exact=True)[0] == pytest.approx(np.nanmean(expected["chr2"]), rel=1e-6)


def test_deep_index_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny sections and nodes: many sections, zoom blocks and a four-level R-tree, read the same."""
    monkeypatch.setattr(bigwigfile, "ITEMS_PER_SLOT", 8)
    monkeypatch.setattr(bigwigfile, "BLOCK_SIZE", 4)
    path = tmp_path / "t.bw"
    expected = _write(path, _tracks(np.random.default_rng(4)))
    _check_values(path, expected)
    with pyBigWig.open(str(path)) as bw:
        a = np.array(bw.stats("chr1", 0, 25_600, nBins=10), dtype=np.float64)
    b = bbi.fetch(str(path), "chr1", 0, 25_600, bins=10)
    assert np.allclose(a, b, equal_nan=True)


def test_random_runs_and_gaps(tmp_path: Path) -> None:
    """Seeded random layouts: runs of random lengths and values, gaps between them, small sections."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        sizes = [(f"c{i}", int(rng.integers(1, 5_000))) for i in range(6)]
        tracks = []
        for chrom, n in sizes:
            pos = int(rng.integers(0, 50))
            while pos < n:
                length = min(int(rng.integers(1, 800)), n - pos)
                runs = rng.integers(1, 60, size=length)
                values = np.repeat(rng.integers(0, 4, size=length) / 255, runs)[:length].astype(np.float32)
                tracks.append((chrom, pos, values))
                pos += length + int(rng.integers(0, 300))
        path = tmp_path / f"r{seed}.bw"
        _check_values(path, _write(path, tracks, sizes), sizes)


def test_many_chromosomes(tmp_path: Path) -> None:
    """Past one B+ tree leaf: names sorted into leaves, still found by name; ids stay in genome order."""
    n = bigwigfile.MAX_LEAF_CHROMS + 10
    sizes = [(f"s{n - i}", 100) for i in range(n)]  # genome order is reverse name order
    path = tmp_path / "t.bw"
    bw = BigWigFile(path, sizes)
    picks = [0, 7, n // 2, n - 1]
    for i in picks:
        bw.add(sizes[i][0], 10, np.full(5, i / n, dtype=np.float32))
    bw.close()
    with pyBigWig.open(str(path)) as f:
        assert list(f.chroms().items()) == sizes
        for i in picks:
            assert f.values(sizes[i][0], 10, 15) == pytest.approx([np.float32(i / n)] * 5)
    for i in picks:
        got = bbi.fetch(str(path), sizes[i][0], 0, 100, missing=np.nan)
        assert np.isnan(got[:10]).all() and got[10:15] == pytest.approx([np.float32(i / n)] * 5)


def test_out_of_order_raises(tmp_path: Path) -> None:
    bw = BigWigFile(tmp_path / "t.bw", SIZES)
    bw.add("chr1", 10, np.zeros(5, np.float32))
    for chrom, start, n in [("chr1", 12, 5), ("chr2", 0, 5), ("chr1", 29_999, 5)]:
        with pytest.raises(ValueError, match=f"{chrom}:{start}"):
            bw.add(chrom, start, np.zeros(n, np.float32))
    bw.abort()
