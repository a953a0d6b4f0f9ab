"""The hub's viewer page, ``index.html``: the tracks listed by family, opened in igv.js.

The page loads igv.js from its public URL (``IGV_JS_URL``), or from a copy inside the hub when one is
configured (``nttracks hub build --igv-js FILE``: for readers without internet, and for the tests). It
takes the genome from the hub (the .2bit and chrom sizes of an assembly hub; igv.js's own hosted
genome, e.g. hg38, otherwise) and opens the tracks ticked in the list: by default the first family's.

Query parameters choose what opens, so a link can show a view: ``?locus=chr1:1-20000`` and
``?tracks=toy_gc6,toy_A`` (track names; ``all`` for every track).
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import FamilyStyle, TrackStyle
    from .hubs import BigWigTrack, HubSpec

VIEWER_FILE = "index.html"
IGV_VERSION = "3.8.10"
IGV_JS_URL = f"https://cdn.jsdelivr.net/npm/igv@{IGV_VERSION}/dist/igv.min.js"
LOCAL_IGV_JS = "igv/igv.min.js"  # where `hub build --igv-js` puts a local copy

_SCRIPT = """
(function () {
  const hub = JSON.parse(document.getElementById("hub").textContent);
  const params = new URLSearchParams(window.location.search);
  const byName = new Map(hub.tracks.map(t => [t.name, t]));
  let wanted = hub.tracks.filter(t => t.open).map(t => t.name);
  if (params.has("tracks")) {
    const asked = params.get("tracks");
    wanted = asked === "all" ? hub.tracks.map(t => t.name) : asked.split(",").filter(n => byName.has(n));
  }
  const status = document.getElementById("status");
  const options = {locus: params.get("locus") || hub.locus, tracks: wanted.map(n => byName.get(n).igv),
                   showSampleNames: false};
  if (hub.reference) options.reference = hub.reference; else options.genome = hub.genome;
  if (typeof igv === "undefined") {
    status.textContent = "igv.js did not load from " + hub.igv_js + "; check the network or use a local copy";
    document.body.dataset.igv = "failed";
    return;
  }
  igv.createBrowser(document.getElementById("igv"), options).then(function (browser) {
    for (const box of document.querySelectorAll("input[data-track]")) {
      box.checked = wanted.includes(box.dataset.track);
      box.addEventListener("change", function () {
        const t = byName.get(box.dataset.track);
        if (box.checked) browser.loadTrack(t.igv); else browser.removeTrackByName(t.igv.name);
      });
    }
    status.textContent = "";
    document.body.dataset.igv = "ready";
  }).catch(function (e) {
    status.textContent = "igv.js could not open the hub: " + e;
    document.body.dataset.igv = "failed";
  });
})();
"""


def viewer_page(spec: HubSpec, plan: list[tuple[FamilyStyle, list[tuple[TrackStyle, BigWigTrack]]]], *,
                igv_js: str = IGV_JS_URL) -> str:
    """The HTML of ``index.html``. igv_js: the URL of igv.js (relative to the hub, or absolute)."""
    g = spec.genome
    tracks: list[dict[str, Any]] = []
    items = []
    for i, (fam, members) in enumerate(plan):
        boxes = []
        for style, track in members:
            lo, hi = style.view_limits
            igv: dict[str, Any] = {"type": "wig", "format": "bigwig", "url": track.path, "name": style.short_label,
                                   "color": "rgb({},{},{})".format(*style.color), "height": style.height[1] * 2,
                                   "autoscale": style.autoscale}
            if not style.autoscale:
                igv.update(min=lo, max=hi)
            tracks.append({"name": style.name, "family": fam.family, "open": i == 0, "igv": igv})
            boxes.append(f'<li><label><input type="checkbox" data-track="{html.escape(style.name)}"> '
                         f'{html.escape(style.short_label)}</label> <a href="{html.escape(g)}/{html.escape(style.name)}'
                         f'.html">about</a></li>')
        items.append(f"<li><b>{html.escape(fam.long_label)}</b>\n<ul>\n" + "\n".join(boxes) + "\n</ul></li>")
    data: dict[str, Any] = {"genome": g, "tracks": tracks, "igv_js": igv_js, "locus": None, "reference": None}
    if spec.assembly is not None:
        a = spec.assembly
        data["reference"] = {"id": g, "name": f"{a.organism} ({g})", "twoBitURL": a.twobit,
                             "chromSizesURL": a.chrom_sizes}
        data["locus"] = a.default_pos
    payload = json.dumps(data, indent=1).replace("</", "<\\/")  # never ends the <script> element
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(spec.short_label)}: igv.js viewer</title>\n"
        "<style>body{font-family:sans-serif;margin:1em} #tracks{font-size:90%} #tracks ul{columns:3} "
        "#igv{margin-top:1em} #status{color:#a00}</style>\n"
        f"<script src=\"{html.escape(igv_js)}\"></script>\n</head>\n<body>\n"
        f"<h1>{html.escape(spec.long_label)}</h1>\n"
        f"<p>Genome <b>{html.escape(g)}</b>; created {html.escape(spec.created)} by {html.escape(spec.code_version)}; "
        "<a href=\"hub.html\">about this hub</a>. Tick a track to open it.</p>\n"
        f"<ul id=\"tracks\">\n" + "\n".join(items) + "\n</ul>\n"
        "<p id=\"status\">Loading igv.js&hellip;</p>\n<div id=\"igv\"></div>\n"
        f"<script type=\"application/json\" id=\"hub\">{payload}</script>\n"
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )
