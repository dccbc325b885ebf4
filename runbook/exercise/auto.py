"""`runbook exercise run --auto`: the drill played headless by the scenario's scripted team.

The scripted team confirms or skips each step as the script says, answers checklists, decisions,
discussion questions and the survey, and the facilitator's verdicts on manual expectations come
from the script too. The exercise clock is scripted: it moves only by the time the script says
each step takes (`step_minutes`, or a step's `minutes`), never by the wall clock, so a drill
that covers two hours of exercise time runs in seconds and gives the same verdicts every time.
Timed injects and deadlines that fall inside a step's time fire and expire in order.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from runbook.exercise.model import AutoScript, Scenario, format_duration
from runbook.exercise.session import Exercise
from runbook.models import StepSpec
from runbook.operator import Confirmation, ItemAnswer, Operator
from runbook.runner import RunStopped
from runbook.runstate import StepState
from runbook.step import Plan
from runbook.termsafe import printable

LABEL = {"succeeded": "ok", "failed": "FAILED", "skipped": "skipped", "outstanding": "open"}


class ScriptedOperator(Operator):
    """The scripted team: answers as the scenario's `auto` script says."""

    interactive = False

    def __init__(
        self, script: AutoScript, secret: Callable[[StepSpec, str], str | None] | None = None
    ) -> None:
        self.script = script
        self.name = script.operator
        self._secret = secret

    def secret(self, step: StepSpec, prompt: str) -> str | None:
        """The scripted team knows the world's account password (the world says which)."""
        return self._secret(step, prompt) if self._secret else None

    def confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        answer = self.script.steps.get(step.id)
        if answer is not None and answer.answer == "skip":
            return Confirmation("skip", self.name, answer.reason)
        return Confirmation("yes", f"{self.name} (scripted)")

    def checklist(self, step: StepSpec, item_id: str, text: str) -> ItemAnswer:
        answer = self.script.steps.get(step.id)
        if answer is None:
            return "outstanding"
        return answer.checklist.get(item_id) or answer.checklist.get("default") or "outstanding"


def completed_phases(
    scenario: Scenario, states: dict[str, StepState], steps: list[StepSpec]
) -> list[str]:
    """Phases whose steps are all finished (a phase without steps completes at the end)."""
    specs = {s.id: s for s in steps}
    done = []
    for phase, spec in scenario.phases.items():
        ids = [sid for sid in spec.steps if sid in specs]
        if ids and all(states[sid].finished(specs[sid]) for sid in ids):
            done.append(phase)
    return done


def answered_phases(entries: list[dict[str, Any]]) -> set[str]:
    return {
        str((e.get("data") or {}).get("phase")) for e in entries if e.get("event") == "discussion"
    }


@dataclass
class AutoResult:
    must_met: bool
    head: str
    journal: str
    score: int
    possible: int
    met: list[str]
    failed: list[str]


