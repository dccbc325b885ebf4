"""`verify` on real projects installed by the real npm from verdaccio.

A repaired project passes the fresh scan and runs its own test command (even with
`ignore-scripts=true` in its .npmrc: the scripts policy is left as it is); an unrepaired one
fails with the traces named. verdaccio publishes no npm signing keys, so signatures are a note and
a checklist item, never a pass. A dry run changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import read_entries
from steps.verify import registry_keys
from tests.npmreg import (
    Registry,
    manager_env,
    prepare_fixture,
    require_tools,
    run_tool,
    start_registry,
)
from tests.test_undo import HEAD, live_run
from tests.treehash import tree_digest


def step(**params: object) -> str:
    return (
        "  - id: verify\n"
        "    uses: verify\n"
        "    title: Verify the fix\n"
        "    confirm: never\n"
        f"    with: {json.dumps(params)}\n"
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("npm", "verdaccio")
    reg = start_registry(tmp_path_factory.mktemp("verdaccio"))
    try:
        yield reg
    finally:
        reg.stop()


def repaired(tmp_path: Path, reg: Registry, env: dict, test_script: str) -> Path:
    project = prepare_fixture(tmp_path, "clean", reg)
    manifest = json.loads((project / "package.json").read_text())
    manifest["scripts"] = {"test": test_script}
    (project / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    run_tool("npm", ["ci", "--ignore-scripts"], cwd=project, env=env)
    return project


def finished(journal: Path) -> dict:
    return [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"][-1]


def planned(journal: Path) -> dict:
    return next(e["data"] for e in read_entries(journal) if e["event"] == "step_planned")


def test_repaired_project_passes_and_signatures_are_never_a_silent_pass(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    script = "node -e \"require('axios'); require('fs').writeFileSync('tests-ran', 'yes')\""
    project = repaired(tmp_path, registry, env, script)
    (project / ".npmrc").write_text("ignore-scripts=true\n")  # what `harden` writes
    journal, summary = live_run(tmp_path, project, step(command="npm test"), env, head=HEAD)
    assert summary.outcome == "completed", summary.reason
    assert (project / "tests-ran").read_text() == "yes"  # ran, scripts policy untouched
    done = finished(journal)
    assert done["result"]["checks"] == {
        "scan": "clean",
        "signatures": "unchecked",
        "command": "passed",
    }
    assert "fresh scan: nothing compromised or at risk" in done["summary"]
    assert "`npm test` passed" in done["summary"]
    assert f"127.0.0.1:{registry.port}" in done["summary"]  # which registry has no keys
    # not a pass: the operator is asked, and the step stays outstanding
    [item] = [e["data"] for e in read_entries(journal) if e["event"] == "manual_item"]
    assert item["item"] == "signatures" and item["answer"] == "outstanding"
    assert done["outcome"] == "outstanding"
    runs = [e["data"] for e in read_entries(journal) if e["event"] == "effect"]
    assert any(r.get("op") == "run" and r["argv"].startswith("npm test") for r in runs)


def test_unrepaired_project_fails_with_the_traces(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = prepare_fixture(tmp_path, "npm-v3-direct", registry, keep_tree=True)
    journal, summary = live_run(tmp_path, project, step(command="npm test"), env, head=HEAD)
    assert summary.outcome == "failed"
    assert summary.findings_remain
    done = finished(journal)
    assert done["outcome"] == "failed" and done["findings_remain"]
    assert done["result"]["checks"]["scan"] == "affected"
    assert "axios@1.14.1 in package-lock.json" in done["summary"]
    assert "plain-crypto-js" in done["summary"]
    severities = {f["severity"] for f in planned(journal)["findings"]}
    assert "compromised" in severities


def test_a_failing_or_hanging_command_fails_the_step(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = repaired(tmp_path, registry, env, 'node -e "process.exit(3)"')
    journal, _ = live_run(tmp_path, project, step(command="npm test", signatures=False), env)
    done = finished(journal)
    assert done["outcome"] == "failed"
    assert "`npm test` failed (exit 3)" in done["summary"]

    slow = ["node", "-e", "setTimeout(() => {}, 60000)"]
    journal, _ = live_run(
        tmp_path,
        project,
        step(command=slow, signatures=False, timeout=1),
        env,
        name="slow",
    )
    done = finished(journal)
    assert done["outcome"] == "failed"
    assert "timed out after 1 s" in done["summary"]


def test_an_unreadable_file_is_never_verified(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = repaired(tmp_path, registry, env, "node -e 0")
    lock = project / "package-lock.json"
    lock.rename(project / "real-lock.json")
    lock.symlink_to(project / "real-lock.json")  # refused: never followed
    journal, _ = live_run(tmp_path, project, step(signatures=False), env)
    done = finished(journal)
    assert done["outcome"] == "failed"
    assert done["result"]["checks"]["scan"] == "incomplete"
    assert "not verified" in done["summary"]


def test_dry_run_changes_nothing(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = prepare_fixture(tmp_path, "npm-v3-direct", registry, keep_tree=True)
    before = tree_digest(project)
    journal, summary = live_run(
        tmp_path, project, step(command="npm test"), env, head=HEAD, dry_run=True
    )
    assert summary.outcome == "completed", summary.reason
    assert tree_digest(project) == before
    done = finished(journal)
    assert done["summary"].startswith("dry run: nothing was changed, so nothing is verified")
    outcomes = {e["data"]["outcome"] for e in read_entries(journal) if e["event"] == "effect"}
    assert outcomes == {"would"}


def test_registry_keys_of_a_registry_without_them(registry):
    ok, said = registry_keys(registry.url)
    assert not ok and "HTTP 404" in said
    assert registry_keys("file:///etc/passwd") == (
        False,
        "'file:///etc/passwd' is not an http(s) registry",
    )
