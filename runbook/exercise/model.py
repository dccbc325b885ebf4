"""Typed models of the scenario format: what a drill adds to a playbook. Unknown keys are errors.

A scenario names a playbook (no second copy of its steps) and adds the world the drill runs in,
the variants a seed draws from, injects (timed or conditional), expectations with scores and
deadlines, discussion questions per phase, a lessons-learned survey, and the scripted answers
`runbook exercise run --auto` plays.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from runbook.models import STEP_ID, Strict

PHASES = ("detect", "contain", "eradicate", "rotate", "communicate")
Phase = Literal["detect", "contain", "eradicate", "rotate", "communicate"]
StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "outstanding"]
Severity = Literal["compromised", "at-risk", "unknown", "info"]
ItemAnswer = Literal["done", "declined", "outstanding"]
ID = Annotated[str, Field(pattern=STEP_ID, max_length=64)]

# Journal events a condition may name: the engine's, and the exercise's own.
EVENTS = (
    "run_started",
    "run_resumed",
    "run_finished",
    "preflight_warning",
    "step_planned",
    "step_confirmed",
    "step_started",
    "step_finished",
    "step_skipped",
    "step_reset",
    "manual_item",
    "effect",
    "note",
    "exercise_started",
    "exercise_finished",
    "clock",
    "inject_fired",
    "inject_skipped",
    "decision",
    "discussion",
    "expectation",
    "observation",
    "rating",
    "survey",
    "participant",
)

_DURATION = re.compile(
    r"^\+?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_duration(value: Any) -> float:
    """Exercise time in seconds from `15m`, `+1h30m`, `90s` or a number of minutes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 15m, 1h30m or 90s, got {str(value).lower()}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return float(value) * 60
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"expected a duration like 15m, +1h30m or 90s (or minutes), got {value!r}")


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda seconds: f"{seconds:g}s", return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ],
            "description": "Exercise time: `15m`, `+1h30m`, `90s`, or a number of minutes.",
        }
    ),
]


