"""package-lock.json, npm-shrinkwrap.json and node_modules/.package-lock.json (v1, v2, v3).

v1 is a nested `dependencies` tree whose entries `require` names; v2 and v3 have a flat `packages`
map keyed by install path (`node_modules/a/node_modules/b`). Both are turned into install paths so
that edges follow Node's module resolution: a package at location L that needs D gets the nearest
`L/node_modules/D`, walking up the parent locations to the root `node_modules/D`.
"""

from __future__ import annotations

import fnmatch
import re

from steps.npm.lockfiles.graph import (
    DEP_GROUPS,
    OBJECT_OPENER,
    RUNTIME_GROUPS,
    LineCounter,
    LockfileError,
    LockGraph,
    LockNode,
    clean_semver,
    find_json_key,
    load_json,
    manifest_deps,
    project_name,
)

_ANY_VALUE = re.compile(r"\s*:")
_NM = "node_modules/"
_NON_REGISTRY = (
    "git+",
    "git:",
    "git@",
    "github:",
    "gitlab:",
    "bitbucket:",
    "file:",
    "ssh:",
    "link:",
)


def _split_location(key: str) -> tuple[str, str] | None:
    """(parent location, installed name) of an install path under node_modules, else None."""
    p = key.rfind("/" + _NM)
    if p >= 0:
        return key[:p], key[p + len(_NM) + 1 :]
    if key.startswith(_NM):
        return "", key[len(_NM) :]
    return None


