"""`verify`: prove the fix. A fresh scan of the project (nothing compromised or at risk may be
left, and everything must be readable), `npm audit signatures` where the registry publishes
signing keys, and an optional project command (`npm test`) with a timeout.

An unsupported registry is a note and a checklist item, never a pass. The project command runs
exactly as the project would run it: the environment and the scripts policy are left as they are.
The scan happens at plan time (its findings are the plan's); the audit and the command go
through the effects door, so a dry run runs neither.
"""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from runbook.effects import EffectError
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
from steps.manual import ask
from steps.npm.pm import detect_manager
from steps.scan import ScanOptions, scan

AFFECTING = ("compromised", "at-risk")
SEVERITIES = ("compromised", "at-risk", "unknown", "info")
TAIL = 1500
NPM_QUIET = ["--logs-max=0", "--no-update-notifier"]


class VerifyParams(StepParams):
    path: str = Field(default=".", description="The project, relative to the target.")
    host: bool = Field(
        default=False, description="Also scan this machine's caches and global installs."
    )
    signatures: bool = Field(
        default=True,
        description="Run `npm audit signatures` (npm projects, registries that publish keys).",
    )
    command: str | list[str] | None = Field(
        default=None,
        description="A project command that must pass, e.g. `npm test` (a string is split like "
        "a shell would, but no shell runs it).",
    )
    timeout: float = Field(default=600, gt=0, description="Seconds the command may take.")
    audit_timeout: float = Field(
        default=180, gt=0, description="Seconds `npm audit signatures` may take."
    )


def _opener(url: str, env: Mapping[str, str]) -> urllib.request.OpenerDirector:
    """An opener with the run's proxy settings (not this process's): `*_proxy`, `no_proxy`."""
    host = urllib.parse.urlsplit(url).hostname or ""
    bypass = [h.strip().lstrip(".") for h in _env(env, "no_proxy").split(",") if h.strip()]
    proxies = {}
    if "*" not in bypass and not any(host == h or host.endswith("." + h) for h in bypass):
        for scheme in ("http", "https"):
            if proxy := _env(env, f"{scheme}_proxy"):
                proxies[scheme] = proxy
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies))


def _env(env: Mapping[str, str], name: str) -> str:
    return env.get(name) or env.get(name.upper()) or ""


def registry_keys(
    registry: str, env: Mapping[str, str] | None = None, timeout: float = 15
) -> tuple[bool, str]:
    """Whether `registry` publishes npm signing keys (`GET /-/npm/v1/keys`), and what it said."""
    url = registry.rstrip("/") + "/-/npm/v1/keys"
    if not url.startswith(("https://", "http://")):
        return False, f"{registry!r} is not an http(s) registry"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _opener(url, env or {}).open(request, timeout=timeout) as resp:
            body = json.loads(resp.read(1 << 20) or b"{}")
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"{url} could not be read: {getattr(exc, 'reason', exc)}"
    keys = body.get("keys") if isinstance(body, dict) else None
    if isinstance(keys, list) and keys:
        return True, f"{len(keys)} signing key(s)"
    return False, f"{url} lists no signing keys"


