"""Shared test set-up: every test runs with its own nttracks cache, never the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


UMASK_MODES = [pytest.param(0o022, 0o644, id="umask022"), pytest.param(0o027, 0o640, id="umask027")]
"""(umask, mode a new file nttracks writes must get): the usual umask, and a stricter one it must respect."""


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block under the process umask ``mask``, restored afterwards."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    """Permission bits of ``path``."""
    return path.stat().st_mode & 0o777


TOY_DEMO = {
    "hub": {"name": "nttracks_demo", "short_label": "nttracks demo",
            "long_label": "nttracks demo hub (synthetic genome, toy model)", "email": "nttracks@example.org"},
    "families": {"toy": {"window": 1200, "overlap": 600, "stitch": "taper", "batch_size": 16}},
}


@pytest.fixture(scope="session")
def toy_demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo genome's hub with the toy family only (A, C, G, T, gc6: known functions of the sequence),
    built once per session by the real run (``run_genome``) in a directory others can enter. Read-only:
    a test that changes a hub copies it first."""
    import tempfile

    from nttracks.config import parse_config
    from nttracks.planning import RunRequest
    from nttracks.runs import run_genome

    served = Path(tempfile.mkdtemp(prefix="nttracks-toy-demo-"))  # not under pytest's 0700 tmp root
    served.chmod(0o755)
    out = served / "hub"
    run_genome(RunRequest(genome="demo", config=parse_config(TOY_DEMO), out=out, device="cpu",
                          base_url="http://127.0.0.1:1/hub/"))
    yield out
    import shutil

    shutil.rmtree(served, ignore_errors=True)


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """``directory`` served by ``nttracks serve``'s server on a free loopback port; yields its URL."""
    import threading

    from nttracks.serve import make_server, server_url

    server = make_server(directory, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
