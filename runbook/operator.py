"""The person (or the absence of one) answering the runner's questions."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, TextIO

from runbook.models import StepSpec
from runbook.step import Plan

Answer = Literal["yes", "no", "skip"]
ItemAnswer = Literal["done", "declined", "outstanding"]


@dataclass(frozen=True)
class Confirmation:
    """An operator's answer to "apply this plan?"."""

    answer: Answer
    by: str
    reason: str = ""


class ConfirmationRequired(Exception):
    """Nobody can answer a confirmation (no terminal and no --yes)."""


class Operator(ABC):
    """Answers confirmations and checklist items. Implemented by the console, the TUI and tests."""

    name: str
    interactive: bool

    @abstractmethod
    def confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        """Ask whether to apply `plan`. With `typed`, the step id must be typed to agree."""

    @abstractmethod
    def checklist(self, step: StepSpec, item_id: str, text: str) -> ItemAnswer:
        """Ask whether a manual checklist item was done."""

    def secret(self, step: StepSpec, prompt: str) -> str | None:
        """Ask for a secret (a registry password, say) without echoing it; None when nobody can."""
        return None


class HeadlessOperator(Operator):
    """No person present: `--yes` answers confirmations; checklist items stay outstanding."""

    interactive = False

    def __init__(self, name: str, assume_yes: bool = False) -> None:
        self.name = name
        self.assume_yes = assume_yes

    def confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        if self.assume_yes:
            return Confirmation("yes", f"{self.name} (--yes)")
        raise ConfirmationRequired(
            f"step '{step.id}' needs confirmation and there is no terminal to ask: "
            "rerun from a terminal, or with --yes to confirm every step"
        )

    def checklist(self, step: StepSpec, item_id: str, text: str) -> ItemAnswer:
        return "outstanding"


class ConsoleOperator(Operator):
    """A person at a plain terminal, asked line by line."""

    interactive = True

    def __init__(
        self,
        name: str,
        assume_yes: bool = False,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.name = name
        self.assume_yes = assume_yes
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stderr

    def _ask(self, prompt: str) -> str:
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError("input closed")
        return line.strip()

    def confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        if self.assume_yes and not typed:
            return Confirmation("yes", f"{self.name} (--yes)")
        try:
            return self._confirm(step, plan, typed=typed)
        except EOFError:
            raise ConfirmationRequired(
                f"step '{step.id}' needs confirmation and the terminal's input was closed"
            ) from None

    def _confirm(self, step: StepSpec, plan: Plan, *, typed: bool) -> Confirmation:
        out = self.stdout
        out.write(f"\n== {step.title} [{step.id}]\n")
        for action in plan.actions:
            mark = "!" if action.destructive else "-"
            out.write(f"  {mark} {action.summary}\n")
        while True:
            if typed:
                reply = self._ask(f"Type '{step.id}' to apply, 'no' to stop, 'skip' to skip: ")
                if reply == step.id:
                    return Confirmation("yes", self.name)
            else:
                reply = self._ask("Apply? [y]es / [n]o / [s]kip: ").lower()
                if reply in ("y", "yes"):
                    return Confirmation("yes", self.name)
            if reply.lower() in ("n", "no"):
                return Confirmation("no", self.name)
            if reply.lower() in ("s", "skip"):
                reason = ""
                while not reason:
                    reason = self._ask("Reason for skipping: ")
                return Confirmation("skip", self.name, reason)

    def secret(self, step: StepSpec, prompt: str) -> str | None:
        import getpass

        if self.stdin is not sys.stdin or not sys.stdin.isatty():
            try:
                return self._ask(f"{prompt}: ") or None
            except EOFError:
                return None
        try:
            return getpass.getpass(f"{prompt}: ", stream=self.stdout) or None
        except (EOFError, OSError):
            return None

    def checklist(self, step: StepSpec, item_id: str, text: str) -> ItemAnswer:
        prompt = f"  [ ] {text}\n      done? [y]es / [n]o (declined) / [l]ater: "
        while True:
            try:
                reply = self._ask(prompt).lower()
            except EOFError:
                return "outstanding"
            if reply in ("y", "yes"):
                return "done"
            if reply in ("n", "no"):
                return "declined"
            if reply in ("l", "later", ""):
                return "outstanding"
