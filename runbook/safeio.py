"""Reading files that a hostile tree may have planted: regular files only, and never unbounded.

A FIFO named like a lockfile blocks a plain `open()` forever, `/dev/zero` behind a symlink is read
until memory runs out, and a sparse file claims gigabytes it never wrote. Every read of a file that
runbook did not write itself goes through `read_regular` or `open_regular`.

Refusals raise `ReadRefused`, a subclass of `OSError` whose `strerror` is a short reason, so
callers that already turn `OSError` into a message need no new branch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

MiB = 1024 * 1024

# Ceilings by what a file is. Real lockfiles of the largest monorepos stay well under 100 MiB.
LOCKFILE_LIMIT = 256 * MiB
MANIFEST_LIMIT = 16 * MiB
PLAYBOOK_LIMIT = 8 * MiB
JOURNAL_LIMIT = 128 * MiB  # a run with thousands of findings writes about 1 MiB
SMALL_FILE_LIMIT = 4 * MiB  # credential files, configs, markers


class ReadRefused(OSError):
    """A file runbook will not read: not a regular file, a symlink not to follow, too big."""

    def __init__(self, path: str | os.PathLike[str], reason: str, code: int = errno.EINVAL):
        super().__init__(code, reason, str(path))
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _human(size: int) -> str:
    return f"{size / MiB:.0f} MiB" if size >= MiB else f"{size} bytes"


def open_regular(
    path: str | os.PathLike[str], *, follow_symlinks: bool = False, limit: int | None = None
) -> BinaryIO:
    """Open `path` for binary reading, refusing anything but a regular file.

    The open itself never blocks (O_NONBLOCK, so a FIFO is refused instead of waited on). Without
    `follow_symlinks` a symlink at the last component is refused (O_NOFOLLOW). With `limit`, a file
    whose size is over it is refused before a byte is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise ReadRefused(path, "is a symlink (not followed)", errno.ELOOP) from None
        if exc.errno == errno.ENXIO:  # a FIFO or socket with no writer, on some systems
            raise ReadRefused(path, "not a regular file", errno.ENXIO) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused(path, f"is {_kind(st.st_mode)}, not a regular file")
        if limit is not None and st.st_size > limit:
            raise ReadRefused(
                path, f"is {_human(st.st_size)}, over the {_human(limit)} limit", errno.EFBIG
            )
        # Regular files never block; clear O_NONBLOCK so reads behave normally everywhere.
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | os.PathLike[str], *, limit: int, follow_symlinks: bool = False
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; `ReadRefused` otherwise.

    The size is checked before reading and again while reading (a file that grows past the limit
    is refused, not truncated silently).
    """
    with open_regular(path, follow_symlinks=follow_symlinks, limit=limit) as handle:
        # read(n) allocates n bytes up front: size the read from the file, not from the limit
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(min(size + 64 * 1024, limit + 1))
        if len(data) > size and len(data) <= limit:  # it grew while read: take the rest too
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise ReadRefused(path, f"grew past the {_human(limit)} limit while read", errno.EFBIG)
    return data


def sha256_regular(
    path: str | os.PathLike[str], *, limit: int | None = None, follow_symlinks: bool = False
) -> str:
    """The sha256 of a regular file (of at most `limit` bytes), read in blocks; `ReadRefused`
    (an OSError) otherwise, also when it grows past the limit while read."""
    import hashlib

    digest = hashlib.sha256()
    size = 0
    with open_regular(path, follow_symlinks=follow_symlinks, limit=limit) as handle:
        while block := handle.read(MiB):
            size += len(block)
            if limit is not None and size > limit:
                why = f"grew past the {_human(limit)} limit while read"
                raise ReadRefused(path, why, errno.EFBIG)
            digest.update(block)
    return digest.hexdigest()


def is_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> bool:
    """Whether `path` is a regular file (a symlink counts only with `follow_symlinks`)."""
    try:
        mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(mode)


def within(path: Path, root: Path) -> bool:
    """Whether `path` resolves inside `root` (both resolved; symlinks on the way count)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True
