"""The players' dialogs in an exercise: an inject (and the decision it asks for), choosing a
role, discussion questions at a phase boundary, a decision of the team's own, the survey."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markdown import Markdown
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from runbook.exercise.model import DecisionSpec, Inject, Role, SurveyQuestion, format_duration
from runbook.termsafe import printable


def _blink(screen: ModalScreen[Any], field: Input) -> None:
    field.cursor_blink = getattr(screen.app, "blink", True)


class InjectScreen(ModalScreen[dict[str, str] | None]):
    """An inject as it reaches the players. With a decision to take, the options are listed
    and the rationale asked; it dismisses with {decision, rationale} (None: no decision)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("enter", "submit", "Close", show=False),
    ]

    def __init__(
        self,
        inject: Inject,
        at: float,
        evidence: list[str],
        *,
        decided: bool = False,
        roles: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.inject = inject
        self.at = at
        self.evidence = evidence
        self.decision: DecisionSpec | None = None if decided else inject.decision
        self.roles = roles or {}

    def compose(self) -> ComposeResult:
        inject = self.inject
        to = ", ".join(self.roles.get(r, r) for r in inject.to)
        with Vertical(classes="dialog inject"):
            yield Static(
                Text.assemble(
                    ("INJECT ", "bold white on dark_magenta"),
                    (f" {format_duration(self.at)}  ", "bold"),
                    (printable(inject.title), "bold"),
                ),
                classes="dialog-title",
                id="inject-title",
            )
            if to:
                yield Static(Text(f"To: {to}", style="dim"))
            with VerticalScroll(id="inject-body"):
                yield Static(Markdown(printable(inject.text, keep_newlines=True)), id="inject-text")
                if self.evidence:
                    yield Static(
                        Text(
                            "Evidence in the world: " + ", ".join(map(printable, self.evidence)),
                            style="dim",
                        ),
                    )
            if self.decision is not None:
                owner = self.roles.get(self.decision.owner or "", self.decision.owner or "")
                title = printable(self.decision.title) + (f"  (owner: {owner})" if owner else "")
                yield Static(Text(f"Decision: {title}", style="bold"), classes="dialog-text")
                yield OptionList(
                    *[Option(printable(o), id=str(n)) for n, o in enumerate(self.decision.options)],
                    id="options",
                )
                yield Input(placeholder="why (the rationale is journaled)", id="rationale")
                yield Static(
                    "up/down: choose   tab: rationale   enter: record the decision   "
                    "esc: decide later",
                    classes="dialog-keys",
                )
            else:
                yield Static("enter / esc: close", classes="dialog-keys")

    def on_mount(self) -> None:
        if self.decision is not None:
            _blink(self, self.query_one("#rationale", Input))
            options = self.query_one("#options", OptionList)
            options.highlighted = 0
            options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#rationale", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        if self.decision is None:
            self.dismiss(None)
            return
        options = self.query_one("#options", OptionList)
        index = options.highlighted
        if index is None:
            self.notify("Choose an option first.", severity="warning")
            return
        rationale = self.query_one("#rationale", Input).value.strip()
        self.dismiss({"decision": self.decision.options[index], "rationale": rationale})

    def action_close(self) -> None:
        self.dismiss(None)


class RoleScreen(ModalScreen[str]):
    """A player picks the role they play; the choice is journaled."""

    def __init__(self, roles: list[Role], name: str) -> None:
        super().__init__()
        self.roles = roles
        self.name_text = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                f"Welcome to the drill, {printable(self.name_text)}", classes="dialog-title"
            )
            yield Static(
                "Which role do you play? (journaled with your name)", classes="dialog-text"
            )
            yield OptionList(
                *[
                    Option(
                        Text.assemble(
                            (printable(r.name), "bold"), ("  " + printable(r.description), "dim")
                        ),
                        id=r.id,
                    )
                    for r in self.roles
                ],
                id="roles",
            )
            yield Static("up/down: choose   enter: join", classes="dialog-keys")

    def on_mount(self) -> None:
        roles = self.query_one("#roles", OptionList)
        roles.highlighted = 0
        roles.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))


class QuestionsScreen(ModalScreen[list[tuple[str, str]] | None]):
    """Several questions, one line of answer each; dismisses with (question, answer) pairs for
    the answered ones, or None (esc: later)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "later", "Later")]

    def __init__(self, title: str, intro: str, questions: list[str], ids: list[str] | None = None):
        super().__init__()
        self.title_text = title
        self.intro = intro
        self.questions = questions
        self.ids = ids or [str(n) for n in range(len(questions))]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog questions"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.intro), classes="dialog-text")
            with VerticalScroll(id="questions"):
                for number, question in enumerate(self.questions):
                    yield Static(Text(printable(question), style="bold"))
                    yield Input(placeholder="answer", id=f"q{number}")
            yield Static(
                "tab: next question   enter on the last: save   esc: later",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        fields = list(self.query(Input))
        for field in fields:
            _blink(self, field)
        if fields:
            fields[0].focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query(Input))
        index = fields.index(event.input)
        if index + 1 < len(fields):
            fields[index + 1].focus()
            return
        answers = [
            (self.ids[n], field.value.strip())
            for n, field in enumerate(fields)
            if field.value.strip()
        ]
        self.dismiss(answers)

    def action_later(self) -> None:
        self.dismiss(None)


class DiscussionScreen(QuestionsScreen):
    """The discussion questions of a phase that just ended."""

    def __init__(self, phase: str, questions: list[str]) -> None:
        super().__init__(
            f"Discussion: the {phase} phase is done",
            "Talk it through as a team, then write down what you agreed. Answers are journaled "
            "and go into the after-action report.",
            questions,
            list(questions),
        )


class SurveyScreen(QuestionsScreen):
    """The lessons-learned survey at the end of the exercise."""

    def __init__(self, questions: list[SurveyQuestion]) -> None:
        super().__init__(
            "Lessons learned",
            "Before you go: a few questions for the after-action report (start an answer with "
            "TODO: to put it in the improvement plan).",
            [q.question + (" (1-5)" if q.kind == "scale" else "") for q in questions],
            [q.id for q in questions],
        )


class DecisionScreen(ModalScreen[dict[str, Any] | None]):
    """A decision of the team's own: what was decided, the options, the rationale."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    FIELDS = (
        ("title", "What was to be decided?"),
        ("options", "The options considered, separated by ';'"),
        ("decision", "What was decided?"),
        ("rationale", "Why?"),
    )

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Record a decision", classes="dialog-title")
            for key, label in self.FIELDS:
                yield Static(label)
                yield Input(id=f"d-{key}")
            yield Static(
                "tab: next   enter on the last: record   esc: cancel", classes="dialog-keys"
            )

    def on_mount(self) -> None:
        for field in self.query(Input):
            _blink(self, field)
        self.query_one("#d-title", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query(Input))
        index = fields.index(event.input)
        if index + 1 < len(fields):
            fields[index + 1].focus()
            return
        values = {key: self.query_one(f"#d-{key}", Input).value.strip() for key, _ in self.FIELDS}
        if not values["title"] or not values["decision"]:
            self.notify("Say what was to be decided and what was decided.", severity="warning")
            return
        options = [o.strip() for o in values["options"].split(";") if o.strip()]
        self.dismiss({**values, "options": options})

    def action_cancel(self) -> None:
        self.dismiss(None)
