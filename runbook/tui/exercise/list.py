"""The injects that reached the team so far, to read one again."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from runbook.exercise.model import format_duration
from runbook.termsafe import printable


class InjectListScreen(ModalScreen[int | None]):
    """Dismisses with the seq of the chosen `inject_fired` entry, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, fired: list[dict[str, Any]]) -> None:
        super().__init__()
        self.fired = fired

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Injects so far", classes="dialog-title")
            yield OptionList(
                *[
                    Option(
                        Text.assemble(
                            (format_duration(float(e["data"].get("exercise_time") or 0)), "bold"),
                            "  ",
                            printable(e["data"].get("title", e["data"].get("inject", ""))),
                        ),
                        id=str(e["seq"]),
                    )
                    for e in self.fired
                ],
                id="fired",
            )
            yield Static("enter: read it again   esc: close", classes="dialog-keys")

    def on_mount(self) -> None:
        fired = self.query_one("#fired", OptionList)
        fired.highlighted = len(self.fired) - 1
        fired.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(str(event.option.id)))

    def action_close(self) -> None:
        self.dismiss(None)
