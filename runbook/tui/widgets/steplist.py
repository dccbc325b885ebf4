"""The step list: status icon, title and duration of every step, in playbook order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from runbook.tui.render import ICONS, duration_text


@dataclass
class Row:
    number: int
    step_id: str
    title: str
    status: str = "pending"
    duration: float | None = None

    def prompt(self, width: int) -> Content:
        """One line exactly `width` cells wide: icon, number and title, duration on the right.

        Plain Content cut to the width (not a Rich table): the list is in the app's first frame.
        """
        icon, style = ICONS.get(self.status, ("·", "dim"))
        took = f" {duration_text(self.duration)}" if self.duration is not None else ""
        head = f"{self.number:>2} {self.title}"
        room = max(4, width - 2 - len(took))
        if len(head) > room:
            head = head[: room - 1] + "…"
        return Content.assemble(
            (f"{icon} ", style),
            (head.ljust(room), "dim" if self.status == "skipped" else ""),
            (took, "dim"),
        )


class StepList(OptionList):
    """Up/down and j/k move; enter plans and runs the highlighted step."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.run_step", "Run step"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows: dict[str, Row] = {}

    def _width(self) -> int:
        width = self.scrollable_content_region.width
        if not width:  # before the first layout: what the stylesheet will give it
            width = min(52, max(30, int(self.app.size.width * 0.32))) - 1
        return width - 1

    def set_steps(self, steps: list[tuple[str, str]]) -> None:
        self.rows = {sid: Row(n, sid, title) for n, (sid, title) in enumerate(steps, start=1)}
        width = self._width()
        self.clear_options()
        self.add_options(Option(row.prompt(width), id=row.step_id) for row in self.rows.values())
        if steps:
            self.highlighted = 0

    def show_state(self, step_id: str, title: str, status: str, duration: float | None) -> None:
        row = self.rows[step_id]
        row.title, row.status, row.duration = title, status, duration
        self.replace_option_prompt(step_id, row.prompt(self._width()))

    def on_resize(self, event: events.Resize) -> None:
        width = self._width()
        for row in self.rows.values():
            self.replace_option_prompt(row.step_id, row.prompt(width))

    @property
    def selected_id(self) -> str | None:
        option = self.highlighted_option
        return option.id if option else None

    def select_id(self, step_id: str) -> None:
        self.highlighted = self.get_option_index(step_id)
