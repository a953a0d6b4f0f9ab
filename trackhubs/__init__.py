"""The track catalog: labels, colours, groups, view limits and description pages (package data)."""
