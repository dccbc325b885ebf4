"""One fast pass over the scanned paths, noting what the detectors need. Never follows a symlink.

Only the directory entries' types are used (`DirEntry`, no extra `stat`), which keeps a home scan
fast. A manifest or lockfile name on anything but a regular file (a symlink, a FIFO, a device) is
listed apart, in `irregular`: no reader should open it as if it were the file it is named after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from steps.npm.lockfiles import LOCKFILE_NAMES as ALL_LOCKFILE_NAMES

# npm's hidden `.package-lock.json` is looked up inside each node_modules instead
LOCKFILE_NAMES = ALL_LOCKFILE_NAMES - {".package-lock.json"}
# Package-manager caches, tool installs and editor data: covered by `--host`, and full of package
# files that are not projects, so a path scan does not descend into them.
HOST_DIRS = frozenset(
    {
        ".npm",
        ".pnpm-store",
        ".bun",
        ".cache",
        ".nvm",
        ".volta",
        ".fnm",
        ".vscode",
        ".cursor",
        ".vscode-server",
        ".vscode-insiders",
        ".windsurf",
        ".Trash",
        ".local",
        "Library",
    }
)


@dataclass
class Inventory:
    """What the walk found under the scanned paths."""

    manifests: list[Path] = field(default_factory=list)
    lockfiles: list[Path] = field(default_factory=list)
    node_modules: list[Path] = field(default_factory=list)
    yarn_dirs: list[Path] = field(default_factory=list)
    repos: list[Path] = field(default_factory=list)
    # a manifest or lockfile name on a symlink, FIFO, socket or device: never read as one
    irregular: list[Path] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def walk(paths: list[Path], *, skip_host_dirs: bool = True) -> Inventory:
    """Walk every path; `node_modules`, `.yarn` and `.git` are noted, not descended."""
    inv = Inventory()
    stack = [str(p) for p in reversed(paths)]
    seen: set[tuple[int, int]] = set()
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(current))
        except OSError as exc:
            inv.errors.append((Path(current), exc.strerror or str(exc)))
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if name == "node_modules":
                    inv.node_modules.append(Path(entry.path))
                elif name == ".git":
                    inv.repos.append(Path(current))
                elif name == ".yarn":
                    inv.yarn_dirs.append(Path(entry.path))
                elif not (skip_host_dirs and name in HOST_DIRS):
                    subdirs.append(entry.path)
            elif name == "package.json" or name in LOCKFILE_NAMES:
                try:
                    regular = entry.is_file(follow_symlinks=False)
                except OSError:
                    regular = False
                if not regular:
                    inv.irregular.append(Path(entry.path))
                elif name == "package.json":
                    inv.manifests.append(Path(entry.path))
                else:
                    inv.lockfiles.append(Path(entry.path))
        stack.extend(sorted(subdirs, reverse=True))
    return inv
