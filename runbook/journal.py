"""The append-only, hash-chained, fsync'd JSONL journal: the truth about a run.

Each line is `{"seq", "ts", "event", "data", "prev", "hash"}`: `hash` is the sha256 of the
canonical JSON (sorted keys, no spaces) of the entry without `hash`; the first `prev` is 64 zeros.

The chain has no key: it shows that a journal was changed, not who changed it (anyone who can
edit the file can recompute every hash). The head printed at the end of a run, kept elsewhere,
is what pins a journal down (`audit verify --head`, `undo --head`).

A journal is read as a regular file of at most `JOURNAL_LIMIT` bytes: a FIFO or a device named
as a journal is refused at once, never waited on nor read until memory runs out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook.safeio import JOURNAL_LIMIT, MiB, read_regular

GENESIS = "0" * 64
FIELDS = ("seq", "ts", "event", "data", "prev", "hash")
# how long a shared writer waits for another process's append before giving up (seconds)
SHARED_WAIT = 10.0


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done (main thread only: handlers run there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class JournalError(Exception):
    """The journal cannot be used: locked by another writer, broken, unreadable."""


class MalformedEntry(JournalError):
    """An entry runbook cannot use: not an object, a field of the wrong type, a missing field.

    `line` is the entry's line in the file (numbered as `audit verify` numbers them).
    """

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"journal entry {line} is malformed: {what}")
        self.line = line
        self.what = what


# The type every field of an entry has, as written by `Journal.append`.
FIELD_TYPES: dict[str, tuple[type, str]] = {
    "seq": (int, "an integer"),
    "ts": (str, "text"),
    "event": (str, "text"),
    "data": (dict, "an object"),
    "prev": (str, "text"),
    "hash": (str, "text"),
}


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages (never the value: it may be anything)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_entry(entry: Any, line: int) -> dict[str, Any]:
    """`entry` if it has exactly the fields of a journal entry, each of the right type;
    `MalformedEntry` naming the first problem otherwise."""
    if not isinstance(entry, dict):
        raise MalformedEntry(line, f"{json_type(entry)}, not an object")
    missing = [name for name in FIELDS if name not in entry]
    if missing:
        raise MalformedEntry(line, "missing " + ", ".join(missing))
    extra = sorted(str(name) for name in entry if name not in FIELDS)
    if extra:
        raise MalformedEntry(line, f"{len(extra)} unknown field(s)")
    for name, (kind, said) in FIELD_TYPES.items():
        value = entry[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MalformedEntry(line, f"{name} is {json_type(value)}, expected {said}")
    try:
        datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEntry(line, "ts is not an ISO 8601 time") from None
    return entry


@dataclass
class Verification:
    """Result of checking a journal's chain."""

    ok: bool
    entries: int
    head: str
    bad_line: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.entries} entries, head {self.head}"
        return f"line {self.bad_line}: {self.reason}"


def verify_lines(lines: list[bytes], head: str | None = None) -> Verification:
    """Check every hash, `prev` link and `seq`; with `head`, also that the tail is all there."""
    prev, count = GENESIS, 0
    before = GENESIS  # the hash of the line before `prev`'s line
    for number, raw in enumerate(lines, start=1):
        reason = _line_problem(raw, number, prev)
        if reason:
            if _inserted_before(lines, number, before, prev):
                # this line and the one after it continue the chain from two lines up: the line
                # before it is the intruder (well-formed, with its own seq, prev and hash)
                reason = "line inserted: the chain continues from the line before it"
                return Verification(False, count - 1, before, number - 1, reason)
            return Verification(False, count, prev, number, reason)
        before, prev, count = prev, json.loads(raw)["hash"], count + 1
    if head is not None and prev != head:
        hashes = [json.loads(raw)["hash"] for raw in lines]
        if head in hashes:
            at = hashes.index(head) + 1
            reason = f"entries follow the expected head (line {at})"
            return Verification(False, count, prev, at + 1, reason)
        reason = (
            f"expected head {head} not found: the journal ends at line {count} "
            "(truncated, or not the journal this head came from)"
        )
        return Verification(False, count, prev, count + 1, reason)
    return Verification(True, count, prev)


def _loads(raw: bytes) -> Any:
    """A line's JSON value; `ValueError` for anything that is not JSON runbook can hold."""
    try:
        return json.loads(raw)
    except RecursionError:  # nested deeper than any entry runbook writes
        raise ValueError("nested too deeply") from None


