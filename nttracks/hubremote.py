"""``nttracks hub check DIR|URL``."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .hubcheck import validate_hub


def check_target(target: str) -> tuple[list[str], str]:
    """(problems, what was checked) for a hub directory or URL."""
    path = Path(target)
    if not path.is_dir():
        raise UsageError(f"{target} is not a hub directory")
    return validate_hub(path), str(path)
