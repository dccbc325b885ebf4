"""`detect`: the scanner as a playbook step. It only observes, so its plan has no actions.

Its result carries the scan's tri-state verdict (`affected`: true, null when something could not
be checked, false) and `unchecked`, how many files could not be checked: the runner counts that
key to end a run "completed, N things could not be checked" (exit 3 headless), never "clean".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pydantic import Field

from runbook.models import TargetRelativePath
from runbook.step import (
    Finding,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.scan import ScanOptions, scan, unchecked, verdict

SEVERITIES = ("compromised", "at-risk", "unknown", "info")


class DetectParams(StepParams):
    paths: list[TargetRelativePath] = Field(
        default_factory=lambda: ["."], description="Directories to scan, relative to the target."
    )
    host: bool = Field(
        default=False,
        description="Also scan caches, global installs, editors "
        "and host indicators of this machine.",
    )
    root: str | None = Field(default=None, description="Scan a mounted disk image at this path.")
    history: bool = Field(default=False, description="Also read the lockfiles' git history.")
    verify: bool = Field(
        default=False,
        description="A verification scan: compromised or at-risk "
        "findings mean the run is not clean.",
    )


class DetectStep(StepKind):
    """Finds every trace of the incident's bad versions under the target (and on the host)."""

    name = "detect"
    Params = DetectParams
    summary = "Scan lockfiles, manifests, install trees, caches and host indicators."
    params: DetectParams

    def _paths(self, ctx: StepContext) -> list[Path]:
        paths = []
        for relative in self.params.paths:
            path = ctx.under_target(relative, "paths")
            if not path.is_dir():
                raise StepError(f"detect: {relative} is not a directory under {ctx.target}")
            paths.append(path)
        return paths

    def plan(self, ctx: StepContext) -> Plan:
        options = ScanOptions(
            host=self.params.host,
            history=self.params.history,
            root=ctx.host_root(self.params.root),
        )
        result = scan(self._paths(ctx), ctx.playbook.incident, options, env=ctx.env)
        findings = result.findings
        fingerprint = fingerprint_of([f.model_dump() for f in findings])
        notes = [_counts(findings)]
        missed = unchecked(findings)
        if missed:
            notes.append(_not_checked(len(missed)))
        return Plan(findings=findings, fingerprint=fingerprint, notes=notes)

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        return plan.fingerprint  # applying changes nothing, so what was seen cannot go stale

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        affected = verdict(plan.findings)
        missed = len(unchecked(plan.findings))
        summary = _counts(plan.findings)
        if missed:
            summary += f"; {_not_checked(missed)}"
        if self.params.verify and affected and ctx.dry_run:
            summary += " (dry run: nothing was changed, so nothing is verified)"
        return StepResult(
            "succeeded",
            summary,
            findings_remain=self.params.verify and bool(affected) and not ctx.dry_run,
            data={"affected": affected, "unchecked": missed},
        )


def _not_checked(count: int) -> str:
    files = f"{count} file{'s' if count != 1 else ''}"
    return f"could not check {files} (see the unknown findings), so this is not a clean result"


def _counts(findings: list[Finding]) -> str:
    counts = Counter(f.severity for f in findings)
    text = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    return text or "no traces found"
