"""What a secret looks like: token formats, entropy, secret-like names, and decoys that are not.

Token formats are the redactor's (`runbook.redact.TOKEN_PATTERNS`), so whatever discovery calls a
token is also what the journal redacts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from urllib.parse import unquote, urlsplit

from runbook.redact import TOKEN_PATTERNS
from steps.credentials.model import CredentialType

# redactor pattern name -> credential type (ASIA keys are told apart in `token_type`)
_PATTERN_TYPES: dict[str, CredentialType] = {
    "aws-access-key-id": "aws-access-key",
    "npm-token": "npm-token",
    "github-token": "github-token",
    "github-fine-grained-token": "github-token",
    "gitlab-token": "gitlab-token",
    "slack-token": "slack-token",
    "private-key": "private-key",
}
PATTERNS = [(_PATTERN_TYPES[name], pattern) for name, pattern in TOKEN_PATTERNS]
AWS_KEY_ID = dict(TOKEN_PATTERNS)["aws-access-key-id"]

# The keys AWS documentation uses everywhere; they are in countless READMEs and samples.
AWS_EXAMPLE_VALUES = frozenset(
    {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ASIAIOSFODNN7EXAMPLE"}
)
SECRET_NAME = re.compile(
    r"(?:token|secret|passw(?:or)?d|passwd|pwd|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|auth|credential|signing[_-]?key|client[_-]?key|encryption[_-]?key|session[_-]?key"
    r"|webhook|dsn|cookie|(?:^|[_.-])key$)",
    re.IGNORECASE,
)
# Names that say "secret" but hold where a secret lives, or how it is used, not the secret.
NOT_SECRET_NAME = re.compile(
    r"_(?:file|path|dir|url|uri|endpoint|host|port|type|name|user(?:name)?|id|region"
    r"|expires?(?:_at)?|ttl|timeout|len(?:gth)?|method|mode|header|prefix)$|public|publishable",
    re.IGNORECASE,
)
# Environment variables that hold sockets, paths or session plumbing, never a secret.
NOT_SECRET_ENV = frozenset(
    {
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "GPG_AGENT_INFO",
        "GPG_TTY",
        "XAUTHORITY",
        "XAUTHLOCALHOSTNAME",
        "DBUS_SESSION_BUS_ADDRESS",
        "KRB5CCNAME",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_CREDENTIAL_EXPIRATION",
        "PYTHON_KEYRING_BACKEND",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
    }
)
UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
NUMBER = re.compile(r"^[-+]?(?:\d+(?:[._]\d+)*|0x[0-9a-fA-F]+)(?:[eE][-+]?\d+)?$")
REFERENCE = re.compile(r"^\$(?:\{[^}]*\}|[A-Za-z_]\w*)$")
PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>|\{\{.*\}\}|%[A-Za-z_]\w*%|your[-_ ].*|(?:x{3,}|\*{3,}|\.{3,}|#{3,})"
    r"|(?:change[-_ ]?me|replace[-_ ]?me|placeholder|dummy|example|sample|redacted|secret|password"
    r"|token|none|null|nil|undefined|todo|tbd|fixme|test|testing|empty|default|foo|bar|foobar"
    r"|xyz|abc|abc123|12345678|123456|letmein|changeit)(?:[-_ ].*)?)$",
    re.IGNORECASE,
)
BOOLEAN = frozenset({"true", "false", "yes", "no", "on", "off", "enabled", "disabled", "y", "n"})
FILE_PATH = re.compile(r"^(?:~|\.{1,2})?/[\w.@%+-]+(?:/[\w.@%+ -]*)*$|^[A-Za-z]:\\|^\\\\")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://", re.ASCII)
# base64 without padding: an AWS secret key starts with `/` once in 64 and is no file path
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{20,}")
MIN_SECRET_LENGTH = 8
URL_PASSWORD_DECOYS = frozenset(
    {"empty", "AWS documentation example", "a reference to another variable", "a placeholder"}
)


def token_type(value: str) -> tuple[CredentialType, str] | None:
    """The credential type of the first token format in `value`, and the token itself."""
    for kind, pattern in PATTERNS:
        match = pattern.search(value)
        if match:
            token = match.group(0)
            if token in AWS_EXAMPLE_VALUES or token.endswith("EXAMPLE"):
                continue
            if kind == "aws-access-key" and token.startswith("ASIA"):
                return "aws-temporary-key", token
            return kind, token
    return None


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (0 for an empty string)."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def high_entropy(value: str) -> bool:
    """Looks random enough to be a generated secret rather than a word or a setting."""
    if len(value) < 12 or any(c.isspace() for c in value):
        return False
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    entropy = shannon_entropy(value)
    if len(value) >= 20:
        return entropy >= 3.3 and classes >= 2
    return entropy >= 3.0 and classes >= 3


def named_like_secret(name: str) -> bool:
    """The name says it holds a secret (`DB_PASSWORD`, `api_key`), not where one lives."""
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def url_password(value: str) -> tuple[str, str] | None:
    """(host, password) of a URL with credentials in it (`scheme://user:PASS@host`)."""
    if not URL.match(value):
        return None
    try:
        parts = urlsplit(value)
        password = parts.password
        host = parts.hostname or ""
    except ValueError:
        return None
    if not password:
        return None
    return host, unquote(password)


def decoy_reason(value: str) -> str | None:
    """Why `value` is not a secret even where one is expected, or None when it may be one."""
    text = value.strip()
    if not text:
        return "empty"
    if text in AWS_EXAMPLE_VALUES or text.endswith(("EXAMPLE", "EXAMPLEKEY")):
        return "AWS documentation example"
    if REFERENCE.match(text) or text.startswith("${"):
        return "a reference to another variable"
    if text.lower() in BOOLEAN or NUMBER.match(text):
        return "a boolean or number"
    if UUID.match(text):
        return "a UUID"
    if PLACEHOLDER.match(text) or len(set(text)) <= 2:
        return "a placeholder"
    if URL.match(text):
        return None if url_password(text) else "a URL without credentials"
    if FILE_PATH.match(text) and not _base64_secret(text):
        return "a file path"
    if ":" in text and all(FILE_PATH.match(p) for p in text.split(":")):
        return "a file path"
    if len(text) < MIN_SECRET_LENGTH:
        return "too short to be a secret"
    return None


def _base64_secret(text: str) -> bool:
    """Random base64 (upper and lower case letters and digits, nothing a path name would add:
    no dot, dash, underscore), which merely happens to start with a slash."""
    return bool(
        BASE64_RUN.fullmatch(text)
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )


def classify(name: str, value: str) -> tuple[CredentialType, str] | None:
    """Type and secret part of `value` held under `name`, or None when it is no secret.

    A token format decides first; then a URL with a password in it; then a name that says secret
    with a high-entropy value (`generic-secret`).
    """
    if decoy_reason(value):
        return None
    found = token_type(value)
    if found:
        return found
    in_url = url_password(value)
    if in_url:
        password = in_url[1]  # short or all digits is still a password: only placeholders are not
        if decoy_reason(password) in URL_PASSWORD_DECOYS:
            return None
        found = token_type(password)
        return found or ("generic-secret", password)
    if named_like_secret(name) and high_entropy(value):
        return "generic-secret", value
    return None
