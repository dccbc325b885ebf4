"""Evidence of a bad resolution in a lockfile that cannot be parsed in full.

When a lockfile is truncated, garbled or of a shape the parsers refuse, the bad versions its bytes
record must still be reported. `find_evidence` reads the text without building the document: it
never raises, runs in linear time and keeps only a handful of positions per package.

A bad package is *seen* when the text records it in a form that lockfiles use for a resolution:

- `name@version`, also `name@npm:version` and `name@npm%3Aversion` (yarn, pnpm v6+, bun,
  `npm:name@version` aliases, yarn berry resolutions and patches);
- `/name/version` (pnpm v5 keys) and a tarball path `name/-/name-version.tgz` (resolved URLs);
- a key that is exactly the name with the exact version as its value on the same line
  (`"name": "version"`, `name: version`, `name "version"`, a pnpm flow mapping
  `name: {specifier: ..., version: version}`);
- a `version` field whose entry names the package: in JSON lockfiles the object under a key
  `node_modules/.../name` (or `name` in an npm v1 tree, or with a `"name": "name"` field), in
  yarn and pnpm files the entry whose header or key names it (`name@range:`, `name:`).

Matches are exact: the name must not be part of a longer name (`axios-retry`, `@scope/axios`), the
version is read whole (`1.14.10` and `1.14.1-beta` are not `1.14.1`) and judged by the incident's
own `is_bad` (its bad versions and bad ranges). Every version of an any-version package is
evidence, so for those the name alone, as such a token, is enough.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from steps.npm.lockfiles.graph import (
    MAX_JSON_DEPTH,
    LineCounter,
    json_string_token,
    split_spec,
)

JSON_NAMES = frozenset(
    {"package-lock.json", "npm-shrinkwrap.json", ".package-lock.json", "bun.lock"}
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-")
_KEY_BEFORE = frozenset(" \t\n\r{,")
_MAX_PLACES = 5  # positions kept per package and version
_FIELDS = frozenset({"name", "version"})  # what an entry's object is judged by
_JSON_TOKEN = re.compile(r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|[{}\[\]:,]')
# Up to this many names, one alternation of them is cheap; past it, the names the text can hold
# are picked first from its tokens, so the cost follows the text, not the bad set.
FEW_NAMES = 16
# Bytes of a name part; everything else (`@`, `/`, quotes, non-ASCII...) separates tokens.
_TOKENS = bytes(c if chr(c) in _NAME_CHARS else 0x20 for c in range(256))


@dataclass(frozen=True)
class Evidence:
    """A bad package seen in the text: `version` None for an any-version package named alone."""

    name: str
    version: str | None
    lines: tuple[int, ...]  # 1-based, in file order; the first is where it was first seen


def _alternation(words: Collection[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _name_starts(text: str, i: int) -> bool:
    """Whether a package name can start at `i`: not inside a longer name or after a scope."""
    if i == 0:
        return True
    before = text[i - 1]
    if before in _NAME_CHARS or before == "@":
        return False
    if before == "/":
        k = i - 1
        limit = max(0, k - 256)
        while k > limit and text[k - 1] in _NAME_CHARS:
            k -= 1
        if k > 0 and text[k - 1] == "@":
            return False  # `@scope/name` is another package
    return True


def _version_ends(text: str, j: int) -> bool:
    """Whether a version can end at `j`: `1.14.1` is not the start of `1.14.10` or `1.14.1-rc`."""
    if j >= len(text):
        return True
    after = text[j]
    if after.isalnum() or after == "-":
        return False
    return not (after == "." and j + 1 < len(text) and text[j + 1].isalnum())


def _range_continues(text: str, j: int) -> bool:
    """Whether a range goes on after a version ending at `j` (`1.14.1 || 1.13.0`, `1.14.1 - 2`)."""
    rest = text[j : j + 8].lstrip(" \t")
    return rest.startswith("||") or (rest.startswith("- ") and text[j : j + 1] in " \t")


def _value_ends(text: str, j: int, quote: str) -> bool:
    """Whether a field value (quoted by `quote`, or plain) is exactly the version ending at `j`:
    the closing quote, or for a plain YAML value a pnpm peer suffix, the end of the line, a flow
    separator or a comment."""
    if quote:
        return text[j : j + 1] == quote
    if j >= len(text) or text[j] in "(_\r\n,}":
        return True
    rest = text[j : j + 256].split("\n", 1)[0].strip()
    return not rest or rest.startswith("#")


def _name_ends(text: str, j: int) -> bool:
    return j >= len(text) or text[j] not in _NAME_CHARS


class _Places:
    """First positions of each (name, version), as offsets or as lines."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, str | None], list[int]] = {}
        self.lines: dict[tuple[str, str | None], list[int]] = {}

    def add_offset(self, name: str, version: str | None, offset: int) -> None:
        places = self.offsets.setdefault((name, version), [])
        if len(places) < _MAX_PLACES:
            places.append(offset)

    def add_line(self, name: str, version: str | None, line: int) -> None:
        places = self.lines.setdefault((name, version), [])
        if len(places) < _MAX_PLACES:
            places.append(line)

    def result(self, text: str) -> list[Evidence]:
        found: dict[tuple[str, str | None], set[int]] = {}
        everything = sorted(
            (offset, pair) for pair, offsets in self.offsets.items() for offset in offsets
        )
        counter = LineCounter(text)
        for offset, pair in everything:
            found.setdefault(pair, set()).add(counter.line_at(offset))
        for pair, lines in self.lines.items():
            found.setdefault(pair, set()).update(lines)
        named = {name for name, version in found if version is not None}
        out = [
            Evidence(name, version, tuple(sorted(lines)[:_MAX_PLACES]))
            for (name, version), lines in found.items()
            if version is not None or name not in named  # a versioned sighting says more
        ]
        return sorted(out, key=lambda e: (e.lines[0], e.name, e.version or ""))


