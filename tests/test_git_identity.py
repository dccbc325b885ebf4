"""`git_commit` on a machine where git has no user identity (HOME without a gitconfig, no system
config): the plan says so with the fix, nothing is committed, and `--git-author` on a rerun lets
the step finish. The real CLI and real git throughout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git
import pytest

from runbook.journal import read_entries
from tests.conftest import ROOT

AUTHOR = git.Actor("Test Author", "author@example.test")
PLAYBOOK = """\
id: identity-test
title: Git identity test
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: plain-crypto-js, any_version: true}
steps:
  - {id: edit, uses: test_slow, title: Change a file, confirm: never, with: {seconds: 0}}
  - id: commit
    uses: git_commit
    title: Commit the fix
    with: {paths: [runlog.txt]}
"""


@pytest.fixture
def env(tmp_path: Path, sandbox_env: dict[str, str]) -> dict[str, str]:
    """No identity anywhere: an empty HOME, no system config, no identity variables, and git
    told to use configured identities only (so the machine's host name cannot stand in)."""
    env = {k: v for k, v in sandbox_env.items() if not k.startswith("GIT_") and k != "EMAIL"}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="user.useConfigOnly",
        GIT_CONFIG_VALUE_0="true",
        PYTHONPATH=str(ROOT),
    )
    assert not (Path(env["HOME"]) / ".gitconfig").exists()
    return env


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    target = tmp_path / "project"
    target.mkdir()
    (target / "package.json").write_text("{}\n")
    r = git.Repo.init(target, initial_branch="main")
    r.index.add(["package.json"])
    r.index.commit("initial", author=AUTHOR, committer=AUTHOR)
    return r


def run(tmp_path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "identity.yaml"
    playbook.write_text(PLAYBOOK)
    argv = [sys.executable, "-m", "tests.support.cli", "run", str(playbook)]
    argv += ["--target", str(tmp_path / "project"), "--yes", "--journal", str(tmp_path / "j.jsonl")]
    return subprocess.run(
        [*argv, *extra],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def events(tmp_path: Path, name: str) -> list[dict]:
    return [e["data"] for e in read_entries(tmp_path / "j.jsonl") if e["event"] == name]


def test_no_identity_is_said_at_plan_time_and_git_author_fixes_it(tmp_path, env, repo):
    head = repo.head.commit.hexsha
    result = run(tmp_path, env)
    assert result.returncode == 1, result.stderr
    [failed] = [d for d in events(tmp_path, "step_finished") if d["step"] == "commit"]
    assert failed["outcome"] == "failed"
    summary = failed["summary"]
    assert summary.startswith("planning failed: git_commit: git has no user identity")
    assert "git config --global user.email" in summary
    assert '--git-author "Your Name <you@example.com>"' in summary
    assert "Traceback" not in result.stderr + result.stdout
    assert repo.head.commit.hexsha == head and [h.name for h in repo.heads] == ["main"]

    # the operator reruns with an identity: the run resumes at the commit step
    result = run(tmp_path, env, "--git-author", "Jane Doe <jane@example.test>")
    assert result.returncode == 0, result.stderr + result.stdout
    commit = repo.heads["identity-test/remediate"].commit
    assert (commit.author.name, commit.author.email) == ("Jane Doe", "jane@example.test")
    assert (commit.committer.name, commit.committer.email) == ("Jane Doe", "jane@example.test")
    assert {d.b_path for d in commit.parents[0].diff(commit)} == {"runlog.txt"}
    planned = [d for d in events(tmp_path, "step_planned") if d["step"] == "commit"][-1]
    assert "author and committer: Jane Doe <jane@example.test> (--git-author)" in planned["notes"]


def test_a_dry_run_says_a_live_run_would_stop(tmp_path, env, repo):
    result = run(tmp_path, env, "--dry-run")
    assert result.returncode == 0, result.stderr
    planned = [d for d in events(tmp_path, "step_planned") if d["step"] == "commit"][-1]
    assert any(
        n.startswith("a live run would stop here: git has no user identity")
        for n in planned["notes"]
    ), planned["notes"]
    assert [h.name for h in repo.heads] == ["main"]


def test_a_malformed_git_author_is_a_usage_error(tmp_path, env, repo):
    result = run(tmp_path, env, "--git-author", "jane@example.test")
    assert result.returncode == 2
    assert 'argument --git-author: expected "Name <email>"' in result.stderr
    assert not (tmp_path / "j.jsonl").exists()
