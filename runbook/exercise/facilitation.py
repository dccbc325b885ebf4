"""What the facilitator can do to a running exercise, through the shared journal. No Textual.

The facilitator's process holds no world: it asks the drill master to fire an inject (a
`clock fire_now` entry; the players' process writes the evidence and journals `inject_fired`),
and journals directly what needs no world: skips, pauses, speed, verdicts on manual
expectations, observations and phase ratings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook.exercise.facts import Facts
from runbook.exercise.model import PHASES
from runbook.exercise.record import NotAnExercise, read_exercise
from runbook.exercise.session import read_ground_truth
from runbook.exercise.state import ExerciseView, view_of
from runbook.journal import Journal, JournalError
from runbook.redact import Redactor

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class FacilitationError(Exception):
    """The facilitator asked for something that cannot be done now; the message says why."""


class Facilitation:
    """The facilitator's hold on one exercise: its journal (shared) and the facts so far."""

    def __init__(self, path: Path, by: str, *, wall: Callable[[], float] = time.time) -> None:
        try:
            record = read_exercise(path)
        except NotAnExercise as exc:
            raise FacilitationError(str(exc)) from None
        self.record = record
        self.scenario = record.scenario
        self.by = by
        self.wall = wall
        self.truth = read_ground_truth(path)
        try:
            self.journal = Journal(path, Redactor(), shared=True)
        except (JournalError, OSError) as exc:
            raise FacilitationError(str(exc)) from None
        conds = [i.when for i in self.scenario.injects] + [
            e.when for e in self.scenario.expectations
        ]
        self.facts = Facts(list(record.steps), conds)
        self._view: ExerciseView | None = None
        self.refresh()

    def close(self) -> None:
        self.journal.close()

    # -- reading -------------------------------------------------------------------------------
    def refresh(self) -> list[dict[str, Any]]:
        """Take in what was appended since; returns the new entries."""
        self.journal.refresh()
        new = self.journal.entries[self.facts.fed :]
        for entry in new:
            self.facts.feed(entry)
        if new or self._view is None:
            self._view = view_of(self.scenario, self.facts)
        return new

    @property
    def view(self) -> ExerciseView:
        assert self._view is not None
        return self._view

    def now(self) -> float:
        return self.facts.now(self.wall())

    @property
    def finished(self) -> bool:
        return self.view.finished

    def _append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        entry = self.journal.append(event, {**data, "by": self.by})
        self.refresh()
        return entry

    def _running(self, what: str) -> None:
        self.refresh()
        if self.finished:
            raise FacilitationError(f"the exercise has finished: cannot {what} any more")
        if not self.facts.clock.started:
            raise FacilitationError(f"the exercise clock has not started: cannot {what} yet")

    # -- injects -------------------------------------------------------------------------------
    def fire(self, inject_id: str) -> dict[str, Any]:
        """Ask the drill master to fire an inject now (even while paused)."""
        self._running("fire an inject")
        item = self._inject(inject_id)
        if item.state == "requested":
            raise FacilitationError(
                f"'{inject_id}' was already asked for; it fires at the next tick"
            )
        if not item.open:
            raise FacilitationError(f"'{inject_id}' was already {item.state}")
        return self._append(
            "clock",
            {
                "action": "fire_now",
                "inject": inject_id,
                "exercise_time": round(self.now(), 3),
                "speed": self.facts.clock.speed,
            },
        )

    def skip(self, inject_id: str, reason: str) -> dict[str, Any]:
        self._running("skip an inject")
        item = self._inject(inject_id)
        if not item.open:
            raise FacilitationError(f"'{inject_id}' was already {item.state}")
        if not reason.strip():
            raise FacilitationError("give a reason for skipping")
        return self._append(
            "inject_skipped",
            {"inject": inject_id, "reason": reason.strip(), "exercise_time": round(self.now(), 3)},
        )

    def _inject(self, inject_id: str) -> Any:
        try:
            return self.view.inject(inject_id)
        except StopIteration:
            raise FacilitationError(f"no inject '{inject_id}' in this scenario") from None

    # -- the clock -----------------------------------------------------------------------------
    def _clock(self, action: str, **extra: Any) -> dict[str, Any]:
        data = {
            "action": action,
            "exercise_time": round(self.now(), 3),
            "speed": self.facts.clock.speed,
            **extra,
        }
        return self._append("clock", data)

    def pause(self) -> dict[str, Any]:
        self._running("pause")
        if self.facts.clock.paused:
            raise FacilitationError("the clock is already paused")
        return self._clock("pause")

    def resume(self) -> dict[str, Any]:
        self._running("resume")
        if not self.facts.clock.paused:
            raise FacilitationError("the clock is running")
        return self._clock("resume")

    def toggle(self) -> dict[str, Any]:
        self.refresh()
        return self.resume() if self.facts.clock.paused else self.pause()

    def set_speed(self, speed: float) -> dict[str, Any]:
        self._running("change the speed")
        if self.facts.clock.scripted:
            raise FacilitationError("a scripted (--auto) clock has no speed")
        if not 0 < speed <= 100:
            raise FacilitationError("the speed is between 0 and 100 times the wall clock")
        return self._clock("speed", speed=speed)

    def faster(self, step: int) -> dict[str, Any]:
        current = self.facts.clock.speed
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - current))
        index = max(0, min(len(SPEEDS) - 1, index + step))
        return self.set_speed(SPEEDS[index])

    # -- judging -------------------------------------------------------------------------------
    def verdict(self, expectation_id: str, status: str, comment: str = "") -> dict[str, Any]:
        """Validate (`met`) or reject (`rejected`) a manual expectation, with a comment. It can
        be done after the exercise has ended (the hot wash)."""
        self.refresh()
        try:
            item = self.view.expectation(expectation_id)
        except StopIteration:
            raise FacilitationError(f"no expectation '{expectation_id}' in this scenario") from None
        if item.expectation.validation != "manual":
            raise FacilitationError(
                f"'{expectation_id}' is judged automatically from the journal; add an observation "
                "to disagree with it"
            )
        if status not in ("met", "rejected", "failed"):
            raise FacilitationError(f"a verdict is met, rejected or failed, not {status!r}")
        return self._append(
            "expectation",
            {
                "id": expectation_id,
                "status": status,
                "comment": comment.strip(),
                "exercise_time": round(self.now(), 3),
            },
        )

    def observe(self, text: str) -> dict[str, Any]:
        if not text.strip():
            raise FacilitationError("an observation needs some text")
        return self._append(
            "observation", {"text": text.strip(), "exercise_time": round(self.now(), 3)}
        )

    def join(self, name: str, role: str) -> dict[str, Any]:
        """Record another player at the table and the role they play."""
        roles = {r.id: r.name for r in self.scenario.roles}
        if roles and role not in roles:
            raise FacilitationError(f"unknown role {role!r}; roles: {', '.join(roles)}")
        entry = self.journal.append(
            "participant", {"name": name, "role": role, "role_name": roles.get(role, role)}
        )
        self.refresh()
        return entry

    def rate(self, phase: str, rating: str, reason: str) -> dict[str, Any]:
        """Override the rating the report suggests for a phase (P S M U), with a reason."""
        if phase not in PHASES:
            raise FacilitationError(f"unknown phase {phase!r} ({', '.join(PHASES)})")
        if rating not in ("P", "S", "M", "U"):
            raise FacilitationError("a rating is P, S, M or U")
        if not reason.strip():
            raise FacilitationError("give the reason for the rating")
        return self._append("rating", {"phase": phase, "rating": rating, "reason": reason.strip()})
