"""`NAME=value` pairs, from the process environment or a `.env` file, judged as credentials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import (
    NOT_SECRET_ENV,
    classify,
    decoy_reason,
    token_type,
)
from steps.credentials.sources import revoke
from steps.credentials.sources.aws import key_credential
from steps.credentials.sources.common import Collector
from steps.credentials.sources.npm import NpmContext, reference_name

NPM_NAMES = frozenset({"NPM_TOKEN", "NODE_AUTH_TOKEN", "NPM_AUTH_TOKEN", "YARN_NPM_AUTH_TOKEN"})
GITHUB_NAMES = frozenset(
    {"GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN", "GITHUB_PAT"}
)
GITLAB_NAMES = frozenset({"GITLAB_TOKEN", "GL_TOKEN", "GITLAB_PRIVATE_TOKEN", "CI_JOB_TOKEN"})


@dataclass(frozen=True)
class Assignment:
    name: str
    value: str = field(repr=False)
    location: Location


AWS_SUFFIXES = ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN")


def relevant(a: Assignment, npm: NpmContext) -> bool:
    """Whether `judge` may report `a` or pair it with another: an AWS name, or a credential on
    its own. The rest can be dropped before judging (a huge file then costs no memory)."""
    return a.name.upper().endswith(AWS_SUFFIXES) or _one(a, npm) is not None


def judge(
    assignments: Sequence[Assignment], collector: Collector, npm: NpmContext, *, origin: str
) -> None:
    """Add the credentials among `assignments`; `origin` ("env", ".env") goes into AWS details."""
    by_name = {a.name: a for a in assignments}
    used: set[str] = set()
    for a in assignments:
        if not a.name.upper().endswith("ACCESS_KEY_ID"):
            continue
        found = token_type(a.value)
        if decoy_reason(a.value) or not found or found[1] != a.value.strip():
            used.add(a.name)  # an example or reference: neither it nor its secret is reported
            continue
        prefix = a.name[: -len("ACCESS_KEY_ID")]
        secret = by_name.get(prefix + "SECRET_ACCESS_KEY")
        session = by_name.get(prefix + "SESSION_TOKEN")
        pair = {}
        for name, other in (("secret", secret), ("session", session)):
            if other is not None and not reference_name(other.value) and other.value.strip():
                pair[name] = (other.value.strip(), other.location)
                used.add(other.name)
        used.add(a.name)
        collector.add(
            key_credential(
                a.value.strip(),
                a.location,
                secret=pair.get("secret"),
                session=pair.get("session"),
                detail={"file": origin},
            )
        )
    for a in assignments:
        if a.name in used or a.name in NOT_SECRET_ENV:
            continue
        credential = _one(a, npm)
        if credential is not None:
            collector.add(credential)


def _one(a: Assignment, npm: NpmContext) -> Credential | None:
    name, value = a.name, a.value.strip()
    upper = name.upper()
    reference = npm.references.get(name)
    npm_config = upper.startswith("NPM_CONFIG_") and upper.endswith("_AUTHTOKEN")
    if reference or upper in NPM_NAMES or npm_config:
        if decoy_reason(value):
            return None
        detail = {"registry": npm.default_registry}
        if npm_config and "//" in name:
            detail["registry"] = "https:" + name[name.index("//") : name.rindex(":")]
        if reference:
            detail = dict(reference)
        return Credential(
            "npm-token", a.location, value, "npm", revoke.npm(detail["registry"]), detail
        )
    if upper in GITHUB_NAMES or upper in GITLAB_NAMES:
        if decoy_reason(value):
            return None
        found = token_type(value)
        kind = found[0] if found else ("github-token" if upper in GITHUB_NAMES else "gitlab-token")
        return Credential(kind, a.location, value, "manual", revoke.for_type(kind, value), {})
    found = classify(name, value)
    if found is None:
        return None
    kind, secret = found
    if kind == "npm-token":
        detail = {"registry": npm.default_registry}
        return Credential(kind, a.location, secret, "npm", revoke.npm(detail["registry"]), detail)
    return Credential(
        kind, a.location, secret, "manual", revoke.for_type(kind, secret, name=name), {}
    )


def from_env(env: Mapping[str, str], collector: Collector, npm: NpmContext) -> None:
    """The process environment."""
    assignments = [
        Assignment(name, value, Location("env", name))
        for name, value in env.items()
        if isinstance(value, str) and value
    ]
    judge(assignments, collector, npm, origin="env")
