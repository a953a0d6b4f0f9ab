"""``nttracks hub build`` and the check before publishing.

A run records its ``HubSpec`` in ``manifest.json`` (key ``hub``). ``rebuild_hub`` rewrites every hub file
(UCSC, WashU, JBrowse, the viewer page) from it, with a new base URL, labels, layout or igv.js copy,
without recomputing a track: the new files are built and checked in a staging directory beside the hub
(the bigWigs hard-linked, not copied), then moved into place with hub.txt last, and the manifest updated.
``check_before_publish`` is the validator gate every ``nttracks genome`` run and every rebuild passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import OutputError, UsageError
from .hubcheck import validate_hub
from .hubdir import MANIFEST, fresh_dir, sibling
from .hubs import AssemblySpec, BigWigTrack, FamilyRun, HubSpec, write_hub
from .igvpage import IGV_JS_URL, LOCAL_IGV_JS


def check_before_publish(directory: Path) -> None:
    """Raise ``OutputError`` listing every problem ``validate_hub`` finds in the hub about to be published."""
    problems = validate_hub(directory)
    if problems:
        raise OutputError(f"the hub in {directory} fails validation, so it was not published:\n  "
                          + "\n  ".join(problems))


def hub_spec_json(spec: HubSpec, base_url: str | None, *, single_file: bool = False,
                  igv_js: str = IGV_JS_URL) -> dict[str, Any]:
    """The manifest's record of how the hub files were written."""
    return {"spec": dataclasses.asdict(spec), "base_url": base_url, "single_file": single_file, "igv_js": igv_js}


def hub_spec_from_manifest(directory: Path) -> tuple[HubSpec, dict[str, Any], dict[str, Any]]:
    """(spec, the manifest's hub record, the manifest) of the hub in ``directory``."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; give a hub directory an nttracks run wrote") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    record = manifest.get("hub") if isinstance(manifest, dict) else None
    if not isinstance(record, dict) or not isinstance(record.get("spec"), dict):
        raise UsageError(f"{path} records no hub (written by an nttracks older than 'hub build'); run "
                         "'nttracks genome' once more to write it")
    s = dict(record["spec"])
    try:
        s["tracks"] = tuple(BigWigTrack(**t) for t in s["tracks"])
        s["families"] = tuple(FamilyRun(**f) for f in s["families"])
        s["assembly"] = AssemblySpec(**s["assembly"]) if s["assembly"] is not None else None
        spec = HubSpec(**s)
    except (KeyError, TypeError) as e:
        raise UsageError(f"{path}: the hub record is malformed ({e}); run 'nttracks genome' again") from e
    return spec, record, manifest


def rebuild_hub(directory: Path, *, base_url: str | None = None, short_label: str | None = None,
                long_label: str | None = None, single_file: bool | None = None,
                igv_js: Path | str | None = None) -> list[Path]:
    """Rewrite the hub files of the hub in ``directory`` from its manifest; returns the files written.

    Options left None keep what the manifest records. ``igv_js``: a local igv.js file (copied into the
    hub as ``igv/igv.min.js`` and used by the viewer page) or a URL. Nothing in the live hub changes
    unless the rebuilt hub passes the validator.
    """
    out = Path(directory)
    spec, record, manifest = hub_spec_from_manifest(out)
    spec = dataclasses.replace(spec, short_label=short_label or spec.short_label,
                               long_label=long_label or spec.long_label)
    base_url = base_url if base_url is not None else record.get("base_url")
    single_file = single_file if single_file is not None else bool(record.get("single_file"))
    igv_source = igv_js if igv_js is not None else record.get("igv_js", IGV_JS_URL)
    stage = fresh_dir(sibling(out, "rebuild"))
    try:
        stage.chmod(0o755)  # as the hub: a web server must be able to enter it (the validator checks)
        _link_tree(out, stage)
        extra: list[Path] = []
        page_igv = str(igv_source)
        if not str(igv_source).startswith(("http://", "https://", LOCAL_IGV_JS)):
            source = Path(igv_source)
            if not source.is_file():
                raise UsageError(f"--igv-js {source} is not a file; give igv.min.js (npm package igv, dist/) "
                                 "or its URL")
            target = stage / LOCAL_IGV_JS
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            shutil.copyfile(source, target)
            target.chmod(0o644)
            extra.append(target)
            page_igv = LOCAL_IGV_JS
        written = write_hub(spec, stage, base_url=base_url, single_file=single_file, igv_js=page_igv)
        record = hub_spec_json(spec, base_url, single_file=single_file, igv_js=page_igv)
        files = sorted({p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()} | {MANIFEST})
        manifest = {**manifest, "hub": record, "files": files}
        _write_json(stage / MANIFEST, manifest)
        check_before_publish(stage)
        moved = [*extra, *written[:-1], stage / MANIFEST, written[-1]]  # hub.txt last
        result = []
        for src in moved:
            dst = out / src.relative_to(stage)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            result.append(dst)
        if single_file:
            for rel in ("genomes.txt", f"{spec.genome}/trackDb.txt"):
                (out / rel).unlink(missing_ok=True)
        return result
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of ``src`` into ``dst`` (a copy where links are not possible)."""
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.unlink(missing_ok=True)  # a hard link to the live manifest: never write through it
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o644)
