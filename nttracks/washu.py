"""The WashU Epigenome Browser datahub of a hub: ``washu.json``, a JSON array of track objects.

One ``bigwig`` track per channel, except that a family whose UCSC container is a multiWig (several
tracks drawn over each other, e.g. the two enhancer activities) is one ``matplot`` holding its bigwigs,
WashU's overlay. URLs are absolute (``base_url``): WashU skips tracks with other URLs when it loads a hub
by ``?hub=`` (``shared/reference/hubs.md`` §2). ``metadata`` fills WashU's facet table: family, element
(the channel), model and the licence of its weights.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import ConfigError

if TYPE_CHECKING:
    from .catalog import FamilyStyle, TrackStyle
    from .hubs import BigWigTrack, HubSpec


def check_base_url(base_url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", base_url) or re.search(r"\s", base_url):
        raise ConfigError(f"base URL {base_url!r} must be an absolute http(s) URL of the hub directory, "
                          "e.g. https://example.org/hub")


def datahub(spec: HubSpec, plan: list[tuple[FamilyStyle, list[tuple[TrackStyle, BigWigTrack]]]],
            base_url: str) -> list[dict[str, Any]]:
    """The datahub's track objects for the hub's families (``plan``, in display order)."""
    check_base_url(base_url)
    runs = {r.family: r for r in spec.families}
    base = base_url.rstrip("/")
    out: list[dict[str, Any]] = []
    for fam, members in plan:
        run = runs[fam.family]
        bigwigs = []
        for style, track in members:
            options: dict[str, Any] = {
                "label": style.short_label,
                "color": "#{:02x}{:02x}{:02x}".format(*style.color),
                "height": style.height[1],
                "yScale": "auto" if style.autoscale else "fixed",
            }
            if not style.autoscale:
                options["yMin"], options["yMax"] = style.view_limits
            bigwigs.append({
                "type": "bigwig",
                "name": style.name,
                "url": f"{base}/{quote(track.path)}",
                "showOnHubLoad": style.visibility != "hide",
                "options": options,
                "metadata": {"Family": fam.short_label, "Element": style.channel, "Model": run.model,
                             "Licence": fam.licence},
                "details": {"description": style.long_label, "genome": spec.genome, "checkpoint":
                            run.checkpoint_digest, "created": spec.created, "code version": spec.code_version},
            })
        if fam.container == "multiWig" and len(bigwigs) > 1:
            lo = min(s.view_limits[0] for s, _ in members)
            hi = max(s.view_limits[1] for s, _ in members)
            out.append({
                "type": "matplot",
                "name": fam.family,
                "showOnHubLoad": fam.visibility != "hide",
                "options": {"label": fam.short_label, "height": max(s.height[1] for s, _ in members) * 2,
                            "yScale": "fixed", "yMin": lo, "yMax": hi},
                "metadata": {"Family": fam.short_label, "Element": ", ".join(s.channel for s, _ in members),
                             "Model": run.model, "Licence": fam.licence},
                "tracks": bigwigs,
            })
        else:
            out += bigwigs
    return out