def _line_problem(raw: bytes, number: int, prev: str) -> str:
    try:
        entry = _loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return "not a JSON object (torn or edited line)"
    if not isinstance(entry, dict) or set(entry) != set(FIELDS):
        return "entry does not have exactly the fields " + ", ".join(FIELDS)
    if type(entry["seq"]) is not int or entry["seq"] != number:
        seq = entry["seq"] if type(entry["seq"]) is int else json_type(entry["seq"])
        return f"seq is {seq}, expected {number} (line deleted, inserted or moved)"
    if entry["prev"] != prev:
        return "prev does not match the hash of the line before (line deleted or moved)"
    try:
        if entry_hash(entry) != entry["hash"]:
            return "hash does not match the entry's content (line modified)"
        if canonical(entry) != raw:
            return "line is not in canonical form (re-encoded or edited)"
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\udXXX), which runbook never writes (edited line)"
    return ""


def _inserted_before(lines: list[bytes], number: int, before: str, prev: str) -> bool:
    """Whether line `number` is a sound entry following line `number - 2` directly, and the
    chain goes on from it: then line `number - 1` is a branch that was slipped in."""
    if number < 2 or number >= len(lines):
        return False
    try:
        entry, following = _loads(lines[number - 1]), _loads(lines[number])
        return (
            isinstance(entry, dict)
            and isinstance(following, dict)
            and set(entry) == set(FIELDS)
            and type(entry["seq"]) is int
            and entry["seq"] == number - 1
            and entry["prev"] == before
            and entry_hash(entry) == entry["hash"]
            and entry["hash"] != prev
            and following.get("prev") == entry["hash"]
        )
    except (ValueError, UnicodeEncodeError):
        return False


def _split(raw: bytes) -> list[bytes]:
    """The file's lines, numbered as in the file: a blank line is a line (and not an entry)."""
    lines = raw.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def read_journal(path: Path) -> bytes:
    """The bytes of a journal file someone named: a regular file (a symlink to one is followed)
    of at most `JOURNAL_LIMIT` bytes. Anything else raises `ReadRefused` (an `OSError`) at once."""
    return read_regular(path, limit=JOURNAL_LIMIT, follow_symlinks=True)


def verify_bytes(raw: bytes, head: str | None = None) -> Verification:
    """Verify a journal's bytes (numbered as in the file)."""
    return verify_lines(_split(raw), head)


def verify(path: Path, head: str | None = None) -> Verification:
    """Verify a journal file."""
    return verify_bytes(read_journal(Path(path)), head)


def read_entries(path: Path) -> list[dict[str, Any]]:
    """All entries of a journal that are JSON objects, without verifying or checking them."""
    entries = []
    for raw in _split(read_journal(Path(path))):
        with contextlib.suppress(ValueError):
            entry = _loads(raw)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def numbered_entries(raw: bytes) -> list[tuple[int, dict[str, Any]]]:
    """Each entry of a journal's bytes with its line number, every one checked (`check_entry`).

    A torn last line (bytes after the last newline: what a crash leaves) is left out, as
    `Journal` would set it aside; any other line that is not a sound entry, blank lines
    included, raises `MalformedEntry`.
    """
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
    out = []
    for number, line in enumerate(_split(raw), start=1):
        if not line.strip():
            raise MalformedEntry(number, "blank line")
        try:
            entry = _loads(line)
        except ValueError:
            raise MalformedEntry(number, "not JSON") from None
        out.append((number, check_entry(entry, number)))
    return out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(data: Any) -> Any:
    """`data` with each lone surrogate (what `surrogateescape` makes of a file name that is not
    UTF-8) written as its `\\udcXX` text, so the entry can be encoded, hashed and read back."""
    if isinstance(data, str):
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", data)
    if isinstance(data, dict):
        return {_encodable(key): _encodable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_encodable(item) for item in data]
    return data


