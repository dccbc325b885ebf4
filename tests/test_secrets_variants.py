"""Discovery on spellings real machines have: upper-case ini keys, quoted values, gh's multi-user
hosts.yml, PEM and passphrase-protected SSH keys, Docker credential helpers, `.env` look-alikes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from steps.credentials.discover import discover

AKIA_PROD = "AKIA2345QWERTYUIOPAB"
AKIA_P2 = "AKIA2345QWERTYUIOPAC"
SECRET = "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"
NPM = "npm_" + "abcdefghijklmnopqrstuvwxyz0123456789"
GHO = "gho_" + "abcdefghijklmnopqrstuvwxyz0123456789"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_variants(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    write(
        home / ".aws" / "credentials",
        f"# work\n[prod]\nAWS_ACCESS_KEY_ID = {AKIA_PROD}\naws_secret_access_key = {SECRET}\n"
        f"[p2]  \naws_access_key_id={AKIA_P2}\naws_secret_access_key={SECRET[::-1]}\n",
    )
    write(
        home / ".npmrc",
        "registry=https://registry.npmjs.org/\n"
        f'//registry.npmjs.org/:_authToken="{NPM}"\n'
        "//npm.pkg.github.com/:_authToken=${GITHUB_TOKEN}\n",
    )
    write(
        home / ".docker" / "config.json",
        '{"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "desktop",'
        ' "credHelpers": {"gcr.io": "gcloud"}}',
    )
    write(
        home / ".config" / "gh" / "hosts.yml",
        f"github.com:\n    users:\n        octo:\n            oauth_token: {GHO}\n"
        "    git_protocol: https\n    user: octo\n",
    )
    (home / ".ssh").mkdir()
    keygen = ["ssh-keygen", "-q", "-C", "test"]
    subprocess.run([*keygen, "-t", "rsa", "-b", "1024", "-m", "PEM", "-N", "", "-f",
                    home / ".ssh" / "id_rsa"], check=True)  # fmt: skip
    subprocess.run([*keygen, "-t", "ed25519", "-N", "a passphrase", "-f",
                    home / ".ssh" / "work"], check=True)  # fmt: skip
    write(
        project / ".env.local",
        "NEXT_PUBLIC_API_URL=https://api.example.com\n"
        "SECRET_KEY_BASE=9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100\n"
        "SESSION_SECRET=changeme\n"
        "API_TOKEN=\n"
        'JWT_SECRET="s3cr3t-Value-With-Entropy-2026"\n'
        "REQUEST_ID=550e8400-e29b-41d4-a716-446655440000\n",
    )
    found = discover(targets=[project], home=home, env={"HOME": str(home)})
    got = {
        (c.type, c.location.path.name if c.location.path else "", c.location.line, c.rotation)
        for c in found.credentials
    }
    assert got == {
        ("aws-access-key", "credentials", 3, "aws"),
        ("aws-access-key", "credentials", 6, "aws"),
        ("npm-token", ".npmrc", 2, "npm"),
        ("github-token", "hosts.yml", 4, "manual"),
        ("private-key", "id_rsa", 1, "manual"),
        ("private-key", "work", 1, "manual"),
        ("generic-secret", ".env.local", 2, "manual"),
        ("generic-secret", ".env.local", 5, "manual"),
    }
    by_value = {c.value: c for c in found.credentials}
    assert by_value[AKIA_PROD].companions["aws_secret_access_key"] == SECRET
    assert by_value[NPM].detail["registry"] == "https://registry.npmjs.org/"
    keys = {c.location.path.name: c.detail for c in found.credentials if c.type == "private-key"}
    assert keys["work"].get("passphrase") == "yes" and keys["id_rsa"].get("passphrase") == "no"
    assert found.problems == []
