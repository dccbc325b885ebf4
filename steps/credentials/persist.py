"""Rewrite a secret in place: the same file, the same line, only the value's characters change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ValueMoved(Exception):
    """The line no longer holds the value it was expected to hold (the file changed)."""


@dataclass(frozen=True)
class Replacement:
    """Replace `old` by `new` on 1-based `line` of a file (exactly one occurrence there).
    Both are secrets: neither appears in `repr`."""

    line: int
    old: str = field(repr=False)
    new: str = field(repr=False)


def replace_values(text: str, replacements: Sequence[Replacement], *, where: str = "") -> str:
    """`text` with each replacement applied on its line; every other byte is kept (line endings,
    quotes, comments, a missing final newline). Raises ValueMoved, naming the line, when the old
    value is not on it exactly once. Messages never carry the values."""
    lines = text.splitlines(keepends=True)
    for rep in replacements:
        index = rep.line - 1
        if not 0 <= index < len(lines) or lines[index].count(rep.old) != 1:
            raise ValueMoved(
                f"{where or 'file'}:{rep.line}: the value to replace is no longer on this line; "
                "the file changed since it was read"
            )
        lines[index] = lines[index].replace(rep.old, rep.new, 1)
    return "".join(lines)


def read_text(path: Path) -> str:
    """Read a credential file exactly as stored (no newline translation)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()
