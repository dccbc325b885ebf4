"""git's plain-text credential store: `https://user:PASSWORD@host` lines in ~/.git-credentials
and `$XDG_CONFIG_HOME/git/credentials`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason, high_entropy, token_type
from steps.credentials.sources import revoke
from steps.credentials.sources.common import Collector, expand

# what goes in the password when the token itself is the user name (`https://TOKEN:x-oauth-basic@`)
TOKEN_IN_USER = frozenset({"", "x-oauth-basic"})


def credential_files(home: Path, env: dict[str, str]) -> list[Path]:
    config = expand(env["XDG_CONFIG_HOME"], home) if env.get("XDG_CONFIG_HOME") else None
    return [home / ".git-credentials", (config or home / ".config") / "git" / "credentials"]


def scan(home: Path, env: dict[str, str], collector: Collector) -> None:
    for path in credential_files(home, env):
        if collector.first_visit(path):
            scan_file(path, collector)


def scan_file(path: Path, collector: Collector) -> None:
    lines = collector.lines(path)
    if lines is None:
        return
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parts = urlsplit(line)
            scheme, host, user, password = (
                parts.scheme,
                parts.hostname,
                parts.username,
                parts.password,
            )
        except ValueError:  # a bad port, say
            scheme = host = user = password = None
        if not scheme or not host:
            collector.problem(path, "expected a URL like https://user:token@host", number)
            continue
        secret, name = unquote(password or ""), unquote(user or "")
        if secret.lower() in TOKEN_IN_USER and (token_type(name) or high_entropy(name)):
            secret, name = name, ""  # the token is the user name: never show it as one
        if decoy_reason(secret) in ("a reference to another variable", "a placeholder", "empty"):
            continue
        shaped = token_type(secret)
        kind = shaped[0] if shaped else "git-credential"
        where = f"{scheme}://{name + '@' if name else ''}{parts.netloc.rpartition('@')[2]}"
        collector.add(
            Credential(
                kind,
                Location("file", where, path, number),
                secret,
                "manual",
                revoke.by_host(host, secret) + f"; then delete line {number} of {path.name}",
                {"host": host, **({"user": name} if name else {})},
            )
        )
