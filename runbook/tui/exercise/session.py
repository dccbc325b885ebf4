"""An exercise as the app's session: ending it ends the drill, the run and the stand-ins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook.tui.session import Session

if TYPE_CHECKING:
    from runbook.exercise.session import Exercise


@dataclass
class ExerciseSession(Session):
    exercise: Exercise | None = None

    def close(self, running: str | None = None) -> str:
        """Score the exercise, journal how the run ended, stop the stand-ins."""
        if self.exercise is None or self.exercise.closed or self.journal.closed:
            return self.journal.head
        left = [s.id for s in self.steps if not self.runner.states()[s.id].finished(s)]
        if running:
            outcome, reason = "interrupted", f"the exercise ended while '{running}' was running"
        elif not left:
            outcome, reason = "completed", ""
        else:
            outcome, reason = "stopped", f"the exercise ended with {len(left)} step(s) left"
        self.outcome = outcome
        return self.exercise.close(outcome, reason)
