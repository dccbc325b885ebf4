"""A repository with no commit yet: a dry run says what a live run would do; a live run stops."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from runbook.journal import read_entries

PLAYBOOK = """\
id: unborn-test
title: commit on an unborn repository (test)
version: "1"
incident:
  summary: bad axios
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
  - id: commit-fix
    uses: git_commit
    title: Commit the fix
    confirm: never
"""


@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
def test_an_unborn_repository(run_cli, project: Path, tmp_path: Path, mode: str) -> None:
    git.Repo.init(project)
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    journal = tmp_path / "journal.jsonl"
    result = run_cli(
        "run", playbook, "--target", project, mode, "--no-input", "--journal", journal
    )  # fmt: skip
    [done] = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    if mode == "--dry-run":  # says what a live run would do, and does not fail the rehearsal
        assert result.returncode == 0, result.stdout + result.stderr
        assert done["outcome"] == "succeeded"
        assert "has no commit yet: a live run stops here" in done["summary"]
    else:
        assert result.returncode == 1
        assert done["outcome"] == "failed"
        assert "has no commit yet; commit something first" in done["summary"]
