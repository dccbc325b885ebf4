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
    check_tarball,
    clean_semver,
    load_yaml,
    manifest_deps,
    project_name,
    split_spec,
    universal_newlines,
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
_QUOTED_ONLY = re.compile(_QUOTED + r"\Z")
# C0 controls but tab and line ends, and DEL: yarn's tokenizer has no token for them
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse(text: str, *, project: str, manifest: dict | None) -> LockGraph:
    # yarn ends a line at \r, \r\n or \n alike (a classic-Mac file is not one long comment)
    text = universal_newlines(text)
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


def _checked(token: str, line: str, lineno: int) -> str:
    """A token's text, unquoted; a quote that is never closed is an error (yarn refuses it)."""
    if token[:1] != '"':
        return token
    if len(token) >= 2 and token[-1] == '"' and "\\" not in token:
        return token[1:-1]  # the common case: nothing to decode
    if not _QUOTED_ONLY.match(token):
        column = line.find(token) + 1
        raise LockfileError(
            f"yarn.lock line {lineno}: a quoted string is not closed", lineno, column or None
        )
    return _unquote(token)


def _key_value(body: str, line: str, lineno: int) -> tuple[str, str]:
    tokens = _TOKEN.findall(body)
    key = _checked(tokens[0], line, lineno) if tokens else ""
    value = _checked(tokens[1], line, lineno) if len(tokens) > 1 else ""
    return key, value


def _refuse_controls(text: str) -> None:
    control = _CONTROL.search(text)
    if control:
        lineno = text.count("\n", 0, control.start()) + 1
        column = control.start() - text.rfind("\n", 0, control.start())
        raise LockfileError(
            f"yarn.lock:{lineno}:{column}: control character U+{ord(control.group(0)):04X} "
            "(yarn never writes one)",
            lineno,
            column,
        )


def _read_v1(text: str) -> list[_Entry]:
    _refuse_controls(text)
    entries: list[_Entry] = []
    current: _Entry | None = None
    block: list[tuple[str, str]] | None = None
    block_keys: set[str] = set()
    field_indent = -1
    for lineno, line in enumerate(text.split("\n"), 1):
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
            specs = [_checked(s.strip(), line, lineno) for s in _HEADER_SPEC.findall(body[:-1])]
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
            value = ""
            if body.endswith(":") and len(_TOKEN.findall(body[:-1])) == 1:
                key = _checked(body[:-1].strip(), line, lineno)
                block, block_keys = [], set()
            else:
                block = None
                key, value = _key_value(body, line, lineno)
            if key in current.fields or key in current.blocks:
                raise LockfileError(
                    f"yarn.lock line {lineno}: {key!r} is written twice in the entry of line "
                    f"{current.line} (the last one would hide the first)",
                    lineno,
                )
            if block is None:
                current.fields[key] = value
            else:
                current.blocks[key] = block
        elif block is not None:
            pair = _key_value(body, line, lineno)
            if pair[0] in block_keys:
                raise LockfileError(
                    f"yarn.lock line {lineno}: {pair[0]!r} is written twice in one block", lineno
                )
            block_keys.add(pair[0])
            block.append(pair)
        else:
            raise LockfileError(f"yarn.lock line {lineno}: unexpected indentation", lineno)
    return entries


def _v1_version(entry: _Entry, ranges: list[str], name: str) -> str:
    """The version an entry installs: its `version`, checked against the registry tarball its
    `resolved` URL downloads (what yarn fetches); "" for git, file and link entries."""
    version = entry.fields.get("version", "")
    resolved = entry.fields.get("resolved")
    if resolved:
        base = resolved.split("#", 1)[0]
        registry_like = (
            base.startswith(("http://", "https://"))
            and (base.endswith(".tgz") or "/-/" in base)
            and "codeload.github.com" not in base
        )
        found = clean_semver(version) if registry_like else ""
        return check_tarball(name, found, resolved, f"yarn.lock line {entry.line}", entry.line)
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
        for spec in entry.specs:
            if spec in index:
                raise LockfileError(
                    f"yarn.lock line {entry.line}: {spec!r} already has the entry of line "
                    f"{graph.nodes[index[spec]].line} (yarn writes each spec once)",
                    entry.line,
                )
        spec_name, rng = split_spec(key)
        real, alias = _real_name(spec_name, rng)
        ranges = [split_spec(s)[1] or "" for s in entry.specs]
        graph.add_node(
            LockNode(
                key=key,
                name=real,
                version=_v1_version(entry, ranges, real),
                line=entry.line,
                alias=alias,
            )
        )
        for spec in entry.specs:
            index[spec] = key
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


def _berry_version(name: str, ref: str, line: int | None) -> str:
    """The version a berry resolution (`npm:1.0.0`, a patch of one, a tarball URL) installs."""
    if ref.startswith("npm:"):
        return clean_semver(ref[4:])
    if ref.startswith("patch:"):
        m = _PATCH_VERSION.search(ref)
        if m:
            return clean_semver(m.group(1) or m.group(2))
    if ref.startswith(("http:", "https:")):  # a registry tarball still names what it installs
        return check_tarball(name, "", ref, f"yarn.lock resolution {name}@{ref}", line)
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
        for spec in specs:
            if spec in index:
                raise LockfileError(
                    f"yarn.lock: {spec!r} is in two entries (yarn writes each descriptor once)",
                    line,
                )
        res_name, ref = split_spec(resolution)
        ref = ref or ""
        if ref.startswith("workspace:"):
            projects.append((res_name, entry))
            for spec in specs:
                index[spec] = "\0workspace"
                workspace_keys.add(spec)
            continue
        key = specs[0]
        spec_name = split_spec(key)[0]
        graph.add_node(
            LockNode(
                key=key,
                name=res_name,
                version=_berry_version(res_name, ref, line),
                line=line,
                alias=spec_name if spec_name != res_name else None,
            )
        )
        for spec in specs:
            index[spec] = key

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
