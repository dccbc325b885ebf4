"""Loading and validating scenario files, with every problem pointing at file:line:col.

A scenario is checked in three passes: its shape (the models), its references (steps, checklist
items, injects, roles and phases it names must exist in the scenario or in its playbook), and its
world (the world plugin's own validation, mapped back onto the file).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runbook.bundled import bundled_files, resolve_ref
from runbook.exercise.model import PHASES, Cond, Scenario
from runbook.exercise.worlds import WorldUnavailable, world_plugin
from runbook.playbook import (
    LoadedPlaybook,
    PlaybookInvalid,
    _problems_from_validation,
    load_playbook,
)
from runbook.registry import Registry
from runbook.yamlsource import (
    Loc,
    SourceDocument,
    SourceProblem,
    YamlSyntaxError,
    format_loc,
    load_yaml,
    read_source,
)


class ScenarioInvalid(Exception):
    """A scenario failed validation; `problems` are ordered by file and position."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.path, p.position.line, p.position.col, p.message)
        )
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A valid scenario, where it came from, and the playbook it drills."""

    scenario: Scenario
    path: Path
    sha256: str
    playbook: LoadedPlaybook
    playbook_ref: str


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenarios by id (the file stem)."""
    return bundled_files("scenarios")


def resolve_scenario(ref: str) -> Path:
    """A scenario reference is a path to a file or the id of a bundled scenario."""
    return resolve_ref(ref, "scenarios")


def looks_like_scenario(data: Any) -> bool:
    """A YAML document is a scenario (not a playbook) when it names a playbook and variants."""
    return isinstance(data, dict) and "playbook" in data and "steps" not in data


# -- conditions -----------------------------------------------------------------------------------
def iter_conditions(cond: Cond | None, loc: Loc) -> Iterator[tuple[Cond, Loc]]:
    """Every condition in a tree with its place in the document."""
    if cond is None:
        return
    yield cond, loc
    for index, child in enumerate(cond.all_ or []):
        yield from iter_conditions(child, (*loc, "all", index))
    for index, child in enumerate(cond.any_ or []):
        yield from iter_conditions(child, (*loc, "any", index))
    yield from iter_conditions(cond.not_, (*loc, "not"))
    yield from iter_conditions(cond.since, (*loc, "since"))


