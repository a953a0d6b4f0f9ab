"""Shared test set-up: every test runs with its own nttracks cache, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs every property test on the same examples (a red CI is then reproducible); locally each run
# draws new ones, which is how the fuzz tests keep finding bugs.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """NTTRACKS_CACHE points at a session temporary directory (the demo genome is generated there once)."""
    previous = os.environ.get("NTTRACKS_CACHE")
    os.environ["NTTRACKS_CACHE"] = str(tmp_path_factory.mktemp("nttracks-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the network
    yield
    if previous is None:
        os.environ.pop("NTTRACKS_CACHE", None)
    else:
        os.environ["NTTRACKS_CACHE"] = previous


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` with its bytes (None when ``path`` does not exist)."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
