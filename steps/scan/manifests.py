"""package.json: dependency groups, overrides and resolutions whose spec admits a bad version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runbook.step import Finding
from steps.npm.badset import BadSet

GROUPS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


def _override_name(key: str) -> str:
    """`**/axios`, `foo>axios`, `axios@<1.14.1`, `axios@npm:^1` -> `axios` (scopes kept)."""
    key = key.split(">")[-1].split("/**/")[-1].removeprefix("**/")
    if key.startswith("@"):
        scope, _, rest = key.partition("/")
        rest = rest.split("/")[-1] if "/" in rest else rest
        name = f"{scope}/{rest.split('@')[0]}"
    else:
        name = key.split("/")[-1].split("@")[0]
    return name


def _walk_overrides(value: Any, prefix: str) -> Iterator[tuple[str, str, str]]:
    """npm `overrides` nest: {"foo": {"axios": "1.14.0"}, "axios": {".": "1.14.0"}}."""
    if not isinstance(value, dict):
        return
    for key, spec in value.items():
        if not isinstance(key, str):
            continue
        where = f"{prefix}.{key}"
        if isinstance(spec, str):
            if key == ".":
                continue
            yield _override_name(key), spec, where
        elif isinstance(spec, dict):
            dot = spec.get(".")
            if isinstance(dot, str):
                yield _override_name(key), dot, where
            yield from _walk_overrides(spec, where)


def _entries(manifest: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(key as written, real name, spec, where) for every place a spec can live."""
    for group in GROUPS:
        deps = manifest.get(group)
        if isinstance(deps, dict):
            for key, spec in deps.items():
                if isinstance(key, str) and isinstance(spec, str):
                    yield key, key, spec, group
    for name, spec, where in _walk_overrides(manifest.get("overrides"), "overrides"):
        yield name, name, spec, where
    for section, value in (
        ("resolutions", manifest.get("resolutions")),
        (
            "pnpm.overrides",
            (manifest.get("pnpm") or {}).get("overrides")
            if isinstance(manifest.get("pnpm"), dict)
            else None,
        ),
    ):
        if isinstance(value, dict):
            for key, spec in value.items():
                if isinstance(key, str) and isinstance(spec, str):
                    yield key, _override_name(key), spec, f"{section}.{key}"


def _line_of(text: str, key: str, spec: str) -> int | None:
    pattern = re.compile(rf'"{re.escape(key)}"\s*:\s*"{re.escape(spec)}"')
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def scan_manifest(path: Path, data: bytes, badset: BadSet) -> Iterator[Finding]:
    """Findings for one package.json (its bytes already read)."""
    if not badset.mentions(data):
        return
    try:
        text = data.decode("utf-8-sig")
        manifest = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        yield Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            line=getattr(exc, "lineno", None),
            message=f"cannot parse package.json: {_reason(exc)}",
        )
        return
    if not isinstance(manifest, dict):
        yield Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            message="package.json is not a JSON object",
        )
        return
    for key, name, spec, where in _entries(manifest):
        verdict = badset.judge_spec(name, spec)
        if verdict is None:
            continue
        shown = verdict.real_name
        what = f"admits {', '.join(verdict.admits)}" if verdict.admits else verdict.reason
        alias = f" (alias '{key}')" if where in GROUPS and key != shown else ""
        yield Finding(
            kind="manifest",
            severity=verdict.severity,
            path=str(path),
            line=_line_of(text, key, spec),
            package=shown,
            version=spec,
            message=f"{where}: {shown}{alias} '{spec}' {what}",
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)