class _Checker:
    """Collects reference problems of a shape-valid scenario."""

    def __init__(self, doc: SourceDocument, scenario: Scenario, playbook: LoadedPlaybook | None):
        self.doc = doc
        self.s = scenario
        self.playbook = playbook
        self.problems: list[SourceProblem] = []
        self.steps = [st.id for st in playbook.playbook.steps] if playbook else []

    def add(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.problems.append(
            SourceProblem(self.doc.path, self.doc.position(loc, key=key), format_loc(loc), message)
        )

    def _unknown(self, what: str, name: str, known: list[str], loc: Loc) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        listed = f"; known: {', '.join(known)}" if known else f"; the scenario lists no {what}s"
        self.add(loc, f"unknown {what} '{name}'{hint}{listed}")

    def step(self, name: str, loc: Loc) -> None:
        if self.playbook and name not in self.steps:
            pid = self.playbook.playbook.id
            close = difflib.get_close_matches(name, self.steps, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.add(loc, f"playbook '{pid}' has no step '{name}'{hint}")

    def checklist_items(self, step_id: str) -> list[str] | None:
        """The ids of a step's checklist items, when its kind has a checklist."""
        if not self.playbook or step_id not in self.playbook.params:
            return None
        checklist = getattr(self.playbook.params[step_id], "checklist", None)
        if not callable(checklist):
            return None
        try:
            return [str(item[0]) for item in checklist()]
        except Exception:  # a kind's own helper: never let it break validation
            return None

    def duplicates(self, field: str, ids: list[str]) -> None:
        seen: dict[str, int] = {}
        for index, ident in enumerate(ids):
            if ident in seen:
                self.add(
                    (field, index, "id"),
                    f"duplicate id '{ident}' (first used by {field}[{seen[ident]}])",
                )
            seen.setdefault(ident, index)

    def role(self, name: str | None, loc: Loc) -> None:
        roles = [r.id for r in self.s.roles]
        if name is not None and name not in roles:
            self._unknown("role", name, roles, loc)

    def condition(self, cond: Cond | None, loc: Loc) -> None:
        injects = [i.id for i in self.s.injects]
        for c, here in iter_conditions(cond, loc):
            if c.step is not None:
                self.step(c.step, (*here, "step"))
            if c.finding is not None and c.finding.step is not None:
                self.step(c.finding.step, (*here, "finding", "step"))
            if c.inject is not None and c.inject not in injects:
                self._unknown("inject", c.inject, injects, (*here, "inject"))
            if c.decision is not None:
                deciding = [i.id for i in self.s.injects if i.decision is not None]
                if c.decision not in deciding:
                    self._unknown(
                        "inject with a decision", c.decision, deciding, (*here, "decision")
                    )
            if c.checklist is not None:
                self.step(c.checklist.step, (*here, "checklist", "step"))
                items = self.checklist_items(c.checklist.step)
                if items is not None and c.checklist.item not in items:
                    self._unknown(
                        f"checklist item of '{c.checklist.step}'",
                        c.checklist.item,
                        items,
                        (*here, "checklist", "item"),
                    )

    def check(self) -> None:
        s = self.s
        for field in ("roles", "objectives", "variants", "injects", "expectations", "survey"):
            self.duplicates(field, [item.id for item in getattr(s, field)])
        placed: dict[str, str] = {}
        for phase, spec in s.phases.items():
            for index, step_id in enumerate(spec.steps):
                here = ("phases", phase, "steps", index)
                self.step(step_id, here)
                if step_id in placed:
                    self.add(here, f"step '{step_id}' is already in phase '{placed[step_id]}'")
                placed.setdefault(step_id, phase)
        for index, inject in enumerate(s.injects):
            here = ("injects", index)
            self.condition(inject.when, (*here, "when"))
            for r_index, role in enumerate(inject.to):
                self.role(role, (*here, "to", r_index))
            if inject.decision is not None:
                self.role(inject.decision.owner, (*here, "decision", "owner"))
        for index, expectation in enumerate(s.expectations):
            here = ("expectations", index)
            self.condition(expectation.when, (*here, "when"))
            self.role(expectation.owner, (*here, "owner"))
        for name in ("detection", "containment", "rotation"):
            self.condition(getattr(s.metrics, name), ("metrics", name))
        self.script(s.auto, ("auto",))
        for index, variant in enumerate(s.variants):
            if variant.auto is not None:
                self.script(variant.auto, ("variants", index, "auto"))

    def script(self, script: Any, loc: Loc) -> None:
        self.role(script.role, (*loc, "role"))
        for step_id, answer in script.steps.items():
            self.step(step_id, (*loc, "steps", step_id))
            items = self.checklist_items(step_id)
            for item in answer.checklist:
                if items is not None and item != "default" and item not in items:
                    self._unknown(
                        f"checklist item of '{step_id}'",
                        item,
                        items,
                        (*loc, "steps", step_id, "checklist", item),
                    )
        for inject_id, decision in script.decisions.items():
            here = (*loc, "decisions", inject_id)
            try:
                spec = self.s.inject(inject_id).decision
            except KeyError:
                self._unknown("inject", inject_id, [i.id for i in self.s.injects], here)
                continue
            if spec is None:
                self.add(here, f"inject '{inject_id}' asks for no decision")
            elif decision.decision not in spec.options:
                options = ", ".join(repr(o) for o in spec.options)
                self.add((*here, "decision"), f"not one of the inject's options ({options})")
        for phase in script.discussion:
            if phase != "default" and phase not in PHASES:
                self._unknown("phase", phase, [*PHASES, "default"], (*loc, "discussion", phase))
        survey = [q.id for q in self.s.survey]
        for question in script.survey:
            if question not in survey:
                self._unknown("survey question", question, survey, (*loc, "survey", question))
        manual = [e.id for e in self.s.expectations if e.validation == "manual"]
        for expectation in script.facilitator:
            if expectation not in manual:
                self._unknown(
                    "manual expectation", expectation, manual, (*loc, "facilitator", expectation)
                )


# -- the world ------------------------------------------------------------------------------------
def _world_problems(doc: SourceDocument, scenario: Scenario, plugin: Any) -> list[SourceProblem]:
    """The plugin's problems with `world` and the variants' `world` overrides, placed in the file.

    A problem's path starts with `world` (inside the scenario's world mapping) or with
    `variants, NAME` (inside that variant's `world` overrides); a bare path is inside `world`."""
    spec = {k: v for k, v in scenario.world.items() if k != "kind"}
    variants = {v.id: dict(v.world) for v in scenario.variants}
    index = {v.id: n for n, v in enumerate(scenario.variants)}
    try:
        found = plugin.validate(spec, variants)
    except Exception as exc:  # a plugin bug is a problem to show, never a traceback
        found = [((), f"the world plugin failed to validate: {type(exc).__name__}: {exc}")]
    problems = []
    for path, message in found or []:
        path = tuple(path)
        if path and path[0] == "world":
            loc: Loc = path
        elif len(path) >= 2 and path[0] == "variants" and path[1] in index:
            loc = ("variants", index[str(path[1])], "world", *path[2:])
        else:
            loc = ("world", *path)
        # an unknown key is shown at the key, anything else at the value
        key = str(message).lower().startswith("unknown key")
        problems.append(
            SourceProblem(doc.path, doc.position(loc, key=key), format_loc(loc), str(message))
        )
    return problems


# -- loading --------------------------------------------------------------------------------------
def _playbook_path(ref: str, scenario_path: Path) -> Path:
    from runbook.bundled import resolve_playbook

    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        relative = scenario_path.parent / ref
        for candidate in (relative, Path(ref)):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"no playbook file '{ref}' (looked beside the scenario, in {scenario_path.parent})"
        )
    return resolve_playbook(ref)


def validate_scenario_document(
    doc: SourceDocument,
    path: Path,
    sha256: str,
    registry: Registry | None = None,
    *,
    check_world: bool = True,
) -> LoadedScenario:
    """Validate parsed YAML as a scenario, collecting every problem found."""
    problems: list[SourceProblem] = []
    for loc, pos in doc.duplicates:
        first = doc.first_keys.get(loc)
        also = f" (already on line {first.line})" if first else ""
        problems.append(
            SourceProblem(doc.path, pos, format_loc(loc), f"duplicate key '{loc[-1]}'{also}")
        )
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else type(doc.data).__name__
        message = f"a scenario is a mapping (id, title, playbook, variants, ...), got {got}"
        problems.append(SourceProblem(doc.path, doc.position(()), "", message))
        raise ScenarioInvalid(problems)
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as exc:
        problems += _problems_from_validation(doc, exc, (), Scenario)
        raise ScenarioInvalid(problems) from None

    playbook: LoadedPlaybook | None = None
    try:
        playbook_path = _playbook_path(scenario.playbook, path)
        playbook = load_playbook(playbook_path, registry)
    except FileNotFoundError as exc:
        problems.append(SourceProblem(doc.path, doc.position(("playbook",)), "playbook", str(exc)))
    except PlaybookInvalid as exc:
        problems.append(
            SourceProblem(
                doc.path,
                doc.position(("playbook",)),
                "playbook",
                f"the playbook '{scenario.playbook}' is invalid ({len(exc.problems)} problem(s))",
            )
        )
        problems += exc.problems
    checker = _Checker(doc, scenario, playbook)
    checker.check()
    problems += checker.problems

    if check_world:
        try:
            plugin = world_plugin(scenario.world_kind)
        except WorldUnavailable as exc:
            loc: Loc = ("world", "kind") if "kind" in scenario.world else ("world",)
            problems.append(SourceProblem(doc.path, doc.position(loc), format_loc(loc), str(exc)))
        else:
            problems += _world_problems(doc, scenario, plugin)
    if problems:
        raise ScenarioInvalid(problems)
    assert playbook is not None
    return LoadedScenario(scenario, path, sha256, playbook, scenario.playbook)


def load_scenario(
    path: Path,
    registry: Registry | None = None,
    display: str | None = None,
    *,
    check_world: bool = True,
) -> LoadedScenario:
    """Read, parse and validate a scenario file (and its playbook). Raises `ScenarioInvalid`."""
    shown = display or str(path)
    try:
        raw, text = read_source(path, shown, what="scenario")
        doc = load_yaml(text, shown)
    except YamlSyntaxError as exc:
        raise ScenarioInvalid([exc.problem]) from None
    return validate_scenario_document(
        doc, Path(path), hashlib.sha256(raw).hexdigest(), registry, check_world=check_world
    )