class VerifyStep(StepKind):
    """Verifies the remediated project: fresh scan, registry signatures, the project's tests."""

    name = "verify"
    Params = VerifyParams
    summary = "Prove the fix: a fresh scan, npm audit signatures, and the project's own tests."
    params: VerifyParams

    def _project(self, ctx: StepContext) -> Path:
        project = (ctx.target / self.params.path).resolve()
        if not (project / "package.json").is_file():
            raise StepError(f"verify: no package.json in {project}")
        return project

    def _command(self) -> list[str] | None:
        command = self.params.command
        if command is None:
            return None
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not argv:
            raise StepError("verify: `command` is empty")
        return argv

    def plan(self, ctx: StepContext) -> Plan:
        project = self._project(ctx)
        options = ScanOptions(host=self.params.host)
        findings = scan([project], ctx.playbook.incident, options, env=ctx.env).findings
        manager = detect_manager(project).manager
        actions, notes = [], [f"fresh scan of {project}: {_counts(findings)}"]
        if self.params.signatures and manager == "npm":
            actions.append(
                Action(
                    kind="run",
                    summary="npm audit signatures (when the registry publishes signing keys; "
                    "otherwise a note and a checklist item, never a pass)",
                    detail={
                        "check": "signatures",
                        "argv": ["npm", "audit", "signatures"],
                        "cwd": str(project),
                    },
                )
            )
        elif self.params.signatures:
            notes.append(
                f"signatures: `npm audit signatures` reads npm's install tree; this is a "
                f"{manager} project, so they are not checked here"
            )
        argv = self._command()
        if argv is not None:
            actions.append(
                Action(
                    kind="run",
                    summary=f"{shlex.join(argv)} in {project} (timeout {self.params.timeout:g} s; "
                    "environment and scripts policy as they are)",
                    detail={"check": "command", "argv": argv, "cwd": str(project)},
                )
            )
        fingerprint = fingerprint_of(
            self.name, ctx.step.id, self.params.model_dump(), [f.model_dump() for f in findings]
        )
        return Plan(findings=findings, actions=actions, fingerprint=fingerprint, notes=notes)

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        return plan.fingerprint  # the scan is what was verified; running it again proves nothing

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        project = self._project(ctx)
        parts: list[str] = []
        failures: list[str] = []
        items: list[tuple[str, str]] = []
        checks: dict[str, str] = {}
        affected = [f for f in plan.findings if f.severity in AFFECTING]
        unread = [f for f in plan.findings if f.severity == "unknown"]
        if affected:
            checks["scan"] = "affected"
            failures.append(f"the fresh scan still finds {_listed(affected, project)}")
        elif unread:
            checks["scan"] = "incomplete"
            failures.append(
                f"the fresh scan could not check {_listed(unread, project)}: not verified"
            )
        else:
            checks["scan"] = "clean"
            parts.append("fresh scan: nothing compromised or at risk")
        if any(a.detail.get("check") == "signatures" for a in plan.actions):
            state, text, item = self._signatures(ctx, project)
            checks["signatures"] = state
            (failures if state == "failed" else parts).append(text)
            if item:
                items.append(item)
        argv = self._command()
        if argv is not None:
            state, text = self._run_command(ctx, project, argv)
            checks["command"] = state
            (failures if state == "failed" else parts).append(text)
        answers = {item_id: ask(ctx, item_id, text) for item_id, text in items}
        open_items = [i for i, a in answers.items() if a != "done"]
        data = {"checks": checks}
        if ctx.dry_run:
            return StepResult(
                "succeeded",
                "dry run: nothing was changed, so nothing is verified; "
                + "; ".join([*failures, *parts]),
                data=data,
            )
        summary = "; ".join([*failures, *parts])
        if failures:
            return StepResult("failed", summary, findings_remain=bool(affected), data=data)
        return StepResult("outstanding" if open_items else "succeeded", summary, data=data)

    def _signatures(
        self, ctx: StepContext, project: Path
    ) -> tuple[str, str, tuple[str, str] | None]:
        """(state, text, checklist item) of `npm audit signatures`: passed, failed or unchecked."""
        try:
            got = ctx.effects.run(
                ["npm", "config", "get", "registry", *NPM_QUIET],
                cwd=project,
                env=ctx.env,
                timeout=60,
                reason="verify: which registry the project installs from",
            )
        except EffectError as exc:
            return "unchecked", f"signatures: not checked ({exc})", _signature_item(str(exc))
        if got.dry_run:
            return "unchecked", "would run `npm audit signatures` if the registry has keys", None
        registry = got.stdout.strip() or "https://registry.npmjs.org/"
        supported = ctx.effects.call(
            "npm-registry",
            "signing-keys",
            lambda: registry_keys(registry, ctx.env),
            summary=f"GET {registry.rstrip('/')}/-/npm/v1/keys",
        )
        ok, said = supported or (False, "no answer")
        if not ok:
            why = f"{registry} does not publish npm signing keys ({said})"
            return "unchecked", f"signatures: not checked: {why}", _signature_item(why)
        done = ctx.effects.run(
            ["npm", "audit", "signatures", *NPM_QUIET],
            cwd=project,
            env=ctx.env,
            timeout=self.params.audit_timeout,
            reason="verify: registry signatures and provenance of the installed packages",
        )
        output = (done.stdout + done.stderr).strip()
        if done.timed_out:
            why = f"`npm audit signatures` timed out after {self.params.audit_timeout:g} s"
            return "unchecked", f"signatures: not checked: {why}", _signature_item(why)
        if done.returncode == 0:
            return "passed", "npm audit signatures: every signature verified", None
        if "invalid" in output.lower() or "missing" in output.lower():
            return "failed", f"npm audit signatures failed: {output[-TAIL:]}", None
        why = f"`npm audit signatures` could not run: {output[-TAIL:]}"
        return "unchecked", f"signatures: not checked: {why}", _signature_item(why)

    def _run_command(self, ctx: StepContext, project: Path, argv: list[str]) -> tuple[str, str]:
        shown = shlex.join(argv)
        try:
            done = ctx.effects.run(
                argv,
                cwd=project,
                env=ctx.env,
                timeout=self.params.timeout,
                reason="verify: the project's own command",
            )
        except EffectError as exc:
            return "failed", f"`{shown}` could not start: {exc}"
        if done.dry_run:
            return "unchecked", f"would run `{shown}`"
        if done.timed_out:
            return "failed", f"`{shown}` timed out after {self.params.timeout:g} s"
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip())[-TAIL:]
            return "failed", f"`{shown}` failed (exit {done.returncode}): {tail}"
        return "passed", f"`{shown}` passed in {done.duration:.1f} s"


def _signature_item(why: str) -> tuple[str, str]:
    return (
        "signatures",
        f"Check the installed packages' signatures and provenance another way ({why}): e.g. "
        "`npm audit signatures` in CI against the public registry",
    )


def _counts(findings: list[Finding]) -> str:
    counts = Counter(f.severity for f in findings)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s]) or "no traces found"


def _listed(findings: list[Finding], project: Path) -> str:
    shown = []
    for f in findings[:6]:
        what = f.package or f.kind
        if f.version:
            what += f"@{f.version}"
        where = f.path or ""
        if where.startswith(str(project)):
            where = where[len(str(project)) + 1 :] or "."
        shown.append(f"{what} in {where}" if where else what)
    more = f" (and {len(findings) - 6} more)" if len(findings) > 6 else ""
    return f"{len(findings)} trace(s): " + "; ".join(shown) + more
