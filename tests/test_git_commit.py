"""`git_commit` against real git repositories made in tmp_path (HOME is tmp: no global config)."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from runbook.journal import read_entries, verify
from tests.test_undo import live_run

AUTHOR = git.Actor("Test Author", "author@example.test")

WRITE = """\
  - id: pin
    uses: test_write_files
    title: Pin
    with:
      files:
        package.json: "{\\"dependencies\\": {\\"axios\\": \\"1.14.0\\"}}\\n"
        package-lock.json: "{\\"lockfileVersion\\": 3}\\n"
        packages/web/package.json: "{\\"name\\": \\"web\\"}\\n"
        notes.txt: "not a manifest\\n"
"""


def commit_step(extra: str = "") -> str:
    return f"""\
  - id: commit
    uses: git_commit
    title: Commit
    with: {{author_name: Remediation Bot, author_email: bot@example.test{extra}}}
"""


@pytest.fixture
def repo(tmp_path: Path, sandbox_env: dict[str, str]) -> git.Repo:
    """A repository with one commit on `main`, and an `origin` remote (a bare repo)."""
    target = tmp_path / "project"
    (target / "packages" / "web").mkdir(parents=True)
    (target / "package.json").write_text('{"dependencies": {"axios": "^1.14.0"}}\n')
    (target / "package-lock.json").write_text('{"lockfileVersion": 3, "old": true}\n')
    (target / "packages/web/package.json").write_text('{"name": "web", "old": true}\n')
    (target / "README.md").write_text("readme\n")
    (target / ".gitignore").write_text("node_modules/\n")
    r = git.Repo.init(target, initial_branch="main")
    r.index.add(["package.json", "package-lock.json", "packages/web/package.json", "README.md"])
    r.index.add([".gitignore"])
    r.index.commit("initial", author=AUTHOR, committer=AUTHOR)
    git.Repo.init(tmp_path / "origin.git", bare=True)
    r.create_remote("origin", str(tmp_path / "origin.git"))
    r.git.push("origin", "main")
    return r


def files_of(commit: git.Commit) -> set[str]:
    parent = commit.parents[0]
    return {d.b_path or d.a_path for d in parent.diff(commit)}


def test_commits_exactly_the_changed_manifests_on_a_new_branch(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    initial = repo.head.commit
    journal, summary = live_run(tmp_path, target, WRITE + commit_step(), sandbox_env)
    assert summary.outcome == "completed", summary.reason
    assert repo.active_branch.name == "test-undo/remediate"
    commit = repo.head.commit
    assert commit.parents == (initial,)
    assert files_of(commit) == {"package.json", "package-lock.json", "packages/web/package.json"}
    assert repo.heads.main.commit == initial
    assert "notes.txt" in repo.untracked_files  # written by the run, but not a manifest
    assert not repo.is_dirty(untracked_files=False)
    assert (commit.author.name, commit.author.email) == ("Remediation Bot", "bot@example.test")
    assert commit.committer.email == "bot@example.test"

    message = commit.message
    assert "Test undo playbook" in message and "test-undo" in message
    assert "1.14.1" in message and "0.30.4" in message
    assert "1.14.0" in message and "0.30.3" in message
    entries = read_entries(journal)
    head_line = next(line for line in message.splitlines() if "Journal-Head" in line)
    head = head_line.split()[-1]
    [call] = [i for i, e in enumerate(entries) if e["data"].get("service") == "git"]
    assert entries[call - 1]["hash"] == head  # the head when the commit was made
    assert entries[call]["data"]["outcome"] == "ok"
    assert verify(journal).ok

    # never pushed: the remote still has main only, at the initial commit
    bare = git.Repo(tmp_path / "origin.git")
    assert [h.name for h in bare.heads] == ["main"]
    assert bare.heads.main.commit.hexsha == initial.hexsha


def test_a_dirty_tree_is_refused(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    (target / "README.md").write_text("edited by someone\n")
    _, summary = live_run(tmp_path, target, WRITE + commit_step(), sandbox_env)
    assert summary.outcome == "failed"
    assert "README.md" in summary.reason and "allow_dirty" in summary.reason
    assert repo.active_branch.name == "main"
    assert len(list(repo.iter_commits("--all"))) == 1


def test_a_manifest_edited_before_the_run_counts_as_dirty(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    (target / "package.json").write_text('{"someone": "else"}\n')
    _, summary = live_run(tmp_path, target, WRITE + commit_step(), sandbox_env)
    assert summary.outcome == "failed"
    assert "package.json (already changed before the run)" in summary.reason
    assert len(list(repo.iter_commits("--all"))) == 1


def test_allow_dirty_commits_only_the_runs_files(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    (target / "README.md").write_text("edited by someone\n")
    (target / "other.txt").write_text("staged by someone\n")
    repo.index.add(["other.txt"])
    steps = WRITE + commit_step(", allow_dirty: true, branch: fix/axios")
    _, summary = live_run(tmp_path, target, steps, sandbox_env)
    assert summary.outcome == "completed", summary.reason
    assert repo.active_branch.name == "fix/axios"
    assert files_of(repo.head.commit) == {
        "package.json",
        "package-lock.json",
        "packages/web/package.json",
    }
    assert (target / "README.md").read_text() == "edited by someone\n"
    assert "other.txt" in [d.a_path for d in repo.index.diff("HEAD")]  # still staged only


def test_paths_filter(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    steps = WRITE + commit_step(', paths: ["package.json"]')
    _, summary = live_run(tmp_path, target, steps, sandbox_env)
    assert summary.outcome == "completed", summary.reason
    assert files_of(repo.head.commit) == {"package.json", "packages/web/package.json"}


def test_nothing_changed_is_nothing_to_commit(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    journal, summary = live_run(tmp_path, target, commit_step(), sandbox_env)
    assert summary.outcome == "completed"
    finished = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    assert (
        finished[-1]["summary"]
        == "nothing to commit: this run changed no manifest or lockfile here"
    )
    assert repo.active_branch.name == "main"
    assert [h.name for h in repo.heads] == ["main"]


def test_dry_run_commits_nothing(tmp_path, sandbox_env, repo):
    target = Path(repo.working_tree_dir)
    journal, summary = live_run(tmp_path, target, WRITE + commit_step(), sandbox_env, dry_run=True)
    assert summary.outcome == "completed", summary.reason
    assert [h.name for h in repo.heads] == ["main"]
    assert not repo.is_dirty(untracked_files=True)
    finished = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    assert finished[-1]["summary"].startswith(
        "dry run: would commit package-lock.json, package.json"
    )
    planned = [e["data"] for e in read_entries(journal) if e["event"] == "step_planned"]
    assert "packages/web/package.json" in planned[-1]["actions"][0]["summary"]


def test_a_target_outside_any_repository_has_nothing_to_commit(tmp_path, sandbox_env):
    target = tmp_path / "not-a-repo"
    target.mkdir()
    journal, summary = live_run(tmp_path, target, commit_step(), sandbox_env)
    assert summary.outcome == "completed"
    finished = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    assert finished[-1]["outcome"] == "succeeded"
    assert finished[-1]["summary"].endswith("is not inside a git repository: nothing to commit")
