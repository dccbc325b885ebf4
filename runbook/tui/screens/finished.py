"""Shown once every step is finished: how the run went and what to keep."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from runbook.tui.render import ICONS, Paths

if TYPE_CHECKING:
    from runbook.tui.session import Session


class FinishedScreen(ModalScreen[None]):
    """The run's outcome; q ends the session, esc goes back to the steps."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.finish", "End the run"),
        Binding("escape", "dismiss", "Back to the steps"),
        Binding("a", "audit", "Audit log"),
    ]

    def __init__(self, session: Session, paths: Paths) -> None:
        super().__init__()
        self.session = session
        self.paths = paths

    def _summary(self) -> Table:
        states = self.session.runner.states()
        steps = self.session.steps
        counts = Counter(states[s.id].status for s in steps)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        tally = Text()
        for status in ("succeeded", "outstanding", "skipped", "failed"):
            if counts[status]:
                icon, style = ICONS[status]
                tally.append(f"{icon} {counts[status]} {status}   ", style=style)
        grid.add_row("Steps", tally)
        left_open = [s.id for s in steps if states[s.id].status == "outstanding"]
        if left_open:
            grid.add_row("Items left open", Text(", ".join(left_open), style="yellow"))
        failed = [s.id for s in steps if states[s.id].status == "failed"]
        if failed:
            grid.add_row("Failed", Text(", ".join(failed), style="bold red"))
        if any(states[s.id].findings_remain for s in steps):
            grid.add_row("Findings", Text("traces of the incident remain", style="bold red"))
        journal = self.session.journal
        grid.add_row("Journal", self.paths.place(journal.path))
        grid.add_row("Entries", f"{len(journal.entries)} so far, head {journal.head[:16]}…")
        grid.add_row("Report", f"runbook report {self.paths.place(journal.path)}")
        grid.add_row("Verify", f"runbook audit verify {self.paths.place(journal.path)}")
        return grid

    def compose(self) -> ComposeResult:
        mode = self.session.request.mode
        rehearsal = {"live": "", "exercise": " (inside the simulated world)"}.get(
            mode, " (nothing was changed)"
        )
        with Vertical(classes="dialog finished"):
            yield Static(f"The run is finished{rehearsal}", classes="dialog-title")
            yield Static(self._summary())
            states = self.session.runner.states()
            left_open = any(st.status == "outstanding" for st in states.values())
            yield Static(
                ("Items left open stay in the report as outstanding. " if left_open else "")
                + "The journal records every answer, note and change; the head hash printed "
                "when you end the run proves it is whole.",
                classes="dialog-text",
            )
            yield Static(
                "q: end the run   a: audit log   esc: back to the steps", classes="dialog-keys"
            )

    def action_audit(self) -> None:
        from runbook.tui.screens.audit import AuditScreen

        self.app.push_screen(AuditScreen(self.session, self.paths))
