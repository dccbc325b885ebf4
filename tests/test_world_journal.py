"""`from_journal`: a world mapping rebuilt from a real run's journal (the real CLI over a
fixture project on a planted machine), holding types and places, never a secret."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runbook.journal import read_entries
from steps.world.plugin import plugin
from tests.conftest import ROOT, RUNBOOK
from tests.fixtures.credentials.plant import build as plant
from tests.test_world_live import host_rooted

FIXTURE = ROOT / "tests" / "fixtures" / "projects" / "npm-v3-direct"


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *argv],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def journal_of(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert "journal: " in result.stdout, result.stdout + result.stderr
    return read_entries(Path(result.stdout.split("journal: ")[1].split()[0]))


def test_a_world_from_a_real_run_holds_no_secret(tmp_path: Path):
    machine = plant(tmp_path / "machine")  # every credential kind, random canary values
    for name in ("package.json", "package-lock.json", "node_modules"):
        source = FIXTURE / name
        if source.is_dir():
            shutil.copytree(source, machine.target / name, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, machine.target / name)
    env = {
        **machine.env,
        "PATH": os.environ["PATH"],
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "RUNBOOK_NO_DNS": "1",
        "RUNBOOK_OPERATOR": "tester",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    result = run(
        ["run", "axios-2026-03", "--target", str(machine.target), "--dry-run", "--no-input"],
        env,
        machine.target,
    )
    entries = journal_of(result)
    world = plugin.from_journal(entries)

    text = json.dumps(world)
    leaked = [s for s in machine.all_secrets() if s in text]
    assert not leaked
    assert "sha256:" not in text and "…" not in text  # not even redacted forms
    assert plugin.validate(world, {}) == []
    assert world["profile"] == "laptop-postinstall" and world["scripts"] == "ran"
    assert world["projects"][0] == {
        "name": "project",
        "manager": "npm",
        "line": "1.x",
        "via": "direct",
        "lockfile": True,
        "installed": True,
        "scripts": "ran",  # the installed plain-crypto-js claims 4.2.0: the loader ran
    }
    places = {(c["type"], c["where"]) for c in world["credentials"]}
    assert {
        ("aws-access-key", "home"),
        ("npm-token", "home"),
        ("private-key", "home"),
        ("github-token", "home"),
        ("generic-secret", "project"),
    } <= places
    assert {c.get("project") for c in world["credentials"] if c["where"] == "project"} == {
        "project"
    }
    # and the mapping builds a world of the same shape
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    rebuilt = plugin.build(world, "from-journal", {}, 3, sandbox)
    rebuilt.stop_services()
    assert rebuilt.ground_truth["verdict"] == "compromised"
    assert (rebuilt.targets[0] / "package-lock.json").is_file()


def test_a_world_run_round_trips(tmp_path: Path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    world = plugin.build({}, "ci-runner", {}, 8, sandbox)
    with world:
        world.start_services()
        argv = ["run", str(host_rooted(world, tmp_path)), "--target", str(world.targets[0])]
        argv += ["--dry-run", "--no-input", "--aws-endpoint-url", world.aws.url]
        entries = journal_of(run(argv, world.env, world.targets[0]))
    again = plugin.from_journal(entries)
    assert again["profile"] == "ci-runner" and again["host_artifacts"] is True
    assert again["projects"] == [
        {
            "name": "invoice-sync",
            "manager": "npm",
            "line": "1.x",
            "via": "direct",
            "lockfile": True,
            "installed": True,
            "scripts": "ran",
        }
    ]
    assert again["caches"] == ["npm"]
    places = sorted((c["type"], c["where"]) for c in again["credentials"])
    assert places == [
        ("aws-access-key", "project"),
        ("github-token", "env"),
        ("npm-token", "project"),
    ]
    text = json.dumps(again)
    assert world.env["GITHUB_TOKEN"] not in text
    assert not [c for c in world.ground_truth["credentials"] if c["fingerprint"] in text]


@pytest.mark.parametrize("entries", [[], [{"event": "run_started", "data": "odd"}], [None, 3]])
def test_odd_journals_give_a_valid_world(entries):
    world = plugin.from_journal(entries)
    assert plugin.validate(world, {}) == []
