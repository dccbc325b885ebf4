"""CACAO 2.0: the playbook export and the execution-status records, validated against the
published JSON Schemas (vendored under tests/schemas/cacao/, see its README) with `jsonschema`."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from runbook.playbook import load_playbook
from runbook.record.cacao import (
    JOURNAL_EXT,
    STEP_EXT,
    condition_text,
    export_playbook,
    playbook_ref,
    status_records,
    step_ref,
)
from runbook.record.load import load
from runbook.record.merge import build
from tests.conftest import BUNDLED
from tests.record_support import ALLOWED, FIXTURES, JOURNALS, call
from tests.support.kinds import register

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "cacao"
CACAO = SCHEMAS / "schemas"
STATUS = SCHEMAS / "workflow-status"
INTEGER = "https://raw.githubusercontent.com/cyentific-rni/workflow-status/main/schema/integer"
README_STATUSES = [
    "successfully_executed",
    "failed",
    "ongoing",
    "await_user_input",
    "server_side_error",
    "client_side_error",
    "timeout_error",
    "exception_condition_error",
]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def cacao_registry() -> Registry:
    resources = []
    for path in sorted(CACAO.rglob("*.json")):
        schema = _json(path)
        resources.append((schema["$id"], Resource(schema, specification=DRAFT7)))
    return Registry().with_resources(resources)


def cacao_errors(document: dict[str, Any], schema_file: str = "playbook.json") -> list[str]:
    validator = Draft7Validator(_json(CACAO / schema_file), registry=cacao_registry())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def declared(schema_file: str) -> set[str]:
    """Every property name a schema declares, through allOf and $ref (the check draft-07's
    ignored `unevaluatedProperties` was meant to make)."""
    names: set[str] = set()
    seen: set[Path] = set()

    def walk(path: Path) -> None:
        if path in seen:
            return
        seen.add(path)
        schema = _json(path)
        parts = [schema, *schema.get("allOf", [])]
        for part in parts:
            names.update(part.get("properties", {}))
            ref = part.get("$ref")
            if isinstance(ref, str) and ref.endswith(".json"):
                walk((path.parent / ref).resolve())

    walk((CACAO / schema_file).resolve())
    return names


def undeclared(document: dict[str, Any]) -> list[str]:
    """Property names the playbook uses that its schemas do not declare."""
    problems = []

    def extra(where: str, obj: dict[str, Any], schema_file: str) -> None:
        problems.extend(f"{where}.{k}" for k in sorted(set(obj) - declared(schema_file)))

    extra("playbook", document, "playbook.json")
    for key, step in document["workflow"].items():
        extra(key, step, f"workflows/{step['type']}.json")
        for n, command in enumerate(step.get("commands", [])):
            extra(f"{key}.commands[{n}]", command, f"commands/{command['type']}.json")
    for key, agent in document.get("agent_definitions", {}).items():
        extra(key, agent, f"agent-target/{agent['type']}.json")
    for key, definition in document.get("extension_definitions", {}).items():
        extra(key, definition, "extension-definition/extension-definition.json")
    return problems


@pytest.fixture(scope="module")
def bundled() -> dict[str, Any]:
    return export_playbook(load_playbook(BUNDLED), when=1774915200)


def test_the_bundled_playbook_is_a_valid_cacao_playbook(bundled: dict[str, Any]) -> None:
    assert cacao_errors(bundled) == []
    assert undeclared(bundled) == []
    assert bundled["spec_version"] == "cacao-2.0"
    assert bundled["playbook_types"] == ["remediation"]
    assert bundled["id"] == playbook_ref("axios-2026-03")


def test_the_fixture_playbook_is_valid_too() -> None:
    register()
    document = export_playbook(load_playbook(FIXTURES / "playbook.yaml"), when=0)
    assert cacao_errors(document) == [] and undeclared(document) == []


def test_the_validation_can_fail(bundled: dict[str, Any]) -> None:
    broken = copy.deepcopy(bundled)
    first = next(k for k in broken["workflow"] if k.startswith("action--"))
    del broken["workflow"][first]["agent"]
    broken["workflow"][first]["comands"] = []
    broken["playbook_types"] = "remediation"
    errors = cacao_errors(broken)
    assert any("'agent' is a required property" in e for e in errors)
    assert any("is not of type 'array'" in e for e in errors)
    assert undeclared(broken) == [f"{first}.comands"]


def test_the_workflow_follows_the_playbook(bundled: dict[str, Any]) -> None:
    pb = load_playbook(BUNDLED).playbook
    workflow = bundled["workflow"]
    steps = {k: v for k, v in workflow.items() if v["type"] == "action"}
    assert len(steps) == len(pb.steps)
    assert [workflow[bundled["workflow_start"]]["type"]] == ["start"]
    assert sum(1 for v in workflow.values() if v["type"] == "end") == 1
    # walking on_success / on_completion / on_true from the start visits every step in order
    order, node = [], workflow[bundled["workflow_start"]]["on_completion"]
    while workflow[node]["type"] != "end":
        step = workflow[node]
        if step["type"] == "if-condition":
            node = step["on_true"]
            continue
        order.append(step["name"])
        node = step.get("on_success") or step["on_completion"]
    assert order == [s.title for s in pb.steps]
    for spec in pb.steps:
        action = workflow[step_ref(pb.id, spec.id)]
        kinds = {c["type"] for c in action["commands"]}
        if spec.uses == "manual":
            texts = [c["command"] for c in action["commands"] if c["type"] == "manual"]
            items = spec.with_["items"]
            assert texts == [i["text"] if isinstance(i, dict) else i for i in items]
            assert kinds <= {"manual", "bash"}
        else:
            assert kinds == {"bash"}
            assert action["commands"][0]["command"].endswith(f"--from {spec.id}")
        assert action["step_extensions"][STEP_EXT]["uses"] == spec.uses
        if spec.when:
            condition = next(
                v
                for v in workflow.values()
                if v["type"] == "if-condition" and v["on_true"] == step_ref(pb.id, spec.id)
            )
            assert condition["condition"] == " AND ".join(
                f"({condition_text(c)})" for c in spec.when
            )
    # every referenced variable is declared and set by the step it names
    variables = bundled["playbook_variables"]
    for step in steps.values():
        for name in step.get("out_args", []):
            assert name in variables


def test_ids_are_uuid4_for_steps_and_stable(bundled: dict[str, Any]) -> None:
    again = export_playbook(load_playbook(BUNDLED), when=1774915200)
    assert again == bundled
    for key in bundled["workflow"]:
        assert uuid.UUID(key.split("--", 1)[1]).version == 4, key
    assert uuid.UUID(bundled["id"].split("--", 1)[1]).version == 5
    assert len(set(bundled["workflow"])) == len(bundled["workflow"])
    assert JOURNAL_EXT in bundled["extension_definitions"]


def test_conditions() -> None:
    from runbook.models import Condition

    assert (
        condition_text(Condition(step="pin", outcome=["succeeded", "outstanding"]))
        == "__step_pin_outcome__:value IN ('succeeded', 'outstanding')"
    )
    assert condition_text(Condition(step="d", findings="any")) == "__step_d_findings__:value != ''"
    assert (
        condition_text(Condition(step="d", outcome="failed", findings=["compromised", "at-risk"]))
        == "__step_d_outcome__:value = 'failed' AND "
        "__step_d_findings__:value MATCHES '(^|,)(compromised|at\\-risk)(,|$)'"
    )


# -- execution status ---------------------------------------------------------------------------
def status_validator(statuses: list[str] | None = None) -> Draft7Validator:
    schema = _json(STATUS / "execution-status.json")
    if statuses is not None:
        schema["$defs"]["execution-status-enum"]["enum"] = statuses
    resources = [
        (_json(p)["$id"], Resource(_json(p), specification=DRAFT7))
        for p in sorted((STATUS / "cacao-v2.0-csd01").glob("*.json"))
    ]
    # erratum: `duration` is {"$ref": "integer"} upstream; the README means an integer
    resources.append((INTEGER, Resource({"type": "integer"}, specification=DRAFT7)))
    return Draft7Validator(schema, registry=Registry().with_resources(resources))


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return status_records(build(load([str(JOURNALS)], ALLOWED)))


def test_status_records_validate(records: list[dict[str, Any]]) -> None:
    validator = status_validator(README_STATUSES)
    errors = [(r["id"], e.message) for r in records for e in validator.iter_errors(r)]
    assert errors == []
    assert {r["status"] for r in records} >= {"successfully_executed", "failed", "await_user_input"}
    # the published enumeration disagrees with its README and SOARCA on exactly one value
    published = status_validator()
    rejected = {r["status"] for r in records if list(published.iter_errors(r))}
    assert rejected == {"successfully_executed"}


def test_status_records_can_fail_validation(records: list[dict[str, Any]]) -> None:
    validator = status_validator(README_STATUSES)
    bad = dict(records[0], start_time="yesterday", command_b64=[])
    bad.pop("automated_execution")
    messages = " ".join(e.message for e in validator.iter_errors(bad))
    assert "'automated_execution' is a required property" in messages
    assert "does not match" in messages and "should be non-empty" in messages


def test_one_record_per_step_attempt(records: list[dict[str, Any]]) -> None:
    collection = load([str(JOURNALS)], ALLOWED)
    attempts = sum(
        1 for run in collection.runs for e in run.entries if e["event"] == "step_started"
    )
    assert len(records) == attempts
    ana = [
        r
        for r in records
        if r["extensions"][JOURNAL_EXT]["host"] == "laptop-ana"
        and r["extensions"][JOURNAL_EXT]["mode"] == "live"
    ]
    builds = [r for r in ana if r["extensions"][JOURNAL_EXT]["step"] == "build"]
    assert [r["status"] for r in builds] == ["failed", "successfully_executed"]  # resumed
    assert [r["extensions"][JOURNAL_EXT]["operator"] for r in builds] == ["ana", "ben"]
    # live runs first, dry runs apart at the end
    modes = [r["extensions"][JOURNAL_EXT]["mode"] for r in records]
    assert modes == sorted(modes, key=lambda m: m != "live")
    assert all(
        r["status_text"].startswith("dry run: ")
        for r in records
        if r["extensions"][JOURNAL_EXT]["mode"] == "dry-run"
    )


def test_records_point_into_the_export_and_the_chain(records: list[dict[str, Any]]) -> None:
    register()
    playbook = export_playbook(load_playbook(FIXTURES / "playbook.yaml"), when=0)
    collection = load([str(JOURNALS)], ALLOWED)
    by_hash = {e["hash"]: e for run in collection.runs for e in run.entries}
    for record in records:
        assert record["workflow_id"] == playbook["id"]
        assert record["workflow_step"] in playbook["workflow"]
        chain = record["extensions"][JOURNAL_EXT]
        started = by_hash[chain["started"]["hash"]]
        assert (started["event"], started["seq"]) == ("step_started", chain["started"]["seq"])
        assert started["data"]["step"] == chain["step"] and record["start_time"] == started["ts"]
        assert chain["head"] in {run.head for run in collection.runs}
        assert all(base64.b64decode(c) for c in record["command_b64"])
    manual = [r for r in records if not r["automated_execution"]]
    assert manual and all(
        base64.b64decode(c).decode().endswith(("[done]", "[outstanding]", "[declined]"))
        for r in manual
        for c in r["command_b64"]
    )
    signed = [r for r in records if r["extensions"][JOURNAL_EXT]["signed_by"]]
    assert {r["extensions"][JOURNAL_EXT]["signed_by"] for r in signed} == {"ana@example.test"}


def test_export_handler(tmp_path: Path) -> None:
    out = tmp_path / "pb.json"
    result = call("export", "cacao", "axios-2026-03", "-o", out)
    assert result.code == 0, result.err
    assert cacao_errors(json.loads(out.read_text())) == []
    missing = call("export", "cacao", str(tmp_path / "nope.yaml"))
    assert missing.code == 2 and "nope.yaml" in missing.err
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: [\n")
    invalid = call("export", "cacao", str(bad))
    assert invalid.code == 2 and "bad.yaml:" in invalid.err
