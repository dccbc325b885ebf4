"""The runbook app: the start screen or a run, with the quit path that keeps the journal whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from runbook.tui.request import Outline, RunRequest, StartSettings
from runbook.tui.screens.run import RunScreen


@dataclass
class AppResult:
    """How the app ended, for the command line to print and turn into an exit code."""

    outcome: str = ""  # completed | stopped | interrupted, or "" when no run was opened
    journal: Path | None = None
    head: str = ""
    failed: list[str] = field(default_factory=list)
    findings_remain: bool = False
    unchecked: int = 0  # things a step could not check: never a clean ending
    error: list[str] = field(default_factory=list)


class RunbookApp(App[AppResult]):
    """Opens a run (or the start screen first) and ends it with the journal closed properly."""

    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit_request", "Quit", show=False, priority=True),
        Binding("ctrl+q", "quit_request", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        request: RunRequest | None = None,
        outline: Outline | None = None,
        *,
        start: StartSettings | None = None,
        blink: bool = True,
    ) -> None:
        super().__init__()
        if request is None and start is None:
            raise ValueError("give a run request or start settings")
        self.request = request
        self.outline = outline
        self.start = start
        self.blink = blink  # cursor blink; off for stable snapshots

    def get_default_screen(self) -> Screen[Any]:
        """A run is the app's first screen (one screen less to draw before the step list)."""
        if self.request is not None:
            assert self.outline is not None
            return RunScreen(self.request, self.outline)
        return super().get_default_screen()

    def on_mount(self) -> None:
        if self.request is None:
            from runbook.tui.screens.start import StartScreen

            assert self.start is not None
            self.push_screen(StartScreen(self.start))

    def open_run(self, request: RunRequest, outline: Outline) -> None:
        """From the start screen: replace it with the run."""
        self.request, self.outline = request, outline
        self.switch_screen(RunScreen(request, outline))

    @property
    def run_screen(self) -> RunScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, RunScreen)), None)

    def action_quit_request(self) -> None:
        """Ctrl-C / Ctrl-Q: like q, from anywhere (asks first if a step runs)."""
        run = self.run_screen
        if run is None:
            self.exit(AppResult())
        else:
            run.action_quit_run()

    def action_finish(self) -> None:
        self.finish()

    def finish(self, running: str | None = None) -> None:
        """End the session (journaled, resumable) and leave the app."""
        run = self.run_screen
        if run is not None:
            run.close_session(running)
        if run is None or run.session is None:
            self.exit(AppResult())
            return
        session = run.session
        states = session.runner.states()
        self.exit(
            AppResult(
                outcome=session.outcome,
                journal=session.journal.path,
                head=session.journal.head,
                failed=[s.id for s in session.steps if states[s.id].status == "failed"],
                findings_remain=any(st.findings_remain for st in states.values()),
                unchecked=sum(st.unchecked for st in states.values()),
            )
        )

    def fail(self, lines: list[str]) -> None:
        """The run could not be opened: leave, and let the command line print why."""
        self.exit(AppResult(error=lines))
