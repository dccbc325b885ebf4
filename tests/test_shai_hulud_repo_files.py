"""The worm's workflows (`repo_files`, `runner_names`) in working trees and in git history (real git
repositories built in tmp_path), the runner it registers on the host, and the traps: a README that
names the files, a benign `discussion.yaml`, a comment naming the runner."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runbook.models import Indicators, RepoFile
from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan
from steps.scan.repo_files import runs_on, scan_repo_files, scan_repo_history
from steps.scan.runners import scan_runner_configs

HERE = Path(__file__).parent / "fixtures" / "shai-hulud"
PROJECTS = HERE / "projects"
BUNDLED = load_playbook(Path(__file__).parents[1] / "playbooks" / "shai-hulud-2025.yaml").playbook
INDICATORS = BUNDLED.incident.indicators
WORKFLOWS = ".github/workflows"


def fixture_text(project: str, name: str) -> str:
    return (PROJECTS / project / WORKFLOWS / name).read_text()


WORM_V1 = fixture_text("npm-worm-v1", "shai-hulud-workflow.yml")
BACKDOOR = fixture_text("pnpm-worm-v2", "discussion.yaml")
FORMATTER = fixture_text("pnpm-worm-v2", "formatter_123456789.yml")
ON_RUNNER = fixture_text("yarn1-worm-v2", "build.yml")
BENIGN_DISCUSSION = fixture_text("traps", "discussion.yaml")
BENIGN_CI = fixture_text("traps", "ci.yml")


def git(repo: Path, *args: str) -> str:
    env = {
        "HOME": str(repo.parent),
        "PATH": os.environ["PATH"],
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.test",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.test",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            git(repo, "rm", "-q", rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_repo(tmp_path: Path, name: str = "app") -> Path:
    repo = tmp_path / name
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "start", {"package.json": '{"name": "app", "version": "1.0.0"}\n'})
    return repo


def by_file(findings) -> dict[str, str]:
    return {f.path.rsplit("/", 1)[1]: f.severity for f in findings}


# -- the working tree ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("project", "expected"),
    [
        ("npm-worm-v1", {"shai-hulud-workflow.yml": "compromised"}),
        (
            "pnpm-worm-v2",
            {"discussion.yaml": "compromised", "formatter_123456789.yml": "compromised"},
        ),
        ("yarn1-worm-v2", {"build.yml": "compromised"}),
        ("traps", {}),
    ],
)
def test_fixture_workflows(project: str, expected: dict[str, str]) -> None:
    found = [f for f in scan_repo_files([PROJECTS / project], INDICATORS)]
    assert by_file(found) == expected, [f.message for f in found]


def test_messages_say_what_and_what_to_do() -> None:
    [backdoor] = [
        f
        for f in scan_repo_files([PROJECTS / "pnpm-worm-v2"], INDICATORS)
        if "discussion" in f.path
    ]
    assert (
        "backdoor" in backdoor.message and "rotate the repository's CI secrets" in backdoor.message
    )
    [runner] = scan_repo_files([PROJECTS / "yarn1-worm-v2"], INDICATORS)
    assert "self-hosted runner SHA1HULUD" in runner.message


def test_benign_discussion_yaml_and_a_readme_are_not_evidence(tmp_path: Path) -> None:
    """The traps fixture's discussion.yaml runs on GitHub's runners and never runs the body; its
    README names every file; its ci.yml names SHA1HULUD in a comment only."""
    assert "discussion" in BENIGN_DISCUSSION and "SHA1HULUD" in BENIGN_CI
    assert list(scan_repo_files([PROJECTS / "traps"], INDICATORS)) == []
    # the same text under the worm's path is evidence: the path alone decides for that file
    repo = tmp_path / "repo"
    (repo / WORKFLOWS).mkdir(parents=True)
    (repo / WORKFLOWS / "shai-hulud-workflow.yml").write_text(BENIGN_CI)
    assert by_file(scan_repo_files([repo], INDICATORS)) == {
        "shai-hulud-workflow.yml": "compromised"
    }


@pytest.mark.parametrize(
    ("runs", "labels"),
    [
        ("runs-on: SHA1HULUD", {"sha1hulud"}),
        ("runs-on: [self-hosted, SHA1HULUD]", {"self-hosted", "sha1hulud"}),
        ("runs-on:\n      - self-hosted\n      - Sha1Hulud", {"self-hosted", "sha1hulud"}),
        ("runs-on:\n      group: ci\n      labels: [SHA1HULUD]", {"sha1hulud"}),
        ("runs-on: ubuntu-latest  # not SHA1HULUD", {"ubuntu-latest"}),
    ],
)
def test_runs_on_labels(runs: str, labels: set[str]) -> None:
    text = f"on: push\njobs:\n  build:\n    {runs}\n    steps: [{{run: echo}}]\n"
    assert runs_on(text.encode()) == labels


def test_a_broken_workflow_is_read_line_by_line() -> None:
    """A workflow YAML cannot parse still cannot hide the runner it names."""
    assert "sha1hulud" in runs_on(b"jobs:\n  x:\n    runs-on: SHA1HULUD\n  y: [unclosed\n")


def test_yaml_aliases_do_not_blow_up() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    assert runs_on((bomb + "jobs:\n  x:\n    runs-on: *i\n").encode()) <= {"x"}


def test_what_cannot_be_read_is_unknown(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / WORKFLOWS).mkdir(parents=True)
    os.mkfifo(repo / WORKFLOWS / "discussion.yaml")
    (repo / WORKFLOWS / "formatter_1.yml").symlink_to("/etc/hostname")
    found = {f.path.rsplit("/", 1)[1]: f for f in scan_repo_files([repo], INDICATORS)}
    assert {n: f.severity for n, f in found.items()} == {
        "discussion.yaml": "unknown",
        "formatter_1.yml": "unknown",
    }
    # a path whose presence alone is evidence: something there is at risk, whatever it is
    os.mkfifo(repo / WORKFLOWS / "shai-hulud-workflow.yml")
    worm = [f for f in scan_repo_files([repo], INDICATORS) if "shai-hulud" in f.path]
    assert [f.severity for f in worm] == ["at-risk"]


def test_sha256_entries(tmp_path: Path) -> None:
    import hashlib

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "processor.sh").write_text("#!/bin/sh\n")
    (repo / "scripts" / "other.sh").write_text("#!/bin/sh\necho\n")
    digest = hashlib.sha256(b"#!/bin/sh\n").hexdigest()
    indicators = Indicators(repo_files=[RepoFile(path="scripts/*.sh", sha256=[digest])])
    assert by_file(scan_repo_files([repo], indicators)) == {"processor.sh": "compromised"}


# -- git history ---------------------------------------------------------------------------------
def test_history_finds_the_workflow_on_the_worms_branch_after_it_was_removed(
    tmp_path: Path,
) -> None:
    """The first wave pushed its workflow to a branch `shai-hulud`; the victim deleted the file
    later. The working tree is clean, the history is not."""
    repo = new_repo(tmp_path)
    commit(repo, "ci", {f"{WORKFLOWS}/ci.yml": BENIGN_CI})
    git(repo, "switch", "-q", "-c", "shai-hulud")
    worm = commit(repo, "Add workflow", {f"{WORKFLOWS}/shai-hulud-workflow.yml": WORM_V1})
    commit(repo, "remove it", {f"{WORKFLOWS}/shai-hulud-workflow.yml": None})
    git(repo, "switch", "-q", "main")
    assert list(scan_repo_files([repo], INDICATORS)) == []
    [finding] = scan_repo_history([repo], INDICATORS)
    assert finding.kind == "history" and finding.severity == "at-risk"
    assert worm[:10] in finding.message and "shai-hulud" in finding.message
    assert "CI secrets must be taken as stolen" in finding.message
    # the scanner runs it with --history only
    plain = scan([repo], BUNDLED.incident, ScanOptions()).findings
    assert plain == []
    deep = scan([repo], BUNDLED.incident, ScanOptions(history=True)).findings
    assert [f.kind for f in deep] == ["history"]


def test_history_judges_content_commit_by_commit(tmp_path: Path) -> None:
    """discussion.yaml was benign, then the worm rewrote it, then the owner reverted it: only the
    worm's commit is evidence. A benign discussion.yaml alone in history is nothing."""
    repo = new_repo(tmp_path)
    commit(repo, "thank people", {f"{WORKFLOWS}/discussion.yaml": BENIGN_DISCUSSION})
    assert list(scan_repo_history([repo], INDICATORS)) == []
    bad = commit(repo, "Add Discusion", {f"{WORKFLOWS}/discussion.yaml": BACKDOOR})
    commit(repo, "revert", {f"{WORKFLOWS}/discussion.yaml": BENIGN_DISCUSSION})
    [finding] = scan_repo_history([repo], INDICATORS)
    assert bad[:10] in finding.message and "backdoor" in finding.message
    assert list(scan_repo_files([repo], INDICATORS)) == []


