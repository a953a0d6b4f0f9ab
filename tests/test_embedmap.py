"""The embedding map: windows picked by hand-checkable rules, a map that keeps apart classes separable by
construction (and mixes two drawn alike), the sensitivity family's setting, and the map on a demo hub."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nttracks import embedmap
from nttracks.config import parse_config
from nttracks.errors import ConfigError
from nttracks.genome import Contig, Genome
from nttracks.models.base import Geometry
from nttracks.models.embedding import KmerOneHotModel
from nttracks.summaries import Annotation, read_annotation


def annotation(classes: dict[str, dict[str, list[tuple[int, int]]]]) -> Annotation:
    return Annotation(Path("hand.bed"), {name: {c: np.array(iv, dtype=np.int64) for c, iv in by.items()}
                                         for name, by in sorted(classes.items())})


def test_windows_are_centred_on_the_grid_inside_n_free_contigs() -> None:
    contigs = [Contig("chr1", 0, 1000), Contig("chr1", 1100, 3000), Contig("chr2", 30, 400)]
    ann = annotation({
        # centre 505 -> start 505 - 150 = 355, down to the 6-mer grid: 354; centre 1050 lies in the N gap;
        # centre 1120 needs a start 970 < 1100 (the contig's start); centre 2000 -> 1850 on 1100's grid: 1850
        "exon": {"chr1": [(500, 510), (1040, 1060), (1115, 1125), (1990, 2010)]},
        # centre 215 on chr2 (contig from 30): 65 -> 30 + 35 // 6 * 6 = 60; chr3 is not in the run
        "promoter": {"chr2": [(200, 230)], "chr3": [(0, 500)]},
    })
    w = embedmap.pick_windows(ann, contigs, 300, per_class=10, seed=1)
    assert w.classes == ("exon", "promoter", "background")
    rows = [(w.classes[c], str(ch), int(s)) for c, ch, s in zip(w.label, w.chrom, w.start, strict=True)]
    assert rows[:3] == [("exon", "chr1", 354), ("exon", "chr1", 1850), ("promoter", "chr2", 60)]
    assert w.counts() == {"exon": 2, "promoter": 1, "background": 10}
    back = [(str(ch), int(s)) for c, ch, s in zip(w.label, w.chrom, w.start, strict=True) if c == 2]
    assert back == sorted(back, key=lambda r: (["chr1", "chr2"].index(r[0]), r[1]))  # genome order
    elements = {"chr1": [(500, 510), (1040, 1060), (1115, 1125), (1990, 2010)], "chr2": [(200, 230)]}
    for chrom, start in back:
        contig = next(c for c in contigs if c.chrom == chrom and c.start <= start < c.end)
        assert (start - contig.start) % 6 == 0 and start + 300 <= contig.end  # on the grid, inside the contig
        assert not any(a <= start + 150 < b for a, b in elements[chrom])  # its centre in no element


def test_each_class_is_capped_by_a_seeded_choice() -> None:
    contigs = [Contig("chr1", 0, 100_000)]
    ann = annotation({"site": {"chr1": [(1000 * i, 1000 * i + 10) for i in range(1, 90)]}})
    a = embedmap.pick_windows(ann, contigs, 120, per_class=25, seed=7)
    b = embedmap.pick_windows(ann, contigs, 120, per_class=25, seed=7)
    c = embedmap.pick_windows(ann, contigs, 120, per_class=25, seed=8)
    site = a.label == 0
    assert site.sum() == 25 and np.array_equal(a.start, b.start)
    assert not np.array_equal(a.start[site], c.start[c.label == 0])
    assert np.all(np.diff(a.start[site]) > 0)  # chosen at random, kept in genome order
    assert set(((a.start[site] + 60) // 1000).tolist()) <= set(range(1, 90))


def composition_genome(tmp_path: Path) -> tuple[Genome, Annotation]:
    """chr1: 160 blocks of 420 bp in a seeded order, 40 each of gc (G/C with probability 0.8), at (0.2),
    same_a and same_b (both 0.5: one distribution, two names); each block's middle 60 bp is its element."""
    rng = np.random.default_rng(3)
    kinds = np.repeat(["gc", "at", "same_a", "same_b"], 40)
    rng.shuffle(kinds)
    gc = {"gc": 0.8, "at": 0.2, "same_a": 0.5, "same_b": 0.5}
    seq, bed = [], []
    for i, kind in enumerate(kinds):
        strong = rng.random(420) < gc[kind]
        seq.append(np.where(strong, rng.choice([b"C", b"G"], 420), rng.choice([b"A", b"T"], 420)))
        bed.append(f"chr1\t{420 * i + 180}\t{420 * i + 240}\t{kind}\n")
    (tmp_path / "g.fa").write_bytes(b">chr1\n" + b"".join(np.concatenate(seq).tolist()) + b"\n")
    (tmp_path / "g.bed").write_text("".join(bed))
    return Genome("g", tmp_path / "g.fa"), read_annotation(tmp_path / "g.bed")


