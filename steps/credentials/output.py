"""How `runbook secrets` and the step show a discovery: a table, JSON, and a one-line summary.
Only `Credential.public()` data is used: redacted values, never the secrets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steps.credentials.model import Discovery

SCHEMA = "runbook.secrets/v1"
AUTOMATIC = ("aws", "npm")


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
    return json.dumps(public(discovery, home), indent=2, ensure_ascii=False) + "\n"


def render_table(discovery: Discovery, home: Path | None = None) -> str:
    """TYPE, WHERE, REDACTED, ROTATION columns, then the summary line."""
    rows = [("TYPE", "WHERE", "REDACTED", "ROTATION")]
    rows += [
        (c.type, c.location.display(home), c.redacted, c.rotation) for c in discovery.credentials
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + f"  {row[3]}"
        for row in rows
    ]
    if len(rows) == 1:
        lines = []
    lines.append(summary(discovery))
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Discovery, Path | None], str]] = {
    "table": render_table,
    "json": render_json,
}
