"""The step protocol: every step kind plans (observe only) and then applies that exact plan."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from runbook.models import Outcome, Playbook, Severity, StepSpec
from runbook.safeio import within

if TYPE_CHECKING:
    from runbook.effects import Effects
    from runbook.operator import Operator


class Finding(BaseModel):
    """Something a step observed: a trace of the incident, or something it could not read."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    severity: Severity
    path: str | None = None
    line: int | None = None
    package: str | None = None
    version: str | None = None
    via: list[str] | None = None
    message: str = ""


class Action(BaseModel):
    """One thing `apply` would do. `destructive` drives confirmation."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["edit", "delete", "run", "call", "keyring", "git", "manual", "other"]
    summary: str
    destructive: bool = False
    detail: dict[str, Any] = Field(default_factory=dict)


class Plan(BaseModel):
    """What a step saw and what it would do; `fingerprint` pins what it saw."""

    model_config = ConfigDict(extra="forbid")

    findings: list[Finding] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    fingerprint: str
    notes: list[str] = Field(default_factory=list)

    @property
    def destructive(self) -> bool:
        return any(action.destructive for action in self.actions)


@dataclass
class StepResult:
    """How `apply` ended."""

    outcome: Outcome
    summary: str = ""
    findings_remain: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class StepError(Exception):
    """A step failed for a reason the operator can read; the message must carry no secret."""


class StalePlanError(StepError):
    """What the plan was based on changed before it was applied."""


# A simulated machine's filesystem root (exercise worlds): host checks look there, not at /
HOST_ROOT = "RUNBOOK_HOST_ROOT"


@dataclass
class StepContext:
    """Everything a step may use. Side effects go through `effects`, nowhere else."""

    playbook: Playbook
    step: StepSpec
    target: Path
    effects: Effects
    operator: Operator
    env: Mapping[str, str]
    dry_run: bool
    record: Any  # Callable[[str, dict], None]: journal an event (redacted on the way)
    journal_entries: Any = None  # Callable[[], list[dict]]: this run's journal so far
    journal_head: Any = None  # Callable[[], str]: the journal's current head hash
    # run options from the command line: allow_insecure_keyring, aws_endpoint_url, all_users
    options: Mapping[str, Any] = field(default_factory=dict)

    def under_target(self, relative: str | Path, field: str = "path") -> Path:
        """`relative` joined to the target and resolved; a StepError unless it stays inside.

        Validation refuses absolute paths and `..` already; this catches a symlink inside the
        target that leads out of it, at the moment the step acts.
        """
        path = (self.target / relative).resolve()
        if not within(path, self.target):
            raise StepError(
                f"{self.step.id}: {field} {str(relative)!r} leads outside the target "
                f"{self.target} (to {path})"
            )
        return path

    def host_root(self, configured: str | None) -> Path | None:
        """The filesystem root host checks look under: the step's own `root` parameter, else
        `$RUNBOOK_HOST_ROOT` (an exercise world's simulated machine), else None (this machine)."""
        value = configured or self.env.get(HOST_ROOT) or None
        return Path(value).expanduser() if value else None

    def keep_secret(self, *values: str | None) -> None:
        """Register values found at run time so no journal line, report or screen shows them."""
        for value in values:
            if value:
                self.effects.redactor.add_secret(value)

    def changed_files(self) -> list[Path]:
        """Files this run has replaced (live `write_file` effects), oldest first, no repeats."""
        seen: dict[str, None] = {}
        for entry in self.journal_entries() if self.journal_entries else []:
            data = entry.get("data") or {}
            if (
                entry.get("event") == "effect"
                and data.get("op") == "write_file"
                and data.get("outcome") == "ok"
            ):
                seen.setdefault(data["path"], None)
        return [Path(p) for p in seen]

    @property
    def home(self) -> Path:
        return Path(self.env.get("HOME") or Path.home())


def fingerprint_of(*parts: Any) -> str:
    """A stable sha256 of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class StepKind(ABC):
    """Base class of every step kind. Subclasses set `name` and `Params` and implement both halves.

    `plan` must only observe. `apply` performs exactly the plan it is given; the runner has already
    checked `current_fingerprint(ctx, plan) == plan.fingerprint` and refuses a stale plan.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    summary: ClassVar[str] = ""

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    def plan(self, ctx: StepContext) -> Plan: ...

    @abstractmethod
    def apply(self, ctx: StepContext, plan: Plan) -> StepResult: ...

    @classmethod
    def preflight(cls, env: Mapping[str, str], options: Mapping[str, Any]) -> str | None:
        """A problem this kind will meet later in a live run (an unsafe keyring, say), said at
        the start so the operator can fix it before the run gets there; None when fine."""
        return None

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        """Re-observe cheaply; the default plans again."""
        return self.plan(ctx).fingerprint


class StepParams(BaseModel):
    """Base for a step kind's `with:` model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
