"""`runbook exercise from-journal JOURNAL`: a scenario that replays a real run. It validates,
names the same playbook, rebuilds the world from what the run saw, and carries no secret of the
machine the run was on."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from runbook.exercise.scenario import load_scenario
from tests.conftest import EXAMPLE

CANARIES = {
    "aws": "AKIA" + "REPLAYCANARY2345",
    "aws-secret": "replayCanarySecret/" + "Z" * 21,
    "npm": "npm_" + "ReplayCanary" * 3,
}


def test_a_real_run_becomes_a_valid_scenario_without_its_secrets(
    tmp_path: Path, sandbox_env: dict[str, str], run_cli
) -> None:
    home = Path(sandbox_env["HOME"])
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {CANARIES['aws']}\n"
        f"aws_secret_access_key = {CANARIES['aws-secret']}\n"
    )
    (home / ".npmrc").write_text(f"//registry.npmjs.org/:_authToken={CANARIES['npm']}\n")
    project = home / "invoice-sync"
    shutil.copytree(EXAMPLE, project, symlinks=True)
    journal = tmp_path / "real.jsonl"
    run = run_cli(
        "run", "axios-2026-03", "--target", project, "--dry-run", "--no-input", "--journal", journal
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    assert run_cli("note", journal, "TODO: tell the CI team about the runners").returncode == 0

    out = tmp_path / "replay.yaml"
    result = run_cli("exercise", "from-journal", journal, "-o", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for value in CANARIES.values():
        assert value not in text and value[4:-4] not in text
    loaded = load_scenario(out)
    s = loaded.scenario
    assert s.playbook == "axios-2026-03" and loaded.playbook.playbook.id == "axios-2026-03"
    assert s.world["kind"] == "npm-host"
    assert [p["manager"] for p in s.world["projects"]] == ["npm"]
    assert {c["type"] for c in s.world["credentials"]} >= {"aws-access-key", "npm-token"}
    assert s.injects[0].id == "first-finding" and "axios@1.14.1" in s.injects[0].text
    note = next(i for i in s.injects if i.id == "note-1")
    assert note.text == "TODO: tell the CI team about the runners"
    assert s.expectations[0].id == "detect-again" and s.expectations[0].must
    assert s.expectations[0].phase == "detect"
    # the world it describes can be built
    from steps.world.plugin import plugin

    (tmp_path / "world").mkdir()
    spec = {k: v for k, v in s.world.items() if k != "kind"}
    world = plugin.build(spec, "as-it-happened", {}, 1, tmp_path / "world")
    world.stop_services()
    assert world.targets and (world.targets[0] / "package.json").is_file()
    assert yaml.safe_load(text)["variants"] == [{"id": "as-it-happened", "title": "As it happened"}]


def test_from_journal_refuses_what_it_cannot_read(tmp_path: Path, run_cli) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n")
    result = run_cli("exercise", "from-journal", broken)
    assert result.returncode == 2 and "journal entry 1 is malformed: not JSON" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli("exercise", "from-journal", empty)
    assert result.returncode == 2 and "holds no run" in result.stderr
    result = run_cli("exercise", "from-journal", tmp_path / "nope.jsonl", "--world", "moon")
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr
