"""End to end: demo genome -> toy model -> stitched bigWigs -> hub, checked at every base by hand.

The toy base-identity model outputs the one-hot base (A, C, G, T) and the GC fraction of the 6-mer
token containing each base (gc6, counted on the contig's 6-mer grid). Both are known functions of the
contig sequence, so every stitched base is checkable, and a one-base shift of any window breaks gc6.
"""

from __future__ import annotations

import json
from pathlib import Path

import bbi
import numpy as np
import pyBigWig
import pytest

from nttracks.config import parse_config
from nttracks.errors import NothingToScoreError, OutputError, UsageError
from nttracks.genome import Genome
from nttracks.hubs import validate_hub
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome

CHANNELS = ("A", "C", "G", "T", "gc6")


def toy_config(**family: object) -> object:
    return parse_config({"families": {"toy": {"window": 1200, "overlap": 600, **family}}}, source="<test>")


def scored_length(length: int, window: int) -> int:
    """DESIGN.md: a long contig loses fewer than 6 bases at its end (last window end-aligned on the 6-mer
    grid); a contig shorter than a window gets the longest multiple of 24 that fits (the toy minimum is 48)."""
    if length >= window:
        return window + (length - window) // 6 * 6
    return length // 24 * 24 if length >= 48 else 0


def expected(genome: Genome, chrom: str, channel: str, window: int = 1200) -> np.ndarray:
    """The toy model's known function on ``chrom``: NaN where no window can score."""
    codes = genome.codes(chrom)
    out = np.full(len(codes), np.nan)
    for contig in genome.contigs([chrom]):
        n = scored_length(contig.length, window)
        cc = codes[contig.start : contig.start + n]
        if channel == "gc6":
            value = ((cc == 1) | (cc == 2)).reshape(-1, 6).mean(1).repeat(6)
        else:
            value = (cc == "ACGT".index(channel)).astype(float)
        out[contig.start : contig.start + n] = value
    return out


