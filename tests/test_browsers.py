"""Real genome browsers draw the demo tracks: igv.js in headless Chromium, opened on the viewer page
``nttracks serve`` serves, and ``@jbrowse/img`` (jb2export) rendering the generated JBrowse config.

The hub is the toy demo (tracks known exactly); the view spans an assembly gap of the demo genome, so a
picture must show signal on both sides and nothing over the gap, whose place is read from the bigWig
itself (bases without a value). Chromium comes from apt and igv.js and @jbrowse/img from npm
(``tests/browsers/package.json``), all installed by ``bash scripts/test``; without them these tests
fail under CI and skip elsewhere. Nothing is fetched from the internet: the viewer page uses the local
igv.js copy (``nttracks hub build --igv-js``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from conftest import serving
from matplotlib.image import imread

from nttracks.hubbuild import rebuild_hub
from nttracks.jbrowse import JBROWSE_CONFIG

NODE_MODULES = Path(__file__).parent / "browsers" / "node_modules"
IGV_JS = NODE_MODULES / "igv" / "dist" / "igv.min.js"
JB2EXPORT = NODE_MODULES / ".bin" / "jb2export"
TRACK = "toy_gc6"
COLOR = (90, 60, 140)  # toy_gc6's colour in the catalog
CHROM, START, END = "chr1", 8_000, 12_500  # 0-based, end exclusive; the demo has a gap inside


def need(path_or_name: str | Path, what: str) -> str:
    found = shutil.which(str(path_or_name)) if isinstance(path_or_name, str) else (
        str(path_or_name) if Path(path_or_name).exists() else None)
    if found is None:
        reason = f"{what} is not installed; run 'bash scripts/test', which installs it"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must run these tests, never skip them
        pytest.skip(reason)
    return found


def coverage(hub: Path) -> np.ndarray:
    """(END - START,) True where the track has a value over the view."""
    bw = pyBigWig.open(str(hub / "demo/bw" / f"{TRACK}.bw"))
    try:
        return np.isfinite(np.array(bw.values(CHROM, START, END), dtype=np.float64))
    finally:
        bw.close()


def gap_of(hub: Path) -> tuple[int, int]:
    """The one run of unscored bases in the view, as offsets into it; checks the view is as planned."""
    covered = coverage(hub)
    missing = np.flatnonzero(~covered)
    assert missing.size > 500 and missing[-1] - missing[0] + 1 == missing.size, "expected one gap in the view"
    assert missing[0] > 500 and missing[-1] < covered.size - 500, "expected signal on both sides of the gap"
    return int(missing[0]), int(missing[-1]) + 1


def columns_drawn(picture: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """(width,) True for each pixel column holding the track's colour."""
    rgb = np.round(picture[..., :3] * 255 if picture.dtype != np.uint8 else picture[..., :3]).astype(int)
    return (np.abs(rgb - np.array(color)).sum(axis=-1) <= 6).any(axis=0)


def assert_drawn_with_gap(drawn: np.ndarray, gap: tuple[int, int], span: int, what: str) -> None:
    """``drawn`` columns cover the view where there is signal and nothing over the gap.

    The track's pixel extent is where its colour first and last appears (signal reaches both view ends);
    the gap's columns follow from its offsets in the view."""
    cols = np.flatnonzero(drawn)
    assert cols.size > 0, f"{what}: the track's colour appears nowhere: nothing was drawn"
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    width = x1 - x0
    assert width > 300, f"{what}: the track is drawn over only {width} px"
    g0 = x0 + gap[0] / span * width
    g1 = x0 + gap[1] / span * width
    inner_gap = drawn[int(g0) + 3:int(g1) - 3]
    assert not inner_gap.any(), f"{what}: drawn over the assembly gap (px {g0:.0f}-{g1:.0f})"
    left, right = drawn[x0:int(g0) - 3], drawn[int(g1) + 3:x1]
    for name, part in (("left of the gap", left), ("right of the gap", right)):
        assert part.mean() > 0.9, f"{what}: only {part.mean():.0%} of the columns {name} are drawn"


