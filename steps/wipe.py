"""`wipe_node_modules`: remove every installed tree under the target so a clean reinstall follows.

Removed: every `node_modules` (root, workspaces, nested; pnpm's `.pnpm` goes with its
`node_modules`), and yarn berry's Plug'n'Play install state: `.pnp.cjs`, `.pnp.js`,
`.pnp.data.json`, `.pnp.loader.mjs` and `.yarn/unplugged`. Kept: `.yarn/cache` (the project's
offline mirror, often committed), `.yarn/releases`, lockfiles and manifests.

The walk never follows a symlink and never descends into a `node_modules` (it goes whole), `.git`,
or the tool and cache folders a home holds (`.npm`, `.vscode`, `.nvm`, ...: see
`steps.scan.walk.HOST_DIRS`), so a target that happens to be a home directory does not lose its
editor extensions or global installs. A `node_modules` that is itself a symlink is unlinked; what it
points to survives. Removal goes through `Effects.remove_tree`, confined to the target.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from runbook.effects import tree_size
from runbook.models import TargetRelativePath
from runbook.step import (
    Action,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from runbook.units import human_size
from steps.scan.walk import HOST_DIRS

PNP_FILES = frozenset({".pnp.cjs", ".pnp.js", ".pnp.data.json", ".pnp.loader.mjs"})
NOT_DESCENDED = frozenset({".git", ".hg", ".svn"}) | HOST_DIRS


class WipeParams(StepParams):
    paths: list[TargetRelativePath] = Field(
        default_factory=lambda: ["."],
        description="Directories to clear, relative to the target (never outside it).",
    )


def find_installed(start: Path) -> tuple[list[Path], list[Path]]:
    """(what to remove, host folders not entered) under `start`, in walk order.

    One `scandir` per directory; the type test of an entry needs no extra system call.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    stack = [os.fspath(start)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = not is_dir and entry.is_symlink()
            except OSError:
                continue
            installed = name == "node_modules" and (is_dir or is_link)
            if installed or (name in PNP_FILES and not is_dir):
                found.append(Path(entry.path))
            elif name == ".yarn" and is_dir:
                unplugged = os.path.join(entry.path, "unplugged")
                if os.path.lexists(unplugged):
                    found.append(Path(unplugged))
            elif is_dir:
                if name in NOT_DESCENDED:
                    if name in HOST_DIRS:
                        skipped.append(Path(entry.path))
                else:
                    subdirs.append(entry.path)
        stack.extend(reversed(subdirs))
    return found, skipped


class WipeNodeModules(StepKind):
    """Removes installed trees (node_modules, PnP state) under the target; sizes in the plan."""

    name = "wipe_node_modules"
    Params = WipeParams
    summary = "Remove every node_modules, .pnp.cjs and .yarn/unplugged under the target."
    params: WipeParams

    def _starts(self, ctx: StepContext) -> list[Path]:
        target = Path(os.path.realpath(ctx.target))
        starts = []
        for relative in self.params.paths:
            if Path(relative).is_absolute():
                raise StepError(f"wipe_node_modules: {relative} must be relative to the target")
            path = Path(os.path.realpath(target / relative))
            if path != target and target not in path.parents:
                raise StepError(f"wipe_node_modules: {relative} is outside the target {target}")
            if not path.is_dir():
                raise StepError(f"wipe_node_modules: {relative} is not a directory under {target}")
            if path not in starts:
                starts.append(path)
        return starts

    def _observe(self, ctx: StepContext) -> tuple[list[dict], list[Path]]:
        items: list[dict] = []
        skipped: list[Path] = []
        seen: set[Path] = set()
        for start in self._starts(ctx):
            found, passed = find_installed(start)
            skipped += passed
            for path in found:
                if path in seen or any(p in seen for p in path.parents):
                    continue  # a start inside another start's node_modules
                seen.add(path)
                size, files = tree_size(path)
                kind = "symlink" if path.is_symlink() else "dir" if path.is_dir() else "file"
                items.append({"path": str(path), "type": kind, "bytes": size, "files": files})
        return items, skipped

    def plan(self, ctx: StepContext) -> Plan:
        items, skipped = self._observe(ctx)
        target = Path(os.path.realpath(ctx.target))
        actions = []
        for item in items:
            relative = os.path.relpath(item["path"], target)
            what = {"symlink": " (a symlink: only the link goes)", "file": ""}.get(item["type"], "")
            actions.append(
                Action(
                    kind="delete",
                    destructive=True,
                    summary=f"remove {relative}{what}: {human_size(item['bytes'])}, "
                    f"{item['files']} entries",
                    detail=item,
                )
            )
        total = sum(item["bytes"] for item in items)
        if items:
            notes = [f"{len(items)} path(s) to remove, {human_size(total)} to free ({total} bytes)"]
        else:
            notes = ["nothing to remove: no node_modules or Plug'n'Play state under the target"]
        if skipped:
            shown = ", ".join(os.path.relpath(p, target) for p in skipped[:5])
            notes.append(f"not entered (tool and cache folders): {shown}")
        fingerprint = fingerprint_of(self.name, [(i["path"], i["type"], i["bytes"]) for i in items])
        return Plan(actions=actions, fingerprint=fingerprint, notes=notes)

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        freed = 0
        removed = []
        for action in plan.actions:
            path = Path(action.detail["path"])
            freed += ctx.effects.remove_tree(path, reason="wipe_node_modules")
            removed.append(str(path))
        verb = "would free" if ctx.dry_run else "freed"
        summary = f"{verb} {human_size(freed)} ({len(removed)} path(s) removed)"
        if ctx.dry_run:
            summary = (
                f"{verb} {human_size(freed)} ({len(removed)} path(s); dry run: nothing removed)"
            )
        return StepResult("succeeded", summary, data={"bytes_freed": freed, "paths": removed})