class _Resolver:
    """Node's module resolution over install paths: nearest `L/node_modules/D` walking up."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str], str] = {}
        self._up: dict[str, str] = {}

    def add(self, key: str, split: tuple[str, str] | None = None) -> None:
        split = split or _split_location(key)
        if split is not None:
            self.index.setdefault(split, key)

    def up(self, loc: str) -> str:
        parent = self._up.get(loc)
        if parent is None:
            p = loc.rfind("/" + _NM)
            if p >= 0:
                parent = loc[:p]
            elif loc.startswith(_NM):
                parent = ""
            else:
                parent = loc[: max(loc.rfind("/"), 0)]
            self._up[loc] = parent
        return parent

    def resolve(self, loc: str, name: str) -> str | None:
        index = self.index
        ups = self._up
        while True:
            key = index.get((loc, name))
            if key is not None:
                return key
            if not loc:
                return None
            parent = ups.get(loc)
            loc = self.up(loc) if parent is None else parent


def _version(raw: object, resolved: object) -> str:
    if isinstance(resolved, str) and resolved.startswith(_NON_REGISTRY):
        return ""
    return clean_semver(raw)


def _check_entry(key: str, entry: object, groups: tuple[str, ...], line: int | None) -> dict:
    if not isinstance(entry, dict):
        raise LockfileError(f"entry {key!r} is a {type(entry).__name__}, not an object", line)
    for field in ("name", "version", "resolved"):
        value = entry.get(field)
        if field == "resolved" and value is False:
            continue  # npm 6 wrote `"resolved": false` for some entries (npm/cli#1138): absent
        if value is not None and not isinstance(value, str):
            raise LockfileError(
                f"entry {key!r}: {field!r} is a {type(value).__name__}, not a string", line
            )
    for group in groups:
        deps = entry.get(group)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise LockfileError(
                f"entry {key!r}: {group!r} is a {type(deps).__name__}, not an object", line
            )
    return entry


def _dep_names(entry: dict, groups: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for group in groups:
        deps = entry.get(group)
        if isinstance(deps, dict):
            names.extend(deps)
    return names


def _workspace_patterns(root: object, manifest: object) -> list[str]:
    for source in (root, manifest):
        if not isinstance(source, dict):
            continue
        ws = source.get("workspaces")
        if isinstance(ws, dict):
            ws = ws.get("packages")
        if isinstance(ws, list):
            pats = [p.strip().removeprefix("./").rstrip("/") for p in ws if isinstance(p, str)]
            return [p for p in pats if p]
    return []


def _is_workspace(path: str, patterns: list[str]) -> bool:
    for pat in patterns:
        if fnmatch.fnmatchcase(path, pat):
            return True
        if "**" in pat and fnmatch.fnmatchcase(path, pat.replace("/**", "/*")):
            return True
        if pat.endswith("/**") and path.startswith(pat[:-2]):
            return True
    return False


def parse(
    text: str, *, label: str, project: str, manifest: dict | None, hidden: bool = False
) -> LockGraph:
    """Parse the text of an npm lockfile. `label` names the file kind in `LockGraph.format`."""
    doc = load_json(text, label)
    if not isinstance(doc, dict):
        raise LockfileError(
            f"{label}: expected a JSON object at the top level, got {type(doc).__name__}", 1
        )
    version = doc.get("lockfileVersion")
    packages = doc.get("packages")
    if version is None:
        version = 3 if packages is not None else 1
    if type(version) is not int or version not in (1, 2, 3):
        raise LockfileError(
            f"{label}: unsupported lockfileVersion {version!r} (1, 2 and 3 are known)",
            _key_line(text, "lockfileVersion"),
        )
    graph = LockGraph(format=f"{label} v{version}")
    name = project_name(doc.get("name"), (manifest or {}).get("name"), project)
    if version >= 2 and packages is not None:
        if not isinstance(packages, dict):
            raise LockfileError(
                f"{label}: 'packages' is a {type(packages).__name__}, not an object",
                _key_line(text, "packages"),
            )
        _parse_packages(text, packages, graph, name, manifest, hidden)
        return graph
    deps = doc.get("dependencies")
    if deps is None:
        deps = {}
    if not isinstance(deps, dict):
        raise LockfileError(
            f"{label}: 'dependencies' is a {type(deps).__name__}, not an object",
            _key_line(text, "dependencies"),
        )
    _parse_v1(text, deps, graph, name, manifest)
    return graph


def _key_line(text: str, key: str) -> int | None:
    """The line of the first `"key":` in the text (a top-level key of a lockfile), if any."""
    at, _ = find_json_key(text, key, 0, _ANY_VALUE)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _unreferenced_top_level(graph: LockGraph) -> list[str]:
    referenced = {child for children in graph.edges.values() for child in children}
    return [
        key
        for key in graph.nodes
        if key not in referenced and _split_location(key) is not None and "/" + _NM not in key
    ]


def _parse_packages(
    text: str,
    packages: dict,
    graph: LockGraph,
    name: str,
    manifest: dict | None,
    hidden: bool,
) -> None:
    counter = LineCounter(text)
    _, pos = find_json_key(text, "packages", 0, OBJECT_OPENER)
    lines: dict[str, int | None] = {}
    for key, entry in packages.items():
        opener = OBJECT_OPENER if isinstance(entry, dict) else _ANY_VALUE
        at, end = find_json_key(text, key, pos, opener)
        line = None
        if at >= 0:
            line = counter.line_at(at)
            pos = end
        lines[key] = line
        _check_entry(key, entry, DEP_GROUPS, line)
        link = entry.get("link")
        if link is not None and not isinstance(link, bool):
            raise LockfileError(f"entry {key!r}: 'link' is not true or false", line)

    root = packages.get("")
    patterns = _workspace_patterns(root, manifest)
    resolver = _Resolver()
    links: dict[str, str] = {}
    folders: list[str] = []
    tree: list[str] = []
    splits: dict[str, tuple[str, str]] = {}
    for key, entry in packages.items():
        if key == "":
            continue
        split = _split_location(key)
        if entry.get("link") is True:
            target = entry.get("resolved") or ""
            links[key] = target.removeprefix("file:")
        elif split is None:
            folders.append(key)
            continue
        else:
            tree.append(key)
        if split is not None:
            splits[key] = split
            resolver.add(key, split)

    link_targets = set(links.values())
    workspaces = {
        key
        for key in folders
        if (_is_workspace(key, patterns) if patterns else key not in link_targets)
    }
    nodes, edges = graph.nodes, graph.edges
    for key in tree:
        entry = packages[key]
        installed = splits[key][1]
        real = entry.get("name") or installed
        nodes[key] = LockNode(
            key=key,
            name=real,
            version=_version(entry.get("version"), entry.get("resolved")),
            line=lines[key],
            alias=installed if real != installed else None,
        )
        edges[key] = []
    for key in folders:
        if key in workspaces:
            continue
        entry = packages[key]
        graph.add_node(
            LockNode(
                key=key,
                name=entry.get("name") or key.rsplit("/", 1)[-1],
                version="",
                line=lines.get(key),
            )
        )
    for key, target in links.items():
        if target not in packages:
            installed = splits[key][1]
            graph.add_node(LockNode(key=key, name=installed, version="", line=lines.get(key)))

    def target_of(found: str) -> str | None:
        if found in links:
            target = links[found]
            if target in workspaces:
                return None  # a workspace is a project of its own (see roots)
            return target if target in packages else found
        return found

    resolve = resolver.resolve

    def resolve_all(loc: str, names: list[str]) -> list[str]:
        out: list[str] = []
        for dep in names:
            found = resolve(loc, dep)
            if found is not None:
                child = target_of(found) if links else found
                if child is not None and child != loc:
                    out.append(child)
        return list(dict.fromkeys(out)) if len(out) > 1 else out

    for key in nodes:
        if key in links:
            continue
        entry = packages[key]
        names = [
            dep
            for group in RUNTIME_GROUPS
            if (deps := entry.get(group))
            for dep in deps  # type: ignore[union-attr]
        ]
        edges[key] = resolve_all(key, names) if names else []

    if isinstance(root, dict):
        graph.add_root(
            project_name(root.get("name"), name), resolve_all("", _dep_names(root, DEP_GROUPS))
        )
    elif manifest is not None:
        graph.add_root(name, resolve_all("", [n for n, _ in manifest_deps(manifest)]))
    else:
        graph.add_root(name, _unreferenced_top_level(graph))
    for key in sorted(workspaces):
        entry = packages[key]
        graph.add_root(
            project_name(entry.get("name"), key), resolve_all(key, _dep_names(entry, DEP_GROUPS))
        )
    if hidden and not isinstance(root, dict) and manifest is None:
        graph.warnings.append(
            "hidden lockfile without package.json: direct dependencies guessed as the top-level "
            "packages nothing else depends on"
        )


def _parse_v1(text: str, deps: dict, graph: LockGraph, name: str, manifest: dict | None) -> None:
    counter = LineCounter(text)
    _, pos = find_json_key(text, "dependencies", 0, OBJECT_OPENER)
    resolver = _Resolver()
    requires: dict[str, list[str]] = {}
    # Pre-order walk in document order with an explicit stack: (parent location, name, entry).
    stack: list[tuple[str, str, object]] = [("", n, e) for n, e in reversed(deps.items())]
    while stack:
        parent, installed, entry = stack.pop()
        key = f"{parent}/{_NM}{installed}" if parent else f"{_NM}{installed}"
        opener = OBJECT_OPENER if isinstance(entry, dict) else _ANY_VALUE
        at, end = find_json_key(text, installed, pos, opener)
        line = None
        if at >= 0:
            line = counter.line_at(at)
            pos = end
        entry = _check_entry(key, entry, ("requires", "dependencies"), line)
        raw = entry.get("version") or ""
        real, alias = installed, None
        if raw.startswith("npm:"):
            spec = raw[4:]
            at_sign = spec.rfind("@")
            if at_sign > 0:
                real, raw = spec[:at_sign], spec[at_sign + 1 :]
            else:
                real, raw = spec, ""
            alias = installed if real != installed else None
        graph.add_node(
            LockNode(
                key=key,
                name=real,
                version=_version(raw, entry.get("resolved")),
                line=line,
                alias=alias,
            )
        )
        resolver.add(key)
        children = entry.get("dependencies")
        if "requires" in entry:
            requires[key] = list(entry.get("requires") or {})
        else:
            # npm < 5 shrinkwraps record no `requires`: what is nested under a package is there
            # because it needs it (npm 5+ always writes `requires` when something is nested).
            requires[key] = list(children or {})
        if children:
            _, pos = find_json_key(text, "dependencies", pos, OBJECT_OPENER)
            stack.extend((key, n, e) for n, e in reversed(children.items()))

    for key, names in requires.items():
        out = []
        for dep in names:
            found = resolver.resolve(key, dep)
            if found is not None and found != key:
                out.append(found)
        graph.edges[key] = list(dict.fromkeys(out))
    if manifest is not None:
        direct = [resolver.resolve("", n) for n, _ in manifest_deps(manifest)]
        graph.add_root(name, [k for k in direct if k is not None])
    else:
        graph.add_root(name, _unreferenced_top_level(graph))
