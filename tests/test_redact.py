"""The one redactor: token formats, `name=value` assignments, registered secrets, display form.

Token-shaped strings are built at run time so no token-shaped literal sits in this file.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from runbook.redact import Redactor, fingerprint, redact_value

ALNUM36 = "a1B2c3D4e5" * 3 + "f6G7h8"  # 36 characters
assert len(ALNUM36) == 36

TOKENS = {
    "aws AKIA": "AKIA" + "QW3E" * 4,
    "aws ASIA": "ASIA" + "Z" * 16,
    "npm": "npm_" + ALNUM36,
    "github ghp": "ghp_" + ALNUM36,
    "github gho": "gho_" + ALNUM36,
    "github fine-grained": "github_pat_" + "A" * 22 + "_" + "b9" * 29 + "c",
    "gitlab": "glpat-" + "x-Y_z" * 4,
    "slack": "xoxb-" + "1234567890-abcdefABCDEF",
}
PREFIXES = {
    "aws AKIA": "AKIA",
    "aws ASIA": "ASIA",
    "npm": "npm_",
    "github ghp": "ghp_",
    "github gho": "gho_",
    "github fine-grained": "github_pat_",
    "gitlab": "glpat-",
    "slack": "xoxb-",
}
DISPLAY = re.compile(r"(?P<prefix>[^…]*)…(?P<tail>\S{0,4}) \[sha256:(?P<fp>[0-9a-f]{8})\]")


def pem_block() -> str:
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + str(i) * 8 for i in range(4)])
    kind = "RSA " + "PRIVATE KEY"
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def sha8(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def assert_hidden(secret: str, text: str) -> None:
    assert secret not in text
    middle = secret[len(secret) // 4 : -4]
    assert middle not in text, "no part of the middle of a secret survives"


@pytest.mark.parametrize("name", list(TOKENS))
def test_every_token_format_is_redacted_in_text(redactor: Redactor, name: str) -> None:
    token = TOKENS[name]
    text = f"line with {token} inside, and again: ({token})."
    out = redactor.text(text)
    assert_hidden(token, out)
    shown = f"{PREFIXES[name]}…{token[-4:]} [sha256:{sha8(token)}]"
    assert out == f"line with {shown} inside, and again: ({shown})."


@pytest.mark.parametrize("name", list(TOKENS))
def test_display_form(name: str) -> None:
    token = TOKENS[name]
    shown = redact_value(token)
    match = DISPLAY.fullmatch(shown)
    assert match, shown
    assert match["prefix"] == PREFIXES[name]
    assert match["tail"] == token[-4:]
    assert match["fp"] == fingerprint(token) == sha8(token)
    assert_hidden(token, shown)


def test_display_form_of_a_short_value_has_no_tail() -> None:
    assert redact_value("abcdefgh") == f"… [sha256:{sha8('abcdefgh')}]"


def test_fingerprint_is_stable_and_distinguishes() -> None:
    a, b = TOKENS["npm"], TOKENS["npm"][:-1] + "Z"
    assert redact_value(a) == redact_value(a)
    assert redact_value(a) != redact_value(b), "same prefix and tail, different fingerprint"


def test_private_key_block(redactor: Redactor) -> None:
    pem = pem_block()
    out = redactor.text(f"key file:\n{pem}\nafter")
    assert out == f"key file:\n[private key sha256:{sha8(pem)}]\nafter"
    assert "MIIEvQ" not in out


def test_private_key_block_cut_short_is_still_redacted(redactor: Redactor) -> None:
    pem = pem_block()
    cut = pem[: pem.index("-----END")]
    out = redactor.text("tail of a log: " + cut)
    assert "MIIEvQ" not in out
    assert out.startswith("tail of a log: [private key sha256:")


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("//registry.npmjs.org/:_authToken", "="),
        ("_auth", "="),
        ("password", "="),
        ("PASSWORD", ": "),
        ("SECRET_KEY", "="),
        ("db_password", " = "),
        ("api_key", "="),
        ("x-api-key", ": "),
        ("GITHUB_TOKEN", "="),
    ],
)
def test_assignments_hide_the_value(redactor: Redactor, name: str, sep: str) -> None:
    value = "Zq8" + "wxyz" * 3 + "k"
    out = redactor.text(f"{name}{sep}{value}")
    assert out == f"{name}{sep}…{value[-4:]} [sha256:{sha8(value)}]"


@pytest.mark.parametrize("quote", ['"', "'"])
def test_quoted_assignment(redactor: Redactor, quote: str) -> None:
    value = "correct-horse-battery"
    out = redactor.text(f"password={quote}{value}{quote}")
    assert_hidden(value, out)
    assert out.startswith(f"password={quote}…") and out.endswith(quote)


@pytest.mark.parametrize(
    "text",
    [
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
        "password=${DB_PASSWORD}",
        'SECRET_KEY: "${SECRET_KEY}"',
    ],
)
def test_variable_references_are_kept(redactor: Redactor, text: str) -> None:
    assert redactor.text(text) == text


def test_registered_secrets_are_replaced_everywhere(redactor: Redactor) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"  # an AWS secret key has no prefix to spot
    redactor.add_secret(secret)
    text = f"{secret} at the start, in a url https://u:{secret}@h/ and at the end {secret}"
    out = redactor.text(text)
    assert_hidden(secret, out)
    shown = redact_value(secret)
    assert shown == f"…{secret[-4:]} [sha256:{sha8(secret)}]"
    assert out.count(shown) == 3
    assert redactor({"deep": [{"x": f"k={secret}"}]}) == {"deep": [{"x": f"k={shown}"}]}


def test_longer_registered_secret_wins_over_its_prefix(redactor: Redactor) -> None:
    short, long = "abcdef123", "abcdef123456789"
    redactor.add_secret(short)
    redactor.add_secret(long)
    out = redactor.text(f"v {long}")
    assert out == f"v {redact_value(long)}"


def test_too_short_secrets_are_not_registered(redactor: Redactor) -> None:
    redactor.add_secret("")
    redactor.add_secret("abc")
    assert redactor.text("abc and abcabc") == "abc and abcabc"


def test_nested_data(redactor: Redactor) -> None:
    npm, aws = TOKENS["npm"], TOKENS["aws AKIA"]
    data = {
        "argv": ["npm", "token", "revoke", npm],
        "env": {"AWS_ACCESS_KEY_ID": aws, "count": 3, "flag": True, "none": None},
        "pairs": (npm, {"deeper": [f"key {aws}"]}),
        "n": 1.5,
    }
    out = redactor(data)
    flat = repr(out)
    assert npm not in flat and aws not in flat
    assert out["argv"][:3] == ["npm", "token", "revoke"]
    assert out["argv"][3] == redact_value(npm)
    env = {"AWS_ACCESS_KEY_ID": redact_value(aws), "count": 3, "flag": True, "none": None}
    assert out["env"] == env
    assert out["pairs"] == [redact_value(npm), {"deeper": [f"key {redact_value(aws)}"]}]
    assert out["n"] == 1.5
    assert data["argv"][3] == npm, "the input is not modified"


def test_redacting_twice_changes_nothing_more(redactor: Redactor) -> None:
    npm = TOKENS["npm"]
    text = f"_authToken={npm} password=longenoughpass {pem_block()} ghp {TOKENS['github ghp']}"
    once = redactor.text(text)
    assert redactor.text(once) == once


@pytest.mark.parametrize(
    "text",
    [
        hashlib.sha256(b"x").hexdigest(),
        "sha256_before: " + hashlib.sha256(b"y").hexdigest(),
        "integrity sha512-" + "A" * 86 + "==",
        "commit " + hashlib.sha1(b"z").hexdigest(),
        "token_count: 5",
        "tokens: 2 rotated, 0 left",
        "password: yes",
        "the secret garden is a book",
        "npm_config_cache=/home/user/.npm",
        "node_modules/.bin/tsc --noEmit",
        "AKIAsmall is not a key",
        "ghp_short",
        "version 1.14.1 of axios",
        "2026-03-31T00:21:00Z",
        "550e8400-e29b-41d4-a716-446655440000",
    ],
)
def test_no_false_redaction(redactor: Redactor, text: str) -> None:
    assert redactor.text(text) == text


def test_non_strings_pass_through(redactor: Redactor) -> None:
    for value in (0, 12345678901234567890, 2.5, True, None):
        assert redactor(value) == value
