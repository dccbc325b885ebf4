"""Hash a whole directory tree: contents, modes, symlink targets and mtimes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """One digest per path under `root` (the root included), never following symlinks."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [".", *dirnames, *filenames]:
            path = Path(dirpath) / name if name != "." else Path(dirpath)
            st = path.lstat()
            if path.is_symlink():
                detail = "link:" + os.readlink(path)
            elif path.is_file():
                detail = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                detail = "dir"
            out[str(path.relative_to(root))] = f"{detail}|{st.st_mode:o}|{st.st_mtime_ns}"
    return out
