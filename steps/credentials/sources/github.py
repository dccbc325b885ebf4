"""The GitHub CLI's `hosts.yml` (`oauth_token` per host, and per user since gh 2.40) when gh
stores its tokens in the file rather than the system keyring."""

from __future__ import annotations

from pathlib import Path

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason, token_type
from steps.credentials.sources.common import (
    Collector,
    expand,
    items,
    line_of,
    read_yaml,
    scalar,
)


def hosts_file(home: Path, env: dict[str, str]) -> Path:
    if env.get("GH_CONFIG_DIR"):
        return expand(env["GH_CONFIG_DIR"], home) / "hosts.yml"
    if env.get("XDG_CONFIG_HOME"):
        return expand(env["XDG_CONFIG_HOME"], home) / "gh" / "hosts.yml"
    return home / ".config" / "gh" / "hosts.yml"


def revoke_at(host: str) -> str:
    return (
        f"https://{host}/settings/applications (GitHub CLI: Revoke), then "
        f"`gh auth logout --hostname {host}`"
    )


def scan(home: Path, env: dict[str, str], collector: Collector) -> None:
    path = hosts_file(home, env)
    if not collector.first_visit(path):
        return
    read, root = read_yaml(path, collector)
    if not read:
        return
    for host, settings in items(root):
        config = dict(items(settings))
        found = [(host, scalar(config.get("user")), config.get("oauth_token"))]
        found += [
            (f"{host} users.{user}", user, dict(items(node)).get("oauth_token"))
            for user, node in items(config.get("users"))
        ]
        for section, user, node in found:  # gh keeps the active user's token in both places
            value = scalar(node)
            if node is None or not value or decoy_reason(value):
                continue
            shaped = token_type(value)
            detail = {"host": host, **({"user": user} if user else {})}
            collector.add(
                Credential(
                    shaped[0] if shaped else "github-token",
                    Location("file", "oauth_token", path, line_of(node), section),
                    value,
                    "manual",
                    revoke_at(host),
                    detail,
                )
            )
