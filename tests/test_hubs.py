"""Hub writer: the UCSC track hub and WashU datahub written from a HubSpec over tiny pyBigWig files.

The helpers here (``write_bigwig``, ``make_hub``, ``ALL``) also build the hubs ``test_hubcheck`` breaks.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from test_catalog import ELEMENTS

from nttracks.errors import ConfigError, OutputError
from nttracks.hubs import (
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

CHROMS = [("chr1", 1200), ("chr2", 600)]
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
    directory.chmod(0o755)  # pytest makes tmp_path 0700; a web server must be able to enter a hub's directory
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
                   code_version="nttracks 0.1.0")  # as runs.py writes it
    return spec, write_hub(spec, directory, base_url=base_url)


ALL = {"elements": ELEMENTS, "enhancer": ["developmental", "housekeeping"], "sensitivity": ["constraint"],
       "toy": ["A", "C", "G", "T", "gc6"]}



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
    constraint = tdb["sensitivity_constraint"]
    assert "parent" not in constraint and constraint["group"] == "nt_predictions"
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
    assert 'href="demo/elements.html"' in overview and 'href="demo/sensitivity_constraint.html"' in overview
    assert "hubUrl=https://example.org/hubs/demo/hub.txt" in overview
    assert "does not host the demo assembly" in overview


def test_pages_name_the_code_version_once_and_say_how_to_serve_the_hub(tmp_path: Path) -> None:
    make_hub(tmp_path, {"toy": ["A", "gc6"], "sensitivity": ["constraint"]})
    pages = [tmp_path / "hub.html", *sorted((tmp_path / "demo").glob("*.html"))]
    pages.remove(tmp_path / "demo/description.html")  # the assembly's page carries no provenance
    for page in pages:
        text = page.read_text()
        assert text.count("nttracks 0.1.0") == 1, page
        assert "nttracks nttracks" not in text, page
    overview = (tmp_path / "hub.html").read_text()
    assert "Created 2026-11-21T09:00:00Z by nttracks 0.1.0." in overview
    assert "<td>Code version</td><td><code>nttracks 0.1.0</code></td>" in (tmp_path / "demo/toy_A.html").read_text()
    assert "nttracks serve" not in overview  # no such command yet
    assert ("must be served by a web server that supports HTTP byte-range requests and CORS (e.g. nginx; "
            "see the nttracks README, section Hosting)") in overview


def test_washu_datahub_has_absolute_urls_colours_and_metadata(tmp_path: Path) -> None:
    spec, written = make_hub(tmp_path, {"toy": ["A", "gc6"], "enhancer": ["developmental", "housekeeping"]})
    assert tmp_path / WASHU_FILE in written
    hub = json.loads((tmp_path / WASHU_FILE).read_text())
    assert hub == washu_tracks(spec, BASE_URL)
    assert [t["name"] for t in hub] == ["enhancer", "toy_A", "toy_gc6"]
    # the enhancer family's catalog entry says washu: matplot: its two bigwigs are the lines of one track
    matplot = hub[0]
    assert matplot["type"] == "matplot" and matplot["showOnHubLoad"] is True and "url" not in matplot
    assert [t["name"] for t in matplot["tracks"]] == ["enhancer_developmental", "enhancer_housekeeping"]
    assert {t["type"] for t in matplot["tracks"]} == {"bigwig"}
    assert matplot["tracks"][0]["url"] == "https://example.org/hubs/demo/demo/bw/enhancer_developmental.bw"
    assert matplot["options"]["label"] == "NT enhancer"
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
    ({"assembly": AssemblySpec("demo/demo.2bit", "demo/demo.chrom.sizes", "x", "chr1:600-1", "d")},
     ConfigError, r"default position 'chr1:600-1'"),
    ({"assembly": AssemblySpec("demo/demo.2bit", "demo/demo.chrom.sizes", "x\rdemo", "chr1:1-10", "d")},
     ConfigError, r"assembly organism"),
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


def test_washu_tracks_checks_its_inputs(tmp_path: Path) -> None:
    spec, _ = make_hub(tmp_path, {"toy": ["A"]})
    with pytest.raises(ConfigError, match="absolute http"):
        washu_tracks(spec, "ftp://example.org/hub")
    bad = HubSpec(**{**spec.__dict__, "tracks": (BigWigTrack("toy", "U", "demo/bw/toy_A.bw"),)})
    with pytest.raises(ConfigError, match="'U'"):
        washu_tracks(bad, BASE_URL)
