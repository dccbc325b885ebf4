"""Docker registry logins in config.json: `auths.HOST.auth` (base64 of user:password) and
`identitytoken`. A `credsStore` / `credHelpers` entry keeps the secret elsewhere: not a finding."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason
from steps.credentials.sources import revoke
from steps.credentials.sources.common import Collector, expand

SECRET_KEYS = ("auth", "identitytoken", "registrytoken")


def config_file(home: Path, env: dict[str, str]) -> Path:
    if env.get("DOCKER_CONFIG"):
        return expand(env["DOCKER_CONFIG"], home) / "config.json"
    return home / ".docker" / "config.json"


def registry_host(key: str) -> str:
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def _line(text: str, value: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if json.dumps(value) in line or value in line:
            return number
    return None


def scan(home: Path, env: dict[str, str], collector: Collector) -> None:
    path = config_file(home, env)
    if not collector.first_visit(path):
        return
    text = collector.read(path)
    if text is None:
        return
    try:
        config = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        reason = getattr(exc, "msg", "not valid JSON")
        collector.problem(path, f"malformed JSON: {reason}", line)
        return
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        host = registry_host(key)
        for setting in SECRET_KEYS:
            value = entry.get(setting)
            if not isinstance(value, str) or not value or decoy_reason(value) == "a placeholder":
                continue
            detail = {"registry": key, "host": host}
            companions = {}
            if setting == "auth":
                try:
                    user, _, password = (
                        base64.b64decode(value, validate=True).decode().partition(":")
                    )
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    collector.problem(
                        path, f"auths.{key}.auth is not base64 of user:password", _line(text, value)
                    )
                    user, password = "", ""
                if user:
                    detail["user"] = user
                if password:
                    companions["password"] = password
            collector.add(
                Credential(
                    "docker-auth",
                    Location("file", f"auths.{key}.{setting}", path, _line(text, value), host),
                    value,
                    "manual",
                    f"`docker logout {key}`, then revoke the token or change the password: "
                    + revoke.by_host(host, companions.get("password", "")),
                    detail,
                    companions,
                )
            )
