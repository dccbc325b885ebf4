"""Shared fixtures: every test gets its own HOME, state dir and caches under tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "axios-compromised"
BUNDLED = ROOT / "playbooks" / "axios-2026-03.yaml"
RUNBOOK = Path(sys.executable).with_name("runbook")

# No test looks up a real domain (the playbook's C2 indicators): every runbook run, in process or
# as a subprocess, inherits this. A test that needs resolution removes it and uses `localhost`.
os.environ["RUNBOOK_NO_DNS"] = "1"


@pytest.fixture
def sandbox_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose HOME, XDG dirs and npm cache all live in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "npm_config_cache": str(home / ".npm"),
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "RUNBOOK_OPERATOR": "test-operator",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # the machine's own cloud CLI configuration must not reach credential discovery
    for key in ("CLOUDSDK_CONFIG", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CONFIG_DIR"):
        monkeypatch.delenv(key, raising=False)
    full = dict(os.environ)
    full.update(env)
    return full


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the bundled compromised example project."""
    target = tmp_path / "project"
    shutil.copytree(EXAMPLE, target, symlinks=True)
    return target


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(sandbox_env: dict[str, str]) -> RunCli:
    """Run the installed `runbook` command (no TTY) in the sandbox environment."""

    def run(
        *args: str | Path, timeout: float = 120, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        env = kwargs.pop("env", sandbox_env)
        return subprocess.run(
            [str(RUNBOOK), *map(str, args)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )

    return run
