"""Where the package's data lives: the track catalog (``trackhubs/``), the ready configs
(``configs/``) and shipped tables (``nttracks/data``).

In the repository these are top-level folders; an install maps them into the package
(``nttracks.trackhubs``, ``nttracks.configs``), so both a wheel and a source checkout find them.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def resource_dir(name: str) -> Path:
    """Directory of package data ``name`` ("trackhubs", "configs" or "data")."""
    try:
        return Path(str(importlib.resources.files(f"nttracks.{name}")))
    except ModuleNotFoundError:
        # Running from a source checkout without an install: the folder sits beside the package.
        return Path(__file__).resolve().parent.parent / name
