"""nttracks: genome-browser track hubs from Nucleotide Transformer models.

The entry points are re-exported here and imported on first use, so ``import nttracks`` stays light
(bigWig writer processes import the package without paying for torch).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "config",
    "load_config": "config",
    "parse_config": "config",
    "Genome": "genome",
    "open_genome": "registry",
    "open_fasta": "genome",
    "TilePlan": "tiling",
    "plan_tiles": "tiling",
    "Shard": "tiling",
    "cut_shards": "tiling",
    "Family": "families",
    "register_family": "families",
    "LocalExecutor": "executors",
    "RayExecutor": "ray_executor",
    "RunRequest": "planning",
    "plan_run": "planning",
    "run_genome": "runs",
    "write_hub": "hubs",
    "validate_hub": "hubs",
    "NttracksError": "errors",
    "run_variants": "variants",
    "run_ism": "ism",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nttracks' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