def check_hub(
    out: Path, genome: Genome, chroms: tuple[str, ...] | None = None, *, window: int = 1200, tol: float = 1e-6
) -> None:
    """Every bigWig: readable by pyBigWig and pybbi, all chromosomes with their sizes, no NaN stored,
    nothing in N gaps, and equal to the known function at every scored base."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert validate_hub(out) == []
    for channel, rel in manifest["families"]["toy"]["tracks"].items():
        path = out / rel
        with bbi.open(str(path)) as f:
            assert f.is_bigwig
            assert dict(f.chromsizes) == genome.chrom_sizes
            assert np.isfinite(f.info["summary"]["mean"])
        bw = pyBigWig.open(str(path))
        try:
            assert bw.chroms() == genome.chrom_sizes
            assert list(bw.chroms()) == list(genome.chroms)  # the genome's chromosome order
            for chrom in genome.chroms:
                values = np.array(bw.values(chrom, 0, genome.chrom_sizes[chrom]), dtype=np.float64)
                want = expected(genome, chrom, channel, window)
                if chroms is not None and chrom not in chroms:
                    want[:] = np.nan
                scored = ~np.isnan(values)
                assert not (scored & (genome.codes(chrom) == 4)).any(), f"{channel}: value in an N gap of {chrom}"
                np.testing.assert_array_equal(scored, ~np.isnan(want), err_msg=f"{channel} {chrom} coverage")
                np.testing.assert_allclose(values[scored], want[scored], atol=tol, err_msg=f"{channel} {chrom}")
        finally:
            bw.close()


@pytest.fixture(scope="module")
def demo() -> Genome:
    return open_genome("demo")


def test_demo_hub_is_exact_at_every_base(demo: Genome, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    result = run_genome(RunRequest(genome="demo", config=toy_config(), out=out))
    assert result.out == out
    check_hub(out, demo)
    manifest = result.manifest["families"]["toy"]
    assert manifest["bases_scored"] == sum(np.isfinite(expected(demo, c, "A")).sum() for c in demo.chroms)
    assert manifest["seam_qc"] == dict.fromkeys(CHANNELS, 0.0)  # windows that agree leave no seam
    assert not any(p.name.endswith("nttracks-staging") for p in tmp_path.iterdir())
    assert (out / "demo" / "demo.2bit").is_file()


@pytest.mark.parametrize(
    ("settings", "chroms"),
    [
        ({"batch_size": 1}, ("chr2", "chr3")),
        ({"batch_size": 7, "stitch": "nearest"}, ("chr2", "chr3")),
        ({"batch_size": 5, "stitch": "mean", "overlap": 0}, ("chr2",)),
        ({"overlap": 1176, "stitch": "taper"}, ("chr3", "chr2")),
        ({"window": 480, "overlap": 300, "stitch": "nearest"}, ("chr1",)),
        ({"window": 2400, "overlap": 1000, "batch_size": 3}, ("chr3",)),
    ],
)
def test_exact_whatever_batch_overlap_stitch_or_chroms(
    demo: Genome, tmp_path: Path, settings: dict[str, object], chroms: tuple[str, ...]
) -> None:
    out = tmp_path / "hub"
    run_genome(RunRequest(genome="demo", config=toy_config(**settings), out=out, chroms=chroms))
    check_hub(out, demo, chroms, window=int(settings.get("window", 1200)))


def test_rerun_into_existing_hub_replaces_files(demo: Genome, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr3",)))
    (out / "notes.txt").write_text("kept")
    run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr2",)))
    check_hub(out, demo, ("chr2",))
    assert (out / "notes.txt").read_text() == "kept"


def test_fasta_genome_gets_an_assembly_hub(tmp_path: Path) -> None:
    fasta = tmp_path / "my.genome-1.fa"
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGTacgt"), size=5000)) + "N" * 100 + "".join(rng.choice(list("ACGT"), size=3000))
    fasta.write_text(">ctgA\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    out = tmp_path / "hub"
    run_genome(RunRequest(genome=fasta, config=toy_config(), out=out))
    genome = open_genome(fasta)
    assert genome.name == "my.genome-1"
    check_hub(out, genome)
    assert "genome my_genome_1" in (out / "genomes.txt").read_text()


def test_dry_run_plan_writes_nothing(tmp_path: Path) -> None:
    plan = plan_run(RunRequest(genome="demo", config=toy_config(), out=tmp_path / "hub"))
    text = plan.summary()
    # by hand: a contig of L >= 1,200 bp takes windows every 600 bp plus one end-aligned, a shorter one
    # (>= 48 bp) one window of its own length
    with open_genome("demo") as genome:
        lengths = [c.end - c.start for c in genome.contigs()]
    windows = sum(1 + -(-(n - 1200) // 600) if n >= 1200 else int(n >= 48) for n in lengths)
    assert f"{windows:,} windows of 1,200 bp" in text
    assert f"{plan.families[0].plan.bases_scored:,} bases scored" in text
    assert "estimated output" in text
    assert not (tmp_path / "hub").exists()


def test_nothing_to_score(tmp_path: Path) -> None:
    fasta = tmp_path / "tiny.fa"
    fasta.write_text(">c\nACGTACGTAC\n")
    with pytest.raises(NothingToScoreError, match="no stretch of at least 48 bp"):
        run_genome(RunRequest(genome=fasta, config=toy_config(), out=tmp_path / "hub"))
    assert not (tmp_path / "hub").exists()


def test_out_is_required(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--out"):
        run_genome(RunRequest(genome="demo", config=toy_config()))


@pytest.mark.parametrize("model", ["base_identity", "context_gc"])
def test_regions_and_exclude_choose_the_written_bases_never_the_values(
    demo: Genome, tmp_path: Path, model: str
) -> None:
    """A regions run writes, at every base it writes, exactly the whole-genome run's value: the windows are
    the whole-genome plan's, with their full context (the context-dependent toy shows a missing flank)."""
    codes = demo.codes("chr2")
    lo, hi = 60_000, 70_000
    assert not (codes[lo:hi] == 4).any()  # an N-free stretch, so the contigs are known by hand
    (tmp_path / "keep.bed").write_text(f"chr2\t{lo}\t{hi}\nchr1\t1000\t1010\n")
    (tmp_path / "drop.bed").write_text(f"chr2\t{lo + 3000}\t{lo + 3100}\n")
    config = parse_config({"families": {"toy": {"window": 1200, "overlap": 600, "model": model}}})
    whole, part = tmp_path / "whole", tmp_path / "part"
    run_genome(RunRequest(genome="demo", config=config, out=whole, chroms=("chr1", "chr2")))
    result = run_genome(RunRequest(genome="demo", config=config, out=part, regions=tmp_path / "keep.bed",
                                   exclude=tmp_path / "drop.bed"))
    written = {"chr1": [(1000, 1010)], "chr2": [(lo, lo + 3000), (lo + 3100, hi)]}
    assert result.manifest["families"]["toy"]["bases_scored"] == 10 + 3000 + 6900
    for rel in result.manifest["families"]["toy"]["tracks"].values():
        for chrom, size in demo.chrom_sizes.items():
            full = pyBigWig.open(str(whole / rel))
            got = pyBigWig.open(str(part / rel))
            try:
                want = np.array(full.values(chrom, 0, size), dtype=np.float64)
                values = np.array(got.values(chrom, 0, size), dtype=np.float64)
            finally:
                full.close()
                got.close()
            mask = np.zeros(size, dtype=bool)
            for a, b in written.get(chrom, []):
                mask[a:b] = True
            assert np.isfinite(want[mask]).all()
            np.testing.assert_array_equal(values[mask], want[mask])  # bit for bit
            assert np.isnan(values[~mask]).all()


def test_regions_that_miss_everything(tmp_path: Path) -> None:
    (tmp_path / "keep.bed").write_text("chr2\t0\t10\n")  # inside chr2's leading N gap
    with pytest.raises(NothingToScoreError):
        run_genome(RunRequest(genome="demo", config=toy_config(), out=tmp_path / "hub", regions=tmp_path / "keep.bed"))
    assert not (tmp_path / "hub").exists()


def test_disk_full_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import nttracks.runs

    out = tmp_path / "hub"
    run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr3",)))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full(genome: Genome, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(nttracks.runs, "write_twobit", full)
    with pytest.raises(OutputError, match="No space left on device") as info:
        run_genome(RunRequest(genome="demo", config=toy_config(), out=out, chroms=("chr2",)))
    assert f"{out} is unchanged" in str(info.value)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # no staging left behind; the work directory (finished shards, the log) stays for the next run
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hub.nttracks-work", "hub"]


def test_public_surface_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    import nttracks
    import nttracks.runs

    assert nttracks.run_genome is nttracks.runs.run_genome
    for name in nttracks.__all__:
        assert getattr(nttracks, name) is not None
    code = "import sys, nttracks, nttracks.bigwig; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
