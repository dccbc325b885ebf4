"""Where journals live, and finding an unfinished run to resume."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from runbook.runstate import last_run_outcome
from runbook.safeio import JOURNAL_LIMIT, open_regular


def state_root(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/runbook`, or `~/.local/state/runbook`."""
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(base) / "runbook"


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def new_journal_path(env: Mapping[str, str], playbook_id: str) -> Path:
    return state_root(env) / playbook_id / f"{new_run_id()}.jsonl"


def run_dir(journal: Path) -> Path:
    """The run's own directory (backups and the like) beside its journal."""
    return journal.with_name(journal.stem + ".d")


def _entry(line: bytes) -> dict[str, Any] | None:
    """A line as an entry with text `event` and object `data`, or None."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    sound = isinstance(entry, dict) and isinstance(entry.get("event"), str)
    return entry if sound and isinstance(entry.get("data"), dict) else None


def _run_of(handle: BinaryIO, target: Path, mode: str) -> list[dict[str, Any]] | None:
    """The entries of a journal whose run (first entry) is on `target` in `mode`; None for any
    other journal, or one with an entry runbook would not have written (a torn line is fine:
    resuming repairs it)."""
    first = _entry(handle.readline())
    if first is None or first["event"] != "run_started":
        return None
    if first["data"].get("target") != str(target) or first["data"].get("mode") != mode:
        return None
    entries = [first]
    for line in handle:
        entry = _entry(line)
        if entry is None:
            if line.endswith(b"\n"):
                return None
            break  # the torn last line
        entries.append(entry)
    return entries


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def find_unfinished(
    env: Mapping[str, str], playbook_id: str, target: Path, mode: str
) -> Path | None:
    """The newest journal of this playbook, target and mode whose run did not complete.

    Only regular files are read (no symlink is followed, a FIFO never blocks, each at most
    `JOURNAL_LIMIT` bytes); anything else in the state directory is passed over.
    """
    folder = state_root(env) / playbook_id
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob("*.jsonl"), key=_mtime, reverse=True)
    for path in candidates:
        try:
            with open_regular(path, limit=JOURNAL_LIMIT) as handle:
                entries = _run_of(handle, target, mode)
        except OSError:
            continue
        if entries and last_run_outcome(entries) != "completed":
            return path
    return None


def choose_journal(
    env: Mapping[str, str],
    playbook_id: str,
    target: Path,
    mode: str,
    journal: Path | None = None,
    new: bool = False,
) -> tuple[Path, bool]:
    """The journal a run uses and whether it resumes one: the given file, else the newest
    unfinished run of this playbook, target and mode (unless `new`), else a new file."""
    if journal is not None:
        return journal, journal.is_file() and journal.stat().st_size > 0
    if not new:
        found = find_unfinished(env, playbook_id, target, mode)
        if found is not None:
            return found, True
    return new_journal_path(env, playbook_id), False


def realpath(path: Path) -> Path:
    return Path(os.path.realpath(path))
