"""A small client for an npm registry's token API (what `npm whoami` and `npm token` call).

Endpoints: `GET /-/whoami`, `GET /-/npm/v1/tokens` (paginated through `urls.next`),
`POST /-/npm/v1/tokens` with `{password, readonly, cidr_whitelist}` and
`DELETE /-/npm/v1/tokens/token/<key>`, each relative to the registry URL (which may have a path).

How a registry names a token in its list, so the *old* token can be found and revoked:
- verdaccio 6.8: `key` is a random 32-hex id chosen at creation (embedded, encrypted, in the
  token); `token` is the token masked as its first 5 and last 5 characters (`ODc3N...hOTE=`). A
  revoked token is refused with 403, an unknown one gets 200 `{}` from whoami (no username).
  Login tokens (`npm adduser`, `PUT /-/user/org.couchdb.user:NAME`) are not listed at all: they
  cannot be revoked through this API.
- registry.npmjs.org (npm-profile's documentation): `key` is the sha512 hash of the token,
  `token` its first few characters. A mask that fits several rows is ambiguous: never guessed.

Errors carry the HTTP status, the registry URL and what failed, never a token or a password.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "runbook (npm token rotation)"


class NpmRegistryError(Exception):
    """A registry call failed; the message names the registry, the call and the status."""

    def __init__(self, registry: str, what: str, status: int | None, reason: str) -> None:
        self.registry = registry
        self.what = what
        self.status = status
        self.reason = reason
        shown = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{what} at {registry} failed ({shown}): {reason}")


class TokenRefused(NpmRegistryError):
    """The registry does not accept the token (401/403, or whoami names nobody)."""


class PasswordRefused(NpmRegistryError):
    """The registry refused the account password."""


class OtpRequired(NpmRegistryError):
    """The account has two-factor authentication: the call needs a one-time password."""


@dataclass(frozen=True)
class Basic:
    """Basic authentication with the account password: what a read-only token cannot do
    (create or revoke tokens), the account itself can (verdaccio accepts it)."""

    user: str
    password: str = field(repr=False)


Auth = str | Basic  # a bearer token, or the account's user and password


def _authorization(auth: Auth) -> str:
    if isinstance(auth, Basic):
        pair = f"{auth.user}:{auth.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    return f"Bearer {auth}"


@dataclass(frozen=True)
class TokenInfo:
    """One row of the registry's token list: an id and a masked form, never the token."""

    key: str
    masked: str
    readonly: bool = False
    cidr: tuple[str, ...] = ()
    created: str = ""


@dataclass(frozen=True)
class CreatedToken:
    """A token the registry just issued. `token` is secret: register it before showing anything."""

    token: str = field(repr=False)
    key: str
    user: str
    readonly: bool = False


