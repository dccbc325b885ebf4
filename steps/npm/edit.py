"""Minimal, format-preserving edits of package.json.

The file is never re-serialised: edits splice new text into the original, so indentation (spaces or
tabs), key order, CRLF line endings, a UTF-8 BOM and the final newline (or its absence) survive.
Inserted text follows the file's own style (indent unit, line ending, `": "` separator).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOM = "\ufeff"
_WS = " \t\r\n"


class ManifestError(ValueError):
    """package.json cannot be edited: it names the file, the line and the reason."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line else self.path
        super().__init__(f"{where}: {reason}")


@dataclass
class _Node:
    start: int
    end: int  # exclusive
    kind: str  # object | array | string | other
    members: list[tuple[str, int, _Node]] = field(default_factory=list)  # key, key start, value


class _Locator:
    """Offsets of every value in a JSON text already known to be valid."""

    def __init__(self, text: str) -> None:
        self.text = text

    def skip(self, i: int) -> int:
        text = self.text
        while i < len(text) and text[i] in _WS:
            i += 1
        return i

    def string_end(self, i: int) -> int:
        text = self.text
        i += 1
        while True:
            c = text[i]
            if c == "\\":
                i += 2
            elif c == '"':
                return i + 1
            else:
                i += 1

    def value(self, i: int) -> _Node:
        i = self.skip(i)
        c = self.text[i]
        if c == "{":
            node = _Node(i, i, "object")
            j = self.skip(i + 1)
            if self.text[j] == "}":
                node.end = j + 1
                return node
            while True:
                j = self.skip(j)
                key_end = self.string_end(j)
                key = json.loads(self.text[j:key_end])
                colon = self.skip(key_end)
                child = self.value(colon + 1)
                node.members.append((key, j, child))
                j = self.skip(child.end)
                if self.text[j] == ",":
                    j += 1
                    continue
                node.end = j + 1
                return node
        if c == "[":
            node = _Node(i, i, "array")
            j = self.skip(i + 1)
            if self.text[j] == "]":
                node.end = j + 1
                return node
            while True:
                child = self.value(j)
                j = self.skip(child.end)
                if self.text[j] == ",":
                    j += 1
                    continue
                node.end = j + 1
                return node
        if c == '"':
            return _Node(i, self.string_end(i), "string")
        match = re.compile(r"[^,\]}\s]+").match(self.text, i)
        assert match is not None
        return _Node(i, match.end(), "other")


def _reason(exc: json.JSONDecodeError) -> str:
    return f"{exc.msg} (column {exc.colno})"


