"""Region selection: --regions/--exclude BED files on hand-made contigs, every error path, and a
Hypothesis comparison with a per-base boolean mask."""

from __future__ import annotations

import gzip
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nttracks import regions as regions_module
from nttracks.errors import RegionsError
from nttracks.genome import Contig
from nttracks.regions import read_bed, restrict_contigs

# Two chromosomes in genome order chr2 before chr1 (not lexicographic), chr1 with an N gap at [40, 50).
SIZES = {"chr2": 60, "chr1": 100, "chrM": 16}
CONTIGS = [Contig("chr2", 0, 60), Contig("chr1", 0, 40), Contig("chr1", 50, 100), Contig("chrM", 0, 16)]


def bed(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run(tmp_path: Path, *, regions: str | None = None, exclude: str | None = None) -> list[Contig]:
    r = None if regions is None else bed(tmp_path / "regions.bed", regions)
    e = None if exclude is None else bed(tmp_path / "exclude.bed", exclude)
    return restrict_contigs(CONTIGS, SIZES, regions=r, exclude=e)


def tuples(contigs: list[Contig]) -> list[tuple[str, int, int]]:
    return [(c.chrom, c.start, c.end) for c in contigs]


# ----------------------------------------------------------------------------- selections


def test_no_files_returns_input_unchanged_without_pybedtools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pybedtools", None)  # importing it would fail
    given_contigs = [Contig("chr1", 50, 100), Contig("chr1", 0, 40)]
    out = restrict_contigs(given_contigs, SIZES)
    assert out == given_contigs
    assert out is not given_contigs


def test_regions_only(tmp_path: Path) -> None:
    out = run(tmp_path, regions="chr1\t10\t20\nchr2\t5\t7\n")
    assert tuples(out) == [("chr2", 5, 7), ("chr1", 10, 20)]  # genome order: chr2 first


def test_exclude_only_splits_a_contig(tmp_path: Path) -> None:
    out = run(tmp_path, exclude="chr2\t10\t20\n")
    assert tuples(out) == [
        ("chr2", 0, 10),
        ("chr2", 20, 60),
        ("chr1", 0, 40),
        ("chr1", 50, 100),
        ("chrM", 0, 16),
    ]


def test_regions_and_exclude(tmp_path: Path) -> None:
    out = run(tmp_path, regions="chr1\t0\t100\n", exclude="chr1\t30\t60\nchr1\t90\t95\nchr2\t0\t60\n")
    assert tuples(out) == [("chr1", 0, 30), ("chr1", 60, 90), ("chr1", 95, 100)]


def test_region_spanning_an_n_gap_gives_two_contigs(tmp_path: Path) -> None:
    out = run(tmp_path, regions="chr1\t35\t55\n")
    assert tuples(out) == [("chr1", 35, 40), ("chr1", 50, 55)]


def test_overlapping_unsorted_regions_are_merged(tmp_path: Path) -> None:
    out = run(tmp_path, regions="chr1\t70\t80\nchr2\t30\t40\nchr1\t55\t72\nchr1\t60\t65\nchr2\t35\t45\n")
    assert tuples(out) == [("chr2", 30, 45), ("chr1", 55, 80)]


def test_touching_pieces_are_merged(tmp_path: Path) -> None:
    out = run(tmp_path, regions="chr1\t60\t70\nchr1\t70\t80\nchr1\t80\t81\n")
    assert tuples(out) == [("chr1", 60, 81)]
    touching = [Contig("chr1", 0, 10), Contig("chr1", 10, 20)]
    assert tuples(restrict_contigs(touching, SIZES, regions=bed(tmp_path / "r.bed", "chr1\t5\t15\n"))) == [
        ("chr1", 5, 15)
    ]


def test_empty_result_is_an_empty_list(tmp_path: Path) -> None:
    assert run(tmp_path, regions="chr1\t40\t50\n") == []  # only the N gap
    assert run(tmp_path, exclude="chr2\t0\t60\nchr1\t0\t100\nchrM\t0\t16\n") == []
    assert restrict_contigs([], SIZES, exclude=bed(tmp_path / "e.bed", "chr1\t0\t5\n")) == []


def test_exclude_everything_then_regions(tmp_path: Path) -> None:
    assert run(tmp_path, regions="chr1\t0\t10\n", exclude="chr1\t0\t100\n") == []


def test_lenient_bed_flavours(tmp_path: Path) -> None:
    text = (
        "browser position chr1:1-100\n"
        'track name="mine" description="x y"\n'
        "# a comment\n"
        "\n"
        "chr1\t10\t20\tname with spaces\t0\t+\n"  # extra columns, a name with spaces
        "chr1 25 30\n"  # whitespace-separated
        "chr1\t32\t32\n"  # zero-length: covers nothing (bedtools would count it as one base)
        "chr2\t1\t3\r\n"  # CRLF
    )
    assert tuples(run(tmp_path, regions=text)) == [("chr2", 1, 3), ("chr1", 10, 20), ("chr1", 25, 30)]


def test_column_name_header_on_first_line(tmp_path: Path) -> None:
    assert tuples(run(tmp_path, regions="chrom\tstart\tend\nchr1\t10\t20\n")) == [("chr1", 10, 20)]


def test_gzipped_bed(tmp_path: Path) -> None:
    path = tmp_path / "blacklist.bed.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("chr1\t0\t95\nchr2\t0\t60\n")
    assert tuples(restrict_contigs(CONTIGS, SIZES, exclude=path)) == [("chr1", 95, 100), ("chrM", 0, 16)]


def test_empty_exclude_file_excludes_nothing(tmp_path: Path) -> None:
    assert run(tmp_path, exclude="# empty blacklist\n") == CONTIGS


def test_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    run(tmp_path, regions="chr1\t0\t100\n", exclude="chr1\t10\t20\n")
    assert list(scratch.iterdir()) == []


def test_read_bed_returns_validated_intervals(tmp_path: Path) -> None:
    path = bed(tmp_path / "r.bed", "chr1\t5\t6\nchr2\t0\t0\nchr2\t3\t60\n")
    assert read_bed(path, SIZES) == [("chr1", 5, 6), ("chr2", 3, 60)]


# ----------------------------------------------------------------------------- errors


def error(tmp_path: Path, role: str, text: str) -> str:
    with pytest.raises(RegionsError) as info:
        run(tmp_path, **{role: text})
    return str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegionsError, match=r"regions file .*nope\.bed not found"):
        restrict_contigs(CONTIGS, SIZES, regions=tmp_path / "nope.bed")
    with pytest.raises(RegionsError, match=r"exclude file .* is not a file"):
        restrict_contigs(CONTIGS, SIZES, exclude=tmp_path)


