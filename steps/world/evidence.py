"""Writing an inject's evidence into a world without ever leaving it.

Each directory on the way is opened relative to the one before with O_NOFOLLOW, so a symlink
planted anywhere on the path (or at its end) is refused instead of followed; a FIFO at the end is
refused instead of blocking (O_NONBLOCK); `..` and absolute paths are refused outright.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path, PurePosixPath

from steps.world.errors import EvidenceRefused

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK


def write_confined(base: Path, relpath: str, content: str | bytes) -> Path:
    """Write `content` at `relpath` under `base` (directories made as needed); the path."""
    parts = relative_parts(relpath)
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    fd = os.open(base, DIR_FLAGS)
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise EvidenceRefused(
                    f"evidence {relpath!r}: {part!r} is not a directory of the world "
                    f"({_reason(exc)})"
                ) from None
            os.close(fd)
            fd = child
        try:
            out = os.open(parts[-1], FILE_FLAGS, 0o644, dir_fd=fd)
        except OSError as exc:
            raise EvidenceRefused(
                f"evidence {relpath!r}: cannot write {parts[-1]!r} ({_reason(exc)})"
            ) from None
        try:
            if not stat.S_ISREG(os.fstat(out).st_mode):
                raise EvidenceRefused(f"evidence {relpath!r}: not a regular file")
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return base.joinpath(*parts)


def relative_parts(relpath: str) -> list[str]:
    """The parts of a relative path that stays where it starts; EvidenceRefused otherwise."""
    if not isinstance(relpath, str) or not relpath or "\x00" in relpath or "\\" in relpath:
        raise EvidenceRefused(
            f"evidence path {relpath!r}: give a relative path such as 'Downloads/alert.eml'"
        )
    path = PurePosixPath(relpath)
    if path.is_absolute():
        raise EvidenceRefused(f"evidence path {relpath!r} is absolute: give it relative to `where`")
    parts = [p for p in path.parts if p != "."]
    if not parts or ".." in parts:
        raise EvidenceRefused(f"evidence path {relpath!r} leaves its directory ('..')")
    return parts


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a symlink or a file is in the way"
    if exc.errno == errno.ENXIO:
        return "it is a FIFO"
    return exc.strerror or str(exc)
