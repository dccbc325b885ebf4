"""What a host sent back: its archive unpacked into `DIR/<host>/`, every journal verified.

The archive comes from a host that may be compromised, so it is read as hostile: only regular
files, only at the places runbook fleet writes (`summary.json`, `scan.json`, `journals/*.jsonl`,
`reports/*.md`, `output/*.ndjson`), no path leaves the host folder, and every size is bounded
before a byte is written. Nothing is extracted by `tarfile` itself: each member is read and
written by name.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.atomic import replace_atomically
from runbook.fleet.state import JournalSummary, summarize
from runbook.safeio import JOURNAL_LIMIT, MiB, read_regular

ARCHIVE_LIMIT = 2048 * MiB  # everything unpacked from one host
MEMBER_LIMITS = {
    "journals": JOURNAL_LIMIT,
    "reports": 64 * MiB,
    "output": 64 * MiB,
}
TOP_LIMITS = {"summary.json": 16 * MiB, "scan.json": 256 * MiB}
MAX_MEMBERS = 20_000
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")
_SUFFIX = {"journals": ".jsonl", "reports": ".md", "output": ".ndjson"}


class ArchiveRefused(Exception):
    """The host's archive is not one runbook fleet would have made."""


@dataclass
class Unpacked:
    """What came out of one archive."""

    summary: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # relative to the host folder
    ignored: list[str] = field(default_factory=list)


def _place(name: str) -> tuple[str, int] | None:
    """(relative path, size limit) for an archive member runbook fleet writes, else None."""
    if name in TOP_LIMITS:
        return name, TOP_LIMITS[name]
    parts = name.split("/")
    if len(parts) != 2 or parts[0] not in MEMBER_LIMITS:
        return None
    folder, base = parts
    if not _NAME.match(base) or base.startswith(".") or not base.endswith(_SUFFIX[folder]):
        return None
    return name, MEMBER_LIMITS[folder]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def unpack(archive: Path, host_dir: Path) -> Unpacked:
    """Unpack a host's archive into its folder (files of the same name are replaced)."""
    out = Unpacked()
    total = 0
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveRefused(f"cannot open the fetched archive: {exc}") from None
    with tar:
        try:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise ArchiveRefused(f"more than {MAX_MEMBERS} files in the archive")
                placed = _place(member.name) if member.isreg() else None
                if placed is None:
                    out.ignored.append(member.name[:200])
                    continue
                relative, limit = placed
                if member.size > limit:
                    raise ArchiveRefused(f"{relative} is {member.size} bytes, over its limit")
                total += member.size
                if total > ARCHIVE_LIMIT:
                    raise ArchiveRefused("the archive unpacks to more than its limit")
                handle = tar.extractfile(member)
                data = handle.read(limit + 1) if handle else b""
                if len(data) != member.size:
                    raise ArchiveRefused(f"{relative}: size does not match the archive's header")
                if relative == "summary.json":
                    try:
                        parsed = json.loads(data)
                    except ValueError:
                        raise ArchiveRefused("summary.json is not JSON") from None
                    out.summary = parsed if isinstance(parsed, dict) else {}
                _write(host_dir / relative, data)
                out.files.append(relative)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise ArchiveRefused(f"the fetched archive is damaged: {exc}") from None
    return out


@dataclass
class Verified:
    """A journal in the host folder, checked: its digest and what it says."""

    path: str  # relative to the host folder
    sha256: str
    size: int
    summary: JournalSummary

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            **self.summary.as_dict(),
        }


def verify_journal(host_dir: Path, relative: str) -> Verified:
    """Read and verify one journal of the host folder."""
    path = host_dir / relative
    try:
        raw = read_regular(path, limit=JOURNAL_LIMIT)
    except OSError as exc:
        summary = JournalSummary(False, 0, "", 1, f"cannot read: {exc.strerror or exc}")
        return Verified(relative, "", 0, summary)
    return Verified(relative, hashlib.sha256(raw).hexdigest(), len(raw), summarize(raw))


def journals_of(host_dir: Path) -> list[str]:
    folder = host_dir / "journals"
    if not folder.is_dir():
        return []
    return sorted(f"journals/{p.name}" for p in folder.glob("*.jsonl"))
