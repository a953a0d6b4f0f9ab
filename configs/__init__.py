"""Ready configs, one per registered genome (package data)."""
