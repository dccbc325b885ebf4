"""Numbers for people."""

from __future__ import annotations


def human_size(n: float | None) -> str:
    """A byte count: `512 B`, `25.9 KiB`, `1.2 GiB`; `?` when unknown."""
    if n is None:
        return "?"
    size = float(n)
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"
