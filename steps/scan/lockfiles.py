"""Lockfiles: a resolved bad version is `compromised`, with its line and dependency path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import (
    BUN_CONVERT,
    NPM_NAMES,
    LockfileError,
    load_npm_lockfile,
    parse_lockfile,
)
from steps.npm.lockfiles.quick import npm_resolutions


def _manifest_beside(path: Path) -> dict | None:
    candidate = (
        path.parent.parent / "package.json"
        if path.parent.name == "node_modules"
        else path.parent / "package.json"
    )
    try:
        data = json.loads(candidate.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _needs_full_parse(path: Path, data: bytes, badset: BadSet) -> bool:
    """Whether the lockfile may hold a bad resolution; an unreadable one raises LockfileError.

    The full parse (graph, dependency paths, line numbers) costs ten times a plain decode, and
    almost no lockfile needs it: npm's are decoded and their entries compared, the rest are parsed
    only when their bytes hold a bad version or an any-version name.
    """
    if path.name in NPM_NAMES:
        if not badset.could_resolve(data) and path.name == ".package-lock.json":
            return False  # npm writes that one itself: nothing to validate
        doc = load_npm_lockfile(path, data)
        return any(n in badset.names and badset.is_bad(n, v) for n, v in npm_resolutions(doc))
    if badset.could_resolve(data):
        return True
    parse_lockfile(path, data)  # yarn, pnpm and bun files are cheap: validate them in full
    return False


def scan_lockfile(path: Path, data: bytes, badset: BadSet) -> Iterator[Finding]:
    """Findings for one lockfile (its bytes already read)."""
    if path.name == "bun.lockb":
        if badset.mentions(data):
            yield Finding(
                kind="lockfile",
                severity="unknown",
                path=str(path),
                message=f"bun.lockb is binary and cannot be read; run `{BUN_CONVERT}` "
                "to write a text bun.lock, then scan again",
            )
        return
    try:
        if not _needs_full_parse(path, data, badset):
            return
        graph = parse_lockfile(path, data, _manifest_beside(path))
    except LockfileError as exc:
        yield Finding(
            kind="lockfile",
            severity="unknown",
            path=str(path),
            line=exc.line,
            message=f"cannot parse {path.name}: {exc.reason}",
        )
        return
    for node in graph.nodes.values():
        if node.name not in badset.names or not badset.is_bad(node.name, node.version):
            continue
        via = graph.via(node.key)
        alias = f" (installed as '{node.alias}')" if node.alias else ""
        how = (
            "as a direct dependency of " + via[0]
            if via and len(via) == 1
            else "via " + " > ".join(via)
            if via
            else "(no project depends on it any more)"
        )
        yield Finding(
            kind="lockfile",
            severity="compromised",
            path=str(path),
            line=node.line,
            package=node.name,
            version=node.version or None,
            via=via,
            message=f"{graph.format}: {node.name}@{node.version or '?'}{alias} resolved {how}",
        )
