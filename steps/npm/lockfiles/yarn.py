"""yarn.lock: yarn v1 (its own text format) and yarn berry (v2+, YAML with `__metadata`).

v1 entries carry no project information, so the direct dependencies come from the package.json
beside the lockfile; entries nothing depends on stand in when it is missing (or for workspaces,
whose manifests are not at hand). Berry lockfiles list the workspaces themselves as
`workspace:` entries: they are the projects (roots), not packages.
"""

from __future__ import annotations

import json
import re

from steps.npm.lockfiles.graph import (
    DEP_GROUPS,
    LockfileError,
    LockGraph,
    LockNode,
    clean_semver,
    load_yaml,
    manifest_deps,
    project_name,
    split_spec,
    yaml_key_lines,
)

_BERRY = re.compile(r"""^["']?__metadata["']?\s*:""", re.MULTILINE)
# Quoted strings with possessive repeats: linear time and constant memory on a 20 MB token.
_QUOTED = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_TOKEN = re.compile(_QUOTED + r"|\S++")
_HEADER_SPEC = re.compile(_QUOTED + r"|[^,]++")
_NON_REGISTRY_RANGE = (
    "file:",
    "link:",
    "portal:",
    "git",
    "github:",
    "gitlab:",
    "bitbucket:",
    "http",
)
_PATCH_VERSION = re.compile(r"npm%3A([^#&:%]+)|::version=([^&]+)")


def parse(text: str, *, project: str, manifest: dict | None) -> LockGraph:
    if text.lstrip().startswith("{"):
        # yarn 6 (zpm) writes yarn.lock as JSON: not read yet, and never taken as clean
        raise LockfileError(
            "yarn.lock is JSON (the yarn 6 format), which this scanner cannot read yet", 1
        )
    if _BERRY.search(text):
        return _parse_berry(text, project, manifest)
    return _parse_v1(text, project, manifest)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        try:
            value = json.loads(token)
        except ValueError:
            return token[1:-1]
        return value if isinstance(value, str) else token[1:-1]
    return token


def _real_name(spec_name: str, rng: str | None) -> tuple[str, str | None]:
    """(real name, alias) of a descriptor: `alias@npm:real@range` names `real`."""
    if rng and rng.startswith("npm:"):
        inner_name, inner_range = split_spec(rng[4:])
        if inner_range is not None and inner_name:
            return inner_name, spec_name if inner_name != spec_name else None
    return spec_name, None


def _lookup(index: dict[str, str], name: str, rng: str) -> str | None:
    found = index.get(f"{name}@{rng}")
    if found is None and ":" not in rng:
        found = index.get(f"{name}@npm:{rng}")  # berry: a plain range means the npm: protocol
    return found


class _Entry:
    __slots__ = ("blocks", "fields", "line", "specs")

    def __init__(self, specs: list[str], line: int) -> None:
        self.specs = specs
        self.line = line
        self.fields: dict[str, str] = {}
        self.blocks: dict[str, list[tuple[str, str]]] = {}


def _key_value(body: str) -> tuple[str, str]:
    tokens = _TOKEN.findall(body)
    key = _unquote(tokens[0]) if tokens else ""
    value = _unquote(tokens[1]) if len(tokens) > 1 else ""
    return key, value


