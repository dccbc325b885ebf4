"""Asking the real package manager: which version it is, whether it knows a setting, and (after
the edit) what value it now reads. Only read-only commands, each with a timeout; npm is told to
keep no log file (`--logs-max=0`) so asking leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runbook.safeio import SMALL_FILE_LIMIT, read_regular
from steps.harden_settings.catalog import HardenManager, Setting

TIMEOUT = 60
#: yarn 1 variables a yarn berry command rejects as unknown settings.
YARN1_ONLY_ENV = (
    "YARN_CACHE_FOLDER",
    "YARN_REGISTRY",
    "YARN_DISABLE_SELF_UPDATE_CHECK",
    "YARN_IGNORE_PATH",
)
NPM_QUIET = ["--logs-max=0", "--no-update-notifier"]
#: bun install's flag for each bunfig `[install]` key: the flag is listed iff bun knows the key.
BUN_FLAGS = {"minimumReleaseAge": "--minimum-release-age", "exact": "--exact"}


def yarn_path(project: Path) -> Path | None:
    """The `yarnPath` release a berry project pins in `.yarnrc.yml`, if any."""
    try:
        text = read_regular(project / ".yarnrc.yml", limit=SMALL_FILE_LIMIT).decode(
            errors="replace"
        )
    except OSError:
        return None
    match = re.search(r"^yarnPath:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(?:#.*)?$", text, re.MULTILINE)
    if not match:
        return None
    path = Path(match.group(1))
    return path if path.is_absolute() else project / path


@dataclass
class Tool:
    """One package manager as installed here, and what it said."""

    manager: HardenManager
    argv: list[str] | None  # None: not installed
    env: dict[str, str]
    project: Path
    version: str | None = None
    problem: str | None = None  # why it cannot be asked
    _known: set[str] | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        return {"berry": "yarn"}.get(self.manager, self.manager)

    def run(self, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        assert self.argv is not None
        if self.manager == "npm":
            # npm creates its cache folder on every command, `config get` included: a question
            # must leave HOME as it was (a dry run changes nothing), so it gets a throwaway cache
            with tempfile.TemporaryDirectory(prefix="runbook-npm-probe-") as scratch:
                return self._run(args, cwd, {**self.env, "npm_config_cache": scratch})
        return self._run(args, cwd, self.env)

    def _run(
        self, args: list[str], cwd: Path | None, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        assert self.argv is not None
        return subprocess.run(
            [*self.argv, *args],
            cwd=cwd or self.project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            check=False,
        )

    def command(self, args: list[str]) -> list[str]:
        assert self.argv is not None
        return [*self.argv, *args]


def find_tool(manager: HardenManager, project: Path, env: Mapping[str, str]) -> Tool:
    """The manager's command (a berry project's `yarnPath` first) and its version."""
    run_env = dict(env)
    if manager == "berry":
        for key in YARN1_ONLY_ENV:
            run_env.pop(key, None)
    path = env.get("PATH", os.environ.get("PATH", ""))
    argv: list[str] | None = None
    if manager == "berry" and (pinned := yarn_path(project)) is not None:
        node = shutil.which("node", path=path)
        if node and pinned.is_file():
            argv = [node, str(pinned)]
    if argv is None:
        exe = shutil.which({"berry": "yarn"}.get(manager, manager), path=path)
        argv = [exe] if exe else None
    tool = Tool(manager, argv, run_env, project)
    if argv is None:
        tool.problem = f"`{tool.shown}` is not installed here (not on PATH)"
        return tool
    try:
        done = tool.run(["--version"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        tool.problem = f"`{tool.shown} --version` failed: {exc}"
        return tool
    version = (done.stdout.strip().splitlines() or [""])[-1].strip()
    if done.returncode != 0 or not re.match(r"^\d+\.\d+", version):
        tail = (done.stderr or done.stdout).strip()[-300:]
        tool.problem = f"`{tool.shown} --version` failed: {tail}"
        return tool
    tool.version = version
    if manager == "berry" and version.startswith(("0.", "1.")):
        tool.problem = f"the `yarn` here is yarn {version}, not yarn berry (2+)"
    return tool


def knows(tool: Tool, setting: Setting) -> bool | None:
    """Whether the installed manager knows the setting: True, False, or None when it cannot say
    (pnpm has no such question; the catalog's versions decide)."""
    if tool.manager == "npm":
        if tool._known is None:
            done = tool.run(["config", "ls", "-l", "--json", *NPM_QUIET])
            try:
                tool._known = set(json.loads(done.stdout))
            except ValueError:
                return None
        return setting.key in tool._known
    if tool.manager == "berry":
        done = tool.run(["config", "get", setting.key, "--json"])
        if done.returncode == 0:
            return True
        if "Couldn't find a configuration settings named" in (done.stdout + done.stderr):
            return False
        return None
    if tool.manager == "bun":
        if tool._known is None:
            with tempfile.TemporaryDirectory(prefix="runbook-bun-probe-") as empty:
                done = tool.run(["install", "--help"], cwd=Path(empty))
            tool._known = {k for k, flag in BUN_FLAGS.items() if flag in done.stdout}
        return setting.key in tool._known
    return None


def reads(tool: Tool, setting: Setting) -> tuple[object, str]:
    """(value, raw answer) the manager reads for the setting in the project, after the edit."""
    if tool.manager == "npm":
        done = tool.run(["config", "get", setting.key, *NPM_QUIET])
        if f'Unknown project config "{setting.key}"' in done.stderr:
            return None, f"npm does not know `{setting.key}`"
        return done.stdout.strip(), done.stdout.strip()
    if tool.manager == "bun":  # bun has no `config get`: it loads bunfig.toml (and checks it)
        done = tool.run(["-e", "0"])
        if done.returncode != 0:
            return None, (done.stderr or done.stdout).strip()[-500:]
        return setting.expected, "bunfig.toml loads"
    args = ["config", "get", setting.key, "--json"]
    done = tool.run(args)
    raw = done.stdout.strip()
    if done.returncode != 0:
        return None, (done.stderr or done.stdout).strip()[-500:]
    try:
        return json.loads(raw) if raw else None, raw
    except ValueError:
        return raw, raw