def test_too_few_columns(tmp_path: Path) -> None:
    message = error(tmp_path, "regions", "chr1\t10\t20\nchr1\t10\n")
    assert "regions.bed:2:" in message and "at least 3 columns" in message


@pytest.mark.parametrize("line", ["chr1\t1,000\t2000", "chr1\t10\t2e3", "chr1\t10.5\t20"])
def test_non_integer_coordinates(tmp_path: Path, line: str) -> None:
    message = error(tmp_path, "exclude", f"chr1\t1\t2\n{line}\n")
    assert "exclude.bed:2:" in message and "is not an integer" in message


def test_non_integer_start_and_end_past_the_first_line(tmp_path: Path) -> None:
    # only the first data line may be a column-name header
    message = error(tmp_path, "regions", "chr1\t1\t2\nchrom\tstart\tend\n")
    assert "regions.bed:2:" in message and "'start' is not an integer" in message


def test_start_after_end(tmp_path: Path) -> None:
    message = error(tmp_path, "regions", "track name=x\nchr1\t20\t10\n")
    assert "regions.bed:2:" in message and "start 20 is after end 10" in message


def test_negative_coordinate(tmp_path: Path) -> None:
    message = error(tmp_path, "exclude", "chr1\t-5\t10\n")
    assert "exclude.bed:1:" in message and "negative" in message


def test_interval_past_chromosome_end(tmp_path: Path) -> None:
    message = error(tmp_path, "exclude", "chr1\t0\t10\nchr1\t90\t101\n")
    assert "exclude.bed:2:" in message and "chr1:90-101" in message and "length 100" in message
    assert "another assembly" in message


def test_unknown_chromosomes_listed(tmp_path: Path) -> None:
    text = "".join(f"scaffold{i}\t0\t1\n" for i in range(8)) + "chr1\t0\t1\n"
    message = error(tmp_path, "regions", text)
    assert "8 chromosome(s)" in message and "'scaffold0' (line 1)" in message and "and 3 more" in message
    assert "chr2, chr1, chrM" in message and "prefix" not in message


def test_unknown_chromosomes_hint_adding_chr_prefix(tmp_path: Path) -> None:
    message = error(tmp_path, "exclude", "1\t0\t10\n2\t0\t10\nMT\t0\t5\n")
    assert "'1' -> 'chr1'" in message and "add the 'chr' prefix" in message


