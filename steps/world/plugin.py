"""The `npm-host` world plugin (entry point `runbook.worlds`: `steps.world.plugin:plugin`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runbook.yamlsource import format_loc
from steps.world import model
from steps.world.build import BuiltWorld, WorldError, build_world
from steps.world.from_journal import world_from_journal

Loc = tuple[str | int, ...]


class NpmHostPlugin:
    """A developer laptop or CI runner that installed the bad axios (or not), with its
    credentials, caches, git history and host artifacts; AWS (moto) and an npm registry as
    loopback stand-ins."""

    kind = "npm-host"
    profiles = tuple(model.PROFILES)

    def validate(
        self, spec: dict[str, Any], variants: dict[str, dict[str, Any]]
    ) -> list[tuple[Loc, str]]:
        """Problems as (path, message): paths start with `("world", ...)` for the scenario's
        world mapping and `("variants", NAME, ...)` for a variant's overrides."""
        if not isinstance(spec, Mapping):
            return [(("world",), "must be a mapping of the world's settings")]
        problems: list[tuple[Loc, str]] = []
        _, found = model.parse(spec)
        problems += [(("world", *loc), message) for loc, message in _tidy(found)]
        if not isinstance(variants, Mapping):
            return [*problems, (("variants",), "must be a mapping of variant names")]
        for name, overrides in variants.items():
            if not isinstance(overrides, Mapping):
                problems.append((("variants", name), "must be a mapping of world overrides"))
                continue
            _, found = model.parse(spec, str(name), overrides)
            for loc, message in _tidy(found):
                if loc and loc[0] in overrides:
                    problems.append((("variants", name, *loc), message))
                elif (("world", *loc), message) not in problems:
                    where = format_loc(("world", *loc))
                    problems.append((("variants", name), f"with this variant, {where}: {message}"))
        return problems

    def schema(self) -> dict[str, Any]:
        return model.schema()

    def build(
        self,
        spec: dict[str, Any],
        variant: str,
        overrides: dict[str, Any],
        seed: int,
        sandbox: Path,
    ) -> BuiltWorld:
        world, problems = model.parse(spec, variant, overrides or {})
        if world is None:
            shown = "; ".join(f"{format_loc(loc) or 'world'}: {msg}" for loc, msg in problems)
            raise WorldError(f"the world of variant {variant!r} is not valid: {shown}")
        return build_world(world, variant, int(seed), Path(sandbox))

    def from_journal(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return world_from_journal(entries)


def _tidy(problems: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    """An unknown profile leaves the world without defaults: report the profile alone."""
    if any(loc == ("profile",) for loc, _ in problems):
        return [(loc, m) for loc, m in problems if not (m == "required" and len(loc) == 1)]
    return problems


plugin = NpmHostPlugin()
