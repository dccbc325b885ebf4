"""What the app is asked to open, and the outline it draws first. Light on purpose: it is all the
app needs for its first frame (no journal, no pydantic, no step kinds).

The step list comes from `outline_of`: a plain YAML parse of ids and titles, remembered in the
cache directory by file path, size and mtime, so the next start does not even import YAML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["live", "dry-run", "tabletop", "exercise"]
MODES: tuple[Mode, ...] = ("dry-run", "live", "tabletop")
CACHE_ENTRIES = 32


@dataclass(frozen=True)
class Outline:
    """What the step list needs before the playbook is validated: ids and titles."""

    id: str
    title: str
    steps: list[tuple[str, str]]


def peek_playbook(path: Path) -> Outline | None:
    """Ids and titles from a plain YAML parse; None when the file does not look like a playbook."""
    import yaml

    try:
        data = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        return None
    steps = []
    for step in data["steps"]:
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            return None
        steps.append((step["id"], str(step.get("title") or step["id"])))
    if not steps:
        return None
    return Outline(str(data.get("id") or path.stem), str(data.get("title") or path.stem), steps)


def _cache_file(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "runbook" / "outlines.json"


def outline_of(path: Path, env: Mapping[str, str]) -> Outline | None:
    """The outline of a playbook file, from the cache when the file has not changed since."""
    try:
        st = path.stat()
    except OSError:
        return None
    key, stamp = str(path.resolve()), [st.st_size, st.st_mtime_ns]
    cache = _cache_file(env)
    try:
        entries: dict[str, Any] = json.loads(cache.read_bytes())
        hit = entries.get(key)
        if hit and hit["stamp"] == stamp:
            data = hit["outline"]
            return Outline(data["id"], data["title"], [tuple(s) for s in data["steps"]])
    except (OSError, ValueError, KeyError, TypeError):
        entries = {}
    outline = peek_playbook(path)
    if outline is not None:
        entries.pop(key, None)
        entries[key] = {"stamp": stamp, "outline": asdict(outline)}
        kept = dict(list(entries.items())[-CACHE_ENTRIES:])
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.write_text(json.dumps(kept))
            os.replace(tmp, cache)
        except OSError:
            pass  # a cache that cannot be written only costs the next start a parse
    return outline


@dataclass
class RunRequest:
    """Everything needed to open (or resume) a run, as the command line or start screen gave it."""

    playbook: Path
    target: Path
    mode: Mode
    env: dict[str, str]
    operator: str | None = None  # None: $RUNBOOK_OPERATOR, $USER, ...
    display: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    journal: Path | None = None
    new: bool = False
    from_step: str | None = None
    skips: dict[str, str] = field(default_factory=dict)
    welcome: str = ""  # the first hint, instead of the usual one (the demo explains itself)

    @property
    def engine_mode(self) -> str:
        """The runner's mode: a tabletop rehearsal is a dry run; an exercise is a live run
        inside its simulated world."""
        if self.mode == "exercise":
            return "exercise"
        return "live" if self.mode == "live" else "dry-run"


@dataclass
class StartSettings:
    """What the start screen proposes: the target (cwd) and the environment to run with."""

    target: Path
    env: dict[str, str]
    operator: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
