"""What every source shares: the collector, safe reading, `key = value` and YAML with lines.

Reading follows the project's rules for files a hostile tree may have planted (`runbook.safeio`):
regular files only (a symlinked dotfile is followed, but its target must be a regular file too),
never blocking on a FIFO, never unbounded. Whatever cannot be read is a problem naming the file,
and what can be read still is:

- a file of up to `WHOLE_FILE_BYTES` is read at once (the common case: one read, one decode);
- a bigger one, up to `STREAM_LIMIT`, is read line by line with memory bounded by
  `MAX_LINE_BYTES`: a longer line is skipped and noted, every other line is looked at;
- a line holding bytes that are not UTF-8 is skipped and noted, the rest of the file is read.

A note on a file is a problem (stderr, the journal) and goes on every credential found in that
file, so a credential listed from a partly unreadable file says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import yaml

from runbook.safeio import SMALL_FILE_LIMIT, MiB, ReadRefused, open_regular
from steps.credentials.model import Credential, Discovery

WHOLE_FILE_BYTES = SMALL_FILE_LIMIT  # a credential file is small: read in one go up to this
STREAM_LIMIT = 1024 * MiB  # line-based files up to this are read line by line; beyond: a problem
MAX_LINE_BYTES = 64 * 1024  # in a streamed file, a longer line is skipped (and noted)
CHUNK_BYTES = 1 * MiB
PROBLEMS_PER_FILE = 20  # more are counted, not listed: a garbage file must not flood the output
LINES_SHOWN = 10  # line numbers listed in one note
_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


def _human(size: int) -> str:
    if size >= MiB:
        return f"{size / MiB:.0f} MiB"
    return f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes"


@dataclass
class _Skipped:
    """Lines of one file that were skipped: how many, and the first few numbers."""

    count: int = 0
    first: list[int] = field(default_factory=list)

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first) < LINES_SHOWN:
            self.first.append(number)

    def text(self) -> str:
        """`line 3 was`, `lines 3, 9 were`, `lines 3, 9, ... (1200 in all) were`."""
        shown = ", ".join(str(n) for n in self.first)
        if self.count == 1:
            return f"line {shown} was"
        more = f", ... ({self.count} in all)" if self.count > len(self.first) else ""
        return f"lines {shown}{more} were"


@dataclass
class _Reading:
    """The lines of one file being read, and what had to be skipped."""

    path: Path
    size: int
    undecodable: _Skipped = field(default_factory=_Skipped)
    too_long: _Skipped = field(default_factory=_Skipped)
    number: int = 0
    cut: bool = False  # grew past STREAM_LIMIT while read: the rest was not read

    def decoded(self, raw: bytes) -> Iterator[str]:
        """The lines (as `str.splitlines` counts them) of one `\n`-terminated piece."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "surrogateescape")
        for line in text.splitlines() or [""]:
            self.number += 1
            if _UNDECODED.search(line):
                self.undecodable.add(self.number)
                yield ""  # kept as an empty line: later line numbers stay right
            else:
                yield line

    def notes(self) -> list[str]:
        out = []
        if self.undecodable.count:
            out.append(f"holds bytes that are not UTF-8 text: {self.undecodable.text()} skipped")
        if self.cut:
            out.append(f"grew past {_human(STREAM_LIMIT)} while read: the rest was not read")
        if self.too_long.count:
            out.append(
                f"is {_human(self.size)}, read line by line: {self.too_long.text()} over "
                f"{_human(MAX_LINE_BYTES)} and skipped"
            )
        return out


def _read_upto(handle: BinaryIO, size: int, limit: int) -> bytes:
    """At most `limit + 1` bytes of a file `size` bytes long (by fstat): one read of the right
    size (no limit-sized buffer for a small file), more only if it grew meanwhile."""
    data = handle.read(size + 1)
    if len(data) > size:
        data += handle.read(max(0, limit + 1 - len(data)))
    return data


def _pieces(handle: BinaryIO, reading: _Reading, head: bytes = b"") -> Iterator[bytes | None]:
    """The `\n`-separated pieces of a file (after `head`, its bytes read already), read in
    chunks; None for a piece over `MAX_LINE_BYTES` (never held in memory whole). Stops at
    `STREAM_LIMIT` bytes (a file still growing), setting `reading.cut`."""
    pending = bytearray()
    too_long = False
    total = 0
    while chunk := head or handle.read(CHUNK_BYTES):
        head = b""
        total += len(chunk)
        if total > STREAM_LIMIT:
            reading.cut = True
            break
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not too_long:
                    pending += chunk[start:]
                    if len(pending) > MAX_LINE_BYTES:
                        too_long = True
                        pending.clear()
                break
            if not too_long:
                pending += chunk[start:end]
            yield None if too_long or len(pending) > MAX_LINE_BYTES else bytes(pending)
            pending.clear()
            too_long = False
            start = end + 1
    if too_long:
        yield None
    elif pending:
        yield bytes(pending)


