"""The players' face of an exercise: the normal run screen, in an EXERCISE banner with the
clock, plus injects as modals, decisions, discussion questions at phase boundaries, the role a
player picks, and the survey at the end.

A thread is the drill master: every 0.2 s it reads what the facilitator appended (the shared
journal) and applies the drill's rules (timed and conditional injects, expectations). Every
entry, whoever wrote it, reaches this screen as a `JournalAppended` message, so an inject the
facilitator fires is on screen within a tick.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType

from runbook.exercise.model import format_duration
from runbook.tui.messages import CommandOutput, JournalAppended, SessionFailed, SessionReady
from runbook.tui.request import Outline, RunRequest
from runbook.tui.screens.run import RunScreen, spawn
from runbook.tui.widgets.header import RunHeader

if TYPE_CHECKING:
    from runbook.exercise.session import Exercise, Prepared

TICK = 0.2  # seconds between the drill master's looks at the journal
WELCOME = (
    "EXERCISE: the real playbook, live, in a simulated world. enter: run the step   "
    "i: injects   D: record a decision   ?: help"
)


class ExerciseRunScreen(RunScreen):
    """A run screen whose session is an exercise."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *RunScreen.BINDINGS,
        Binding("i", "injects", "Injects"),
        Binding("D", "decision", "Decision"),
    ]

    def __init__(self, request: RunRequest, outline: Outline, prepared: Prepared) -> None:
        super().__init__(request, outline)
        self.prepared = prepared
        self.role = prepared.role
        self._shown_injects: set[str] = set()
        self._asked_phases: set[str] = set()
        self._drill_thread: threading.Thread | None = None
        self._ending = False

    @property
    def exercise(self) -> Exercise | None:
        session = self.session
        return getattr(session, "exercise", None)

    # -- opening -------------------------------------------------------------------------------
    def _load(self) -> None:
        """Start the stand-ins and open the exercise (in a thread, after the first frame)."""
        from runbook.exercise.session import ExerciseError, open_exercise
        from runbook.redact import Redactor
        from runbook.tui.exercise.session import ExerciseSession
        from runbook.tui.operator import TuiOperator
        from runbook.tui.session import ObservedJournal

        p = self.prepared
        self.redactor = Redactor()
        name = self.request.operator or "player"
        self.operator = TuiOperator(self.app, name, "exercise", self.redactor, self.paths)

        def journal(path: Any, redact: Any) -> ObservedJournal:
            return ObservedJournal(
                path, redact, lambda entry: self.post_message(JournalAppended(entry)), shared=True
            )

        try:
            exercise = open_exercise(
                p.loaded,
                self.operator,
                seed=p.seed,
                variant=p.variant,
                directory=p.directory,
                world=p.world,
                speed=p.speed,
                role=p.role,
                redactor=self.redactor,
                journal_factory=journal,
                output=lambda step_id, line: self.post_message(CommandOutput(step_id, line)),
                services=p.services,
            )
        except ExerciseError as exc:
            self.post_message(SessionFailed([str(exc)]))
            return
        except Exception as exc:  # a bug: show it rather than hang on "Loading"
            self.post_message(SessionFailed([self.redactor.text(f"{type(exc).__name__}: {exc}")]))
            return
        session = ExerciseSession(
            self.request,
            p.loaded.playbook,
            exercise.journal,  # type: ignore[arg-type]
            exercise.runner,
            False,
            warnings=exercise.warnings,
            exercise=exercise,
        )
        if self.closing:
            session.close()
            return
        self._drill_thread = spawn(self._drill_loop, exercise, name="runbook-drill")
        self.post_message(SessionReady(session))

    def _drill_loop(self, exercise: Exercise) -> None:
        """The drill master: apply the rules on what is new, five times a second."""
        from runbook.tui.session import RunClosed

        reported = False
        while not self.closing and not exercise.closed:
            try:
                exercise.drill.tick()
            except RunClosed:
                return
            except Exception as exc:  # keep the drill alive; say it once
                if not reported:
                    reported = True
                    text = f"the drill master hit an error: {type(exc).__name__}: {exc}"
                    self.app.call_from_thread(
                        self.app.notify, text, severity="error", timeout=15, markup=False
                    )
            time.sleep(TICK)

    def on_session_ready(self, message: SessionReady) -> None:
        super().on_session_ready(message)
        exercise = self.exercise
        if exercise is None:
            return
        self.set_interval(0.5, self._tick_clock)
        self._tick_clock()
        self.app.notify(
            f"Facilitator console: runbook exercise facilitate {exercise.journal_path}",
            title="Exercise started",
            timeout=20,
            markup=False,
        )
        if self.role is None:
            self._choose_role()
        self._catch_up_injects()

    def _choose_role(self) -> None:
        from runbook.exercise.session import join
        from runbook.tui.exercise.modals import RoleScreen

        exercise = self.exercise
        assert exercise is not None
        scenario = exercise.loaded.scenario
        name = exercise.runner.operator.name
        if not scenario.roles:
            self.role = "player"
            join(exercise.journal, name, "player", scenario)
            return

        def chosen(role: str | None) -> None:
            if role and self.exercise is not None and not self.exercise.closed:
                self.role = role
                join(self.exercise.journal, name, role, scenario)

        self.app.push_screen(RoleScreen(scenario.roles, name), chosen)

    # -- the clock in the header ---------------------------------------------------------------
    def clock_text(self) -> str:
        exercise = self.exercise
        if exercise is None:
            return ""
        # the entry that changed the clock may have reached this screen before the drill's
        # thread fed it to the facts
        exercise.drill.catch_up()
        clock = exercise.drill.facts.clock
        now = exercise.drill.now()
        text = f"clock {format_duration(now)}"
        if clock.speed != 1:
            text += f" ×{clock.speed:g}"
        if clock.paused:
            text += "  PAUSED"
        return text

    def _tick_clock(self) -> None:
        if self.exercise is not None and not self.exercise.closed:
            self.query_one(RunHeader).set_clock(self.clock_text())
            self._catch_up_injects()

    # -- what the journal brings ---------------------------------------------------------------
    def on_journal_appended(self, message: JournalAppended) -> None:
        super().on_journal_appended(message)
        entry = message.entry
        event = entry["event"]
        if event == "inject_fired":
            self._show_inject(entry)
        elif event == "clock":
            self.query_one(RunHeader).set_clock(self.clock_text())
        elif event in ("step_finished", "step_skipped"):
            self._phase_questions()

    def _catch_up_injects(self) -> None:
        """Show any fired inject not shown yet (a message can arrive before the session)."""
        exercise = self.exercise
        if exercise is None:
            return
        for entry in list(exercise.journal.entries):
            if entry["event"] == "inject_fired":
                self._show_inject(entry)

    def _show_inject(self, entry: dict[str, Any]) -> None:
        from runbook.tui.exercise.modals import InjectScreen, RoleScreen

        exercise = self.exercise
        data = entry.get("data") or {}
        inject_id = str(data.get("inject", ""))
        if exercise is None or inject_id in self._shown_injects:
            return
        if any(isinstance(s, RoleScreen) for s in self.app.screen_stack):
            return  # once the player has joined (the clock tick shows it then)
        try:
            inject = exercise.loaded.scenario.inject(inject_id)
        except KeyError:
            return
        self._shown_injects.add(inject_id)
        roles = {r.id: r.name for r in exercise.loaded.scenario.roles}
        at = float(data.get("exercise_time") or 0)
        evidence = [self.paths.show(p) for p in data.get("evidence") or []]
        decided = self._decided(inject_id)

        def answered(result: dict[str, str] | None) -> None:
            if result and self.exercise is not None and not self.exercise.closed:
                self._record_decision(inject_id, result)

        self.app.push_screen(
            InjectScreen(inject, at, evidence, decided=decided, roles=roles), answered
        )
        self.hint(f"Inject: {inject.title}   i: see the injects again")

    def _decided(self, inject_id: str) -> bool:
        exercise = self.exercise
        assert exercise is not None
        return any(
            e["event"] == "decision" and (e.get("data") or {}).get("inject") == inject_id
            for e in exercise.journal.entries
        )

    def _record_decision(self, inject_id: str, result: dict[str, Any]) -> None:
        exercise = self.exercise
        assert exercise is not None
        spec = exercise.loaded.scenario.inject(inject_id).decision if inject_id else None
        data = {
            "inject": inject_id,
            "title": spec.title if spec else result.get("title", ""),
            "options": list(spec.options) if spec else list(result.get("options", [])),
            "owner": (spec.owner or "") if spec else self.role or "",
            "decision": result["decision"],
            "rationale": result.get("rationale", ""),
            "by": exercise.runner.operator.name,
            "role": self.role or "",
        }
        exercise.journal.append("decision", data)
        self.notify("Decision recorded in the journal.")

    def _show_finished(self) -> None:
        """Every step is done: the phases' questions, then q for the hot wash and the end."""
        self.hint("Every step is finished. q: end the exercise (questions left, the survey)")
        self._phase_questions()

    # -- phases, discussion, survey --------------------------------------------------------------
    def _phase_questions(self, phases: list[str] | None = None) -> None:
        from runbook.exercise.auto import answered_phases, completed_phases
        from runbook.tui.exercise.modals import DiscussionScreen

        exercise = self.exercise
        if exercise is None or exercise.closed:
            return
        scenario = exercise.loaded.scenario
        if phases is None:
            phases = completed_phases(scenario, exercise.runner.states(), self.session.steps)  # type: ignore[union-attr]
        answered = answered_phases(exercise.journal.entries)
        for phase in phases:
            spec = scenario.phases.get(phase)  # type: ignore[call-overload]
            if phase in self._asked_phases or phase in answered or not spec or not spec.questions:
                continue
            self._asked_phases.add(phase)

            def done(answers: list[tuple[str, str]] | None, phase: str = phase) -> None:
                if answers is None:
                    self._asked_phases.discard(phase)  # asked again at the end
                    return
                self._record_discussion(phase, answers)

            self.app.push_screen(DiscussionScreen(phase, list(spec.questions)), done)

    def _record_discussion(self, phase: str, answers: list[tuple[str, str]]) -> None:
        exercise = self.exercise
        if exercise is None or exercise.closed:
            return
        for question, answer in answers:
            exercise.journal.append(
                "discussion",
                {
                    "phase": phase,
                    "question": question,
                    "answer": answer,
                    "by": exercise.runner.operator.name,
                    "role": self.role or "",
                },
            )

    def action_injects(self) -> None:
        """i: the injects fired so far; enter shows one again."""
        from runbook.tui.exercise.modals import InjectScreen

        exercise = self.exercise
        if exercise is None:
            return
        fired = [e for e in exercise.journal.entries if e["event"] == "inject_fired"]
        if not fired:
            self.notify("No inject has reached the team yet.")
            return
        from runbook.tui.exercise.list import InjectListScreen

        def show(seq: int | None) -> None:
            entry = next((e for e in fired if e["seq"] == seq), None)
            if entry is None or self.exercise is None:
                return
            data = entry["data"]
            inject_id = str(data.get("inject"))
            inject = self.exercise.loaded.scenario.inject(inject_id)
            roles = {r.id: r.name for r in self.exercise.loaded.scenario.roles}

            def answered(result: dict[str, str] | None) -> None:
                if result and self.exercise is not None and not self.exercise.closed:
                    self._record_decision(inject_id, result)

            self.app.push_screen(
                InjectScreen(
                    inject,
                    float(data.get("exercise_time") or 0),
                    [self.paths.show(p) for p in data.get("evidence") or []],
                    decided=self._decided(inject_id),
                    roles=roles,
                ),
                answered,
            )

        self.app.push_screen(InjectListScreen(fired), show)

    def action_decision(self) -> None:
        """D: record a decision of the team's own."""
        from runbook.tui.exercise.modals import DecisionScreen

        if self.exercise is None:
            return

        def recorded(result: dict[str, Any] | None) -> None:
            if result and self.exercise is not None and not self.exercise.closed:
                self._record_decision("", result)

        self.app.push_screen(DecisionScreen(), recorded)

    def action_quit_run(self) -> None:
        """q: the hot wash (questions left, the survey), then end the exercise."""
        if self.busy or self._ending or self.exercise is None or self.exercise.closed:
            super().action_quit_run()
            return
        from runbook.tui.screens.prompt import QuestionScreen

        def answer(end: bool | None) -> None:
            if end:
                self._ending = True
                self._hot_wash()

        self.app.push_screen(
            QuestionScreen(
                "End the exercise?",
                "The exercise ends for everyone: expectations still open fail, the stand-ins "
                "stop, and the facilitator can write the after-action report.",
                yes="end it",
                no="keep going",
            ),
            answer,
        )

    def _hot_wash(self) -> None:
        """Questions of phases not discussed yet, then the survey, then the end."""
        from runbook.exercise.auto import answered_phases
        from runbook.tui.exercise.modals import DiscussionScreen, SurveyScreen

        exercise = self.exercise
        assert exercise is not None
        scenario = exercise.loaded.scenario
        answered = answered_phases(exercise.journal.entries)
        left = [
            (phase, spec)
            for phase, spec in scenario.phases.items()
            if spec.questions and phase not in answered
        ]

        def survey() -> None:
            if not scenario.survey:
                self.app.finish()
                return

            def done(answers: list[tuple[str, str]] | None) -> None:
                questions = {q.id: q.question for q in scenario.survey}
                if answers and self.exercise is not None and not self.exercise.closed:
                    for qid, text in answers:
                        self.exercise.journal.append(
                            "survey",
                            {
                                "id": qid,
                                "question": questions.get(qid, qid),
                                "answer": text,
                                "by": self.exercise.runner.operator.name,
                                "role": self.role or "",
                            },
                        )
                self.app.finish()

            self.app.push_screen(SurveyScreen(list(scenario.survey)), done)

        def ask(index: int) -> None:
            if index >= len(left):
                survey()
                return
            phase, spec = left[index]

            def done(answers: list[tuple[str, str]] | None) -> None:
                if answers:
                    self._record_discussion(phase, answers)
                ask(index + 1)

            self.app.push_screen(DiscussionScreen(phase, list(spec.questions)), done)

        ask(0)

    def close_session(self, running: str | None) -> None:
        super().close_session(running)
        thread = self._drill_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
