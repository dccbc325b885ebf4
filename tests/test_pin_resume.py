"""`pin` after a failed lockfile regeneration: a rerun finishes it, or stays failed.

Real npm 11 and verdaccio, the real headless CLI, a playbook with `pin` then `wipe_node_modules`.
The registry is "down" first (nothing listens on its port), so `pin` edits package.json, prunes
the lockfile and then fails in `npm install --package-lock-only`; the same port is brought up
later, so the lockfile's `resolved` URLs stay valid.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runbook.journal import read_entries
from steps.npm.lockfiles import parse_lockfile
from tests.conftest import RUNBOOK
from tests.npmreg import (
    FIXED_REGISTRY,
    TESTS,
    copy_project,
    free_port,
    require_tools,
    start_registry,
    tool_env,
)

PLAYBOOK = """\
id: pin-resume-test
title: pin, then wipe node_modules (test)
version: "1"
incident:
  summary: axios 1.14.1 / 0.30.4 pulled plain-crypto-js.
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1", "0.30.4"], safe_pins: {"1": "1.14.0", "0": "0.30.3"}}
    - {name: plain-crypto-js, any_version: true}
steps:
  - id: pin
    uses: pin
    title: Pin axios
    confirm: destructive
  - id: wipe
    uses: wipe_node_modules
    title: Remove node_modules
    confirm: destructive
"""


def runbook(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def resolved(lockfile: Path) -> set[str]:
    graph = parse_lockfile(lockfile, lockfile.read_bytes())
    return {f"{n.name}@{n.version}" for n in graph.nodes.values() if n.version}


def finished(journal: Path, step: str) -> list[dict]:
    return [
        e["data"]
        for e in read_entries(journal)
        if e["event"] == "step_finished" and e["data"]["step"] == step
    ]


def prepare(tmp_path: Path, fixture: str):
    """(env, project, playbook, port): a project installed during the attack window, its
    lockfile pointing at a port where no registry runs yet."""
    require_tools("npm", "verdaccio")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    project = copy_project(TESTS / "fixtures" / "projects" / fixture, tmp_path / "project")
    lock = project / "package-lock.json"
    lock.write_text(lock.read_text().replace(FIXED_REGISTRY, url))
    (project / "node_modules" / "axios").mkdir(parents=True, exist_ok=True)
    env = tool_env(url, tmp_path / "home")
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), RUNBOOK_OPERATOR="test-operator")
    # npm retries a refused connection for about a minute by default: fail fast instead
    env.update(npm_config_fetch_retries="0", npm_config_fetch_timeout="5000")
    playbook = tmp_path / "pin-resume.yaml"
    playbook.write_text(PLAYBOOK)
    return env, project, playbook, port


def test_a_rerun_regenerates_the_lockfile_a_failed_pin_left_pruned(tmp_path):
    """npm-legacy-0x: axios 0.30.4 only comes through legacy-client, so there is no direct pin.
    After the prune the lockfile resolves nothing bad: only the journal (a regeneration
    started, never finished) says the lockfile is not done."""
    env, project, playbook, port = prepare(tmp_path, "npm-legacy-0x")
    lock = project / "package-lock.json"

    first = runbook(env, "run", playbook, "--target", project, "--yes")
    assert first.returncode != 0, first.stdout + first.stderr
    journal = Path(first.stdout.split("journal: ")[1].split()[0])
    assert finished(journal, "pin")[-1]["outcome"] == "failed"
    assert finished(journal, "wipe") == []  # the run stopped at the failed step
    manifest = json.loads((project / "package.json").read_text())
    assert manifest["overrides"] == {"axios@0.30.4": "0.30.3"}
    names = resolved(lock)  # pruned, and never regenerated: legacy-client's axios is gone
    assert not any(n.startswith(("axios@", "plain-crypto-js@")) for n in names), names

    # the registry is still down: the rerun tries the regeneration again and stays failed
    again = runbook(env, "run", playbook, "--target", project, "--yes")
    assert again.returncode != 0, again.stdout + again.stderr
    assert Path(again.stdout.split("journal: ")[1].split()[0]) == journal  # the same run resumed
    last = finished(journal, "pin")[-1]
    assert last["outcome"] == "failed", last
    assert "npm install --package-lock-only" in last["summary"]
    assert finished(journal, "wipe") == []
    assert (project / "node_modules" / "axios").is_dir()

    with start_registry(tmp_path / "registry", port=port):
        done = runbook(env, "run", playbook, "--target", project, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    last = finished(journal, "pin")[-1]
    assert last["outcome"] == "succeeded", last
    assert "1 lockfile(s) regenerated" in last["summary"]
    names = resolved(lock)
    assert "axios@0.30.3" in names
    assert not any(n.startswith(("plain-crypto-js@", "axios@0.30.4")) for n in names), names
    assert "plain-crypto-js" not in lock.read_text()
    assert finished(journal, "wipe")[-1]["outcome"] == "succeeded"
    assert not (project / "node_modules").exists()


def test_a_new_run_sees_the_pruned_lockfile_too(tmp_path):
    """npm-v3-direct (axios 1.14.1 pinned): without the earlier run's journal (`--new`), the
    manifest's exact pin that the lockfile does not record is enough to plan the regeneration
    again."""
    env, project, playbook, port = prepare(tmp_path, "npm-v3-direct")
    first = runbook(env, "run", playbook, "--target", project, "--yes")
    assert first.returncode != 0, first.stdout + first.stderr
    assert json.loads((project / "package.json").read_text())["dependencies"]["axios"] == "1.14.0"
    assert "axios@1.14.0" not in resolved(project / "package-lock.json")
    fresh = runbook(env, "run", playbook, "--target", project, "--yes", "--new")
    assert fresh.returncode != 0, fresh.stdout + fresh.stderr
    journal = Path(fresh.stdout.split("journal: ")[1].split()[0])
    assert finished(journal, "pin")[-1]["outcome"] == "failed"
    assert finished(journal, "wipe") == []
    with start_registry(tmp_path / "registry", port=port):
        done = runbook(env, "run", playbook, "--target", project, "--yes", "--new")
    assert done.returncode == 0, done.stdout + done.stderr
    names = resolved(project / "package-lock.json")
    assert "axios@1.14.0" in names and not any(n.startswith("plain-crypto-js@") for n in names)
