"""YAML loading that remembers where every key and value came from (line and column).

Every YAML file runbook reads for itself goes through `load_yaml`, which refuses what would
otherwise hang, exhaust memory or raise a traceback: aliases (`*name`: nested ones expand
exponentially, a self-referencing one never ends), and values PyYAML cannot build (a 5,000-digit
integer, the date 0000-01-01). Each becomes a `file:line:col` problem.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbook.safeio import PLAYBOOK_LIMIT, read_regular

try:  # the C loader is several times faster and keeps marks too
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a source file."""

    line: int
    col: int


@dataclass
class SourceProblem:
    """One problem found in a source file, pointing at a place in it."""

    path: str
    position: Position
    where: str
    message: str

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{self.path}:{self.position.line}:{self.position.col}: {where}{self.message}"


@dataclass
class SourceDocument:
    """Parsed YAML data plus a map from each location to its key and value positions."""

    path: str
    data: Any
    values: dict[Loc, Position] = field(default_factory=dict)
    keys: dict[Loc, Position] = field(default_factory=dict)
    duplicates: list[tuple[Loc, Position]] = field(default_factory=list)
    first_keys: dict[Loc, Position] = field(default_factory=dict)  # of duplicated keys

    def position(self, loc: Loc, *, key: bool = False) -> Position:
        """Best position for `loc`: the exact key/value, else the nearest enclosing one."""
        loc = tuple(loc)
        while True:
            if key and loc in self.keys:
                return self.keys[loc]
            if loc in self.values:
                return self.values[loc]
            if loc in self.keys:
                return self.keys[loc]
            if not loc:
                return Position(1, 1)
            loc = loc[:-1]


