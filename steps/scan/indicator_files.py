"""The file indicators of an incident beyond a bad version: payload files inside installed
packages (`package_files`), files written into repositories (`repo_files`, `runner_names`) and,
on the host, the malware's self-hosted runners. Called by `steps.scan.scan`; it costs nothing for
an incident without such indicators.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.models import Indicators
from runbook.safeio import within
from runbook.step import Finding
from steps.scan import payloads, repo_files
from steps.scan.host import EDITOR_DIRS, global_dirs
from steps.scan.installed import real_dir
from steps.scan.runners import scan_runner_configs
from steps.scan.walk import walk

if TYPE_CHECKING:
    from steps.scan import ScanOptions


def scan_indicator_files(
    paths: list[Path],
    indicators: Indicators,
    options: ScanOptions,
    homes: list[Path],
    env: Mapping[str, str],
) -> list[Finding]:
    """Payload files, repository files (and their history) under `paths`; with the host,
    payloads in global installs and editor extensions, and runner registrations."""
    want_payloads = bool(indicators.package_files)
    want_repos = repo_files.wanted(indicators)
    if not (want_payloads or want_repos):
        return []
    findings: list[Finding] = []
    if paths:
        inventory = walk([Path(p) for p in paths])  # its errors are reported by scan_paths
        if want_payloads:
            trees = [*inventory.node_modules, *_unplugged(inventory.yarn_dirs)]
            findings += payloads.scan_payloads(trees, indicators.package_files)
        if want_repos:
            roots = list(dict.fromkeys([*inventory.repos, *(Path(p) for p in paths)]))
            findings += repo_files.scan_repo_files(roots, indicators)
            if options.history:
                findings += repo_files.scan_repo_history(inventory.repos, indicators)
    if options.host or options.root:
        for home in homes:
            if want_payloads:
                for tree, context in _host_trees(home, options.root, env):
                    findings += payloads.scan_payloads(
                        [tree], indicators.package_files, context=context
                    )
        if indicators.runner_names:
            findings += scan_runner_configs(homes, indicators.runner_names)
    return findings


def _unplugged(yarn_dirs: list[Path]) -> list[Path]:
    """yarn berry's `.yarn/unplugged/<archive>/node_modules` trees."""
    out = []
    for yarn_dir in yarn_dirs:
        try:
            entries = sorted((yarn_dir / "unplugged").iterdir())
        except OSError:
            continue
        out += [e / "node_modules" for e in entries if real_dir(e / "node_modules")]
    return out


def _host_trees(home: Path, root: Path | None, env: Mapping[str, str]) -> list[tuple[Path, str]]:
    """Global installs (the npm prefix, nvm, volta, fnm) and editor extensions' node_modules."""
    trees = [
        (folder, " (installed globally)")
        for folder in global_dirs(home, root, env)
        if folder.is_dir() and (root is None or within(folder, root))
    ]
    for relative in EDITOR_DIRS:
        try:
            extensions = sorted((home / relative).iterdir())
        except OSError:
            continue
        trees += [
            (ext / "node_modules", f" (inside editor extension {ext.name})")
            for ext in extensions
            if real_dir(ext / "node_modules") and not ext.is_symlink()
        ]
    return trees
