"""pnpm-lock.yaml, lockfile versions 5.x, 6.x and 9.x.

Package keys: v5 `/name/1.0.0_peer@2.0.0` (scoped `/@scope/name/1.0.0`, possibly prefixed by a
registry host), v6 `/name@1.0.0(peer@2.0.0)`, v9 `name@1.0.0` under `packages` with the dependency
graph under `snapshots` keyed with the peer suffixes. Projects are the `importers` (or, in older
single-project lockfiles, the top-level dependency sections).

pnpm 11 writes two YAML documents: first pnpm itself and the config dependencies (installed too,
so they are packages like any other), then the project's lockfile. Every document is read; the
keys of all but the last get a `(document N) ` prefix so that they never collide.
"""

from __future__ import annotations

import dataclasses
import re

from steps.npm.lockfiles.graph import (
    LockfileError,
    LockGraph,
    LockNode,
    check_tarball,
    clean_semver,
    load_yaml,
    project_name,
    split_spec,
    universal_newlines,
    yaml_documents,
    yaml_key,
    yaml_key_lines,
)

_NAME = re.compile(r"(?:@[^/@\s]+/)?[^/@\s:]+")
# pnpm 11's first document: pnpm itself and the config dependencies are installed too.
_IMPORTER_GROUPS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "configDependencies",
    "packageManagerDependencies",
)
_NODE_GROUPS = ("dependencies", "optionalDependencies")


def _parse_key(key: str) -> tuple[str, str] | None:
    """(name, version) of a package key; version "" for tarball, git and file keys."""
    base = key.split("(", 1)[0]
    bare = base.lstrip("/")
    name, rest = split_spec(bare)
    if rest is not None and _NAME.fullmatch(name):
        version = clean_semver(rest.split("_", 1)[0])
        if version or ":" in rest:
            return name, version
    segments = bare.split("/")
    for i in range(len(segments) - 1, 0, -1):
        version = clean_semver(segments[i].split("_", 1)[0])
        if version:
            if i >= 2 and segments[i - 2].startswith("@"):
                return f"{segments[i - 2]}/{segments[i - 1]}", version
            return segments[i - 1], version
    return None


def _ref_resolution(dep: str, ref: str) -> tuple[str, str] | None:
    """(name, version) a dependency reference resolves to, when it is a registry version:
    `1.0.0`, `1.0.0_peer@2.0.0`, `1.0.0(peer@2.0.0)`, an alias `/name/1.0.0`, `/name@1.0.0` or
    `name@1.0.0`. None for links, files, git and tarball references."""
    base = ref.split("(", 1)[0]
    version = clean_semver(base.split("_", 1)[0])
    if version:
        return dep, version
    if ":" in base:
        return None
    parsed = _parse_key(base)
    return parsed if parsed is not None and parsed[1] else None


def _line_of(text: str, key: str, start: int | None, offset: int) -> int | None:
    """The line of the first key `key` below line `start` (file lines), else `start`."""
    if start is None:
        return None
    lines = text.split("\n")
    for index in range(start - offset, len(lines)):
        body = lines[index].strip()
        if yaml_key(body) == key:
            return index + 1 + offset
    return start


def _mapping(doc: dict, field: str, where: str, line: int | None = None) -> dict:
    value = doc.get(field)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise LockfileError(f"pnpm-lock.yaml: {where}{field!r} is not a mapping", line)
    return value


def parse(text: str, *, project: str, manifest: dict | None) -> LockGraph:
    """Every document of the file: pnpm 11 writes one for pnpm itself and its config
    dependencies (`packageManagerDependencies`, `configDependencies`) before the project's."""
    name = project_name((manifest or {}).get("name"), project)
    documents: list[tuple[int, str, dict]] = []
    for offset, segment in yaml_documents(universal_newlines(text)):
        doc = load_yaml(segment, "pnpm-lock.yaml", offset)
        if doc is None or doc == "":
            continue
        if not isinstance(doc, dict):
            raise LockfileError(
                f"pnpm-lock.yaml: expected a mapping at the top level, got {type(doc).__name__}",
                offset + 1,
            )
        documents.append((offset, segment, doc))
    if not documents:
        graph = LockGraph(format="pnpm (empty)")
        graph.add_root(name, [])
        return graph
    graph = LockGraph(format="")
    roots: dict[str, list[str]] = {}
    for index, (offset, segment, doc) in enumerate(documents):
        last = index == len(documents) - 1
        prefix = "" if last else f"(document {index + 1}) "
        version = _read_document(doc, segment, offset, prefix, graph, roots)
        if last:
            graph.format = f"pnpm v{version}"
    for path, direct in roots.items():
        graph.add_root(name if path == "." else path, direct)
    return graph