def normalize_registry(url: str) -> str:
    """`scheme://host[:port]/path/` with exactly one trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url.lstrip("/")
    return url.rstrip("/") + "/"


def nerf_dart(registry: str) -> str:
    """The npmrc key prefix of a registry: `//host[:port]/path/`."""
    return "//" + normalize_registry(registry).split("://", 1)[1]


def _masked_parts(masked: str) -> tuple[str, str]:
    for sep in ("...", "…"):
        if sep in masked:
            head, _, tail = masked.partition(sep)
            return head, tail
    return masked, ""


def token_matches(info: TokenInfo, token: str) -> bool:
    """Whether a list row is `token`: by key (npmjs: sha512 of the token) or by its mask."""
    if info.key and info.key == hashlib.sha512(token.encode()).hexdigest():
        return True
    head, tail = _masked_parts(info.masked)
    if len(head) + len(tail) < 4:  # too little of the token shown to tell tokens apart
        return False
    return token.startswith(head) and token.endswith(tail) and len(token) > len(head) + len(tail)


def find_token(
    tokens: Iterable[TokenInfo], token: str, *, exclude: Sequence[str] = ()
) -> TokenInfo | None:
    """The one row that is `token` (rows whose key is in `exclude` left out); None when no row
    or more than one row matches."""
    matches = [t for t in tokens if t.key not in exclude and token_matches(t, token)]
    return matches[0] if len(matches) == 1 else None


def proxies_for(url: str, env: Mapping[str, str] | None) -> dict[str, str]:
    """The proxies `env` asks for to reach `url` (none for a host `no_proxy` covers)."""
    if env is None:
        return {}
    found: dict[str, str] = {}
    for scheme in ("http", "https", "no"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            found[scheme] = value
    host = urllib.parse.urlsplit(url).hostname or ""
    if not found or urllib.request.proxy_bypass_environment(host, found):
        return {}
    found.pop("no", None)
    return found


class NpmRegistry:
    """Token calls against one registry, authenticated with a given token each time."""

    def __init__(
        self, url: str, *, env: Mapping[str, str] | None = None, timeout: float = 30
    ) -> None:
        self.url = normalize_registry(url)
        self.timeout = timeout
        handler = urllib.request.ProxyHandler(proxies_for(self.url, env))
        self._opener = urllib.request.build_opener(handler)

    # -- transport -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        auth: Auth,
        what: str,
        *,
        body: dict[str, Any] | None = None,
        otp: str | None = None,
    ) -> Any:
        url = path if "://" in path else self.url + path.lstrip("/")
        headers = {
            "Authorization": _authorization(auth),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if otp:
            headers["npm-otp"] = otp
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, what) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise NpmRegistryError(self.url, what, None, f"cannot reach it ({reason})") from None
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise NpmRegistryError(self.url, what, 200, "the answer is not JSON") from None

    def _http_error(self, exc: urllib.error.HTTPError, what: str) -> NpmRegistryError:
        status = exc.code
        try:
            text = exc.read(4096).decode(errors="replace")
        except OSError:
            text = ""
        challenge = (exc.headers.get("www-authenticate") or "").lower()
        error = ""
        try:
            parsed = json.loads(text) if text.strip() else {}
            if isinstance(parsed, dict):
                error = str(parsed.get("error") or parsed.get("message") or "")
        except ValueError:
            pass
        if status == 401 and ("otp" in challenge or "one-time pass" in text.lower()):
            return OtpRequired(
                self.url,
                what,
                status,
                "the account uses two-factor authentication: a one-time password (OTP) is needed",
            )
        # the registry's own words, cut short, help the operator; they never echo a secret
        detail = str(error[:200] if error else (exc.reason or ""))
        if status in (401, 403):
            return TokenRefused(self.url, what, status, f"refused: {detail or 'unauthorized'}")
        return NpmRegistryError(self.url, what, status, detail or "unexpected answer")

    # -- calls -----------------------------------------------------------------------------
    def whoami(self, auth: Auth) -> str:
        """The user `auth` authenticates as; TokenRefused when it authenticates nobody."""
        answer = self._call("GET", "-/whoami", auth, "whoami")
        user = answer.get("username") if isinstance(answer, dict) else None
        if not user:
            raise TokenRefused(self.url, "whoami", 200, "the token authenticates no user")
        return str(user)

    def list_tokens(self, auth: Auth) -> list[TokenInfo]:
        """Every token of the account `auth` belongs to (following pagination)."""
        rows: list[TokenInfo] = []
        path: str | None = "-/npm/v1/tokens"
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            answer = self._call("GET", path, auth, "list tokens")
            objects = answer.get("objects", []) if isinstance(answer, dict) else []
            for obj in objects:
                if not isinstance(obj, dict) or not obj.get("key"):
                    continue
                cidr = obj.get("cidr_whitelist") or obj.get("cidr") or []
                rows.append(
                    TokenInfo(
                        key=str(obj["key"]),
                        masked=str(obj.get("token") or ""),
                        readonly=bool(obj.get("readonly")),
                        cidr=tuple(str(c) for c in cidr),
                        created=str(obj.get("created") or ""),
                    )
                )
            urls = answer.get("urls") if isinstance(answer, dict) else None
            path = (urls or {}).get("next") or None
        return rows

    def create_token(
        self,
        auth: Auth,
        password: str,
        *,
        readonly: bool = False,
        cidr: Sequence[str] = (),
        otp: str | None = None,
    ) -> CreatedToken:
        """Issue a new token for the account `auth` belongs to (the password is required)."""
        body = {"password": password, "readonly": readonly, "cidr_whitelist": list(cidr)}
        what = "create token"
        try:
            answer = self._call("POST", "-/npm/v1/tokens", auth, what, body=body, otp=otp)
        except TokenRefused as exc:
            if exc.status == 401:
                raise PasswordRefused(
                    self.url, what, 401, f"the password (or the token) was {exc.reason}"
                ) from None
            raise
        new = answer.get("token") if isinstance(answer, dict) else None
        if not new:
            raise NpmRegistryError(self.url, what, 200, "the answer holds no token")
        return CreatedToken(
            token=str(new),
            key=str(answer.get("key") or ""),
            user=str(answer.get("user") or ""),
            readonly=bool(answer.get("readonly")),
        )

    def revoke_token(self, auth: Auth, key: str, *, otp: str | None = None) -> None:
        """Revoke the token whose list id is `key`."""
        quoted = urllib.parse.quote(key, safe="")
        self._call("DELETE", f"-/npm/v1/tokens/token/{quoted}", auth, "revoke token", otp=otp)

    def refused(self, token: str) -> bool:
        """True when the registry no longer accepts `token` (other failures raise)."""
        try:
            self.whoami(token)
        except TokenRefused:
            return True
        return False