@dataclass
class Collector:
    """Collects credentials and problems; reads each file once (by device and inode)."""

    home: Path | None = None
    discovery: Discovery = field(default_factory=Discovery)
    _seen: set[tuple[int, int]] = field(default_factory=set)
    _notes: dict[str, list[str]] = field(default_factory=dict)
    _problems: dict[str, int] = field(default_factory=dict)  # problems per file

    def add(self, credential: Credential) -> Credential:
        self.discovery.credentials.append(credential)
        return credential

    def problem(self, path: Path | str, message: str, line: int | None = None) -> None:
        """A problem with a file (at a line); past `PROBLEMS_PER_FILE` of one file, counted."""
        count = self._problems[str(path)] = self._problems.get(str(path), 0) + 1
        if count > PROBLEMS_PER_FILE:
            return
        where = f"{path}:{line}" if line else str(path)
        self.discovery.problems.append((where, message))

    def note(self, path: Path, message: str) -> None:
        """A problem that also goes on every credential found in `path`."""
        self.problem(path, message)
        self._notes.setdefault(str(path), []).append(message)

    def was_read(self, st: os.stat_result) -> bool:
        """Whether the file with this `stat` was visited already."""
        return (st.st_dev, st.st_ino) in self._seen

    def first_visit(self, path: Path) -> bool:
        """True the first time a file is seen (a target inside HOME must not count twice).
        Anything but a regular file is always "first": each name pointing at a FIFO or device
        gets its own problem."""
        try:
            st = os.stat(path)
        except OSError:
            return True
        if not stat.S_ISREG(st.st_mode):
            return True
        key = (st.st_dev, st.st_ino)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def result(self) -> Discovery:
        """The discovery, each credential carrying the notes of the files it was found in, and
        one problem per file whose problems were too many to list."""
        for credential in self.discovery.credentials:
            locations = [credential.location, *credential.companion_locations.values()]
            paths = dict.fromkeys(str(loc.path) for loc in locations if loc.path is not None)
            for path in paths:
                for message in self._notes.get(path, []):
                    if message not in credential.notes:
                        credential.notes.append(message)
        for path, count in self._problems.items():
            if count > PROBLEMS_PER_FILE:
                more = count - PROBLEMS_PER_FILE
                self.discovery.problems.append(
                    (path, f"{more} more problem{'s' if more != 1 else ''} not listed")
                )
                self._problems[path] = PROBLEMS_PER_FILE  # reported once
        return self.discovery

    # -- reading ---------------------------------------------------------------------------
    def _open(self, path: Path, limit: int, missing_ok: bool) -> tuple[BinaryIO, int] | None:
        """The open file and its size, or None (a problem is noted unless it is absent)."""
        try:
            handle = open_regular(path, follow_symlinks=True, limit=limit)
        except FileNotFoundError:  # absent, or a symlink to nothing: there is nothing to read
            if not missing_ok:
                self.problem(path, "cannot read: no such file")
            return None
        except ReadRefused as exc:
            self.problem(path, f"cannot read: {exc.reason}")
            return None
        except OSError as exc:
            self.problem(path, f"cannot read: {(exc.strerror or type(exc).__name__).lower()}")
            return None
        try:
            return handle, os.fstat(handle.fileno()).st_size
        except OSError as exc:
            handle.close()
            self.problem(path, f"cannot read: {(exc.strerror or type(exc).__name__).lower()}")
            return None

    def _finish(self, reading: _Reading) -> None:
        for message in reading.notes():
            self.note(reading.path, message)

    def lines(self, path: Path, *, missing_ok: bool = True) -> Iterable[str] | None:
        """The lines of a line-based file (`str.splitlines` numbering), or None when it cannot
        be read at all. A small file comes back as a list; a big one is streamed (notes on
        skipped lines are made once the iteration ends)."""
        opened = self._open(path, STREAM_LIMIT, missing_ok)
        if opened is None:
            return None
        handle, size = opened
        head = b""
        if size <= WHOLE_FILE_BYTES:
            head = _read_upto(handle, size, WHOLE_FILE_BYTES)
            if len(head) <= WHOLE_FILE_BYTES:
                handle.close()
                return self._split(path, head)
            # it grew while read: stream it, starting with what was read
        return self._stream(handle, _Reading(path, max(size, len(head))), head)

    def _split(self, path: Path, data: bytes) -> list[str]:
        try:
            return data.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            pass
        reading = _Reading(path, len(data))
        pieces = data.split(b"\n")
        if pieces and not pieces[-1]:
            pieces.pop()  # the final newline ends the last line; it starts none
        out = [line for piece in pieces for line in reading.decoded(piece)]
        self._finish(reading)
        return out

    def _stream(self, handle: BinaryIO, reading: _Reading, head: bytes = b"") -> Iterator[str]:
        try:
            for piece in _pieces(handle, reading, head):
                if piece is None:
                    reading.number += 1
                    reading.too_long.add(reading.number)
                    yield ""
                else:
                    yield from reading.decoded(piece)
        except OSError as exc:
            self.problem(reading.path, f"read stopped: {(exc.strerror or str(exc)).lower()}")
        finally:
            handle.close()
        self._finish(reading)

    def read(self, path: Path, *, missing_ok: bool = True) -> str | None:
        """The whole text of a file that is parsed whole (YAML, JSON, a PEM key), or None.
        Only files up to `WHOLE_FILE_BYTES`; lines that are not UTF-8 text are left empty
        (and noted)."""
        opened = self._open(path, WHOLE_FILE_BYTES, missing_ok)
        if opened is None:
            return None
        handle, size = opened
        with handle:
            data = _read_upto(handle, size, WHOLE_FILE_BYTES)
        if len(data) > WHOLE_FILE_BYTES:
            self.problem(path, f"cannot read: grew past the {_human(WHOLE_FILE_BYTES)} limit")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "\n".join(self._split(path, data))

    def digest(self, path: Path, limit: int) -> str | None:
        """`sha256:<hex>` of a file that is fingerprinted, not parsed (an encrypted token
        cache, a credential store), or None when it is absent, empty or unreadable (noted)."""
        opened = self._open(path, limit, missing_ok=True)
        if opened is None:
            return None
        handle, _ = opened
        hasher = hashlib.sha256()
        total = 0
        with handle:
            while chunk := handle.read(1 << 16):
                total += len(chunk)
                if total > limit:
                    self.problem(path, f"cannot read: grew past the {_human(limit)} limit")
                    return None
                hasher.update(chunk)
        return "sha256:" + hasher.hexdigest() if total else None


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
    _by_section: dict[str | None, dict[str, IniEntry]] = field(default_factory=dict, repr=False)

    def section(self, name: str | None) -> dict[str, IniEntry]:
        """The entries of a section by key (of a key given twice, the last one)."""
        return dict(self._by_section.get(name, {}))

    def _add(self, entry: IniEntry) -> None:
        self.entries.append(entry)
        self._by_section.setdefault(entry.section, {})[entry.key] = entry


