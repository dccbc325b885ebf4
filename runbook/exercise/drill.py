"""The drill master: the one process that fires injects and judges automatic expectations.

It reads every new journal entry (its own process's and, through the shared journal, the
facilitator's), keeps the facts, and on each entry and each clock tick:
- fires the injects the facilitator asked for (`clock fire_now`), even while paused;
- while the clock runs, fires timed injects that are due and conditional ones whose condition
  holds, writing their evidence into the world first;
- marks automatic expectations met (when their condition holds by the deadline) or failed (when
  the deadline passes), and journals each verdict.
Whichever face plays (the players' app, or `--auto`), the rules are these.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from runbook.exercise.facts import Facts
from runbook.exercise.model import Inject, Scenario, format_duration
from runbook.exercise.state import ExerciseView, view_of
from runbook.journal import Journal
from runbook.models import StepSpec

Clockwork = Callable[[], float]


class Drill:
    """Fires injects and judges expectations for one exercise run."""

    def __init__(
        self,
        scenario: Scenario,
        steps: list[StepSpec],
        journal: Journal,
        world: Any = None,
        *,
        wall: Clockwork = time.time,
        on_fired: Callable[[Inject, dict[str, Any]], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.journal = journal
        self.world = world
        self.wall = wall
        self.on_fired = on_fired
        conds = [i.when for i in scenario.injects] + [e.when for e in scenario.expectations]
        self.facts = Facts([s.id for s in steps], conds)
        self._lock = threading.RLock()
        self._judged: set[str] = set()  # expectations this drill journaled a verdict on
        self._fired: set[str] = set()  # injects this drill fired
        self.closed = False

    # -- reading -------------------------------------------------------------------------------
    def catch_up(self) -> None:
        """Feed the entries not yet seen (the journal's own, and others' after a refresh)."""
        with self._lock:
            while self.facts.fed < len(self.journal.entries):
                entry = self.journal.entries[self.facts.fed]
                at = self.facts.feed(entry)
                self._judge(at, entry_time=True)

    def view(self) -> ExerciseView:
        with self._lock:
            self.catch_up()
            return view_of(self.scenario, self.facts)

    def now(self) -> float:
        return self.facts.now(self.wall())

    # -- the clock -----------------------------------------------------------------------------
    def clock(self, action: str, by: str, **extra: Any) -> dict[str, Any]:
        """Journal a clock action at the current exercise time."""
        with self._lock:
            self.catch_up()
            data = {"action": action, "exercise_time": round(self.now(), 3), "by": by, **extra}
            if "speed" not in data:
                data["speed"] = self.facts.clock.speed
            entry = self.journal.append("clock", data)
            self.catch_up()
            return entry

    def advance(self, seconds: float, by: str) -> None:
        """Scripted time passing (`--auto`): move the clock on, firing what falls due on the
        way, in order, each at its own time."""
        with self._lock:
            self.catch_up()
            target = self.now() + max(seconds, 0.0)
            while True:
                view = self.view()
                due = [
                    i.inject.at
                    for i in view.injects
                    if i.open and i.inject.at is not None and self.now() < i.inject.at <= target
                ]
                deadlines = [
                    e.expectation.deadline
                    for e in view.expectations
                    if e.status == "pending"
                    and e.expectation.deadline is not None
                    and self.now() < e.expectation.deadline < target
                ]
                stop = min([*due, *[d + 0.001 for d in deadlines]], default=target)
                self.journal.append(
                    "clock",
                    {"action": "advance", "exercise_time": round(stop, 3), "by": by, "speed": 0},
                )
                self.tick()
                if stop >= target:
                    return

    # -- the rules -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Read what is new and apply the rules at the current exercise time."""
        with self._lock:
            if self.closed:
                return
            self.journal.refresh()
            self.catch_up()
            now = self.now()
            self.facts.observe(now)
            self._judge(now)
            self._fire_due(now)
            self.catch_up()

    def _fire_due(self, now: float) -> None:
        view = view_of(self.scenario, self.facts)
        if view.finished or not self.facts.clock.started:
            return
        for item in view.injects:
            if item.state == "requested" and item.id not in self._fired:
                self.fire(item.inject, "facilitator", now)
        if not self.facts.clock.running:
            return  # paused: only what the facilitator asks for fires
        for item in view.injects:
            if item.state != "pending" or item.id in self._fired:
                continue
            inject = item.inject
            if inject.at is not None and inject.at <= now:
                self.fire(inject, "clock", now)
            elif inject.when is not None and self.facts.holds(inject.when, now):
                self.fire(inject, "condition", now)

    def _judge(self, now: float, *, entry_time: bool = False) -> None:
        """Journal automatic expectations that became met, or whose deadline passed."""
        if not self.facts.clock.started:
            return
        view = view_of(self.scenario, self.facts)
        if view.finished:
            return
        for item in view.expectations:
            spec = item.expectation
            if item.status != "pending" or spec.validation != "auto" or spec.when is None:
                continue
            if spec.id in self._judged:
                continue
            deadline = spec.deadline
            if self.facts.holds(spec.when, now):
                if deadline is None or now <= deadline:
                    self._verdict(spec.id, "met", now, "")
                else:
                    late = f"achieved at {format_duration(now)}, after the deadline "
                    self._verdict(spec.id, "failed", now, late + format_duration(deadline))
            elif deadline is not None and now > deadline and not entry_time:
                self._verdict(
                    spec.id,
                    "failed",
                    now,
                    f"not achieved by the deadline {format_duration(deadline)}",
                )

    def _verdict(self, expectation_id: str, status: str, now: float, comment: str) -> None:
        self._judged.add(expectation_id)
        self.journal.append(
            "expectation",
            {
                "id": expectation_id,
                "status": status,
                "by": "auto",
                "comment": comment,
                "exercise_time": round(now, 3),
            },
        )

    def fire(self, inject: Inject, by: str, now: float | None = None) -> dict[str, Any]:
        """Write the inject's evidence into the world, then journal that it fired."""
        with self._lock:
            now = self.now() if now is None else now
            self._fired.add(inject.id)
            written, problems = [], []
            for evidence in inject.evidence:
                if self.world is None:
                    problems.append(f"{evidence.path}: no world to write it into")
                    continue
                try:
                    path = self.world.write_evidence(
                        evidence.path, evidence.content, where=evidence.where
                    )
                    written.append(str(path))
                except Exception as exc:  # the world refused it: say so, keep the drill going
                    problems.append(f"{evidence.path}: {exc}")
            data: dict[str, Any] = {
                "inject": inject.id,
                "title": inject.title,
                "by": by,
                "exercise_time": round(now, 3),
                "evidence": written,
                "to": list(inject.to),
            }
            if problems:
                data["evidence_problems"] = problems
            entry = self.journal.append("inject_fired", data)
            self.catch_up()
            if self.on_fired is not None:
                self.on_fired(inject, entry)
            return entry

    def finish(self, by: str) -> dict[str, Any] | None:
        """The end of the exercise: what is still pending fails; journals the score."""
        with self._lock:
            self.journal.refresh()
            self.catch_up()
            view = self.view()
            if view.exercise_finished is not None:
                return None
            now = self.now()
            for item in view.expectations:
                spec = item.expectation
                pending = item.status == "pending" and spec.id not in self._judged
                if pending and spec.validation == "auto":
                    self._verdict(spec.id, "failed", now, "not achieved by the end of the exercise")
            self.catch_up()
            view = self.view()
            got, total = view.score()
            entry = self.journal.append(
                "exercise_finished",
                {
                    "exercise_time": round(now, 3),
                    "by": by,
                    "score": got,
                    "possible": total,
                    "met": [e.id for e in view.expectations if e.status == "met"],
                    "failed": [
                        e.id for e in view.expectations if e.status in ("failed", "rejected")
                    ],
                    "pending": [e.id for e in view.expectations if e.status == "pending"],
                    "must_met": view.must_met(),
                },
            )
            self.catch_up()
            self.closed = True
            return entry