def test_history_of_fetched_branches_counts(tmp_path: Path) -> None:
    """A clone that only fetched the worm's branch (origin/shai-hulud) sees it too."""
    upstream = new_repo(tmp_path, "upstream")
    git(upstream, "switch", "-q", "-c", "shai-hulud")
    commit(upstream, "Add workflow", {f"{WORKFLOWS}/shai-hulud-workflow.yml": WORM_V1})
    git(upstream, "switch", "-q", "main")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    [finding] = scan_repo_history([clone], INDICATORS)
    assert "origin/shai-hulud" in finding.message


def test_history_formatter_and_runner_workflows(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, "fmt", {f"{WORKFLOWS}/formatter_123456789.yml": FORMATTER})
    commit(repo, "build", {f"{WORKFLOWS}/build.yml": ON_RUNNER})
    commit(repo, "clean", {f"{WORKFLOWS}/formatter_123456789.yml": None})
    found = by_file(scan_repo_history([repo], INDICATORS))
    assert found == {"formatter_123456789.yml": "at-risk", "build.yml": "at-risk"}


def test_an_empty_repository_and_a_broken_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert list(scan_repo_history([empty], INDICATORS)) == []
    broken = tmp_path / "broken"
    (broken / ".git").mkdir(parents=True)
    (broken / ".git" / "HEAD").write_text("garbage\n")
    found = list(scan_repo_history([broken], INDICATORS))
    assert [f.severity for f in found] in ([], ["unknown"])


