"""`discover_credentials`: list every credential the target (and with `host`, this machine)
holds, so later steps rotate them or put them on a checklist. Read-only: the plan has no actions.

Each credential becomes a finding `credential:<type>` (severity `at-risk`, or `info` when runbook
already rotated it), shown redacted with where it lives and how it gets rotated. Files that
cannot be read become `unknown` findings. `apply` journals one `credentials_found` event.
"""

from __future__ import annotations

from pydantic import Field

from runbook.models import TargetRelativePath
from runbook.step import (
    Finding,
    Plan,
    StepContext,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.credentials.discover import discover_for_step
from steps.credentials.model import Credential, Discovery
from steps.credentials.output import counts, summary


class DiscoverCredentialsParams(StepParams):
    host: bool = Field(
        default=True,
        description="Also HOME's credential files, the environment and runbook's keyring.",
    )
    paths: list[TargetRelativePath] = Field(
        default_factory=list, description="Extra directories to search, relative to the target."
    )


def _fingerprint(discovery: Discovery) -> str:
    return fingerprint_of(
        "discover_credentials",
        [(c.type, c.location.public(), c.fingerprint, c.rotation) for c in discovery.credentials],
        discovery.problems,
    )


class DiscoverCredentials(StepKind):
    """Finds credentials in .env/npmrc/yarnrc files, HOME's tool configs, the env and keyring."""

    name = "discover_credentials"
    Params = DiscoverCredentialsParams
    summary = "List every credential the target and this machine hold (redacted)."
    params: DiscoverCredentialsParams

    def __init__(self, params: DiscoverCredentialsParams) -> None:
        super().__init__(params)
        self._last: tuple[str, Discovery] | None = None

    def _discover(self, ctx: StepContext) -> tuple[str, Discovery]:
        found = discover_for_step(ctx, host=self.params.host, paths=self.params.paths)
        self._last = (_fingerprint(found), found)
        return self._last

    def plan(self, ctx: StepContext) -> Plan:
        fingerprint, found = self._discover(ctx)
        home = ctx.home if self.params.host else None
        findings = []
        for credential in found.credentials:
            where = credential.location.display(home)
            location = credential.location
            findings.append(
                Finding(
                    kind=f"credential:{credential.type}",
                    severity="info" if credential.rotation == "rotated" else "at-risk",
                    path=str(location.path) if location.path else None,
                    line=location.line,
                    message=_message(credential, where),
                )
            )
        for where, message in found.problems:
            findings.append(
                Finding(
                    kind="credential:unreadable", severity="unknown", message=f"{where}: {message}"
                )
            )
        notes = [summary(found)]
        if not self.params.host:
            notes.append("host: false: HOME, the environment and the keyring were not searched")
        return Plan(findings=findings, fingerprint=fingerprint, notes=notes)

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        return self._discover(ctx)[0]

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        if self._last is not None and self._last[0] == plan.fingerprint:
            found = self._last[1]
        else:
            found = self._discover(ctx)[1]
        home = ctx.home if self.params.host else None
        by = counts(found)
        ctx.record(
            "credentials_found",
            {
                "step": ctx.step.id,
                "credentials": [c.public(home) for c in found.credentials],
                "counts": by,
                "problems": [{"where": w, "message": m} for w, m in found.problems],
            },
        )
        return StepResult(
            "succeeded",
            summary(found),
            data={"counts": by, "credentials": len(found.credentials)},
        )


def _message(credential: Credential, where: str) -> str:
    """The redacted value, its key (the finding's path and line say where the file is), how it
    is rotated and what could not be read of its file; a credential outside any file (env,
    keyring) names its place in full."""
    place = credential.location.name if credential.location.path else where
    text = f"{credential.redacted} ({place}); rotation: {credential.rotation}"
    return "; ".join([text, *(f"the file {note}" for note in credential.notes)])
