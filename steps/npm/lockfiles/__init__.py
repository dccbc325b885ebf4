"""Lockfile parsers: npm (v1-v3), yarn (v1 and berry), pnpm (v5-v9) and bun.lock.

`parse_lockfile(path, data, manifest)` dispatches on the file name (and, for yarn.lock, on the
content) and returns a `LockGraph`. Anything it cannot read raises `LockfileError`, never another
exception type.
"""

from __future__ import annotations

import gc
from pathlib import Path

from steps.npm.lockfiles import bun, npm, pnpm, yarn
from steps.npm.lockfiles.graph import LockfileError, LockGraph, LockNode, decode_text, load_json

__all__ = [
    "BUN_CONVERT",
    "LOCKFILE_NAMES",
    "LockGraph",
    "LockNode",
    "LockfileError",
    "is_lockfile",
    "load_npm_lockfile",
    "parse_lockfile",
]
NPM_NAMES = ("package-lock.json", "npm-shrinkwrap.json", ".package-lock.json")

# `.package-lock.json` counts only directly inside a node_modules dir (npm's hidden lockfile).
LOCKFILE_NAMES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "bun.lockb",
        ".package-lock.json",
    }
)
BUN_CONVERT = "bun install --save-text-lockfile --frozen-lockfile --lockfile-only"
_BUN_BINARY = (
    "bun.lockb is bun's binary lockfile and cannot be read; run "
    f"`{BUN_CONVERT}` to write a text bun.lock beside it, then scan again"
)


def is_lockfile(path: Path) -> bool:
    """Whether `path` has a lockfile name this module reads (or reports, for bun.lockb)."""
    if path.name == ".package-lock.json":
        return path.parent.name == "node_modules"
    return path.name in LOCKFILE_NAMES


def _project_dir(path: Path) -> Path:
    return path.parent.parent if path.parent.name == "node_modules" else path.parent


def parse_lockfile(path: Path, data: bytes, manifest: dict | None = None) -> LockGraph:
    """Parse the bytes of the lockfile at `path`.

    `manifest` is the parsed package.json beside it, when available: yarn v1 needs it to know the
    direct dependencies; elsewhere it is a fallback for the roots. Raises LockfileError.
    """
    name = Path(path).name
    if name not in LOCKFILE_NAMES or (
        name == ".package-lock.json" and Path(path).parent.name != "node_modules"
    ):
        raise LockfileError(f"{name} is not a lockfile name this scanner knows")
    if name == "bun.lockb" or (name == "bun.lock" and data.startswith(b"#!/usr/bin/env bun")):
        raise LockfileError(_BUN_BINARY)
    if not isinstance(manifest, dict):
        manifest = None
    project = _project_dir(Path(path)).name or "(root)"
    # Parsing builds many objects and frees none: the cyclic GC would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        text = decode_text(data, name)
        if name in ("package-lock.json", "npm-shrinkwrap.json", ".package-lock.json"):
            label = {
                "package-lock.json": "package-lock",
                "npm-shrinkwrap.json": "npm-shrinkwrap",
                ".package-lock.json": "npm hidden lockfile",
            }[name]
            return npm.parse(
                text,
                label=label,
                project=project,
                manifest=manifest,
                hidden=name == ".package-lock.json",
            )
        if name == "yarn.lock":
            return yarn.parse(text, project=project, manifest=manifest)
        if name == "pnpm-lock.yaml":
            return pnpm.parse(text, project=project, manifest=manifest)
        return bun.parse(text, project=project, manifest=manifest)
    except LockfileError:
        raise
    except RecursionError:
        raise LockfileError(f"{name} is nested too deeply to read") from None
    except MemoryError:
        raise LockfileError(f"{name} is too large to read in memory") from None
    except Exception as exc:  # a safety net: the contract is LockfileError only
        raise LockfileError(f"{name} could not be parsed ({type(exc).__name__}: {exc})") from exc
    finally:
        if gc_was_enabled:
            gc.enable()


def load_npm_lockfile(path: Path, data: bytes) -> dict:
    """The JSON document of an npm lockfile, checked to be an object; no graph is built.

    Raises LockfileError like `parse_lockfile`.
    """
    name = Path(path).name
    try:
        doc = load_json(decode_text(data, name), name)
    except LockfileError:
        raise
    except Exception as exc:  # the same safety net as parse_lockfile
        raise LockfileError(f"{name} could not be parsed ({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict):
        raise LockfileError(f"{name} is not a JSON object")
    return doc
