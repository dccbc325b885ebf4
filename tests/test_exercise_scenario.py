"""Scenario files: the bundled one is valid; every problem names file, line and column,
including an inject or expectation that names an unknown step, inject or event, and a world the
world plugin refuses; `runbook exercise validate` and `schema`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from runbook.exercise.scenario import ScenarioInvalid, bundled_scenarios, load_scenario
from runbook.exercise.schema import scenario_schema
from runbook.exercise.validate import validate_any
from tests.exercise_support import SCENARIO, install_small_world, write_small

BUNDLED = Path(__file__).resolve().parent.parent / "scenarios" / "axios-2026-03-drill.yaml"


@pytest.fixture(autouse=True)
def small_world() -> None:
    install_small_world()


def where(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of `needle` in `text`."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write_small(tmp_path, text)
    with pytest.raises(ScenarioInvalid) as caught:
        load_scenario(path, display="scenario.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_bundled_scenario_is_valid_with_the_real_world() -> None:
    loaded = load_scenario(BUNDLED)
    s = loaded.scenario
    assert loaded.playbook.playbook.id == s.playbook == "axios-2026-03"
    assert len(s.variants) >= 3 and len(s.injects) >= 6 and len(s.expectations) >= 8
    assert {v.id for v in s.variants} == {
        "laptop-postinstall",
        "laptop-ignore-scripts",
        "ci-runner",
    }
    assert any(i.at is not None for i in s.injects) and any(i.when for i in s.injects)
    assert any(e.validation == "manual" for e in s.expectations)
    assert any(e.must for e in s.expectations)
    assert set(s.phases) == {"detect", "contain", "eradicate", "rotate", "communicate"}
    assert "axios-2026-03-drill" in bundled_scenarios()


def test_the_small_scenario_is_valid(tmp_path: Path) -> None:
    loaded = load_scenario(write_small(tmp_path))
    assert loaded.scenario.inject("dns-log").at == 720
    script = loaded.scenario.script("ci")
    assert script.steps["rotate"].answer == "skip" and script.step_minutes == 240
    assert script.steps["review"].checklist == {"ci": "done", "dns": "done"}  # from the base


def test_an_inject_naming_an_unknown_step(tmp_path: Path) -> None:
    text = SCENARIO.replace("- not: {step: rotate}", "- not: {step: rotaet}")
    line, col = where(text, "rotaet")
    assert problems_of(tmp_path, text) == [
        f"scenario.yaml:{line}:{col}: injects[2].when.all[1].not.step: playbook 'drill-kinds' "
        "has no step 'rotaet' (did you mean 'rotate'?)"
    ]


def test_an_expectation_naming_an_unknown_event(tmp_path: Path) -> None:
    text = SCENARIO.replace(
        "when: {step: rotate}}", "when: {event: inject_fird, where: {inject: dns-log}}}"
    )
    line, col = where(text, "inject_fird")
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(
        f"scenario.yaml:{line}:{col}: expectations[2].when.event: unknown event 'inject_fird' "
        "(did you mean 'inject_fired'?)"
    )


def test_unknown_injects_checklist_items_roles_and_options(tmp_path: Path) -> None:
    text = (
        SCENARIO.replace("when: {decision: ci-alert}", "when: {inject: ci-alrt}")
        .replace("item: dns}", "item: dsn}")
        .replace("to: [oncall]", "to: [on-call]")
        .replace("{decision: stop all,", "{decision: stop everything,")
    )
    found = problems_of(tmp_path, text)
    expected = [
        (
            where(text, "on-call]"),
            "injects[0].to[0]: unknown role 'on-call' (did you mean 'oncall'?); known: oncall, ic",
        ),
        (
            where(text, "dsn"),
            "expectations[3].when.checklist.item: unknown checklist item of "
            "'review' 'dsn' (did you mean 'dns'?); known: ci, dns",
        ),
        (
            where(text, "ci-alrt"),
            "expectations[4].when.inject: unknown inject 'ci-alrt' "
            "(did you mean 'ci-alert'?); known: ci-alert, dns-log, token-reminder",
        ),
        (
            where(text, "stop everything"),
            "auto.decisions.ci-alert.decision: not one of the "
            "inject's options ('stop all', 'stop affected', 'keep running')",
        ),
    ]
    assert found == [f"scenario.yaml:{ln}:{col}: {msg}" for (ln, col), msg in expected]


def test_shape_problems_point_at_the_key_or_value(tmp_path: Path) -> None:
    text = (
        SCENARIO.replace("  - id: dns-log\n    title:", "  - id: dns-log\n    titel:")
        .replace("at: 12m", "at: twelve minutes")
        .replace("score: 10, deadline: 20m", "score: ten, deadline: 20m")
    )
    found = problems_of(tmp_path, text)
    assert (
        f"scenario.yaml:{':'.join(map(str, where(text, 'titel')))}: injects[1].titel: "
        "unknown key 'titel' (did you mean 'title'?)" in found
    )
    at = where(text, "twelve minutes")
    assert (
        f"scenario.yaml:{at[0]}:{at[1]}: injects[1].at: expected a duration like 15m, +1h30m or "
        "90s (or minutes), got 'twelve minutes'"
    ) in found
    score = where(text, "ten, deadline")
    assert any(
        p.startswith(f"scenario.yaml:{score[0]}:{score[1]}: expectations[1].score:") for p in found
    )


def test_a_condition_with_two_heads(tmp_path: Path) -> None:
    text = SCENARIO.replace("when: {step: wipe}}", "when: {step: wipe, inject: dns-log}}")
    [problem] = problems_of(tmp_path, text)
    line, col = where(text, "{step: wipe, inject")
    assert problem.startswith(f"scenario.yaml:{line}:{col}: expectations[1].when: a condition")
    assert "this one has step and inject (combine them with all: or any:)" in problem


def test_the_world_plugin_problems_are_placed_in_the_file(tmp_path: Path) -> None:
    text = SCENARIO.replace("world: {loader_ran: true}", "world: {loader_ran: maybe}").replace(
        "world: {kind: test-host, project: app}", "world: {kind: test-host, projekt: app}"
    )
    found = problems_of(tmp_path, text)
    projekt, maybe = where(text, "projekt"), where(text, "maybe")
    assert found == [
        f"scenario.yaml:{projekt[0]}:{projekt[1]}: world.projekt: unknown key 'projekt' of a "
        "test-host world",
        f"scenario.yaml:{maybe[0]}:{maybe[1]}: variants[0].world.loader_ran: expected true or "
        "false",
    ]


def test_the_real_world_plugin_problems_are_placed_too(tmp_path: Path) -> None:
    text = BUNDLED.read_text().replace("  os: linux", "  os: windows")
    (tmp_path / "drill.yaml").write_text(text)
    with pytest.raises(ScenarioInvalid) as caught:
        load_scenario(tmp_path / "drill.yaml", display="drill.yaml")
    line, col = where(text, "windows")
    assert any(
        str(p).startswith(f"drill.yaml:{line}:{col}: world.os:") for p in caught.value.problems
    )


def test_unknown_world_kind_missing_playbook_and_duplicates(tmp_path: Path) -> None:
    text = (
        SCENARIO.replace("kind: test-host", "kind: moon-base")
        .replace("playbook: playbook.yaml", "playbook: nowhere.yaml")
        .replace("- id: dns-log", "- id: ci-alert")
    )
    found = problems_of(tmp_path, text)
    line, col = where(text, "nowhere.yaml")
    assert (
        f"scenario.yaml:{line}:{col}: playbook: no playbook file 'nowhere.yaml' (looked beside "
        f"the scenario, in {tmp_path})" in found
    )
    dup = where(text, "ci-alert", 2)
    assert (
        f"scenario.yaml:{dup[0]}:{dup[1]}: injects[1].id: duplicate id 'ci-alert' (first used "
        "by injects[0])" in found
    )
    kind = where(text, "moon-base")
    assert any(
        p.startswith(
            f"scenario.yaml:{kind[0]}:{kind[1]}: world.kind: unknown world kind 'moon-base'"
        )
        for p in found
    )


def test_yaml_errors_and_aliases(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "id: x\ntitle: 'open\n") == [
        "scenario.yaml:2:8: YAML syntax error: quoted text is never closed (no closing quote "
        "after this one)"
    ]
    text = SCENARIO.replace("audience: developers", "audience: &r developers").replace(
        "operator: drill-bot", "operator: *r"
    )
    [problem] = problems_of(tmp_path, text)
    assert "YAML alias '*r' is not allowed" in problem


def test_validate_takes_scenarios_and_playbooks(tmp_path: Path, run_cli) -> None:
    ok, lines = validate_any(str(BUNDLED))
    assert ok and "scenario axios-2026-03-drill v1 on axios-2026-03: 3 variants" in lines[0]
    ok, lines = validate_any("axios-2026-03")
    assert ok and lines == ["axios-2026-03: ok (axios-2026-03 v1, 15 steps)"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(BUNDLED.read_text().replace("step: check-host", "step: check-hots"))
    result = run_cli("exercise", "validate", BUNDLED, "axios-2026-03-drill", bad)
    assert result.returncode == 1
    assert result.stdout.count(": ok (scenario axios-2026-03-drill") == 2
    line, col = where(bad.read_text(), "check-hots")
    assert (
        f"bad.yaml:{line}:{col}: injects[3].when.step: playbook 'axios-2026-03' has no step "
        "'check-hots' (did you mean 'check-host'?)" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_schema_describes_the_bundled_scenario(run_cli) -> None:
    result = run_cli("exercise", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)  # only the real world is installed in that process
    assert schema["properties"]["world"]["properties"]["kind"] == {"const": "npm-host"}
    assert "profile" in schema["properties"]["world"]["properties"]  # the world plugin's keys
    # with two world kinds (the test's own here), `world` is one of them
    both = scenario_schema()["properties"]["world"]["anyOf"]
    assert sorted(w["properties"]["kind"]["const"] for w in both) == ["npm-host", "test-host"]
    jsonschema.validate(yaml.safe_load(BUNDLED.read_text()), schema)
    broken = yaml.safe_load(BUNDLED.read_text())
    broken["injects"][0]["atx"] = "5m"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
