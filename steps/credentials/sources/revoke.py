"""Where a person revokes each kind of credential: a URL, a console path or a command."""

from __future__ import annotations

from urllib.parse import urlsplit

from steps.credentials.model import CredentialType

AWS_USERS = (
    "IAM console > Users > (the key's user) > Security credentials > Access keys: make the key "
    "inactive, then delete it (https://console.aws.amazon.com/iam/home#/users)"
)
AWS_ROLES_URL = "https://console.aws.amazon.com/iam/home#/roles"
AWS_CACHES = "delete the cached credentials in ~/.aws/sso/cache and ~/.aws/cli/cache"
GITHUB_BY_PREFIX = {
    "ghp_": "https://github.com/settings/tokens",
    "github_pat_": "https://github.com/settings/personal-access-tokens",
    "gho_": "https://github.com/settings/applications (and `gh auth logout`)",
    "ghu_": "https://github.com/settings/applications (the GitHub App's authorization)",
    "ghr_": "https://github.com/settings/applications (the GitHub App's authorization)",
    "ghs_": (
        "a GitHub App installation token (expires within an hour): the app's installation "
        "settings, https://github.com/settings/installations"
    ),
}
NPMJS_HOSTS = ("registry.npmjs.org", "registry.yarnpkg.com", "registry.npmjs.com")


def aws_role_sessions(role: str | None = None) -> str:
    name = role.rsplit("/", 1)[-1] if role else "(the role these credentials came from)"
    return (
        f"IAM console > Roles > {name} > Revoke sessions > Revoke active sessions ({AWS_ROLES_URL})"
    )


def github(token: str, host: str = "github.com") -> str:
    base = "github.com" if host in ("", "github.com", "api.github.com") else host
    for prefix, where in GITHUB_BY_PREFIX.items():
        if token.startswith(prefix):
            return where.replace("github.com", base)
    return f"https://{base}/settings/tokens (classic) or /settings/personal-access-tokens"


def gitlab(host: str = "gitlab.com") -> str:
    return f"https://{host or 'gitlab.com'}/-/user_settings/personal_access_tokens"


def npm(registry: str) -> str:
    host = urlsplit(registry).hostname or ""
    if host in NPMJS_HOSTS:
        return (
            "https://www.npmjs.com/settings/<user>/tokens, or `npm token list` then "
            "`npm token revoke <id>`"
        )
    return (
        f"`npm token list --registry {registry}` then `npm token revoke <id> --registry {registry}`"
    )


def by_host(host: str, secret: str = "") -> str:
    """The token page of a git or registry host (github, gitlab, bitbucket) or a generic hint."""
    host = host.lower()
    if host in ("github.com", "ghcr.io", "docker.pkg.github.com", "npm.pkg.github.com"):
        return github(secret) if secret else "https://github.com/settings/tokens"
    if "gitlab" in host:
        return gitlab(host if host != "registry.gitlab.com" else "gitlab.com")
    if host == "bitbucket.org":
        return "https://bitbucket.org/account/settings/app-passwords/ (or the API token page)"
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return "https://app.docker.com/settings/personal-access-tokens"
    return f"the account settings of {host}: change the password or revoke the token"


def for_type(kind: CredentialType | str, value: str = "", **context: str) -> str:
    """A revoke hint from the type alone (keyring entries, a token found in an env var...)."""
    if kind == "aws-access-key":
        return AWS_USERS
    if kind == "aws-temporary-key":
        return aws_role_sessions(context.get("role"))
    if kind == "aws-profile":
        return f"{aws_role_sessions(context.get('role'))}; {AWS_CACHES}"
    if kind == "npm-token":
        return npm(context.get("registry") or "https://registry.npmjs.org/")
    if kind == "github-token":
        return github(value)
    if kind == "gitlab-token":
        return gitlab(context.get("host", "gitlab.com"))
    if kind == "slack-token":
        return "https://api.slack.com/apps (the app's OAuth & Permissions page: revoke tokens)"
    if kind == "private-key":
        return SSH_KEYS
    if kind == "docker-auth":
        return by_host(context.get("host", "docker.io"))
    name = context.get("name", "it")
    return f"the service that issued {name}: revoke it there and issue a new one"


SSH_KEYS = (
    "remove its public key from https://github.com/settings/keys, GitLab "
    "(/-/user_settings/ssh_keys) and every server's ~/.ssh/authorized_keys; make a new key with "
    "`ssh-keygen -t ed25519`"
)
