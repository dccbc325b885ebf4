"""`reinstall`: install from the fixed lockfile with install scripts off, then scan again.

The install itself goes through `ctx.effects.run` (so a dry run runs nothing); the verification
scan afterwards is what decides the outcome: anything compromised left under the project fails
the step, with the findings listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from runbook.models import TargetRelativePath
from runbook.step import (
    Action,
    Finding,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.npm.pm import Detected, Manager, detect_manager
from steps.scan import ScanOptions, scan

#: The executable each manager is looked up as on PATH.
EXECUTABLE: dict[Manager, str] = {
    "npm": "npm",
    "yarn1": "yarn",
    "berry": "yarn",
    "pnpm": "pnpm",
    "bun": "bun",
}
#: The install command per manager: from the lockfile as it is, install scripts off.
ARGS: dict[Manager, list[str]] = {
    "npm": ["ci", "--ignore-scripts"],
    "yarn1": ["install", "--frozen-lockfile", "--ignore-scripts"],
    "berry": ["install", "--immutable"],
    # without a TTY, pnpm refuses to replace a node_modules it did not make (another store, say)
    # unless told; the step is confirmed as destructive, so replacing it is what was agreed to
    "pnpm": [
        "install",
        "--frozen-lockfile",
        "--ignore-scripts",
        "--config.confirmModulesPurge=false",
    ],
    "bun": ["install", "--frozen-lockfile", "--ignore-scripts"],
}
#: Extra environment per manager (yarn berry has no --ignore-scripts flag).
EXTRA_ENV: dict[Manager, dict[str, str]] = {"berry": {"YARN_ENABLE_SCRIPTS": "0"}}
AFFECTED = ("compromised", "at-risk")
LISTED = 8  # findings named in a failure summary


class ReinstallParams(StepParams):
    path: TargetRelativePath = Field(
        default=".", description="The project to reinstall, relative to the target."
    )
    manager: Literal["npm", "yarn1", "berry", "pnpm", "bun"] | None = Field(
        default=None,
        description="Package manager to use; default: detected (packageManager, lockfile).",
    )
    timeout: float = Field(default=900, gt=0, description="Seconds the install may take.")
    verify: bool = Field(
        default=True,
        description="Scan the project afterwards; the step fails if anything compromised remains.",
    )


def command_line(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """The command as a person would type it in a shell."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    cmd = shlex.join(argv)
    return f"cd {shlex.quote(str(cwd))} && {prefix + ' ' if prefix else ''}{cmd}"


