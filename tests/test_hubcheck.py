"""The hubCheck-style validator: a good hub (written by write_hub over tiny pyBigWig files) validates clean;
each hand-broken copy yields the problem hubCheck would report (shared/reference/hubs.md §1), or that a web
server running as another user would meet (a file others cannot read, a directory others cannot enter).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hubs import ALL, make_hub, write_bigwig

from nttracks.catalog import WASHU_FILE
from nttracks.hubcheck import validate_hub


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    make_hub(tmp_path, ALL)
    return tmp_path


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
    "empty type": (in_stanza("toy_A", "type bigWig 0 1", "type "), "Unsupported type '' in track toy_A"),
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
    # files a web server running as another user cannot read (S_IROTH) or reach (S_IXOTH)
    "2bit unreadable by others": (lambda h: (h / "demo/demo.2bit").chmod(0o600),
                                  "demo/demo.2bit: others cannot read this file (mode 0600)"),
    "bigWig unreadable by others": (lambda h: (h / "demo/bw/toy_A.bw").chmod(0o640),
                                    "demo/bw/toy_A.bw: others cannot read this file (mode 0640)"),
    "hub.txt unreadable by others": (lambda h: (h / "hub.txt").chmod(0o600),
                                     "hub.txt: others cannot read this file"),
    "unreferenced file unreadable by others": (lambda h: (h / "notes.txt").touch(0o600),
                                               "notes.txt: others cannot read this file"),
    "directory others cannot enter": (lambda h: (h / "demo/bw").chmod(0o750),
                                      "demo/bw: others cannot enter this directory (mode 0750)"),
    "hub directory others cannot enter": (lambda h: h.chmod(0o700),
                                          ".: others cannot enter this directory (mode 0700)"),
    "dangling symlink": (lambda h: (h / "demo/old.bw").symlink_to("gone.bw"), "demo/old.bw: cannot be read"),
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
    "washu matplot line with a relative url": (
        lambda h: edit(h / WASHU_FILE, '"https://example.org/hubs/demo/demo/bw/enhancer_housekeeping.bw"',
                       '"demo/bw/enhancer_housekeeping.bw"'),
        "].tracks[1]: url 'demo/bw/enhancer_housekeeping.bw' must be an absolute"),
    "washu matplot without lines": (lambda h: edit(h / WASHU_FILE, '"tracks": [', '"trax": ['),
                                    "a matplot needs 'tracks'"),
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


def test_validator_names_the_first_line_of_a_continued_line(hub: Path) -> None:
    path = hub / "demo/trackDb.txt"
    edit_stanza(hub, "toy_A", "visibility full", "visibility bogus")
    edit_stanza(hub, "toy_A", "color 0,150,0", "color 0,150,0\ncolor \\\n  1,1,1")
    edit_stanza(hub, "toy_A", "track toy_A\n", "track \\\n  toy_A\n")
    lines = path.read_text().splitlines()
    track, color = lines.index("track \\") + 1, lines.index("color \\") + 1
    assert validate_hub(hub) == [
        f"demo/trackDb.txt:{color}: setting 'color' appears twice in one stanza",
        f"demo/trackDb.txt:{track}: Unknown visibility bogus"]


def test_validator_reads_continuations_comments_and_single_file_hubs(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
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


def test_control_characters_in_a_path_are_a_problem_not_a_crash(hub: Path) -> None:
    edit(hub / "genomes.txt", "trackDb demo/trackDb.txt", "trackDb demo/track\x00Db.txt")
    problems = validate_hub(hub)
    assert any("contains control characters" in p for p in problems), problems


def test_unreadable_files_are_each_named_with_what_to_do(hub: Path) -> None:
    (hub / "demo/demo.2bit").chmod(0o600)
    (hub / "demo/toy_A.html").chmod(0o640)
    (hub / "demo/bw/deeper").mkdir(mode=0o700)
    (hub / "demo/bw/deeper/x.bw").touch(0o600)
    assert validate_hub(hub) == [
        "demo/demo.2bit: others cannot read this file (mode 0600), so a web server running as another user "
        f"(e.g. www-data) cannot serve it; run 'chmod o+r {hub / 'demo/demo.2bit'}' (or 'chmod -R o+rX' on the "
        "hub) and check the umask of the process that wrote it",
        "demo/toy_A.html: others cannot read this file (mode 0640), so a web server running as another user "
        f"(e.g. www-data) cannot serve it; run 'chmod o+r {hub / 'demo/toy_A.html'}' (or 'chmod -R o+rX' on the "
        "hub) and check the umask of the process that wrote it",
        "demo/bw/deeper: others cannot enter this directory (mode 0700), so a web server running as another "
        f"user (e.g. www-data) cannot reach the files in it; run 'chmod o+x {hub / 'demo/bw/deeper'}' (or "
        "'chmod -R o+rX' on the hub) and check the umask of the process that created it",
        "demo/bw/deeper/x.bw: others cannot read this file (mode 0600), so a web server running as another "
        f"user (e.g. www-data) cannot serve it; run 'chmod o+r {hub / 'demo/bw/deeper/x.bw'}' (or "
        "'chmod -R o+rX' on the hub) and check the umask of the process that wrote it",
    ]
    for path in (hub / "demo/demo.2bit", hub / "demo/toy_A.html", hub / "demo/bw/deeper/x.bw"):
        path.chmod(0o644)
    (hub / "demo/bw/deeper").chmod(0o755)
    assert validate_hub(hub) == []


def test_permissions_are_checked_even_without_a_hub_txt(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "x.bw").touch(0o600)
    assert validate_hub(tmp_path) == [
        f"hub.txt: missing; {tmp_path.resolve()} is not a hub directory",
        f"x.bw: others cannot read this file (mode 0600), so a web server running as another user (e.g. "
        f"www-data) cannot serve it; run 'chmod o+r {tmp_path.resolve() / 'x.bw'}' (or 'chmod -R o+rX' on the "
        "hub) and check the umask of the process that wrote it"]


def test_a_directory_the_validator_cannot_list_is_a_problem(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir, denied = os.scandir, (hub / "demo/bw").resolve()

    def scandir(path):  # as a non-root user meets a directory without 'r' for it (root lists anything)
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems = validate_hub(hub)
    assert "demo/bw: cannot list this directory: Permission denied" in problems, problems
