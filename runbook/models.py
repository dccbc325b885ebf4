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


def _target_relative(path: str) -> str:
    """A path that names a place inside the target: relative, no `~`, no `..` component."""
    if not path:
        raise ValueError("must not be empty (use '.' for the target itself)")
    if "\x00" in path:
        raise ValueError("contains a NUL character")
    if path.startswith("~"):
        raise ValueError(f"{path!r} starts with '~'; give a path relative to the target")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise ValueError(f"{path!r} is an absolute path; give a path relative to the target")
    if ".." in re.split(r"[/\\]", path):
        raise ValueError(f"{path!r} goes up with '..'; a path must stay inside the target")
    return path


TargetRelativePath = Annotated[
    str,
    AfterValidator(_target_relative),
    Field(description="A path relative to the target: not absolute, no '~', no '..'."),
]


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
    bad_ranges: list[str] = Field(
        default_factory=list,
        description="node-semver ranges of bad versions, e.g. '>=4.1.1 <=4.1.2' (from an "
        "advisory's ranges; versions the registry no longer lists are caught too).",
    )
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

    @field_validator("bad_ranges")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        import nodesemver  # only playbooks with ranges need it

        for index, text in enumerate(value):
            normal = nodesemver.valid_range(text, loose=False)
            if normal is None:
                message = f"{text!r} is not a node-semver range (like '>=4.1.1 <=4.1.2')"
                raise _error_at("bad_ranges", (index,), message, text)
            if normal in ("*", ">=0.0.0", ">=0.0.0-0"):
                message = f"{text!r} matches every version: set any_version: true instead"
                raise _error_at("bad_ranges", (index,), message, text)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AffectedPackage:
        if not self.bad_versions and not self.bad_ranges and not self.any_version:
            raise ValueError("list bad_versions or bad_ranges, or set any_version: true")
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


OsName = Literal["macos", "linux", "windows"]
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")


def _ip_address(value: str) -> str:
    import ipaddress  # only playbooks with network indicators need it

    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (like 142.11.206.73 or ::1)") from None


def _domain(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a domain name (like sfrclak.com: no scheme, no path)")
    return value.lower().rstrip(".")


def _url(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from None
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"{value!r} is not a URL (like http://sfrclak.com:8000/6202033)")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


IpAddress = Annotated[str, AfterValidator(_ip_address)]
DomainName = Annotated[str, AfterValidator(_domain)]
Url = Annotated[str, AfterValidator(_url)]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]


class Network(Strict):
    """What the malware talks to. `host_sweep` looks for live connections to `ips`, to what
    `domains` (and the hosts of `urls`) resolve to now, and to `ports`."""

    domains: list[DomainName] = Field(default_factory=list)
    ips: list[IpAddress] = Field(default_factory=list)
    ports: list[Port] = Field(
        default_factory=list,
        description="TCP/UDP ports of the C2 (the ports of `urls` count too).",
    )
    urls: list[Url] = Field(default_factory=list)
    user_agents: list[str] = Field(default_factory=list)


class ProcessIndicator(Strict):
    """A process the malware runs. Every criterion given must match; give at least one of
    `name`, `exe` and `cmdline`."""

    os: list[OsName] = Field(
        default_factory=list, description="Systems it applies to; empty: every system."
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        description="Glob on the process name (case-insensitive), e.g. `com.apple.act.mond`.",
    )
    exe: str | None = Field(
        default=None,
        min_length=1,
        description="Path of the executable (environment variables such as %PROGRAMDATA% "
        "allowed); matched exactly.",
    )
    cmdline: Annotated[str, AfterValidator(_regex)] | None = Field(
        default=None,
        description="Regular expression searched in the command line (arguments joined by "
        "single spaces), e.g. `python3?\\s+/tmp/ld\\.py`.",
    )
    same_as: str | None = Field(
        default=None,
        description="Only an indicator when the executable is identical to this file (a renamed "
        "copy of a system binary, as for host files).",
    )
    description: str = ""
    confidence: Confidence = "high"

    @model_validator(mode="after")
    def _something_to_match(self) -> ProcessIndicator:
        if not (self.name or self.exe or self.cmdline):
            raise ValueError("a process indicator needs 'name', 'exe' or 'cmdline'")
        return self


