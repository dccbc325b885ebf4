"""The scanner behind `runbook scan` and the `detect` step: every trace of the bad versions.

What is bad comes from the playbook's incident section (`BadSet`); nothing here names a package.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runbook.models import Incident
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.scan.host import home_dirs, scan_caches, scan_editors, scan_globals, scan_indicators
from steps.scan.installed import scan_node_modules, scan_npm_aliases, scan_yarn_dir
from steps.scan.lockfiles import scan_lockfile
from steps.scan.manifests import scan_manifest
from steps.scan.walk import walk

SEVERITY_ORDER = {"compromised": 0, "at-risk": 1, "unknown": 2, "info": 3}


@dataclass
class ScanOptions:
    host: bool = False
    root: Path | None = None
    history: bool = False


@dataclass
class ScanResult:
    targets: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def affected(self) -> bool:
        return any(f.severity in ("compromised", "at-risk") for f in self.findings)


def _read(path: Path) -> bytes | Finding:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        kind = "lockfile" if path.name != "package.json" else "manifest"
        return Finding(
            kind=kind,
            severity="unknown",
            path=str(path),
            message=f"cannot read {path.name}: {exc.strerror or exc}",
        )


def scan_paths(paths: Iterable[Path], badset: BadSet, *, history: bool = False) -> list[Finding]:
    """Manifests, lockfiles and install trees under `paths` (and their git history)."""
    inventory = walk([Path(p) for p in paths])
    findings: list[Finding] = [
        Finding(kind="manifest", severity="unknown", path=str(path), message=f"cannot scan: {why}")
        for path, why in inventory.errors
    ]
    for path in inventory.manifests:
        data = _read(path)
        findings += [data] if isinstance(data, Finding) else scan_manifest(path, data, badset)
    for nm in inventory.node_modules:
        findings += scan_node_modules(nm, badset)
        hidden = nm / ".package-lock.json"  # npm's record of the installed tree
        if hidden.is_file():
            data = _read(hidden)
            if isinstance(data, Finding):
                findings.append(data)
                continue
            findings += scan_lockfile(hidden, data, badset)
            findings += scan_npm_aliases(nm, data, badset)
    for path in inventory.lockfiles:
        data = _read(path)
        findings += [data] if isinstance(data, Finding) else scan_lockfile(path, data, badset)
    for yarn_dir in inventory.yarn_dirs:
        findings += scan_yarn_dir(yarn_dir, badset)
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
    findings = scan_paths(paths, badset, history=options.history) if paths else []
    targets = [str(p) for p in paths]
    if options.host or options.root:
        live = options.root is None
        for home in homes:
            findings += scan_caches(home, env, badset, live)
            findings += scan_globals(home, options.root, env, badset)
            findings += scan_editors(home, badset)
        findings += scan_indicators(incident.indicators, options.root, homes, env)
        targets.append(f"host:{options.root or '/'}")
    unique = {(f.kind, f.path, f.line, f.package, f.version): f for f in findings}
    ordered = sorted(
        unique.values(),
        key=lambda f: (SEVERITY_ORDER[f.severity], f.kind, f.path or "", f.line or 0),
    )
    return ScanResult(targets=targets, findings=ordered)