class BadPackages(Protocol):
    """What is bad (a `steps.npm.badset.BadSet`)."""

    names: frozenset[str]
    any_version: set[str]

    def is_bad(self, name: str, version: str) -> bool: ...


def find_evidence(file_name: str, text: str, bad: BadPackages) -> list[Evidence]:
    """Every bad package the text records, with its first lines (see the module docstring).

    Versions are read as whole semver tokens and judged by `bad.is_bad`, so bad ranges count as
    well as bad versions. With more than a few bad names, the text patterns are built only for the
    names the text holds as whole tokens (one pass over its bytes), so a set of thousands costs
    what a set of a few does."""
    places = _Places()
    any_version = set(bad.any_version)
    versioned = set(bad.names) - any_version
    if len(bad.names) > FEW_NAMES:  # the text patterns only for names the text holds
        present = _present(text, frozenset(bad.names))
        json_versioned, json_any = versioned, any_version  # judged by set lookups: all of them
        versioned, any_version = versioned & present, any_version & present
    else:
        json_versioned, json_any = versioned, any_version
    if versioned:
        _token_patterns(text, versioned, bad.is_bad, places)
        if file_name not in JSON_NAMES:
            _indented_entries(text, versioned, bad.is_bad, places)
    if any_version:
        _any_version_names(text, any_version, places)
    if file_name in JSON_NAMES:
        _json_entries(text, json_versioned, bad.is_bad, json_any, places)
    return places.result(text)


@functools.lru_cache(maxsize=8)
def _name_index(
    names: frozenset[str],
) -> tuple[dict[bytes, list[tuple[str, tuple[bytes, ...]]]], tuple[str, ...]]:
    """The names by their last part (`@ctrl/tinycolor` under `tinycolor`), and the names with
    characters a token never holds (looked for as they are)."""
    by_last: dict[bytes, list[tuple[str, tuple[bytes, ...]]]] = {}
    odd: list[str] = []
    for name in sorted(names):
        scope, slash, base = name[1:].partition("/") if name.startswith("@") else ("", "", name)
        parts = tuple(p.encode() for p in ((scope, base) if slash else (base,)))
        if not all(parts) or any(p.translate(_TOKENS) != p for p in parts):
            odd.append(name)
            continue
        by_last.setdefault(parts[-1], []).append((name, parts))
    return by_last, tuple(odd)


def _present(text: str, names: frozenset[str]) -> set[str]:
    """The names the text holds as whole tokens: every form the patterns read has a name bounded
    by characters no name holds, so no other name can be matched by them."""
    by_last, odd = _name_index(names)
    tokens = set(text.encode("utf-8", "surrogatepass").translate(_TOKENS).split())
    found = {name for name in odd if name in text}
    for last in tokens.intersection(by_last):
        for name, parts in by_last[last]:
            if len(parts) == 1 or (parts[0] in tokens and name in text):
                found.add(name)
    return found


