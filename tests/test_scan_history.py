"""`--history` on real git repositories: when a bad version entered and left each lockfile."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import git

from runbook.playbook import load_playbook
from steps.npm.badset import BadSet
from steps.scan.history import scan_repo
from tests.conftest import BUNDLED

BAD = BadSet(load_playbook(BUNDLED).playbook.incident)


def lockfile(version: str, extra: dict | None = None) -> str:
    packages = {
        "": {"name": "app", "version": "1.0.0", "dependencies": {"axios": "^1.14.0"}},
        "node_modules/axios": {"version": version},
        **(extra or {}),
    }
    if version == "1.14.1":
        packages["node_modules/axios"]["dependencies"] = {"plain-crypto-js": "^4.2.1"}
        packages["node_modules/plain-crypto-js"] = {"version": "4.2.1", "hasInstallScript": True}
    doc = {"name": "app", "lockfileVersion": 3, "requires": True, "packages": packages}
    return json.dumps(doc, indent=2) + "\n"


def commit(repo: git.Repo, files: dict[str, str | None], who: str, when: str) -> str:
    root = Path(repo.working_tree_dir)
    for name, text in files.items():
        path = root / name
        if text is None:
            repo.index.remove([name], working_tree=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        repo.index.add([name])
    actor = git.Actor(who, f"{who.lower()}@example.test")
    stamp = f"{int(datetime.fromisoformat(when).timestamp())} +0000"
    made = repo.index.commit(
        f"change by {who}", author=actor, committer=actor, author_date=stamp, commit_date=stamp
    )
    return made.hexsha


def make_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    shas = [
        commit(
            repo,
            {"package-lock.json": lockfile("1.14.0"), "README.md": "axios@1.14.1\n"},
            "Carol",
            "2026-03-01T10:00:00+00:00",
        ),
        commit(
            repo, {"package-lock.json": lockfile("1.14.1")}, "Alice", "2026-03-31T01:05:00+00:00"
        ),
        commit(
            repo,
            {"docs/CHANGELOG.md": "mentions axios 1.14.1 and 0.30.4\n"},
            "Dave",
            "2026-03-31T09:00:00+00:00",
        ),
        commit(repo, {"package-lock.json": lockfile("1.14.0")}, "Bob", "2026-04-01T12:00:00+00:00"),
        commit(
            repo, {"web/package-lock.json": lockfile("1.14.1")}, "Erin", "2026-04-02T08:00:00+00:00"
        ),
        commit(
            repo,
            {"web/package-lock.json": lockfile("1.14.10")},
            "Erin",
            "2026-04-03T08:00:00+00:00",
        ),
        commit(
            repo,
            {"api/package-lock.json": lockfile("1.14.1")},
            "Frank",
            "2026-04-04T08:00:00+00:00",
        ),
    ]
    return root, shas


def test_exposure_windows_with_commit_author_and_date(tmp_path, sandbox_env):
    root, shas = make_repo(tmp_path)
    findings = list(scan_repo(root, BAD))
    got = sorted(
        (Path(f.path).relative_to(root).as_posix(), f.package, f.version, f.message)
        for f in findings
    )
    assert [g[:3] for g in got] == [
        ("api/package-lock.json", "axios", "1.14.1"),
        ("api/package-lock.json", "plain-crypto-js", "4.2.1"),
        ("package-lock.json", "axios", "1.14.1"),
        ("package-lock.json", "plain-crypto-js", "4.2.1"),
        ("web/package-lock.json", "axios", "1.14.1"),
        ("web/package-lock.json", "plain-crypto-js", "4.2.1"),
    ]
    root_axios = got[2][3]
    assert f"from {shas[1][:10]} (Alice, 2026-03-31T01:05:00+00:00)" in root_axios
    assert f"until {shas[3][:10]} (Bob, 2026-04-01T12:00:00+00:00)" in root_axios
    assert f"until {shas[5][:10]} (Erin, 2026-04-03T08:00:00+00:00)" in got[4][3]
    assert "still at HEAD" in got[0][3]
    assert all(f.kind == "history" and f.severity == "at-risk" for f in findings)


def test_history_through_the_cli(run_cli, tmp_path):
    make_repo(tmp_path)
    without = json.loads(run_cli("scan", tmp_path, "--format", "json").stdout)
    assert {f["kind"] for f in without["findings"]} == {"lockfile"}  # api/ still has it
    result = run_cli("scan", tmp_path, "--history", "--format", "json")
    assert result.returncode == 1
    kinds = sorted(f["kind"] for f in json.loads(result.stdout)["findings"])
    assert kinds.count("history") == 6


def test_a_repository_without_commits_is_fine(tmp_path):
    git.Repo.init(tmp_path / "empty")
    assert list(scan_repo(tmp_path / "empty", BAD)) == []


def test_exposure_window_from_lockfiles_written_by_real_npm_and_yarn(tmp_path):
    projects = Path(__file__).parent / "fixtures" / "projects"
    root = tmp_path / "service"
    repo = git.Repo.init(root)
    clean = (projects / "clean" / "package-lock.json").read_text()
    bad = (projects / "npm-transitive-nested" / "package-lock.json").read_text()
    yarn_bad = (projects / "yarn1-direct" / "yarn.lock").read_text()
    commit(repo, {"package-lock.json": clean}, "Carol", "2026-03-30T10:00:00+00:00")
    entered = commit(
        repo,
        {"package-lock.json": bad, "ui/yarn.lock": yarn_bad},
        "Alice",
        "2026-03-31T02:00:00+00:00",
    )
    left = commit(
        repo, {"package-lock.json": clean, "ui/yarn.lock": None}, "Bob", "2026-03-31T09:30:00+00:00"
    )
    findings = sorted(scan_repo(root, BAD), key=lambda f: (f.path, f.package))
    got = [(Path(f.path).name, f.package, f.version) for f in findings]
    assert got == [
        ("package-lock.json", "axios", "1.14.1"),
        ("package-lock.json", "plain-crypto-js", "4.2.1"),
        ("yarn.lock", "axios", "1.14.1"),
        ("yarn.lock", "plain-crypto-js", "4.2.1"),
    ]
    for finding in findings:
        assert f"from {entered[:10]} (Alice, 2026-03-31T02:00:00+00:00)" in finding.message
        assert f"until {left[:10]} (Bob, 2026-03-31T09:30:00+00:00)" in finding.message
