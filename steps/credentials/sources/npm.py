"""npm and Yarn auth tokens: npmrc files (`//host/:_authToken=`) and `.yarnrc.yml`.

The location decides the type: a token from a Verdaccio or Artifactory registry is not
`npm_...`-shaped but is still an npm token that `rotate_npm_tokens` can rotate. A `${VAR}` value
is a reference, not a secret; the environment variable it names is reported by the env source
with the registry of the key that references it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from steps.credentials.model import Credential, Location
from steps.credentials.patterns import decoy_reason, token_type, url_password
from steps.credentials.sources import revoke
from steps.credentials.sources.common import (
    Collector,
    IniFile,
    expand,
    items,
    line_of,
    parse_ini,
    read_yaml,
    scalar,
)

NPMJS = "https://registry.npmjs.org/"
YARNPKG = "https://registry.yarnpkg.com/"
VAR_REFERENCE = re.compile(
    r"^\$\{(?P<name>[A-Za-z_]\w*)(?:[?:][^}]*)?\}$|^\$(?P<bare>[A-Za-z_]\w*)$"
)
TOKEN_KEYS = ("_authToken",)
BASIC_KEYS = ("_auth", "_password")


@dataclass
class NpmContext:
    """What npm configuration says about registries, shared across npmrc files and the env."""

    user_schemes: dict[str, str] = field(default_factory=dict)  # host[:port] -> scheme
    default_registry: str = NPMJS  # the user npmrc's `registry=`
    # VAR -> {"registry", "key", "referenced_by"} for `${VAR}` auth values
    references: dict[str, dict[str, str]] = field(default_factory=dict)


def user_npmrc(home: Path, env: dict[str, str] | None) -> Path:
    env = env or {}
    configured = env.get("NPM_CONFIG_USERCONFIG") or env.get("npm_config_userconfig")
    return expand(configured, home) if configured else home / ".npmrc"


def reference_name(value: str) -> str | None:
    match = VAR_REFERENCE.match(value.strip())
    return (match.group("name") or match.group("bare")) if match else None


def slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def without_userinfo(url: str) -> str:
    """`url` without `user:password@`: a registry as it may be shown (the password is reported
    as a credential of its own)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _is_registry(key: str) -> bool:
    return key == "registry" or key.endswith(":registry")


def _schemes(ini: IniFile) -> dict[str, str]:
    out = {}
    for entry in ini.entries:
        if _is_registry(entry.key):
            parts = urlsplit(without_userinfo(entry.value))
            if parts.scheme in ("http", "https") and parts.netloc:
                out.setdefault(parts.netloc, parts.scheme)
    return out


def _own_registry(ini: IniFile) -> str | None:
    entry = ini.section(None).get("registry")
    if entry and urlsplit(entry.value).scheme in ("http", "https"):
        return slash(without_userinfo(entry.value))
    return None


def _url_password(
    path: Path, line: int, key: str, url: str, section: str | None = None
) -> Credential | None:
    """The password of a registry URL written with credentials (`https://user:PASS@host/`)."""
    found = url_password(url)
    if found is None or decoy_reason(found[1]) in ("empty", "a reference to another variable"):
        return None
    registry = slash(without_userinfo(url))
    return Credential(
        "npm-token",
        Location("file", key, path, line, section),
        found[1],
        "manual",
        f"change the password of the account on {registry} (it is written in the registry "
        "URL); prefer a token",
        {"registry": registry, "key": key, "auth": "url"},
    )


def _wanted(section: str | None, key: str) -> bool:
    """The npmrc settings discovery looks at: registries and auth."""
    return _is_registry(key) or key.rpartition(":")[2] in TOKEN_KEYS + BASIC_KEYS


def read_npmrc(path: Path, collector: Collector) -> IniFile | None:
    lines = collector.lines(path)
    return parse_ini(lines, keep=_wanted) if lines is not None else None


def read_user_registries(path: Path, collector: Collector, ctx: NpmContext) -> IniFile | None:
    """Learn the user npmrc's registries (schemes by host, the default registry)."""
    ini = read_npmrc(path, collector)
    if ini is None:
        return None
    ctx.user_schemes = _schemes(ini)
    ctx.default_registry = _own_registry(ini) or NPMJS
    return ini


