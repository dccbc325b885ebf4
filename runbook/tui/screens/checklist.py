"""One checklist item of a manual step: done, declined, or later (never assumed done)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from runbook.models import StepSpec

MARKS = {"done": ("✔", "green"), "declined": ("✘", "red"), "outstanding": ("◐", "yellow")}


class ChecklistScreen(ModalScreen[str]):
    """Asks about `current` while showing every item of the step and the answers so far.

    Dismisses with "done", "declined", "outstanding", or "rest" (this and the remaining items
    later).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('done')", "Done"),
        Binding("n", "answer('declined')", "Declined"),
        Binding("l", "answer('outstanding')", "Later"),
        Binding("escape", "answer('rest')", "Rest later"),
    ]

    def __init__(
        self,
        step: StepSpec,
        items: Sequence[Sequence[str]],
        current: str,
        answers: dict[str, str],
    ) -> None:
        super().__init__()
        self.step = step
        self.items = [(str(i), str(t)) for i, t in items]
        self.current = current
        self.answers = answers

    def _progress(self) -> Text:
        text = Text()
        for number, (item_id, _) in enumerate(self.items, start=1):
            if item_id == self.current:
                text.append(f"▶{number} ", style="bold")
                continue
            mark, style = MARKS.get(self.answers.get(item_id, ""), ("☐", "dim"))
            text.append(f"{mark}{number} ", style=style)
        return text

    def compose(self) -> ComposeResult:
        number = next((n for n, (i, _) in enumerate(self.items, 1) if i == self.current), 1)
        text = dict(self.items).get(self.current, "")
        with Vertical(classes="dialog checklist"):
            yield Static(
                Text.assemble(
                    (f"Checklist of {self.step.id!r}, item {number} of {len(self.items)}", "bold"),
                    "   ",
                    self._progress(),
                )
            )
            yield Static(Text(text, style="bold"), id="checklist-item")
            yield Static(
                "y: done   n: declined   l: later   esc: the rest later\n"
                "[dim]Nothing is assumed done: your answer is journaled. What to do is in the "
                "step's description above.[/dim]",
                classes="dialog-keys",
            )

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
