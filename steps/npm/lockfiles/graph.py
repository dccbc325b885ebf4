"""The common shape every lockfile parser produces: packages, who depends on whom, and where."""

from __future__ import annotations

import functools
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson


class LockfileError(Exception):
    """A lockfile could not be read. `line` is 1-based when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class LockNode:
    """One resolved package in a lockfile."""

    key: str  # unique in this lockfile: install path, yarn entry, pnpm package key ...
    name: str  # the real package name (an alias resolved to what it points at)
    version: str  # the resolved version; "" for links, git, file and tarball entries
    line: int | None = None  # 1-based line where the entry starts
    alias: str | None = None  # the name it is installed under, when that differs from `name`


@dataclass
class LockGraph:
    """A parsed lockfile. `roots` maps each project (root or workspace) to its direct deps."""

    format: str  # e.g. "package-lock v3", "yarn v1", "yarn berry", "pnpm v9", "bun"
    nodes: dict[str, LockNode] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)
    roots: dict[str, list[str]] = field(default_factory=dict)
    # Entries that were skipped or could not be fully understood (the parse still succeeded).
    warnings: list[str] = field(default_factory=list)

    def add_node(self, node: LockNode) -> None:
        self.nodes[node.key] = node
        self.edges.setdefault(node.key, [])

    def add_root(self, project: str, direct: Iterable[str]) -> str:
        """Record a project's direct deps; a name already taken gets a numbered suffix."""
        name = project or "(root)"
        n = 2
        while name in self.roots:
            name = f"{project} ({n})"
            n += 1
        self.roots[name] = list(dict.fromkeys(direct))
        return name

    def via(self, key: str) -> list[str] | None:
        """Shortest chain from a project down to the parent of `key`.

        `["app"]` means a direct dependency of project `app`; `["app", "lib@2.0.0"]` means app
        depends on lib which depends on `key` (a link, git or file entry shows its name alone).
        None when nothing reaches it (an orphan entry).
        """
        parents: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for project, direct in self.roots.items():
            for child in direct:
                if child not in parents:
                    parents[child] = f"\0{project}"
                    queue.append(child)
        while queue:
            current = queue.popleft()
            if current == key:
                break
            for child in self.edges.get(current, ()):
                if child not in parents:
                    parents[child] = current
                    queue.append(child)
        if key not in parents:
            return None
        chain: list[str] = []
        step = parents[key]
        while step is not None and not step.startswith("\0"):
            node = self.nodes.get(step)
            chain.append(
                (f"{node.name}@{node.version}" if node.version else node.name) if node else step
            )
            step = parents.get(step)
        chain.append(step[1:] if step else "")
        return list(reversed(chain))


# ---------------------------------------------------------------------------------------------
# Helpers shared by the parsers.

SEMVER_RE = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
DEP_GROUPS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
RUNTIME_GROUPS = ("dependencies", "optionalDependencies", "peerDependencies")


@functools.lru_cache(maxsize=1 << 16)
def _clean_semver(value: str) -> str:
    if SEMVER_RE.fullmatch(value):
        return value[1:] if value.startswith("v") else value
    return ""


def clean_semver(value: object) -> str:
    """`value` when it is a plain semver version (a leading `v` dropped), else ""."""
    return _clean_semver(value) if isinstance(value, str) else ""


def split_spec(spec: str) -> tuple[str, str | None]:
    """`name@rest` -> (name, rest); a scoped name keeps its leading `@`; no `@` -> (spec, None)."""
    at = spec.find("@", 1)
    if at < 0:
        return spec, None
    return spec[:at], spec[at + 1 :]


def project_name(*candidates: object) -> str:
    """The first candidate that is a non-empty string, else "(root)"."""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "(root)"


def manifest_deps(manifest: object, groups: Iterable[str] = DEP_GROUPS) -> list[tuple[str, str]]:
    """(name, spec) pairs of a package.json-like mapping, ignoring malformed groups."""
    out: list[tuple[str, str]] = []
    if not isinstance(manifest, dict):
        return out
    for group in groups:
        deps = manifest.get(group)
        if isinstance(deps, dict):
            out.extend((k, v if isinstance(v, str) else "") for k, v in deps.items())
    return out


