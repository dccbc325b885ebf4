"""The common shape every lockfile parser produces: packages, who depends on whom, and where."""

from __future__ import annotations

import functools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson


class LockfileError(Exception):
    """A lockfile could not be read. `line` and `column` are 1-based when known."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


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
        return self._chain(self._parents(until=key), key)

    def paths(self) -> Callable[[str], list[str] | None]:
        """`via` for many keys at the cost of one: the breadth-first search from the projects
        runs once, to the end, instead of once per key (a lockfile that resolved thousands of a
        worm's versions would otherwise cost thousands of searches of the whole graph). Each
        entry gets the parent `via` gives it: the first that reaches it, in the same order."""
        parents = self._parents(until=None)
        return lambda key: self._chain(parents, key)

    def _parents(self, until: str | None) -> dict[str, str | None]:
        """Breadth-first parents from the projects (a project is `"\0name"`), stopping once
        `until` is taken off the queue."""
        parents: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for project, direct in self.roots.items():
            for child in direct:
                if child not in parents:
                    parents[child] = f"\0{project}"
                    queue.append(child)
        while queue:
            current = queue.popleft()
            if current == until:
                break
            for child in self.edges.get(current, ()):
                if child not in parents:
                    parents[child] = current
                    queue.append(child)
        return parents

    def _chain(self, parents: dict[str, str | None], key: str) -> list[str] | None:
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


def registry_tarball(url: object) -> tuple[str, str] | None:
    """(name, version) that a registry tarball URL downloads, read from its path.

    The path shape decides, on any http(s) host (custom registries, mirrors, verdaccio):
    `…/<name>/-/<base>-<version>.tgz` with `<name>` scoped or not, percent-encoded or not, and
    `<base>` its last part (or the whole name, as GitLab's registry writes it). None for
    anything else: git, file and link specs, codeload archives, other URL shapes.
    """
    if not isinstance(url, str) or not url[:8].lower().startswith(("https://", "http://")):
        return None
    path = url.split("#", 1)[0].split("?", 1)[0]
    if not path.endswith(".tgz"):
        return None
    cut = path.rfind("/-/")
    if cut < 0:
        return None
    segments = unquote(path[:cut]).split("/")
    if len(segments) < 4 or not segments[-1]:  # scheme, "", host, then the name
        return None
    name = segments[-1]
    if len(segments) >= 5 and segments[-2].startswith("@") and len(segments[-2]) > 1:
        name = f"{segments[-2]}/{name}"
    file = unquote(path[cut + 3 : -4])
    for prefix in (name.rpartition("/")[2] + "-", name + "-"):
        if file.startswith(prefix):
            version = clean_semver(file[len(prefix) :])
            if version:
                return name, version
    return None


def check_tarball(name: str, version: str, url: object, where: str, line: int | None) -> str:
    """The version an entry installs, checked against the registry tarball it downloads.

    Package managers download `resolved`/`tarball` and ignore the version field beside it, so a
    tarball URL naming another version (or package) is a resolution of its own: that is a
    LockfileError ("version and tarball disagree"). An entry with no version of its own gets the
    tarball's. `version` is returned as it is when the URL is not a registry tarball.
    """
    if version and isinstance(url, str):
        end = url.find("#")
        tail = f"/{name}/-/{name.rpartition('/')[2]}-{version}.tgz"
        if url.endswith(tail, 0, end if end >= 0 else len(url)) and (
            name[:1] == "@" or ("@" not in url and "%" not in url)  # `%40scope/name` is scoped
        ):
            return version  # the common case, decided without taking the URL apart
    found = registry_tarball(url)
    if found is None:
        return version
    url_name, url_version = found
    if url_name == name:
        if not version:
            return url_version
        if version.split("+", 1)[0] == url_version.split("+", 1)[0]:
            return version
    said = f"{name}@{version}" if version else f"{name} (no version)"
    raise LockfileError(
        f"{where}: the lockfile says {said} but downloads {url_name}@{url_version} "
        "(version and tarball disagree)",
        line,
    )


_CR_LINE_END = re.compile(r"\r\n?")


def universal_newlines(text: str) -> str:
    """`text` with every `\\r\\n` and lone `\\r` made `\\n`: yarn and YAML end lines at all
    three, so that is how lines are split and counted."""
    return _CR_LINE_END.sub("\n", text) if "\r" in text else text


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


def json_string_token(token: str) -> str:
    """The value of a JSON string token (quotes included); its inside as written when it does
    not decode to a string."""
    if "\\" not in token:
        return token[1:-1]
    try:
        value = json.loads(token)
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


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


# Byte-order marks, longest first: UTF-32 LE starts like UTF-16 LE.
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)


def text_encoding(data: bytes) -> tuple[str, int]:
    """(codec, length of its byte-order mark) of a JSON or YAML text.

    UTF-8 unless a UTF-16/32 BOM says otherwise, or the zero bytes of a BOM-less UTF-16/32 text
    that starts with an ASCII character (how RFC 4627 tells JSON encodings apart).
    """
    head = data[:4]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    if len(head) == 4 and 0 in head and head != b"\0\0\0\0":
        if head[:3] == b"\0\0\0":
            return "utf-32-be", 0
        if head[1:] == b"\0\0\0":
            return "utf-32-le", 0
        if head[0] == 0 and head[2] == 0 and head[1] and head[3]:
            return "utf-16-be", 0
        if head[1] == 0 and head[3] == 0 and head[0] and head[2]:
            return "utf-16-le", 0
    return "utf-8", 0


def utf8_bytes(data: bytes) -> bytes:
    """`data` as UTF-8 bytes for byte-level filters: UTF-16/32 text is re-encoded (bad code units
    replaced), anything else is returned as it is, without a copy. Newlines stay where they were,
    so line numbers agree with `decode_text`."""
    codec, skip = text_encoding(data)
    if codec == "utf-8":
        return data
    return data[skip:].decode(codec, "replace").encode("utf-8", "surrogatepass")


def decode_text(data: bytes, what: str) -> str:
    """The text of a lockfile or manifest: UTF-8, or UTF-16/32 when a BOM (or the zero bytes of a
    BOM-less text) says so; a BOM is dropped. Binary data or bad code units are a LockfileError."""
    codec, skip = text_encoding(data)
    if codec != "utf-8":
        try:
            text = data[skip:].decode(codec)
        except UnicodeDecodeError as exc:
            line = data[skip : skip + exc.start].decode(codec, "replace").count("\n") + 1
            raise LockfileError(
                f"{what} is not valid {codec.upper()} text (bad bytes at offset "
                f"{skip + exc.start})",
                line,
            ) from None
        if "\0" in text:
            line = text.count("\n", 0, text.index("\0")) + 1
            raise LockfileError(
                f"{what} contains binary data (a NUL character): not a text file", line
            )
        return text
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


# A JSON string, matched in linear time and constant memory whatever its length: possessive
# repeats, so the regex engine keeps no backtracking state per character (the plain
# `"(?:[^"\\]|\\.)*"` costs about 120 bytes per character of a long string).
JSON_STRING = r'"[^"\\\x00-\x1f]*+(?:\\.[^"\\\x00-\x1f]*+)*+"'
_JSON_TOKEN = re.compile(
    rf"""\s*+(?:({JSON_STRING})|(-?(?:0|[1-9]\d*+)(?:\.\d++)?(?:[eE][-+]?\d++)?)"""
    r"""|(true|false|null)|([{}\[\]:,]))"""
)
_CONSTANT = re.compile(r"-?Infinity|NaN")
MAX_JSON_DEPTH = 10_000  # real lockfiles nest a few dozen levels; npm v1 trees a few hundred
_LITERALS = {"true": True, "false": False, "null": None}
_MISSING = object()


class _DeepJSONError(ValueError):
    def __init__(self, message: str, text: str, pos: int) -> None:
        super().__init__(message)
        self.line = text.count("\n", 0, pos) + 1
        self.column = pos - text.rfind("\n", 0, pos)


class _TooDeep(_DeepJSONError):
    pass


def _loads_iterative(text: str) -> object:
    """A JSON parser without recursion, for documents nested deeper than `json` allows (up to
    MAX_JSON_DEPTH levels: deeper is refused, so a file of brackets cannot exhaust memory)."""
    stack: list[list] = []  # frames: [container, pending key, state]
    root: object = _MISSING
    pos = 0
    while True:
        m = _JSON_TOKEN.match(text, pos)
        if not m:
            break
        start = m.start(m.lastindex or 0)
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
                raise _DeepJSONError(f"unexpected {punct!r}", text, start)
            if len(stack) >= MAX_JSON_DEPTH:
                raise _TooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep", text, start)
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
                raise _DeepJSONError(f"unexpected {punct!r}", text, start)
            produced = stack.pop()[0]
        elif punct == ":":
            if not in_object or top[2] != "colon":
                raise _DeepJSONError("unexpected ':'", text, start)
            top[2] = "value"
            continue
        elif punct == ",":
            if top is None or top[2] != "comma_or_end":
                raise _DeepJSONError("unexpected ','", text, start)
            top[2] = "key" if in_object else "value"
            continue
        elif string is not None and in_object and top[2] in ("key_or_end", "key"):
            top[1] = json.loads(string) if "\\" in string else string[1:-1]
            top[2] = "colon"
            continue
        elif not value_slot:
            raise _DeepJSONError("unexpected value", text, start)
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
        at = pos + len(text[pos:]) - len(text[pos:].lstrip())
        constant = _CONSTANT.match(text, at)
        what = (
            "unexpected end of data"
            if at >= len(text)
            else f"{constant.group(0)} is not a JSON value"
            if constant
            else "unexpected text"
        )
        raise _DeepJSONError(what, text, at)
    return root


class _NotJSONConstant(ValueError):
    """NaN, Infinity and -Infinity: Python's `json` accepts them, JSON (and npm) does not."""


def _refuse_constant(name: str) -> object:
    raise _NotJSONConstant(name)


def load_json(text: str, what: str) -> object:
    """orjson (several times faster on big lockfiles); `json` for errors and very deep nesting.

    Everything JSON forbids is refused (NaN and Infinity included), and so is nesting deeper than
    MAX_JSON_DEPTH levels; the LockfileError has the line and column.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # let `json` name the problem (or cope with nesting deeper than orjson allows)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except (RecursionError, _NotJSONConstant):
        pass  # the iterative parser nests without recursion and says where a NaN is
    try:
        return _loads_iterative(text)
    except _TooDeep as exc:
        raise LockfileError(f"{what} is {exc}", exc.line, exc.column) from None
    except _DeepJSONError as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc}", exc.line, exc.column) from None
    except (ValueError, RecursionError) as exc:
        raise LockfileError(f"{what} is not valid JSON: {exc}") from None


class _RepeatedKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _RepeatedKey
    return out


_KEY_TOKEN = re.compile(JSON_STRING + r"|[{}\[\],:]")


def keys_may_repeat(text: str | bytes, doc: object) -> bool:
    """False when no object of the JSON `text` (str or UTF-8 bytes) holds a key twice; True
    when one may. `doc` is what `load_json` built from `text`.

    It counts the colons of the text and of orjson's re-serialization of `doc`: one per key,
    plus those inside strings, which both spell alike unless the text uses `\\u` escapes (then
    it answers True). A key written twice is a colon the re-serialization lacks. Two byte
    counts and one `orjson.dumps`, no second parse.
    """
    if isinstance(text, bytes):
        if b"\\" in text and b"\\u" in text:
            return True
        written = text.count(b":")
    else:
        if "\\" in text and "\\u" in text:
            return True
        written = text.count(":")
    try:
        dumped = orjson.dumps(doc).count(b":")
    except (orjson.JSONEncodeError, TypeError):  # past orjson's depth, or a huge integer
        return True
    return written != dumped


def check_unique_keys(text: str, doc: object, what: str) -> None:
    """Raise LockfileError (with the line and column) when an object of the JSON `text` holds a
    key twice: every parser keeps the last one, so an entry written first disappears. No
    package manager writes that. `doc` is what `load_json` built from `text`; the text is only
    parsed again when `keys_may_repeat` cannot rule a repeat out.
    """
    if not keys_may_repeat(text, doc):
        return
    try:
        json.loads(text, object_pairs_hook=_unique_pairs)
        return
    except _RepeatedKey:
        pass
    except (ValueError, RecursionError):
        pass  # too deep for `json`: the tokenizer below decides
    found = _repeated_key(text)
    if found is not None:
        key, at = found
        line = text.count("\n", 0, at) + 1
        column = at - text.rfind("\n", 0, at)
        raise LockfileError(
            f"{what}: key {key!r} is written twice in one object (the last one would hide the "
            "first; no package manager writes that)",
            line,
            column,
        )


def _repeated_key(text: str) -> tuple[str, int] | None:
    """The first key written twice in one object, and its offset (the second time)."""
    stack: list[set[str] | None] = []  # the keys of each open object; None for an array
    expect_key = False
    for m in _KEY_TOKEN.finditer(text):
        token = m.group(0)
        c = token[0]
        if c == '"':
            keys = stack[-1] if stack else None
            if expect_key and keys is not None:
                key = json.loads(token) if "\\" in token else token[1:-1]
                if key in keys:
                    return key, m.start()
                keys.add(key)
            expect_key = False
        elif c == "{":
            stack.append(set())
            expect_key = True
        elif c == "[":
            stack.append(None)
            expect_key = False
        elif c in "}]":
            if stack:
                stack.pop()
            expect_key = False
        elif c == ",":
            expect_key = bool(stack) and stack[-1] is not None
        else:
            expect_key = False
    return None


# What YAML forbids in a stream (PyYAML's and libyaml's reader): C0 controls but tab and line
# ends, DEL, C1 controls but NEL, surrogates, U+FFFE and U+FFFF.
_YAML_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def load_yaml(text: str, what: str, line_offset: int = 0) -> object:
    """One YAML document with every scalar kept as a string, as `yaml.BaseLoader` builds it.

    Block YAML as lockfiles write it goes through `fast_block_yaml`; anything else is built from
    libyaml's events. Anchors and aliases are refused as soon as the parser meets one, before
    anything is built: lockfiles never use them, and nested aliases are how a kilobyte of YAML
    expands into gigabytes ("billion laughs"). `line_offset` is added to the lines of errors (the
    document's place in a multi-document file). Control characters YAML forbids are refused
    (as PyYAML refuses them), and so is a mapping key written twice (every YAML reader keeps the
    last one, so an entry written first would disappear; no lockfile writer does that).
    """
    bad = _YAML_NON_PRINTABLE.search(text)
    if bad:
        at = bad.start()
        line = text.count("\n", 0, at) + 1 + line_offset
        column = at - text.rfind("\n", 0, at)
        raise LockfileError(
            f"{what}:{line}:{column}: control character U+{ord(bad.group(0)):04X} is not "
            "allowed in YAML",
            line,
            column,
        )
    fast = fast_block_yaml(text)
    if fast is not None:
        return fast
    import yaml  # local: only the YAML lockfiles need it

    try:
        return compose_yaml(text, what, line_offset)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise LockfileError(
            f"{what} is not valid YAML: {exc.problem or exc.context or 'syntax error'}",
            line,
            column,
        ) from None
    except yaml.YAMLError as exc:
        raise LockfileError(f"{what} is not valid YAML: {exc}") from None
    except RecursionError:
        raise LockfileError(f"{what} is nested too deeply to read") from None


def compose_yaml(text: str, what: str, line_offset: int = 0) -> object:
    """The single document of `text` built from libyaml's events, as `yaml.BaseLoader` builds it
    (dicts, lists, every scalar a string); raises LockfileError at the first anchor or alias,
    yaml.YAMLError on a syntax error."""
    import yaml

    loader_class = getattr(yaml, "CBaseLoader", None) or yaml.BaseLoader
    loader = loader_class(text)
    root: object = None
    stack: list[list] = []  # frames: [container, pending key or _MISSING]
    started = False
    try:
        while loader.check_event():
            event = loader.get_event()
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                mark = event.start_mark
                line, column = mark.line + 1 + line_offset, mark.column + 1
                kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
                sign = "*" if kind == "alias" else "&"
                raise LockfileError(
                    f"{what}:{line}:{column}: YAML {kind} '{sign}{anchor}' refused (lockfiles "
                    "never use anchors or aliases, and nested aliases can expand without bound)",
                    line,
                    column,
                )
            if isinstance(event, yaml.DocumentStartEvent):
                if started:  # the caller splits the documents it knows how to read
                    mark = event.start_mark
                    raise LockfileError(
                        f"{what} holds more than one YAML document (another starts here)",
                        mark.line + 1 + line_offset,
                        mark.column + 1,
                    )
                started = True
                continue
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) >= MAX_JSON_DEPTH:
                    mark = event.start_mark
                    raise LockfileError(
                        f"{what} is nested more than {MAX_JSON_DEPTH} levels deep",
                        mark.line + 1 + line_offset,
                        mark.column + 1,
                    )
                container: dict | list = {} if isinstance(event, yaml.MappingStartEvent) else []
                stack.append([container, _MISSING])
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                value: object = stack.pop()[0]
            elif isinstance(event, yaml.ScalarEvent):
                value = event.value
            else:
                continue  # stream and document ends
            if not stack:
                root = value
                continue
            frame = stack[-1]
            if isinstance(frame[0], list):
                frame[0].append(value)
            elif frame[1] is _MISSING:
                mark = event.start_mark
                if not isinstance(value, str):
                    raise LockfileError(
                        f"{what}: a mapping or sequence used as a key",
                        mark.line + 1 + line_offset,
                        mark.column + 1,
                    )
                if value in frame[0]:
                    line, column = mark.line + 1 + line_offset, mark.column + 1
                    raise LockfileError(
                        f"{what}:{line}:{column}: key {value!r} is written twice in one mapping "
                        "(the last one would hide the first; no lockfile writer does that)",
                        line,
                        column,
                    )
                frame[1] = value
            else:
                frame[0][frame[1]] = value
                frame[1] = _MISSING
    finally:
        loader.dispose()
    return root


_DOCUMENT_MARKER = re.compile(r"^(?:---|\.\.\.)(?:[ \t\r]|$)", re.MULTILINE)


def yaml_documents(text: str) -> list[tuple[int, str]]:
    """(line offset, text) of each document of a YAML stream that holds something.

    Split at `---` and `...` lines (at column 0 they always mark documents, even inside block
    scalars). A bare marker line is blanked, so that each document reads as plain block YAML and
    keeps its lines; a document with directives (`%YAML`) or content on its `---` line is kept
    verbatim for the YAML parser. Comment-only documents are dropped.
    """
    if not _DOCUMENT_MARKER.search(text):
        return [(0, text)]
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    content = verbatim = False

    def close() -> None:
        if content:
            out.append((start, "\n".join(current)))

    for index, raw in enumerate(text.split("\n")):
        line = raw.rstrip("\r")
        marker = line[:3] if line[:3] in ("---", "...") and line[3:4] in ("", " ", "\t") else ""
        if marker == "---":
            if content:
                close()
                current, start, content, verbatim = [], index, False, False
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                content = verbatim = True
            current.append(raw if verbatim else "")
            continue
        if marker == "...":
            current.append(raw if verbatim else "")
            close()
            current, start, content, verbatim = [], index + 1, False, False
            continue
        body = line.strip()
        if body and not body.startswith("#"):
            if line.startswith("%") and not content:
                verbatim = True  # a directive: it belongs to the next `---`
            else:
                content = True
        current.append(raw)
    close()
    return out


def yaml_key(body: str) -> str | None:
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


def yaml_key_lines(
    text: str, sections: Iterable[str], line_offset: int = 0
) -> dict[str, dict[str, int]]:
    """Line numbers of the keys of a YAML document's block mappings, without a YAML parser.

    For each name in `sections` (top-level keys), the keys one level below it; "" stands for the
    top-level keys themselves. Good enough for lockfiles, which are machine-written block YAML.
    `line_offset` is added to every line (the document's place in a multi-document file).
    """
    wanted = set(sections)
    out: dict[str, dict[str, int]] = {name: {} for name in wanted}
    top = out.get("")
    current: dict[str, int] | None = None
    child_indent = -1
    for lineno, raw in enumerate(text.split("\n"), 1 + line_offset):
        body = raw.lstrip(" ")
        if not body or body.startswith("#") or body.isspace():
            continue
        indent = len(raw) - len(body)
        body = body.rstrip("\r")
        if indent == 0:
            key = yaml_key(body)
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
            key = yaml_key(body)
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
        key = _scalar(item[:sep])
        if key in out:
            raise _NotSimple  # a repeated key: PyYAML's composer says where
        out[key] = _scalar(item[sep + 2 :])
    return out


def fast_block_yaml(text: str) -> object | None:
    """The document as yaml.BaseLoader would build it, or None when it is not simple enough."""
    try:
        return _fast_block_yaml(text)
    except (_NotSimple, IndexError):
        return None


def _fast_block_yaml(text: str) -> object:
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        raise _NotSimple  # line breaks to PyYAML (YAML 1.1), not to a split on "\n"
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
        if key in container:
            raise _NotSimple  # a repeated key: PyYAML's composer says where
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
