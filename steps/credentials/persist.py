"""Rewrite a secret in place: the same file, the same line, only the value's characters change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runbook.safeio import MiB, read_regular

# a file rewritten in place is held in memory whole: bigger ones are rotated by hand
REWRITE_LIMIT = 64 * MiB


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


class NotText(ValueError):
    """A credential file holds bytes that are not UTF-8 text: it is never rewritten, since
    `Effects.write_secret_file` writes text and those bytes would not survive."""


def read_text(path: Path) -> str:
    """Read a credential file exactly as stored (no newline translation): a regular file (a
    symlink is followed) of at most `REWRITE_LIMIT` bytes, all of it UTF-8 text. Raises OSError
    (`ReadRefused` for a FIFO, a device, a file too big) or NotText, naming the first bad line."""
    data = read_regular(path, limit=REWRITE_LIMIT, follow_symlinks=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotText(f"{path}:{line}: holds bytes that are not UTF-8 text") from None
