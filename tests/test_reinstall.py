"""`reinstall` with the real package managers against verdaccio: scripts off, then verification."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import read_entries, verify
from tests.conftest import ROOT
from tests.npmreg import (
    MARKER_NAME,
    Registry,
    require_tools,
    start_registry,
)
from tests.npmreg import manager_env as env_for
from tests.npmreg import prepare_fixture as prepare
from tests.test_undo import HEAD, live_run
from tests.treehash import tree_digest

PROJECTS = ROOT / "tests" / "fixtures" / "projects"
STEP = """\
  - {id: reinstall, uses: reinstall, title: Reinstall with scripts off}
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("npm", "yarn1", "pnpm", "verdaccio")
    reg = start_registry(tmp_path_factory.mktemp("verdaccio"))
    try:
        yield reg
    finally:
        reg.stop()


def finished(journal: Path) -> dict:
    return [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"][-1]


def test_clean_lockfile_reinstalls_and_verifies(tmp_path, registry):
    project = prepare(tmp_path, "clean", registry)
    env = env_for(tmp_path, registry, "npm")
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert summary.outcome == "completed", summary.reason
    assert not summary.findings_remain
    assert (project / "node_modules/axios/package.json").is_file()
    assert (project / "node_modules/axios-legacy/package.json").is_file()
    done = finished(journal)
    assert done["outcome"] == "succeeded"
    assert "npm ci --ignore-scripts" in done["summary"]
    assert "nothing compromised left" in done["summary"]
    planned = next(e["data"] for e in read_entries(journal) if e["event"] == "step_planned")
    [action] = planned["actions"]
    assert action["kind"] == "run" and action["destructive"]
    assert action["detail"]["argv"] == ["npm", "ci", "--ignore-scripts"]
    assert "package-lock.json" in action["detail"]["why"]
    assert verify(journal).ok


@pytest.mark.parametrize(
    ("tool", "fixture", "installed", "argv"),
    [
        ("npm", "npm-v3-direct", "node_modules/plain-crypto-js", "npm ci --ignore-scripts"),
        (
            "yarn1",
            "yarn1-direct",
            "node_modules/plain-crypto-js",
            "yarn install --frozen-lockfile --ignore-scripts",
        ),
        (
            "pnpm",
            "pnpm10",
            "node_modules/.pnpm/plain-crypto-js@4.2.1",
            "pnpm install --frozen-lockfile --ignore-scripts",
        ),
        # bun would not run it anyway (not in trustedDependencies): this one checks the command
        (
            "bun",
            "bun",
            "node_modules/plain-crypto-js",
            "bun install --frozen-lockfile --ignore-scripts",
        ),
    ],
)
def test_scripts_stay_off_and_a_bad_lockfile_fails_verification(
    tmp_path, registry, tool, fixture, installed, argv
):
    require_tools(tool)
    # the lockfile still holds plain-crypto-js@4.2.1, whose postinstall writes the marker; pnpm
    # gets the fixture's own tree (made with another store), which it must replace without a TTY
    project = prepare(tmp_path, fixture, registry, keep_tree=tool == "pnpm")
    env = env_for(tmp_path, registry, tool)
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert (project / installed).is_dir()  # the install really happened...
    if tool == "pnpm":
        assert "/fixture-work" not in (project / "node_modules/.modules.yaml").read_text()
    assert not (tmp_path / "markers" / MARKER_NAME).exists()  # ...without its install script
    assert not (project / MARKER_NAME).exists()
    assert summary.outcome == "failed"
    assert summary.findings_remain
    done = finished(journal)
    assert done["outcome"] == "failed" and done["findings_remain"]
    assert argv in done["summary"]
    assert "plain-crypto-js" in done["summary"]
    assert verify(journal).ok


def test_berry_reinstalls_with_scripts_disabled(tmp_path, registry):
    require_tools("berry")
    project = prepare(tmp_path, "yarn-berry", registry)
    env = env_for(tmp_path, registry, "berry")
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    planned = next(e["data"] for e in read_entries(journal) if e["event"] == "step_planned")
    detail = planned["actions"][0]["detail"]
    assert detail["argv"] == ["yarn", "install", "--immutable"]
    assert detail["env"] == {"YARN_ENABLE_SCRIPTS": "0"}
    assert (project / "node_modules/plain-crypto-js").is_dir()
    assert not (tmp_path / "markers" / MARKER_NAME).exists()
    assert summary.outcome == "failed" and summary.findings_remain  # 1.14.1 still locked


def test_missing_manager_names_the_command_and_a_rerun_resumes(tmp_path, registry):
    project = prepare(tmp_path, "pnpm10", registry)
    env = env_for(tmp_path, registry, "pnpm", path_tools=("npm",))  # no pnpm on PATH
    env["PATH"] = (
        os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "pnpm").exists())
        + os.pathsep
        + str(tmp_path / "bin")
    )
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert summary.outcome == "failed"
    assert "`pnpm` is not on PATH" in summary.reason
    assert "pnpm install --frozen-lockfile --ignore-scripts" in summary.reason
    assert not (project / "node_modules").exists()

    # the operator installs pnpm and reruns: the same run resumes at the failed step
    env = env_for(tmp_path, registry, "pnpm")
    journal2, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert journal2 == journal
    assert any(e["event"] == "run_resumed" for e in read_entries(journal))
    assert (project / "node_modules/.pnpm").is_dir()
    assert "pnpm install" in finished(journal)["summary"]
    assert verify(journal).ok


def test_dry_run_changes_nothing(tmp_path, registry):
    project = prepare(tmp_path, "npm-v3-direct", registry, keep_tree=True)
    env = env_for(tmp_path, registry, "npm")
    before = tree_digest(project)
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD, dry_run=True)
    assert summary.outcome == "completed"
    assert not summary.findings_remain
    assert tree_digest(project) == before
    done = finished(journal)
    assert "nothing installed, nothing verified" in done["summary"]
    [effect] = [e["data"] for e in read_entries(journal) if e["event"] == "effect"]
    assert effect["outcome"] == "would" and effect["argv"].endswith("ci --ignore-scripts")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the npm process")
def test_sigkill_during_the_install_then_a_rerun_finishes(tmp_path, registry):
    project = prepare(tmp_path, "clean", registry)
    env = env_for(tmp_path, registry, "npm")
    env["PYTHONPATH"] = str(ROOT)
    pb = tmp_path / "pb.yaml"
    pb.write_text(HEAD + STEP)
    argv = [
        sys.executable,
        "-m",
        "tests.support.cli",
        "run",
        str(pb),
        "--target",
        str(project),
        "--yes",
    ]
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the crash takes npm down with it
    )
    deadline = time.monotonic() + 30
    while not _children(proc.pid):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "npm never started"
        time.sleep(0.01)
    time.sleep(0.2)  # npm is now busy with node_modules
    os.killpg(proc.pid, signal.SIGKILL)  # a crash: runbook and npm die together
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    [journal] = sorted((tmp_path / "state" / "runbook" / "test-undo").glob("*.jsonl"))
    killed = read_entries(journal)
    assert [e["data"]["step"] for e in killed if e["event"] == "step_started"] == ["reinstall"]
    assert not any(e["event"] in ("effect", "step_finished") for e in killed)  # npm never ended

    result = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming" in result.stdout
    assert (project / "node_modules/axios/package.json").is_file()
    assert verify(journal).ok
    entries = read_entries(journal)
    started = [e["data"]["step"] for e in entries if e["event"] == "step_started"]
    assert started == ["reinstall", "reinstall"]
    assert finished(journal)["outcome"] == "succeeded"