class AutoDrill:
    """Plays one exercise to its end with the scripted team."""

    def __init__(self, exercise: Exercise, script: AutoScript, out: TextIO | None = None) -> None:
        self.x = exercise
        self.script = script
        self.out = out or sys.stdout
        roles = exercise.loaded.scenario.roles
        self.role = script.role or (roles[0].id if roles else "player")
        self._shown = 0

    def say(self, line: str) -> None:
        print(printable(line), file=self.out, flush=True)

    def _report_new(self) -> None:
        """Print the injects and verdicts journaled since the last look."""
        entries = self.x.journal.entries
        for entry in entries[self._shown :]:
            data = entry.get("data") or {}
            when = format_duration(float(data.get("exercise_time") or 0))
            if entry["event"] == "inject_fired":
                self.say(f"  inject   {when:>8} {data.get('inject')}: {data.get('title')}")
            elif entry["event"] == "expectation":
                comment = f" ({data['comment']})" if data.get("comment") else ""
                self.say(f"  {data.get('status'):<8} {when:>8} {data.get('id')}{comment}")
        self._shown = len(entries)

    def _decide(self) -> None:
        """Journal the scripted decision on every fired inject that asks for one."""
        view = self.x.drill.view()
        decided = {str(r.get("inject") or "") for r in view.records["decision"]}
        for item in view.injects:
            spec = item.inject.decision
            if item.state != "fired" or spec is None or item.id in decided:
                continue
            answer = self.script.decisions.get(item.id)
            if answer is None:
                continue
            self.x.journal.append(
                "decision",
                {
                    "inject": item.id,
                    "title": spec.title,
                    "options": list(spec.options),
                    "owner": spec.owner or "",
                    "decision": answer.decision,
                    "rationale": answer.rationale,
                    "by": self.script.operator,
                    "role": self.role,
                },
            )
        self.x.drill.tick()

    def _discuss(self, phases: list[str]) -> None:
        scenario = self.x.loaded.scenario
        asked = answered_phases(self.x.journal.entries)
        for phase in phases:
            if phase in asked:
                continue
            spec = scenario.phases.get(phase)  # type: ignore[call-overload]
            answer = self.script.discussion.get(phase) or self.script.discussion.get("default")
            if spec is None or not answer:
                continue
            for question in spec.questions:
                self.x.journal.append(
                    "discussion",
                    {
                        "phase": phase,
                        "question": question,
                        "answer": answer,
                        "by": self.script.operator,
                        "role": self.role,
                    },
                )

    def play(self, step_line: Callable[[StepSpec, StepState], None] | None = None) -> AutoResult:
        x, script = self.x, self.script
        runner, drill = x.runner, x.drill
        steps = x.loaded.playbook.playbook.steps
        drill.tick()
        self._report_new()
        stopped = ""
        for step in steps:
            if runner.states()[step.id].finished(step):
                continue
            scripted = script.steps.get(step.id)
            try:
                if scripted is not None and scripted.answer == "skip":
                    runner.skip(step, scripted.reason, by=script.operator)
                    state = runner.states()[step.id]
                else:
                    state = runner.step_one(step)
            except RunStopped as exc:
                stopped = str(exc)
                break
            (step_line or self._step_line)(step, state)
            if state.status == "failed" and not step.continue_on_error:
                runner.note(f"step '{step.id}' failed; the scripted team moves on")
            drill.tick()
            self._decide()
            self._report_new()
            answer = script.steps.get(step.id)
            minutes = answer.minutes if answer and answer.minutes is not None else None
            drill.advance(minutes if minutes is not None else script.step_minutes, script.operator)
            self._decide()
            self._discuss(completed_phases(x.loaded.scenario, runner.states(), steps))
            self._report_new()
        self._discuss(list(x.loaded.scenario.phases))  # the hot wash: what is left
        for question in x.loaded.scenario.survey:
            answer_text = script.survey.get(question.id)
            if answer_text:
                x.journal.append(
                    "survey",
                    {
                        "id": question.id,
                        "question": question.question,
                        "answer": answer_text,
                        "by": script.operator,
                        "role": self.role,
                    },
                )
        for expectation_id, status in script.facilitator.items():
            x.journal.append(
                "expectation",
                {
                    "id": expectation_id,
                    "status": status,
                    "by": "facilitator (scripted)",
                    "comment": "scripted verdict (--auto)",
                    "exercise_time": round(drill.now(), 3),
                },
            )
        for text in script.observations:
            x.journal.append("observation", {"text": text, "by": "facilitator (scripted)"})
        drill.tick()
        self._report_new()
        head = x.close(outcome="stopped" if stopped else None, reason=stopped)
        view = drill.view()
        self._report_new()
        got, total = view.score()
        return AutoResult(
            must_met=view.must_met(),
            head=head,
            journal=str(x.journal_path),
            score=got,
            possible=total,
            met=[e.id for e in view.expectations if e.status == "met"],
            failed=[e.id for e in view.expectations if e.status != "met"],
        )

    def _step_line(self, step: StepSpec, state: StepState) -> None:
        label = LABEL.get(state.status, state.status)
        summary = f"  {state.summary}" if state.summary else ""
        self.say(f"  {label:<8} {step.id:<28}{summary}")
