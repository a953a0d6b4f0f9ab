"""Where nttracks keeps things: the package's data and the user's cache directory.

Package data: the track catalog (``trackhubs/``), the ready configs (``configs/``) and shipped
tables (``nttracks/data``). In the repository these are top-level folders; an install maps them into
the package (``nttracks.trackhubs``, ``nttracks.configs``), so both a wheel and a source checkout find them.

The cache (:func:`cache_dir`) holds downloaded and generated genomes, and FASTA indexes that cannot
sit beside their FASTA.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

CACHE_ENV = "NTTRACKS_CACHE"
DATA_ROOT_ENV = "NTTRACKS_DATA_ROOT"


def resource_dir(name: str) -> Path:
    """Directory of package data ``name`` ("trackhubs", "configs" or "data").

    ``$NTTRACKS_DATA_ROOT`` when set names a source checkout whose folders win (``trackhubs/``,
    ``configs/``, ``nttracks/data``): for working on one checkout's catalog and configs while the
    installed package is another checkout's.
    """
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        return Path(root).expanduser() / ("nttracks" if name == "data" else "") / name
    try:
        return Path(str(importlib.resources.files(f"nttracks.{name}")))
    except ModuleNotFoundError:
        # Running from a source checkout without an install: the folder sits beside the package.
        return Path(__file__).resolve().parent.parent / name


def cache_dir() -> Path:
    """Where genomes (and FASTA indexes that cannot sit beside their FASTA) are kept.

    ``$NTTRACKS_CACHE`` when set, else the user's cache directory (e.g. ``~/.cache/nttracks``).
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nttracks", appauthor=False))
