"""nttracks: genome-browser track hubs from Nucleotide Transformer models."""

from __future__ import annotations

__version__ = "0.1.0"
