"""What the app shows about a step, read from the journal (the truth) and the playbook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbook.models import StepSpec
    from runbook.runstate import StepState


@dataclass
class StepView:
    """One step as the main pane draws it."""

    number: int
    total: int
    spec: StepSpec
    state: StepState
    plan: dict[str, Any] | None = None  # the data of the latest `step_planned` entry
    entries: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""  # as shown: "interrupted" for a step the journal left running

    def __post_init__(self) -> None:
        self.status = self.status or self.state.status

    @property
    def findings(self) -> list[dict[str, Any]]:
        return (self.plan or {}).get("findings", [])

    @property
    def actions(self) -> list[dict[str, Any]]:
        return (self.plan or {}).get("actions", [])

    @property
    def notes(self) -> list[str]:
        return (self.plan or {}).get("notes", [])

    @property
    def conditions(self) -> str:
        from runbook.runstate import describe

        return "; ".join(describe(c) for c in self.spec.when or [])


def step_entries(entries: list[dict[str, Any]], step_id: str) -> list[dict[str, Any]]:
    """Every journal entry about one step, oldest first."""
    return [e for e in entries if (e.get("data") or {}).get("step") == step_id]


def latest_plan(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The data of the newest `step_planned` among a step's entries."""
    for entry in reversed(entries):
        if entry["event"] == "step_planned":
            return entry["data"]
    return None


def effects_since_start(entries: list[dict[str, Any]]) -> int:
    """Effects and checklist answers journaled since the step last started (for progress)."""
    count = 0
    for entry in reversed(entries):
        if entry["event"] == "step_started":
            break
        if entry["event"] in ("effect", "manual_item"):
            data = entry.get("data") or {}
            if data.get("op") not in ("allow_roots", "allow_files"):
                count += 1
    return count
