"""The track catalog: the packaged catalog obeys the naming and label rules, and every broken catalog
fails with a ``ConfigError`` that names the file and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nttracks.catalog import LONG_LABEL_MAX, NAME_RE, SHORT_LABEL_MAX, load_catalog
from nttracks.errors import ConfigError
from nttracks.resources import resource_dir

ELEMENTS = ["protein_coding_gene", "lncRNA", "exon", "intron", "splice_donor", "splice_acceptor", "5UTR",
            "3UTR", "CTCF-bound", "polyA_signal", "enhancer_Tissue_specific", "enhancer_Tissue_invariant",
            "promoter_Tissue_specific", "promoter_Tissue_invariant"]


def test_catalog_covers_the_design_families_and_obeys_the_name_and_label_rules() -> None:
    cat = load_catalog()
    assert [f.family for f in cat.families] == ["elements", "enhancer", "sensitivity", "toy", "attention"]
    assert [t.channel for t in cat.family("elements").tracks] == ELEMENTS
    toy = ["A", "C", "G", "T", "gc6", "gc_context", "token_gc", "window_gc"]
    assert [t.channel for t in cat.family("toy").tracks] == toy
    assert {f.family: f.container for f in cat.families} == {
        "elements": "composite", "enhancer": "multiWig", "sensitivity": "composite", "toy": "composite",
        "attention": "composite"}
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
    # composite subgroups: every track names its member of each; only composites have them
    (lambda r: r["families"]["elements"]["tracks"][2].pop("subgroups"),
     r"families\.elements\.tracks\[2\]\.subgroups: category: None is not one of gene_structure, splicing"),
    (lambda r: r["families"]["elements"]["tracks"][2].update(subgroups={"category": "coding"}),
     r"tracks\[2\]\.subgroups: category: 'coding' is not one of"),
    (lambda r: r["families"]["elements"]["tracks"][2]["subgroups"].update(kind="x"),
     r"tracks\[2\]\.subgroups: subgroup\(s\) kind are not defined by the family"),
    (lambda r: r["families"]["enhancer"].update(subgroups={"k": {"title": "K", "members": {"a": "A"}}}),
     r"families\.enhancer\.subgroups: only a composite's tracks have subgroups"),
    (lambda r: r["families"]["elements"]["subgroups"]["category"].update(members={}),
     r"families\.elements\.subgroups\.category\.members: a subgroup needs at least one member"),
    (lambda r: r["families"]["toy"].update(licence=""), r"families\.toy\.licence"),
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


# ----------------------------------------------------------------------------- settings-dependent channels

HEADS_TEMPLATE = {
    "channel_pattern": "L(?P<layer>[0-9]+)H(?P<head>[0-9]+)", "suffix": "$channel",
    "short_label": "Heads L${layer}H$head", "long_label": "Test heads: layer $layer, head $head ($channel)",
    "color": "10,20,30", "priority": 1,
}


def _with_heads(raw: dict, **template: object) -> None:
    raw["families"]["heads"] = {
        "short_label": "Heads", "long_label": "Test family whose channels depend on its settings",
        "container": "composite", "html": "toy.html",
        "defaults": {"view_limits": [0, 1], "autoscale": True, "quantum": 1000, "height": [32, 16, 8],
                     "visibility": "full"},
        "tracks": [], "track_template": {**HEADS_TEMPLATE, **template},
    }


def test_a_track_template_styles_channels_that_depend_on_settings(tmp_path: Path) -> None:
    cat = load_catalog(_broken_catalog(tmp_path, _with_heads))
    style = cat.track("heads", "L12H3")
    assert style.name == "heads_L12H3" and style.channel == "L12H3"
    assert style.short_label == "Heads L12H3" and style.long_label == "Test heads: layer 12, head 3 (L12H3)"
    assert style.color == (10, 20, 30) and style.quantum == pytest.approx(1e-3) and style.autoscale
    assert cat.family("heads").tracks == ()
    with pytest.raises(ConfigError, match=r"channel 'L1'.*channels matching L\(\?P<layer>"):
        cat.track("heads", "L1")
    with pytest.raises(ConfigError, match=r"channel 'U'.*A, C, G, T, gc6"):  # families without a template
        cat.track("toy", "U")


@pytest.mark.parametrize(("template", "message"), [
    ({"channel_pattern": "L(?P<layer>[0-9]+"}, r"track_template\.channel_pattern.*not a regular expression"),
    ({"short_label": "Heads $author"}, r"track_template\.short_label.*author"),
    ({"color": "blue"}, r"track_template\.color"),
    ({"colour": "1,2,3"}, r"track_template: unknown key\(s\) colour"),
    ({"suffix": "$channel.x"}, r"track_template\.suffix"),
])
def test_track_template_errors_name_the_key(tmp_path: Path, template: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_catalog(_broken_catalog(tmp_path, lambda r: _with_heads(r, **template)))


def test_a_derived_label_too_long_is_an_error_naming_the_template(tmp_path: Path) -> None:
    cat = load_catalog(_broken_catalog(tmp_path, _with_heads))
    with pytest.raises(ConfigError, match=r"families\.heads\.track_template\.short_label.*at most 17"):
        cat.track("heads", "L12345678H90")  # 18 characters
