"""Runs a playbook's steps in order: plan, confirm by policy, apply, journal every move.

The headless CLI calls `run_all`; the TUI drives the same methods one step at a time.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import __version__
from runbook.effects import EffectError, Effects
from runbook.journal import Journal
from runbook.models import StepSpec
from runbook.operator import Confirmation, ConfirmationRequired, Operator
from runbook.playbook import LoadedPlaybook
from runbook.redact import Redactor
from runbook.registry import Registry, default_registry
from runbook.runs import run_dir
from runbook.runstate import StepState, condition_holds, derive, describe
from runbook.step import Plan, StalePlanError, StepContext, StepError, StepKind, StepResult


def operator_name(env: Mapping[str, str]) -> str:
    name = env.get("RUNBOOK_OPERATOR") or env.get("USER") or env.get("LOGNAME")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return name


@dataclass
class RunSummary:
    """How an invocation of the runner ended."""

    outcome: str  # completed | failed | stopped | interrupted
    head: str
    journal: Path
    reason: str = ""
    failed: list[str] = field(default_factory=list)
    outstanding: list[str] = field(default_factory=list)
    findings_remain: bool = False
    needs_confirmation: bool = False
    unchecked: int = 0  # things the steps could not check (`StepState.unchecked`, summed)


class RunStopped(Exception):
    """The run cannot go on without a person (declined, or nobody to ask)."""


Listener = Callable[[StepSpec, StepState], None]


class Runner:
    """Drives one run of one playbook on one target, with the journal as its memory."""

    def __init__(
        self,
        loaded: LoadedPlaybook,
        target: Path,
        journal: Journal,
        operator: Operator,
        *,
        dry_run: bool,
        redactor: Redactor,
        env: Mapping[str, str] | None = None,
        registry: Registry | None = None,
        listener: Listener | None = None,
        options: Mapping[str, Any] | None = None,
        output: Callable[[str, str], None] | None = None,
        mode: str | None = None,
        roots: Sequence[Path] | None = None,
        protected: Sequence[Path] = (),
    ) -> None:
        """`mode` names the run in the journal (default: live or dry-run); `roots` are where
        effects may act (default: the target) and `protected` what they never remove (an
        exercise confines both to its sandbox)."""
        self.loaded = loaded
        self.playbook = loaded.playbook
        self.target = Path(os.path.realpath(target))
        self.journal = journal
        self.operator = operator
        self.dry_run = dry_run
        self.redactor = redactor
        self.env = dict(os.environ if env is None else env)
        self.registry = registry or default_registry()
        self.listener = listener
        self.options = dict(options or {})
        self._mode = mode
        self.effects = Effects(
            dry_run=dry_run,
            roots=list(roots) if roots else [self.target],
            protected=protected,
            backup_dir=run_dir(journal.path) / "backups",
            record=self.record,
            redactor=redactor,
            output=(lambda line: output(self._current_step or "", line)) if output else None,
        )
        self._kinds: dict[str, StepKind] = {}
        self._current_step: str | None = None
        self._preflight: dict[str, str] | None = None

    # -- journal and state -------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode or ("dry-run" if self.dry_run else "live")

    def record(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        if self._current_step and "step" not in data:
            data = {"step": self._current_step, **data}
        return self.journal.append(event, data)

    def states(self) -> dict[str, StepState]:
        return derive(self.journal.entries, self.playbook.steps)

    def begin(self) -> None:
        """Journal the start of the run, or its resumption when the journal already has one."""
        info = {
            "playbook": {
                "id": self.playbook.id,
                "title": self.playbook.title,
                "version": self.playbook.version,
                "path": str(self.loaded.path),
                "sha256": self.loaded.sha256,
            },
            "target": str(self.target),
            "mode": self.mode,
            "operator": self.operator.name,
            "host": socket.gethostname(),
            "tool_version": __version__,
            "python": platform.python_version(),
            "platform": sys.platform,
        }
        if any(e["event"] == "run_started" for e in self.journal.entries):
            done = [s.id for s in self.playbook.steps if self.states()[s.id].finished(s)]
            self.record("run_resumed", {**info, "finished_steps": done})
        else:
            self.record("run_started", info)

    def preflight(self, *, record: bool = False) -> list[str]:
        """Problems the playbook's step kinds foresee for this live run (journaled with
        `record`, once the run has begun); a dry run foresees none."""
        if self.dry_run:
            return []
        if self._preflight is None:  # asked once: the checks may load a keyring backend
            self._preflight = {}
            for name in dict.fromkeys(step.uses for step in self.playbook.steps):
                problem = self.registry.get(name).preflight(self.env, self.options)
                if problem:
                    self._preflight[name] = problem
        if record:
            for name, problem in self._preflight.items():
                self.record("preflight_warning", {"uses": name, "warning": problem})
        return list(self._preflight.values())

    def finish(self, outcome: str, reason: str = "") -> str:
        states = self.states()
        self.record(
            "run_finished",
            {
                "outcome": outcome,
                "reason": reason,
                "steps": {sid: st.status for sid, st in states.items()},
            },
        )
        return self.journal.head

    def note(self, text: str) -> None:
        self.record("note", {"text": text, "by": self.operator.name})

    # -- one step ----------------------------------------------------------------------------
    def kind(self, step: StepSpec) -> StepKind:
        if step.id not in self._kinds:
            cls = self.registry.get(step.uses)
            self._kinds[step.id] = cls(self.loaded.params[step.id])
        return self._kinds[step.id]

    def context(self, step: StepSpec) -> StepContext:
        return StepContext(
            playbook=self.playbook,
            step=step,
            target=self.target,
            effects=self.effects,
            operator=self.operator,
            env=self.env,
            dry_run=self.dry_run,
            record=self.record,
            journal_entries=lambda: self.journal.entries,
            journal_head=lambda: self.journal.head,
            options=self.options,
        )

    def blocked_by(self, step: StepSpec) -> str | None:
        """Why `when` does not hold, or None when the step should run."""
        states = self.states()
        for condition in step.when or []:
            if not condition_holds(condition, states[condition.step]):
                return f"condition not met ({describe(condition)})"
        return None

    def plan(self, step: StepSpec) -> Plan:
        """Observe and journal what the step would do. Raises StepError on failure."""
        self._current_step = step.id
        try:
            plan = self.kind(step).plan(self.context(step))
        finally:
            self._current_step = None
        self.record(
            "step_planned",
            {
                "step": step.id,
                "uses": step.uses,
                "findings": [f.model_dump(exclude_none=True) for f in plan.findings],
                "actions": [a.model_dump() for a in plan.actions],
                "fingerprint": plan.fingerprint,
                "destructive": plan.destructive,
                "notes": plan.notes,
            },
        )
        return plan

    def needs_confirmation(self, step: StepSpec, plan: Plan) -> bool:
        return step.confirm == "always" or (step.confirm == "destructive" and plan.destructive)

    def confirm(self, step: StepSpec, plan: Plan) -> Confirmation:
        """Ask the operator according to policy; every answer is journaled."""
        typed = step.confirm == "always" and plan.destructive
        try:
            answer = self.operator.confirm(step, plan, typed=typed)
        except ConfirmationRequired:
            if not self.dry_run:
                raise
            answer = Confirmation("yes", "dry run (nothing is changed)")
        self.record(
            "step_confirmed",
            {
                "step": step.id,
                "answer": answer.answer,
                "by": answer.by,
                "reason": answer.reason,
                "typed": typed,
            },
        )
        return answer

    def skip(self, step: StepSpec, reason: str, by: str | None = None) -> None:
        self.record(
            "step_skipped", {"step": step.id, "reason": reason, "by": by or self.operator.name}
        )
        self._notify(step)

    def execute(self, step: StepSpec, plan: Plan) -> StepState:
        """Apply a confirmed plan after re-checking its fingerprint; journal the outcome."""
        kind, ctx = self.kind(step), self.context(step)
        self._current_step = step.id
        self.record("step_started", {"step": step.id, "fingerprint": plan.fingerprint})
        started = time.monotonic()
        try:
            current = kind.current_fingerprint(ctx, plan)
            if current != plan.fingerprint:
                raise StalePlanError(
                    "what this step planned against changed since it was planned; "
                    "plan it again (retry) and review the new plan"
                )
            result = kind.apply(ctx, plan)
        except (StepError, EffectError) as exc:
            result = StepResult("failed", self.redactor.text(str(exc)))
        except Exception as exc:  # a bug or an unexpected environment: fail the step, keep going
            result = StepResult("failed", self.redactor.text(f"{type(exc).__name__}: {exc}"))
        finally:
            self._current_step = None
        self.record(
            "step_finished",
            {
                "step": step.id,
                "outcome": result.outcome,
                "summary": result.summary,
                "duration": round(time.monotonic() - started, 3),
                "findings_remain": result.findings_remain,
                **({"result": result.data} if result.data else {}),
            },
        )
        self._notify(step)
        return self.states()[step.id]

    def fail_planning(self, step: StepSpec, exc: Exception) -> StepState:
        message = (
            str(exc) if isinstance(exc, StepError | EffectError) else f"{type(exc).__name__}: {exc}"
        )
        self.record("step_started", {"step": step.id, "fingerprint": None})
        self.record(
            "step_finished",
            {
                "step": step.id,
                "outcome": "failed",
                "summary": f"planning failed: {self.redactor.text(message)}",
                "duration": 0,
            },
        )
        self._notify(step)
        return self.states()[step.id]

    def _notify(self, step: StepSpec) -> None:
        if self.listener:
            self.listener(step, self.states()[step.id])

    # -- the whole run -----------------------------------------------------------------------
    def reset_from(self, step_id: str) -> None:
        """`--from`: steps before `step_id` that never ran are skipped; it and later ones rerun."""
        ids = [s.id for s in self.playbook.steps]
        start = ids.index(step_id)
        states = self.states()
        for step in self.playbook.steps[:start]:
            if not states[step.id].finished(step):
                self.skip(step, f"run started at '{step_id}' (--from)")
        for step in self.playbook.steps[start:]:
            if states[step.id].status != "pending":
                self.record("step_reset", {"step": step.id, "reason": f"--from {step_id}"})

    def step_one(self, step: StepSpec) -> StepState:
        """Run one step through its whole life: condition, plan, confirmation, apply."""
        blocked = self.blocked_by(step)
        if blocked:
            self.skip(step, blocked, by="when")
            return self.states()[step.id]
        try:
            plan = self.plan(step)
        except Exception as exc:
            return self.fail_planning(step, exc)
        if self.needs_confirmation(step, plan):
            answer = self.confirm(step, plan)
            if answer.answer == "skip":
                self.skip(step, answer.reason, by=answer.by)
                return self.states()[step.id]
            if answer.answer == "no":
                raise RunStopped(f"{answer.by} declined step '{step.id}'")
        return self.execute(step, plan)

    def run_all(
        self, *, from_step: str | None = None, skips: Mapping[str, str] | None = None
    ) -> RunSummary:
        """Run every unfinished step in order. KeyboardInterrupt is journaled, then re-raised."""
        self.begin()
        self.preflight(record=True)
        if from_step:
            self.reset_from(from_step)
        skips = dict(skips or {})
        outcome, reason, needs_confirmation = "completed", "", False
        try:
            for step in self.playbook.steps:
                state = self.states()[step.id]
                if state.finished(step):
                    continue
                if step.id in skips:
                    self.skip(step, skips[step.id])
                    continue
                state = self.step_one(step)
                if state.status == "failed" and not step.continue_on_error:
                    outcome, reason = "failed", f"step '{step.id}' failed: {state.summary}"
                    break
        except RunStopped as exc:
            outcome, reason = "stopped", str(exc)
        except ConfirmationRequired as exc:
            outcome, reason, needs_confirmation = "stopped", str(exc), True
        except KeyboardInterrupt:
            self.finish("interrupted", "interrupted by the operator (Ctrl-C)")
            raise
        head = self.finish(outcome, reason)
        states = self.states()
        return RunSummary(
            outcome=outcome,
            head=head,
            journal=self.journal.path,
            reason=reason,
            failed=[sid for sid, st in states.items() if st.status == "failed"],
            outstanding=[sid for sid, st in states.items() if st.status == "outstanding"],
            findings_remain=any(st.findings_remain for st in states.values()),
            needs_confirmation=needs_confirmation,
            unchecked=sum(st.unchecked for st in states.values()),
        )
