"""Hub writer, track catalog and the hubCheck-style validator.

A good hub (written by write_hub over tiny pyBigWig files) must validate clean; each hand-broken copy must
yield the problem hubCheck would report (shared/reference/hubs.md §1).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nttracks.errors import ConfigError, OutputError
from nttracks.hubs import (
    LONG_LABEL_MAX,
    NAME_RE,
    SHORT_LABEL_MAX,
    WASHU_FILE,
    AssemblySpec,
    BigWigTrack,
    FamilyRun,
    HubSpec,
    load_catalog,
    validate_hub,
    washu_tracks,
    write_hub,
)
from nttracks.resources import resource_dir

CHROMS = [("chr1", 1200), ("chr2", 600)]
ELEMENTS = ["protein_coding_gene", "lncRNA", "exon", "intron", "splice_donor", "splice_acceptor", "5UTR",
            "3UTR", "CTCF-bound", "polyA_signal", "enhancer_Tissue_specific", "enhancer_Tissue_invariant",
            "promoter_Tissue_specific", "promoter_Tissue_invariant"]
BASE_URL = "https://example.org/hubs/demo/"


def write_bigwig(path: Path, chroms: list[tuple[str, int]] = CHROMS, *, empty: bool = False) -> None:
    """A tiny bigWig: fixedStep values k/6 over the first 60 bases of each chromosome."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(chroms)
    if not empty:
        for chrom, _ in chroms:
            bw.addEntries(chrom, 0, values=(np.arange(60) % 7 / 6).astype(np.float64), span=1, step=1)
    bw.close()


def write_twobit(path: Path, seqs: dict[str, str]) -> None:
    """A minimal .2bit (no N or mask blocks) — enough for the magic-number and existence checks."""
    codes = {"T": 0, "C": 1, "A": 2, "G": 3}
    header = struct.pack("<4I", 0x1A412743, 0, len(seqs), 0)
    index_size = sum(1 + len(name) + 4 for name in seqs)
    offset = len(header) + index_size
    index, records = b"", b""
    for name, seq in seqs.items():
        index += bytes([len(name)]) + name.encode() + struct.pack("<I", offset + len(records))
        packed = bytearray()
        for i in range(0, len(seq), 4):
            chunk = seq[i:i + 4].ljust(4, "T")
            packed.append(sum(codes[b] << (6 - 2 * j) for j, b in enumerate(chunk)))
        records += struct.pack("<4I", len(seq), 0, 0, 0) + bytes(packed)
    path.write_bytes(header + index + records)


def run(family: str) -> FamilyRun:
    return FamilyRun(family=family, model=f"{family}-model-v1", checkpoint_digest=f"sha256:{family}0123abcd",
                     config_yaml=f"family: {family}\nwindow: 1200  # <b>not bold</b>\n",
                     seam_qc={"mean_abs_diff": 0.0125, "max_abs_diff": 0.25})


