"""Google Cloud credentials the gcloud CLI and the client libraries keep on disk (Shai-Hulud read
them to empty Secret Manager): Application Default Credentials, the accounts `gcloud auth login`
stored, and a service-account key named by `GOOGLE_APPLICATION_CREDENTIALS`.

- `application_default_credentials.json` and `legacy_credentials/<account>/adc.json`: a user's
  refresh token (`authorized_user`) or a service account's private key (`service_account`);
- `credentials.db` and `access_tokens.db`: gcloud's SQLite stores of every logged-in account's
  refresh and access tokens. They are not opened as databases: their presence is the finding
  (the value is the file's digest, so a rotated store shows as a new credential).

The gcloud folder is `$CLOUDSDK_CONFIG`, else `~/.config/gcloud` (`%APPDATA%\\gcloud` on Windows).
Every one of these is rotated by a person (`manual`), at the place `revoke_at` names.
"""

from __future__ import annotations

import json
from pathlib import Path

from runbook.safeio import SMALL_FILE_LIMIT
from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason
from steps.credentials.sources.common import Collector, expand

TYPE = "gcp-credential"
ADC = "application_default_credentials.json"
STORES = {
    "credentials.db": "gcloud's stored logins (the refresh token of every `gcloud auth login` "
    "account)",
    "access_tokens.db": "gcloud's cached access tokens (valid about an hour; revoking the "
    "logins ends them)",
}
REVOKE_USER = (
    "`gcloud auth revoke {account}` and `gcloud auth application-default revoke`, then remove "
    '"Google Cloud SDK" at https://myaccount.google.com/connections (third-party access); '
    "an admin can also sign the user out: Google Admin console > Users > (user) > Security > "
    "Sign-in cookies > Reset"
)
REVOKE_KEY = (
    "`gcloud iam service-accounts keys delete {key} --iam-account={email}` (Google Cloud "
    "console > IAM & Admin > Service accounts > {email} > Keys), after creating its replacement"
)
REVOKE_STORE = (
    "`gcloud auth list`, then `gcloud auth revoke --all` (revokes every stored login's refresh "
    'token), then `gcloud auth login` again; remove "Google Cloud SDK" at '
    "https://myaccount.google.com/connections"
)


def config_dirs(home: Path, env: dict[str, str]) -> list[Path]:
    if env.get("CLOUDSDK_CONFIG"):
        return [expand(env["CLOUDSDK_CONFIG"], home)]
    return [home / ".config" / "gcloud", home / "AppData" / "Roaming" / "gcloud"]


def scan(home: Path, env: dict[str, str], collector: Collector) -> None:
    for folder in config_dirs(home, env):
        path = folder / ADC
        if collector.first_visit(path):
            scan_key_file(path, collector, "application default credentials")
        for name, what in STORES.items():
            path = folder / name
            if collector.first_visit(path):
                _store(path, what, collector)
        legacy = folder / "legacy_credentials"
        try:
            accounts = sorted(p for p in legacy.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            accounts = []
        for account in accounts:
            path = account / "adc.json"
            if collector.first_visit(path):
                scan_key_file(path, collector, "legacy credentials", account=account.name)
    named = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        path = expand(named, home)
        if collector.first_visit(path):
            scan_key_file(path, collector, "$GOOGLE_APPLICATION_CREDENTIALS", missing_ok=False)


def scan_key_file(
    path: Path, collector: Collector, what: str, *, account: str = "", missing_ok: bool = True
) -> None:
    """An ADC or service-account key JSON file: its refresh token or private key."""
    text = collector.read(path, missing_ok=missing_ok)
    if text is None:
        return
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        collector.problem(path, f"malformed JSON: {getattr(exc, 'msg', 'not valid JSON')}", line)
        return
    if not isinstance(doc, dict):
        return
    kind = str(doc.get("type") or "")
    if kind == "service_account":
        key, email = str(doc.get("private_key_id") or "KEY_ID"), str(doc.get("client_email") or "")
        secret, field = doc.get("private_key"), "private_key"
        detail = {"kind": "service account key", "email": email, "key_id": key, "file": what}
        revoke_at = REVOKE_KEY.format(key=key, email=email or "SERVICE_ACCOUNT_EMAIL")
    elif kind == "authorized_user":
        who = account or str(doc.get("account") or "") or "ACCOUNT"
        secret, field = doc.get("refresh_token"), "refresh_token"
        detail = {"kind": "user login (refresh token)", "file": what}
        if account or doc.get("account"):
            detail["account"] = who
        revoke_at = REVOKE_USER.format(account=who)
    else:
        return  # external_account and the like: a federation config, no secret in the file
    if not isinstance(secret, str) or decoy_reason(secret) in ("empty", "a placeholder"):
        return
    collector.add(
        Credential(
            TYPE,
            Location("file", field, path, _line(text, field)),
            secret,
            "manual",
            revoke_at,
            detail,
        )
    )


def _store(path: Path, what: str, collector: Collector) -> None:
    digest = collector.digest(path, limit=SMALL_FILE_LIMIT * 64)
    if not digest:
        return
    collector.add(
        Credential(
            TYPE,
            Location("file", path.name, path),
            digest,
            "manual",
            REVOKE_STORE,
            {"kind": what, "file": path.name},
        )
    )


def _line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line:
            return number
    return None
