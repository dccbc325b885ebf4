"""Replacing a file so that a crash leaves either the old bytes or the new ones, never a mix."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, fill: Callable[[str], None], suffix: str = ".tmp") -> None:
    """`fill(tmp)` writes a temp file beside `path`; it is fsync'd and renamed over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if path.is_symlink():
            path.unlink()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_output(path: Path, chunks: Iterable[str]) -> None:
    """Write a command's output (`-o FILE`): a regular file is replaced atomically, through a
    symlink if it is one (the link stays); a FIFO or a terminal/device such as /dev/stdout is
    written to as it is, never replaced by a file. Raises OSError (a directory, say)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        with open(path, "w", encoding="utf-8") as handle:  # a FIFO, /dev/stdout, /dev/null
            for chunk in chunks:
                handle.write(chunk)
        return

    def fill(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)

    replace_atomically(Path(os.path.realpath(path)), fill)
