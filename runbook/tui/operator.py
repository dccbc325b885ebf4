"""The operator behind the app: the runner asks from a step thread, a modal screen answers.

The step thread pushes the modal through `App.call_from_thread` and waits on a Future that the
modal's dismissal resolves. Closing the operator (the person quit) fails every pending question
with OperatorGone, so no thread waits forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from runbook.models import StepSpec
from runbook.operator import Confirmation, ItemAnswer, Operator
from runbook.step import Plan
from runbook.tui.render import Paths

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen


class OperatorGone(Exception):
    """Nobody will answer any more: the app is closing."""


class TuiOperator(Operator):
    """Answers the runner's questions with modal screens."""

    interactive = True

    def __init__(
        self, app: App[Any], name: str, mode: str, redact: Callable[[Any], Any], paths: Paths
    ) -> None:
        self.app = app
        self.name = name
        self.mode = mode
        self.redact = redact
        self.paths = paths
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._answers: dict[str, dict[str, str]] = {}
        self._rest_later: set[str] = set()
        self.plans: dict[str, Plan] = {}

    def start_step(self, step_id: str, plan: Plan) -> None:
        """Called before a step applies: checklists show its items, answers start afresh."""
        self.plans[step_id] = plan
        self._answers[step_id] = {}
        self._rest_later.discard(step_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, set()
        for future in pending:
            if not future.done():
                future.set_exception(OperatorGone("the app was closed"))

    def _ask(self, make_screen: Callable[[], Screen[Any]]) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise OperatorGone("the app was closed")
            self._pending.add(future)

        def answered(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        try:
            self.app.call_from_thread(lambda: self.app.push_screen(make_screen(), answered))
            return future.result()
        except RuntimeError as exc:  # the app stopped running
            raise OperatorGone(str(exc)) from None
        finally:
            with self._lock:
                self._pending.discard(future)

    # -- Operator --------------------------------------------------------------------------------
    def confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        from runbook.tui.screens.confirm import ConfirmScreen

        actions = self.redact([a.model_dump() for a in plan.actions])
        notes = self.redact(list(plan.notes))
        answer, reason = self._ask(
            lambda: ConfirmScreen(step, actions, notes, typed, self.mode, self.paths)
        )
        return Confirmation(answer, self.name, reason)

    def checklist(self, step: StepSpec, item_id: str, text: str) -> ItemAnswer:
        from runbook.tui.screens.checklist import ChecklistScreen

        answers = self._answers.setdefault(step.id, {})
        if step.id in self._rest_later:
            answers[item_id] = "outstanding"
            return "outstanding"
        plan = self.plans.get(step.id)
        items = [
            (str(a.detail.get("item", "")), a.summary)
            for a in (plan.actions if plan else [])
            if a.kind == "manual"
        ] or [(item_id, text)]
        if item_id not in dict(items):
            items.append((item_id, text))
        shown = self.redact(items)
        answer = self._ask(lambda: ChecklistScreen(step, shown, item_id, dict(answers)))
        if answer == "rest":
            self._rest_later.add(step.id)
            answer = "outstanding"
        answers[item_id] = answer
        return answer

    def secret(self, step: StepSpec, prompt: str) -> str | None:
        from runbook.tui.screens.prompt import SecretScreen

        return self._ask(lambda: SecretScreen(step.title, prompt))
