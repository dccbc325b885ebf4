"""runbook as a multi-gitter script, against local bare repositories.

multi-gitter (a Go binary, not installable here) clones each repository, runs the script with the
checkout as its working directory and `$REPOSITORY` set, and then: exit code 0 and changes in the
working tree make a commit on its branch and a pull request; exit 0 without changes, nothing;
any other exit code, the repository is reported as failed and nothing is pushed. The loop below
does exactly that, with git, for four repositories: one at risk (fixed by pinning), one clean,
one with a broken lockfile (runbook cannot check it: exit 3) and one compromised whose lockfile
needs regenerating, which this playbook does not do (findings remain: exit 1).

The script is `runbook run PLAYBOOK --target . --yes --json --no-commit`: `--no-commit` leaves the
commit to multi-gitter (runbook's `git_commit` step would otherwise commit on its own branch, and
multi-gitter would find no change to push).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import git
import pytest

from runbook.journal import read_entries, verify
from tests.conftest import EXAMPLE, RUNBOOK
from tests.fleet_support import INCIDENT

PLAYBOOK = (
    'id: repo-fix\ntitle: Repository fix\nversion: "1"\n'
    + INCIDENT
    + """\
steps:
  - {id: detect, uses: detect, title: Find every copy, confirm: never}
  - {id: pin, uses: pin, title: Pin the safe versions, confirm: destructive,
     with: {regenerate_lockfile: false}}
  - {id: verify, uses: detect, title: Verify, confirm: never, with: {verify: true}}
  - {id: commit-fix, uses: git_commit, title: Commit the fix, confirm: destructive,
     with: {author_name: Remediation Bot, author_email: bot@example.test}}
"""
)
BRANCH = "multi-gitter-axios-2026-03"
IDENTITY = {
    "GIT_AUTHOR_NAME": "multi-gitter",
    "GIT_AUTHOR_EMAIL": "mg@example.test",
    "GIT_COMMITTER_NAME": "multi-gitter",
    "GIT_COMMITTER_EMAIL": "mg@example.test",
}


def _repository(root: Path, name: str, fill) -> Path:
    """A bare repository `root/remote/<name>.git` whose main branch holds what `fill` made."""
    work = root / "seed" / name
    work.mkdir(parents=True)
    fill(work)
    repo = git.Repo.init(work, initial_branch="main")
    repo.git.add("-A")
    repo.git.commit("-m", "initial", env=IDENTITY)
    bare = root / "remote" / f"{name}.git"
    git.Repo.clone_from(work, bare, bare=True)
    return bare


def _manifest(work: Path, dependencies: dict[str, str]) -> None:
    manifest = {"name": work.name, "version": "1.0.0", "dependencies": dependencies}
    (work / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _at_risk(work: Path) -> None:
    _manifest(work, {"axios": "^1.14.0"})


def _clean(work: Path) -> None:
    _manifest(work, {"left-pad": "1.3.0"})


def _broken(work: Path) -> None:
    _manifest(work, {"left-pad": "1.3.0"})
    (work / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {"": {"name": ')


def _compromised(work: Path) -> None:
    shutil.copytree(EXAMPLE, work, dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(work / "node_modules")


def multi_gitter(bare: Path, script: list[str], env: dict[str, str], scratch: Path) -> dict:
    """What multi-gitter does with one repository: clone, run the script in the checkout, and
    on exit 0 with changes, commit them on its branch and push."""
    checkout = scratch / bare.stem
    repo = git.Repo.clone_from(bare, checkout)
    head = repo.head.commit.hexsha
    done = subprocess.run(
        script,
        cwd=checkout,
        env={**env, "REPOSITORY": f"local/{bare.stem}"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcome = {"exit": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    outcome["head_unchanged"] = repo.head.commit.hexsha == head
    outcome["branches"] = sorted(h.name for h in repo.heads)
    changed = repo.git.status("--porcelain")
    outcome["changed"] = changed
    if done.returncode == 0 and changed:
        repo.git.checkout("-b", BRANCH)
        repo.git.add("-A")
        repo.git.commit("-m", "fix: pin axios (axios-2026-03)", env=IDENTITY)
        repo.git.push("origin", BRANCH)
    return outcome


@pytest.fixture
def repositories(tmp_path: Path) -> dict[str, Path]:
    return {
        name: _repository(tmp_path, name, fill)
        for name, fill in {
            "at-risk": _at_risk,
            "clean": _clean,
            "broken": _broken,
            "compromised": _compromised,
        }.items()
    }


def test_runbook_as_the_script_of_a_multi_gitter_run(repositories, sandbox_env, tmp_path):
    playbook = tmp_path / "repo-fix.yaml"
    playbook.write_text(PLAYBOOK)
    script = [str(RUNBOOK), "run", str(playbook), "--target", ".", "--yes", "--json"]
    script.append("--no-commit")
    scratch = tmp_path / "checkouts"
    scratch.mkdir()
    env = {k: v for k, v in sandbox_env.items() if not k.startswith("GIT_")}
    results = {
        name: multi_gitter(bare, script, env, scratch) for name, bare in repositories.items()
    }

    codes = {name: r["exit"] for name, r in results.items()}
    assert codes == {"at-risk": 0, "clean": 0, "broken": 3, "compromised": 1}, {
        n: r["stderr"][-500:] for n, r in results.items()
    }
    for name, result in results.items():
        assert result["head_unchanged"], name  # runbook never commits with --no-commit
        assert result["branches"] == ["main"], name  # nor makes a branch
        end = json.loads(result["stdout"].splitlines()[-1])
        assert end["event"] == "end" and end["outcome"] == "completed", name
        journal = Path(end["journal"])
        assert verify(journal).ok
        assert Path(os.path.realpath(scratch / name)) == Path(
            next(e for e in read_entries(journal) if e["event"] == "run_started")["data"]["target"]
        )
        commit_step = [
            e["data"]
            for e in read_entries(journal)
            if e["event"] in ("step_finished", "step_skipped")
            and e["data"].get("step") == "commit-fix"
        ]
        assert commit_step and "commit" not in (commit_step[-1].get("result") or {}), name
    # the working tree holds exactly the fix, nothing runbook left behind
    assert results["at-risk"]["changed"].split() == ["M", "package.json"]
    assert results["clean"]["changed"] == ""

    pushed = {name: [r.name for r in git.Repo(bare).heads] for name, bare in repositories.items()}
    assert pushed == {
        "at-risk": ["main", BRANCH],
        "clean": ["main"],
        "broken": ["main"],
        "compromised": ["main"],
    }
    fix = git.Repo(repositories["at-risk"]).commit(BRANCH)
    assert sorted(fix.stats.files) == ["package.json"]
    manifest = json.loads((fix.tree / "package.json").data_stream.read())
    assert manifest["dependencies"]["axios"] == "1.14.0"
