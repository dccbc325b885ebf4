"""Step kinds by their `uses:` name, found through the `runbook.steps` entry-point group."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cache
from importlib import metadata

from runbook.step import StepKind

ENTRY_POINT_GROUP = "runbook.steps"


class UnknownStepKind(KeyError):
    """No step kind has this name."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.suggestion = next(iter(difflib.get_close_matches(name, list(known), n=1)), None)
        super().__init__(name)

    def __str__(self) -> str:
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        return f"unknown step kind '{self.name}'{hint}"


class Registry:
    """Maps `uses:` names to step kind classes, importing each only when it is first needed."""

    def __init__(self, targets: dict[str, str | type[StepKind]]) -> None:
        self._targets = dict(targets)
        self._loaded: dict[str, type[StepKind]] = {}

    @classmethod
    def from_entry_points(cls) -> Registry:
        targets: dict[str, str | type[StepKind]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            targets.setdefault(ep.name, ep.value)
        return cls(targets)

    def names(self) -> list[str]:
        return sorted(self._targets)

    def get(self, name: str) -> type[StepKind]:
        if name in self._loaded:
            return self._loaded[name]
        target = self._targets.get(name)
        if target is None:
            raise UnknownStepKind(name, self._targets)
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            module = __import__(module_name, fromlist=[attr])
            target = getattr(module, attr)
        self._loaded[name] = target
        return target

    def register(self, kind: type[StepKind]) -> type[StepKind]:
        """Add a step kind by its `name` (usable as a class decorator by embedders and plugins)."""
        self._targets[kind.name] = kind
        self._loaded.pop(kind.name, None)
        return kind


@cache
def default_registry() -> Registry:
    return Registry.from_entry_points()