def test_the_map_keeps_apart_what_differs_and_mixes_what_does_not(tmp_path: Path) -> None:
    """Mean-pooled 6-mer one-hots are each window's 6-mer spectrum: GC-rich and AT-rich windows differ in it
    by construction, two classes drawn from one distribution do not."""
    genome, ann = composition_genome(tmp_path)
    model = KmerOneHotModel(Geometry(window=300, multiple=6, min_length=6, grid=6))
    with genome:
        windows = embedmap.pick_windows(ann, genome.contigs(), 300, per_class=30)
        m = embedmap.embedding_map(model, genome.codes, windows)
        again = embedmap.embedding_map(model, genome.codes, embedmap.pick_windows(ann, genome.contigs(), 300,
                                                                                  per_class=30))
    assert m is not None and again is not None
    w = m.windows
    assert w.counts() == {"at": 30, "gc": 30, "same_a": 30, "same_b": 30, "background": 30}
    assert m.xy.shape == (150, 2) and np.array_equal(m.xy, again.xy)  # one seed, one map

    def purity(names: tuple[str, ...]) -> float:
        keep = np.isin(np.array(w.classes)[w.label], names)
        return embedmap.neighbour_purity(m.xy[keep], w.label[keep])

    assert purity(("gc", "at")) > 0.95  # chance for two classes of 30: 29/59
    assert purity(("same_a", "same_b")) < 0.7
    assert purity(("gc", "same_a")) > 0.9 and purity(("at", "same_b")) > 0.9
    assert m.chance == pytest.approx(5 * 30 * 29 / (150 * 149))
    png = embedmap.map_png(m, "k-mer spectrum")
    assert png.startswith(b"\x89PNG") and png == embedmap.map_png(again, "k-mer spectrum")
    rows = embedmap.points_tsv(m).decode().splitlines()
    assert rows[0] == "class\tchrom\tstart\tend\tx\ty" and len(rows) == 151
    first = rows[1].split("\t")
    assert first[:2] == ["at", "chr1"] and int(first[3]) - int(first[2]) == 300
    assert float(first[4]) == pytest.approx(m.xy[0, 0], abs=1e-4)


def test_neighbour_purity_by_hand() -> None:
    xy = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    assert embedmap.neighbour_purity(xy, np.array([0, 0, 1, 1]), k=1) == 1.0
    assert embedmap.neighbour_purity(xy, np.array([0, 1, 0, 1]), k=1) == 0.0
    assert embedmap.neighbour_purity(xy, np.array([0, 0, 1, 1]), k=2) == 0.5  # own pair, then one across
    assert embedmap.chance_purity(np.array([0, 0, 1, 1])) == pytest.approx(1 / 3)


def test_too_few_windows_make_no_map(tmp_path: Path) -> None:
    (tmp_path / "g.fa").write_text(">chr1\n" + "ACGGTCAT" * 18 + "\n")  # 144 bp
    model = KmerOneHotModel()
    with Genome("g", tmp_path / "g.fa") as genome:
        # a 120-bp window centred on 75 starts at 12 (the grid below 15); random windows start at 0, 6, 12,
        # 18, 24, and those centred at 72 and 78 lie in the element: 1 + 3 windows, fewer than 10
        few = annotation({"site": {"chr1": [(70, 80)]}})
        w = embedmap.pick_windows(few, genome.contigs(), 120)
        assert w.counts() == {"site": 1, "background": 3} and w.start.tolist() == [12, 0, 6, 24]
        assert embedmap.embedding_map(model, genome.codes, w) is None
        # plenty of background windows but no element window: one class, no map
        elsewhere = annotation({"site": {"chr1": [(195, 200)]}})
        w = embedmap.pick_windows(elsewhere, genome.contigs(), 60)
        assert w.counts()["site"] == 0 and len(w) >= embedmap.MIN_POINTS
        assert embedmap.embedding_map(model, genome.codes, w) is None