class PackageJson:
    """One package.json held as text; edits return nothing and change `text` in place."""

    def __init__(self, path: Path | str, data: bytes) -> None:
        self.path = Path(path)
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ManifestError(path, line, "not UTF-8 text") from None
        self.bom = decoded.startswith(BOM)
        self.text = decoded[1:] if self.bom else decoded
        try:
            self.data: Any = json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise ManifestError(path, exc.lineno, _reason(exc)) from None
        except RecursionError:
            raise ManifestError(path, None, "nested too deeply") from None
        if not isinstance(self.data, dict):
            raise ManifestError(path, 1, "package.json is not a JSON object")
        self.original = self.text
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.indent = self._indent_unit()
        self.separator = self._separator()

    # -- style -------------------------------------------------------------------------------
    def _indent_unit(self) -> str | None:
        """The indent of one level ('  ', '    ', '\\t' ...); None for a one-line file."""
        root = _Locator(self.text).value(0)
        if not root.members:
            return "  "
        _, key_start, _ = root.members[0]
        line_start = self.text.rfind("\n", 0, key_start) + 1
        if line_start <= root.start:
            return None
        return self.text[line_start:key_start]

    def _separator(self) -> str:
        match = re.search(r'"\s*(:\s*)', self.text)
        return match.group(1) if match and "\n" not in match.group(1) else ": "

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def dump(self) -> bytes:
        return ((BOM if self.bom else "") + self.text).encode("utf-8")

    # -- lookup ------------------------------------------------------------------------------
    def _find(self, path: tuple[str, ...]) -> _Node | None:
        node = _Locator(self.text).value(0)
        for key in path:
            if node.kind != "object":
                return None
            # JSON allows duplicate keys; like JSON.parse, the last one wins
            found = [child for k, _, child in node.members if k == key]
            if not found:
                return None
            node = found[-1]
        return node

    def get(self, path: tuple[str, ...]) -> Any:
        value: Any = self.data
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    def _reload(self) -> None:
        self.data = json.loads(self.text)

    # -- edits -------------------------------------------------------------------------------
    def set_string(self, path: tuple[str, ...], value: str) -> None:
        """Replace the string at `path` (it must exist and be a string)."""
        node = self._find(path)
        if node is None or node.kind != "string":
            raise ManifestError(self.path, None, f"no string at {'.'.join(path)}")
        new = json.dumps(value, ensure_ascii=False)
        self.text = self.text[: node.start] + new + self.text[node.end :]
        self._reload()

    def set_key(self, path: tuple[str, ...], key: str, value: str) -> None:
        """Set `path[key] = value` (a string): replaced in place, or inserted as the last member.

        Missing objects on `path` are created (e.g. `overrides`, `pnpm.overrides`).
        """
        existing = self._find((*path, key))
        if existing is not None and existing.kind == "string":
            self.set_string((*path, key), value)
            return
        if existing is not None:
            raise ManifestError(self.path, None, f"{'.'.join((*path, key))} is not a string")
        depth = 0
        node = _Locator(self.text).value(0)
        missing: list[str] = []
        for index, part in enumerate(path):
            found = [child for k, _, child in node.members if k == part]
            if not found:
                missing = list(path[index:])
                break
            node = found[-1]
            depth += 1
            if node.kind != "object":
                where = ".".join(path[: index + 1])
                raise ManifestError(self.path, None, f"{where} is not an object")
        if missing:
            rendered = self._object_text([*missing[1:], key], value, depth + 2)
            self._insert_member(node, depth, missing[0], rendered)
        else:
            self._insert_member(node, depth, key, json.dumps(value, ensure_ascii=False))
        self._reload()

    def _render_key(self, key: str) -> str:
        return json.dumps(key, ensure_ascii=False) + self.separator

    def _object_text(self, chain: list[str], value: str, depth: int) -> str:
        """A new object `{chain[0]: {chain[1]: ... value}}` whose members sit at `depth`."""
        if len(chain) == 1:
            member = self._render_key(chain[0]) + json.dumps(value, ensure_ascii=False)
        else:
            member = self._render_key(chain[0]) + self._object_text(chain[1:], value, depth + 1)
        if self.indent is None:
            return "{" + member + "}"
        nl = self.newline
        return "{" + nl + self.indent * depth + member + nl + self.indent * (depth - 1) + "}"

    def _insert_member(self, node: _Node, depth: int, key: str, rendered: str) -> None:
        """Insert `key: rendered` as the last member of the object `node` (at nesting `depth`)."""
        text = self.text
        if node.members:
            _, last_key_start, last_value = node.members[-1]
            line_start = text.rfind("\n", 0, last_key_start) + 1
            before_key = text[line_start:last_key_start]
            if before_key.strip() == "" and line_start > node.start:
                lead = self.newline + before_key
            else:
                lead = " "  # members written on one line
            at = last_value.end
            self.text = text[:at] + "," + lead + self._render_key(key) + rendered + text[at:]
            return
        member = self._render_key(key) + rendered
        if self.indent is not None:
            nl = self.newline
            member = nl + self.indent * (depth + 1) + member + nl + self.indent * depth
        # whatever whitespace sat inside `{ }` is replaced
        self.text = text[: node.start + 1] + member + text[node.end - 1 :]

    def insert_object(self, path: tuple[str, ...], key: str, value: str) -> None:
        """Alias of `set_key` kept for readability at call sites that add overrides."""
        self.set_key(path, key, value)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
