"""Typed models of the playbook format. Unknown keys are rejected everywhere."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

STEP_ID = r"^[a-z0-9][a-z0-9_-]*$"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
SHA256 = r"^[0-9a-f]{64}$"
SHA1 = r"^[0-9a-f]{40}$"

Severity = Literal["compromised", "at-risk", "unknown", "info"]
Outcome = Literal["succeeded", "failed", "skipped", "outstanding"]
Confidence = Literal["high", "medium", "low"]


def _error_at(title: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error for one place inside the value being validated (pydantic keeps `loc`)."""
    error = PydanticCustomError("value_error", message.replace("{", "{{").replace("}", "}}"))
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _exact_semver(version: str) -> str:
    if not SEMVER.match(version):
        raise ValueError(f"{version!r} is not an exact semver version (like 1.14.0)")
    return version


ExactVersion = Annotated[str, AfterValidator(_exact_semver)]


def _one_or_list(schema: dict[str, Any]) -> None:
    """JSON Schema for a field that also takes one item where it takes a list (`when: {...}`)."""
    arrays = [alt for alt in schema.get("anyOf", []) if alt.get("type") == "array"]
    if arrays:
        schema["anyOf"].insert(0, arrays[0]["items"])


class Strict(BaseModel):
    """Base for every playbook model: unknown keys are an error, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Reference(Strict):
    title: str
    url: str


class TimeWindow(Strict):
    """When the bad versions could be installed (UTC)."""

    start: AwareDatetime
    end: AwareDatetime
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end < self.start:
            message = f"end {_iso(self.end)} is before start {_iso(self.start)}"
            raise _error_at("TimeWindow", ("end",), message, self.end)
        return self


class AffectedPackage(Strict):
    """A package whose listed versions (or every version) are malicious."""

    name: str = Field(min_length=1)
    ecosystem: Literal["npm"] = "npm"
    bad_versions: list[ExactVersion] = Field(default_factory=list)
    any_version: bool = False
    safe_pins: dict[str, ExactVersion] = Field(
        default_factory=dict,
        description="Safe exact version per major line, e.g. {'1': '1.14.0', '0': '0.30.3'}.",
    )
    advisories: list[str] = Field(default_factory=list)
    note: str = ""

    @field_validator("safe_pins", mode="before")
    @classmethod
    def _numeric_lines(cls, value: Any) -> Any:
        # `{1: 1.14.0}` is the natural way to write it in YAML; a major line is text either way
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()
            }
        return value

    @field_validator("safe_pins")
    @classmethod
    def _pins(cls, value: dict[str, str]) -> dict[str, str]:
        for line, version in value.items():
            if version.split(".")[0] != line:
                message = f"safe pin {version!r} is not on major line {line!r}"
                raise _error_at("safe_pins", (line,), message, version)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AffectedPackage:
        if not self.bad_versions and not self.any_version:
            raise ValueError("list bad_versions or set any_version: true")
        for version in self.bad_versions:
            if version in self.safe_pins.values():
                raise ValueError(f"{version} is listed both as bad and as a safe pin")
        return self


class HostArtifact(Strict):
    """A file (or registry value) the malware leaves on a host."""

    path: str
    type: Literal["file", "registry"] = "file"
    sha256: list[Annotated[str, Field(pattern=SHA256)]] = Field(default_factory=list)
    same_as: str | None = Field(
        default=None, description="Only an indicator when identical to this other file."
    )
    description: str = ""
    confidence: Confidence = "high"


class HostArtifacts(Strict):
    macos: list[HostArtifact] = Field(default_factory=list)
    linux: list[HostArtifact] = Field(default_factory=list)
    windows: list[HostArtifact] = Field(default_factory=list)


class Network(Strict):
    domains: list[str] = Field(default_factory=list)
    ips: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)
    user_agents: list[str] = Field(default_factory=list)


class FileHash(Strict):
    name: str
    sha256: str = Field(pattern=SHA256)
    sha1: str | None = Field(default=None, pattern=SHA1)
    description: str = ""
    confidence: Confidence = "high"


class Indicators(Strict):
    dependencies: list[str] = Field(
        default_factory=list, description="Package names whose mere presence is evidence."
    )
    host_files: HostArtifacts = Field(default_factory=HostArtifacts)
    network: Network = Field(default_factory=Network)
    file_hashes: list[FileHash] = Field(default_factory=list)


class Incident(Strict):
    summary: str
    references: list[Reference] = Field(default_factory=list)
    window: TimeWindow
    packages: list[AffectedPackage] = Field(min_length=1)
    indicators: Indicators = Field(default_factory=Indicators)


class Condition(Strict):
    """Holds when an earlier step ended with one of `outcome` and/or reported findings."""

    step: str = Field(pattern=STEP_ID)
    outcome: list[Outcome] | None = Field(default=None, json_schema_extra=_one_or_list)
    findings: Literal["any", "none"] | list[Severity] | None = None

    @field_validator("outcome", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("findings", mode="before")
    @classmethod
    def _findings_word(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("any", "none"):
            raise ValueError(
                "expected 'any', 'none' or a list of severities"
                f" (compromised, at-risk, unknown, info), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if self.outcome is None and self.findings is None:
            raise ValueError("a condition needs 'outcome' or 'findings'")
        return self


class StepSpec(Strict):
    """One step of a playbook as written in YAML."""

    id: str = Field(pattern=STEP_ID)
    uses: str
    title: str = Field(min_length=1)
    description: str = ""
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    confirm: Literal["never", "destructive", "always"] = "destructive"
    when: list[Condition] | None = Field(default=None, json_schema_extra=_one_or_list)
    continue_on_error: bool = False

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("with_", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class Playbook(Strict):
    """A whole playbook: what happened, and what to do about it, in order."""

    id: str = Field(pattern=STEP_ID)
    title: str = Field(min_length=1)
    version: str = Field(min_length=1)
    incident: Incident
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