def test_unknown_chromosomes_hint_removing_chr_prefix(tmp_path: Path) -> None:
    ensembl = {"1": 100, "MT": 16}
    path = bed(tmp_path / "r.bed", "chr1\t0\t10\nchrM\t0\t5\n")
    with pytest.raises(RegionsError, match=r"'chrM' -> 'MT'.*remove the 'chr' prefix"):
        restrict_contigs([Contig("1", 0, 100)], ensembl, regions=path)


def test_regions_file_without_intervals(tmp_path: Path) -> None:
    message = error(tmp_path, "regions", "# nothing\ntrack name=x\nchr1\t5\t5\n")
    assert "has no intervals" in message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "track.bw"
    path.write_bytes(b"\x26\xfc\x8f\x88\xff\xfe\x00\x80" * 8)
    with pytest.raises(RegionsError, match=r"not a text BED file"):
        restrict_contigs(CONTIGS, SIZES, regions=path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "r.bed.gz"
    path.write_bytes(gzip.compress(b"chr1\t0\t10\n" * 100)[:30])
    with pytest.raises(RegionsError, match=r"cannot read regions file"):
        restrict_contigs(CONTIGS, SIZES, regions=path)


def test_missing_pybedtools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pybedtools", None)
    with pytest.raises(RegionsError, match=r"pip install pybedtools.*apt-get install bedtools"):
        run(tmp_path, regions="chr1\t0\t10\n")


def test_missing_bedtools_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pybedtools

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pybedtools.helpers, "get_bedtools_path", lambda: "")
    with pytest.raises(RegionsError, match=r"bedtools program.*conda install -c bioconda bedtools"):
        run(tmp_path, exclude="chr1\t0\t10\n")


def test_bedtools_failure_is_a_regions_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "bedtools"
    script.write_text("#!/bin/sh\necho 'Error: something broke' >&2\nexit 1\n")
    script.chmod(0o755)
    import pybedtools

    monkeypatch.setattr(pybedtools.helpers, "get_bedtools_path", lambda: str(fake))
    monkeypatch.setattr(pybedtools.settings, "_bedtools_path", str(fake))
    with pytest.raises(RegionsError, match=r"bedtools merge failed.*something broke"):
        run(tmp_path, regions="chr1\t0\t10\n")


# ----------------------------------------------------------------------------- against a per-base mask


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, np.ndarray], list | None, list | None]:
    names = draw(st.permutations(["chrA", "chrB", "chrC"]))[: draw(st.integers(1, 3))]
    sizes = {name: draw(st.integers(1, 40)) for name in names}
    not_n = {
        name: np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) for name, n in sizes.items()
    }

    def intervals() -> list[tuple[str, int, int]]:
        out = []
        for _ in range(draw(st.integers(0, 6))):
            chrom = draw(st.sampled_from(names))
            start = draw(st.integers(0, sizes[chrom]))
            out.append((chrom, start, draw(st.integers(start, sizes[chrom]))))
        return out

    regions = draw(st.none() | st.builds(intervals))
    exclude = draw(st.none() | st.builds(intervals))
    return sizes, not_n, regions, exclude


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_matches_boolean_mask_reference(scenario: tuple) -> None:
    sizes, not_n, regions, exclude = scenario
    contigs = [Contig(c, s, e) for c in sizes for s, e in mask_runs(not_n[c])]
    wanted = {c: not_n[c].copy() for c in sizes}
    if regions is not None:
        inside = {c: np.zeros(n, dtype=bool) for c, n in sizes.items()}
        for c, s, e in regions:
            inside[c][s:e] = True
        wanted = {c: wanted[c] & inside[c] for c in sizes}
    for c, s, e in exclude or []:
        wanted[c][s:e] = False
    expected = [Contig(c, s, e) for c in sizes for s, e in mask_runs(wanted[c])]

    with tempfile.TemporaryDirectory() as tmp:

        def write(name: str, rows: list | None) -> Path | None:
            if rows is None:
                return None
            path = Path(tmp) / name
            path.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))
            return path

        r, e = write("r.bed", regions), write("e.bed", exclude)
        if regions is not None and not any(lo < hi for _, lo, hi in regions):
            with pytest.raises(RegionsError, match="has no intervals"):
                restrict_contigs(contigs, sizes, regions=r, exclude=e)
            return
        given_contigs = contigs[::-1]  # any order in, genome order out
        out = restrict_contigs(given_contigs, sizes, regions=r, exclude=e)
        assert out == (given_contigs if r is None and e is None else expected)


def test_module_imports_no_pybedtools_at_import_time() -> None:
    assert "pybedtools" not in vars(regions_module)
