"""`runbook undo JOURNAL`: put back every file a run replaced, from the run's backups.

The journal's live `write_file` effects name each file, its backup (None when the run created it)
and its sha256 before and after. Changes are undone newest first, so a file changed twice ends up
with its content from before the run. A file edited since the run (its sha256 is neither what the
run wrote nor what was there before) is refused unless forced. Restores are atomic (temporary file
in the same directory, fsync, rename) and each one is journaled as an `undo` entry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runbook.atomic import fsync_dir, replace_atomically
from runbook.journal import Journal, JournalError, read_entries, verify
from runbook.runs import run_dir

Action = Literal["restore", "remove", "unchanged", "refuse"]


@dataclass
class Change:
    """One live `write_file` effect of the run."""

    seq: int
    path: Path
    backup: Path | None
    sha256_before: str | None
    sha256_after: str | None


@dataclass
class UndoItem:
    """What undo does (or would do) to one file: its oldest change names the original."""

    path: Path
    action: Action
    reason: str
    original: Change  # the run's first change to this file
    latest: Change  # the run's last change to this file
    current: str | None = None  # sha256 now (None: absent)
    done: bool = False
    error: str = ""


@dataclass
class UndoReport:
    items: list[UndoItem] = field(default_factory=list)
    head: str = ""
    dry_run: bool = False

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def ok(self) -> bool:
        return not any(i.action == "refuse" or i.error for i in self.items)


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def changes(entries: list[dict[str, Any]]) -> list[Change]:
    """Every live, successful `write_file` effect, oldest first."""
    out = []
    for entry in entries:
        data = entry.get("data") or {}
        if (
            entry.get("event") == "effect"
            and data.get("op") == "write_file"
            and data.get("outcome") == "ok"
            and not data.get("dry_run")
        ):
            out.append(
                Change(
                    seq=entry["seq"],
                    path=Path(data["path"]),
                    backup=Path(data["backup"]) if data.get("backup") else None,
                    sha256_before=data.get("sha256_before"),
                    sha256_after=data.get("sha256_after"),
                )
            )
    return out


def _inside(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    real = Path(os.path.realpath(path.parent)) / path.name
    root = Path(os.path.realpath(root))
    return root in real.parents


def _target(entries: list[dict[str, Any]]) -> Path | None:
    for entry in entries:
        if entry.get("event") == "run_started":
            target = (entry.get("data") or {}).get("target")
            return Path(target) if target else None
    return None


def plan_undo(
    entries: list[dict[str, Any]], *, force: bool = False, journal: Path | None = None
) -> list[UndoItem]:
    """What to do for each file the run changed, newest change first.

    Only files inside the run's target are touched, and (given `journal`) only backups inside
    the run's own backup directory are read: a journal is data, not a licence to write anywhere.
    """
    target = _target(entries)
    backups = run_dir(journal) / "backups" if journal is not None else None
    by_path: dict[Path, list[Change]] = {}
    for change in changes(entries):
        by_path.setdefault(change.path, []).append(change)
    items = []
    for path, history in sorted(by_path.items(), key=lambda kv: -kv[1][-1].seq):
        original, latest = history[0], history[-1]
        current = sha256_of(path) if not path.is_symlink() else "symlink"
        item = UndoItem(path, "restore", "", original, latest, current)
        if not _inside(path, target):
            item.action, item.reason = "refuse", f"outside the run's target ({target})"
        elif original.backup is not None and backups and not _inside(original.backup, backups):
            item.action, item.reason = "refuse", f"backup {original.backup} is not the run's own"
        elif current == original.sha256_before:
            item.action, item.reason = "unchanged", "already as before the run"
        elif current != latest.sha256_after and not force:
            now = "is missing" if current is None else f"now has sha256 {str(current)[:12]}"
            item.action = "refuse"
            item.reason = (
                f"edited since the run: it {now}, the run left "
                f"{str(latest.sha256_after)[:12]}; use --force to overwrite"
            )
        elif original.backup is None:
            item.action, item.reason = "remove", "created by the run"
        else:
            item.reason = f"from {original.backup}"
            if sha256_of(original.backup) != original.sha256_before:
                item.action = "refuse"
                item.reason = f"backup {original.backup} is missing or does not match the journal"
        if force and current != latest.sha256_after and item.action in ("restore", "remove"):
            item.reason += " (forced: the file was edited since the run)"
        items.append(item)
    return items


def _restore(backup: Path, path: Path) -> None:
    """Atomically replace `path` with a copy of `backup` (content, mode and times)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: shutil.copy2(backup, tmp), suffix=".undo")


def undo(
    journal: Journal, *, force: bool = False, dry_run: bool = False, by: str = ""
) -> UndoReport:
    """Undo the run journaled in `journal` (opened, so locked). Journals each file it touches."""
    report = UndoReport(dry_run=dry_run)
    report.items = plan_undo(journal.entries, force=force, journal=journal.path)
    for item in report.items:
        if dry_run:
            continue
        if item.action in ("restore", "remove"):
            try:
                if item.action == "restore":
                    assert item.original.backup is not None
                    _restore(item.original.backup, item.path)
                else:
                    item.path.unlink(missing_ok=True)
                    fsync_dir(item.path.parent)
                item.done = True
            except OSError as exc:
                item.error = exc.strerror or str(exc)
        if item.action == "unchanged":
            continue
        journal.append(
            "undo",
            {
                "path": str(item.path),
                "action": item.action,
                "outcome": "error" if item.error else ("ok" if item.done else "refused"),
                "reason": item.error or item.reason,
                "backup": str(item.original.backup) if item.original.backup else None,
                "sha256_before": item.current,
                "sha256_after": sha256_of(item.path) if item.done else item.current,
                "undoes_seq": [item.original.seq, item.latest.seq],
                "forced": force,
                "by": by,
            },
        )
    report.head = journal.head
    return report


def preview(path: Path, *, force: bool = False) -> UndoReport:
    """A dry run: read (and verify) the journal without locking or writing it; touch nothing."""
    result = verify(path)
    if not result.ok:
        raise JournalError(f"{path}: the journal does not verify: {result}")
    entries = read_entries(path)
    head = entries[-1]["hash"] if entries else ""
    items = plan_undo(entries, force=force, journal=path)
    return UndoReport(items, head=head, dry_run=True)


def render(report: UndoReport) -> list[str]:
    """One line per file, then a summary."""
    verbs = {
        "restore": ("would restore", "restored"),
        "remove": ("would remove", "removed"),
        "unchanged": ("unchanged", "unchanged"),
        "refuse": ("REFUSED", "REFUSED"),
    }
    lines = []
    for item in report.items:
        verb = verbs[item.action][0 if report.dry_run else 1]
        if item.error:
            verb = f"FAILED to {item.action}"
        lines.append(f"{verb} {item.path}: {item.error or item.reason}")
    if not report.items:
        lines.append("nothing to undo: this run replaced no file")
    elif not any(i.action in ("restore", "remove") for i in report.items) and report.ok:
        lines.append("nothing to undo: every file is as it was before the run")
    restore, remove = ("to restore", "to remove") if report.dry_run else ("restored", "removed")
    counts = (
        f"{report.count('restore')} {restore}, {report.count('remove')} {remove}, "
        f"{report.count('unchanged')} unchanged, {report.count('refuse')} refused"
    )
    if report.dry_run:
        lines.append(f"undo (dry run, nothing changed): {counts}")
    else:
        lines.append(f"undo: {counts}; head: {report.head}")
    return lines