# A whole version (possessive: `1.14.10` and `1.14.1-rc.1` are never read as `1.14.1`).
_VERSION = r"(\d++\.\d++\.\d++(?:-[0-9A-Za-z.-]++)?(?:\+[0-9A-Za-z.-]++)?)"


def _plain(version: str) -> str:
    return version.split("+", 1)[0]


def _token_patterns(
    text: str, names: set[str], is_bad: Callable[[str, str], bool], places: _Places
) -> None:
    alternation = _alternation(names)
    at_version = re.compile(rf"({alternation})@(?:npm:|npm%3A)?{_VERSION}")
    path_version = re.compile(rf"/({alternation})/{_VERSION}")
    tarballs = _alternation({f"{n}/-/{n.rsplit('/', 1)[-1]}" for n in names})
    tarball = re.compile(
        rf"({tarballs})-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)\.tgz"
    )
    key_value = re.compile(
        rf"""(["']?)({alternation})\1(?::[ \t]*+|[ \t]++)(["']?)(?:npm:)?{_VERSION}"""
    )
    flow = re.compile(
        rf"""(["']?)({alternation})\1:[ \t]*+\{{[^{{}}\n]*?\bversion:[ \t]*+(["']?){_VERSION}"""
    )
    for pattern in (at_version, path_version):
        for m in pattern.finditer(text):
            name, version = m.group(1), m.group(2)
            if (
                _name_starts(text, m.start(1))
                and _version_ends(text, m.end())
                and not _range_continues(text, m.end())
                and is_bad(name, version)
            ):
                places.add_offset(name, _plain(version), m.start())
    for m in tarball.finditer(text):
        name, version = m.group(1).split("/-/", 1)[0], m.group(2)
        if _name_starts(text, m.start(1)) and is_bad(name, version):
            places.add_offset(name, _plain(version), m.start())
    for pattern in (key_value, flow):
        for m in pattern.finditer(text):
            name, quote, version = m.group(2), m.group(3), m.group(4)
            start = m.start()
            if (
                (start == 0 or text[start - 1] in _KEY_BEFORE)
                and _version_ends(text, m.end())
                and _value_ends(text, m.end(), quote)
                and is_bad(name, version)
            ):
                places.add_offset(name, _plain(version), start)


def _any_version_names(text: str, names: set[str], places: _Places) -> None:
    pattern = re.compile(rf"({_alternation(names)})(?:@(?:npm:)?{_VERSION})?")
    for m in pattern.finditer(text):
        name = m.group(1)
        if not _name_starts(text, m.start(1)) or not _name_ends(text, m.end(1)):
            continue
        version = m.group(2) if m.group(2) and _version_ends(text, m.end()) else None
        places.add_offset(name, _plain(version) if version else None, m.start())


def _key_name(key: str | None) -> str | None:
    if key is None:
        return None
    return key.rpartition("node_modules/")[2] if "node_modules/" in key else key


def _json_entries(
    text: str,
    names: set[str],
    is_bad: Callable[[str, str], bool],
    any_version: set[str],
    places: _Places,
) -> None:
    """Objects with a `version` field, read by a tokenizer that never fails: garbage is skipped,
    unclosed objects (a truncated file) are judged at the end of the text."""
    # frames: (key the object or array is under, fields of an object or None for an array)
    frames: list[tuple[str | None, dict[str, tuple[str, int]] | None]] = []
    overflow = 0  # levels past MAX_JSON_DEPTH, counted but not kept
    last: tuple[str, int] | None = None  # the latest string, until a ':' or a value follows
    key: str | None = None  # the key whose value comes next

    def judge(under: str | None, fields: dict[str, tuple[str, int]]) -> None:
        found = fields.get("version")
        if found is None:
            return
        version, offset = found
        candidates: list[tuple[str, str]] = []
        if version.startswith("npm:"):
            target = version[4:]
            at = target.rfind("@")
            if at > 0:
                candidates.append((target[:at], target[at + 1 :]))
        else:
            named = fields.get("name")
            for name in (named[0] if named else None, _key_name(under)):
                if name is not None:
                    candidates.append((name, version))
        for name, ver in candidates:
            if name in any_version:
                places.add_offset(name, _plain(ver) or None, offset)
            elif name in names and is_bad(name, ver):
                places.add_offset(name, _plain(ver), offset)

    for m in _JSON_TOKEN.finditer(text):
        token = m.group(0)
        if token[0] == '"':
            value = json_string_token(token)
            if key is not None:
                if key in _FIELDS and frames and frames[-1][1] is not None and not overflow:
                    frames[-1][1].setdefault(key, (value, m.start()))  # type: ignore[union-attr]
                key, last = None, None
            else:
                last = (value, m.start())
        elif token == ":":
            key, last = (last[0] if last else None), None
        elif token in "{[":
            if len(frames) >= MAX_JSON_DEPTH:
                overflow += 1
            else:
                frames.append((key, {} if token == "{" else None))
            key = last = None
        elif token in "}]":
            if overflow:
                overflow -= 1
            elif frames:
                under, fields = frames.pop()
                if fields is not None:
                    judge(under, fields)
            key = last = None
        else:  # ","
            key = last = None
    while frames:
        under, fields = frames.pop()
        if fields is not None:
            judge(under, fields)