def make_hub(directory: Path, families: dict[str, list[str]], *, genome: str = "demo", assembly: bool = True,
             base_url: str | None = BASE_URL) -> tuple[HubSpec, list[Path]]:
    tracks = []
    for family, channels in families.items():
        for channel in channels:
            rel = f"{genome}/bw/{family}_{re.sub('[^A-Za-z0-9_]', '_', channel)}.bw"
            write_bigwig(directory / rel)
            tracks.append(BigWigTrack(family=family, channel=channel, path=rel))
    spec_assembly = None
    if assembly:
        write_twobit(directory / genome / f"{genome}.2bit", {"chr1": "ACGT" * 300, "chr2": "GGCC" * 150})
        (directory / genome / f"{genome}.chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in CHROMS))
        spec_assembly = AssemblySpec(twobit=f"{genome}/{genome}.2bit",
                                     chrom_sizes=f"{genome}/{genome}.chrom.sizes", organism="Synthetic demo",
                                     default_pos="chr1:1-600", description="nttracks demo genome (synthetic)")
    spec = HubSpec(hub_name="nttracks_demo", short_label="nttracks demo",
                   long_label="nttracks demo hub: toy and NT model tracks", email="nttracks@example.org",
                   genome=genome, assembly=spec_assembly, tracks=tuple(tracks),
                   families=tuple(run(f) for f in families), created="2026-11-21T09:00:00Z",
                   code_version="0.1.0")
    return spec, write_hub(spec, directory, base_url=base_url)


ALL = {"elements": ELEMENTS, "enhancer": ["developmental", "housekeeping"], "sensitivity": ["sensitivity"],
       "toy": ["A", "C", "G", "T", "gc6"]}


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    make_hub(tmp_path, ALL)
    return tmp_path


# --- catalog --------------------------------------------------------------------------------------


def test_catalog_covers_the_design_families_and_obeys_the_name_and_label_rules() -> None:
    cat = load_catalog()
    assert [f.family for f in cat.families] == ["elements", "enhancer", "sensitivity", "toy"]
    assert [t.channel for t in cat.family("elements").tracks] == ELEMENTS
    assert [t.channel for t in cat.family("toy").tracks] == ["A", "C", "G", "T", "gc6"]
    assert {f.family: f.container for f in cat.families} == {
        "elements": "composite", "enhancer": "multiWig", "sensitivity": "none", "toy": "composite"}
    names = [f.family for f in cat.families] + [t.name for f in cat.families for t in f.tracks]
    assert len(set(names)) == len(names)
    for fam in cat.families:
        assert len(fam.short_label) <= SHORT_LABEL_MAX and len(fam.long_label) <= LONG_LABEL_MAX
        assert "<h2>Description</h2>" in fam.html_template
        for t in fam.tracks:
            assert NAME_RE.fullmatch(t.name) and t.name.startswith(f"{fam.family}_")
            assert len(t.short_label) <= SHORT_LABEL_MAX and len(t.long_label) <= LONG_LABEL_MAX
            assert all(0 <= c <= 255 for c in t.color)
            assert t.view_limits[0] < t.view_limits[1]
    colors = [t.color for t in cat.family("elements").tracks]
    assert len(set(colors)) == len(colors)
    assert cat.track("elements", "exon").quantum == pytest.approx(1 / 255)
    assert cat.track("toy", "gc6").quantum == pytest.approx(1 / 6)
    assert cat.track("toy", "A").quantum == 1.0
    assert cat.track("elements", "5UTR").name == "elements_UTR5"


def test_catalog_lookup_names_the_unknown_and_lists_the_known() -> None:
    cat = load_catalog()
    with pytest.raises(ConfigError, match=r"'nope'.*elements, enhancer, sensitivity, toy"):
        cat.family("nope")
    with pytest.raises(ConfigError, match=r"channel 'U'.*A, C, G, T, gc6"):
        cat.track("toy", "U")


def _broken_catalog(tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    src = resource_dir("trackhubs")
    raw = yaml.safe_load((src / "catalog.yaml").read_text())
    edit(raw)
    for page in src.glob("*.html"):
        (tmp_path / page.name).write_text(page.read_text())
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _toy_track(raw: dict, i: int = 0) -> dict:
    return raw["families"]["toy"]["tracks"][i]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: _toy_track(r).update(short_label="Toy base A present"), r"tracks\[0\]\.short_label.*18 char"),
    (lambda r: _toy_track(r).update(long_label="x" * 77), r"tracks\[0\]\.long_label.*77 char"),
    (lambda r: _toy_track(r).update(color="0,0,256"), r"tracks\[0\]\.color"),
    (lambda r: _toy_track(r).update(color="red"), r"tracks\[0\]\.color"),
    (lambda r: _toy_track(r).update(suffix="a.b"), r"tracks\[0\]\.suffix"),
    (lambda r: _toy_track(r).update(view_limits=[1, 0]), r"tracks\[0\]\.view_limits"),
    (lambda r: _toy_track(r).update(visibility="bogus"), r"tracks\[0\]\.visibility"),
    (lambda r: _toy_track(r).update(quantum=0), r"tracks\[0\]\.quantum"),
    (lambda r: _toy_track(r).update(colour="0,0,0"), r"tracks\[0\]: unknown key\(s\) colour"),
    (lambda r: _toy_track(r, 4).update(suffix="A"), r"toy_A.*also used"),
    (lambda r: r["families"]["toy"].update(container="superTrack"), r"families\.toy\.container"),
    (lambda r: r["families"]["toy"].update(group="nope"), r"families\.toy\.group"),
    (lambda r: r["families"]["toy"].update(html="missing.html"), r"families\.toy\.html.*cannot read"),
    (lambda r: r["families"]["toy"]["defaults"].pop("quantum"), r"tracks\[0\]: missing key\(s\) quantum"),
    (lambda r: r["families"]["enhancer"]["tracks"].pop(), r"families\.enhancer\.container.*multiWig"),
    (lambda r: r["families"].update({"9bad": r["families"].pop("toy")}), r"families\.9bad"),
])
def test_catalog_errors_name_the_key(tmp_path: Path, edit: Callable[[dict], None], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_catalog(_broken_catalog(tmp_path, edit))


def test_catalog_template_placeholders_are_checked(tmp_path: Path) -> None:
    path = _broken_catalog(tmp_path, lambda r: None)
    (tmp_path / "toy.html").write_text("<p>$track_label by $author</p>")
    with pytest.raises(ConfigError, match=r"families\.toy\.html.*author"):
        load_catalog(path)


def test_catalog_that_is_not_yaml_or_missing(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("families: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog(tmp_path / "catalog.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml")


# --- writer ---------------------------------------------------------------------------------------


def stanzas(path: Path) -> dict[str, dict[str, str]]:
    out = {}
    for block in path.read_text().strip().split("\n\n"):
        settings = dict(line.split(" ", 1) for line in block.splitlines())
        key = next(settings[k] for k in ("track", "genome", "hub", "name") if k in settings)
        out[key] = settings
    return out


def test_assembly_hub_is_written_whole_and_validates_clean(tmp_path: Path) -> None:
    spec, written = make_hub(tmp_path, ALL)
    assert written[-1] == tmp_path / "hub.txt"  # hub.txt last: readers never see a half-written hub
    assert len(written) == len(set(written)) and all(p.is_file() for p in written)
    assert validate_hub(tmp_path) == []

    hub = stanzas(tmp_path / "hub.txt")["nttracks_demo"]
    assert hub == {"hub": "nttracks_demo", "shortLabel": "nttracks demo", "longLabel": spec.long_label,
                   "genomesFile": "genomes.txt", "email": "nttracks@example.org",
                   "descriptionUrl": "hub.html"}
    genome = stanzas(tmp_path / "genomes.txt")["demo"]
    assert genome["trackDb"] == "demo/trackDb.txt" and genome["twoBitPath"] == "demo/demo.2bit"
    assert genome["organism"] == "Synthetic demo" and genome["defaultPos"] == "chr1:1-600"
    assert genome["chromSizes"] == "demo/demo.chrom.sizes" and genome["groups"] == "demo/groups.txt"
    assert stanzas(tmp_path / "demo/groups.txt")["nt_predictions"]["label"]

    tdb = stanzas(tmp_path / "demo/trackDb.txt")
    assert len(tdb) == 3 + 14 + 2 + 1 + 5  # three containers; sensitivity stands alone
    assert tdb["elements"]["compositeTrack"] == "on" and tdb["toy"]["compositeTrack"] == "on"
    assert tdb["enhancer"]["container"] == "multiWig" and tdb["enhancer"]["aggregate"] == "transparentOverlay"
    assert [t for t, s in tdb.items() if s.get("parent") == "elements on"] == [
        t.name for t in load_catalog().family("elements").tracks]
    gc6 = tdb["toy_gc6"]
    assert gc6 == {"track": "toy_gc6", "parent": "toy on", "shortLabel": "Toy GC 6-mer",
                   "longLabel": "Toy model GC fraction of the grid-aligned 6-mer containing each base",
                   "type": "bigWig 0 1", "bigDataUrl": "bw/toy_gc6.bw", "color": "90,60,140",
                   "autoScale": "off", "viewLimits": "0:1", "maxHeightPixels": "48:24:8",
                   "visibility": "full", "priority": "5", "html": "toy_gc6.html"}
    assert tdb["enhancer_developmental"]["parent"] == "enhancer"
    assert "parent" not in tdb["sensitivity_mlm"] and tdb["sensitivity_mlm"]["group"] == "nt_predictions"
    assert tdb["toy"]["group"] == "nt_predictions" and "group" not in tdb["toy_gc6"]

    for name, stanza in tdb.items():  # a page for every stanza, with the provenance on it
        page = (tmp_path / "demo" / stanza["html"]).read_text()
        family = name.split("_")[0]
        for needle in (f"{family}-model-v1", f"sha256:{family}0123abcd", "2026-11-21T09:00:00Z",
                       "nttracks 0.1.0", "max_abs_diff", "0.0125", "&lt;b&gt;not bold&lt;/b&gt;"):
            assert needle in page, (name, needle)
        assert "$" not in page
    assert "Toy GC 6-mer" in (tmp_path / "demo/toy.html").read_text()  # the container lists its subtracks
    overview = (tmp_path / "hub.html").read_text()
    assert 'href="demo/elements.html"' in overview and 'href="demo/sensitivity_mlm.html"' in overview
    assert "hubUrl=https://example.org/hubs/demo/hub.txt" in overview
    assert "does not host the demo assembly" in overview


def test_washu_datahub_has_absolute_urls_colours_and_metadata(tmp_path: Path) -> None:
    spec, written = make_hub(tmp_path, {"toy": ["A", "gc6"], "enhancer": ["developmental", "housekeeping"]})
    assert tmp_path / WASHU_FILE in written
    hub = json.loads((tmp_path / WASHU_FILE).read_text())
    assert hub == washu_tracks(spec, BASE_URL)
    assert [t["name"] for t in hub] == ["enhancer_developmental", "enhancer_housekeeping", "toy_A", "toy_gc6"]
    gc6 = hub[-1]
    assert gc6["type"] == "bigwig" and gc6["showOnHubLoad"] is True
    assert gc6["url"] == "https://example.org/hubs/demo/demo/bw/toy_gc6.bw"
    assert gc6["options"] == {"label": "Toy GC 6-mer", "color": "#5a3c8c", "height": 24, "yScale": "fixed",
                              "yMin": 0.0, "yMax": 1.0}
    assert gc6["metadata"] == {"Family": "Toy model", "Channel": "gc6", "Model": "toy-model-v1",
                               "Checkpoint": "sha256:toy0123abcd"}
    assert all(isinstance(v, str) for t in hub for v in t["metadata"].values())


def test_hosted_genome_hub_without_base_url_skips_washu(tmp_path: Path) -> None:
    _, written = make_hub(tmp_path, {"elements": ELEMENTS, "enhancer": ["developmental", "housekeeping"]},
                          genome="hg38", assembly=False, base_url=None)
    assert not (tmp_path / WASHU_FILE).exists() and tmp_path / WASHU_FILE not in written
    assert validate_hub(tmp_path) == []
    genome = stanzas(tmp_path / "genomes.txt")["hg38"]
    assert genome == {"genome": "hg38", "trackDb": "hg38/trackDb.txt"}
    tdb = stanzas(tmp_path / "hg38/trackDb.txt")
    assert not any("group" in s for s in tdb.values())  # UCSC files hub tracks under the hub's own group
    assert not (tmp_path / "hg38/groups.txt").exists()


def test_multiwig_with_one_channel_falls_back_to_a_composite(tmp_path: Path) -> None:
    make_hub(tmp_path, {"enhancer": ["developmental"]})
    tdb = stanzas(tmp_path / "demo/trackDb.txt")
    assert tdb["enhancer"].get("compositeTrack") == "on" and "container" not in tdb["enhancer"]
    assert validate_hub(tmp_path) == []


def test_rewriting_a_hub_is_idempotent(tmp_path: Path) -> None:
    spec, written = make_hub(tmp_path, {"toy": ["A", "C"]})
    before = {p: p.read_bytes() for p in written}
    assert write_hub(spec, tmp_path, base_url=BASE_URL) == written
    assert {p: p.read_bytes() for p in written} == before
    assert not list(tmp_path.rglob(".*.tmp"))


def _spec_edit(tmp_path: Path, **changes: object) -> HubSpec:
    spec, _ = make_hub(tmp_path, {"toy": ["A", "gc6"]})
    return HubSpec(**{**spec.__dict__, **changes})


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"tracks": (BigWigTrack("toy", "U", "demo/bw/toy_A.bw"),)}, ConfigError, r"'U'.*A, C, G, T, gc6"),
    ({"tracks": (BigWigTrack("toys", "A", "demo/bw/toy_A.bw"),)}, ConfigError, r"family 'toys'"),
    ({"tracks": (BigWigTrack("toy", "A", "demo/bw/absent.bw"),)}, OutputError, r"absent\.bw does not exist"),
    ({"tracks": (BigWigTrack("toy", "A", "../toy_A.bw"),)}, ConfigError, r"inside it"),
    ({"tracks": (BigWigTrack("toy", "A", "/abs/toy_A.bw"),)}, ConfigError, r"relative"),
    ({"tracks": ()}, ConfigError, r"no track"),
    ({"tracks": (BigWigTrack("toy", "A", "demo/bw/toy_A.bw"),) * 2}, ConfigError, r"listed twice"),
    ({"families": ()}, ConfigError, r"FamilyRun for family 'toy'"),
    ({"families": (run("toy"), run("enhancer"))}, ConfigError, r"FamilyRun for 'enhancer' but no track"),
    ({"hub_name": "my hub"}, ConfigError, r"hub name 'my hub'"),
    ({"genome": "hg 38"}, ConfigError, r"genome name"),
    ({"short_label": "two\nlines"}, ConfigError, r"hub short label"),
    ({"assembly": AssemblySpec("demo/absent.2bit", "demo/demo.chrom.sizes", "x", "chr1:1-10", "d")},
     OutputError, r"absent\.2bit"),
    ({"assembly": AssemblySpec("demo/demo.2bit", "demo/demo.chrom.sizes", "x", "chr1", "d")},
     ConfigError, r"default position"),
])
def test_write_hub_rejects_an_inconsistent_spec(tmp_path: Path, changes: dict, error: type,
                                                message: str) -> None:
    spec = _spec_edit(tmp_path, **changes)
    with pytest.raises(error, match=message):
        write_hub(spec, tmp_path)


