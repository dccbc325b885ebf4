"""Small modal prompts: a line of text (a note, a reason to skip), a secret, a yes/no question."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class TextPromptScreen(ModalScreen[str | None]):
    """Asks for one line of text; Enter with something typed answers, Escape cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, question: str, placeholder: str = "", *, password: bool = False):
        super().__init__()
        self.title_text = title
        self.question = question
        self.placeholder = placeholder
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(self.question, classes="dialog-text")
            yield Input(placeholder=self.placeholder, password=self.password, id="answer")
            yield Static("enter: save   esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        answer = self.query_one("#answer", Input)
        answer.cursor_blink = getattr(self.app, "blink", True)
        answer.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value if self.password else event.value.strip()
        if value:
            self.dismiss(value)
        else:
            self.notify("Type something first, or press esc to cancel.", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)


class SecretScreen(TextPromptScreen):
    """A password prompt for a step: what is typed is masked and never journaled."""

    def __init__(self, step_title: str, prompt: str) -> None:
        super().__init__(
            f"Secret for: {step_title}",
            f"{escape(prompt)}\n[dim]Typed characters are hidden; the value is never written to "
            "the journal or shown.[/dim]",
            "secret",
            password=True,
        )


class QuestionScreen(ModalScreen[bool]):
    """A yes/no question (quit while a step runs, say): y answers yes, n or Escape no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, question: str, yes: str = "yes", no: str = "no") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.keys = f"y: {yes}   n: {no}"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.question), classes="dialog-text")
            yield Static(self.keys, classes="dialog-keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
