"""What a discovered credential is: its type, where it lives, how it is shown and how it is rotated.

A `Credential` holds its secret value in memory only. `public()` is the one way out of the process
for anything about it: redacted display, fingerprint and location, never the value.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runbook.redact import fingerprint, redact_value

CredentialType = Literal[
    "aws-access-key",  # static IAM user key (AKIA...) with its secret
    "aws-temporary-key",  # STS credentials (ASIA...): revoke the role's sessions by hand
    "aws-profile",  # an SSO / role / credential_process profile: no static key in the file
    "npm-token",
    "github-token",
    "gitlab-token",
    "slack-token",
    "private-key",  # SSH or other PEM private key
    "docker-auth",  # a registry login in ~/.docker/config.json
    "git-credential",  # a password or token in ~/.git-credentials
    "generic-secret",  # high-entropy value under a name that says it is a secret
    "gcp-credential",  # Google Cloud user, application-default or service-account credentials
    "azure-credential",  # Azure CLI tokens, service principals
]
# How the credential gets rotated: by `rotate_aws_keys`, by `rotate_npm_tokens`, by a person
# (a checklist item), or not at all because runbook itself created it after the incident.
Rotation = Literal["aws", "npm", "manual", "rotated"]
Source = Literal["env", "file", "keyring"]


@dataclass(frozen=True)
class Location:
    """Where a value lives: a file line, an environment variable or a keyring entry."""

    source: Source
    name: str  # env var name, key in the file (`aws_access_key_id`, `//host/:_authToken`), entry
    path: Path | None = None
    line: int | None = None  # 1-based
    section: str | None = None  # ini profile, yaml parent key, registry host...

    def display(self, home: Path | None = None) -> str:
        if self.source == "env":
            return f"env ${self.name}"
        if self.source == "keyring":
            return f"keyring {self.name}"
        shown = str(self.path)
        if home is not None and self.path is not None:
            with contextlib.suppress(ValueError):
                shown = "~/" + str(self.path.relative_to(home))
        where = f"{shown}:{self.line}" if self.line else shown
        inside = f"[{self.section}] " if self.section else ""
        return f"{where} {inside}{self.name}".rstrip()

    def public(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "path": os.fspath(self.path) if self.path else None,
            "line": self.line,
            "section": self.section,
        }


@dataclass(eq=False)
class Credential:
    """One secret value found at one location. Never print it: use `redacted` or `public()`."""

    type: CredentialType
    location: Location
    value: str = field(repr=False)
    rotation: Rotation
    revoke_at: str  # the exact place a person revokes it (URL, console path, command)
    detail: dict[str, str] = field(default_factory=dict)  # non-secret context: profile, registry...
    # secret companions of the value (AWS: the secret access key, the session token) and where
    # each lives, so a rotation can rewrite them in place
    companions: dict[str, str] = field(default_factory=dict, repr=False)
    companion_locations: dict[str, Location] = field(default_factory=dict)
    # what went wrong reading the file(s) it was found in: lines skipped as not UTF-8 or too
    # long. The credential was still found, but the file may hold more than was listed.
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.value)

    @property
    def redacted(self) -> str:
        return redact_value(self.value)

    def secret_values(self) -> list[str]:
        """Every secret this credential carries, for the redactor."""
        return [self.value, *self.companions.values()]

    def public(self, home: Path | None = None) -> dict[str, Any]:
        """JSON-safe and redacted: what may reach the journal, a report or the screen."""
        return {
            "type": self.type,
            "where": self.location.display(home),
            "location": self.location.public(),
            "redacted": self.redacted,
            "fingerprint": self.fingerprint,
            "rotation": self.rotation,
            "revoke_at": self.revoke_at,
            "detail": dict(self.detail),
            "notes": list(self.notes),
        }


@dataclass
class Discovery:
    """Everything discovery found, plus what it could not read (never fatal)."""

    credentials: list[Credential] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, what went wrong)

    def secret_values(self) -> list[str]:
        return [v for c in self.credentials for v in c.secret_values() if v]
