"""Made-up credentials for a world, and the files and variables they live in.

Values are drawn from the world's seeded generator (the same world gets the same values), shaped
like the real thing so discovery recognises them (`AKIA...`, `npm_...`, `gho_...`), and never
valid anywhere but in the world's own stand-ins: AWS keys exist only in the world's moto, npm
tokens only in its registry stand-in.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.redact import fingerprint, redact_value
from steps.world.aws import ACCOUNT, REGION
from steps.world.model import ENV_DEFAULT_SECRET, ENV_DEFAULTS, CredentialSpec, WorldSpec

B62 = string.ascii_letters + string.digits
AWS_ID = string.ascii_uppercase + "234567"
AWS_SECRET = B62 + "+/"
SSO_URL = "https://example-corp.awsapps.com/start"


class Draw:
    """Secret-shaped strings from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def chars(self, n: int, alphabet: str = B62) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def aws_pair(self) -> tuple[str, str]:
        return "AKIA" + self.chars(16, AWS_ID), self.chars(40, AWS_SECRET)

    def npm_token(self) -> str:
        return "npm_" + self.chars(36)

    def github(self, prefix: str) -> str:
        return prefix + self.chars(36)

    def private_key(self) -> str:
        body = "\n".join(self.chars(70, B62 + "+/") for _ in range(5))
        return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"

    def secret(self) -> str:
        return self.chars(40)


@dataclass
class Made:
    """One credential of the world: its value(s) and where it is."""

    spec: CredentialSpec
    value: str = field(repr=False)
    place: str
    rotation: str  # aws | npm | manual
    path: Path | None = None
    companion: str = field(default="", repr=False)  # an AWS key's secret
    iam_user: str | None = None

    def truth(self) -> dict[str, Any]:
        """What the facilitator may see: type, place, redacted form, never the value."""
        row: dict[str, Any] = {
            "type": self.spec.type,
            "where": self.spec.where,
            "place": self.place,
            "redacted": redact_value(self.value),
            "fingerprint": fingerprint(self.value),
            "rotation": self.rotation,
        }
        if self.iam_user:
            row["iam_user"] = self.iam_user
        return row


@dataclass
class Placed:
    """Everything the credentials put into a world."""

    made: list[Made] = field(default_factory=list)
    files: dict[Path, str] = field(default_factory=dict)  # path -> text (mode 0600)
    env: dict[str, str] = field(default_factory=dict)
    iam_keys: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    npm_tokens: list[str] = field(default_factory=list)

    def append(self, path: Path, text: str) -> None:
        self.files[path] = self.files.get(path, "") + text