@pytest.fixture(scope="module")
def viewer_hub(toy_demo_hub: Path) -> Iterator[Path]:
    """A copy of the toy demo hub whose viewer page loads the local igv.js (no internet in tests)."""
    igv_js = need(IGV_JS, "igv.js (npm package igv)")
    root = Path(tempfile.mkdtemp(prefix="nttracks-viewer-"))
    try:
        hub = root / "hub"
        shutil.copytree(toy_demo_hub, hub)
        rebuild_hub(hub, igv_js=igv_js)
        yield hub
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_igv_js_in_headless_chromium_draws_the_demo_tracks_and_leaves_the_gap_blank(
        viewer_hub: Path, tmp_path: Path) -> None:
    chromium = need("chromium", "chromium (Debian package)")
    page = (viewer_hub / "index.html").read_text()
    assert 'src="igv/igv.min.js"' in page and "cdn.jsdelivr" not in page
    gap = gap_of(viewer_hub)
    shot = tmp_path / "igv.png"
    with serving(viewer_hub) as url:
        locus = f"{CHROM}:{START + 1}-{END}"
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,900",
             "--virtual-time-budget=20000", f"--screenshot={shot}",
             f"{url}index.html?locus={locus}&tracks={TRACK}"],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    picture = imread(shot)
    assert picture.shape[1] == 1200
    assert_drawn_with_gap(columns_drawn(picture, COLOR), gap, END - START, "igv.js")


def jbrowse_local_config(hub: Path, out: Path, tracks: list[str]) -> tuple[Path, Path]:
    """The generated config as jb2export reads files: each relative ``uri`` as the same ``localPath``
    (jb2export resolves it against the config file, as a web JBrowse resolves the uri against the config's
    URL), written beside the original; and a session showing ``tracks`` in the config's own session form."""
    config = json.loads((hub / JBROWSE_CONFIG).read_text())

    def local(node: object) -> object:
        if isinstance(node, dict):
            if node.get("locationType") == "UriLocation" and not re.match(r"^https?://", node["uri"]):
                return {"localPath": node["uri"], "locationType": "LocalPathLocation"}
            return {k: local(v) for k, v in node.items()}
        if isinstance(node, list):
            return [local(v) for v in node]
        return node

    session = config.pop("defaultSession")
    view = session["views"][0]
    by_id = {t["trackId"]: t for t in config["tracks"]}
    view["tracks"] = [{"type": by_id[t]["type"], "configuration": t,
                       "displays": [{"type": "LinearWiggleDisplay", "configuration": f"{t}-LinearWiggleDisplay"}]}
                      for t in tracks]
    conf_path = hub / "jbrowse" / "local-config.json"
    conf_path.write_text(json.dumps(local(config)))
    session_path = out / "session.json"
    session_path.write_text(json.dumps(session))
    return conf_path, session_path


def test_jbrowse_img_renders_the_demo_tracks_from_the_generated_config(toy_demo_hub: Path, tmp_path: Path) -> None:
    jb2export = need(JB2EXPORT, "@jbrowse/img (npm)")
    hub = tmp_path / "hub"
    shutil.copytree(toy_demo_hub, hub)
    gap = gap_of(hub)
    config = json.loads((hub / JBROWSE_CONFIG).read_text())
    assert config["defaultSession"]["views"][0]["tracks"][0]["configuration"].startswith("toy_")
    conf, session = jbrowse_local_config(hub, tmp_path, [TRACK])
    svg = tmp_path / "out.svg"
    done = subprocess.run([jb2export, "--config", str(conf), "--session", str(session), "--loc",
                           f"{CHROM}:{START + 1}-{END}", "--noRasterize", "--width", "1000", "--out", str(svg)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    text = svg.read_text()
    errors = re.findall(r"<text[^>]*>(Error[^<]*)<", text)
    assert not errors, errors
    # --noRasterize: one <rect> per drawn bin, in the track's colour; zero bins have height 0
    width = 1000
    drawn = np.zeros(width + 1, dtype=bool)
    fill = "rgb({}, {}, {})".format(*COLOR)
    rects = re.findall(r'<rect fill="([^"]+)"[^>]* x="([-0-9.e]+)"[^>]* width="([-0-9.e]+)" height="([-0-9.e]+)"',
                       text)
    assert rects, "jb2export drew no bins"
    for color, x, w, h in rects:
        if float(h) > 0 and color.replace(" ", "") == fill.replace(" ", ""):
            a, b = float(x), float(x) + max(float(w), 1.0)
            drawn[max(int(a), 0):min(int(np.ceil(b)), width)] = True
    assert_drawn_with_gap(drawn[:width], gap, END - START, "@jbrowse/img")
