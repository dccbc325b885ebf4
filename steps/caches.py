"""`clear_caches`: empty the package-manager caches of this machine that may hold a bad tarball.

What exists is cleared, nothing else:

- npm (every cache `npm_config_cache`, the npmrc `cache=` or `~/.npm` names):
  `npm cache clean --force --cache DIR`, run with the step's environment; when npm is missing or
  fails, or `_cacache` is still there afterwards, `_cacache` is removed directly. `_npx` is removed.
- yarn 1 (`YARN_CACHE_FOLDER/v6`, `~/.cache/yarn/v6`, ...): `yarn cache clean --cache-folder DIR`;
  whatever it leaves (or everything, when yarn is missing or is not yarn 1) is removed directly.
- yarn berry's global cache (`~/.yarn/berry/cache`, `$YARN_GLOBAL_FOLDER/cache`): emptied.
- pnpm stores: `pnpm store prune --store-dir DIR`. Prune only drops packages no project on disk
  references, so afterwards the index entries of bad packages that are still there are removed
  (pnpm then fetches those packages again instead of trusting its store); content files still
  hard-linked from some project stay until that project is reinstalled.
- bun (`$BUN_INSTALL_CACHE_DIR`, `~/.bun/install/cache`): emptied.

The caches live outside the target: the step asks `Effects.widened` for exactly the cache folders
its plan lists (journaled), and each folder itself is kept, only its contents go. Sizes before and
after are reported, and afterwards the caches are scanned again: a bad package left means the step
reports findings remaining.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field

from runbook.effects import EffectError, Effects, tree_size
from runbook.step import (
    Action,
    Plan,
    StepContext,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from runbook.units import human_size
from steps.npm.badset import BadSet
from steps.scan.host import (
    BUN_CACHE_DIR,
    _pnpm_stores,
    npm_cache_dirs,
    scan_caches,
    scan_pnpm_store,
)

MANAGERS = ("npm", "yarn1", "berry", "pnpm", "bun")


class CachesParams(StepParams):
    managers: list[Literal["npm", "yarn1", "berry", "pnpm", "bun"]] = Field(
        default_factory=lambda: list(MANAGERS), description="Which caches to clear."
    )


def _unique(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if real not in out:
            out.append(real)
    return out


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))


def _yarn_v1_dirs(home: Path, env: Mapping[str, str]) -> list[Path]:
    dirs = []
    if env.get("YARN_CACHE_FOLDER"):
        dirs.append(Path(env["YARN_CACHE_FOLDER"]) / "v6")
    if env.get("XDG_CACHE_HOME"):
        dirs.append(Path(env["XDG_CACHE_HOME"]) / "yarn" / "v6")
    dirs += [
        home / ".cache/yarn/v6",
        home / "Library/Caches/Yarn/v6",
        home / "AppData/Local/Yarn/Cache/v6",
    ]
    return dirs


def _candidates(home: Path, env: Mapping[str, str], managers: list[str]) -> Iterator[dict]:
    """Every cache folder this machine may have, as (manager, root, path to measure, command)."""
    if "npm" in managers:
        npm = _which("npm", env)
        for cache in _unique(npm_cache_dirs(home, env, live=True)):
            command = [npm, "cache", "clean", "--force", "--cache", str(cache)] if npm else None
            yield {"manager": "npm", "root": cache, "path": cache / "_cacache", "command": command}
            yield {"manager": "npx", "root": cache, "path": cache / "_npx", "command": None}
    if "yarn1" in managers:
        yarn = _which("yarn", env)
        for folder in _unique(_yarn_v1_dirs(home, env)):
            command = [yarn, "cache", "clean", "--cache-folder", str(folder.parent)]
            yield {
                "manager": "yarn1",
                "root": folder,
                "path": folder,
                "command": command if yarn else None,
            }
    if "berry" in managers:
        folders = [home / ".yarn/berry/cache"]
        if env.get("YARN_GLOBAL_FOLDER"):
            folders.insert(0, Path(env["YARN_GLOBAL_FOLDER"]) / "cache")
        for folder in _unique(folders):
            yield {"manager": "berry", "root": folder, "path": folder, "command": None}
    if "pnpm" in managers:
        pnpm = _which("pnpm", env)
        stores = _pnpm_stores(home, env, live=True)
        for key in ("npm_config_store_dir", "NPM_CONFIG_STORE_DIR", "pnpm_config_store_dir"):
            if env.get(key):
                stores.insert(0, Path(env[key]))
        for store in _unique(stores):
            command = [pnpm, "store", "prune", "--store-dir", str(store)] if pnpm else None
            yield {"manager": "pnpm", "root": store, "path": store, "command": command}
    if "bun" in managers:
        folders = [home / ".bun/install/cache"]
        if env.get("BUN_INSTALL_CACHE_DIR"):
            folders.insert(0, Path(env["BUN_INSTALL_CACHE_DIR"]))
        for folder in _unique(folders):
            yield {"manager": "bun", "root": folder, "path": folder, "command": None}


def _looks_like_cache(manager: str, path: Path) -> bool:
    """Whether a folder whose contents would all go holds what that manager writes there.

    A misconfigured variable (`BUN_INSTALL_CACHE_DIR=~/src`, say) must not empty a folder of
    other things: such a folder is left alone and named in the plan.
    """
    if manager in ("npm", "npx"):
        return True  # only `_cacache` and `_npx` themselves go
    try:
        names = os.listdir(path)
    except OSError:
        return False
    if manager == "yarn1":
        return any(n.startswith("npm-") or n == ".tmp" for n in names)
    if manager == "berry":
        return any(n.endswith(".zip") for n in names)
    if manager == "pnpm":
        return any(re.fullmatch(r"v\d+", n) for n in names)
    if manager == "bun":
        return any(BUN_CACHE_DIR.match(n) or n.endswith(".npm") for n in names)
    return False


def _holds(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


class ClearCaches(StepKind):
    """Clears npm, yarn 1, yarn berry, pnpm and bun caches that exist here; sizes before/after."""

    name = "clear_caches"
    Params = CachesParams
    summary = "Clear the npm, yarn, pnpm and bun caches of this machine."
    params: CachesParams

    def _observe(self, ctx: StepContext) -> tuple[list[dict], list[str]]:
        home = Path(os.path.realpath(ctx.home))
        target = Path(os.path.realpath(ctx.target))
        found, notes = [], []
        for item in _candidates(home, ctx.env, self.params.managers):
            path, root = item["path"], item["root"]
            if not path.is_dir() or path.is_symlink():
                continue
            if _holds(root, home) or _holds(root, target):
                notes.append(f"not touched: {root} is or holds HOME or the target")
                continue
            if not _looks_like_cache(item["manager"], path):
                if os.listdir(path):
                    notes.append(
                        f"not touched: {path} does not look like a {item['manager']} cache"
                    )
                continue
            size, files = tree_size(path)
            if item["manager"] != "npm" and files <= 1:
                continue  # an empty folder: nothing to clear
            entry = {**item, "root": str(root), "path": str(path), "bytes": size, "files": files}
            found.append(entry)
        return found, notes

    def plan(self, ctx: StepContext) -> Plan:
        caches, notes = self._observe(ctx)
        actions = []
        for cache in caches:
            size = f"{human_size(cache['bytes'])}, {cache['files']} entries"
            command = " ".join(cache["command"][1:]) if cache["command"] else None
            manager, path = cache["manager"], cache["path"]
            if manager == "npm":
                how = (
                    f"run `npm {command}`, then remove {path} directly if it is still there"
                    if command
                    else f"npm not found: remove {path} directly"
                )
            elif manager == "yarn1":
                how = (
                    f"run `yarn {command}`, then remove what it leaves in {path}"
                    if command
                    else f"yarn not found: remove the contents of {path}"
                )
            elif manager == "pnpm":
                how = (
                    f"run `pnpm {command}` (drops only packages no project references), then "
                    f"remove the index entries of bad packages still in {path}"
                    if command
                    else f"pnpm not found: remove the index entries of bad packages in {path}"
                )
            else:
                how = f"remove the contents of {path}"
            actions.append(
                Action(
                    kind="run" if command else "delete",
                    destructive=True,
                    summary=f"{manager} cache ({size}): {how}",
                    detail=cache,
                )
            )
        badset = BadSet(ctx.playbook.incident)
        bad = list(scan_caches(ctx.home, ctx.env, badset, live=True))
        total = sum(c["bytes"] for c in caches)
        if caches:
            notes.insert(0, f"{len(caches)} cache folder(s), {human_size(total)} in all")
        else:
            notes.insert(0, "no package-manager cache found on this machine")
        notes.append(f"the host scan sees {len(bad)} bad package(s) in caches now")
        if any(c["manager"] == "pnpm" for c in caches):
            notes.append(
                "pnpm: `store prune` only drops unreferenced packages; a bad package still "
                "hard-linked from a project's node_modules keeps its content files until that "
                "project is wiped and reinstalled (its index entry is removed here)"
            )
        fingerprint = fingerprint_of(
            self.name,
            [(c["manager"], c["path"], c["bytes"], c["files"], c["command"]) for c in caches],
        )
        return Plan(actions=actions, fingerprint=fingerprint, notes=notes)

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        if not plan.actions:
            return StepResult("succeeded", "no package-manager cache to clear")
        roots = []
        for action in plan.actions:
            if action.detail["root"] not in roots:
                roots.append(action.detail["root"])
        effects = ctx.effects.widened(
            [Path(r) for r in roots],
            home=ctx.home,
            reason="clear_caches: the package-manager caches its plan lists",
        )
        badset = BadSet(ctx.playbook.incident)
        report = []
        for action in plan.actions:
            detail = action.detail
            how = self._clear(ctx, effects, detail, badset)
            path = Path(detail["path"])
            if ctx.dry_run:
                after = detail["bytes"]
            else:
                after = tree_size(path)[0] if os.path.lexists(path) else 0
            report.append(
                {
                    "manager": detail["manager"],
                    "path": detail["path"],
                    "before": detail["bytes"],
                    "after": after,
                    "how": how,
                }
            )
        before = sum(r["before"] for r in report)
        after = sum(r["after"] for r in report)
        data = {"caches": report, "bytes_before": before, "bytes_after": after}
        if ctx.dry_run:
            summary = f"would clear {len(report)} cache folder(s) holding {human_size(before)}"
            return StepResult("succeeded", summary, data=data)
        remaining = list(scan_caches(ctx.home, ctx.env, badset, live=True))
        data["bad_remaining"] = [f"{f.package}@{f.version} in {f.path}" for f in remaining]
        summary = (
            f"cleared {len(report)} cache folder(s): {human_size(before)} before, "
            f"{human_size(after)} after ({human_size(before - after)} freed)"
        )
        if remaining:
            summary += f"; {len(remaining)} bad package(s) still in caches"
        return StepResult("succeeded", summary, findings_remain=bool(remaining), data=data)

    def _clear(self, ctx: StepContext, effects: Effects, detail: dict, badset: BadSet) -> str:
        manager, path, root = detail["manager"], Path(detail["path"]), Path(detail["root"])
        command = detail["command"]
        reason = f"clear_caches: {manager} cache"
        ran = None
        if command:
            try:
                result = effects.run(command, cwd=root, env=ctx.env, timeout=600, reason=reason)
                ran = "ok" if result.ok else f"exit {result.returncode}"
            except EffectError as exc:
                ran = str(exc)
            if ctx.dry_run:
                return f"would run {' '.join(command[1:3])}"
        if manager == "npm":
            if ran == "ok" and not os.path.lexists(path):
                return "npm cache clean"
            effects.remove_tree(path, reason=reason)
            return f"removed directly ({'npm: ' + ran if ran else 'npm not found'})"
        if manager == "npx":
            effects.remove_tree(path, reason=reason)
            return "removed"
        if manager == "pnpm":
            removed = 0
            for finding in scan_pnpm_store(path, badset):
                effects.remove_tree(Path(finding.path), reason=f"{reason}: {finding.message}")
                removed += 1
            prefix = "pnpm store prune" if ran == "ok" else f"pnpm: {ran or 'not found'}"
            return f"{prefix}; {removed} bad index entr{'y' if removed == 1 else 'ies'} removed"
        # yarn 1 (after its command), berry, bun: whatever is left in the folder goes
        left = 0
        if os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                effects.remove_tree(path / entry, reason=reason)
                left += 1
        if manager == "yarn1":
            prefix = "yarn cache clean" if ran == "ok" else f"yarn: {ran or 'not found'}"
            return f"{prefix}; {left} leftover entr{'y' if left == 1 else 'ies'} removed"
        return f"{left} entr{'y' if left == 1 else 'ies'} removed"
