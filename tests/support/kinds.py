"""Step kinds used only by tests, registered the way a plugin would register them."""

from __future__ import annotations

import time

from pydantic import Field

from runbook.registry import default_registry
from runbook.step import (
    Action,
    Finding,
    Plan,
    StepContext,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)


class SlowParams(StepParams):
    seconds: float = 0.0


def _append(ctx: StepContext, line: str) -> None:
    log = ctx.target / "runlog.txt"
    before = log.read_text() if log.exists() else ""
    ctx.effects.write_file(log, before + line + "\n", reason="test run log")


class SlowStep(StepKind):
    """Logs its start, sleeps, logs its end: shows whether a step ran, and how often."""

    name = "test_slow"
    Params = SlowParams

    def plan(self, ctx: StepContext) -> Plan:
        action = Action(kind="edit", summary="append to runlog.txt")
        return Plan(actions=[action], fingerprint=fingerprint_of(ctx.step.id))

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        _append(ctx, f"start {ctx.step.id}")
        time.sleep(self.params.seconds)
        _append(ctx, f"end {ctx.step.id}")
        return StepResult("succeeded", "slept")


class FlakyStep(StepKind):
    """Fails until `target/flaky-ok` exists."""

    name = "test_flaky"
    Params = StepParams

    def plan(self, ctx: StepContext) -> Plan:
        return Plan(actions=[], fingerprint="flaky")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        if not (ctx.target / "flaky-ok").exists():
            return StepResult("failed", "flaky-ok is missing")
        return StepResult("succeeded", "flaky-ok found")


class WipeParams(StepParams):
    path: str = "node_modules"


class WipeStep(StepKind):
    """Removes one directory under the target: a destructive plan whose fingerprint is its size."""

    name = "test_wipe"
    Params = WipeParams

    def _path(self, ctx: StepContext):
        return ctx.target / self.params.path

    def plan(self, ctx: StepContext) -> Plan:
        path = self._path(ctx)
        exists = path.exists()
        actions = (
            [Action(kind="delete", summary=f"remove {path}", destructive=True)] if exists else []
        )
        names = sorted(p.name for p in path.iterdir()) if exists else []
        return Plan(actions=actions, fingerprint=fingerprint_of(str(path), names))

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        freed = ctx.effects.remove_tree(self._path(ctx), reason="test wipe")
        return StepResult("succeeded", f"freed {freed} bytes")


class FindParams(StepParams):
    severities: list[str] = Field(default_factory=list)


class FindStep(StepKind):
    """Reports one finding per listed severity."""

    name = "test_find"
    Params = FindParams

    def plan(self, ctx: StepContext) -> Plan:
        findings = [
            Finding(
                kind="lockfile",
                severity=s,
                path="package-lock.json",
                package="axios",
                version="1.14.1",
                message=f"a {s} finding",
            )
            for s in self.params.severities
        ]
        return Plan(findings=findings, fingerprint="find")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        return StepResult("succeeded", f"{len(plan.findings)} finding(s)")


def register() -> None:
    registry = default_registry()
    for kind in (SlowStep, FlakyStep, WipeStep, FindStep):
        registry.register(kind)
