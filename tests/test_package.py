"""The package's shape: the data layer imports no torch, and no two modules import each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nttracks

DATA_LAYER = [
    "bases", "files", "genome", "registry", "twobit", "resources", "tiling", "stitch", "regions", "demo",
    "shards", "families", "config", "catalog", "hubdir", "planning",
]
PACKAGE = Path(nttracks.__file__).parent


@pytest.mark.parametrize("module", DATA_LAYER)
def test_data_layer_imports_no_torch(module: str) -> None:
    # A fresh interpreter: this test process has imported torch long ago.
    code = f"import sys, nttracks.{module}; assert 'torch' not in sys.modules, 'nttracks.{module} imports torch'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_genome_tiling_stitch_together_import_no_torch() -> None:
    code = "import sys, nttracks.genome, nttracks.tiling, nttracks.stitch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _module_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that importing ``name`` runs, from its module-level import statements.

    Imports inside functions (lazy) and under ``if TYPE_CHECKING:`` do not run at import time. Importing
    ``a.b.c`` runs ``a.b`` (its package) too, unless ``name`` is inside ``a.b`` already.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def statements(body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            out.append(node)
            if isinstance(node, ast.If | ast.Try):
                nested = [*node.body, *node.orelse]
                if isinstance(node, ast.Try):
                    nested += [s for h in node.handlers for s in h.body] + node.finalbody
                out += statements(nested)
        return out

    targets: set[str] = set()
    for node in statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)  # ``from . import demo``
    runs: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            if module in modules and module != name and not name.startswith(module + "."):
                runs.add(module)
    return runs


def test_module_level_imports_have_no_cycle() -> None:
    modules = _modules()
    graph = {name: _module_level_imports(name, path, modules) for name, path in modules.items()}
    assert graph["nttracks.registry"] >= {"nttracks.genome", "nttracks.resources"}  # the parser sees imports
    assert "nttracks.models" in graph["nttracks.predict"]  # ``from .models.base import`` runs models/__init__
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = [*stack[stack.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
