"""The one redactor every journal line, report and screen passes through."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

# Token formats as public rule sets (gitleaks) write them.
TOKEN_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b")),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b")),
    ("github-fine-grained-token", re.compile(r"\bgithub_pat_\w{82}\b")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    ("slack-token", re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}\b")),
    (
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S
        ),
    ),
]
# `name=value` where the name says it holds a secret; `${VAR}` references are not secrets.
# The name is a run of `[\w.:/@-]` whose last `[\w-]` stretch holds one of the words. Written so
# the engine never rescans a run: a match starts only where a run starts (lookbehind), the
# stretch and the spaces around the separator are possessive, and only the prefix up to a
# `.:/@` backtracks, one candidate stretch at a time. Linear in the text (a 200,000-character
# word run takes milliseconds; the naive `[\w.:/@-]*(?:words)[\w-]*` took minutes).
SECRET_WORDS = r"(?:_authToken|_auth|_password|password|passwd|secret|token|api[_-]?key)"
ASSIGNMENT = re.compile(
    r"(?<![\w.:/@-])"
    r"(?P<name>(?:[\w.:/@-]*[.:/@])?(?=[\w-]*?" + SECRET_WORDS + r")[\w-]*+)"
    r"(?P<sep>\s*+[=:]\s*+)(?P<q>[\"']?)(?P<value>(?!\$\{)[^\s\"',;]{8,})",
    re.IGNORECASE,
)
# The password of `scheme://user:password@host` (a registry URL in a lockfile or an npmrc). The
# lookbehind keeps it linear: only a position right after `://` starts a match.
URL_PASSWORD = re.compile(r"(?<=://)(?P<user>[^\s:/@]*):(?P<password>[^\s/@]+)@")
KNOWN_PREFIXES = (
    "github_pat_",
    "npm_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "xoxb-",
    "xoxa-",
    "xoxp-",
    "xoxr-",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "-----BEGIN",
)


def fingerprint(value: str) -> str:
    """Short, stable, one-way identifier of a secret."""
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def redact_value(value: str) -> str:
    """Display form of a secret: known prefix, last four characters, short fingerprint."""
    prefix = next((p for p in KNOWN_PREFIXES if value.startswith(p)), "")
    if prefix == "-----BEGIN":
        return f"[private key sha256:{fingerprint(value)}]"
    tail = value[-4:] if len(value) >= 12 else ""
    return f"{prefix}…{tail} [sha256:{fingerprint(value)}]"


class Redactor:
    """Replaces every known secret value and every token-shaped string in text and data."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add_secret(self, value: str) -> None:
        """Register a value found at run time (a secret key, say) so it is never written out."""
        if value and len(value) >= 6:
            with self._lock:
                self._secrets.add(value)

    def text(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, redact_value(secret))
        for _, pattern in TOKEN_PATTERNS:
            text = pattern.sub(lambda m: redact_value(m.group(0)), text)
        if "://" in text:
            text = URL_PASSWORD.sub(self._url_password, text)
        return ASSIGNMENT.sub(self._assignment, text)

    @staticmethod
    def _url_password(match: re.Match[str]) -> str:
        password = match.group("password")
        if "…" in password:
            return match.group(0)
        return f"{match.group('user')}:{redact_value(password)}@"

    @staticmethod
    def _assignment(match: re.Match[str]) -> str:
        value = match.group("value")
        if "…" in value or value.startswith("[sha256:"):
            return match.group(0)
        return f"{match.group('name')}{match.group('sep')}{match.group('q')}{redact_value(value)}"

    def __call__(self, data: Any) -> Any:
        """Redact strings anywhere inside dicts, lists and tuples."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {key: self(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self(item) for item in data]
        return data
