"""`--host`: self-hosted GitHub Actions runners registered under the malware's runner names
(`indicators.runner_names`; Shai-Hulud 2.0 installs one named SHA1HULUD in `~/.dev-env` and runs
attacker commands on it through `discussion.yaml` workflows).

A runner keeps its registration in a `.runner` JSON file (`agentName`, `gitHubUrl`) at the top of
its folder. The folders looked at are HOME itself and every folder directly in it (`~/.dev-env`,
`~/actions-runner`, ...): where runners are installed, and where the worm put its own.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from runbook.safeio import SMALL_FILE_LIMIT
from runbook.step import Finding
from steps.scan.reading import not_regular, read_file, why_unreadable

KIND = "runner"


def runner_files(home: Path) -> Iterator[Path]:
    """`.runner` files in HOME and in the folders directly in it (never through a symlink)."""
    yield home / ".runner"
    try:
        with os.scandir(home) as entries:
            folders = sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return  # HOME itself is reported by the other host checks when it cannot be listed
    for folder in folders:
        yield Path(folder) / ".runner"


def scan_runner_configs(homes: Iterable[Path], names: list[str]) -> Iterator[Finding]:
    """A runner registered under one of `names` is evidence; a `.runner` file that cannot be
    read is `unknown` (it cannot be told apart)."""
    wanted = {n.lower() for n in names}
    if not wanted:
        return
    for home in homes:
        for path in runner_files(home):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                yield _finding(
                    "unknown", path, f"cannot read this runner registration: {not_regular(path)}"
                )
                continue
            try:
                config = json.loads(read_file(path, limit=SMALL_FILE_LIMIT).decode("utf-8-sig"))
            except OSError as exc:
                yield _finding("unknown", path, f"cannot read it: {why_unreadable(path, exc)}")
                continue
            except (ValueError, RecursionError):
                yield _finding("unknown", path, "a runner registration that is not JSON")
                continue
            if not isinstance(config, dict):
                continue
            name = config.get("agentName")
            if isinstance(name, str) and name.lower() in wanted:
                url = config.get("gitHubUrl") or config.get("serverUrl")
                where = f" for {url}" if isinstance(url, str) and url else ""
                yield _finding(
                    "compromised",
                    path,
                    f"a self-hosted GitHub Actions runner named {name} is registered here{where}: "
                    "the malware's backdoor (workflows run attacker commands on this machine). "
                    "Stop it, remove it from the repository's Settings > Actions > Runners, "
                    "and delete this folder",
                )


def _finding(severity, path: Path, message: str) -> Finding:
    return Finding(kind=KIND, severity=severity, path=str(path), message=message)
