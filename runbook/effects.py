"""The single door for every side effect: live effects act and journal, dry-run ones only journal.

A step never writes a file, deletes a tree or runs a command itself: it asks `Effects`, so a dry
run holds by construction and the journal is complete by construction.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from runbook.atomic import replace_atomically
from runbook.redact import Redactor

T = TypeVar("T")
OUTPUT_TAIL = 4000


class EffectError(Exception):
    """A side effect was refused or failed; the message names what and why."""


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    dry_run: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.dry_run or self.returncode == 0


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, entries) under `path` (itself included), never following a symlink.

    One `lstat` per entry through `os.scandir` (whose type test needs no extra system call).
    """
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0
    total, files = st.st_size, 1
    if not stat.S_ISDIR(st.st_mode):
        return total, files
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                        files += 1
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return total, files


@dataclass
class _Control:
    """What an `Effects` and its widened copies share: the commands running, and a stop."""

    running: set[subprocess.Popen[str]] = field(default_factory=set)
    stopped: bool = False


class Effects:
    """Side effects confined to `roots`, journaled through `record`, backed up into `backup_dir`."""

    def __init__(
        self,
        *,
        dry_run: bool,
        roots: Sequence[Path],
        backup_dir: Path,
        record: Callable[[str, dict[str, Any]], Any],
        redactor: Redactor,
        protected: Sequence[Path] = (),
        files: Sequence[Path] = (),
        output: Callable[[str], None] | None = None,
        control: _Control | None = None,
    ) -> None:
        self.dry_run = dry_run
        # shared by every widened copy: the commands running now, and whether to start more
        self._control = control or _Control()
        # called with each (redacted) line a command prints while it runs: the app's live log
        self.output = output
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self.backup_dir = backup_dir
        self._record = record
        self.redactor = redactor
        # never removed, nor any directory holding one, whatever the roots allow (e.g. HOME)
        self.protected = [Path(os.path.realpath(p)) for p in protected]
        # single files outside the roots a step declared it will rewrite (`~/.npmrc`, say)
        self.files = [Path(os.path.realpath(f)) for f in files]

    def widened(self, roots: Sequence[Path], *, home: Path, reason: str = "") -> Effects:
        """An `Effects` that may also act *inside* `roots`: places outside the target a step has
        declared in its plan, such as package-manager caches under HOME.

        Each extra root must be absolute and must not be `/`, HOME, or a directory holding HOME or
        the target; `home` (and every earlier protected path) stays protected: `remove_tree` never
        removes it nor anything that contains it. Like the target, an extra root itself is never
        removed, only what lies inside it. The grant is journaled (op `allow_roots`). `self` is
        left as it was: the widening lasts as long as the returned object is used.
        """
        home_real = Path(os.path.realpath(home))
        protected = [*self.protected, home_real]
        extra = []
        for root in roots:
            root = Path(root)
            if not root.is_absolute():
                raise EffectError(f"refusing to allow a relative root: {root}")
            real = Path(os.path.realpath(root))
            held = [p for p in (*protected, *self.roots) if _inside(p, real)]
            if held:
                raise EffectError(f"refusing to allow {root} as a root: it is or holds {held[0]}")
            if real not in self.roots and real not in extra:
                extra.append(real)
        self._journal("allow_roots", roots=[str(r) for r in extra], reason=reason, outcome="ok")
        return Effects(
            dry_run=self.dry_run,
            roots=[*self.roots, *extra],
            backup_dir=self.backup_dir,
            record=self._record,
            redactor=self.redactor,
            protected=protected,
            files=self.files,
            output=self.output,
            control=self._control,
        )

    def with_files(self, files: Sequence[Path], *, reason: str = "") -> Effects:
        """An `Effects` that may also rewrite these exact files (never remove them, never
        anything else beside them): credential files such as `~/.aws/credentials` or `~/.npmrc`.
        The grant is journaled (op `allow_files`)."""
        extra = []
        for file in files:
            file = Path(file)
            if not file.is_absolute():
                raise EffectError(f"refusing to allow a relative path: {file}")
            extra.append(Path(os.path.realpath(file.parent)) / file.name)
        self._journal("allow_files", files=[str(f) for f in extra], reason=reason, outcome="ok")
        return Effects(
            dry_run=self.dry_run,
            roots=self.roots,
            backup_dir=self.backup_dir,
            record=self._record,
            redactor=self.redactor,
            protected=self.protected,
            files=[*self.files, *extra],
            output=self.output,
            control=self._control,
        )

    # -- confinement -------------------------------------------------------------------------
    def confine(self, path: Path, *, allow_root: bool = False) -> Path:
        """The real location of `path` (its last component not resolved), or refuse it."""
        path = Path(path)
        if not path.is_absolute():
            raise EffectError(f"refusing a relative path: {path}")
        if path.name in ("", ".", ".."):
            # `root/..` names the root's parent: resolve it whole, never keep a `..` in the result
            real = Path(os.path.realpath(path))
        else:
            real = Path(os.path.realpath(path.parent)) / path.name
        if real in self.files:
            return real
        for root in self.roots:
            if real == root and not allow_root:
                raise EffectError(f"refusing to touch {path}: it is the target itself")
            if _inside(real, root):
                return real
        allowed = ", ".join(str(r) for r in self.roots)
        raise EffectError(f"refusing to touch {path}: it is outside the target ({allowed})")

    def _journal(self, op: str, **data: Any) -> None:
        self._record("effect", {"op": op, "dry_run": self.dry_run, **data})

    # -- files -------------------------------------------------------------------------------
    def write_file(self, path: Path, content: bytes | str, *, reason: str = "") -> str | None:
        """Atomically replace (or create) a file, keeping a backup of the old one.

        Returns the backup's path (None when the file is new or in a dry run).
        """
        real = self.confine(path)
        if real.is_symlink() or (real.exists() and not real.is_file()):
            what = "a symlink" if real.is_symlink() else "not a regular file"
            raise EffectError(f"refusing to replace {real}: it is {what}")
        data = content.encode() if isinstance(content, str) else content
        before = sha256_file(real)
        after = hashlib.sha256(data).hexdigest()
        if self.dry_run:
            self._journal(
                "write_file",
                path=str(real),
                reason=reason,
                sha256_before=before,
                sha256_after=after,
                outcome="would",
            )
            return None
        try:
            backup = self._backup(real) if before is not None else None
            mode = stat.S_IMODE(real.stat().st_mode) if before is not None else 0o644

            def fill(tmp: str) -> None:
                Path(tmp).write_bytes(data)
                os.chmod(tmp, mode)

            replace_atomically(real, fill)
        except OSError as exc:
            self._journal(
                "write_file",
                path=str(real),
                reason=reason,
                outcome="error",
                error=exc.strerror or str(exc),
            )
            raise EffectError(f"cannot write {real}: {exc.strerror or exc}") from None
        self._journal(
            "write_file",
            path=str(real),
            reason=reason,
            sha256_before=before,
            sha256_after=after,
            backup=str(backup) if backup else None,
            outcome="ok",
        )
        return str(backup) if backup else None

    def write_secret_file(self, path: Path, content: str, *, reason: str = "") -> None:
        """Atomically rewrite a file that holds secrets, keeping its mode (0600 when new).

        No backup is kept: a copy of a credential file is one more place a secret leaks from,
        and the old secret is being revoked anyway. The journal gets the path and the reason,
        never content nor a hash of it (a file around one weak password could be guessed back).
        """
        real = self.confine(path)
        if real.is_symlink() or (real.exists() and not real.is_file()):
            what = "a symlink" if real.is_symlink() else "not a regular file"
            raise EffectError(f"refusing to replace {real}: it is {what}")
        data = content.encode()
        before = sha256_file(real)
        common = {"path": str(real), "reason": reason, "backup": None, "secret": True}
        if self.dry_run:
            self._journal("write_secret_file", **common, outcome="would")
            return
        try:
            mode = stat.S_IMODE(real.stat().st_mode) if before is not None else 0o600

            def fill(tmp: str) -> None:
                os.chmod(tmp, mode)
                Path(tmp).write_bytes(data)

            replace_atomically(real, fill)
        except OSError as exc:
            self._journal(
                "write_secret_file", **common, outcome="error", error=exc.strerror or str(exc)
            )
            raise EffectError(f"cannot write {real}: {exc.strerror or exc}") from None
        self._journal("write_secret_file", **common, outcome="ok")

    def _backup(self, real: Path) -> Path:
        relative = str(real).lstrip("/")
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.backup_dir / stamp / relative
        n = 1
        while target.exists():
            target = self.backup_dir / f"{stamp}-{n}" / relative
            n += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, target)
        return target

    # -- trees -------------------------------------------------------------------------------
    def remove_tree(self, path: Path, *, reason: str = "") -> int:
        """Remove a directory tree inside a root; a symlink is unlinked, never followed.

        Returns the bytes freed (would be freed, in a dry run). A missing path is a no-op, so a
        rerun after a crash finishes the job instead of failing.
        """
        real = self.confine(path)
        held = next((p for p in self.protected if _inside(p, real)), None)
        if held is not None:
            raise EffectError(f"refusing to remove {path}: it is or holds {held}")
        if not os.path.lexists(real):
            self._journal("remove_tree", path=str(real), reason=reason, outcome="absent")
            return 0
        size, files = tree_size(real)
        if self.dry_run:
            self._journal(
                "remove_tree",
                path=str(real),
                reason=reason,
                bytes=size,
                files=files,
                outcome="would",
            )
            return size
        try:
            if real.is_symlink() or not real.is_dir():
                real.unlink()
            else:
                _rmtree(real)
        except OSError as exc:
            left, _ = tree_size(real) if os.path.lexists(real) else (0, 0)
            self._journal(
                "remove_tree",
                path=str(real),
                reason=reason,
                outcome="error",
                bytes_freed=size - left,
                error=exc.strerror or str(exc),
            )
            raise EffectError(f"cannot remove {real}: {exc.strerror or exc}") from None
        self._journal(
            "remove_tree", path=str(real), reason=reason, bytes=size, files=files, outcome="ok"
        )
        return size

    # -- commands ----------------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        reason: str = "",
        writes: Sequence[Path] = (),
    ) -> CommandResult:
        """Run a command (never through a shell) with a timeout, capturing its output.

        `writes` names files the command may rewrite (a lockfile, say): they are backed up first,
        and each one that changed is journaled like a `write_file`, so undo and git see it.
        """
        argv = [str(a) for a in argv]
        if self._control.stopped:
            raise EffectError("not started: the operator stopped the run")
        cwd_real = self.confine(cwd, allow_root=True)
        shown = self.redactor.text(" ".join(argv))
        if self.dry_run:
            self._journal(
                "run",
                argv=shown,
                cwd=str(cwd_real),
                reason=reason,
                outcome="would",
                writes=[str(p) for p in writes],
            )
            return CommandResult(argv, None, dry_run=True)
        tracked = [self._before_command(Path(p)) for p in writes]
        try:
            return self._run(argv, shown, cwd_real, env, timeout, reason)
        finally:
            for real, before, backup in tracked:
                self._after_command(real, before, backup, shown)

    def _before_command(self, path: Path) -> tuple[Path, str | None, Path | None]:
        real = self.confine(path)
        before = sha256_file(real)
        return real, before, self._backup(real) if before is not None else None

    def _after_command(
        self, real: Path, before: str | None, backup: Path | None, command: str
    ) -> None:
        after = sha256_file(real)
        if after == before:
            if backup is not None:
                backup.unlink(missing_ok=True)
            return
        self._journal(
            "write_file",
            path=str(real),
            reason=f"rewritten by `{command}`",
            sha256_before=before,
            sha256_after=after,
            backup=str(backup) if backup else None,
            outcome="ok",
        )

    def _run(
        self,
        argv: list[str],
        shown: str,
        cwd_real: Path,
        env: Mapping[str, str] | None,
        timeout: float,
        reason: str,
    ) -> CommandResult:
        started = time.monotonic()
        try:
            proc = self._spawn(argv, cwd_real, env, timeout)
        except FileNotFoundError:
            self._journal(
                "run",
                argv=shown,
                cwd=str(cwd_real),
                reason=reason,
                outcome="error",
                error="command not found",
            )
            raise EffectError(f"command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired as exc:
            result = CommandResult(
                argv,
                None,
                _text(exc.stdout),
                _text(exc.stderr),
                time.monotonic() - started,
                timed_out=True,
            )
            self._journal(
                "run",
                argv=shown,
                cwd=str(cwd_real),
                reason=reason,
                outcome="timeout",
                timeout=timeout,
                stderr_tail=result.stderr[-OUTPUT_TAIL:],
            )
            return result
        result = CommandResult(
            argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started
        )
        self._journal(
            "run",
            argv=shown,
            cwd=str(cwd_real),
            reason=reason,
            outcome="ok" if proc.returncode == 0 else "error",
            returncode=proc.returncode,
            duration=round(result.duration, 3),
            stdout_tail=proc.stdout[-OUTPUT_TAIL:],
            stderr_tail=proc.stderr[-OUTPUT_TAIL:],
        )
        return result

    def _spawn(
        self, argv: list[str], cwd: Path, env: Mapping[str, str] | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """`subprocess.run` (output captured, a timeout, the child killed on Ctrl-C) that also
        hands each output line, redacted, to `self.output`, and that `stop_commands` can end."""
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self._control.running.add(proc)
        chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}

        def pump(name: str, stream: Any) -> None:
            for line in stream:
                chunks[name].append(line)
                if self.output is not None:
                    with contextlib.suppress(Exception):  # a closed screen must not stop it
                        self.output(self.redactor.text(line.rstrip("\n")))

        pumps = [
            threading.Thread(target=pump, args=(name, getattr(proc, name)), daemon=True)
            for name in chunks
        ]
        for thread in pumps:
            thread.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            for thread in pumps:
                thread.join(timeout=5)
            out, err = "".join(chunks["stdout"]), "".join(chunks["stderr"])
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from None
        except BaseException:  # Ctrl-C: the child does not outlive the step
            proc.kill()
            proc.wait()
            raise
        finally:
            self._control.running.discard(proc)
        for thread in pumps:
            thread.join(timeout=5)
        out, err = "".join(chunks["stdout"]), "".join(chunks["stderr"])
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def stop_commands(self, grace: float = 3.0) -> int:
        """The operator quit: end every command still running (SIGTERM, then SIGKILL after
        `grace` seconds) and start no other. Returns how many were running."""
        self._control.stopped = True
        running = list(self._control.running)
        for proc in running:
            with contextlib.suppress(OSError):
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        return len(running)

    # -- everything else (AWS, keyring, git) -------------------------------------------------
    def call(
        self,
        service: str,
        operation: str,
        fn: Callable[[], T],
        *,
        summary: str,
        dry_result: T | None = None,
    ) -> T | None:
        """Perform an external call (an AWS API, a keyring write, a git commit) through the door."""
        if self.dry_run:
            self._journal(
                "call", service=service, operation=operation, summary=summary, outcome="would"
            )
            return dry_result
        try:
            result = fn()
        except Exception as exc:
            message = self.redactor.text(str(exc))
            self._journal(
                "call",
                service=service,
                operation=operation,
                summary=summary,
                outcome="error",
                error=message,
            )
            raise EffectError(f"{service} {operation} failed: {message}") from None
        self._journal("call", service=service, operation=operation, summary=summary, outcome="ok")
        return result


def _make_writable_and_retry(func: Callable[..., Any], path: str, _exc: Any) -> None:
    """rmtree error hook: read-only entries (and their read-only parents) are made writable."""
    writable = stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR
    parent = os.path.dirname(path)
    with contextlib.suppress(OSError):
        os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | writable)
    if not os.path.islink(path):
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | writable)
    if func is os.open:
        # a directory that could not be opened (mode 0o000, say); `os.open(path)` cannot be
        # retried as such (it needs flags), so remove it whole now that it may be readable
        if not os.access(path, os.R_OK | os.X_OK):
            raise _exc[1] if isinstance(_exc, tuple) else _exc
        _rmtree(Path(path))
        return
    func(path)


def _rmtree(path: Path) -> None:
    if "onexc" in shutil.rmtree.__code__.co_varnames:  # Python 3.12+
        shutil.rmtree(path, onexc=_make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=_make_writable_and_retry)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
