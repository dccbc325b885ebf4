"""An exercise read back from its journal alone: the run, the scenario it journaled at the
start (so neither the scenario file nor the world is needed), and every entry, checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runbook.exercise.model import Scenario
from runbook.exercise.state import ExerciseView, exercise_view
from runbook.journal import (
    MalformedEntry,
    Verification,
    numbered_entries,
    read_journal,
    verify_bytes,
)


class NotAnExercise(Exception):
    """The journal cannot be read as an exercise; the message says why."""


@dataclass
class ExerciseRecord:
    path: Path
    entries: list[dict[str, Any]]
    verification: Verification
    run: dict[str, Any]
    started: dict[str, Any]
    scenario: Scenario
    steps: dict[str, str]  # step id -> title

    def view(self) -> ExerciseView:
        return exercise_view(self.scenario, self.entries, list(self.steps))


def read_exercise(path: Path) -> ExerciseRecord:
    """Read and check an exercise journal. Raises NotAnExercise."""
    path = Path(path)
    try:
        raw = read_journal(path)
    except OSError as exc:
        raise NotAnExercise(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        entries = [entry for _, entry in numbered_entries(raw)]
    except MalformedEntry as exc:
        raise NotAnExercise(f"{path}: {exc}") from None
    verification = verify_bytes(raw if raw.endswith(b"\n") else raw[: raw.rfind(b"\n") + 1])
    run = next((e["data"] for e in entries if e["event"] == "run_started"), None)
    started = next((e["data"] for e in entries if e["event"] == "exercise_started"), None)
    if run is None:
        raise NotAnExercise(f"{path} holds no run (no run_started entry)")
    if started is None or run.get("mode") != "exercise":
        raise NotAnExercise(
            f"{path} is a {run.get('mode', 'unknown')} run, not an exercise "
            "(use `runbook report` for it)"
        )
    try:
        scenario = Scenario.model_validate(started.get("scenario_data"))
    except ValidationError as exc:
        raise NotAnExercise(
            f"{path}: the scenario journaled at the start is unreadable: {exc}"
        ) from None
    steps = started.get("steps")
    if not isinstance(steps, dict):
        steps = {}
    return ExerciseRecord(path, entries, verification, run, started, scenario, dict(steps))
