"""Azure CLI credentials in `~/.azure` (`$AZURE_CONFIG_DIR`), which Shai-Hulud 2.0 harvested:

- `msal_token_cache.json`: the MSAL token cache of `az login` (Linux; one refresh token per signed-
  in account, `username` from its `Account` entry). On Windows and macOS the cache is encrypted
  (`msal_token_cache.bin`): its presence is the finding;
- `service_principal_entries.json`: `az login --service-principal` keeps the client secret here;
- `accessTokens.json`: the token store of Azure CLI before 2.30 (users' refresh tokens, service
  principals' secrets under `accessToken`);
- `azureProfile.json` holds no secret: it names the subscriptions each account reaches, which
  goes into the credentials' detail.

Every one is rotated by a person (`manual`) at the place `revoke_at` names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.safeio import SMALL_FILE_LIMIT
from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason
from steps.credentials.sources.common import Collector, expand

TYPE = "azure-credential"
REVOKE_USER = (
    "`az logout --username {user}`, then end every session of the account: Microsoft Entra "
    "admin center > Users > {user} > Revoke sessions (or, signed in from a clean machine, "
    "`az rest --method POST --url https://graph.microsoft.com/v1.0/me/revokeSignInSessions`)"
)
REVOKE_SECRET = (
    "add a new secret (`az ad app credential reset --id {app} --append`), then delete the old "
    "one: `az ad app credential list --id {app}` and `az ad app credential delete --id {app} "
    "--key-id KEY_ID` (Microsoft Entra admin center > App registrations > {app} > Certificates "
    "& secrets)"
)
REVOKE_CACHE = (
    "`az account list` to see the accounts, `az logout` for each, then Microsoft Entra admin "
    "center > Users > (each user) > Revoke sessions"
)


def config_dir(home: Path, env: dict[str, str]) -> Path:
    if env.get("AZURE_CONFIG_DIR"):
        return expand(env["AZURE_CONFIG_DIR"], home)
    return home / ".azure"


def scan(home: Path, env: dict[str, str], collector: Collector) -> None:
    folder = config_dir(home, env)
    subscriptions = _subscriptions(folder / "azureProfile.json", collector)
    for name, reader in (
        ("msal_token_cache.json", _msal_cache),
        ("service_principal_entries.json", _service_principals),
        ("accessTokens.json", _legacy_tokens),
    ):
        path = folder / name
        if not collector.first_visit(path):
            continue
        text, doc = _json(path, collector)
        if doc is not None:
            reader(_Source(path, text, collector, subscriptions), doc)
    path = folder / "msal_token_cache.bin"
    if collector.first_visit(path):
        _encrypted_cache(path, collector)


def _json(path: Path, collector: Collector) -> tuple[str, Any]:
    text = collector.read(path)
    if text is None:
        return "", None
    try:
        return text, json.loads(text.lstrip("\ufeff"))  # the Azure CLI writes a BOM on Windows
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        collector.problem(path, f"malformed JSON: {getattr(exc, 'msg', 'not valid JSON')}", line)
        return text, None


def _subscriptions(path: Path, collector: Collector) -> dict[str, list[str]]:
    """Subscription names per account (user or service principal), from azureProfile.json."""
    if not path.exists():
        return {}
    _, doc = _json(path, collector)
    subs = doc.get("subscriptions") if isinstance(doc, dict) else None
    out: dict[str, list[str]] = {}
    for sub in subs if isinstance(subs, list) else []:
        user = sub.get("user") if isinstance(sub, dict) else None
        name = user.get("name") if isinstance(user, dict) else None
        if isinstance(name, str) and name:
            out.setdefault(name.lower(), []).append(str(sub.get("name") or sub.get("id") or "?"))
    return out


@dataclass(frozen=True)
class _Source:
    """One Azure file being read: where it is, its text, and what azureProfile.json says."""

    path: Path
    text: str = field(repr=False)
    collector: Collector
    subscriptions: dict[str, list[str]]

    def add(
        self, key: str, secret: Any, revoke_at: str, detail: dict[str, str], account: str
    ) -> None:
        if not isinstance(secret, str) or decoy_reason(secret) in ("empty", "a placeholder"):
            return
        reached = self.subscriptions.get(account.lower())
        if reached:
            detail = {**detail, "subscriptions": ", ".join(sorted(set(reached)))}
        line = next(
            (n for n, text in enumerate(self.text.splitlines(), start=1) if secret in text), None
        )
        self.collector.add(
            Credential(
                TYPE,
                Location("file", key, self.path, line),
                secret,
                "manual",
                revoke_at,
                detail,
            )
        )


def _msal_cache(source: _Source, doc: Any) -> None:
    if not isinstance(doc, dict):
        return
    accounts = doc.get("Account") if isinstance(doc.get("Account"), dict) else {}
    users = {
        a.get("home_account_id"): a.get("username")
        for a in accounts.values()
        if isinstance(a, dict) and isinstance(a.get("username"), str)
    }
    tokens = doc.get("RefreshToken") if isinstance(doc.get("RefreshToken"), dict) else {}
    for entry in tokens.values():
        if not isinstance(entry, dict):
            continue
        user = users.get(entry.get("home_account_id")) or "USER"
        detail = {"kind": "az login refresh token", "user": user}
        revoke_at = REVOKE_USER.format(user=user)
        source.add("RefreshToken.secret", entry.get("secret"), revoke_at, detail, user)


def _service_principals(source: _Source, doc: Any) -> None:
    for entry in doc if isinstance(doc, list) else []:
        if not isinstance(entry, dict):
            continue
        app = str(entry.get("client_id") or entry.get("servicePrincipalId") or "APP_ID")
        detail = {"kind": "service principal secret", "app_id": app}
        if entry.get("tenant"):
            detail["tenant"] = str(entry["tenant"])
        secret = entry.get("client_secret") or entry.get("secret")
        source.add("client_secret", secret, REVOKE_SECRET.format(app=app), detail, app)


def _legacy_tokens(source: _Source, doc: Any) -> None:
    for entry in doc if isinstance(doc, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("servicePrincipalId"):
            app = str(entry["servicePrincipalId"])
            detail = {"kind": "service principal secret (Azure CLI before 2.30)", "app_id": app}
            revoke_at = REVOKE_SECRET.format(app=app)
            source.add("accessToken", entry.get("accessToken"), revoke_at, detail, app)
            continue
        user = str(entry.get("userId") or "USER")
        detail = {"kind": "refresh token (Azure CLI before 2.30)", "user": user}
        revoke_at = REVOKE_USER.format(user=user)
        source.add("refreshToken", entry.get("refreshToken"), revoke_at, detail, user)


def _encrypted_cache(path: Path, collector: Collector) -> None:
    digest = collector.digest(path, limit=SMALL_FILE_LIMIT * 16)
    if digest:
        collector.add(
            Credential(
                TYPE,
                Location("file", path.name, path),
                digest,
                "manual",
                REVOKE_CACHE,
                {"kind": "encrypted az login token cache"},
            )
        )
