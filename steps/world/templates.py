"""The bundled templates (made by `steps/world/make_templates.py` with the real package managers):
which archive holds which project or cache, and unpacking one into a world."""

from __future__ import annotations

import functools
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent / "templates"
LINE_IDS = {"1.x": "1x", "0.x": "0x"}
# the tools' names on PATH, and whether they need node
BINARY = {"npm": "npm", "yarn1": "yarn", "pnpm": "pnpm", "bun": "bun"}
NEEDS_NODE = {"npm", "yarn1", "pnpm"}


class TemplateMissing(Exception):
    """The bundled templates are not installed or lack what a world asks for."""


@functools.cache
def manifest() -> dict[str, Any]:
    path = DIR / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateMissing(f"the world templates cannot be read ({path}): {exc}") from None


def template_id(manager: str, line: str, via: str, affected: bool, scripts: str) -> str:
    base = f"{manager}-{LINE_IDS[line]}"
    return f"{base}-clean" if not affected else f"{base}-{via}-{scripts}"


@dataclass(frozen=True)
class Template:
    id: str
    row: dict[str, Any]

    @property
    def lockfile(self) -> str:
        return str(self.row["lockfile"])

    @property
    def dependencies(self) -> dict[str, str]:
        return dict(self.row["dependencies"])


def project_template(tid: str) -> Template:
    row = manifest()["templates"].get(tid)
    if row is None:
        raise TemplateMissing(f"no bundled template {tid!r}")
    return Template(tid, row)


def placeholders() -> dict[str, str]:
    return dict(manifest()["placeholders"])


def unpack(archive: str, dest: Path, *, mtime: float) -> None:
    """Extract a bundled archive into `dest` (the `data` filter: nothing lands outside it),
    every member dated `mtime`."""

    def dated(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        return tarfile.data_filter(member, path).replace(mtime=mtime, deep=False)

    with tarfile.open(DIR / archive, "r:gz") as tar:
        tar.extractall(dest, filter=dated)


def read_member(archive: str, name: str) -> bytes | None:
    """One file of a bundled archive, or None."""
    with tarfile.open(DIR / archive, "r:gz") as tar:
        try:
            member = tar.getmember(name)
        except KeyError:
            return None
        handle = tar.extractfile(member)
        return handle.read() if handle else None


def rewrite(root: Path, files: list[str], replacements: dict[str, str]) -> None:
    """Replace placeholders in the listed text files under `root` (the ones the manifest names)."""
    ordered = sorted(replacements.items(), key=lambda kv: -len(kv[0]))
    for rel in files:
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in ordered:
            text = text.replace(old, new)
        stat = path.stat()
        path.write_text(text, encoding="utf-8")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def registry_dir() -> Path:
    return DIR / manifest()["registry"]["dir"]
