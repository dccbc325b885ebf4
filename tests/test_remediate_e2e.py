"""The bundled playbook, headless and live, on projects installed during the attack window.

Real npm 11, yarn 1 and pnpm 10 against verdaccio; a real git repository; the real CLI.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git
import pytest
import yaml

from runbook.journal import read_entries, verify
from steps.npm.lockfiles import parse_lockfile
from tests.conftest import RUNBOOK
from tests.npmreg import (
    MARKER_NAME,
    manager_env,
    prepare_fixture,
    require_tools,
    run_tool,
    start_registry,
)

CASES = {  # fixture -> (manager, lockfile)
    "npm-v3-direct": ("npm", "package-lock.json"),
    "yarn1-direct": ("yarn1", "yarn.lock"),
    "pnpm10": ("pnpm", "pnpm-lock.yaml"),
}
IDENTITY = {
    "GIT_AUTHOR_NAME": "On Call",
    "GIT_AUTHOR_EMAIL": "oncall@example.test",
    "GIT_COMMITTER_NAME": "On Call",
    "GIT_COMMITTER_EMAIL": "oncall@example.test",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("verdaccio", "npm", "yarn1", "pnpm")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def runbook(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def resolved(lockfile: Path) -> set[str]:
    graph = parse_lockfile(lockfile, lockfile.read_bytes())
    return {f"{n.name}@{n.version}" for n in graph.nodes.values()}


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_live_headless_remediation(fixture, registry, tmp_path):
    manager, lock_name = CASES[fixture]
    env = {**manager_env(tmp_path, registry, manager), **IDENTITY}
    project = prepare_fixture(tmp_path, fixture, registry, keep_tree=True)
    installed = json.loads(runbook(env, "scan", project, "--format", "json").stdout)
    assert any(
        f["kind"] == "installed" and f["package"] == "plain-crypto-js"
        for f in installed["findings"]
    )
    # the attack window also left the bad tarballs in the package manager's cache
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "package.json").write_text('{"name": "scratch", "version": "1.0.0"}\n')
    run_tool("npm", ["install", "--ignore-scripts", "axios@1.14.1"], cwd=scratch, env=env)
    (project / ".gitignore").write_text("node_modules/\n")
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.add("-A")
    repo.git.commit("-m", "as installed on 2026-03-31", env=IDENTITY)
    original = {name: (project / name).read_bytes() for name in ("package.json", lock_name)}
    before = runbook(env, "scan", "--host", "--format", "json")
    assert any(f["kind"] == "cache" for f in json.loads(before.stdout)["findings"])

    result = runbook(env, "run", "axios-2026-03", "--target", project, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    head = result.stdout.split("head: ")[1].split()[0]
    journal = Path(result.stdout.split("journal: ")[1].split()[0])

    manifest = json.loads((project / "package.json").read_text())
    assert manifest["dependencies"]["axios"] == "1.14.0"
    forced = {v for k, v in _forcing(manifest, project).items() if "axios" in k}
    assert "1.14.0" in forced and forced <= {"1.14.0", "0.30.3"}  # an override for transitives
    names = resolved(project / lock_name)
    axios = {n for n in names if n.startswith("axios@")}
    assert "axios@1.14.0" in axios and axios <= {"axios@1.14.0", "axios@0.30.3"}
    assert not any(n.startswith("plain-crypto-js@") for n in names)
    axios = json.loads((project / "node_modules" / "axios" / "package.json").read_text())
    assert axios["version"] == "1.14.0"
    clean = json.loads(runbook(env, "scan", project, "--format", "json").stdout)
    assert not clean["affected"], clean["findings"]
    assert not (tmp_path / "markers" / MARKER_NAME).exists()  # no install script ran
    assert not (project / MARKER_NAME).exists()
    after = json.loads(runbook(env, "scan", "--host", "--format", "json").stdout)
    assert [f for f in after["findings"] if f["kind"] == "cache"] == []

    branch = repo.heads["axios-2026-03/remediate"]
    commits = list(repo.iter_commits(f"main..{branch.name}"))
    assert len(commits) == 1
    changed = sorted(commits[0].stats.files)
    assert set(changed) <= {"package.json", lock_name, "pnpm-workspace.yaml"}
    assert "package.json" in changed and lock_name in changed
    message = commits[0].message
    assert "axios" in message and "1.14.1" in message and "1.14.0" in message
    pinned_head = message.split("Runbook-Journal-Head: ")[1].split()[0]
    assert pinned_head in {e["hash"] for e in read_entries(journal)}
    assert not repo.remotes
    assert verify(journal).ok
    assert verify(journal, head).ok

    undo = runbook(env, "undo", journal, "--target", project, "--head", head)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    for name, data in original.items():
        assert (project / name).read_bytes() == data, name
    assert verify(journal).ok
    assert any(e["event"] == "undo" for e in read_entries(journal))
    report = runbook(env, "report", journal)
    assert report.returncode == 0
    assert f"| undo: restore {project / 'package.json'} | ok (by test-operator) |" in report.stdout
    assert "| Audit chain | intact" in report.stdout


def _forcing(manifest: dict, project: Path) -> dict[str, str]:
    """The override / resolution entries the project's manager reads."""
    found = dict(manifest.get("overrides", {}))
    found |= manifest.get("resolutions", {})
    found |= (manifest.get("pnpm") or {}).get("overrides", {})
    workspace = project / "pnpm-workspace.yaml"
    if workspace.is_file():
        found |= (yaml.safe_load(workspace.read_text()) or {}).get("overrides", {})
    return {k: str(v) for k, v in found.items()}