class YamlSyntaxError(Exception):
    """The file is not valid YAML; carries a `SourceProblem`."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def format_loc(loc: Loc) -> str:
    """Render ('steps', 3, 'uses') as 'steps[3].uses'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pos(node: yaml.Node | yaml.Event) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Unbuildable(Exception):
    """A scalar PyYAML parsed but could not turn into a value (not a ValueError on purpose)."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


_TAGS = {
    "tag:yaml.org,2002:int": "number",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:timestamp": "date",
}


def _unbuildable(node: yaml.Node, exc: Exception) -> str:
    value = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    shown = value if len(value) <= 40 else value[:37] + "..."
    if node.tag == "tag:yaml.org,2002:int" and "digits" in str(exc):
        digits = sum(c.isdigit() for c in value)
        limit = sys.get_int_max_str_digits()
        return f"number with {digits} digits is too long (at most {limit}; quote it for text)"
    what = _TAGS.get(node.tag, "value")
    return f"invalid {what} '{shown}': {exc}"


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, with values that cannot be built reported at their node."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise _Unbuildable(node, _unbuildable(node, exc)) from None


class _AliasFound(Exception):
    """The node graph shares a node: the document uses an alias."""


def _walk(doc: SourceDocument, root: yaml.Node) -> dict[int, Loc]:
    """Record every key's and value's position; returns each node's location by `id`.

    Iterative, and every node is visited once: a node met a second time is an alias, refused.
    """
    where: dict[int, Loc] = {}
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in where:
            raise _AliasFound
        where[id(node)] = loc
        doc.values[loc] = _pos(node)
        children: list[tuple[yaml.Node, Loc]] = []
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                if id(key_node) in where:
                    raise _AliasFound
                where[id(key_node)] = loc
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
                child = (*loc, key)
                if key in seen:
                    doc.duplicates.append((child, _pos(key_node)))
                    doc.first_keys.setdefault(child, doc.keys[child])
                seen.add(key)
                doc.keys[child] = _pos(key_node)
                children.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*loc, index)) for index, item in enumerate(node.value)]
        stack.extend(reversed(children))  # document order, as a recursive walk would go
    return where


def _first_alias(text: str) -> tuple[Position, str]:
    """Where the first alias (`*name`) of the document is, and its name."""
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.AliasEvent):
            return _pos(event), str(event.anchor)
    return Position(1, 1), ""  # pragma: no cover - only called when an alias was seen


_INDENTATION_HINTS = ("expected '-' indicator", "expected key", "expected <block end>")
_CONTEXTS = {
    "while parsing a flow sequence": "in the [...] list that starts",
    "while parsing a flow mapping": "in the {...} mapping that starts",
}


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[Position, str]:
    """Where and what a YAML syntax error is, worded for the person who has to fix it.

    PyYAML's pure-Python and libyaml parsers word errors differently; the common cases (tabs,
    an unclosed quote, indentation) get one wording of ours whichever parser found them.
    """
    mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if mark is None:
        return Position(1, 1), problem
    here = Position(mark.line + 1, mark.column + 1)
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    if line[mark.column : mark.column + 1] == "\t":
        return here, "tab character; YAML indents with spaces, never tabs"
    if context is not None and "quoted scalar" in (exc.context or ""):
        start = Position(context.line + 1, context.column + 1)
        if "end of stream" in problem or "end of the stream" in problem:
            return start, "quoted text is never closed (no closing quote after this one)"
    if "mapping values are not allowed" in problem:
        return here, (
            "unexpected ':' (check this line's indentation, or put a value that contains"
            " ': ' in quotes)"
        )
    if any(hint in problem for hint in _INDENTATION_HINTS):
        return here, f"{problem} (check the indentation of this line)"
    closing = re.search(r"expected ',' or '(.)'", problem)
    if closing:
        found = line[mark.column : mark.column + 1].strip()
        problem = f"expected ',' or '{closing[1]}'" + (f", got '{found}'" if found else "")
    if "another document" in problem:
        return here, "a second YAML document ('---'); a playbook file holds exactly one"
    elsewhere = context is not None and (context.line, context.column) != (mark.line, mark.column)
    if exc.context and context is not None and elsewhere:
        what = _CONTEXTS.get(exc.context, exc.context)
        return here, f"{problem} ({what} at line {context.line + 1}, column {context.column + 1})"
    return here, f"{problem} ({exc.context})" if exc.context else problem


def load_yaml(text: str, path: str) -> SourceDocument:
    """Parse one YAML document, raising `YamlSyntaxError` with file:line:col on bad syntax, on
    an alias, and on a value that cannot be built. Aliases are refused before anything is
    expanded."""
    loader = _Loader(text)
    doc = SourceDocument(path=path, data=None)
    where: dict[int, Loc] = {}
    try:
        node = loader.get_single_node()
        if node is not None:
            where = _walk(doc, node)
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        position, problem = _syntax_problem(exc, text)
        raise YamlSyntaxError(
            SourceProblem(path, position, "", f"YAML syntax error: {problem}")
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(
            SourceProblem(path, Position(1, 1), "", f"YAML error: {exc}")
        ) from None
    except _AliasFound:
        position, name = _first_alias(text)
        message = (
            f"YAML alias '*{name}' is not allowed (aliases can expand without limit);"
            " write the value out in full"
        )
        raise YamlSyntaxError(SourceProblem(path, position, "", message)) from None
    except _Unbuildable as exc:
        loc = where.get(id(exc.node), ())
        problem = SourceProblem(path, _pos(exc.node), format_loc(loc), exc.message)
        raise YamlSyntaxError(problem) from None
    finally:
        loader.dispose()
    return doc


def read_source(path: Path, display: str | None = None, *, what: str = "file") -> tuple[bytes, str]:
    """The bytes and text of a YAML source file, read as a regular file of at most
    `PLAYBOOK_LIMIT` bytes (a named symlink is followed; a FIFO or device is refused, never
    waited on). Unreadable or undecodable files become `YamlSyntaxError`."""
    shown = display or str(path)
    try:
        raw = read_regular(path, limit=PLAYBOOK_LIMIT, follow_symlinks=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise YamlSyntaxError(
            SourceProblem(shown, Position(1, 1), "", f"cannot read {what}: {reason}")
        ) from None
    try:
        return raw, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlSyntaxError(
            SourceProblem(shown, Position(line, 1), "", "file is not valid UTF-8 text")
        ) from None


def read_yaml_file(path: Path, display: str | None = None) -> SourceDocument:
    """Read and parse a YAML file; unreadable or undecodable files become `YamlSyntaxError`."""
    shown = display or str(path)
    return load_yaml(read_source(path, shown)[1], shown)
