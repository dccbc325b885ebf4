"""A `world` mapping rebuilt from a real run's journal (`runbook exercise from-journal`).

It reads what the run saw, never what it held: the target and the projects the detect step
found (package manager by lockfile, 1.x or 0.x by the bad axios version, direct / transitive /
nested by the dependency path, installed or not, whether the loader rewrote plain-crypto-js),
the caches with bad copies, whether host artifacts were found, and the credential TYPES and
places of `credentials_found`. No value, redacted form or fingerprint is copied: the world makes
up its own secrets when it is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from steps.world.model import ENV_DEFAULT_SECRET, ENV_DEFAULTS, PLACES, parse

LOCKFILES = {
    "package-lock.json": "npm",
    "npm-shrinkwrap.json": "npm",
    "yarn.lock": "yarn1",
    "pnpm-lock.yaml": "pnpm",
    "bun.lock": "bun",
    "bun.lockb": "bun",
}
LINES = {"1.14.1": "1.x", "0.30.4": "0.x"}
CACHE_MARKS = (
    ("/_cacache/", "npm"),
    ("/.cache/yarn/", "yarn1"),
    ("/Caches/Yarn/", "yarn1"),
    ("/pnpm/store/", "pnpm"),
    ("/.bun/install/cache/", "bun"),
)
NOT_NAME = re.compile(r"[^a-z0-9._-]+")
NAME = r"[a-z0-9][a-z0-9._-]{0,63}"
ENV_NAME = r"[A-Z_][A-Z0-9_]{0,63}"


def _name(path: str, taken: set[str]) -> str:
    base = NOT_NAME.sub("-", PurePosixPath(path).name.lower()).strip("-._") or "project"
    base = base[:56]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _project_of(path: str) -> str:
    """The project directory a finding's path belongs to."""
    if "/node_modules/" in path or path.endswith("/node_modules"):
        return path.split("/node_modules", 1)[0]
    return str(PurePosixPath(path).parent)


