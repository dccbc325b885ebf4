"""Reading what a scanned tree may have planted: through `runbook.safeio`, and worded for a finding.

A lockfile, manifest, hidden lockfile, installed `package.json` or cache index is opened with
`open_regular` (regular files only, no symlink at the last component, never blocking on a FIFO,
refused over its size limit before a byte is read) and read in chunks, so a small file costs what a
plain `open().read()` costs and nothing is ever read past the limit.
"""

from __future__ import annotations

import errno
import os
import stat

from runbook.safeio import ReadRefused, open_regular
from runbook.step import Finding
from runbook.termsafe import printable

FIRST_CHUNK = 64 * 1024  # most package files fit: one read, no large buffer, no second fstat


def read_file(path: str | os.PathLike[str], *, limit: int, follow_symlinks: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; `OSError` (often `ReadRefused`).

    A larger file is read again from the start in one read sized by `fstat` (reading it in fixed
    chunks costs a fresh large buffer per chunk, twenty times a plain read); a file that grows
    while read is read on in small chunks, never past `limit`.
    """
    with open_regular(path, follow_symlinks=follow_symlinks, limit=limit) as handle:
        data = handle.read(FIRST_CHUNK)
        if len(data) < FIRST_CHUNK:
            return data  # a short read of a regular file is its end
        handle.seek(0)
        size = os.fstat(handle.fileno()).st_size
        parts: list[bytes] = []
        total, want = 0, min(size, limit) + 1
        while chunk := handle.read(min(want, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ReadRefused(path, "grew past its size limit while read", errno.EFBIG)
            want = FIRST_CHUNK
    return parts[0] if len(parts) == 1 else b"".join(parts)


def why_unreadable(path: str | os.PathLike[str], exc: OSError) -> str:
    """The reason a read failed, for a person: a refused symlink says where it points (escaped)."""
    if isinstance(exc, ReadRefused):
        if exc.errno == errno.ELOOP:
            try:
                target = os.readlink(path)
            except OSError:
                return exc.reason
            return f"is a symlink; not followed: points to {printable(target)}"
        return exc.reason
    return exc.strerror or str(exc)


def not_regular(path: str | os.PathLike[str]) -> str:
    """Why an entry that is not a regular file is not read, from its `lstat` alone (a device or
    FIFO is never opened)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISLNK(mode):
        try:
            return f"is a symlink; not followed: points to {printable(os.readlink(path))}"
        except OSError:
            return "is a symlink; not followed"
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    )
    what = next((name for test, name in kinds if test(mode)), "something else")
    return f"is {what}, not a regular file"


def unreadable(kind: str, path: str | os.PathLike[str], exc: OSError, what: str) -> Finding:
    """An `unknown` finding for a file that could not be read: the verdict cannot be clean."""
    return Finding(
        kind=kind,
        severity="unknown",
        path=str(path),
        message=f"cannot read {what}: {why_unreadable(path, exc)}",
    )
