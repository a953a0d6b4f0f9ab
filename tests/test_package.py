"""The package's shape: the data layer imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

DATA_LAYER = ["bases", "genome", "tiling", "stitch", "regions", "demo"]


@pytest.mark.parametrize("module", DATA_LAYER)
def test_data_layer_imports_no_torch(module: str) -> None:
    # A fresh interpreter: this test process has imported torch long ago.
    code = f"import sys, nttracks.{module}; assert 'torch' not in sys.modules, 'nttracks.{module} imports torch'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_genome_tiling_stitch_together_import_no_torch() -> None:
    code = "import sys, nttracks.genome, nttracks.tiling, nttracks.stitch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
