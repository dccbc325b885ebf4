"""The fleet tests' shared fixtures, loaded once per session as a plugin (`pytest_plugins =
["tests.fleet_fixtures"]` in each fleet test module), so that the wheel is built once and every
module's hosts share one venv root (one install per session)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.fleet.bundle import bundled_pip
from tests.conftest import ROOT


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's wheel and pip's, built once for the session."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    argv += ["--disable-pip-version-check", "-w", str(folder), str(ROOT)]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    pip = bundled_pip()
    assert pip is not None, "this Python has no ensurepip bundle to take pip's wheel from"
    shutil.copy2(pip, folder / pip.name)
    return folder


@pytest.fixture(scope="session")
def venv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-venvs")


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port bound without listening: SSH to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
