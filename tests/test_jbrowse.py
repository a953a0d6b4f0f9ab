"""The JBrowse 2 config and the igv.js viewer page written beside the UCSC hub (tiny pyBigWig files)."""

from __future__ import annotations

import json
from pathlib import Path

from test_hubs import ALL, make_hub

from nttracks.hubcheck import validate_hub
from nttracks.igvpage import IGV_JS_URL
from nttracks.jbrowse import JBROWSE_CONFIG


def test_assembly_hub_config_has_the_2bit_aliases_one_bigwig_track_each_and_a_session(tmp_path: Path) -> None:
    make_hub(tmp_path, ALL)
    config = json.loads((tmp_path / JBROWSE_CONFIG).read_text())
    (assembly,) = config["assemblies"]
    assert assembly["name"] == "demo"
    assert assembly["sequence"]["adapter"] == {
        "type": "TwoBitAdapter", "twoBitLocation": {"uri": "../demo/demo.2bit", "locationType": "UriLocation"},
        "chromSizesLocation": {"uri": "../demo/demo.chrom.sizes", "locationType": "UriLocation"}}
    assert assembly["refNameAliases"]["adapter"]["location"]["uri"] == "aliases.txt"
    assert (tmp_path / "jbrowse/aliases.txt").read_text() == "chr1\t1\nchr2\t2\n"
    tracks = {t["trackId"]: t for t in config["tracks"]}
    assert len(tracks) == 14 + 2 + 1 + 5
    exon = tracks["elements_exon"]
    assert exon["type"] == "QuantitativeTrack" and exon["assemblyNames"] == ["demo"]
    assert exon["adapter"] == {"type": "BigWigAdapter",
                               "bigWigLocation": {"uri": "../demo/bw/elements_exon.bw", "locationType": "UriLocation"}}
    assert exon["category"] == ["SegmentNT"] and tracks["toy_A"]["category"] == ["Toy model"]
    (display,) = exon["displays"]
    assert display["type"] == "LinearWiggleDisplay" and (display["minScore"], display["maxScore"]) == (0, 1)
    assert display["renderers"]["XYPlotRenderer"]["color"] == "rgb(44,160,44)"
    assert exon["metadata"]["licence"] == ("CC BY-NC-SA 4.0 (SegmentNT weights, InstaDeep); the demo's "
                                           "demo-segment-nt: MIT, as nttracks")
    (view,) = config["defaultSession"]["views"]
    assert [t["configuration"] for t in view["tracks"]] == [t for t in tracks if t.startswith("elements_")]
    assert all(t["displays"][0]["configuration"] == f"{t['configuration']}-LinearWiggleDisplay"
               for t in view["tracks"])
    assert view["displayedRegions"] == [{"refName": "chr1", "start": 0, "end": 600, "assemblyName": "demo"}]


def test_hosted_genome_config_takes_ucscs_2bit_and_the_bigwig_chromosomes(tmp_path: Path) -> None:
    make_hub(tmp_path, {"elements": ALL["elements"], "sensitivity": ["constraint"]}, genome="hg38",
             assembly=False)
    assert validate_hub(tmp_path) == []
    config = json.loads((tmp_path / JBROWSE_CONFIG).read_text())
    adapter = config["assemblies"][0]["sequence"]["adapter"]
    assert adapter["twoBitLocation"]["uri"] == "https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/hg38.2bit"
    assert "displayedRegions" not in config["defaultSession"]["views"][0]
    assert (tmp_path / "jbrowse/aliases.txt").read_text() == "chr1\t1\nchr2\t2\n"


def test_the_viewer_page_lists_every_track_and_opens_the_first_family(tmp_path: Path) -> None:
    make_hub(tmp_path, {"toy": ["A", "gc6"], "sensitivity": ["constraint"]})
    page = (tmp_path / "index.html").read_text()
    assert f'<script src="{IGV_JS_URL}"></script>' in page
    data = json.loads(page.split('<script type="application/json" id="hub">')[1].split("</script>")[0])
    assert data["reference"] == {"id": "demo", "name": "Synthetic demo (demo)", "twoBitURL": "demo/demo.2bit",
                                 "chromSizesURL": "demo/demo.chrom.sizes"}
    assert data["locus"] == "chr1:1-600"
    assert [(t["name"], t["open"]) for t in data["tracks"]] == [
        ("sensitivity_constraint", True), ("toy_A", False), ("toy_gc6", False)]
    gc6 = data["tracks"][-1]["igv"]
    assert gc6 == {"type": "wig", "format": "bigwig", "url": "demo/bw/toy_gc6.bw", "name": "Toy GC 6-mer",
                   "color": "rgb(90,60,140)", "height": 48, "autoscale": False, "min": 0.0, "max": 1.0}
    for name in ("sensitivity_constraint", "toy_A", "toy_gc6"):
        assert f'data-track="{name}"' in page and f'href="demo/{name}.html"' in page


def test_the_viewer_page_of_a_hosted_genome_uses_igvs_genome(tmp_path: Path) -> None:
    make_hub(tmp_path, {"toy": ["A"]}, genome="hg38", assembly=False)
    page = (tmp_path / "index.html").read_text()
    data = json.loads(page.split('<script type="application/json" id="hub">')[1].split("</script>")[0])
    assert data["genome"] == "hg38" and data["reference"] is None