def test_embedding_map_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"families\.sensitivity\.embedding_map: .* needs "
                                          r"families\.sensitivity\.annotation"):
        parse_config({"families": {"sensitivity": {"checkpoint": "demo-nt", "embedding_map": True}}})
    with pytest.raises(ConfigError, match=r"families\.sensitivity\.embedding_layer: .* set embedding_map"):
        parse_config({"families": {"sensitivity": {"checkpoint": "demo-nt", "embedding_layer": 1}}})
    with pytest.raises(ConfigError, match=r"embedding_map"):
        parse_config({"families": {"sensitivity": {"checkpoint": "demo-nt", "annotation": "demo",
                                                   "embedding_map": "yes please"}}})
    ok = parse_config({"families": {"sensitivity": {"checkpoint": "demo-nt", "annotation": "demo",
                                                    "embedding_map": True, "embedding_layer": 1}}})
    assert ok.families["sensitivity"].embedding_layer == 1
    from nttracks.families import get_family

    family = get_family("sensitivity")
    settings = dataclasses.replace(ok.families["sensitivity"], embedding_layer=3)
    assert family.preflight(ok.families["sensitivity"], family.geometry(settings), dry_run=False) == []
    with pytest.raises(ConfigError, match=r"families\.sensitivity\.embedding_layer: 3, but checkpoint demo-nt has "
                                          r"layers 0\.\.2"):
        family.preflight(settings, family.geometry(settings), dry_run=False)


def test_the_trained_demo_shows_its_embedding_map(tmp_path: Path) -> None:
    """The sensitivity family of configs/demo.yaml (unmasked, one channel, 12 kb of tracks, to stay
    fast) on the held-out chromosome: the map of the shipped masked LM's embeddings of windows all over it on
    the page, its points beside it, every window N-free and centred on an element of its class."""
    from typer.testing import CliRunner

    from nttracks.cli import app
    from nttracks.demo import demo_annotation_path, demo_fasta_path
    from nttracks.hubcheck import validate_hub
    from nttracks.resources import resource_dir

    trained = yaml.safe_load((resource_dir("configs") / "demo.yaml").read_text())
    sensitivity = trained["families"]["sensitivity"]
    assert sensitivity["embedding_map"] is True
    sensitivity.update(masking="none", channels=["constraint"])
    sensitivity.pop("k", None)
    window = sensitivity["window"]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"hub": trained["hub"], "families": {"sensitivity": sensitivity}}))
    (tmp_path / "keep.bed").write_text("chr2\t0\t12000\n")  # tracks on 12 kb; the map over all of chr2
    out = tmp_path / "hub"
    built = CliRunner().invoke(app, ["genome", "demo", "--config", str(config), "--chroms", "chr2", "--regions",
                                     str(tmp_path / "keep.bed"), "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert validate_hub(out) == []
    page = (out / "demo" / "sensitivity.html").read_text()
    assert '<img src="sensitivity_embedding_map.png"' in page and f"{window:,} bp on chr2" in page
    assert "at layer 2 of 2" in page and '<a href="sensitivity_embedding_map.tsv">' in page
    summary = json.loads((out / "manifest.json").read_text())["families"]["sensitivity"]["summary"]
    counts = summary["embedding_map"]["windows"]
    assert counts["gap"] == 0 and 0 < counts["exon"] <= embedmap.PER_CLASS
    assert counts["background"] == embedmap.PER_CLASS  # gaps are N
    assert f"<tr><td>exon</td><td>{counts['exon']}</td></tr>" in page
    picture, points = out / "demo" / "sensitivity_embedding_map.png", out / "demo" / "sensitivity_embedding_map.tsv"
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert picture.stat().st_mode & 0o044 == 0o044 and points.stat().st_mode & 0o044 == 0o044
    rows = [r.split("\t") for r in points.read_text().splitlines()[1:]]
    assert len(rows) == sum(counts.values()) and {r[1] for r in rows} == {"chr2"}
    truth = read_annotation(demo_annotation_path())
    with Genome("demo", demo_fasta_path()) as genome:
        for name, chrom, start, end, *_ in rows:
            a, b = int(start), int(end)
            assert b - a == window and genome.codes(chrom, a, b).max() < 4  # whole windows, N-free
            centre = (a + b) // 2
            if name == "background":  # its centre in no element
                assert not any(lo <= centre < hi for iv in truth.classes.values() for lo, hi in iv.get(chrom, []))
            else:  # centred on one of its class's elements, the start moved down to the 6-mer grid
                assert any(0 <= (lo + hi) // 2 - centre < 6 for lo, hi in truth.classes[name][chrom])
