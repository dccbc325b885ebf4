"""Which package manager a project uses: its `packageManager` field, else its lockfile.

Both files are read through `runbook.safeio`: a FIFO or device named like one never blocks; an
unreadable `package.json` counts as having no `packageManager` field (the step that edits it
reports it), an unreadable `yarn.lock` as yarn 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runbook.safeio import MANIFEST_LIMIT, open_regular, read_regular

Manager = Literal["npm", "yarn1", "berry", "pnpm", "bun"]
LOCKFILES: dict[str, Manager] = {
    "package-lock.json": "npm",
    "npm-shrinkwrap.json": "npm",
    "pnpm-lock.yaml": "pnpm",
    "bun.lock": "bun",
    "bun.lockb": "bun",
}


@dataclass(frozen=True)
class Detected:
    manager: Manager
    version: str | None  # from `packageManager`, when given
    lockfile: Path | None
    reason: str  # how it was decided, for the plan preview


def _yarn_flavour(lockfile: Path) -> Manager:
    try:
        with open_regular(lockfile) as handle:
            head = handle.read(4096)
    except OSError:
        return "yarn1"
    return "berry" if b"__metadata:" in head else "yarn1"


def detect_manager(project: Path) -> Detected:
    """Decide from `packageManager` (e.g. `pnpm@10.5.2`), then the lockfile; npm by default."""
    lockfile = next(
        (project / name for name in (*LOCKFILES, "yarn.lock") if (project / name).is_file()), None
    )
    try:
        manifest = json.loads(read_regular(project / "package.json", limit=MANIFEST_LIMIT))
    except (OSError, ValueError, RecursionError):
        manifest = {}
    field = manifest.get("packageManager") if isinstance(manifest, dict) else None
    if isinstance(field, str) and "@" in field:
        name, _, version = field.partition("@")
        version = version.split("+")[0]
        if name == "yarn":
            manager: Manager = "yarn1" if version.startswith("1.") else "berry"
        elif name in ("npm", "pnpm", "bun"):
            manager = name  # type: ignore[assignment]
        else:
            manager = "npm"
        return Detected(manager, version, lockfile, f"packageManager: {field}")
    if lockfile is None:
        return Detected("npm", None, None, "no lockfile and no packageManager field: npm")
    if lockfile.name == "yarn.lock":
        flavour = _yarn_flavour(lockfile)
        return Detected(flavour, None, lockfile, f"{lockfile.name} ({flavour})")
    return Detected(LOCKFILES[lockfile.name], None, lockfile, lockfile.name)
