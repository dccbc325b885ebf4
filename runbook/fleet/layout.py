"""The fleet output folder: what lives where, and finding the fleet run a rerun continues.

    DIR/fleet.json                 the fleet run (`runbook.fleet/v1`): playbook, mode, hosts
    DIR/<host>/host.json           one host (`runbook.fleet.host/v1`): what Ansible did, state
    DIR/<host>/journals/*.jsonl    every journal fetched from the host (verified on arrival)
    DIR/<host>/reports/*.md        the action log of each verified journal (rendered on arrival)
    DIR/<host>/output/*.ndjson     the JSON lines `runbook run --json` printed, per target
    DIR/<host>/scan.json           `runbook scan --host --format json` (`runbook.scan/v1`)
    DIR/.ansible/                  ansible-runner's private data dir (play, artifacts, temp)

Only journals end in `.jsonl`, so `runbook report DIR` finds every journal under `DIR/<host>/`
and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.safeio import MiB, read_regular

FLEET_SCHEMA = "runbook.fleet/v1"
HOST_SCHEMA = "runbook.fleet.host/v1"
MANIFEST = "fleet.json"
HOST_FILE = "host.json"
PRIVATE = ".ansible"
INCOMING = "incoming"
MANIFEST_LIMIT = 64 * MiB
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._:@+-]")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_fleet_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def host_dirname(host: str) -> str:
    """A folder name for an inventory host name (names that need changing get a digest)."""
    safe = _UNSAFE_NAME.sub("_", host)
    if safe != host or safe.startswith(".") or not safe or len(safe) > 100:
        safe = f"{safe.lstrip('.')[:80] or 'host'}-{hashlib.sha256(host.encode()).hexdigest()[:8]}"
    return safe


def write_text(path: Path, text: str) -> None:
    """Replace a file atomically (a reader never sees half of it). Not fsync'd: these files
    are views of what the events and the journals say, made again by a rerun after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(path: Path, limit: int = MANIFEST_LIMIT) -> Any:
    """A JSON file written by runbook fleet (regular file, bounded); OSError or ValueError."""
    return json.loads(read_regular(path, limit=limit))


@dataclass
class FleetDir:
    """One fleet run's output folder."""

    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def private(self) -> Path:
        return self.path / PRIVATE

    @property
    def incoming(self) -> Path:
        return self.private / INCOMING

    def host_dir(self, host: str) -> Path:
        return self.path / host_dirname(host)

    def host_file(self, host: str) -> Path:
        return self.host_dir(host) / HOST_FILE

    def load_manifest(self) -> dict[str, Any]:
        data = read_json(self.manifest)
        if not isinstance(data, dict) or data.get("schema") != FLEET_SCHEMA:
            raise ValueError(f"{self.manifest}: not a runbook fleet manifest ({FLEET_SCHEMA})")
        return data

    def save_manifest(self, data: dict[str, Any]) -> None:
        data["updated"] = utc_now()
        write_json(self.manifest, data)


def default_root(playbook_id: str) -> Path:
    """`fleet/<playbook>/` under the current directory: where fleet runs go without --out."""
    return Path("fleet") / playbook_id


def find_unfinished(root: Path, kind: str, mode: str, inventory: Path) -> FleetDir | None:
    """The newest fleet run under `root` of this kind, mode and inventory that did not finish
    every host (what a rerun of the same command continues)."""
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        manifest = child / MANIFEST
        if not manifest.is_file():
            continue
        try:
            data = FleetDir(child).load_manifest()
        except (OSError, ValueError):
            continue
        if (
            data.get("kind") == kind
            and data.get("mode") == mode
            and data.get("inventory") == str(inventory)
            and not data.get("complete")
        ):
            found.append((str(data.get("created", "")), child.name, child))
    if not found:
        return None
    return FleetDir(max(found)[2])


def relative(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)
