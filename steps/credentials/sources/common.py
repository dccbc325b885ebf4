"""What every source shares: the collector, safe reading, `key = value` and YAML with lines."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from steps.credentials.model import Credential, Discovery

MAX_FILE_BYTES = 4 * 1024 * 1024  # a credential file is small; anything bigger is something else


@dataclass
class Collector:
    """Collects credentials and problems; reads each file once (by device and inode)."""

    home: Path | None = None
    discovery: Discovery = field(default_factory=Discovery)
    _seen: set[tuple[int, int]] = field(default_factory=set)

    def add(self, credential: Credential) -> Credential:
        self.discovery.credentials.append(credential)
        return credential

    def problem(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        self.discovery.problems.append((where, message))

    def first_visit(self, path: Path) -> bool:
        """True the first time a file is seen (a target inside HOME must not count twice)."""
        try:
            st = os.stat(path)
        except OSError:
            return True
        key = (st.st_dev, st.st_ino)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def read(self, path: Path, *, missing_ok: bool = True) -> str | None:
        """The text of `path` as stored, or None (a problem is noted unless it is absent)."""
        try:
            if path.is_symlink() and not path.exists():
                return None
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                self.problem(path, f"skipped: {size} bytes is too big for a credential file")
                return None
            with open(path, encoding="utf-8", newline="") as handle:
                return handle.read()
        except FileNotFoundError:
            if not missing_ok:
                self.problem(path, "cannot read: no such file")
            return None
        except IsADirectoryError:
            self.problem(path, "cannot read: is a directory")
            return None
        except OSError as exc:
            self.problem(path, f"cannot read: {(exc.strerror or type(exc).__name__).lower()}")
            return None
        except UnicodeDecodeError:
            self.problem(path, "cannot read: not UTF-8 text")
            return None


def expand(path: str, home: Path | None) -> Path:
    """`~/x` against the HOME under scan, not the process's own."""
    if home is not None and (path == "~" or path.startswith("~/")):
        return home / path[2:]
    return Path(path)


# -- `key = value` files: npmrc, the AWS files -------------------------------------------------
@dataclass(frozen=True)
class IniEntry:
    section: str | None
    key: str
    value: str = field(repr=False)  # may be a secret: never in a traceback or a log
    line: int = 0  # 1-based


@dataclass
class IniFile:
    entries: list[IniEntry] = field(default_factory=list)
    sections: dict[str, int] = field(default_factory=dict)  # name -> line
    errors: list[tuple[int, str]] = field(default_factory=list)

    def section(self, name: str | None) -> dict[str, IniEntry]:
        return {e.key: e for e in self.entries if e.section == name}


SECTION = re.compile(r"^\[\s*(?P<name>[^\]]*?)\s*\]\s*(?:[;#].*)?$")
INLINE_COMMENT = re.compile(r"\s+[;#].*$")


def unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_ini(text: str, *, lower_keys: bool = False) -> IniFile:
    """Entries with their line numbers. Indented lines after a key continue it (AWS nested
    settings) and are skipped; a line that is neither a section nor `key = value` is an error.
    `lower_keys`: option names are case-insensitive (AWS files, read by configparser)."""
    out = IniFile()
    section: str | None = None
    last_key = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if raw[:1].isspace() and last_key:
            continue
        match = SECTION.match(stripped)
        if match:
            section = match.group("name")
            out.sections.setdefault(section, number)
            last_key = False
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            out.errors.append((number, "expected `key = value` or a [section]"))
            last_key = False
            continue
        value = INLINE_COMMENT.sub("", value.strip())
        name = key.strip().lower() if lower_keys else key.strip()
        out.entries.append(IniEntry(section, name, unquote_value(value.strip()), number))
        last_key = True
    return out


# -- YAML with line numbers ----------------------------------------------------------------------
def parse_yaml(text: str) -> yaml.Node | None:
    """The node tree of one YAML document (nodes carry their line); raises yaml.YAMLError."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def read_yaml(path: Path, collector: Collector) -> tuple[bool, yaml.Node | None]:
    """(read, node tree) of a YAML file; an unreadable or malformed one is a problem (naming
    the line) and comes back as (False, None)."""
    text = collector.read(path)
    if text is None:
        return False, None
    try:
        return True, parse_yaml(text)
    except yaml.YAMLError as exc:
        line, message = yaml_error(exc)
        collector.problem(path, message, line)
        return False, None


def yaml_error(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """Line and a message that quotes nothing from the file (a snippet could hold a secret)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "not valid YAML"
    line = mark.line + 1 if mark is not None else None
    return line, f"malformed YAML: {problem}"


def items(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node]]:
    """(key, value node) pairs of a mapping node with scalar keys; nothing for anything else."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield str(key.value), value


def scalar(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.value is not None:
        return str(node.value)
    return None


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1