def _sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ReinstallStep(StepKind):
    """Reinstalls node_modules from the fixed lockfile, install scripts off, and verifies."""

    name = "reinstall"
    Params = ReinstallParams
    summary = "Install from the fixed lockfile with install scripts off, then scan again."
    params: ReinstallParams

    # -- observing ---------------------------------------------------------------------------
    def _project(self, ctx: StepContext) -> Path:
        project = ctx.under_target(self.params.path)
        if not (project / "package.json").is_file():
            raise StepError(f"reinstall: no package.json in {project}")
        return project

    def _detect(self, project: Path) -> Detected:
        detected = detect_manager(project)
        if self.params.manager and self.params.manager != detected.manager:
            reason = f"manager: {self.params.manager} (playbook); detected {detected.reason}"
            detected = Detected(self.params.manager, None, detected.lockfile, reason)
        return detected

    def plan(self, ctx: StepContext) -> Plan:
        project = self._project(ctx)
        detected = self._detect(project)
        if detected.lockfile is None:
            raise StepError(
                f"reinstall: no lockfile in {project}; it installs from the fixed lockfile, "
                "so regenerate one first (the pin step does)"
            )
        exe = EXECUTABLE[detected.manager]
        found = shutil.which(exe, path=ctx.env.get("PATH"))
        argv = [exe, *ARGS[detected.manager]]
        extra = EXTRA_ENV.get(detected.manager, {})
        shown = command_line(argv, extra, project)
        notes = [f"package manager: {detected.manager} ({detected.reason})"]
        if found is None:
            notes.append(
                f"`{exe}` is not on PATH: the live run stops here; run by hand: {shown}, "
                "then rerun to resume"
            )
        if self.params.verify:
            notes.append(
                f"afterwards {project} is scanned again; anything compromised left fails the step"
            )
        action = Action(
            kind="run",
            summary=f"{shlex.join(argv)} in {project} (rewrites node_modules, scripts off)",
            destructive=True,
            detail={
                "argv": argv,
                "cwd": str(project),
                "env": extra,
                "manager": detected.manager,
                "why": detected.reason,
                "executable": found,
                "lockfile": str(detected.lockfile),
            },
        )
        fingerprint = fingerprint_of(
            str(project),
            detected.manager,
            str(detected.lockfile),
            _sha256(detected.lockfile),
            _sha256(project / "package.json"),
            found,
        )
        return Plan(actions=[action], fingerprint=fingerprint, notes=notes)

    # -- acting ------------------------------------------------------------------------------
    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        detail = plan.actions[0].detail
        argv: list[str] = list(detail["argv"])
        project = Path(detail["cwd"])
        extra: dict[str, str] = dict(detail["env"])
        shown = command_line(argv, extra, project)
        found = detail["executable"]
        if found is None:
            if ctx.dry_run:
                return StepResult(
                    "succeeded",
                    f"dry run: would run {shown}, but `{argv[0]}` is not on PATH "
                    "(the live run will stop here); nothing installed, nothing verified",
                )
            raise StepError(
                f"`{argv[0]}` is not on PATH; run by hand: {shown}; then rerun runbook "
                "to resume at this step (it verifies the install)"
            )
        env = {**ctx.env, **extra}
        result = ctx.effects.run(
            [found, *argv[1:]],
            cwd=project,
            env=env,
            timeout=self.params.timeout,
            reason=f"reinstall from the lockfile with install scripts off ({detail['manager']})",
        )
        if result.dry_run:
            return StepResult(
                "succeeded",
                f"dry run: would run {shown}; nothing installed, nothing verified",
                data={"manager": detail["manager"], "command": shown},
            )
        if result.timed_out:
            raise StepError(
                f"{shlex.join(argv)} timed out after {self.params.timeout:g} s; "
                f"run by hand: {shown}; then rerun to resume"
            )
        if result.returncode != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-1500:]
            raise StepError(
                f"{shlex.join(argv)} failed (exit {result.returncode}): {tail}\n"
                f"fix the cause and run by hand: {shown}; or rerun to retry"
            )
        installed = f"{shlex.join(argv)}: installed in {result.duration:.1f} s"
        data = {"manager": detail["manager"], "command": shown, "duration": result.duration}
        if not self.params.verify:
            return StepResult("succeeded", installed + " (not verified)", data=data)
        findings = scan([project], ctx.playbook.incident, ScanOptions(), env=ctx.env).findings
        affected = [f for f in findings if f.severity in AFFECTED]
        data["findings"] = [f.model_dump(exclude_none=True) for f in affected[:50]]
        if affected:
            listed = "; ".join(_describe(f, project) for f in affected[:LISTED])
            more = f" (and {len(affected) - LISTED} more)" if len(affected) > LISTED else ""
            return StepResult(
                "failed",
                f"{installed}, but the verification scan still finds {len(affected)} "
                f"compromised or at-risk trace(s): {listed}{more}",
                findings_remain=True,
                data=data,
            )
        return StepResult(
            "succeeded", f"{installed}; verification scan: nothing compromised left", data=data
        )


def _describe(finding: Finding, project: Path) -> str:
    what = finding.package or finding.kind
    if finding.version:
        what += f"@{finding.version}"
    where = finding.path or ""
    if where:
        with contextlib.suppress(ValueError):
            where = str(Path(where).relative_to(project))
        if finding.line:
            where += f":{finding.line}"
        what += f" in {where}"
    return what
