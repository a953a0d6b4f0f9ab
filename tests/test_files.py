"""Atomic writes: all or nothing, and the mode any file of this user would get (not mkstemp's 0600)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import UMASK_MODES, mode, umask

from nttracks.files import atomic_writer


@pytest.mark.parametrize(("mask", "want"), UMASK_MODES)
def test_mode_follows_umask(tmp_path: Path, mask: int, want: int) -> None:
    path = tmp_path / "x.bin"
    with umask(mask):
        with atomic_writer(path) as out:
            out.write(b"abcd")
            out.seek(1)
            out.write(b"B")
    assert path.read_bytes() == b"aBcd"
    assert mode(path) == want
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_replaces_a_file_and_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"old")
    path.chmod(0o600)
    with umask(0o022), atomic_writer(path) as out:
        out.write(b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o644


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_writer(path) as out:
        out.write(b"half")
        assert [p.name for p in tmp_path.glob(".x.txt.*.part")]  # written beside, under a hidden name
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