def place_all(
    world: WorldSpec,
    draw: Draw,
    home: Path,
    projects: dict[str, Path],
    registry_url: str,
) -> Placed:
    """Make every credential of `world` and say where each goes (nothing is written here)."""
    out = Placed()
    nerf = "//" + registry_url.split("://", 1)[1]
    first = world.projects[0].name
    aws_config: list[str] = []
    npmrc_home = [f"registry={registry_url}"]
    for spec in world.credentials:
        project_dir = projects[spec.project or first]
        where = spec.where
        kind = spec.type
        if kind == "aws-access-key":
            key_id, secret = draw.aws_pair()
            user = spec.user or world.user
            out.iam_keys.setdefault(user, []).append((key_id, secret))
            if where == "home":
                path = home / ".aws" / "credentials"
                out.append(
                    path,
                    f"[{spec.profile}]\naws_access_key_id = {key_id}\n"
                    f"aws_secret_access_key = {secret}\n\n",
                )
                if spec.profile != "default":
                    aws_config.append(f"[profile {spec.profile}]\nregion = {REGION}\n")
                place = f"~/.aws/credentials [{spec.profile}]"
            elif where == "project":
                path = project_dir / ".env"
                out.append(path, f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n")
                place = f"{_shown(project_dir, home)}/.env AWS_ACCESS_KEY_ID"
            else:
                path = None
                out.env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
                place = "env AWS_ACCESS_KEY_ID"
            out.made.append(Made(spec, key_id, place, "aws", path, secret, user))
        elif kind == "aws-profile":
            path = home / ".aws" / "config"
            aws_config.append(
                f"[profile {spec.profile}]\nsso_start_url = {SSO_URL}\nsso_region = {REGION}\n"
                f"sso_account_id = {ACCOUNT}\nsso_role_name = AdministratorAccess\n"
                f"region = {REGION}\n"
            )
            out.made.append(
                Made(spec, SSO_URL, f"~/.aws/config [profile {spec.profile}]", "manual", path)
            )
        elif kind == "npm-token":
            token = draw.npm_token()
            out.npm_tokens.append(token)
            if where == "home":
                path = home / ".npmrc"
                npmrc_home.append(f"{nerf}:_authToken={token}")
                place = "~/.npmrc"
            elif where == "project":
                path = project_dir / ".npmrc"
                out.append(path, f"registry={registry_url}\n{nerf}:_authToken={token}\n")
                place = f"{_shown(project_dir, home)}/.npmrc"
            else:
                path = None
                name = spec.name or ENV_DEFAULTS["npm-token"]
                out.env[name] = token
                place = f"env {name}"
            out.made.append(Made(spec, token, place, "npm", path))
        elif kind == "github-token":
            if where == "home":
                token = draw.github("gho_")
                path = home / ".config" / "gh" / "hosts.yml"
                out.append(
                    path,
                    f"github.com:\n    user: {world.user}\n    oauth_token: {token}\n"
                    "    git_protocol: https\n",
                )
                place = "~/.config/gh/hosts.yml"
            else:
                token = draw.github("ghs_")  # what a CI job's GITHUB_TOKEN looks like
                path = None
                name = spec.name or ENV_DEFAULTS["github-token"]
                out.env[name] = token
                place = f"env {name}"
            out.made.append(Made(spec, token, place, "manual", path))
        elif kind == "private-key":
            key = draw.private_key()
            path = home / ".ssh" / "id_ed25519"
            out.append(path, key)
            public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + draw.chars(43, B62 + "+/")
            out.append(home / ".ssh" / "id_ed25519.pub", f"{public} {world.user}@workstation\n")
            out.made.append(Made(spec, key, "~/.ssh/id_ed25519", "manual", path))
        elif kind == "generic-secret":
            value = draw.secret()
            name = spec.name or ENV_DEFAULT_SECRET
            if where == "project":
                path = project_dir / ".env"
                out.append(path, f"{name}={value}\n")
                place = f"{_shown(project_dir, home)}/.env {name}"
            else:
                path = None
                out.env[name] = value
                place = f"env {name}"
            out.made.append(Made(spec, value, place, "manual", path))
        elif kind == "docker-auth":
            token = draw.github("ghp_")
            auth = base64.b64encode(f"{world.user}:{token}".encode()).decode()
            path = home / ".docker" / "config.json"
            doc = {"auths": {"ghcr.io": {"auth": auth}}}
            out.append(path, json.dumps(doc, indent=2) + "\n")
            out.made.append(Made(spec, token, "~/.docker/config.json ghcr.io", "manual", path))
        elif kind == "git-credential":
            token = draw.github("ghp_")
            path = home / ".git-credentials"
            out.append(path, f"https://{world.user}:{token}@github.com\n")
            out.made.append(Made(spec, token, "~/.git-credentials github.com", "manual", path))
    npmrc_home += ["fund=false", "audit=false", "update-notifier=false"]
    out.files[home / ".npmrc"] = "\n".join(npmrc_home) + "\n"
    if aws_config or (home / ".aws" / "credentials") in out.files:
        out.files[home / ".aws" / "config"] = f"[default]\nregion = {REGION}\n\n" + "\n".join(
            aws_config
        )
    for path, text in list(out.files.items()):
        if path.name == ".env":  # an app's .env holds more than secrets
            out.files[path] = "PORT=3000\nNODE_ENV=development\n" + text
    return out


def _shown(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)
