"""`runbook validate`, `schema`, `list` and usage errors through the installed command."""

from __future__ import annotations

import json

from tests.conftest import BUNDLED


def test_validate_accepts_the_bundled_playbook_by_path_and_id(run_cli):
    by_path = run_cli("validate", BUNDLED)
    assert by_path.returncode == 0, by_path.stderr
    by_id = run_cli("validate", "axios-2026-03")
    assert by_id.returncode == 0
    assert by_id.stdout.startswith("axios-2026-03: ok (axios-2026-03 v")


def test_validate_rejects_with_file_line_col(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BUNDLED.read_text().replace("uses: manual", "uses: manul", 1))
    result = run_cli("validate", BUNDLED, bad)
    assert result.returncode == 1
    [message] = result.stderr.splitlines()
    line = next(
        n for n, text in enumerate(bad.read_text().splitlines(), 1) if "uses: manul" in text
    )
    assert message.startswith(f"{bad}:{line}:")
    assert message.endswith("unknown step kind 'manul' (did you mean 'manual'?)")


def test_validate_unknown_file(run_cli):
    result = run_cli("validate", "no-such-playbook")
    assert result.returncode == 1
    assert "no playbook file or bundled playbook named 'no-such-playbook'" in result.stderr


def test_schema_is_json_schema_with_step_kinds(run_cli):
    result = run_cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    step = schema["$defs"]["StepSpec"]
    assert "manual" in step["properties"]["uses"]["enum"]
    assert step["additionalProperties"] is False
    rule = next(r for r in step["allOf"] if r["if"]["properties"]["uses"]["const"] == "manual")
    assert "items" in rule["then"]["properties"]["with"]["properties"]


def test_list_shows_bundled(run_cli):
    result = run_cli("list")
    assert result.returncode == 0
    assert result.stdout.startswith("axios-2026-03\t")


def test_run_usage_errors(run_cli, tmp_path, project):
    missing = run_cli("run", "axios-2026-03", "--target", tmp_path / "nope")
    assert missing.returncode == 2
    assert "is not a directory" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n")
    invalid = run_cli("run", bad, "--target", project)
    assert invalid.returncode == 2
    assert f"{bad}:1:1: missing required key 'title'" in invalid.stderr
