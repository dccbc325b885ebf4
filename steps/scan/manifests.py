"""package.json: dependency groups, overrides and resolutions whose spec admits a bad version.

A group of the wrong type (`"dependencies": ["axios"]`) or a bad package whose spec is not a
string is an `unknown` finding with its line, never silence: npm would not read it as we did.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runbook.step import Finding
from steps.npm.badset import MAX_SPEC_LENGTH, BadSet
from steps.npm.lockfiles.graph import (
    LockfileError,
    decode_text,
    find_json_key,
    load_json,
    utf8_bytes,
)

GROUPS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_ANY_VALUE = re.compile(r"\s*:")
_SHOWN_SPEC = 120  # characters of a spec quoted in a message


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


def _walk_overrides(value: Any, prefix: str) -> Iterator[tuple[str, object, str]]:
    """npm `overrides` nest: {"foo": {"axios": "1.14.0"}, "axios": {".": "1.14.0"}}.

    Yields (name, spec, where) for every string spec, and for any value that is neither a string
    nor an object (the caller judges it); walked without recursion, whatever the depth.
    """
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        current, where_above = stack.pop()
        if not isinstance(current, dict):
            continue
        pending = []
        for key, spec in current.items():
            where = f"{where_above}.{key}"
            if isinstance(spec, dict):
                if "." in spec:
                    yield _override_name(key), spec["."], where
                pending.append((spec, where))
            elif key != ".":
                yield _override_name(key), spec, where
        stack.extend(reversed(pending))


def _entries(manifest: dict[str, Any]) -> Iterator[tuple[str, str, object, str]]:
    """(key as written, real name, spec, where) for every place a spec can live; the spec is
    whatever the file holds (the caller checks it is a string)."""
    for group in GROUPS:
        deps = manifest.get(group)
        if isinstance(deps, dict):
            for key, spec in deps.items():
                yield key, key, spec, group
    for name, spec, where in _walk_overrides(manifest.get("overrides"), "overrides"):
        yield name, name, spec, where
    for section, value in _override_sections(manifest):
        if isinstance(value, dict):
            for key, spec in value.items():
                yield key, _override_name(key), spec, f"{section}.{key}"


def _override_sections(manifest: dict[str, Any]) -> list[tuple[str, object]]:
    pnpm = manifest.get("pnpm")
    return [
        ("resolutions", manifest.get("resolutions")),
        ("pnpm.overrides", pnpm.get("overrides") if isinstance(pnpm, dict) else None),
    ]


def _shape_problems(manifest: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key to find the line by, reason) for every section that is not an object."""
    sections: list[tuple[str, object]] = [(g, manifest.get(g)) for g in GROUPS]
    sections += [("overrides", manifest.get("overrides")), ("pnpm", manifest.get("pnpm"))]
    sections += _override_sections(manifest)
    for section, value in sections:
        if value is not None and not isinstance(value, dict):
            yield section.rsplit(".", 1)[-1], f"'{section}' is {_a(value)}, not an object"


def _a(value: object) -> str:
    kind = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        type(None): "null",
    }
    return kind.get(type(value), type(value).__name__)


def _line_of(text: str, key: str, spec: str | None = None) -> int | None:
    if spec is None:
        at, _ = find_json_key(text, key, 0, _ANY_VALUE)
        return text.count("\n", 0, at) + 1 if at >= 0 else None
    pattern = re.compile(rf'"{re.escape(key)}"\s*:\s*"{re.escape(spec)}"')
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _shown(spec: str) -> str:
    if len(spec) <= _SHOWN_SPEC:
        return spec
    return f"{spec[:_SHOWN_SPEC]}... ({len(spec)} characters)"


def scan_manifest(path: Path, data: bytes, badset: BadSet) -> Iterator[Finding]:
    """Findings for one package.json (its bytes already read)."""
    if not badset.mentions(utf8_bytes(data)):
        return
    try:
        text = decode_text(data, "package.json")
        manifest = load_json(text, "package.json")
    except LockfileError as exc:
        where = (
            f" (line {exc.line}, column {exc.column})"
            if exc.line and exc.column and f":{exc.line}:{exc.column}:" not in exc.reason
            else ""
        )
        yield Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            line=exc.line,
            message=f"cannot parse package.json: {exc.reason}{where}",
        )
        return
    if not isinstance(manifest, dict):
        yield Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            line=1,
            message=f"package.json is {_a(manifest)}, not a JSON object",
        )
        return
    for key, reason in _shape_problems(manifest):
        yield Finding(
            kind="manifest",
            severity="unknown",
            path=str(path),
            line=_line_of(text, key),
            message=f"cannot read the dependencies of package.json: {reason}",
        )
    for key, name, spec, where in _entries(manifest):
        if not isinstance(spec, str):
            if name in badset.names:
                yield Finding(
                    kind="manifest",
                    severity="unknown",
                    path=str(path),
                    line=_line_of(text, key),
                    package=name,
                    message=f"{where}: the spec of {name} is {_a(spec)}, not a string",
                )
            continue
        verdict = badset.judge_spec(name, spec)
        if verdict is None:
            continue
        shown = verdict.real_name
        what = verdict.what()
        alias = f" (alias '{key}')" if where in GROUPS and key != shown else ""
        yield Finding(
            kind="manifest",
            severity=verdict.severity,
            path=str(path),
            line=_line_of(text, key, spec),
            package=shown,
            version=spec if len(spec) <= MAX_SPEC_LENGTH else spec[:MAX_SPEC_LENGTH] + "...",
            message=f"{where}: {shown}{alias} '{_shown(spec)}' {what}",
        )
