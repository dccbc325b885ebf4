"""Typed messages that step threads and the journal post to the UI (post_message is thread-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from runbook.tui.session import Session


class JournalAppended(Message):
    """An entry reached the journal (from any thread)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__()
        self.entry = entry


class CommandOutput(Message):
    """A line a running step's command printed (already redacted)."""

    def __init__(self, step_id: str, line: str) -> None:
        super().__init__()
        self.step_id = step_id
        self.line = line


class SessionReady(Message):
    """The playbook is validated and the journal open: steps can run."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


class SessionFailed(Message):
    """The run could not be opened; `lines` say why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines


class StepThreadDone(Message):
    """A step thread ended: the step finished, was declined or skipped, or the thread broke."""

    def __init__(self, step_id: str, *, declined: bool = False, error: str = "") -> None:
        super().__init__()
        self.step_id = step_id
        self.declined = declined
        self.error = error
