"""The wheel ships the engine, the steps, the bundled playbooks and the demo example."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("runbook-*.whl")
    return built


def test_wheel_contents(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "runbook/_bundled/playbooks/axios-2026-03.yaml" in names
    assert "runbook/_bundled/examples/axios-compromised/package-lock.json" in names
    assert (
        "runbook/_bundled/examples/axios-compromised/node_modules/plain-crypto-js/package.json"
        in names
    )
    assert "steps/manual.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "runbook = runbook.cli:main" in text
    assert "manual = steps.manual:ManualStep" in text


def test_installed_wheel_finds_the_bundled_playbook_by_id(wheel: Path, tmp_path: Path, sandbox_env):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**sandbox_env, "PYTHONPATH": str(site)}
    code = "import runbook, sys, runbook.cli; print(runbook.__file__); sys.exit(runbook.cli.main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "validate", "axios-2026-03"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(site))
    assert "axios-2026-03: ok" in result.stdout