class Journal:
    """The writer of one journal file.

    By default the single writer: it holds an exclusive lock from open to close, so no other
    process can append. With `shared=True` several processes (a drill's players' app and its
    facilitator console) append to the same journal: each append takes the exclusive lock, reads
    what the others appended since (checking that it chains on), and chains onto the true head;
    `refresh` picks up the others' entries without writing. A shared writer waits up to `wait`
    seconds for the lock, then raises `JournalError`.

    Every `data` passes `redact` before it is hashed and written. A crash can leave a torn last
    line; opening for append (or, for a shared writer, the next append) moves such bytes aside
    (`<name>.torn`) and records that it did.
    """

    def __init__(
        self,
        path: Path,
        redact: Callable[[Any], Any],
        *,
        shared: bool = False,
        wait: float = SHARED_WAIT,
    ) -> None:
        self.path = Path(path)
        self.redact = redact
        self.shared = shared
        self._wait = wait
        self._mutex = threading.Lock()
        self._offset = 0  # bytes of the file held in `entries`
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        try:
            self._lock()
        except JournalError:
            os.close(self._fd)
            raise
        self.entries: list[dict[str, Any]] = []
        self._load()
        if shared:
            self._unlock()

    def _open(self) -> int:
        """The journal opened for appending: a regular file, created if missing (O_NONBLOCK:
        a FIFO in its place is refused instead of waited on)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise JournalError(f"{self.path} is not a regular file; a journal must be one")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _lock(self) -> None:
        """Take the exclusive lock: at once for the single writer, within `wait` for a shared
        one."""
        deadline = time.monotonic() + (self._wait if self.shared else 0)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise JournalError(
                        f"{self.path} is in use by another runbook process; wait for it or stop it"
                    ) from None
                time.sleep(0.005)

    def _unlock(self) -> None:
        if self._fd >= 0:  # a refused read may have closed it already
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read(self, offset: int = 0) -> bytes:
        """The journal's bytes from `offset`, read through the locked descriptor itself."""
        size = os.fstat(self._fd).st_size
        if size > JOURNAL_LIMIT:
            os.close(self._fd)
            self._fd = -1
            raise JournalError(f"{self.path} is over the {JOURNAL_LIMIT // MiB} MiB journal limit")
        chunks = []
        while offset < size:
            chunk = os.pread(self._fd, min(size - offset, 1 << 24), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _load(self) -> None:
        raw = self._read()
        torn = b""
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            raw, torn = raw[:cut], raw[cut:]
        lines = _split(raw)
        result = verify_lines(lines)
        if not result.ok:
            os.close(self._fd)
            raise JournalError(f"{self.path}: refusing to append to a broken chain: {result}")
        try:
            self.entries = [
                check_entry(_loads(line), number) for number, line in enumerate(lines, start=1)
            ]
        except MalformedEntry:
            os.close(self._fd)
            raise
        self._offset = len(raw)
        if torn:
            self._set_aside(torn)

    def _set_aside(self, torn: bytes) -> None:
        """Move a torn last line (what a crash mid-write leaves) aside and journal that; the
        lock is held."""
        aside = self.path.with_name(f"{self.path.name}.torn")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.torn.{n}")
            n += 1
        aside.write_bytes(torn)
        os.truncate(self.path, self._offset)
        self._write(
            "journal_repaired",
            {
                "torn_bytes": len(torn),
                "torn_sha256": hashlib.sha256(torn).hexdigest(),
                "moved_to": str(aside),
            },
        )

    def _catch_up(self) -> tuple[list[dict[str, Any]], bytes]:
        """Take in the entries other processes appended since the last read, each checked to
        chain onto the head; returns them and any bytes after the last newline."""
        raw = self._read(self._offset)
        if not raw:
            if os.fstat(self._fd).st_size < self._offset:
                raise JournalError(f"{self.path} was truncated by another process")
            return [], b""
        cut = raw.rfind(b"\n") + 1
        complete, rest = raw[:cut], raw[cut:]
        new = []
        for line in _split(complete):
            number = len(self.entries) + 1
            problem = _line_problem(line, number, self.head)
            if problem:
                raise JournalError(
                    f"{self.path}: refusing to append to a broken chain: line {number}: {problem}"
                )
            entry = check_entry(_loads(line), number)
            self.entries.append(entry)
            new.append(entry)
        self._offset += len(complete)
        return new, rest

    def _adopted(self, entries: list[dict[str, Any]]) -> None:
        """Called with the entries another process appended, once they are in `entries`."""

    def refresh(self) -> list[dict[str, Any]]:
        """The entries other writers appended since the last look (shared mode; a line still
        being written is left for the next look)."""
        with self._mutex:
            if self._fd < 0:
                return []
            new, _ = self._catch_up()
            if new:
                self._adopted(new)
            return new

    @property
    def head(self) -> str:
        return self.entries[-1]["hash"] if self.entries else GENESIS

    def append(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Redact, chain, write and fsync one entry; returns it."""
        with self._mutex:
            if not self.shared:
                return self._write(event, data)
            self._lock()
            try:
                new, torn = self._catch_up()
                if new:
                    self._adopted(new)
                if torn:  # the lock is ours: a writer died mid-line
                    self._set_aside(torn)
                return self._write(event, data)
            finally:
                self._unlock()

    def _write(self, event: str, data: dict[str, Any] | None) -> dict[str, Any]:
        entry = {
            "seq": len(self.entries) + 1,
            "ts": utc_now(),
            "event": event,
            "data": _encodable(self.redact(data or {})),
            "prev": self.head,
        }
        entry["hash"] = entry_hash(entry)
        line = canonical(entry) + b"\n"
        with _signals_deferred():  # a Ctrl-C must not split the file from `entries`
            os.write(self._fd, line)
            self.entries.append(entry)
            self._offset += len(line)
            os.fsync(self._fd)
        return entry

    def close(self) -> None:
        if self._fd >= 0:
            if not self.shared:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
