"""bun.lock: JSON with comments and trailing commas (bun 1.1.39+ text lockfile).

`workspaces` maps each project path ("" for the root) to its manifest dependencies; `packages`
maps install paths (`axios`, `some-lib/axios` nested, `web/axios` inside workspace `web`) to
tuples `["name@version", registry, {deps...}, "sha512-..."]` (fewer elements for workspace, git
and file entries). Edges follow the nesting like npm's: nearest `parent/child`, else top level.
"""

from __future__ import annotations

import re

from steps.npm.lockfiles.graph import (
    ARRAY_OPENER,
    DEP_GROUPS,
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
    load_json,
    manifest_deps,
    project_name,
    split_spec,
)

# Linear time and constant memory whatever the input: possessive repeats (no backtracking state
# per character), and a `/*` without its `*/` blanks the rest of the text in one match.
_STRING = r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
_COMMENTS = re.compile(_STRING + r"|//[^\n]*+|/\*[^*]*+\*++(?:[^/*][^*]*+\*++)*+/|/\*[\s\S]*+")
_TRAILING = re.compile(f"({_STRING})" + r"|,(\s*+[\]}])")
_ANY_VALUE = re.compile(r"\s*:")
_NOT_NEWLINE = re.compile(r"[^\n]")


def strip_jsonc(text: str) -> str:
    """JSON from bun's JSONC: comments and trailing commas blanked, offsets and lines kept."""
    if "//" in text or "/*" in text:
        text = _COMMENTS.sub(
            lambda m: m.group(0) if m.group(0)[0] == '"' else _NOT_NEWLINE.sub(" ", m.group(0)),
            text,
        )
    return _TRAILING.sub(lambda m: m.group(1) or " " + m.group(2), text)


def _names(path: str) -> list[str]:
    """Package names along a bun install path (`@s/p/q` -> [`@s/p`, `q`])."""
    out: list[str] = []
    pending = ""
    for segment in path.split("/"):
        if pending:
            out.append(f"{pending}/{segment}")
            pending = ""
        elif segment.startswith("@"):
            pending = segment
        else:
            out.append(segment)
    if pending:
        out.append(pending)
    return out


class _Resolver:
    def __init__(self) -> None:
        self.index: dict[tuple[str, str], str] = {}
        self._up: dict[str, str] = {}

    def split(self, key: str) -> tuple[str, str]:
        names = _names(key)
        return "/".join(names[:-1]), names[-1] if names else ""

    def add(self, key: str) -> None:
        parent, name = self.split(key)
        self._up.setdefault(key, parent)
        self.index.setdefault((parent, name), key)

    def resolve(self, loc: str, name: str) -> str | None:
        while True:
            key = self.index.get((loc, name))
            if key is not None:
                return key
            if not loc:
                return None
            parent = self._up.get(loc)
            if parent is None:
                parent = self._up[loc] = self.split(loc)[0]
            loc = parent


def _deps(meta: object, groups: tuple[str, ...], where: str, line: int | None) -> list[str]:
    if not isinstance(meta, dict):
        return []
    names: list[str] = []
    for group in groups:
        deps = meta.get(group)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise LockfileError(f"bun.lock: {where}: {group!r} is not an object", line)
        names.extend(deps)
    return names


def parse(text: str, *, project: str, manifest: dict | None) -> LockGraph:
    text = strip_jsonc(text)
    doc = load_json(text, "bun.lock")
    if not isinstance(doc, dict):
        raise LockfileError(
            f"bun.lock: expected a JSON object at the top level, got {type(doc).__name__}", 1
        )
    check_unique_keys(text, doc, "bun.lock")
    version = doc.get("lockfileVersion")  # 0 to 3 seen: same tuple layout
    if version is not None and (type(version) is not int or version not in (0, 1, 2, 3)):
        raise LockfileError(f"bun.lock: unsupported lockfileVersion {version!r} (0 to 3 are known)")
    graph = LockGraph(format=f"bun.lock v{version if version is not None else '?'}")
    workspaces = doc.get("workspaces")
    packages = doc.get("packages")
    workspaces = {} if workspaces is None else workspaces
    packages = {} if packages is None else packages
    for field, value in (("workspaces", workspaces), ("packages", packages)):
        if not isinstance(value, dict):
            raise LockfileError(f"bun.lock: {field!r} is a {type(value).__name__}, not an object")

    counter = LineCounter(text)
    _, pos = find_json_key(text, "packages", 0, OBJECT_OPENER)
    resolver = _Resolver()
    workspace_keys: set[str] = set()
    deps_of: dict[str, list[str]] = {}
    for key, entry in packages.items():
        opener = ARRAY_OPENER if isinstance(entry, list) else _ANY_VALUE
        at, end = find_json_key(text, key, pos, opener)
        line = None
        if at >= 0:
            line = counter.line_at(at)
            pos = end
        if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
            raise LockfileError(
                f'bun.lock: package {key!r} is not a ["name@version", ...] tuple', line
            )
        real, ref = split_spec(entry[0])
        ref = ref or ""
        resolver.add(key)
        if ref.startswith("workspace:"):
            workspace_keys.add(key)
            continue
        meta = next((e for e in entry[1:] if isinstance(e, dict)), None)
        installed = _names(key)[-1] if key else real
        version = clean_semver(ref)
        where = f"bun.lock: package {key!r}"
        if len(entry) > 1 and isinstance(entry[1], str) and entry[1]:
            # the registry, or for some entries the tarball URL bun downloads
            version = check_tarball(real, version, entry[1], where, line)
        elif ref.startswith(("http:", "https:")):  # a dependency on a tarball URL
            version = check_tarball(real, version, ref, where, line)
        graph.add_node(
            LockNode(
                key=key,
                name=real,
                version=version,
                line=line,
                alias=installed if installed != real else None,
            )
        )
        deps_of[key] = _deps(meta, RUNTIME_GROUPS, f"package {key!r}", line)

    def resolve_all(loc: str, names: list[str]) -> list[str]:
        out = []
        for dep in names:
            found = resolver.resolve(loc, dep)
            if found is not None and found not in workspace_keys and found != loc:
                out.append(found)
        return list(dict.fromkeys(out))

    for key, names in deps_of.items():
        graph.edges[key] = resolve_all(key, names)

    root_name = project_name((manifest or {}).get("name"), project)
    if not workspaces:
        direct = resolve_all("", [n for n, _ in manifest_deps(manifest)]) if manifest else []
        graph.add_root(root_name, direct)
    for path, ws in workspaces.items():
        if ws is not None and not isinstance(ws, dict):
            raise LockfileError(f"bun.lock: workspace {path!r} is not an object")
        ws = ws or {}
        names = _deps(ws, DEP_GROUPS, f"workspace {path!r}", None)
        if path == "":
            graph.add_root(project_name(ws.get("name"), root_name), resolve_all("", names))
        else:
            ws_name = project_name(ws.get("name"), path)
            # a workspace's own nested installs are keyed under its package name
            graph.add_root(ws_name, resolve_all(ws_name if ws.get("name") else "", names))
    return graph
