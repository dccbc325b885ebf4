"""The append-only, hash-chained, fsync'd JSONL journal: the truth about a run.

Each line is `{"seq", "ts", "event", "data", "prev", "hash"}`: `hash` is the sha256 of the
canonical JSON (sorted keys, no spaces) of the entry without `hash`; the first `prev` is 64 zeros.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "ts", "event", "data", "prev", "hash")


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


def _line_problem(raw: bytes, number: int, prev: str) -> str:
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "not a JSON object (torn or edited line)"
    if not isinstance(entry, dict) or set(entry) != set(FIELDS):
        return "entry does not have exactly the fields " + ", ".join(FIELDS)
    if entry["seq"] != number:
        return f"seq is {entry['seq']}, expected {number} (line deleted, inserted or moved)"
    if entry["prev"] != prev:
        return "prev does not match the hash of the line before (line deleted or moved)"
    if entry_hash(entry) != entry["hash"]:
        return "hash does not match the entry's content (line modified)"
    if canonical(entry) != raw:
        return "line is not in canonical form (re-encoded or edited)"
    return ""


def _inserted_before(lines: list[bytes], number: int, before: str, prev: str) -> bool:
    """Whether line `number` is a sound entry following line `number - 2` directly, and the
    chain goes on from it: then line `number - 1` is a branch that was slipped in."""
    if number < 2 or number >= len(lines):
        return False
    try:
        entry, following = json.loads(lines[number - 1]), json.loads(lines[number])
    except (ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(entry, dict)
        and isinstance(following, dict)
        and set(entry) == set(FIELDS)
        and entry["seq"] == number - 1
        and entry["prev"] == before
        and entry_hash(entry) == entry["hash"]
        and entry["hash"] != prev
        and following.get("prev") == entry["hash"]
    )


def _split(raw: bytes) -> list[bytes]:
    """The file's lines, numbered as in the file: a blank line is a line (and not an entry)."""
    lines = raw.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def verify(path: Path, head: str | None = None) -> Verification:
    """Verify a journal file."""
    return verify_lines(_split(Path(path).read_bytes()), head)


def read_entries(path: Path) -> list[dict[str, Any]]:
    """All entries of a journal, without verifying."""
    entries = []
    for raw in _split(Path(path).read_bytes()):
        with contextlib.suppress(ValueError):
            entry = json.loads(raw)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


class Journal:
    """The single writer of one journal file. Holds an exclusive lock while open.

    Every `data` passes `redact` before it is hashed and written. A crash can leave a torn last
    line; opening for append moves such bytes aside (`<name>.torn`) and records that it did.
    """

    def __init__(self, path: Path, redact: Callable[[Any], Any]) -> None:
        self.path = Path(path)
        self.redact = redact
        self._mutex = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise JournalError(
                f"{self.path} is in use by another runbook process; wait for it or stop it"
            ) from None
        self.entries: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        torn = b""
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            raw, torn = raw[:cut], raw[cut:]
        lines = _split(raw)
        result = verify_lines(lines)
        if not result.ok:
            os.close(self._fd)
            raise JournalError(f"{self.path}: refusing to append to a broken chain: {result}")
        self.entries = [json.loads(line) for line in lines]
        if torn:
            aside = self.path.with_name(f"{self.path.name}.torn")
            n = 1
            while aside.exists():
                aside = self.path.with_name(f"{self.path.name}.torn.{n}")
                n += 1
            aside.write_bytes(torn)
            os.truncate(self.path, len(raw))
            self.append(
                "journal_repaired",
                {
                    "torn_bytes": len(torn),
                    "torn_sha256": hashlib.sha256(torn).hexdigest(),
                    "moved_to": str(aside),
                },
            )

    @property
    def head(self) -> str:
        return self.entries[-1]["hash"] if self.entries else GENESIS

    def append(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Redact, chain, write and fsync one entry; returns it."""
        with self._mutex:
            entry = {
                "seq": len(self.entries) + 1,
                "ts": utc_now(),
                "event": event,
                "data": self.redact(data or {}),
                "prev": self.head,
            }
            entry["hash"] = entry_hash(entry)
            line = canonical(entry) + b"\n"
            with _signals_deferred():  # a Ctrl-C must not split the file from `entries`
                os.write(self._fd, line)
                self.entries.append(entry)
                os.fsync(self._fd)
            return entry

    def close(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
