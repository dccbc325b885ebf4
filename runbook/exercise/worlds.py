"""Finding the world plugin a scenario names (entry-point group `runbook.worlds`).

The engine never imports `steps/`: a world kind (`npm-host`) is whatever object its entry point
names, with `kind`, `validate`, `schema`, `build` and `from_journal` (see docs/exercise.md).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

GROUP = "runbook.worlds"
_registered: dict[str, Any] = {}
_loaded: dict[str, Any] = {}


class WorldUnavailable(Exception):
    """No usable plugin for a world kind."""


def register_world(kind: str, plugin: Any) -> None:
    """Use `plugin` for `kind` in this process (tests, embedders), before the entry points."""
    _registered[kind] = plugin


def unregister_world(kind: str) -> None:
    _registered.pop(kind, None)


def world_kinds() -> list[str]:
    names = {ep.name for ep in metadata.entry_points(group=GROUP)}
    return sorted(names | set(_registered))


def world_plugin(kind: str) -> Any:
    """The plugin object for `kind`; `WorldUnavailable` says why there is none."""
    if kind in _registered:
        return _registered[kind]
    if kind not in _loaded:
        found = [ep for ep in metadata.entry_points(group=GROUP) if ep.name == kind]
        if not found:
            known = ", ".join(world_kinds()) or "none"
            raise WorldUnavailable(f"unknown world kind {kind!r} (installed: {known})")
        try:
            plugin = found[0].load()
        except Exception as exc:  # a broken plugin must not crash validation
            raise WorldUnavailable(f"world kind {kind!r} failed to load: {exc}") from None
        if plugin is None or not hasattr(plugin, "build"):
            raise WorldUnavailable(f"world kind {kind!r} is not available in this installation")
        _loaded[kind] = plugin
    return _loaded[kind]