_VERSION_LINE = r"""^([ \t]*)(?:"version"|'version'|version)(?::[ \t]*+|[ \t]++)(["']?)(?:npm:)?"""
_NAME_LINE = re.compile(r"""^[ \t]*(?:"name"|'name'|name)(?::[ \t]*+|[ \t]++)["']?([^"'\s,]+)""")


def _header_names(line: str) -> set[str]:
    """Package names an entry header or key names: `axios@^1, "axios@~1":`, `/axios@1.0.0:`,
    `"http@npm:axios@^1":`, `axios:`."""
    body = line.strip()
    if body.endswith(":"):
        body = body[:-1]
    elif ": " in body:
        body = body.split(": ", 1)[0]
    names: set[str] = set()
    for raw in body.split(","):
        spec = raw.strip().strip("\"'").lstrip("/")
        if not spec:
            continue
        name, rest = split_spec(spec)
        names.add(name)
        if rest and rest.startswith("npm:"):
            target, target_range = split_spec(rest[4:])
            if target_range is not None:
                names.add(target)
    return names


class _Entry:
    """An open block of an indented file: its header line, and what its fields said so far."""

    __slots__ = ("header", "indent", "names", "versions")

    def __init__(self, indent: int, header: str) -> None:
        self.indent = indent
        self.header = header
        self.names: set[str] = set()  # from `name:` fields
        self.versions: dict[str, int] = {}  # version -> line of its `version:` field


def _indented_entries(
    text: str, names: set[str], is_bad: Callable[[str, str], bool], places: _Places
) -> None:
    """`version` fields of yarn and pnpm entries, judged by the entry (the nearest line above
    with less indentation) and any `name:` field beside them. One pass over the lines with a
    stack of the open entries: linear time, memory bounded by the nesting depth."""
    version_line = re.compile(_VERSION_LINE + _VERSION)

    def close(entry: _Entry) -> None:
        if not entry.versions:
            return
        if not entry.names and not any(name in entry.header for name in names):
            return  # the cheap test first: most entries name no bad package
        for name in (_header_names(entry.header) | entry.names) & names:
            for version, line in entry.versions.items():
                if is_bad(name, version):
                    places.add_line(name, _plain(version), line)

    stack: list[_Entry] = []
    for number, line in enumerate(io.StringIO(text), 1):
        line = line.rstrip("\r\n")
        body = line.lstrip(" \t")
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(body)
        while stack and stack[-1].indent >= indent:
            close(stack.pop())
        if stack:
            parent = stack[-1]
            if body.startswith(("version", '"version"', "'version'")):
                m = version_line.match(line)
                if (
                    m
                    and len(parent.versions) < _MAX_PLACES
                    and _version_ends(line, m.end())
                    and _value_ends(line, m.end(), m.group(2))
                ):
                    parent.versions.setdefault(m.group(3), number)
            elif body.startswith(("name", '"name"', "'name'")):
                m = _NAME_LINE.match(line)
                if m and len(parent.names) < _MAX_PLACES:
                    parent.names.add(m.group(1))
        stack.append(_Entry(indent, line if len(line) <= 4096 else line[:4096]))
    while stack:
        close(stack.pop())