def _read_document(
    doc: dict, text: str, offset: int, prefix: str, graph: LockGraph, roots: dict[str, list[str]]
) -> str:
    """Add one document's packages, edges and importers to `graph` and `roots`; node keys get
    `prefix` so that documents never collide. Returns its lockfileVersion."""
    lines = yaml_key_lines(text, ["", "packages", "snapshots", "importers"], offset)
    raw_version = doc.get("lockfileVersion")
    try:
        major = float(raw_version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        major = -1.0
    if not 5 <= major < 10:
        raise LockfileError(
            f"pnpm-lock.yaml: unsupported lockfileVersion {raw_version!r} (5.x to 9.x are known)",
            lines[""].get("lockfileVersion"),
        )
    packages = _mapping(doc, "packages", "", lines[""].get("packages"))
    snapshots = _mapping(doc, "snapshots", "", lines[""].get("snapshots"))

    deps_of: dict[str, list[tuple[str, str]]] = {}
    nodes: dict[str, LockNode] = {}

    def add(key: str, pkg: object, graph_entry: object, line: int | None) -> None:
        for label, value in (("package", pkg), ("snapshot", graph_entry)):
            if value not in (None, "") and not isinstance(value, dict):
                raise LockfileError(f"pnpm-lock.yaml: {label} {key!r} is not a mapping", line)
        pkg = pkg or {}
        graph_entry = graph_entry or {}
        parsed = _parse_key(key)
        field_name = pkg.get("name")  # type: ignore[union-attr]
        if isinstance(field_name, str) and field_name:
            pkg_name = field_name
            version = parsed[1] if parsed and parsed[0] == field_name else ""
        elif parsed is not None:
            pkg_name, version = parsed
        else:
            graph.warnings.append(
                f"line {line}: package key {key!r} names no package and was skipped"
            )
            return
        resolution = pkg.get("resolution")  # type: ignore[union-attr]
        if isinstance(resolution, dict) and resolution.get("tarball"):
            where = f"pnpm-lock.yaml: package {key!r}"
            version = check_tarball(pkg_name, version, resolution["tarball"], where, line)
        nodes[key] = LockNode(key=prefix + key, name=pkg_name, version=version, line=line)
        pairs: list[tuple[str, str]] = []
        for group in _NODE_GROUPS:
            deps = _mapping(graph_entry, group, f"{key!r}: ", line)  # type: ignore[arg-type]
            pairs.extend((str(d), str(r)) for d, r in deps.items())
        deps_of[key] = pairs

    if snapshots:
        covered = set()
        for key, snap in snapshots.items():
            base = key.split("(", 1)[0]
            covered.add(base)
            line = lines["packages"].get(base) or lines["snapshots"].get(key)
            add(key, packages.get(base), snap, line)
        for key, pkg in packages.items():
            if key not in covered:
                add(key, pkg, {}, lines["packages"].get(key))
    else:
        for key, pkg in packages.items():
            add(key, pkg, pkg, lines["packages"].get(key))

    v9 = bool(snapshots) or major >= 7
    aliases: dict[str, str] = {}

    def resolve(dep: str, ref: str) -> str | None:
        if ref.startswith("link:"):
            return None  # a workspace project: a root of its own
        if v9:
            candidates = (f"{dep}@{ref}", ref, ref.removeprefix("npm:"), f"/{dep}@{ref}")
        elif major >= 6:
            candidates = (f"/{dep}@{ref}", ref, f"/{ref}", f"{dep}@{ref}")
        else:
            candidates = (f"/{dep}/{ref}", ref, f"/{ref}", f"/{dep}@{ref}")
        if "+" in ref:  # a config dependency pinned with its integrity: `1.0.0+sha512-...`
            candidates += (f"{dep}@{ref.split('+', 1)[0]}",)
        for candidate in candidates:
            node = nodes.get(candidate)
            if node is not None:
                if node.name != dep:
                    aliases.setdefault(candidate, dep)
                return candidate
        return None

    def missing(dep: str, ref: str, where: str, line: int | None) -> LockfileError | None:
        """The error for a registry version with no package entry (a truncated file)."""
        found = _ref_resolution(dep, ref)
        if found is None:
            return None
        return LockfileError(
            f"pnpm-lock.yaml: {where} resolves {found[0]}@{found[1]} but the lockfile has no "
            "entry for it",
            line,
        )

    for key, pairs in deps_of.items():
        out = []
        for d, r in pairs:
            found = resolve(d, r)
            if found is None:
                error = missing(d, r, f"package {key!r}", nodes[key].line)
                if error:
                    raise error
            elif found != key:
                out.append(found)
        graph.edges[prefix + key] = [prefix + k for k in dict.fromkeys(out)]

    importers = _mapping(doc, "importers", "", lines[""].get("importers"))
    if not importers:
        importers = {".": doc}
    for path, importer in importers.items():
        if importer in (None, ""):
            importer = {}
        if not isinstance(importer, dict):
            line = lines["importers"].get(path)
            raise LockfileError(f"pnpm-lock.yaml: importer {path!r} is not a mapping", line)
        direct = roots.setdefault(str(path), [])
        for group in _IMPORTER_GROUPS:
            for dep, spec in _mapping(importer, group, f"importer {path!r}: ").items():
                ref = spec.get("version") if isinstance(spec, dict) else spec
                if not isinstance(ref, str):
                    continue
                found = resolve(str(dep), ref)
                if found is not None:
                    direct.append(prefix + found)
                    continue
                start = lines["importers"].get(path) or lines[""].get(group)
                error = missing(
                    str(dep), ref, f"importer {path!r}", _line_of(text, str(dep), start, offset)
                )
                if error:
                    raise error

    for key, node in nodes.items():
        alias = aliases.get(key)
        graph.nodes[prefix + key] = dataclasses.replace(node, alias=alias) if alias else node
        graph.edges.setdefault(prefix + key, [])
    return str(raw_version)
