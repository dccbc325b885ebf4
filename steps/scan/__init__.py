"""The scanner behind `runbook scan` and the `detect` step: every trace of the bad versions.

What is bad comes from the playbook's incident section (`BadSet`); nothing here names a package.
The verdict fails closed: a file that could not be read or judged (an `unknown` finding) means the
scan cannot say "not affected".
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runbook.models import Incident
from runbook.safeio import LOCKFILE_LIMIT, MANIFEST_LIMIT
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.scan.background import Background
from steps.scan.host import home_dirs, scan_caches, scan_editors, scan_globals, scan_indicators
from steps.scan.installed import scan_node_modules, scan_npm_aliases, scan_yarn_dir
from steps.scan.lockfiles import scan_lockfile
from steps.scan.manifests import scan_manifest
from steps.scan.payloads import PayloadFiles
from steps.scan.reading import not_regular, read_file, unreadable
from steps.scan.walk import Inventory, walk

SEVERITY_ORDER = {"compromised": 0, "at-risk": 1, "unknown": 2, "info": 3}
AFFECTING = frozenset({"compromised", "at-risk"})


@dataclass
class ScanOptions:
    host: bool = False
    root: Path | None = None
    history: bool = False
    # walk the install trees in a forked child while the rest is read (`steps.scan.background`:
    # POSIX, a single-threaded caller, and a home's worth of trees)
    background: bool = True


#: From this many node_modules trees, they are walked in the background (`ScanOptions`).
BACKGROUND_TREES = 8


@dataclass(frozen=True)
class Unchecked:
    """A place the scan could not check, and why (its `unknown` findings' messages)."""

    path: str
    reason: str


def verdict(findings: Iterable[Finding]) -> bool | None:
    """True: something compromised or at risk. None: nothing found, but something could not be
    checked (an `unknown` finding). False: everything was checked and nothing found. `info`
    findings never change the verdict."""
    severities = {f.severity for f in findings}
    if severities & AFFECTING:
        return True
    return None if "unknown" in severities else False


def unchecked(findings: Iterable[Finding]) -> list[Unchecked]:
    """One entry per place with `unknown` findings, in finding order; their reasons joined."""
    reasons: dict[str, list[str]] = {}
    for f in findings:
        if f.severity == "unknown":
            reasons.setdefault(f.path or "", []).append(f.message)
    return [Unchecked(path, "; ".join(dict.fromkeys(why))) for path, why in reasons.items()]


@dataclass
class ScanResult:
    targets: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def affected(self) -> bool | None:
        """Tri-state, see `verdict`: True, None (could not check everything) or False."""
        return verdict(self.findings)

    @property
    def unchecked(self) -> list[Unchecked]:
        return unchecked(self.findings)


def _read(path: Path, limit: int, *, missing_ok: bool = False) -> bytes | Finding | None:
    """A file's bytes, or the `unknown` finding that says why it could not be read (None when
    `missing_ok` and it does not exist)."""
    try:
        return read_file(path, limit=limit)
    except OSError as exc:
        if missing_ok and isinstance(exc, FileNotFoundError):
            return None
        return unreadable(_kind(path), path, exc, path.name)


def _kind(path: Path) -> str:
    return "manifest" if path.name == "package.json" else "lockfile"


def scan_paths(
    paths: Iterable[Path],
    badset: BadSet,
    *,
    history: bool = False,
    payloads: PayloadFiles | None = None,
) -> list[Finding]:
    """Manifests, lockfiles and install trees under `paths` (and their git history); with
    `payloads`, the payload files in every installed package."""
    inventory = walk([Path(p) for p in paths])
    return scan_inventory(inventory, badset, history=history, payloads=payloads)


def scan_inventory(
    inventory: Inventory,
    badset: BadSet,
    *,
    history: bool = False,
    payloads: PayloadFiles | None = None,
) -> list[Finding]:
    """`scan_paths` on what one walk found."""
    return [*scan_trees(inventory, badset, payloads), *scan_files(inventory, badset, history)]


def scan_trees(
    inventory: Inventory, badset: BadSet, payloads: PayloadFiles | None = None
) -> list[Finding]:
    """The install trees: every node_modules (and yarn's unplugged folders) walked once for bad
    packages and, with `payloads`, payload files."""
    findings: list[Finding] = []
    for nm in inventory.node_modules:
        findings += scan_node_modules(nm, badset, payloads=payloads)
    for yarn_dir in inventory.yarn_dirs:
        findings += scan_yarn_dir(yarn_dir, badset, payloads)
    return findings


def scan_files(inventory: Inventory, badset: BadSet, history: bool = False) -> list[Finding]:
    """The rest of what the walk found: manifests, lockfiles (npm's hidden ones and the aliases
    they record too), what could not be listed or is no regular file, and git history."""
    findings: list[Finding] = [
        Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            message=f"cannot list this directory: {why}; nothing under it was checked",
        )
        for path, why in inventory.errors
    ]
    findings += [
        Finding(
            kind=_kind(path),
            severity="unknown",
            path=str(path),
            message=f"cannot read {path.name}: {not_regular(path)}",
        )
        for path in inventory.irregular
    ]
    for path in inventory.manifests:
        data = _read(path, MANIFEST_LIMIT)
        findings += [data] if isinstance(data, Finding) else scan_manifest(path, data, badset)
    for nm in inventory.node_modules:
        hidden = nm / ".package-lock.json"  # npm's record of the installed tree
        data = _read(hidden, LOCKFILE_LIMIT, missing_ok=True)
        if data is None:
            continue
        if isinstance(data, Finding):
            findings.append(data)
            continue
        findings += scan_lockfile(hidden, data, badset)
        findings += scan_npm_aliases(nm, data, badset)
    for path in inventory.lockfiles:
        data = _read(path, LOCKFILE_LIMIT)
        findings += [data] if isinstance(data, Finding) else scan_lockfile(path, data, badset)
    if history:
        from steps.scan.history import scan_history  # GitPython is only imported when asked for

        findings += scan_history(inventory.repos, badset)
    return findings


