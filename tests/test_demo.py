"""The demo genome: deterministic, the right size, and every planted element where the BED says."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import UMASK_MODES, mode, umask

from nttracks import demo
from nttracks.bases import N
from nttracks.genome import Genome
from nttracks.registry import open_genome


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return demo.write_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def genome(demo_files: tuple[Path, Path]) -> Iterator[Genome]:
    with open_genome(demo_files[0]) as g:
        yield g


@pytest.fixture(scope="module")
def bed(demo_files: tuple[Path, Path]) -> list[tuple[str, int, int, str, str, str]]:
    rows = []
    for line in demo_files[1].read_text().splitlines():
        chrom, start, end, name, score, strand, ident = line.split("\t")
        assert score == "0"
        rows.append((chrom, int(start), int(end), name, strand, ident))
    return rows


def _seq(genome: Genome, chrom: str, start: int, end: int, strand: str) -> str:
    s = genome.raw(chrom, start, end).tobytes()
    return (demo.revcomp(s) if strand == "-" else s).decode().upper()


def _of(bed: list, name: str) -> list:
    return [r for r in bed if r[3] == name]


def test_deterministic_same_bytes(tmp_path: Path, demo_files: tuple[Path, Path]) -> None:
    fasta, bed = demo.write_demo(tmp_path)
    assert fasta.read_bytes() == demo_files[0].read_bytes()
    assert bed.read_bytes() == demo_files[1].read_bytes()
    other, _ = demo.generate(seed=demo.DEMO_SEED + 1)
    assert other != demo.generate()[0]


def test_sizes_and_short_contigs(genome: Genome) -> None:
    assert genome.chrom_sizes == demo.DEMO_CHROM_SIZES
    assert list(genome.chroms) == ["chr1", "chr2", "chr3"]
    assert 400_000 <= sum(genome.chrom_sizes.values()) <= 600_000
    assert genome.chrom_sizes["chr3"] < 3_000  # a chromosome shorter than one model window
    short = [c for c in genome.contigs() if c.length < 3_000]
    assert any(c.chrom != "chr3" for c in short)  # an N-free contig between gaps, < 3 kb


def test_bed_sorted_within_bounds_known_classes(genome: Genome, bed: list) -> None:
    order = {c: i for i, c in enumerate(genome.chroms)}
    keys = [(order[c], s, e) for c, s, e, *_ in bed]
    assert keys == sorted(keys)
    for chrom, start, end, name, strand, _ in bed:
        assert 0 <= start < end <= genome.chrom_sizes[chrom]
        assert name in demo.DEMO_CLASSES
        assert strand in "+-."
    counts = Counter(r[3] for r in bed)
    for name in demo.DEMO_CLASSES:
        assert counts[name] >= 1, name


def test_gaps_exactly_where_the_bed_says(genome: Genome, bed: list) -> None:
    expected = sorted((c, s, e) for c, s, e, name, *_ in bed if name == "gap")
    found = []
    for chrom in genome.chroms:
        n = np.concatenate([[0], (genome.codes(chrom) == N).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(n))
        found += [(chrom, int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2], strict=True)]
    assert found == expected
    assert any(s == 0 for _, s, _ in found)  # a gap at a chromosome start
    assert any(e == genome.chrom_sizes[c] for c, _, e in found)  # and one at a chromosome end
    contig_bp = sum(c.length for c in genome.contigs())
    assert contig_bp + sum(e - s for _, s, e in found) == sum(genome.chrom_sizes.values())


def test_soft_masked_repeats(genome: Genome, bed: list) -> None:
    repeats = _of(bed, "repeat")
    assert len(repeats) >= 5
    for chrom in genome.chroms:
        mask = genome.soft_mask(chrom)
        expected = np.zeros_like(mask)
        for c, s, e, *_ in repeats:
            if c == chrom:
                expected[s:e] = True
        np.testing.assert_array_equal(mask, expected)  # lowercase exactly on annotated repeats


def test_splice_sites(genome: Genome, bed: list) -> None:
    donors, acceptors = _of(bed, "splice_donor"), _of(bed, "splice_acceptor")
    assert len(donors) == len(acceptors) == len(_of(bed, "intron")) >= 10
    assert {r[4] for r in donors} == {"+", "-"}  # genes on both strands
    for c, s, e, _, strand, _ in donors:
        assert re.fullmatch("GT[AG]AGT", _seq(genome, c, s, e, strand))
    for c, s, e, _, strand, _ in acceptors:
        assert _seq(genome, c, s, e, strand).endswith("AG")
    for c, s, e, _, strand, _ in _of(bed, "intron"):
        seq = _seq(genome, c, s, e, strand)
        assert seq.startswith("GT") and seq.endswith("AG")


def test_polya_signals_and_utrs(genome: Genome, bed: list) -> None:
    signals = _of(bed, "polyA_signal")
    assert len(signals) >= 5
    for c, s, e, _, strand, _ in signals:
        assert _seq(genome, c, s, e, strand) == "AATAAA"
    exons = {(r[0], r[5].split(".")[0]): [] for r in _of(bed, "exon")}
    for r in _of(bed, "exon"):
        exons[(r[0], r[5].split(".")[0])].append((r[1], r[2]))
    for c, s, e, name, _, gid in _of(bed, "5UTR") + _of(bed, "3UTR") + signals:
        assert any(a <= s and e <= b for a, b in exons[(c, gid)]), (name, gid)  # exonic


def test_promoters_ctcf_enhancers(genome: Genome, bed: list) -> None:
    promoters = _of(bed, "promoter_Tissue_invariant") + _of(bed, "promoter_Tissue_specific")
    for c, s, e, _, strand, _ in promoters:
        assert demo.TATA_BOX in _seq(genome, c, s, e, strand)
    island = "".join(_seq(genome, *r[:3], r[4]) for r in _of(bed, "promoter_Tissue_invariant"))
    assert island.count("CG") / len(island) > 0.05  # CpG-rich
    core = demo.CTCF_CORE.replace("N", "[ACGT]")
    for c, s, e, _, strand, _ in _of(bed, "CTCF-bound"):
        assert re.search(core, _seq(genome, c, s, e, strand))
    for c, s, e, name, _, _ in _of(bed, "enhancer_Tissue_invariant") + _of(bed, "enhancer_Tissue_specific"):
        motifs = demo.INVARIANT_MOTIFS if name.endswith("invariant") else demo.SPECIFIC_MOTIFS
        seq = _seq(genome, c, s, e, "+") + "|" + _seq(genome, c, s, e, "-")
        hits = sum(len(re.findall(m.replace("N", "[ACGT]"), seq)) for m in motifs)
        assert hits >= 3, (name, s)


def test_background_composition(genome: Genome) -> None:
    codes = np.concatenate([genome.codes(c) for c in genome.chroms])
    codes = codes[codes != N]
    gc = np.isin(codes, [1, 2]).mean()
    assert 0.35 <= gc <= 0.45
    cpg = np.mean((codes[:-1] == 1) & (codes[1:] == 2))
    expected = np.mean(codes == 1) * np.mean(codes == 2)
    assert cpg / expected < 0.6  # CpG-depleted, as vertebrate genomes are


def test_open_genome_demo_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTTRACKS_UCSC_MIRROR", "http://127.0.0.1:9")  # no network is ever needed
    with open_genome("demo", cache_dir=tmp_path) as g:
        assert g.name == "demo" and g.ucsc_name is None
        assert g.fasta == tmp_path / "genomes" / "demo" / f"v{demo.DEMO_VERSION}" / "demo.fa"
        assert g.chrom_sizes == demo.DEMO_CHROM_SIZES
    mtime = g.fasta.stat().st_mtime_ns
    assert demo.demo_annotation_path(tmp_path) == g.fasta.with_name("demo.bed")
    with open_genome("demo", cache_dir=tmp_path) as again:  # reused, not regenerated
        assert again.fasta.stat().st_mtime_ns == mtime


def test_demo_uses_nttracks_cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTTRACKS_CACHE", str(tmp_path))
    assert demo.demo_annotation_path().is_relative_to(tmp_path)
    assert demo.demo_fasta_path().is_file()


def test_read_annotation_round_trip(demo_files: tuple[Path, Path]) -> None:
    assert demo.read_annotation(demo_files[1]) == demo.generate()[1]


def test_demo_classes_use_segment_nt_feature_names() -> None:
    from nttracks.demo import DEMO_CLASSES
    from nttracks.models import FEATURES

    assert DEMO_CLASSES[: len(FEATURES)] == FEATURES


@pytest.mark.parametrize(("mask", "want"), UMASK_MODES)
def test_demo_files_readable_by_others(tmp_path: Path, mask: int, want: int) -> None:
    with umask(mask):
        fasta, bed = demo.write_demo(tmp_path)
    assert (mode(fasta), mode(bed)) == (want, want)
