"""`runbook undo JOURNAL --target DIR`: put back every file a run replaced, from the run's backups.

The journal's live `write_file` effects name each file, its backup (None when the run created it)
and its sha256 before and after. Changes are undone newest first, so a file changed twice ends up
with its content from before the run. A file edited since the run (its sha256 is neither what the
run wrote nor what was there before) is refused unless forced. Restores are atomic (temporary file
in the same directory, fsync, rename) and each one is journaled as an `undo` entry.

A journal is data, not a licence to write anywhere. Its hash chain has no key, so whoever can
edit it can rewrite it and recompute every hash. Undo therefore confines itself to what the
journal cannot choose:

- `--target DIR` (required for a live undo): every journaled target must be that directory, and
  every file undo writes or removes must lie inside it. The directories on the way are opened
  one at a time from DIR without following symlinks, so a symlink planted on the way is refused.
- backups are read only from the run's own backup directory (beside the journal file named on
  the command line), as regular files whose sha256 is the one journaled, and that very content
  is what is written;
- `--head HASH` (recommended): the head printed at the end of the run. The journal must hold it
  with an intact chain up to it, and only the changes journaled up to it are undone; a journal
  rewritten and re-hashed no longer holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runbook.journal import (
    Journal,
    JournalError,
    MalformedEntry,
    json_type,
    numbered_entries,
    read_journal,
    verify_bytes,
)
from runbook.runs import run_dir
from runbook.safeio import LOCKFILE_LIMIT, open_regular
from runbook.termsafe import printable

Action = Literal["restore", "remove", "unchanged", "refuse"]
RUN_EVENTS = ("run_started", "run_resumed")
SYMLINK, SPECIAL = "symlink", "not a regular file"  # what `current` says of such a path


class UndoRefused(JournalError):
    """Undo will not touch anything: the journal is not the run of this target or head."""


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
    current: str | None = None  # sha256 now (None: absent; SYMLINK, SPECIAL, or unreadable)
    done: bool = False
    error: str = ""


@dataclass
class UndoReport:
    items: list[UndoItem] = field(default_factory=list)
    head: str = ""
    dry_run: bool = False
    target: Path | None = None
    target_checked: bool = True  # False: a dry run without --target shows the journal's target
    ignored: int = 0  # entries journaled after --head, not undone

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def ok(self) -> bool:
        return not any(i.action == "refuse" or i.error for i in self.items)


def sha256_of(path: Path) -> str | None:
    """The sha256 of the regular file at `path`; None when absent, `SYMLINK` or `SPECIAL` when
    it is not a regular file (never opened, so a FIFO cannot block)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISLNK(mode):
        return SYMLINK
    if not stat.S_ISREG(mode):
        return SPECIAL
    try:
        with open_regular(path, limit=LOCKFILE_LIMIT) as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def _optional_text(data: dict[str, Any], key: str, line: int) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEntry(line, f"data.{key} is {json_type(value)}, expected text")
    if value and "\x00" in value:
        raise MalformedEntry(line, f"data.{key} holds a NUL character")
    return value or None


def changes(entries: list[dict[str, Any]]) -> list[Change]:
    """Every live, successful `write_file` effect, oldest first. Entries must have passed
    `journal.check_entry`; a field of the wrong type raises `MalformedEntry`."""
    out = []
    for entry in entries:
        data = entry["data"]
        if (
            entry["event"] == "effect"
            and data.get("op") == "write_file"
            and data.get("outcome") == "ok"
            and not data.get("dry_run")
        ):
            line = entry["seq"]
            path = _optional_text(data, "path", line)
            if path is None:
                raise MalformedEntry(line, "data.path is missing")
            backup = _optional_text(data, "backup", line)
            out.append(
                Change(
                    seq=line,
                    path=Path(path),
                    backup=Path(backup) if backup else None,
                    sha256_before=_optional_text(data, "sha256_before", line),
                    sha256_after=_optional_text(data, "sha256_after", line),
                )
            )
    return out


