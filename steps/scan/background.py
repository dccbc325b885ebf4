"""Findings worked out by a forked child while the scan goes on with the rest.

Walking a home's install trees (every package directory listed, when the playbook has payload
files) is system calls; reading its lockfiles is Python. One process does one after the other; a
child doing the walk beside the parent's reading takes the scan from their sum to the longer of
the two. Only where that is safe and cheap: a POSIX `fork` in a process with a single thread (the
TUI runs steps in worker threads; forking there could copy a lock another thread holds), and the
child's findings come back pickled through a pipe. Anything going wrong in the child (an
exception, a signal, a pickle that does not load) makes the parent do the work itself, so a
result is never lost; the child never runs the parent's exit handlers or flushes its buffers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from runbook.step import Finding

Work = Callable[[], list[Finding]]


def can_fork() -> bool:
    """Whether a child can be forked safely here: POSIX, and no other thread running."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Background:
    """`work()` run in a forked child (or, failing that, here when its result is asked for).

    Use as a context manager: leaving it early (an exception, Ctrl-C) stops the child."""

    def __init__(self, work: Work, *, fork: bool = True) -> None:
        self._work = work
        self._pid: int | None = None
        self._pipe: int | None = None
        if fork and can_fork():
            self._start()

    def _start(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to spare: the work is done here
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: do the work, hand it over, leave without cleaning up
            code = 1
            try:
                os.close(read)
                data = pickle.dumps(self._work(), protocol=pickle.HIGHEST_PROTOCOL)
                with open(write, "wb") as pipe:
                    pipe.write(data)
                code = 0
            except BaseException:  # the parent does the work instead
                pass
            finally:
                os._exit(code)
        os.close(write)
        self._pid, self._pipe = pid, read

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def result(self) -> list[Finding]:
        """The work's findings: the child's, or computed here when the child gave none."""
        if self._pid is None or self._pipe is None:
            return self._work()
        pid, pipe = self._pid, self._pipe
        self._pid = self._pipe = None
        try:
            with open(pipe, "rb") as stream:
                data = stream.read()
        finally:
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            try:
                found = pickle.loads(data)  # our own child's output
            except Exception:  # a short read: the work is done here
                found = None
            if isinstance(found, list):
                return found
        return self._work()

    def stop(self) -> None:
        """Stop and reap a child whose result is no longer wanted."""
        if self._pid is None:
            return
        pid, pipe = self._pid, self._pipe
        self._pid = self._pipe = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if pipe is not None:
            os.close(pipe)

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