# -- the runner on the host ----------------------------------------------------------------------
def test_runner_registered_in_dev_env_is_found(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".dev-env").mkdir(parents=True)
    (home / ".dev-env" / ".runner").write_text(
        '\ufeff{"agentId": 7, "agentName": "SHA1HULUD", "gitHubUrl": "https://github.com/x/y"}',
        encoding="utf-8",
    )
    (home / "actions-runner").mkdir()
    (home / "actions-runner" / ".runner").write_text('{"agentName": "build-box-1"}')
    [finding] = scan_runner_configs([home], INDICATORS.runner_names)
    assert finding.severity == "compromised" and finding.path.endswith(".dev-env/.runner")
    assert "https://github.com/x/y" in finding.message
    env = {"HOME": str(home)}
    host = scan([], BUNDLED.incident, ScanOptions(host=True), env=env).findings
    assert any(f.kind == "runner" and "SHA1HULUD" in f.message for f in host)
    assert any(f.kind == "ioc" and f.path.endswith(".dev-env/.runner") for f in host)


def test_a_runner_file_that_cannot_be_read_is_unknown(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".dev-env").mkdir(parents=True)
    (home / ".dev-env" / ".runner").write_text("{ not json")
    [finding] = scan_runner_configs([home], ["SHA1HULUD"])
    assert finding.severity == "unknown"


def test_scan_json_and_exit_code(tmp_path: Path, run_cli) -> None:
    project = Path(shutil.copytree(PROJECTS / "traps", tmp_path / "traps", symlinks=True))
    clean = run_cli("scan", "--playbook", "shai-hulud-2025", "--history", project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (project / WORKFLOWS / "discussion.yaml").write_text(BACKDOOR)
    dirty = run_cli("scan", "--playbook", "shai-hulud-2025", project)
    assert dirty.returncode == 1
    assert "repo-file" in dirty.stdout and "discussion.yaml" in dirty.stdout