def format_duration(seconds: float) -> str:
    """`+0:00`, `+12:30`, `+1:02:03` (exercise time, h:mm:ss)."""
    whole = int(max(seconds, 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"+{hours}:{minutes:02d}:{secs:02d}" if hours else f"+{minutes}:{secs:02d}"


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _one_or_list(schema: dict[str, Any]) -> None:
    """JSON Schema for a list field that also takes a single item (`outcome: succeeded`)."""
    if schema.get("type") == "array":
        items = schema.pop("items")
        array = {"type": "array", "items": items}
        schema.pop("type")
        schema["anyOf"] = [items, array]
        return
    arrays = [alt for alt in schema.get("anyOf", []) if alt.get("type") == "array"]
    if arrays:
        schema["anyOf"].insert(0, arrays[0]["items"])


class FindingMatch(Strict):
    """A finding some step reported (in its latest plan); every criterion given must match."""

    step: ID | None = None
    severity: Annotated[list[Severity], BeforeValidator(_one_or_many)] | None = Field(
        default=None, json_schema_extra=_one_or_list
    )
    kind: str | None = None
    package: str | None = None


class ChecklistMatch(Strict):
    """A manual checklist item answered (latest answer) as `answer`."""

    step: ID
    item: str = Field(min_length=1)
    answer: Annotated[list[ItemAnswer], BeforeValidator(_one_or_many)] = Field(
        default_factory=lambda: ["done"], json_schema_extra=_one_or_list
    )


HEADS = (
    "all",
    "any",
    "not",
    "step",
    "finding",
    "event",
    "inject",
    "checklist",
    "decision",
    "elapsed",
    "since",
)


class Cond(Strict):
    """A condition over the journal and the exercise clock. Exactly one of its heads:

    - `all: [...]`, `any: [...]`, `not: {...}`: combinations;
    - `step: ID` with `outcome: [...]`: the step's current status (default `succeeded`);
    - `finding: {step, severity, kind, package}`: a step reported such a finding;
    - `event: NAME` with `where: {key: value}`: the journal holds such an entry;
    - `inject: ID`: that inject has fired; `decision: ID`: a decision was recorded on it;
    - `checklist: {step, item, answer}`: a checklist item was answered so;
    - `elapsed: 20m`: the exercise clock reads at least that;
    - `since: {...}` with `after: 20m`: that long after the condition first held.
    """

    all_: list[Cond] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Cond] | None = Field(default=None, alias="any", min_length=1)
    not_: Cond | None = Field(default=None, alias="not")
    step: ID | None = None
    outcome: Annotated[list[StepStatus], BeforeValidator(_one_or_many)] | None = Field(
        default=None, json_schema_extra=_one_or_list
    )
    finding: FindingMatch | None = None
    event: str | None = None
    where: dict[str, str | int | float | bool] | None = None
    inject: ID | None = None
    decision: ID | None = None
    checklist: ChecklistMatch | None = None
    elapsed: Duration | None = None
    since: Cond | None = None
    after: Duration | None = None

    @model_validator(mode="after")
    def _one_head(self) -> Cond:
        heads = [h for h in HEADS if getattr(self, _attr(h)) is not None]
        if not heads:
            raise ValueError("a condition needs one of: " + ", ".join(HEADS))
        if len(heads) > 1:
            raise ValueError(
                f"a condition has exactly one of {', '.join(HEADS)}; this one has "
                f"{' and '.join(heads)} (combine them with all: or any:)"
            )
        head = heads[0]
        for companion, owner in (("outcome", "step"), ("where", "event"), ("after", "since")):
            if getattr(self, companion) is not None and head != owner:
                raise ValueError(f"'{companion}' goes with '{owner}', not with '{head}'")
        if head == "since" and self.after is None:
            raise ValueError("'since' needs 'after' (how long after, e.g. after: 20m)")
        return self

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENTS:
            import difflib

            close = difflib.get_close_matches(value, EVENTS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown event {value!r}{hint}; known: {', '.join(EVENTS)}")
        return value

    @property
    def head(self) -> str:
        return next(h for h in HEADS if getattr(self, _attr(h)) is not None)


def _attr(head: str) -> str:
    return {"all": "all_", "any": "any_", "not": "not_"}.get(head, head)


class Role(Strict):
    id: ID
    name: str = Field(min_length=1)
    description: str = ""


class Objective(Strict):
    id: ID
    text: str = Field(min_length=1)


class Evidence(Strict):
    """A file written into the world when the inject fires (a log excerpt, a message)."""

    path: str = Field(min_length=1, description="Relative to `where`; no '..', not absolute.")
    where: Literal["home", "root", "target"] = "home"
    content: str

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith(("/", "~", "\\")) or ".." in re.split(r"[/\\]", value):
            raise ValueError(f"{value!r} must be a relative path inside the world, without '..'")
        return value


class DecisionSpec(Strict):
    """A decision the team has to take when the inject arrives."""

    title: str = Field(min_length=1)
    owner: ID | None = Field(default=None, description="The role that owns the decision.")
    options: list[Annotated[str, Field(min_length=1)]] = Field(min_length=2)


class Inject(Strict):
    """Something that happens to the team: fired at `at` on the exercise clock, or when `when`
    first holds (with both, whichever comes first)."""

    id: ID
    title: str = Field(min_length=1)
    text: str = Field(default="", description="Markdown shown to the players.")
    to: list[ID] = Field(default_factory=list, description="Roles it is addressed to.")
    at: Duration | None = None
    when: Cond | None = None
    phase: Phase | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    decision: DecisionSpec | None = None
    facilitator_notes: str = ""

    @model_validator(mode="after")
    def _fires(self) -> Inject:
        if self.at is None and self.when is None:
            raise ValueError("an inject needs 'at' (a time on the exercise clock) or 'when'")
        return self


class Expectation(Strict):
    """What the team should achieve, by `deadline` (exercise time), worth `score`."""

    id: ID
    title: str = Field(min_length=1)
    phase: Phase
    score: int = Field(default=10, ge=0, strict=True)
    deadline: Duration | None = None
    must: bool = False
    validation: Literal["auto", "manual"] = "auto"
    when: Cond | None = None
    owner: ID | None = Field(default=None, description="The role that owns it (improvement plan).")
    improvement: str = Field(
        default="", description="The corrective action if it is not met (improvement plan)."
    )

    @model_validator(mode="after")
    def _how(self) -> Expectation:
        if self.validation == "auto" and self.when is None:
            raise ValueError("an automatic expectation needs 'when' (or validation: manual)")
        if self.validation == "manual" and self.when is not None:
            raise ValueError("a manual expectation is judged by the facilitator: drop 'when'")
        return self


class PhaseSpec(Strict):
    steps: list[ID] = Field(default_factory=list)
    questions: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class SurveyQuestion(Strict):
    id: ID
    question: str = Field(min_length=1)
    kind: Literal["scale", "text"] = "text"


class Metrics(Strict):
    """Conditions whose first moment is reported as time to detection, containment, rotation."""

    detection: Cond | None = None
    containment: Cond | None = None
    rotation: Cond | None = None


class AutoStep(Strict):
    """How the scripted team handles one step in `--auto`."""

    minutes: Duration | None = Field(default=None, description="Exercise time the step takes.")
    answer: Literal["yes", "skip"] = "yes"
    reason: str = ""
    checklist: dict[str, ItemAnswer] = Field(
        default_factory=dict, description="Item id (or `default`) to answer."
    )

    @model_validator(mode="after")
    def _reason(self) -> AutoStep:
        if self.answer == "skip" and not self.reason.strip():
            raise ValueError("a scripted skip needs a 'reason'")
        return self


class AutoDecision(Strict):
    decision: str = Field(min_length=1)
    rationale: str = ""


class AutoScript(Strict):
    """The scripted answers `runbook exercise run --auto` plays (a variant may override parts)."""

    operator: str = "drill-bot"
    role: ID | None = None
    step_minutes: Duration = 180.0
    steps: dict[str, AutoStep] = Field(default_factory=dict)
    decisions: dict[str, AutoDecision] = Field(default_factory=dict)
    discussion: dict[str, str] = Field(
        default_factory=dict, description="Answer per phase (or `default`)."
    )
    survey: dict[str, str] = Field(default_factory=dict)
    facilitator: dict[str, Literal["met", "failed", "rejected"]] = Field(
        default_factory=dict, description="Verdicts on manual expectations, by id."
    )
    observations: list[str] = Field(default_factory=list)


class Variant(Strict):
    """One way the world can be, drawn with the seed (by weight)."""

    id: ID
    title: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    description: str = Field(default="", description="For the facilitator only.")
    world: dict[str, Any] = Field(default_factory=dict)
    auto: AutoScript | None = None


class Scenario(Strict):
    """A drill: a playbook, run live in a simulated world, with injects and expectations."""

    id: ID
    title: str = Field(min_length=1)
    version: str = "1"
    playbook: str = Field(min_length=1, description="A bundled playbook id or a path.")
    summary: str = ""
    objectives: list[Objective] = Field(default_factory=list)
    audience: str = ""
    roles: list[Role] = Field(default_factory=list)
    duration: Duration | None = None
    world: dict[str, Any] = Field(default_factory=dict)
    variants: list[Variant] = Field(min_length=1)
    phases: dict[Phase, PhaseSpec] = Field(default_factory=dict)
    injects: list[Inject] = Field(default_factory=list)
    expectations: list[Expectation] = Field(default_factory=list)
    survey: list[SurveyQuestion] = Field(default_factory=list)
    metrics: Metrics = Field(default_factory=Metrics)
    auto: AutoScript = Field(default_factory=AutoScript)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    def variant(self, variant_id: str) -> Variant:
        for variant in self.variants:
            if variant.id == variant_id:
                return variant
        raise KeyError(variant_id)

    def inject(self, inject_id: str) -> Inject:
        for inject in self.injects:
            if inject.id == inject_id:
                return inject
        raise KeyError(inject_id)

    def expectation(self, expectation_id: str) -> Expectation:
        for expectation in self.expectations:
            if expectation.id == expectation_id:
                return expectation
        raise KeyError(expectation_id)

    @property
    def world_kind(self) -> str:
        return str(self.world.get("kind") or "npm-host")

    def phase_of(self, step_id: str) -> str | None:
        for phase, spec in self.phases.items():
            if step_id in spec.steps:
                return phase
        return None

    def script(self, variant_id: str) -> AutoScript:
        """The auto script of a variant: the scenario's, with the variant's keys laid over
        (mappings merged key by key)."""
        base = self.auto
        override = self.variant(variant_id).auto
        if override is None:
            return base
        updates: dict[str, Any] = {}
        for key in override.model_fields_set:
            value = getattr(override, key)
            if isinstance(value, dict):
                value = {**getattr(base, key), **value}
            updates[key] = value
        return base.model_copy(update=updates)


Cond.model_rebuild()