def _parts_inside(path: Path, root: Path) -> tuple[str, ...] | None:
    """`path`'s components below `root`, judged on the text alone: None unless `path` is
    absolute, has no `.` or `..` component and lies strictly below `root`."""
    if not path.is_absolute() or any(part in (".", "..") for part in path.parts):
        return None
    if os.path.normpath(path) != str(path):
        return None
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    return parts or None


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` lies strictly inside `root`, on the text and with every directory on the
    way resolved (symlinks included; the last component itself is what undo replaces)."""
    if _parts_inside(path, root) is None:
        return False
    real = Path(os.path.realpath(path.parent)) / path.name
    return Path(os.path.realpath(root)) in real.parents


def journal_targets(entries: list[dict[str, Any]]) -> list[str]:
    """The target of every `run_started` and `run_resumed` entry, in order."""
    targets = []
    for entry in entries:
        if entry["event"] in RUN_EVENTS:
            target = entry["data"].get("target")
            if not isinstance(target, str) or not target:
                what = json_type(target) if target is not None else "missing"
                raise MalformedEntry(entry["seq"], f"data.target is {what}, expected text")
            targets.append(target)
    return targets


@dataclass
class Scope:
    """What undo may act on: the entries up to the head, inside `target`, backups from
    `backups`."""

    entries: list[dict[str, Any]]
    target: Path
    checked: bool
    backups: Path
    ignored: int


def scope(
    entries: list[dict[str, Any]], journal: Path, target: Path | None, head: str | None
) -> Scope:
    """Check the journal against `--target` and `--head`; raises `UndoRefused`."""
    targets = journal_targets(entries)
    if not targets:
        raise UndoRefused(f"{journal} records no run (no run_started entry): nothing to undo")
    ignored = 0
    if head is not None:
        hashes = [entry["hash"] for entry in entries]
        if head not in hashes:
            raise UndoRefused(
                f"head {head} is not in {journal}: the journal was rewritten, cut short, or is "
                "not the run that printed this head; refusing to undo"
            )
        keep = hashes.index(head) + 1
        ignored = len(entries) - keep
        entries = entries[:keep]
    if target is None:
        return Scope(entries, Path(targets[0]), False, run_dir(journal) / "backups", ignored)
    real = Path(os.path.realpath(target))
    if not real.is_dir():
        raise UndoRefused(f"--target {target} is not a directory")
    for named in dict.fromkeys(targets):
        if Path(os.path.realpath(named)) != real:
            raise UndoRefused(
                f"the journal's target {named} is not --target {target} ({real}); refusing to "
                "undo: give the directory the run changed"
            )
    return Scope(entries, real, True, run_dir(journal) / "backups", ignored)


def plan_undo(
    entries: list[dict[str, Any]], where: Scope, *, force: bool = False
) -> list[UndoItem]:
    """What to do for each file the run changed, newest change first."""
    by_path: dict[Path, list[Change]] = {}
    for change in changes(entries):
        by_path.setdefault(change.path, []).append(change)
    items = []
    for path, history in sorted(by_path.items(), key=lambda kv: -kv[1][-1].seq):
        original, latest = history[0], history[-1]
        inside = _inside(path, where.target)
        current = sha256_of(path) if inside else None
        item = UndoItem(path, "restore", "", original, latest, current)
        if not inside:
            item.action, item.reason = "refuse", f"outside the target ({where.target})"
        elif original.backup is not None and not _inside(original.backup, where.backups):
            item.action, item.reason = "refuse", f"backup {original.backup} is not the run's own"
        elif current == original.sha256_before:
            item.action, item.reason = "unchanged", "already as before the run"
        elif current != latest.sha256_after and not force:
            now = "is missing" if current is None else f"now has sha256 {str(current)[:12]}"
            if current in (SYMLINK, SPECIAL) or str(current).startswith("unreadable"):
                now = f"is now {current}"
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


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parent(root: Path, path: Path, *, create: bool) -> tuple[int, str]:
    """A descriptor of `path`'s directory, reached from `root` one component at a time without
    following a symlink (missing directories made with `create`), and `path`'s name in it."""
    parts = _parts_inside(path, root)
    if parts is None:
        raise OSError(0, f"not inside {root}")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                reason = f"{part} on the way is a symlink or not a directory ({exc.strerror})"
                raise OSError(exc.errno, reason) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _backup_content(backup: Path, sha256: str | None) -> tuple[bytes, os.stat_result]:
    """The backup's bytes and status, read as a regular file (no symlink followed); refused
    unless the bytes are the ones the journal recorded."""
    with open_regular(backup, limit=LOCKFILE_LIMIT) as handle:
        data, status = handle.read(), os.fstat(handle.fileno())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise OSError(0, f"backup {backup} changed since it was checked")
    return data, status


def _restore(root: Path, item: UndoItem) -> None:
    """Atomically replace the file with the backup's content, mode and times."""
    assert item.original.backup is not None
    data, status = _backup_content(item.original.backup, item.original.sha256_before)
    parent, name = _parent(root, item.path, create=True)
    try:
        tmp = f".{name}.{secrets.token_hex(4)}.undo"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600, dir_fd=parent)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, stat.S_IMODE(status.st_mode))
                os.utime(fd, ns=(status.st_atime_ns, status.st_mtime_ns))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise
        os.fsync(parent)
    finally:
        os.close(parent)


def _remove(root: Path, item: UndoItem) -> None:
    """Remove the file the run created (never a directory, never through a symlink)."""
    try:
        parent, name = _parent(root, item.path, create=False)
    except FileNotFoundError:
        return  # its directory is gone, and the file with it
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)
        os.fsync(parent)
    finally:
        os.close(parent)


def undo(
    journal: Journal,
    *,
    target: Path,
    head: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    by: str = "",
) -> UndoReport:
    """Undo the run journaled in `journal` (opened, so locked) inside `target`. Journals each
    file it touches. Raises `UndoRefused` and `MalformedEntry`."""
    where = scope(journal.entries, journal.path, target, head)
    report = UndoReport(dry_run=dry_run, target=where.target, ignored=where.ignored)
    report.items = plan_undo(where.entries, where, force=force)
    for item in report.items:
        if dry_run:
            continue
        if item.action in ("restore", "remove"):
            try:
                if item.action == "restore":
                    _restore(where.target, item)
                else:
                    _remove(where.target, item)
                item.done = True
            except OSError as exc:
                item.error = exc.strerror or str(exc)
                if exc.filename:
                    item.error += f": {exc.filename}"
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


def preview(
    path: Path, *, target: Path | None = None, head: str | None = None, force: bool = False
) -> UndoReport:
    """A dry run: read (and verify) the journal without locking or writing it; touch nothing.
    Without `target`, the journal's own target is shown (and marked unchecked)."""
    raw = read_journal(path)
    result = verify_bytes(raw)
    if not result.ok:
        raise JournalError(f"{path}: the journal does not verify: {result}")
    entries = [entry for _, entry in numbered_entries(raw)]
    where = scope(entries, path, target, head)
    items = plan_undo(where.entries, where, force=force)
    return UndoReport(
        items,
        head=entries[-1]["hash"] if entries else "",
        dry_run=True,
        target=where.target,
        target_checked=where.checked,
        ignored=where.ignored,
    )


def render(report: UndoReport) -> list[str]:
    """The target, one line per file, then a summary; journal text shown escaped."""
    verbs = {
        "restore": ("would restore", "restored"),
        "remove": ("would remove", "removed"),
        "unchanged": ("unchanged", "unchanged"),
        "refuse": ("REFUSED", "REFUSED"),
    }
    lines = []
    if report.target is not None:
        if report.target_checked:
            lines.append(f"target: {report.target}")
        else:
            lines.append(
                f"target: {report.target} (as the journal says; not checked: a live undo "
                "needs --target)"
            )
    if report.ignored:
        lines.append(f"{report.ignored} entries after --head ignored: their changes are not undone")
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
    return [printable(line) for line in lines]