def _read_v1(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    current: _Entry | None = None
    block: list[tuple[str, str]] | None = None
    field_indent = -1
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        body = line.lstrip(" \t")
        if not body or body.startswith("#"):
            continue
        body = body.rstrip()
        indent = len(line) - len(line.lstrip(" \t"))
        if indent == 0:
            if not body.endswith(":"):
                raise LockfileError(
                    f"yarn.lock line {lineno}: expected an entry header ending in ':'", lineno
                )
            specs = [_unquote(s.strip()) for s in _HEADER_SPEC.findall(body[:-1])]
            specs = [s for s in specs if s]
            if not specs:
                raise LockfileError(f"yarn.lock line {lineno}: empty entry header", lineno)
            current = _Entry(specs, lineno)
            entries.append(current)
            block, field_indent = None, -1
            continue
        if current is None:
            raise LockfileError(
                f"yarn.lock line {lineno}: indented line outside of an entry", lineno
            )
        if field_indent < 0:
            field_indent = indent
        if indent <= field_indent:
            if body.endswith(":") and len(_TOKEN.findall(body[:-1])) == 1:
                block = current.blocks.setdefault(_unquote(body[:-1].strip()), [])
            else:
                block = None
                key, value = _key_value(body)
                current.fields[key] = value
        elif block is not None:
            block.append(_key_value(body))
        else:
            raise LockfileError(f"yarn.lock line {lineno}: unexpected indentation", lineno)
    return entries


def _v1_version(entry: _Entry, ranges: list[str]) -> str:
    version = entry.fields.get("version", "")
    resolved = entry.fields.get("resolved")
    if resolved:
        base = resolved.split("#", 1)[0]
        registry_like = (
            base.startswith(("http://", "https://"))
            and (base.endswith(".tgz") or "/-/" in base)
            and "codeload.github.com" not in base
        )
        return clean_semver(version) if registry_like else ""
    for rng in ranges:
        if rng.startswith(_NON_REGISTRY_RANGE) or ("/" in rng and not rng.startswith("npm:")):
            return ""
    return clean_semver(version)


def _parse_v1(text: str, project: str, manifest: dict | None) -> LockGraph:
    graph = LockGraph(format="yarn v1")
    entries = _read_v1(text)
    index: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for entry in entries:
        key = entry.specs[0]
        if key in graph.nodes:
            graph.warnings.append(f"line {entry.line}: duplicate entry {key!r} ignored")
            continue
        spec_name, rng = split_spec(key)
        real, alias = _real_name(spec_name, rng)
        ranges = [split_spec(s)[1] or "" for s in entry.specs]
        graph.add_node(
            LockNode(
                key=key,
                name=real,
                version=_v1_version(entry, ranges),
                line=entry.line,
                alias=alias,
            )
        )
        for spec in entry.specs:
            index.setdefault(spec, key)
            by_name.setdefault(split_spec(spec)[0], []).append(key)
        deps = entry.blocks.get("dependencies", []) + entry.blocks.get("optionalDependencies", [])
        graph.edges[key] = [f"{n}@{r}" for n, r in deps]  # specs: resolved once all are indexed
    for key, specs in list(graph.edges.items()):
        resolved = [index[s] for s in specs if s in index and index[s] != key]
        graph.edges[key] = list(dict.fromkeys(resolved))

    name = project_name((manifest or {}).get("name"), project)
    direct: list[str] = []
    if manifest is not None:
        for dep, spec in manifest_deps(manifest, DEP_GROUPS):
            found = index.get(f"{dep}@{spec}")
            if found is None and len(set(by_name.get(dep, ()))) == 1:
                found = by_name[dep][0]
            if found is not None:
                direct.append(found)
    referenced = {c for children in graph.edges.values() for c in children} | set(direct)
    leftover = [key for key in graph.nodes if key not in referenced]
    if manifest is None:
        graph.add_root(name, leftover)
    elif leftover and isinstance(manifest.get("workspaces"), (list, dict)):
        graph.add_root(name, direct)
        graph.add_root("(workspaces)", leftover)
    else:
        graph.add_root(name, direct + leftover)
    return graph


def _berry_version(ref: str) -> str:
    if ref.startswith("npm:"):
        return clean_semver(ref[4:])
    if ref.startswith("patch:"):
        m = _PATCH_VERSION.search(ref)
        if m:
            return clean_semver(m.group(1) or m.group(2))
    return ""


def _parse_berry(text: str, project: str, manifest: dict | None) -> LockGraph:
    doc = load_yaml(text, "yarn.lock")
    if not isinstance(doc, dict):
        raise LockfileError(
            f"yarn.lock (berry): expected a mapping at the top level, got {type(doc).__name__}"
        )
    meta = doc.get("__metadata")
    if not isinstance(meta, dict):
        raise LockfileError("yarn.lock (berry): '__metadata' is not a mapping")
    graph = LockGraph(format=f"yarn berry (lockfile v{meta.get('version', '?')})")
    lines = yaml_key_lines(text, [""])[""]
    index: dict[str, str] = {}
    projects: list[tuple[str, dict]] = []
    workspace_keys: set[str] = set()
    for raw_key, entry in doc.items():
        if raw_key == "__metadata":
            continue
        line = lines.get(raw_key)
        if not isinstance(entry, dict):
            raise LockfileError(f"yarn.lock entry {raw_key!r} is not a mapping", line)
        resolution = entry.get("resolution")
        specs = [s.strip() for s in str(raw_key).split(",") if s.strip()]
        if not specs:
            continue
        if resolution is None:
            resolution = specs[0]
        if not isinstance(resolution, str):
            raise LockfileError(f"yarn.lock entry {raw_key!r}: 'resolution' is not a string", line)
        for field in ("dependencies", "optionalDependencies"):
            if entry.get(field) not in (None, "") and not isinstance(entry.get(field), dict):
                raise LockfileError(
                    f"yarn.lock entry {raw_key!r}: {field!r} is not a mapping", line
                )
        res_name, ref = split_spec(resolution)
        ref = ref or ""
        if ref.startswith("workspace:"):
            projects.append((res_name, entry))
            for spec in specs:
                index.setdefault(spec, "\0workspace")
                workspace_keys.add(spec)
            continue
        key = specs[0]
        spec_name = split_spec(key)[0]
        graph.add_node(
            LockNode(
                key=key,
                name=res_name,
                version=_berry_version(ref),
                line=line,
                alias=spec_name if spec_name != res_name else None,
            )
        )
        for spec in specs:
            index.setdefault(spec, key)

    def resolve(entry: dict) -> list[str]:
        out = []
        for field in ("dependencies", "optionalDependencies"):
            deps = entry.get(field)
            if not isinstance(deps, dict):
                continue
            for dep, rng in deps.items():
                found = _lookup(index, str(dep), str(rng))
                if found is not None and found in graph.nodes:
                    out.append(found)
        return list(dict.fromkeys(out))

    for raw_key, entry in doc.items():
        if raw_key == "__metadata" or not isinstance(entry, dict):
            continue
        specs = [s.strip() for s in str(raw_key).split(",") if s.strip()]
        if specs and specs[0] in graph.nodes:
            graph.edges[specs[0]] = [c for c in resolve(entry) if c != specs[0]]
    for res_name, entry in projects:
        graph.add_root(project_name(res_name, project), resolve(entry))
    if not projects:
        name = project_name((manifest or {}).get("name"), project)
        direct: list[str] = []
        if manifest is not None:
            for dep, spec in manifest_deps(manifest, DEP_GROUPS):
                found = _lookup(index, dep, spec)
                if found is not None and found in graph.nodes:
                    direct.append(found)
        else:
            referenced = {c for children in graph.edges.values() for c in children}
            direct = [key for key in graph.nodes if key not in referenced]
        graph.add_root(name, direct)
    return graph
