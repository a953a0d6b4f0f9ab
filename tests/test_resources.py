"""Package data: found in the installed package, or in the checkout $NTTRACKS_DATA_ROOT names."""

from __future__ import annotations

from pathlib import Path

import pytest

from nttracks.resources import DATA_ROOT_ENV, resource_dir


def test_data_root_names_a_checkout_whose_folders_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert resource_dir("trackhubs") == tmp_path / "trackhubs"
    assert resource_dir("configs") == tmp_path / "configs"
    assert resource_dir("data") == tmp_path / "nttracks" / "data"  # the shipped tables live in the package


def test_without_data_root_the_package_data_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    for name in ("trackhubs", "configs", "data"):
        assert resource_dir(name).is_dir(), name
    assert (resource_dir("trackhubs") / "catalog.yaml").is_file()
    assert (resource_dir("data") / "hg38.chrom.sizes").is_file()