def scan_npmrc(
    path: Path, collector: Collector, ctx: NpmContext, ini: IniFile | None = None
) -> None:
    """Tokens and basic-auth settings of one npmrc; `${VAR}` values become references."""
    if ini is None:
        ini = read_npmrc(path, collector)
        if ini is None:
            return
    schemes = _schemes(ini)
    default = _own_registry(ini) or ctx.default_registry
    for entry in ini.entries:
        if _is_registry(entry.key):
            in_url = _url_password(path, entry.line, entry.key, entry.value, entry.section)
            if in_url is not None:
                collector.add(in_url)
            continue
        prefix, _, setting = entry.key.rpartition(":")
        if setting not in TOKEN_KEYS + BASIC_KEYS or (prefix and not prefix.startswith("//")):
            continue
        if prefix:
            netloc = urlsplit("http:" + prefix).netloc
            scheme = schemes.get(netloc) or ctx.user_schemes.get(netloc) or "https"
            registry = slash(f"{scheme}:{prefix}")
        else:
            registry = default
        where = f"{path}:{entry.line}"
        var = reference_name(entry.value)
        if var:
            if setting in TOKEN_KEYS:
                ctx.references.setdefault(
                    var, {"registry": registry, "key": entry.key, "referenced_by": where}
                )
            continue
        if decoy_reason(entry.value):
            continue
        location = Location("file", entry.key, path, entry.line, entry.section)
        detail = {"registry": registry, "key": entry.key}
        if setting in TOKEN_KEYS:
            collector.add(_token(location, entry.value, registry, detail))
            continue
        companions = {}
        decoded = _b64(entry.value)
        if decoded:  # `_auth` is base64(user:password), `_password` is base64(password)
            companions["password"] = decoded.partition(":")[2] if setting == "_auth" else decoded
        collector.add(
            Credential(
                "npm-token",
                location,
                entry.value,
                "manual",
                f"change the password of the account on {registry} (basic auth); prefer a token",
                {**detail, "auth": "basic"},
                companions={k: v for k, v in companions.items() if v},
            )
        )


def _token(location: Location, value: str, registry: str, detail: dict[str, str]) -> Credential:
    """An npm auth token, unless it is another service's token (a GitHub PAT for GitHub
    Packages, say): `npm token` cannot rotate that one, its issuer must."""
    shaped = token_type(value)
    if shaped and shaped[0] != "npm-token":
        kind = shaped[0]
        return Credential(kind, location, value, "manual", revoke.for_type(kind, value), detail)
    return Credential("npm-token", location, value, "npm", revoke.npm(registry), detail)


def _b64(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


# -- .yarnrc.yml ---------------------------------------------------------------------------------
def scan_yarnrc(path: Path, collector: Collector, ctx: NpmContext) -> None:
    """`npmAuthToken` / `npmAuthIdent` at the top level, under `npmScopes.X` and under
    `npmRegistries."//host"`, with the registry each one is for."""
    read, root = read_yaml(path, collector)
    if not read:
        return
    top = dict(items(root))

    def server_of(settings: dict[str, yaml.Node], parent: str) -> str | None:
        node = settings.get("npmRegistryServer")
        value = scalar(node)
        if node is None or not value:
            return None
        key, section = parent + "npmRegistryServer", parent.rstrip(".") or None
        in_url = _url_password(path, line_of(node), key, value, section)
        if in_url is not None:
            collector.add(in_url)
        return slash(without_userinfo(value))

    server = server_of(top, "") or YARNPKG
    _yarn_auth(path, collector, ctx, top, server, "")
    for scope, node in items(top.get("npmScopes")):
        settings = dict(items(node))
        parent = f"npmScopes.{scope}."
        _yarn_auth(path, collector, ctx, settings, server_of(settings, parent) or server, parent)
    for key, node in items(top.get("npmRegistries")):
        if "://" in key:
            registry = slash(key)
        else:
            netloc = urlsplit("http:" + key).netloc
            scheme = urlsplit(server).scheme if urlsplit(server).netloc == netloc else "https"
            registry = slash(f"{scheme}:{key}")
        _yarn_auth(path, collector, ctx, dict(items(node)), registry, f'npmRegistries."{key}".')


def _yarn_auth(
    path: Path,
    collector: Collector,
    ctx: NpmContext,
    settings: dict[str, yaml.Node],
    registry: str,
    parent: str,
) -> None:
    for setting in ("npmAuthToken", "npmAuthIdent"):
        node = settings.get(setting)
        value = scalar(node)
        if node is None or not value:
            continue
        key, line = parent + setting, line_of(node)
        var = reference_name(value)
        if var:
            if setting == "npmAuthToken":
                ctx.references.setdefault(
                    var, {"registry": registry, "key": key, "referenced_by": f"{path}:{line}"}
                )
            continue
        if decoy_reason(value):
            continue
        location = Location("file", key, path, line, parent.rstrip(".") or None)
        detail = {"registry": registry, "key": key, "format": "yarnrc"}
        if setting == "npmAuthToken":
            collector.add(_token(location, value, registry, detail))
        else:
            password = value.partition(":")[2] or (_b64(value) or "").partition(":")[2]
            collector.add(
                Credential(
                    "npm-token",
                    location,
                    value,
                    "manual",
                    f"change the password of the account on {registry} (basic auth); "
                    "prefer a token",
                    {**detail, "auth": "basic"},
                    companions={"password": password} if password else {},
                )
            )