SECTION = re.compile(r"^\[\s*(?P<name>[^\]]*?)\s*\]\s*(?:[;#].*)?$")
INLINE_COMMENT = re.compile(r"\s+[;#].*$")


def unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_ini(
    lines: str | Iterable[str],
    *,
    lower_keys: bool = False,
    keep: Callable[[str | None, str], bool] | None = None,
    on_error: Callable[[int, str], None] | None = None,
) -> IniFile:
    """Entries with their line numbers. Indented lines after a key continue it (AWS nested
    settings) and are skipped; a line that is neither a section nor `key = value` is an error,
    handed to `on_error(line, message)` (ignored without one).
    `lower_keys`: option names are case-insensitive (AWS files, read by configparser).
    `keep(section, key)`: only those entries are kept (a huge file costs no memory for the
    rest); a section is listed once it has a kept entry."""
    out = IniFile()
    section: str | None = None
    section_line = 0
    last_key = False
    if isinstance(lines, str):
        lines = lines.splitlines()
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if raw[:1].isspace() and last_key:
            continue
        match = SECTION.match(stripped)
        if match:
            section, section_line = match.group("name"), number
            if keep is None:
                out.sections.setdefault(section, number)
            last_key = False
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            if on_error is not None:
                on_error(number, "expected `key = value` or a [section]")
            last_key = False
            continue
        last_key = True
        name = key.strip().lower() if lower_keys else key.strip()
        if keep is not None and not keep(section, name):
            continue
        if section is not None:
            out.sections.setdefault(section, section_line)
        value = INLINE_COMMENT.sub("", value.strip())
        out._add(IniEntry(section, name, unquote_value(value.strip()), number))
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
