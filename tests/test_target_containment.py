"""A step never acts outside its target, even through a symlink that validation cannot see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.journal import read_entries

PLAYBOOK = """\
id: containment-test
title: containment (test)
version: "1"
incident:
  summary: bad axios
  window: {{start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}}
  packages:
    - {{name: axios, bad_versions: ["1.14.1"], safe_pins: {{"1": "1.14.0"}}}}
steps:
  - id: the-step
    uses: {uses}
    title: the step
    confirm: never
    with:
      {field}: {value}
"""

OUTSIDE_LOCK = {
    "name": "outside",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "outside", "dependencies": {"axios": "1.14.1"}},
        "node_modules/axios": {"version": "1.14.1"},
    },
}


@pytest.mark.parametrize(
    ("uses", "field", "value"),
    [
        ("detect", "paths", '["link"]'),
        ("discover_credentials", "paths", '["link"]'),
        ("reinstall", "path", "link"),
    ],
)
def test_a_symlink_out_of_the_target_is_refused_at_run_time(
    run_cli, tmp_path: Path, uses: str, field: str, value: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "package.json").write_text('{"name": "outside", "dependencies": {"axios": "*"}}')
    (outside / "package-lock.json").write_text(json.dumps(OUTSIDE_LOCK))
    (outside / ".env").write_text("API_TOKEN=s3cr3t-outside-value-123456\n")
    target = tmp_path / "target"
    target.mkdir()
    (target / "package.json").write_text('{"name": "target"}')
    (target / "link").symlink_to(outside)
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK.format(uses=uses, field=field, value=value))
    journal = tmp_path / "journal.jsonl"

    result = run_cli("run", playbook, "--target", target, "--yes", "--journal", journal)

    assert result.returncode == 1, result.stdout + result.stderr
    finished = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    assert finished and finished[-1]["outcome"] == "failed"
    assert "leads outside the target" in finished[-1]["summary"]
    text = journal.read_text()
    assert "package-lock.json" not in text  # nothing under the link was read, nothing reported
    assert "API_TOKEN" not in text
