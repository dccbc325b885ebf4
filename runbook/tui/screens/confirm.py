"""The confirmation modal: exactly what the step will do, then yes, no, or skip with a reason.

Steps marked `confirm: always` whose plan destroys something need the step id typed in.
The answer goes back to the runner, which journals it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from runbook.models import StepSpec
from runbook.tui.render import MODE_BANNER, Paths, plan_counts, plan_renderable
from runbook.tui.screens.prompt import TextPromptScreen

Answer = tuple[str, str]  # ("yes" | "no" | "skip", reason)


class ConfirmScreen(ModalScreen[Answer]):
    """Shows a plan and asks whether to apply it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('yes')", "Apply"),
        Binding("n", "answer('no')", "Do not apply"),
        Binding("s", "skip", "Skip"),
        Binding("escape", "answer('no')", "Do not apply", show=False),
        Binding("up", "scroll_plan(-1, False)", show=False),
        Binding("down", "scroll_plan(1, False)", show=False),
        Binding("pageup", "scroll_plan(-1, True)", show=False),
        Binding("pagedown", "scroll_plan(1, True)", show=False),
    ]

    def __init__(
        self,
        step: StepSpec,
        actions: list[dict[str, Any]],
        notes: list[str],
        typed: bool,
        mode: str,
        paths: Paths,
    ) -> None:
        super().__init__()
        self.step = step
        self.actions = actions
        self.notes = notes
        self.typed = typed
        self.mode = mode
        self.paths = paths

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Static(
                Text(f"Apply step {self.step.id!r}? {self.step.title}"), id="confirm-title"
            )
            yield Static(
                Text.assemble(
                    (
                        MODE_BANNER.get(self.mode, self.mode),
                        "bold red" if self.mode == "live" else "",
                    ),
                    ". Your answer is journaled.\n",
                    (plan_counts(self.actions), "bold"),
                ),
                id="counts",
            )
            with VerticalScroll(id="confirm-plan"):
                yield Static(plan_renderable(self.actions, self.notes, self.paths))
            if self.typed:
                yield Static(
                    f"This step is marked [b]confirm: always[/b] and destroys something. "
                    f"Type [b]{self.step.id}[/b] and press enter to apply it.",
                    classes="dialog-text",
                )
                yield Input(placeholder=self.step.id, id="typed")
                yield Static("enter: apply   esc: do not apply   ↑↓: scroll", classes="dialog-keys")
            else:
                yield Static(
                    "y: apply   n: do not apply   s: skip (asks why)   ↑↓: scroll",
                    classes="dialog-keys",
                )

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)
        if self.typed:
            typed = self.query_one("#typed", Input)
            typed.cursor_blink = getattr(self.app, "blink", True)
            typed.focus()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        # the keys must stay on screen: the plan gets the height the rest of the dialog leaves
        dialog = self.query_one(".dialog")
        plan = self.query_one("#confirm-plan", VerticalScroll)
        others = sum(w.outer_size.height for w in dialog.children if w is not plan)
        chrome = dialog.outer_size.height - dialog.size.height
        plan.styles.max_height = max(3, int(self.size.height * 0.9) - others - chrome)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # with the step id to type, y / n / s are letters of the answer, not answers
        return not (self.typed and action in ("answer", "skip") and parameters != ("no",))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip() == self.step.id:
            self.dismiss(("yes", ""))
        else:
            self.notify(
                f"That is not {self.step.id!r}. Type it exactly, or press esc.", severity="warning"
            )

    def action_scroll_plan(self, direction: int, page: bool) -> None:
        plan = self.query_one("#confirm-plan", VerticalScroll)
        if page:
            (plan.scroll_page_down if direction > 0 else plan.scroll_page_up)(animate=False)
        else:
            plan.scroll_relative(y=direction, animate=False)

    def action_answer(self, answer: str) -> None:
        self.dismiss((answer, ""))

    def action_skip(self) -> None:
        def skipped(reason: str | None) -> None:
            if reason:
                self.dismiss(("skip", reason))

        self.app.push_screen(
            TextPromptScreen(
                f"Skip step {self.step.id!r}",
                "Why is this step skipped? The reason is journaled.",
                "reason",
            ),
            skipped,
        )
