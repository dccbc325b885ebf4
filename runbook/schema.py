"""JSON Schema of the playbook format, with each step kind's `with:` schema attached by `uses:`."""

from __future__ import annotations

from typing import Any

from runbook.models import Playbook
from runbook.registry import Registry, default_registry


def playbook_schema(registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or default_registry()
    schema = Playbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "runbook playbook"
    step = schema["$defs"]["StepSpec"]
    step["properties"]["uses"]["enum"] = registry.names()
    rules = []
    for name in registry.names():
        params = registry.get(name).Params.model_json_schema(by_alias=True)
        for def_name, definition in params.pop("$defs", {}).items():
            schema["$defs"].setdefault(def_name, definition)
        rules.append(
            {
                "if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
                "then": {"properties": {"with": params}},
            }
        )
    step["allOf"] = rules
    return schema