def _events(entries: Iterable[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [
        e.get("data") or {}
        for e in entries
        if isinstance(e, dict) and e.get("event") == event and isinstance(e.get("data"), dict)
    ]


def _planned(entries: list[dict[str, Any]], uses: str) -> list[dict[str, Any]]:
    return [d for d in _events(entries, "step_planned") if d.get("uses") == uses]


class _Project:
    def __init__(self, path: str) -> None:
        self.path = path
        self.manager: str | None = None
        self.lines: list[str] = []
        self.direct = False
        self.nested = False
        self.installed = False
        self.lockfile = False
        self.loader: bool | None = None  # plain-crypto-js installed: rewritten (ran) or not

    def spec(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "manager": self.manager or "npm"}
        if not self.lines:
            return {**out, "affected": False}
        out["line"] = self.lines[0]
        out["via"] = "direct" if self.direct else "nested" if self.nested else "transitive"
        out["lockfile"] = self.lockfile
        out["installed"] = self.installed
        if self.installed and self.loader is not None:
            out["scripts"] = "ran" if self.loader else "off"
        return out


def _findings(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for planned in _planned(entries, "detect"):
        rows += [f for f in planned.get("findings") or [] if isinstance(f, dict)]
    return rows


def _projects(entries: list[dict[str, Any]], target: str | None) -> dict[str, _Project]:
    projects: dict[str, _Project] = {}
    if target:
        projects[target] = _Project(target)
    for finding in _findings(entries):
        path, kind = str(finding.get("path") or ""), finding.get("kind")
        package, version = finding.get("package"), str(finding.get("version") or "")
        if kind not in ("lockfile", "installed", "manifest") or not path:
            continue
        where = _project_of(path)
        project = projects.setdefault(where, _Project(where))
        if kind == "lockfile":
            lock = PurePosixPath(path).name
            if lock in LOCKFILES and "/node_modules/" not in path:
                project.manager = project.manager or LOCKFILES[lock]
                project.lockfile = True
            if package == "axios" and len(finding.get("via") or []) == 1:
                project.direct = True
        if kind == "manifest" and package == "axios":
            project.direct = True
        if kind == "installed":
            project.installed = True
            if package == "axios" and path.count("/node_modules/") > 1:
                project.nested = True
            if package == "plain-crypto-js":
                project.loader = version != "4.2.1"  # the loader rewrites itself to say 4.2.0
        if package == "axios" and version in LINES and LINES[version] not in project.lines:
            project.lines.append(LINES[version])
    return projects


def _caches(entries: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for finding in _findings(entries):
        if finding.get("kind") != "cache":
            continue
        path = str(finding.get("path") or "")
        for mark, manager in CACHE_MARKS:
            if mark in path and manager not in found:
                found.append(manager)
    return sorted(found)


def _host_artifacts(entries: list[dict[str, Any]]) -> tuple[bool | None, str | None]:
    """(whether the loader's host artifacts were seen, which OS they belong to)."""
    seen: bool | None = None
    system = None
    for sweep in _events(entries, "host_sweep"):
        seen = bool(seen) or sweep.get("verdict") == "compromised"
    iocs = [f for f in _findings(entries) if f.get("kind") == "ioc"]
    for planned in _planned(entries, "host_sweep"):
        iocs += [f for f in planned.get("findings") or [] if isinstance(f, dict)]
    for finding in iocs:
        if finding.get("severity") in ("compromised", "at-risk"):
            seen = True
            path = str(finding.get("path") or "")
            if "/Library/" in path:
                system = "macos"
            elif path.endswith("/tmp/ld.py"):
                system = system or "linux"
    return seen, system


def _credentials(entries: list[dict[str, Any]], projects: dict[str, str]) -> list[dict[str, Any]]:
    """Credential types and places (HOME, a project, the environment); never a value."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for found in _events(entries, "credentials_found"):
        for cred in found.get("credentials") or []:
            if not isinstance(cred, dict):
                continue
            kind = cred.get("type")
            location = cred.get("location") or {}
            if kind not in PLACES or not isinstance(location, dict):
                continue
            row = _place(kind, location, projects)
            if row is None or row["where"] not in PLACES[kind]:
                continue
            key = tuple(sorted(row.items()))
            if key not in seen:
                seen.add(key)
                out.append(row)
    return out


def _place(kind: str, location: dict[str, Any], projects: dict[str, str]) -> dict[str, Any] | None:
    source, name = location.get("source"), str(location.get("name") or "")
    if source == "env":
        row: dict[str, Any] = {"type": kind, "where": "env"}
        default = (
            "AWS_ACCESS_KEY_ID"
            if kind == "aws-access-key"
            else ENV_DEFAULTS.get(kind, ENV_DEFAULT_SECRET)
        )
        if name and name != default and kind != "aws-access-key" and re.fullmatch(ENV_NAME, name):
            row["name"] = name
        return row
    if source != "file":
        return None  # the keyring: what runbook stored, not what the machine held
    path = str(location.get("path") or "")
    for directory in sorted(projects, key=len, reverse=True):
        if path.startswith(directory.rstrip("/") + "/"):
            row = {"type": kind, "where": "project", "project": projects[directory]}
            if (
                kind == "generic-secret"
                and name != ENV_DEFAULT_SECRET
                and re.fullmatch(ENV_NAME, name)
            ):
                row["name"] = name
            return row
    # anywhere else is this machine's own files: HOME (~/.npmrc, ~/.config/npm/npmrc, ...)
    row = {"type": kind, "where": "home"}
    section = str(location.get("section") or "")
    profile = section.removeprefix("profile ").strip()
    if kind in ("aws-access-key", "aws-profile") and re.fullmatch(NAME, profile or "-"):
        row["profile"] = profile
        if kind == "aws-access-key" and profile != "default":
            row["user"] = profile  # another profile, most likely another IAM user
    return row


def world_from_journal(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The world mapping for a drill modelled on the run `entries` were journaled by."""
    entries = [e for e in entries if isinstance(e, dict)]
    started = next(iter(_events(entries, "run_started")), {})
    target = started.get("target") if isinstance(started.get("target"), str) else None
    found = _projects(entries, target)
    taken: set[str] = set()
    names = {path: _name(path, taken) for path in found}
    ordered = sorted(found.values(), key=lambda p: (p.path != target, not p.lines, p.path))
    projects = [p.spec(names[p.path]) for p in ordered[:40]]
    ran = any(p.get("scripts") == "ran" for p in projects)
    artifacts, system = _host_artifacts(entries)
    ci = bool(target) and ("/runner/work/" in target or target.startswith("/github/workspace"))
    if ci:
        profile = "ci-runner"
    elif ran or artifacts:
        profile = "laptop-postinstall"
    else:
        profile = "laptop-ignore-scripts"
    world: dict[str, Any] = {"kind": "npm-host", "profile": profile}
    world["os"] = system or ("macos" if started.get("platform") == "darwin" else "linux")
    world["scripts"] = "ran" if ran else "off"
    world["projects"] = projects or [{"name": "project", "affected": False}]
    world["credentials"] = _credentials(entries, names)
    caches = _caches(entries)
    if caches:
        world["caches"] = caches
    if artifacts is not None:
        world["host_artifacts"] = artifacts
    for _ in range(3):  # places the world cannot hold twice: keep the first, as it is valid
        _, problems = parse(world)
        bad = {loc[:2] for loc, _ in problems if loc and loc[0] == "credentials"}
        if not bad:
            break
        world["credentials"] = [
            c for i, c in enumerate(world["credentials"]) if ("credentials", i) not in bad
        ]
    return world
