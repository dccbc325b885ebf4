"""AWS: static and temporary keys in ~/.aws/credentials and ~/.aws/config, and profiles whose
credentials come from SSO, an assumed role, a credential process or a web identity token."""

from __future__ import annotations

import os
from pathlib import Path

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import AWS_KEY_ID, decoy_reason
from steps.credentials.sources import revoke
from steps.credentials.sources.common import Collector, IniEntry, expand, parse_ini

KEY_ID, SECRET, SESSION = "aws_access_key_id", "aws_secret_access_key", "aws_session_token"
# the setting that identifies a profile without a static key, in order of preference
PROFILE_SETTINGS = (
    ("role_arn", "role"),
    ("sso_start_url", "sso"),
    ("sso_session", "sso"),
    ("credential_process", "credential_process"),
    ("web_identity_token_file", "web_identity"),
)
SETTINGS = frozenset({KEY_ID, SECRET, SESSION, "sso_start_url", *(s for s, _ in PROFILE_SETTINGS)})


def aws_files(home: Path, env: dict[str, str]) -> list[tuple[Path, str]]:
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE")
    config = env.get("AWS_CONFIG_FILE")
    return [
        (
            expand(credentials, home) if credentials else home / ".aws" / "credentials",
            "credentials",
        ),
        (expand(config, home) if config else home / ".aws" / "config", "config"),
    ]


def key_credential(
    key_id: str,
    location: Location,
    *,
    secret: tuple[str, Location] | None = None,
    session: tuple[str, Location] | None = None,
    detail: dict[str, str],
    role: str | None = None,
) -> Credential:
    """An access key id with its secret (and session token) as companions."""
    companions, locations = {}, {}
    for name, found in ((SECRET, secret), (SESSION, session)):
        if found and found[0]:
            companions[name], locations[name] = found
    if key_id.startswith("ASIA"):
        return Credential(
            "aws-temporary-key",
            location,
            key_id,
            "manual",
            revoke.aws_role_sessions(role),
            detail,
            companions,
            locations,
        )
    rotation = "aws" if SECRET in companions else "manual"
    return Credential(
        "aws-access-key",
        location,
        key_id,
        rotation,
        revoke.AWS_USERS,
        detail,
        companions,
        locations,
    )


def _profile_name(section: str, kind: str) -> str | None:
    """The profile a section describes; None for `[sso-session x]`, `[services x]` and the like."""
    if kind == "credentials":
        return section
    if section == "default":
        return "default"
    if section.startswith("profile "):
        return section[len("profile ") :].strip()
    return None


def _wanted(section: str | None, key: str) -> bool:
    """The settings discovery looks at; the rest of a (possibly huge) file is not kept."""
    return key in SETTINGS


def scan_aws_file(path: Path, kind: str, collector: Collector, home: Path | None) -> None:
    lines = collector.lines(path)
    if lines is None:
        return

    def malformed(line: int, message: str) -> None:
        collector.problem(path, f"malformed AWS {kind} file: {message}", line)

    ini = parse_ini(lines, lower_keys=True, keep=_wanted, on_error=malformed)
    for line, message in _orphans(ini):
        collector.problem(path, message, line)
    sso_urls = {
        name[len("sso-session ") :].strip(): entries["sso_start_url"]
        for name in ini.sections
        if name.startswith("sso-session ") and "sso_start_url" in (entries := ini.section(name))
    }
    for section in ini.sections:
        profile = _profile_name(section, kind)
        if profile is None:
            continue
        entries = ini.section(section)
        detail = {"profile": profile, "file": kind}
        key_entry = entries.get(KEY_ID)
        if key_entry and _usable_key(key_entry.value):
            collector.add(
                key_credential(
                    key_entry.value,
                    _location(path, key_entry),
                    secret=_companion(path, entries.get(SECRET)),
                    session=_companion(path, entries.get(SESSION)),
                    detail=detail,
                    role=entries["role_arn"].value if "role_arn" in entries else None,
                )
            )
            continue
        for setting, how in PROFILE_SETTINGS:
            entry = entries.get(setting)
            if entry is None or not entry.value:
                continue
            value = entry.value
            if setting == "sso_session" and entry.value in sso_urls:
                value = sso_urls[entry.value].value
            collector.add(_profile_credential(path, entry, value, how, detail, entries, home))
            break


def _usable_key(value: str) -> bool:
    return bool(AWS_KEY_ID.fullmatch(value)) and not decoy_reason(value)


def _location(path: Path, entry: IniEntry) -> Location:
    return Location("file", entry.key, path, entry.line, entry.section)


def _companion(path: Path, entry: IniEntry | None) -> tuple[str, Location] | None:
    if (
        entry is None
        or not entry.value
        or decoy_reason(entry.value) == "a reference to another variable"
    ):
        return None
    return entry.value, _location(path, entry)


def _orphans(ini) -> list[tuple[int, str]]:
    return [
        (e.line, "a setting outside any [profile] section is ignored by AWS tools")
        for e in ini.entries
        if e.section is None
    ]


def _profile_credential(
    path: Path,
    entry: IniEntry,
    value: str,
    how: str,
    detail: dict[str, str],
    entries: dict[str, IniEntry],
    home: Path | None,
) -> Credential:
    """A profile with no static key: what identifies it, and the cached tokens to delete."""
    profile = detail["profile"]
    role = entries["role_arn"].value if "role_arn" in entries else None
    if how == "sso":
        where = (
            f"`aws sso logout --profile {profile}` (ends the SSO session), and revoke the user's "
            "sessions in the IAM Identity Center console > Users > (user) > Active sessions"
        )
    elif how == "credential_process":
        where = "the store the credential process reads from; " + revoke.aws_role_sessions(role)
    else:
        where = revoke.aws_role_sessions(role)
    caches = _caches(home, path)
    detail = {**detail, "kind": how}
    if caches:
        detail["cache"] = caches
    return Credential(
        "aws-profile",
        _location(path, entry),
        value,
        "manual",
        f"{where}; {revoke.AWS_CACHES}",
        detail,
    )


def _caches(home: Path | None, path: Path) -> str:
    """The cached tokens of SSO and assumed roles, with how many files each holds."""
    base = home / ".aws" if home is not None else path.parent
    out = []
    for sub in ("sso/cache", "cli/cache"):
        folder = base / sub
        try:
            count = sum(1 for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
        except OSError:
            continue
        display = f"~/.aws/{sub}" if home is not None else str(folder)
        out.append(f"{display} ({count} file{'s' if count != 1 else ''}: delete)")
    return ", ".join(out)