class LineCounter:
    """1-based line numbers of offsets in `text`, asked for in increasing order (one pass)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def line_at(self, offset: int) -> int:
        if offset < self.pos:  # rare: restart from the top
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')


def json_needle(key: str) -> tuple[str, ...]:
    """The ways a JSON key may be written in a file (plain and ASCII-escaped)."""
    if not _NEEDS_ESCAPE.search(key):
        return (f'"{key}"',)
    plain = json.dumps(key, ensure_ascii=False)
    ascii_ = json.dumps(key)
    return (plain,) if plain == ascii_ else (plain, ascii_)


def find_json_key(text: str, key: str, start: int, opener: re.Pattern[str]) -> tuple[int, int]:
    """(offset of `"key"`, end of the match of `opener` after it), searching forward from `start`.

    (-1, start) when not found. `opener` matches what must follow the key (a colon and `{` for an
    object entry), so that a string value equal to the key is skipped.
    """
    for needle in json_needle(key):
        at = start
        while True:
            i = text.find(needle, at)
            if i < 0:
                break
            m = opener.match(text, i + len(needle))
            if m:
                return i, m.end()
            at = i + 1
    return -1, start


OBJECT_OPENER = re.compile(r"\s*:\s*\{")
ARRAY_OPENER = re.compile(r"\s*:\s*\[")


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 text of a lockfile (a BOM dropped); binary data or bad UTF-8 is a LockfileError."""
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise LockfileError(f"{what} contains binary data (a NUL byte): not a text lockfile", line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LockfileError(
            f"{what} is not valid UTF-8 text (bad byte at offset {exc.start})", line
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


_JSON_TOKEN = re.compile(
    r"""\s*(?:("(?:[^"\\\x00-\x1f]|\\.)*")|(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?)"""
    r"""|(true|false|null)|([{}\[\]:,]))"""
)
_LITERALS = {"true": True, "false": False, "null": None}
_MISSING = object()


class _DeepJSONError(ValueError):
    def __init__(self, message: str, text: str, pos: int) -> None:
        super().__init__(message)
        self.line = text.count("\n", 0, pos) + 1


def _loads_iterative(text: str) -> object:
    """A JSON parser without recursion, for documents nested deeper than `json` allows."""
    stack: list[list] = []  # frames: [container, pending key, state]
    root: object = _MISSING
    pos = 0
    while True:
        m = _JSON_TOKEN.match(text, pos)
        if not m:
            break
        pos = m.end()
        string, number, literal, punct = m.groups()
        top = stack[-1] if stack else None
        in_object = top is not None and isinstance(top[0], dict)
        value_slot = (
            root is _MISSING
            if top is None
            else top[2] == "value"
            if in_object
            else top[2] in ("value", "value_or_end")
        )
        produced: object = _MISSING
        if punct in ("{", "["):
            if not value_slot:
                raise _DeepJSONError(f"unexpected {punct!r}", text, pos)
            if punct == "{":
                stack.append([{}, None, "key_or_end"])
            else:
                stack.append([[], None, "value_or_end"])
            continue
        if punct in ("}", "]"):
            want = (
                ("key_or_end", "comma_or_end") if punct == "}" else ("value_or_end", "comma_or_end")
            )
            if top is None or in_object != (punct == "}") or top[2] not in want:
                raise _DeepJSONError(f"unexpected {punct!r}", text, pos)
            produced = stack.pop()[0]
        elif punct == ":":
            if not in_object or top[2] != "colon":
                raise _DeepJSONError("unexpected ':'", text, pos)
            top[2] = "value"
            continue
        elif punct == ",":
            if top is None or top[2] != "comma_or_end":
                raise _DeepJSONError("unexpected ','", text, pos)
            top[2] = "key" if in_object else "value"
            continue
        elif string is not None and in_object and top[2] in ("key_or_end", "key"):
            top[1] = json.loads(string) if "\\" in string else string[1:-1]
            top[2] = "colon"
            continue
        elif not value_slot:
            raise _DeepJSONError("unexpected value", text, pos)
        elif string is not None:
            produced = json.loads(string) if "\\" in string else string[1:-1]
        elif number is not None:
            produced = json.loads(number)
        else:
            produced = _LITERALS[literal]
        top = stack[-1] if stack else None
        if top is None:
            root = produced
        elif isinstance(top[0], dict):
            top[0][top[1]] = produced
            top[2] = "comma_or_end"
        else:
            top[0].append(produced)
            top[2] = "comma_or_end"
    if stack or root is _MISSING or text[pos:].strip():
        raise _DeepJSONError("unexpected text or end of data", text, pos)
    return root


def load_json(text: str, what: str) -> object:
    """orjson (several times faster on big lockfiles); `json` for errors and very deep nesting."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # let `json` name the problem (or cope with nesting deeper than orjson allows)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        pass
    try:
        return _loads_iterative(text)
    except _DeepJSONError as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc}", exc.line) from None
    except (ValueError, RecursionError) as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc}") from None


def load_yaml(text: str, what: str) -> object:
    """YAML with every scalar kept as a string (libyaml when available)."""
    import yaml  # local: only the YAML lockfiles need it

    fast = fast_block_yaml(text)
    if fast is not None:
        return fast
    loader = getattr(yaml, "CBaseLoader", None) or yaml.BaseLoader
    try:
        return yaml.load(text, Loader=loader)  # BaseLoader: plain str/list/dict data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise LockfileError(
            f"{what} is not valid YAML: {exc.problem or exc.context or 'syntax error'}", line
        ) from None
    except yaml.YAMLError as exc:
        raise LockfileError(f"{what} is not valid YAML: {exc}") from None


def _yaml_key(body: str) -> str | None:
    """The key written at the start of a YAML block-mapping line (indentation removed)."""
    if body.startswith("? "):
        body = body[2:].strip()
        if body[:1] not in ("'", '"'):
            return body
    if body.startswith('"'):
        i = 1
        while i < len(body):
            c = body[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                try:
                    return json.loads(body[: i + 1])
                except ValueError:
                    return body[1:i]
            i += 1
        return None
    if body.startswith("'"):
        i = 1
        while i < len(body):
            if body[i] == "'":
                if body[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return body[1:i].replace("''", "'")
            i += 1
        return None
    sep = body.find(": ")
    if sep < 0:
        sep = body.find(":\t")
    if sep >= 0:
        return body[:sep].rstrip()
    if body.endswith(":"):
        return body[:-1].rstrip()
    return None


def yaml_key_lines(text: str, sections: Iterable[str]) -> dict[str, dict[str, int]]:
    """Line numbers of the keys of a YAML document's block mappings, without a YAML parser.

    For each name in `sections` (top-level keys), the keys one level below it; "" stands for the
    top-level keys themselves. Good enough for lockfiles, which are machine-written block YAML.
    """
    wanted = set(sections)
    out: dict[str, dict[str, int]] = {name: {} for name in wanted}
    top = out.get("")
    current: dict[str, int] | None = None
    child_indent = -1
    for lineno, raw in enumerate(text.split("\n"), 1):
        body = raw.lstrip(" ")
        if not body or body.startswith("#") or body.isspace():
            continue
        indent = len(raw) - len(body)
        body = body.rstrip("\r")
        if indent == 0:
            key = _yaml_key(body)
            if key is None:
                current = None
                continue
            if top is not None:
                top.setdefault(key, lineno)
            current = out.get(key) if key != "" else None
            child_indent = -1
            continue
        if current is None:
            continue
        if child_indent < 0:
            child_indent = indent
        if indent == child_indent:
            key = _yaml_key(body)
            if key is not None:
                current.setdefault(key, lineno)
    return out


# A fast reader for the block-YAML subset that pnpm and yarn berry write. Anything outside that
# subset makes it give up (None) and the caller falls back on PyYAML, so it never has to be
# complete; where it answers, it answers like yaml.BaseLoader (every scalar a str, null as "").
class _NotSimple(Exception):
    pass


_PLAIN_BAD_START = frozenset("@`%[]{},?!&*|>'\"#:")


def _scalar(raw: str) -> str:
    raw = raw.strip()
    if not raw:
        return ""
    c = raw[0]
    if c == '"':
        if len(raw) < 2 or raw[-1] != '"':
            raise _NotSimple
        try:
            value = json.loads(raw)
        except ValueError:
            raise _NotSimple from None
        if not isinstance(value, str):
            raise _NotSimple
        return value
    if c == "'":
        inner = raw[1:-1]
        if len(raw) < 2 or raw[-1] != "'" or inner.replace("''", "").count("'"):
            raise _NotSimple
        return inner.replace("''", "'")
    if c in _PLAIN_BAD_START or raw.startswith(("- ", ": ", "---", "...")) or raw == "-":
        raise _NotSimple
    if " #" in raw or "\t" in raw or ": " in raw or raw.endswith(":"):
        raise _NotSimple
    return raw


def _split_key(body: str) -> tuple[str, str]:
    """(key, rest after the colon) of a block-mapping line."""
    if body[0] in "\"'":
        quote = body[0]
        i = 1
        while i < len(body):
            ch = body[i]
            if quote == '"' and ch == "\\":
                i += 2
                continue
            if ch == quote:
                if quote == "'" and body[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                break
            i += 1
        else:
            raise _NotSimple
        key = _scalar(body[: i + 1])
        rest = body[i + 1 :].lstrip(" ")
        if not rest.startswith(":") or (len(rest) > 1 and rest[1] != " "):
            raise _NotSimple
        return key, rest[1:].strip()
    sep = body.find(": ")
    if sep < 0:
        if not body.endswith(":"):
            raise _NotSimple
        sep = len(body) - 1
    key = body[:sep]
    if not key.strip():
        raise _NotSimple
    return _scalar(key), body[sep + 2 :].strip()


def _flow_mapping(raw: str) -> dict:
    """A one-line flow mapping of scalars: `{a: 1, b: 'x, y'}`."""
    out: dict = {}
    items: list[str] = []
    start, quote, i, inner = 0, "", 0, raw[1:-1]
    while i < len(inner):
        ch = inner[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{}[]":
            raise _NotSimple
        elif ch == ",":
            items.append(inner[start:i])
            start = i + 1
        i += 1
    if quote:
        raise _NotSimple
    items.append(inner[start:])
    if len(items) == 1 and not items[0].strip():
        return out
    for item in items:
        item = item.strip()
        if not item or item[0] in "\"'":
            raise _NotSimple  # quoted keys (or empty items) in flow mappings: leave to PyYAML
        sep = item.find(": ")
        if sep < 0:
            raise _NotSimple
        out[_scalar(item[:sep])] = _scalar(item[sep + 2 :])
    return out


def fast_block_yaml(text: str) -> object | None:
    """The document as yaml.BaseLoader would build it, or None when it is not simple enough."""
    try:
        return _fast_block_yaml(text)
    except (_NotSimple, IndexError):
        return None


def _fast_block_yaml(text: str) -> object:
    root: dict = {}
    # stack of (indent of the container's entries, container)
    stack: list[tuple[int, dict | list]] = [(0, root)]
    pending: tuple[int, dict, str] | None = None  # a key whose value starts on the next line
    for raw in text.split("\n"):
        line = raw.rstrip("\r").rstrip(" ")
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        if "\t" in line[: len(line) - len(body) + 1] or body.startswith(("---", "...", "%")):
            raise _NotSimple
        indent = len(line) - len(body)
        is_item = body == "-" or body.startswith("- ")
        if pending is not None:
            p_indent, p_parent, p_key = pending
            pending = None
            if indent > p_indent or (is_item and indent == p_indent):
                container: dict | list = [] if is_item else {}
                p_parent[p_key] = container
                stack.append((indent, container))
            else:
                p_parent[p_key] = ""
        while stack and indent < stack[-1][0]:
            stack.pop()
        if not stack or indent != stack[-1][0]:
            raise _NotSimple
        container = stack[-1][1]
        if is_item:
            if not isinstance(container, list):
                raise _NotSimple
            value = body[1:].strip()
            if value.startswith(("{", "[")) or (": " in value) or value.endswith(":"):
                raise _NotSimple
            container.append(_scalar(value))
            continue
        if not isinstance(container, dict):
            raise _NotSimple
        key, rest = _split_key(body)
        if not rest:
            pending = (indent, container, key)
            container[key] = ""
        elif rest[0] == "{":
            if not rest.endswith("}") or "{" in rest[1:]:
                raise _NotSimple
            container[key] = _flow_mapping(rest)
        elif rest[0] == "[":
            if rest != "[]":
                raise _NotSimple
            container[key] = []
        else:
            container[key] = _scalar(rest)
    return root if root else None
