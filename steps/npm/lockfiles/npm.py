"""package-lock.json, npm-shrinkwrap.json and node_modules/.package-lock.json (v1, v2, v3).

v1 is a nested `dependencies` tree whose entries `require` names; v2 and v3 have a flat `packages`
map keyed by install path (`node_modules/a/node_modules/b`). Both are turned into install paths so
that edges follow Node's module resolution: a package at location L that needs D gets the nearest
`L/node_modules/D`, walking up the parent locations to the root `node_modules/D`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re

from steps.npm.lockfiles.graph import (
    DEP_GROUPS,
    JSON_STRING,
    OBJECT_OPENER,
    RUNTIME_GROUPS,
    LineCounter,
    LockfileError,
    LockGraph,
    LockNode,
    check_tarball,
    check_unique_keys,
    clean_semver,
    find_json_key,
    json_string_token,
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
    """Parse the text of an npm lockfile. `label` names the file kind in `LockGraph.format`.

    `packages` (v2, v3) and the `dependencies` tree (v1, repeated by v2 for npm 6) are both read
    when present: npm 7+ installs from the first, npm 6 from the second (see `_merge_tree`).
    """
    doc = load_json(text, label)
    if not isinstance(doc, dict):
        raise LockfileError(
            f"{label}: expected a JSON object at the top level, got {type(doc).__name__}", 1
        )
    check_unique_keys(text, doc, label)
    version = doc.get("lockfileVersion")
    packages = doc.get("packages")
    deps = doc.get("dependencies")
    if version is None:
        version = 3 if packages is not None else 1
    if type(version) is not int or version not in (1, 2, 3):
        raise LockfileError(
            f"{label}: unsupported lockfileVersion {version!r} (1, 2 and 3 are known)",
            _key_line(text, "lockfileVersion"),
        )
    unread = unread_sections(doc)
    if unread:
        raise LockfileError(f"{label}: {unread}", _key_line(text, next(iter(_extra_keys(doc)))))
    graph = LockGraph(format=f"{label} v{version}")
    name = project_name(doc.get("name"), (manifest or {}).get("name"), project)
    for field, value in (("packages", packages), ("dependencies", deps)):
        if value is not None and not isinstance(value, dict):
            raise LockfileError(
                f"{label}: {field!r} is a {type(value).__name__}, not an object",
                _key_line(text, field),
            )
    if packages is None:
        _parse_v1(text, deps or {}, graph, name, manifest, 0)
        return graph
    _parse_packages(text, packages, graph, name, manifest, hidden)
    if deps:
        tree = LockGraph(format=graph.format)
        _parse_v1(text, deps, tree, name, manifest, _top_level_key(text, "dependencies"))
        _merge_tree(graph, tree, packages)
    return graph


_STANDARD_KEYS = frozenset({"name", "version", "lockfileVersion", "requires"})


def _extra_keys(doc: dict) -> list[str]:
    return [key for key in doc if key not in _STANDARD_KEYS]


def unread_sections(doc: dict) -> str | None:
    """Why a lockfile with neither `packages` nor `dependencies` cannot be taken as empty, or None.

    npm writes `packages` in every v2 and v3 lockfile (`"": {...}` at least) and leaves only
    `dependencies` out of a v1 lockfile with nothing to install; a file that holds anything else
    in their place (a renamed or garbled key) records resolutions npm would not read.
    """
    if doc.get("packages") is not None or doc.get("dependencies") is not None:
        return None
    extra = _extra_keys(doc)
    if not extra:
        return None
    shown = ", ".join(repr(k) for k in extra[:3]) + (" ..." if len(extra) > 3 else "")
    return (
        f"no 'packages' or 'dependencies' section but other content ({shown}): "
        "cannot tell what it resolves"
    )


def _top_level_key(text: str, key: str) -> int:
    """Where the value of the top-level `"key":` starts (the offset just past its `{`), or 0."""
    m = re.search(rf'\n(?: {{2}}|\t)"{re.escape(key)}"\s*:\s*\{{', text)
    if m:  # npm's own indentation: top-level keys and nothing else at two spaces
        return m.end()
    depth = 0
    for m in _STRUCTURE.finditer(text):
        token = m.group(0)
        if token in ("{", "["):
            depth += 1
        elif token in ("}", "]"):
            depth -= 1
        elif m.group(1):  # a key whose value is an object
            if depth == 1 and json_string_token(token[: m.start(1) - m.start()]) == key:
                return m.end()
            depth += 1
    return 0


_STRUCTURE = re.compile(JSON_STRING + r"(\s*:\s*\{)?|[{}\[\]]")


def _through_links(key: str, links: dict[str, str]) -> str:
    """The `packages` key of a `dependencies`-tree install path: the tree nests a workspace's
    own installs under its link (`node_modules/web/node_modules/x`), `packages` under the
    linked folder (`packages/web/node_modules/x`)."""
    at = key.find("/" + _NM)
    while at >= 0:
        target = links.get(key[:at])
        if target is not None:
            return target + key[at:]
        at = key.find("/" + _NM, at + 1)
    return key


def _merge_tree(graph: LockGraph, tree: LockGraph, packages: dict) -> None:
    """Add what the `dependencies` tree (what npm 6 installs) resolves to the graph of `packages`
    (what npm 7+ installs): an install path only the tree has becomes a node of its own, with
    its edges; a path where the two name different versions is a LockfileError."""
    links = {
        key: str(entry.get("resolved") or "").removeprefix("file:")
        for key, entry in packages.items()
        if entry.get("link") is True
    }
    keys = {key: _through_links(key, links) for key in tree.nodes} if links else {}
    added: dict[str, str] = {}  # tree key -> graph key
    for tree_key, node in tree.nodes.items():
        if not node.version:
            continue  # links, git and file entries: no registry version to compare
        key = keys.get(tree_key, tree_key)
        other = graph.nodes.get(key)
        if other is None and key not in packages:
            added[tree_key] = key
            continue
        if other is not None and (other.name, other.version) == (node.name, node.version):
            continue
        has = f"{other.name}@{other.version or '?'}" if other else "a link or folder"
        raise LockfileError(
            f"'packages' and 'dependencies' disagree at {key}: 'packages' (what npm 7+ "
            f"installs) has {has}, 'dependencies' (what npm 6 installs) {node.name}@"
            f"{node.version}",
            node.line,
        )
    if not added:
        return
    for tree_key, key in added.items():
        graph.add_node(dataclasses.replace(tree.nodes[tree_key], key=key))
    for parent, children in tree.edges.items():
        new = [added[child] for child in children if child in added]
        if parent in added:
            found = [keys.get(child, child) for child in children]
            graph.edges[added[parent]] = [child for child in found if child in graph.nodes]
        elif new and (parent := keys.get(parent, parent)) in graph.nodes:
            graph.edges[parent] = list(dict.fromkeys(graph.edges[parent] + new))
    first = next(iter(graph.roots))
    for direct in tree.roots.values():
        new = [added[child] for child in direct if child in added]
        if new:
            graph.roots[first] = list(dict.fromkeys(graph.roots[first] + new))


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
        resolved = entry.get("resolved")
        version = _version(entry.get("version"), resolved)
        if resolved:
            version = check_tarball(real, version, resolved, f"entry {key!r}", lines[key])
        nodes[key] = LockNode(
            key=key,
            name=real,
            version=version,
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


def _parse_v1(
    text: str, deps: dict, graph: LockGraph, name: str, manifest: dict | None, start: int
) -> None:
    """The nested `dependencies` tree, whose top-level object starts at offset `start` (0: the
    first `"dependencies": {` of the text, which it is in a v1 lockfile)."""
    counter = LineCounter(text)
    _, pos = (0, start) if start else find_json_key(text, "dependencies", 0, OBJECT_OPENER)
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
        resolved = entry.get("resolved")
        version = _version(raw, resolved)
        if resolved:
            version = check_tarball(real, version, resolved, f"entry {key!r}", line)
        graph.add_node(LockNode(key=key, name=real, version=version, line=line, alias=alias))
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
