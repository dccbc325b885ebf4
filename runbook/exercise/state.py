"""Where an exercise stands, derived from its journal: the clock, every inject (pending,
requested, fired, skipped), every expectation, and the records the team and the facilitator
added. The players' app, the facilitator console, the drill master and the report all read it
from here, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbook.exercise.clock import Clock
from runbook.exercise.facts import Facts
from runbook.exercise.model import Expectation, Inject, Scenario

RECORDS = ("participant", "decision", "discussion", "observation", "rating", "survey", "note")


@dataclass
class InjectView:
    inject: Inject
    state: str = "pending"  # pending | requested | fired | skipped
    fired_at: float | None = None
    by: str = ""
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    requested_by: str = ""

    @property
    def id(self) -> str:
        return self.inject.id

    @property
    def open(self) -> bool:
        return self.state in ("pending", "requested")


@dataclass
class ExpectationView:
    expectation: Expectation
    status: str = "pending"  # pending | met | failed | rejected
    by: str = ""
    comment: str = ""
    at: float | None = None

    @property
    def id(self) -> str:
        return self.expectation.id

    @property
    def met(self) -> bool:
        return self.status == "met"


@dataclass
class ExerciseView:
    """The exercise as its journal tells it."""

    scenario: Scenario
    facts: Facts
    started: dict[str, Any] | None = None
    injects: list[InjectView] = field(default_factory=list)
    expectations: list[ExpectationView] = field(default_factory=list)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    run_finished: dict[str, Any] | None = None
    exercise_finished: dict[str, Any] | None = None

    @property
    def clock(self) -> Clock:
        return self.facts.clock

    @property
    def finished(self) -> bool:
        return self.exercise_finished is not None or self.run_finished is not None

    def inject(self, inject_id: str) -> InjectView:
        return next(i for i in self.injects if i.id == inject_id)

    def expectation(self, expectation_id: str) -> ExpectationView:
        return next(e for e in self.expectations if e.id == expectation_id)

    def score(self) -> tuple[int, int]:
        """(points met, points possible)."""
        total = sum(e.expectation.score for e in self.expectations)
        got = sum(e.expectation.score for e in self.expectations if e.met)
        return got, total

    def must_met(self) -> bool:
        return all(e.met for e in self.expectations if e.expectation.must)

    def next_timed(self) -> InjectView | None:
        pending = [i for i in self.injects if i.open and i.inject.at is not None]
        return min(pending, key=lambda i: i.inject.at or 0.0, default=None)


def view_of(scenario: Scenario, facts: Facts) -> ExerciseView:
    """The exercise view of the entries `facts` was fed."""
    view = ExerciseView(scenario, facts)
    view.injects = [InjectView(i) for i in scenario.injects]
    view.expectations = [ExpectationView(e) for e in scenario.expectations]
    injects = {i.id: i for i in view.injects}
    expectations = {e.id: e for e in view.expectations}
    view.records = {name: [] for name in RECORDS}
    for entry, at in zip(facts.entries, facts.times, strict=True):
        event, data = entry.get("event"), entry.get("data") or {}
        if event == "exercise_started" and view.started is None:
            view.started = data
        elif event == "run_finished":
            view.run_finished = data
        elif event == "run_resumed":
            view.run_finished = None
        elif event == "exercise_finished":
            view.exercise_finished = data
        elif event == "clock" and data.get("action") == "fire_now":
            target = injects.get(str(data.get("inject")))
            if target is not None and target.state == "pending":
                target.state, target.requested_by = "requested", str(data.get("by", ""))
        elif event == "inject_fired":
            target = injects.get(str(data.get("inject")))
            if target is not None and target.open:
                target.state, target.fired_at = "fired", at
                target.by = str(data.get("by", ""))
                target.evidence = [str(p) for p in data.get("evidence") or []]
        elif event == "inject_skipped":
            target = injects.get(str(data.get("inject")))
            if target is not None and target.open:
                target.state, target.by = "skipped", str(data.get("by", ""))
                target.reason = str(data.get("reason", ""))
        elif event == "expectation":
            found = expectations.get(str(data.get("id")))
            if found is not None and data.get("status") in ("met", "failed", "rejected", "pending"):
                found.status = str(data["status"])
                found.by = str(data.get("by", ""))
                found.comment = str(data.get("comment", ""))
                time = data.get("exercise_time")
                found.at = float(time) if isinstance(time, int | float) else at
        elif event in view.records:
            view.records[str(event)].append({**data, "_at": at, "_ts": entry.get("ts", "")})
    return view


def exercise_view(
    scenario: Scenario, entries: list[dict[str, Any]], steps: list[str]
) -> ExerciseView:
    """Replay `entries` from scratch (for the facilitator and the report); `steps` are the
    playbook's step ids."""
    conds = [i.when for i in scenario.injects] + [e.when for e in scenario.expectations]
    facts = Facts(steps, conds)
    for entry in entries:
        facts.feed(entry)
    return view_of(scenario, facts)
