"""Where a run stands, derived from its journal alone (so a crash resumes at the right step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from runbook.models import Condition, StepSpec

Status = Literal["pending", "running", "succeeded", "failed", "skipped", "outstanding"]
SEVERITY_RANK = {"compromised": 0, "at-risk": 1, "unknown": 2, "info": 3}


@dataclass
class StepState:
    status: Status = "pending"
    findings: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    attempts: int = 0
    duration: float | None = None
    findings_remain: bool = False
    # how many things the step could not check: any step kind reports it as `unchecked` (an int)
    # in its result data; a run that completes with some ends "could not check everything"
    unchecked: int = 0

    def finished(self, spec: StepSpec) -> bool:
        """Finished steps are never run again on resume."""
        if self.status == "failed":
            return spec.continue_on_error
        return self.status in ("succeeded", "skipped", "outstanding")


def derive(entries: list[dict[str, Any]], steps: list[StepSpec]) -> dict[str, StepState]:
    """Replay journal entries into one `StepState` per step id."""
    states = {step.id: StepState() for step in steps}
    for entry in entries:
        apply_entry(states, entry)
    return states


def apply_entry(states: dict[str, StepState], entry: dict[str, Any]) -> None:
    """Move `states` on by one journal entry (what `derive` does for each, in order)."""
    data = entry.get("data") or {}
    state = states.get(data.get("step", ""))
    if state is None:
        return
    event = entry["event"]
    if event == "step_planned":
        state.findings = data.get("findings", [])
    elif event == "step_started":
        state.status = "running"
        state.attempts += 1
    elif event == "step_finished":
        state.status = data["outcome"]
        state.summary = data.get("summary", "")
        state.duration = data.get("duration")
        state.findings_remain = bool(data.get("findings_remain"))
        result = data.get("result")
        count = result.get("unchecked") if isinstance(result, dict) else None
        state.unchecked = count if isinstance(count, int) and count > 0 else 0
    elif event == "step_skipped":
        state.status = "skipped"
        state.summary = data.get("reason", "")
    elif event == "step_reset":
        states[data["step"]] = StepState(attempts=state.attempts)


def condition_holds(condition: Condition, state: StepState) -> bool:
    if condition.outcome is not None and state.status not in condition.outcome:
        return False
    if condition.findings is None:
        return True
    if condition.findings == "any":
        return bool(state.findings)
    if condition.findings == "none":
        return not state.findings
    return any(f.get("severity") in condition.findings for f in state.findings)


def describe(condition: Condition) -> str:
    parts = []
    if condition.outcome is not None:
        parts.append(f"outcome in {'/'.join(condition.outcome)}")
    if condition.findings is not None:
        wanted = condition.findings
        parts.append(
            f"findings {wanted}"
            if isinstance(wanted, str)
            else f"findings of severity {'/'.join(wanted)}"
        )
    return f"{condition.step}: " + " and ".join(parts)


def last_run_outcome(entries: list[dict[str, Any]]) -> str | None:
    """Outcome of the latest `run_finished`, or None when the run never finished (a crash)."""
    for entry in reversed(entries):
        if entry["event"] == "run_finished":
            return entry["data"].get("outcome")
        if entry["event"] in ("run_started", "run_resumed"):
            return None
    return None