class FileHash(Strict):
    name: str
    sha256: str = Field(pattern=SHA256)
    sha1: str | None = Field(default=None, pattern=SHA1)
    description: str = ""
    confidence: Confidence = "high"


def _file_name(value: str) -> str:
    if not value or value in (".", "..") or re.search(r"[/\\\x00]", value):
        raise ValueError(f"{value!r} is not a plain file name (like bundle.js: no '/', no '\\')")
    return value


def _repo_glob(value: str) -> str:
    _target_relative(value)
    if "\\" in value:
        raise ValueError(f"{value!r}: separate the parts of the path with '/', not '\\'")
    parts = value.split("/")
    if any(part in ("", ".") for part in parts):
        raise ValueError(
            f"{value!r} has an empty or '.' part; write it like .github/workflows/*.yml"
        )
    if any("**" in part for part in parts):
        raise ValueError(
            f"{value!r}: '**' is not supported; '*' matches within one part of the path"
        )
    return value


class PackageFile(Strict):
    """A file a malicious version adds at the root of its package (the payload its install script
    runs), looked for in every installed package and matched by its SHA-256."""

    name: Annotated[str, AfterValidator(_file_name)] = Field(
        description="File name at the package's root, e.g. `bundle.js`."
    )
    sha256: list[Annotated[str, Field(pattern=SHA256)]] = Field(
        default_factory=list,
        description="Known samples. Empty: the name alone is the indicator.",
    )
    packages: list[str] = Field(
        default_factory=list, description="Only inside these packages; empty: in any package."
    )
    other_hashes: Literal["ignore", "at-risk"] = Field(
        default="ignore",
        description="A same-named file whose digest is not listed: `ignore` it (a common name "
        "such as bundle.js) or report it `at-risk` (a name only the malware uses: a new variant).",
    )
    description: str = ""
    confidence: Confidence = "high"


class RepoFile(Strict):
    """A file the malware writes into a repository (a GitHub Actions workflow), looked for in the
    working tree of every repository scanned and, with `history`, in every commit of every ref."""

    path: Annotated[str, AfterValidator(_repo_glob)] = Field(
        description="Path under the repository root, '/'-separated; `*`, `?` and `[...]` match "
        "within one part (`.github/workflows/*.yml`)."
    )
    sha256: list[Annotated[str, Field(pattern=SHA256)]] = Field(
        default_factory=list, description="Known samples: a listed digest is evidence."
    )
    patterns: list[Annotated[str, AfterValidator(_regex)]] = Field(
        default_factory=list,
        description="Regular expressions searched in the file's text (multi-line mode); the "
        "file is evidence when every one is found. With neither `sha256` nor `patterns`, the "
        "path alone is evidence.",
    )
    description: str = ""
    confidence: Confidence = "high"


class Indicators(Strict):
    dependencies: list[str] = Field(
        default_factory=list, description="Package names whose mere presence is evidence."
    )
    host_files: HostArtifacts = Field(default_factory=HostArtifacts)
    network: Network = Field(default_factory=Network)
    processes: list[ProcessIndicator] = Field(
        default_factory=list, description="Processes the malware runs (checked by host_sweep)."
    )
    file_hashes: list[FileHash] = Field(default_factory=list)
    package_files: list[PackageFile] = Field(
        default_factory=list,
        description="Payload files inside installed packages, matched by name and SHA-256.",
    )
    repo_files: list[RepoFile] = Field(
        default_factory=list,
        description="Files the malware writes into repositories (workflows), by path, hash or "
        "content, in the working tree and the git history.",
    )
    runner_names: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Names of self-hosted GitHub Actions runners the malware registers; a "
        "workflow whose `runs-on` names one is evidence.",
    )


class Incident(Strict):
    summary: str
    references: list[Reference] = Field(default_factory=list)
    window: TimeWindow
    packages: list[AffectedPackage] = Field(min_length=1)
    indicators: Indicators = Field(default_factory=Indicators)


class Condition(Strict):
    """Holds when an earlier step ended with one of `outcome` and/or reported findings."""

    step: str = Field(pattern=STEP_ID, max_length=64)
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

    id: str = Field(pattern=STEP_ID, max_length=64)
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

    id: str = Field(pattern=STEP_ID, max_length=64)
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
