"""Where journals live, and finding an unfinished run to resume."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from runbook.runstate import last_run_outcome


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


def _first_entry(path: Path) -> dict | None:
    try:
        with path.open("rb") as handle:
            return json.loads(handle.readline())
    except (OSError, ValueError):
        return None


def find_unfinished(
    env: Mapping[str, str], playbook_id: str, target: Path, mode: str
) -> Path | None:
    """The newest journal of this playbook, target and mode whose run did not complete."""
    folder = state_root(env) / playbook_id
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        first = _first_entry(path)
        if not isinstance(first, dict) or first.get("event") != "run_started":
            continue
        data = first.get("data")
        if not isinstance(data, dict):
            continue
        if data.get("target") != str(target) or data.get("mode") != mode:
            continue
        entries = []
        with path.open("rb") as handle:
            for line in handle:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        if last_run_outcome(entries) != "completed":
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
