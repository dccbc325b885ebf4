"""Lockfiles: a resolved bad version is `compromised`, with its line and dependency path.

A lockfile that cannot be parsed is an `unknown` finding; when its bytes nevertheless record a bad
version (see `steps.npm.lockfiles.evidence`), each one is also a `compromised` finding with the
line where it was seen: evidence is never thrown away because the rest of the file is broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from runbook.safeio import MANIFEST_LIMIT
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import (
    BUN_CONVERT,
    NPM_NAMES,
    LockfileError,
    load_npm_lockfile,
    parse_lockfile,
)
from steps.npm.lockfiles.evidence import find_evidence
from steps.npm.lockfiles.graph import (
    decode_text,
    keys_may_repeat,
    load_json,
    utf8_bytes,
)
from steps.npm.lockfiles.quick import Malformed, npm_resolutions
from steps.scan.reading import read_file


def _manifest_beside(path: Path) -> dict | None:
    """The package.json of the lockfile's project, when it is a readable JSON object."""
    candidate = (
        path.parent.parent / "package.json"
        if path.parent.name == "node_modules"
        else path.parent / "package.json"
    )
    try:
        data = read_file(candidate, limit=MANIFEST_LIMIT)
        manifest = load_json(decode_text(data, "package.json"), "package.json")
    except (OSError, LockfileError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _needs_full_parse(path: Path, data: bytes, utf8: bytes, badset: BadSet, seen: set) -> bool:
    """Whether the lockfile may hold a bad resolution; an unreadable one raises LockfileError.

    The full parse (graph, dependency paths, line numbers) costs ten times a plain decode, and
    almost no lockfile needs it: npm's are decoded and their entries compared, the rest are parsed
    only when their bytes hold a bad version or an any-version name. The bad (name, version)
    pairs the npm pass sees are added to `seen`. `utf8` is `data` as UTF-8 (for the byte filters).
    npm's hidden lockfile is not even decoded when a cheap byte filter rules it out (a bad set of
    a few names; with thousands, the filter costs what the decode does, so it is decoded).
    """
    if path.name in NPM_NAMES:
        if (
            path.name == ".package-lock.json"
            and badset.substring_filters
            and not badset.could_resolve(utf8)
        ):
            return False  # npm writes that one itself: nothing to validate
        doc = load_npm_lockfile(path, data)
        try:
            for name, version in npm_resolutions(doc):
                if name in badset.names and badset.is_bad(name, version):
                    seen.add((name, version))
        except Malformed:
            return True  # the full parse says what and where
        return bool(seen) or keys_may_repeat(utf8, doc)  # a key written twice hides the first
    if badset.could_resolve(utf8):
        return True
    graph = parse_lockfile(path, data)  # yarn, pnpm and bun files are cheap: validate them in full
    return any(  # what the byte filter cannot see (`v1.14.1` among a big set's tokens)
        node.name in badset.names and badset.is_bad(node.name, node.version)
        for node in graph.nodes.values()
    )


def scan_lockfile(path: Path, data: bytes, badset: BadSet) -> Iterator[Finding]:
    """Findings for one lockfile (its bytes already read)."""
    if path.name == "bun.lockb":
        if badset.contains_name(data):
            yield Finding(
                kind="lockfile",
                severity="unknown",
                path=str(path),
                message=f"bun.lockb is binary and cannot be read; run `{BUN_CONVERT}` "
                "to write a text bun.lock, then scan again",
            )
        return
    utf8 = utf8_bytes(data)
    seen: set[tuple[str, str]] = set()
    try:
        if not _needs_full_parse(path, data, utf8, badset, seen):
            return
        graph = parse_lockfile(path, data, _manifest_beside(path))
    except LockfileError as exc:
        if seen or badset.could_resolve(utf8):
            yield from _evidence(path, utf8, badset, exc, seen)
        where = (
            f" (line {exc.line}, column {exc.column})"
            if exc.line and exc.column and f":{exc.line}:{exc.column}:" not in exc.reason
            else ""
        )
        yield Finding(
            kind="lockfile",
            severity="unknown",
            path=str(path),
            line=exc.line,
            message=f"cannot parse {path.name}: {exc.reason}{where}",
        )
        return
    bad = [
        node
        for node in graph.nodes.values()
        if node.name in badset.names and badset.is_bad(node.name, node.version)
    ]
    paths = graph.paths() if len(bad) > 1 else None
    for node in bad:
        via = paths(node.key) if paths else graph.via(node.key)
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


def _evidence(
    path: Path, utf8: bytes, badset: BadSet, exc: LockfileError, seen: set[tuple[str, str]]
) -> Iterator[Finding]:
    """`compromised` findings for the bad versions the bytes of an unparsable lockfile record."""
    text = utf8.decode("utf-8", "replace")
    # only the bad names the bytes could resolve: the text search costs one pass per name
    found = find_evidence(path.name, text, badset.subset(badset.resolvable(utf8)))
    broken = (
        f"{path.name} could not be fully parsed ({exc.reason}), so the dependency path is unknown"
    )
    for evidence in found:
        lines = evidence.lines
        where = f"line {lines[0]}" + (
            f" (also line{'s' if len(lines) > 2 else ''} {', '.join(map(str, lines[1:]))})"
            if len(lines) > 1
            else ""
        )
        what = (
            f"{evidence.name}@{evidence.version}"
            if evidence.version
            else f"{evidence.name} (every version is evidence)"
        )
        yield Finding(
            kind="lockfile",
            severity="compromised",
            path=str(path),
            line=lines[0],
            package=evidence.name,
            version=evidence.version,
            message=f"{what} is recorded at {where}, but {broken}",
        )
    covered = {(e.name, e.version) for e in found}
    for name, version in sorted(seen - covered):
        if (name, None) in covered and name in badset.any_version:
            continue
        yield Finding(
            kind="lockfile",
            severity="compromised",
            path=str(path),
            package=name,
            version=version or None,
            message=f"{name}@{version or '?'} is recorded in the file, but {broken}",
        )