def scan(
    paths: list[Path],
    incident: Incident,
    options: ScanOptions,
    env: Mapping[str, str] | None = None,
) -> ScanResult:
    """Run every detector the options ask for; findings sorted by severity, then place."""
    env = dict(os.environ if env is None else env)
    badset = BadSet(incident)
    homes = home_dirs(options.root, env) if options.host or options.root else []
    if options.root and not paths:
        paths = homes  # a mounted laptop disk: every project in every home
    # payload files are looked for in the same walk of each install tree as the bad packages
    payloads = PayloadFiles.of(incident.indicators.package_files)
    inventory = walk([Path(p) for p in paths]) if paths else Inventory()
    trees = functools.partial(scan_trees, inventory, badset, payloads)
    fork = options.background and len(inventory.node_modules) >= BACKGROUND_TREES
    with Background(trees, fork=fork) as walked:  # the trees, beside everything else
        findings = scan_files(inventory, badset, options.history)
        from steps.scan.indicator_files import scan_indicator_files  # workflows, runners

        findings += scan_indicator_files(
            paths, inventory.repos, incident.indicators, options, homes
        )
        if options.host or options.root:
            live = options.root is None
            for home in homes:
                findings += scan_caches(home, env, badset, live, unknown=True, payloads=payloads)
                findings += scan_globals(home, options.root, env, badset, payloads)
                findings += scan_editors(home, badset, payloads)
            findings += scan_indicators(incident.indicators, options.root, homes, env)
        findings += walked.result()
    targets = [str(p) for p in paths]
    if options.host or options.root:
        targets.append(f"host:{options.root or '/'}")
    unique = {(f.kind, f.path, f.line, f.package, f.version): f for f in findings}
    ordered = sorted(
        unique.values(),
        key=lambda f: (SEVERITY_ORDER[f.severity], f.kind, f.path or "", f.line or 0),
    )
    return ScanResult(targets=targets, findings=ordered)
