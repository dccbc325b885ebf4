"""How `runbook secrets` and the step show a discovery: a table, JSON, and a one-line summary.
Only `Credential.public()` data is used: redacted values, never the secrets."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook.termsafe import printable
from steps.credentials.model import Discovery

SCHEMA = "runbook.secrets/v1"
AUTOMATIC = ("aws", "npm")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def counts(discovery: Discovery) -> dict[str, int]:
    """How many credentials per rotation path (aws, npm, manual, rotated), zeros included."""
    found = Counter(c.rotation for c in discovery.credentials)
    return {path: found.get(path, 0) for path in ("aws", "npm", "manual", "rotated")}


def summary(discovery: Discovery) -> str:
    """ "7 credentials: 2 rotate automatically (aws 1, npm 1), 5 by hand"."""
    total = len(discovery.credentials)
    if not total:
        text = "no credentials found"
    else:
        by = counts(discovery)
        automatic = by["aws"] + by["npm"]
        parts = []
        if automatic:
            detail = ", ".join(f"{p} {by[p]}" for p in AUTOMATIC if by[p])
            parts.append(f"{automatic} rotate automatically ({detail})")
        if by["manual"]:
            parts.append(f"{by['manual']} by hand")
        if by["rotated"]:
            parts.append(f"{by['rotated']} already rotated by runbook")
        text = f"{total} credential{'s' if total != 1 else ''}: " + ", ".join(parts)
    if discovery.problems:
        count = len(discovery.problems)
        text += f" ({count} problem{'s' if count != 1 else ''})"
    return text


def public(discovery: Discovery, home: Path | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "credentials": [c.public(home) for c in discovery.credentials],
        "problems": [{"where": where, "message": msg} for where, msg in discovery.problems],
        "counts": counts(discovery),
        "summary": summary(discovery),
    }


def render_json(discovery: Discovery, home: Path | None = None) -> str:
    """JSON, UTF-8 as is; a lone surrogate (a file name that is not UTF-8) is written as its
    `\\udcXX` escape, so the text can always be encoded."""
    text = json.dumps(public(discovery, home), indent=2, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def render_table(discovery: Discovery, home: Path | None = None) -> str:
    """TYPE, WHERE, REDACTED, ROTATION columns, each credential's notes under its row, then
    the summary line. Text from files and paths is shown escaped (`termsafe.printable`)."""
    rows = [["TYPE", "WHERE", "REDACTED", "ROTATION"]]
    notes: list[list[str]] = [[]]
    for c in discovery.credentials:
        cells = (c.type, c.location.display(home), c.redacted, c.rotation)
        rows.append([printable(cell) for cell in cells])
        notes.append([printable(note) for note in c.notes])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row, below in zip(rows, notes, strict=True):
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        lines.append(f"{cells}  {row[3]}")
        lines += [f"    note: the file {note}" for note in below]
    if len(rows) == 1:
        lines = []
    lines.append(summary(discovery))
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Discovery, Path | None], str]] = {
    "table": render_table,
    "json": render_json,
}