def test_write_hub_needs_an_existing_directory_and_an_http_base_url(tmp_path: Path) -> None:
    spec, _ = make_hub(tmp_path, {"toy": ["A"]})
    with pytest.raises(OutputError, match="does not exist"):
        write_hub(spec, tmp_path / "nope")
    with pytest.raises(ConfigError, match="absolute http"):
        write_hub(spec, tmp_path, base_url="hubs/demo")


# --- validator ------------------------------------------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def edit_stanza(hub: Path, track: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` within the stanza of ``track`` in demo/trackDb.txt."""
    path = hub / "demo/trackDb.txt"
    blocks = path.read_text().split("\n\n")
    i = next(i for i, b in enumerate(blocks) if b.startswith(f"track {track}\n"))
    assert old in blocks[i], (track, old)
    blocks[i] = blocks[i].replace(old, new, 1)
    path.write_text("\n\n".join(b for b in blocks if b.strip()))


def in_stanza(track: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda h: edit_stanza(h, track, old, new)


def drop_stanza(hub: Path, track: str) -> None:
    path = hub / "demo/trackDb.txt"
    blocks = path.read_text().split("\n\n")
    path.write_text("\n\n".join(b for b in blocks if not b.startswith(f"track {track}\n")))


def add_subgroups(hub: Path) -> None:
    edit_stanza(hub, "toy", "compositeTrack on\n",
                "compositeTrack on\nsubGroup1 base Base a=A c=C g=G t=T o=Other\n")
    for name, value in (("A", "a"), ("C", "c"), ("G", "g")):
        edit_stanza(hub, f"toy_{name}", "parent toy on\n", f"parent toy on\nsubGroups base={value}\n")
    edit_stanza(hub, "toy_T", "parent toy on\n", "parent toy on\nsubGroups base=t kind=x\n")


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    # §1.1 hub.txt
    "no hub.txt": (lambda h: (h / "hub.txt").unlink(), "hub.txt: missing"),
    "hub missing email": (lambda h: edit(h / "hub.txt", "email nttracks@example.org\n", ""),
                          "hub.txt: Missing required setting 'email'"),
    "hub missing genomesFile": (lambda h: edit(h / "hub.txt", "genomesFile genomes.txt\n", ""),
                                "Missing required setting 'genomesFile'"),
    "no descriptionUrl": (lambda h: edit(h / "hub.txt", "descriptionUrl hub.html\n", ""),
                          "missing hub overview description page (descriptionUrl setting)"),
    "descriptionUrl absent": (lambda h: (h / "hub.html").unlink(), "descriptionUrl hub.html does not exist"),
    # §1.2 genomes.txt and assembly hubs
    "genomes.txt absent": (lambda h: (h / "genomes.txt").unlink(), "genomesFile genomes.txt does not exist"),
    "trackDb absent": (lambda h: (h / "demo/trackDb.txt").unlink(),
                       "trackDb demo/trackDb.txt does not exist"),
    "genome without trackDb": (lambda h: edit(h / "genomes.txt", "trackDb demo/trackDb.txt\n", ""),
                               "Genome stanza should have at least two lines"),
    "duplicate genome": (lambda h: edit(h / "genomes.txt", "genome demo\n",
                                        "genome demo\ntrackDb demo/trackDb.txt\n\ngenome demo\n"),
                         "Duplicate genome"),
    "bad genome name": (lambda h: edit(h / "genomes.txt", "genome demo\n", "genome de/mo\n"),
                        "Bad genome name"),
    "assembly without organism": (lambda h: edit(h / "genomes.txt", "organism Synthetic demo\n", ""),
                                  "must have 'organism' set in assembly hub"),
    "assembly without defaultPos": (lambda h: edit(h / "genomes.txt", "defaultPos chr1:1-600\n", ""),
                                    "must have 'defaultPos' set in assembly hub"),
    "2bit absent": (lambda h: (h / "demo/demo.2bit").unlink(), "twoBitPath demo/demo.2bit does not exist"),
    "2bit not a 2bit": (lambda h: (h / "demo/demo.2bit").write_text(">chr1\nACGT\n"), "is not a .2bit file"),
    "groups absent": (lambda h: (h / "demo/groups.txt").unlink(), "groups demo/groups.txt does not exist"),
    "group undefined": (in_stanza("toy", "group nt_predictions", "group other"),
                        "group 'other' of track toy is not defined"),
    "defaultPos off the genome": (lambda h: edit(h / "genomes.txt", "chr1:1-600", "chrX:1-600"),
                                  "defaultPos chromosome chrX is not in chromSizes"),
    # §1.3 track stanzas
    "bad track name": (in_stanza("toy_gc6", "track toy_gc6", "track toy.gc6"),
                       "track name 'toy.gc6' must match"),
    "duplicate track": (in_stanza("toy_C", "track toy_C", "track toy_A"),
                        "Track toy_A appears more than once in genome demo"),
    "short label too long": (in_stanza("toy_A", "shortLabel Toy A", "shortLabel Toy base A present"),
                             "shortLabel of track toy_A has 18 characters; at most 17"),
    "long label too long": (in_stanza("toy", "longLabel ", "longLabel " + "x" * 60),
                            "longLabel of track toy has"),
    "no longLabel": (in_stanza("enhancer", "longLabel ", "longLabelx "),
                     "Missing required 'longLabel' setting in track enhancer"),
    "missing type": (in_stanza("toy_A", "type bigWig 0 1\n", ""), "Missing required 'type'"),
    "unsupported type": (in_stanza("toy_A", "type bigWig 0 1", "type bigWog"), "Unsupported type"),
    "bad bigWig range": (in_stanza("toy_A", "type bigWig 0 1", "type bigWig 0"),
                         "must be 'bigWig' or 'bigWig <min> <max>'"),
    "no bigDataUrl": (in_stanza("toy_A", "bigDataUrl bw/toy_A.bw\n", ""),
                      "Missing required 'bigDataUrl'"),
    "bigDataUrl absent": (lambda h: (h / "demo/bw/toy_gc6.bw").unlink(), "Couldn't open bw/toy_gc6.bw"),
    "bigDataUrl outside hub": (in_stanza("toy_A", "bigDataUrl bw/toy_A.bw", "bigDataUrl ../../x.bw"),
                               "points outside the hub directory"),
    "bigDataUrl not a bigWig": (lambda h: (h / "demo/bw/toy_A.bw").write_text("chr1\t0\t10\t1\n"),
                                "bw/toy_A.bw is not a big wig file"),
    "bigBed where a bigWig belongs": (lambda h: (h / "demo/bw/toy_A.bw").write_bytes(
        b"\xeb\xf2\x89\x87" + bytes(60)), "is not a big wig file"),
    "empty bigWig": (lambda h: write_bigwig(h / "demo/bw/toy_A.bw", empty=True), "is an empty bigWig"),
    "bigWig chrom not in genome": (lambda h: write_bigwig(h / "demo/bw/toy_A.bw", [("1", 1200)]),
                                   "has chromosome 1 of length 1200, which is not in chromSizes"),
    "bad color": (in_stanza("toy_A", "color 0,150,0", "color red"),
                  "Expecting 3 comma separated values in red"),
    "color out of range": (in_stanza("toy_A", "color 0,150,0", "color 0,150,300"),
                           "Expecting 3 comma separated values in 0,150,300"),
    "bad visibility": (in_stanza("toy_A", "visibility full", "visibility bogus"),
                       "Unknown visibility bogus"),
    "viewLimits without colon": (in_stanza("toy_A", "viewLimits 0:1", "viewLimits 0-1"),
                                 "Missing a colon in range value '0-1'"),
    "viewLimits not numbers": (in_stanza("toy_A", "viewLimits 0:1", "viewLimits a:1"),
                               "Invalid double range lower value 'a'"),
    "viewLimits reversed": (in_stanza("toy_A", "viewLimits 0:1", "viewLimits 1:0"),
                            "upper < lower. Should swap"),
    "autoScale group on a leaf": (in_stanza("toy_A", "autoScale off", "autoScale group"),
                                  'has value "group" for autoScale setting'),
    "bad maxHeightPixels": (in_stanza("toy_A", "maxHeightPixels 48:24:8", "maxHeightPixels big"),
                            "maxHeightPixels 'big'"),
    "html page absent": (lambda h: (h / "demo/toy_gc6.html").unlink(),
                         "html page toy_gc6.html of track toy_gc6 does not exist"),
    "no html anywhere": (lambda h: (edit_stanza(h, "toy", "html toy.html\n", ""),
                                    (h / "demo/toy.html").unlink()),
                         "missing description page for track. Add 'html toy.html' line to the 'toy' track "
                         "stanza"),
    "forbidden setting": (in_stanza("toy_A", "color", "idInUrlSql x\ncolor"),
                          "Forbidden setting 'idInUrlSql'"),
    "stanza without track line": (in_stanza("toy_A", "track toy_A\n", "track toy_A\n\nshortLabel x\n"),
                                  "stanza does not start with a 'track' line"),
    "repeated setting": (in_stanza("toy_A", "color 0,150,0", "color 0,150,0\ncolor 1,1,1"),
                         "setting 'color' appears twice"),
    # §1.4 containers
    "missing parent": (in_stanza("toy_A", "parent toy on", "parent toys on"),
                       "Parent toys of track toy_A doesn't exist"),
    "children of a non-container": (in_stanza("toy", "compositeTrack on\n", ""),
                                    'Track "toy" has children tracks (e.g: "toy_A"), but is not a '
                                    "compositeTrack"),
    "container without children": (lambda h: [drop_stanza(h, f"enhancer_{c}") for c in ("developmental",
                                                                                        "housekeeping")],
                                   'Track "enhancer" is declared superTrack, compositeTrack, view or '
                                   "container, but has no subtracks"),
    "container with data": (in_stanza("toy", "compositeTrack on\n",
                                                  "compositeTrack on\nbigDataUrl bw/toy_A.bw\n"),
                            "and also has a bigDataUrl"),
    "multiWig with one subtrack": (lambda h: drop_stanza(h, "enhancer_housekeeping"),
                                   "container multiWig enhancer has only one subtrack"),
    "multiWig inside a composite": (in_stanza("enhancer", "showSubtrackColorOnUi on\n",
                                                          "showSubtrackColorOnUi on\nparent toy\n"),
                                    "Container multiWig tracks cannot be children of composites"),
    "subtrack without subGroups": (add_subgroups, "missing 'subgroups' setting for subtrack toy_gc6"),
    "subtrack missing a subgroup": (lambda h: (add_subgroups(h), edit_stanza(h, "toy_T", "base=t ", "")),
                                    "subtrack toy_T not a member of subgroup base"),
    "subgroup not defined at parent": (add_subgroups, 'subtrack "toy_T" has a subgroup "kind" not defined'),
    "malformed subGroup": (in_stanza("toy", "compositeTrack on\n", "compositeTrack on\nsubGroup1 base\n"),
                           "subGroup1 must be '<tag> <Title> <member>=<Label> ...'"),
    "subgroup value not defined": (lambda h: (add_subgroups(h), edit_stanza(h, "toy_C", "base=c", "base=z")),
                                   "subtrack toy_C has value 'z' for subgroup base"),
    # WashU datahub
    "washu not JSON": (lambda h: (h / WASHU_FILE).write_text("[{"), "washu.json: not valid JSON"),
    "washu not an array": (lambda h: (h / WASHU_FILE).write_text('{"type": "bigwig"}'),
                           "non-empty JSON array"),
    "washu relative url": (lambda h: edit(h / WASHU_FILE, '"https://example.org/hubs/demo/demo/bw/toy_A.bw"',
                                          '"demo/bw/toy_A.bw"'), "must be an absolute http(s) URL"),
    "washu track without name": (lambda h: edit(h / WASHU_FILE, '"name": "toy_A"', '"nam": "toy_A"'),
                                 "missing 'name'"),
    "washu track without type": (lambda h: edit(h / WASHU_FILE, '"type": "bigwig"', '"typ": "bigwig"'),
                                 "missing 'type'"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_validator_reports_each_broken_rule(hub: Path, case: str) -> None:
    assert validate_hub(hub) == []
    breaker, expected = BROKEN[case]
    breaker(hub)
    problems = validate_hub(hub)
    assert any(expected in p for p in problems), problems


def test_validator_names_the_file_and_line(hub: Path) -> None:
    edit_stanza(hub, "toy_A", "visibility full", "visibility bogus")
    (problem,) = validate_hub(hub)
    line = (hub / "demo/trackDb.txt").read_text().split("\n\n")
    first = next(i for i, b in enumerate(line) if b.startswith("track toy_A\n"))
    start = sum(b.count("\n") + 2 for b in line[:first]) + 1
    assert problem == f"demo/trackDb.txt:{start}: Unknown visibility bogus"


def test_validator_reads_continuations_comments_and_single_file_hubs(tmp_path: Path) -> None:
    write_bigwig(tmp_path / "x.bw")
    (tmp_path / "about.html").write_text("<p>about</p>")
    (tmp_path / "t1.html").write_text("<p>t1</p>")
    (tmp_path / "hub.txt").write_text(
        "hub one\nshortLabel One\nlongLabel One-file \\\n  hub\nuseOneFile on\nemail a@b.c\n"
        "descriptionUrl about.html\n\n# a comment\ngenome hg38\n\n"
        "track t1\nshortLabel T1\nlongLabel Track one\ntype bigWig\nbigDataUrl x.bw\n")
    assert validate_hub(tmp_path) == []
    (tmp_path / "t1.html").unlink()
    assert validate_hub(tmp_path) == [
        "hub.txt:12: missing description page for track. Add 'html t1.html' line to the 't1' track stanza"]


def test_validator_skips_remote_urls(hub: Path) -> None:
    edit_stanza(hub, "toy_A", "bigDataUrl bw/toy_A.bw", "bigDataUrl https://example.org/x.bw")
    assert validate_hub(hub) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_validator_never_crashes_on_mangled_files(tmp_path: Path, data: st.DataObject) -> None:
    if not (tmp_path / "hub.txt").exists():
        make_hub(tmp_path, {"toy": ["A", "gc6"], "enhancer": ["developmental", "housekeeping"]})
    name = data.draw(st.sampled_from(["hub.txt", "genomes.txt", "demo/trackDb.txt", "demo/groups.txt",
                                      "demo/demo.chrom.sizes", WASHU_FILE]))
    path = tmp_path / name
    original = path.read_text()
    lines = original.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "duplicate", "mangle", "blank"]))
        if action == "drop" and len(lines) > 1:
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "blank":
            lines.insert(i, "")
        else:
            head = lines[i].split(" ", 1)[0]
            lines[i] = head + " " + data.draw(st.text(st.characters(codec="ascii"), max_size=12))
    path.write_text("\n".join(lines) + "\n")
    try:
        problems = validate_hub(tmp_path)
    finally:
        path.write_text(original)
    assert all(isinstance(p, str) for p in problems)


def test_validator_accepts_tabs_between_setting_and_value(hub: Path) -> None:
    edit_stanza(hub, "toy_A", "color 0,150,0", "color\t0,150,0")
    assert validate_hub(hub) == []


def test_washu_tracks_checks_its_inputs(tmp_path: Path) -> None:
    spec, _ = make_hub(tmp_path, {"toy": ["A"]})
    with pytest.raises(ConfigError, match="absolute http"):
        washu_tracks(spec, "ftp://example.org/hub")
    bad = HubSpec(**{**spec.__dict__, "tracks": (BigWigTrack("toy", "U", "demo/bw/toy_A.bw"),)})
    with pytest.raises(ConfigError, match="'U'"):
        washu_tracks(bad, BASE_URL)
