"""The main screen: step list, the selected step's pane, progress, hints and the key bindings.

Every step runs in a thread that drives the runner (plan, confirm, execute) and only talks to the
UI through messages; the journal tells the screen about each entry, and the screen redraws from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from runbook.tui.messages import (
    CommandOutput,
    JournalAppended,
    SessionFailed,
    SessionReady,
    StepThreadDone,
)
from runbook.tui.render import Paths
from runbook.tui.request import Outline, RunRequest
from runbook.tui.view import StepView, effects_since_start, latest_plan, step_entries
from runbook.tui.widgets.header import RunHeader
from runbook.tui.widgets.steplist import StepList

if TYPE_CHECKING:
    from textual.widgets import ProgressBar

    from runbook.models import StepSpec
    from runbook.redact import Redactor
    from runbook.tui.operator import TuiOperator
    from runbook.tui.session import Session
    from runbook.tui.widgets.steppane import StepPane

REDRAW_EVENTS = {
    "step_planned",
    "step_confirmed",
    "step_started",
    "step_finished",
    "step_skipped",
    "step_reset",
}


def spawn(target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
    """Run `target` in a daemon thread.

    Not Textual's thread workers: their executor is joined when the app exits, so quitting
    during a ten-minute `npm ci` would wait for it. A daemon thread dies with the process, and
    the journal, not the thread, is what a resumed run continues from.
    """
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def paths_for(request: RunRequest) -> Paths:
    home = request.env.get("HOME")
    return Paths(request.target, Path(home) if home else None)


class RunScreen(Screen[None]):
    """Walks the operator through one run of a playbook."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "skip", "Skip"),
        Binding("r", "retry", "Retry"),
        Binding("n", "note", "Note"),
        Binding("a", "audit", "Audit"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_run", "Quit"),
        Binding("d", "tab('description')", "Description", show=False),
        Binding("f", "tab('findings')", "Findings", show=False),
        Binding("p", "tab('plan')", "Plan", show=False),
        Binding("l", "tab('log')", "Log", show=False),
        Binding("pageup", "scroll_pane(-1)", show=False),
        Binding("pagedown", "scroll_pane(1)", show=False),
    ]

    def __init__(self, request: RunRequest, outline: Outline) -> None:
        super().__init__()
        self.request = request
        self.outline = outline
        self.paths = paths_for(request)
        self.redactor: Redactor | None = None  # made with the session, in `_load`
        self.session: Session | None = None
        self.operator: TuiOperator | None = None
        self.busy: str | None = None  # the id of the step whose thread runs
        self.thread: threading.Thread | None = None
        self._drawn_seq = 0
        self._shown: str | None = None
        self._finished_shown = False
        self.closing = False

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # the first frame is the step list and little else; the pane, its tabs and tables
        # are mounted right after it is drawn (see `_second_stage`)
        yield RunHeader(
            self.outline.title, self.paths.place(self.request.target), self.request.mode
        )
        with Horizontal(id="body"):
            yield StepList(id="steps")
            yield Static("", id="pane-wait")
        with Horizontal(id="status"):
            yield Static("Loading the playbook…", id="hint")

    def on_mount(self) -> None:
        steps = self.query_one(StepList)
        steps.set_steps(self.outline.steps)
        steps.focus()
        self.set_timer(0.03, self._second_stage)

    async def _second_stage(self) -> None:
        from textual.widgets import ProgressBar, Tabs

        from runbook.tui.widgets.steppane import StepPane

        if not self.is_attached:  # the app was closed before its first frame was drawn
            return
        self.query_one("#pane-wait").remove()
        progress = ProgressBar(id="progress", show_eta=False)
        progress.display = False
        await self.query_one("#body").mount(StepPane(self.paths, id="pane"))
        await self.query_one("#status").mount(progress)
        await self.mount(Footer())
        # A footer mounted after the first focus change waits for the next bindings signal;
        # without one it would stay empty.
        self.refresh_bindings()
        for tabs in self.query(Tabs):
            tabs.can_focus = False
        self.thread = spawn(self._load, name="runbook-open")

    @property
    def steps(self) -> StepList:
        return self.query_one(StepList)

    @property
    def pane(self) -> StepPane:
        return self.query_one("#pane")  # type: ignore[return-value]

    def hint(self, text: str) -> None:
        self.query_one("#hint", Static).update(text)

    # -- opening the run -------------------------------------------------------------------------
    def _load(self) -> None:
        """Validate the playbook and open the journal (this imports pydantic and every step
        kind, so it runs after the first screen is drawn)."""
        from runbook.redact import Redactor
        from runbook.runner import operator_name
        from runbook.tui.operator import TuiOperator
        from runbook.tui.session import SessionError, open_session

        self.redactor = Redactor()
        name = self.request.operator or operator_name(self.request.env)
        self.operator = TuiOperator(self.app, name, self.request.mode, self.redactor, self.paths)
        try:
            session = open_session(
                self.request,
                self.operator,
                lambda entry: self.post_message(JournalAppended(entry)),
                self.redactor,
                lambda step_id, line: self.post_message(CommandOutput(step_id, line)),
            )
        except SessionError as exc:
            self.post_message(SessionFailed(exc.lines))
            return
        except Exception as exc:  # a bug: show it rather than hang on "Loading"
            self.post_message(SessionFailed([self.redactor.text(f"{type(exc).__name__}: {exc}")]))
            return
        if self.closing:  # the operator quit while the run was being opened
            session.close()
            return
        self.post_message(SessionReady(session))

    def on_session_failed(self, message: SessionFailed) -> None:
        self.app.fail(message.lines)

    def on_session_ready(self, message: SessionReady) -> None:
        session = self.session = message.session
        if [s.id for s in session.steps] != list(self.steps.rows):  # edited since the outline
            self.steps.set_steps([(s.id, s.title) for s in session.steps])
        self._drawn_seq = session.journal.entries[-1]["seq"] if session.journal.entries else 0
        states = session.runner.states()
        for step in session.steps:
            state = states[step.id]
            self.steps.show_state(step.id, step.title, self._status(step.id), state.duration)
        first = next((s for s in session.steps if not states[s.id].finished(s)), None)
        self.steps.select_id((first or session.steps[-1]).id)
        self._draw(force=True)
        self._progress_text()
        for warning in session.warnings:
            # plain text: a bracket in a path or message must not be read as markup (a crash)
            self.app.notify(
                self.redactor.text(warning) if self.redactor else warning,
                title="Before you start",
                severity="warning",
                timeout=30,
                markup=False,
            )
        if first is None:
            self._show_finished()
        elif session.resumed:
            done = sum(1 for s in session.steps if states[s.id].finished(s))
            self.hint(f"Resumed: {done} step(s) already finished. Press enter to run {first.id!r}.")
        else:
            self.hint(self.request.welcome or f"Press enter to plan and run {first.id!r}. ?: help")

    # -- what is shown ---------------------------------------------------------------------------
    def _status(self, step_id: str) -> str:
        """The status to show: a step the journal says is running, that no thread of this
        session runs, was interrupted (a quit, a crash) and runs again when asked."""
        assert self.session is not None
        status = self.session.runner.states()[step_id].status
        return "interrupted" if status == "running" and step_id != self.busy else status

    def _view(self, step_id: str) -> StepView:
        assert self.session is not None
        steps = self.session.steps
        number = next(n for n, s in enumerate(steps, 1) if s.id == step_id)
        entries = step_entries(self.session.journal.entries, step_id)
        return StepView(
            number,
            len(steps),
            steps[number - 1],
            self.session.runner.states()[step_id],
            latest_plan(entries),
            entries,
            self._status(step_id),
        )

    def _draw(self, *, force: bool = False, switch_tab: bool = False) -> None:
        step_id = self.steps.selected_id
        if self.session is None or step_id is None:
            return
        same = step_id == self._shown
        view = self._view(step_id)
        self.pane.show(view, same_step=same and not force)
        if not same or switch_tab:
            self.pane.choose_tab(self.pane.default_tab(view))
        self._shown = step_id

    @on(StepList.OptionHighlighted)
    def _highlighted(self) -> None:
        if self.session is not None:
            self._draw()

    def _progress_text(self) -> None:
        assert self.session is not None
        states = self.session.runner.states()
        done = sum(1 for s in self.session.steps if states[s.id].finished(s))
        self.query_one(RunHeader).set_progress(f"{done} of {len(self.session.steps)} steps done")

    def on_command_output(self, message: CommandOutput) -> None:
        """A running command's output, live, in the log of its step."""
        if self.session is not None and message.step_id == self.steps.selected_id:
            self.pane.log_output(message.line)

    def on_journal_appended(self, message: JournalAppended) -> None:
        entry = message.entry
        if self.session is None or entry["seq"] <= self._drawn_seq:
            return
        self._drawn_seq = entry["seq"]
        step_id = (entry.get("data") or {}).get("step")
        event = entry["event"]
        from runbook.tui.screens.audit import AuditScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, AuditScreen):
                screen.add_entry(entry)
        if step_id and event in REDRAW_EVENTS | {"manual_item"}:
            number = next((n for n, s in enumerate(self.session.steps, 1) if s.id == step_id), 0)
            if number:
                state = self.session.runner.states()[step_id]
                spec = self.session.steps[number - 1]
                self.steps.show_state(step_id, spec.title, self._status(step_id), state.duration)
                self._progress_text()
        if step_id and step_id == self.busy:
            self._progress(step_id, event)
        if step_id and step_id == self.steps.selected_id:
            if event in REDRAW_EVENTS:
                self._draw(switch_tab=event in ("step_planned", "step_started", "step_finished"))
            else:
                self.pane.log_entry(entry)

    def _progress(self, step_id: str, event: str) -> None:
        bar: ProgressBar = self.query_one("#progress")  # type: ignore[assignment]
        view = self._view(step_id)
        if event == "step_planned":
            self.hint(f"Planned {step_id!r}. See the plan; confirm when asked.")
        if event == "step_started":
            bar.display = True
            self.hint(f"Running {step_id!r}… every move is journaled; q quits safely.")
        total = len(view.actions) or None
        bar.update(total=total, progress=min(effects_since_start(view.entries), total or 0))

    # -- running steps ---------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.session is None:
            self.notify("Still opening the run; one moment.", severity="warning")
            return False
        if self.busy:
            self.notify(
                f"{self.busy!r} is still running. Wait for it, or press q to quit (the "
                "journal keeps the state).",
                severity="warning",
            )
            return False
        return True

    def _selected(self) -> StepSpec | None:
        step_id = self.steps.selected_id
        if self.session is None or step_id is None:
            return None
        return self.session.loaded.playbook.step(step_id)

    def action_run_step(self) -> None:
        """enter: plan, then run, the selected step (on a finished one: go to the next)."""
        if not self._ready() or (step := self._selected()) is None:
            return
        assert self.session is not None
        if self.session.runner.states()[step.id].finished(step):
            following = self._next_unfinished(step.id)
            if following is None:
                self.notify("Every step is finished. Press q to end the run.")
                self._show_finished()
            else:
                self.steps.select_id(following.id)
                self.hint(f"Press enter to plan and run {following.id!r}.")
            return
        self._start(step)

    def action_retry(self) -> None:
        """r: run a failed (or open, or skipped) step again, from a fresh plan."""
        if not self._ready() or (step := self._selected()) is None:
            return
        assert self.session is not None
        status = self.session.runner.states()[step.id].status
        if status == "pending":
            self.notify(f"{step.id!r} has not run yet: press enter to run it.")
            return
        if status == "succeeded":
            self.notify(f"{step.id!r} succeeded; there is nothing to retry.")
            return
        self._start(step)

    def _next_unfinished(self, after: str) -> StepSpec | None:
        assert self.session is not None
        states = self.session.runner.states()
        steps = self.session.steps
        index = next(n for n, s in enumerate(steps) if s.id == after)
        for step in [*steps[index + 1 :], *steps[:index]]:
            if not states[step.id].finished(step):
                return step
        return None

    def _start(self, step: StepSpec) -> None:
        assert self.session is not None
        runner = self.session.runner
        blocked = runner.blocked_by(step)
        if blocked:
            states = runner.states()
            playbook = self.session.loaded.playbook
            waiting = [
                c.step
                for c in step.when or []
                if not states[c.step].finished(playbook.step(c.step))
            ]
            if waiting:
                self.notify(
                    f"{step.id!r} depends on {', '.join(waiting)}: run that first.",
                    severity="warning",
                )
                return
            runner.skip(step, blocked, by="when")
            self.notify(f"{step.id!r} skipped: {blocked}.")
            self._after_step(step.id)
            return
        self.busy = step.id
        bar: ProgressBar = self.query_one("#progress")  # type: ignore[assignment]
        bar.update(total=None, progress=0)
        bar.display = True
        self.hint(f"Planning {step.id!r}…")
        self.thread = spawn(self._work, step, name=f"runbook-step-{step.id}")

    def _work(self, step: StepSpec) -> None:
        """The step thread: plan, ask, apply. Only messages go back to the UI."""
        from runbook.tui.operator import OperatorGone
        from runbook.tui.session import RunClosed

        assert self.session is not None and self.operator is not None
        assert self.redactor is not None
        runner = self.session.runner
        declined, error = False, ""
        try:
            try:
                plan = runner.plan(step)
            except RunClosed:
                raise
            except Exception as exc:
                runner.fail_planning(step, exc)
                return
            self.operator.start_step(step.id, plan)
            if runner.needs_confirmation(step, plan):
                answer = runner.confirm(step, plan)
                if answer.answer == "skip":
                    runner.skip(step, answer.reason, by=answer.by)
                    return
                if answer.answer == "no":
                    declined = True
                    return
            runner.execute(step, plan)
        except (RunClosed, OperatorGone):
            return
        except Exception as exc:  # a bug in the app or the runner: say so, keep the app alive
            error = self.redactor.text(f"{type(exc).__name__}: {exc}")
        finally:
            self.post_message(StepThreadDone(step.id, declined=declined, error=error))

    def on_step_thread_done(self, message: StepThreadDone) -> None:
        self.busy = None
        self.query_one("#progress").display = False
        if message.error:
            self.notify(
                message.error, title="Unexpected error", severity="error", timeout=10, markup=False
            )
        if message.declined:
            self.hint(
                f"You did not apply {message.step_id!r}: nothing was changed. enter: plan it "
                "again   s: skip it"
            )
            return
        self._after_step(message.step_id)

    def _after_step(self, step_id: str) -> None:
        assert self.session is not None
        state = self.session.runner.states()[step_id]
        if self.session.all_finished():
            self._show_finished()
            return
        following = self._next_unfinished(step_id)
        onward = f" enter: go on to {following.id!r}." if following else ""
        text = {
            "succeeded": f"{step_id!r} succeeded.{onward}",
            "skipped": f"{step_id!r} skipped.{onward}",
            "outstanding": f"{step_id!r} has items left open (r: answer them again).{onward}",
            "failed": f"{step_id!r} FAILED: see its log. r: retry   s: skip it",
        }.get(state.status, f"{step_id!r}: {state.status}")
        self.hint(text)

    def _show_finished(self) -> None:
        from runbook.tui.screens.finished import FinishedScreen

        self.hint("Every step is finished. q: end the run   a: audit log")
        if self._finished_shown or self.session is None:
            return
        self._finished_shown = True
        self.app.push_screen(FinishedScreen(self.session, self.paths))

    # -- the other keys --------------------------------------------------------------------------
    def action_skip(self) -> None:
        """s: skip the selected step, asking for a reason."""
        if not self._ready() or (step := self._selected()) is None:
            return
        assert self.session is not None
        status = self.session.runner.states()[step.id].status
        if status in ("succeeded", "skipped"):
            self.notify(f"{step.id!r} is already {status}.")
            return
        from runbook.tui.screens.prompt import TextPromptScreen

        def skip(reason: str | None) -> None:
            if reason and self.session is not None and not self.busy:
                self.session.runner.skip(step, reason)
                self._after_step(step.id)

        self.app.push_screen(
            TextPromptScreen(
                f"Skip {step.id!r}: {step.title}",
                "Why is this step skipped? The reason is journaled with your name.",
                "reason",
            ),
            skip,
        )

    def action_note(self) -> None:
        """n: add a note to the journal."""
        if self.session is None:
            self.notify("Still opening the run; one moment.", severity="warning")
            return
        from runbook.tui.screens.prompt import TextPromptScreen

        def add(text: str | None) -> None:
            if text and self.session is not None and not self.session.journal.closed:
                self.session.runner.note(text)
                self.notify("Note added to the journal.")

        self.app.push_screen(
            TextPromptScreen(
                "Add a note to the journal",
                "What should the record say? (an observation, a decision, who was told)",
                "note",
            ),
            add,
        )

    def action_audit(self) -> None:
        if self.session is None:
            return
        from runbook.tui.screens.audit import AuditScreen

        self.app.push_screen(AuditScreen(self.session, self.paths))

    def action_help(self) -> None:
        from runbook.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_tab(self, tab: str) -> None:
        self.pane.choose_tab(tab)

    def action_scroll_pane(self, direction: int) -> None:
        scrollers = {
            "description": "#description-scroll",
            "plan": "#plan-scroll",
            "findings": "#findings-table",
            "log": "#log-text",
        }
        target = self.query_one(scrollers[self.pane.tab])
        if direction < 0:
            target.scroll_page_up()
        else:
            target.scroll_page_down()

    def action_quit_run(self) -> None:
        """q: end the session; asks first while a step runs. The journal stays resumable."""
        if not self.busy:
            self.app.finish()
            return
        from runbook.tui.screens.prompt import QuestionScreen

        if any(isinstance(s, QuestionScreen) for s in self.app.screen_stack):
            return  # asked already (ctrl+c pressed twice): one question is enough
        running = self.busy

        def answer(quit_now: bool | None) -> None:
            if quit_now:
                self.app.finish(running=self.busy)

        self.app.push_screen(
            QuestionScreen(
                "Quit while a step is running?",
                f"{running!r} is running. If you quit now, the journal keeps everything done so "
                "far, and the step runs again when you open this run again.",
                yes="quit now",
                no="keep running",
            ),
            answer,
        )

    def close_session(self, running: str | None) -> None:
        """Journal the end of the session, release the journal, and stop asking questions."""
        self.closing = True
        if running and self.session is not None:
            # the step's command must not outlive the run (a rerun would race it): end it, free
            # any question the step waits on, and give the step a moment to journal how it ended
            stopped = self.session.runner.effects.stop_commands()
            if self.operator is not None:
                self.operator.close()
            thread = self.thread
            if stopped and thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
        if self.session is not None:
            self.session.close(running)
        if self.operator is not None:
            self.operator.close()
