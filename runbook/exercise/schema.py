"""JSON Schema of the scenario format, with each installed world's schema for `world:`."""

from __future__ import annotations

from typing import Any

from runbook.exercise.model import Scenario
from runbook.exercise.worlds import WorldUnavailable, world_kinds, world_plugin


def _world_schemas(kind: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A world kind's schemas of the `world` mapping and of a variant's overrides. A plugin's
    `schema()` is either one schema for both, or `{"world": ..., "variant": ...}`."""
    try:
        schema = dict(world_plugin(kind).schema())
    except (WorldUnavailable, Exception):  # a missing or broken world: leave `world` open
        return None
    world = dict(schema.get("world", schema))
    variant = dict(schema.get("variant", {**world, "required": []}))
    for part in (world, variant):
        part.pop("$schema", None)
    properties = dict(world.get("properties", {}))
    properties["kind"] = {"const": kind}
    world["properties"] = properties
    return world, variant


def scenario_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "runbook scenario"
    worlds = [w for w in (_world_schemas(kind) for kind in world_kinds()) if w is not None]
    if len(worlds) == 1:
        schema["properties"]["world"] = worlds[0][0]
        schema["$defs"]["Variant"]["properties"]["world"] = worlds[0][1]
    elif worlds:
        schema["properties"]["world"] = {"anyOf": [w for w, _ in worlds]}
        schema["$defs"]["Variant"]["properties"]["world"] = {"anyOf": [v for _, v in worlds]}
    return schema
