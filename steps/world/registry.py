"""The npm registry stand-in: a small threaded HTTP server on 127.0.0.1.

It serves the bundled fake packages (packuments and tarballs, so `npm ci`, `npm install
--package-lock-only`, yarn, pnpm and bun installs work in a world) and the account and token API
npm and runbook's `rotate_npm_tokens` call:

    GET  /-/ping                              200 {}
    GET  /-/whoami                            {"username"}; 401 for an unknown or revoked token
    PUT  /-/user/org.couchdb.user:NAME        npm login / adduser: a new session token
    DELETE /-/user/token/TOKEN                npm logout
    GET  /-/npm/v1/tokens                     the account's tokens (key = sha512 of the token)
    POST /-/npm/v1/tokens                     {password, readonly, cidr_whitelist}: a new token
    DELETE /-/npm/v1/tokens/token/KEY         revoke; the token is refused afterwards
    GET  /-/npm/v1/keys                       404: this registry publishes no signing keys

Bearer tokens or Basic user:password authenticate. The state (accounts with salted password
hashes, tokens by hash) is a JSON file rewritten on each change, so a restart keeps it; no
token or password is ever stored or logged in clear.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import string
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLACEHOLDER = "http://127.0.0.1:4873/"
TOKEN_ALPHABET = string.ascii_letters + string.digits
MAX_BODY = 1 << 20
PBKDF2_ROUNDS = 2000


def token_key(token: str) -> str:
    """How the registry names a token in its list: the sha512 of the token (as npmjs does)."""
    return hashlib.sha512(token.encode()).hexdigest()


def masked(token: str) -> str:
    return f"{token[:6]}...{token[-4:]}"


def password_hash(password: str, salt: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ROUNDS)
    return digest.hex()


def new_token() -> str:
    return "npm_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))


def account(name: str, password: str, salt: str) -> dict[str, Any]:
    """An account row of the state file."""
    return {"salt": salt, "hash": password_hash(password, salt), "email": f"{name}@example.test"}


def token_row(token: str, user: str, created: str, *, listed: bool = True) -> dict[str, Any]:
    """A token row of the state file (keyed by `token_key(token)`)."""
    return {
        "user": user,
        "masked": masked(token),
        "readonly": False,
        "cidr": [],
        "created": created,
        "listed": listed,
    }


class RegistryState:
    """Accounts and tokens, persisted as JSON (hashes only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.users: dict[str, dict[str, Any]] = data.get("users", {})
        self.tokens: dict[str, dict[str, Any]] = data.get("tokens", {})
        self.revoked: list[str] = data.get("revoked", [])

    def save(self) -> None:
        data = {"users": self.users, "tokens": self.tokens, "revoked": self.revoked}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def user_of(self, token: str) -> str | None:
        row = self.tokens.get(token_key(token))
        return row["user"] if row else None

    def check_password(self, user: str, password: str) -> bool:
        row = self.users.get(user)
        if row is None:
            return False
        return hmac.compare_digest(row["hash"], password_hash(password, row["salt"]))

    def issue(
        self,
        user: str,
        *,
        readonly: bool = False,
        cidr: list[str] | None = None,
        listed: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        token = new_token()
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        row = token_row(token, user, now, listed=listed)
        row.update(readonly=readonly, cidr=list(cidr or []))
        self.tokens[token_key(token)] = row
        self.save()
        return token, row

    def revoke(self, key: str) -> None:
        self.tokens.pop(key, None)
        self.revoked.append(key)
        self.save()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    registry: StandInRegistry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections too: a stopped registry answers nobody."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class StandInRegistry:
    """The registry on one 127.0.0.1 port. The port is bound when this is made (so it can be
    written into the world's files) and served from `start()` to `stop()`; a later `start()`
    binds the same port again."""

    def __init__(self, packages: Path, state: Path, log: Path, port: int = 0) -> None:
        self.packages = packages
        self.state = RegistryState(state)
        self.log_path = log
        self._log_lock = threading.Lock()
        self._docs: dict[str, bytes] = {}
        self.server: _Server | None = self._bind(port)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread: threading.Thread | None = None

    def _bind(self, port: int) -> _Server:
        server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=False)
        server.registry = self
        try:
            server.server_bind()
        except OSError:
            server.server_close()
            raise
        return server

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.server is None:
            self.server = self._bind(self.port)
        self.server.server_activate()
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="world-registry", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        server, self.server = self.server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        server.close_connections()
        server.server_close()

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- content ---------------------------------------------------------------------------
    def packument(self, name: str) -> bytes | None:
        if name not in self._docs:
            path = self._package_dir(name)
            if path is None or not (path / "package.json").is_file():
                return None
            doc = json.loads((path / "package.json").read_text(encoding="utf-8"))
            for key in [k for k in doc if k.startswith("_") and k not in ("_id", "_rev")]:
                del doc[key]
            text = json.dumps(doc).replace(PLACEHOLDER, self.url)
            self._docs[name] = text.encode()
        return self._docs[name]

    def tarball(self, name: str, filename: str) -> bytes | None:
        path = self._package_dir(name)
        if path is None or "/" in filename or not filename.endswith(".tgz"):
            return None
        target = path / filename
        return target.read_bytes() if target.is_file() else None

    def _package_dir(self, name: str) -> Path | None:
        parts = name.split("/")
        if not name or ".." in parts or any(not p or p.startswith(".") for p in parts):
            return None
        if len(parts) > 2 or (len(parts) == 2 and not parts[0].startswith("@")):
            return None
        return self.packages.joinpath(*parts)

    def log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._log_lock, self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "runbook-world-registry/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request goes to the registry's own log instead

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def registry(self) -> StandInRegistry:
        return self.server.registry

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return {}
        raw = self.rfile.read(min(length, MAX_BODY))
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _send(
        self,
        status: int,
        body: Any = None,
        *,
        raw: bytes | None = None,
        ctype: str = "application/json",
        who: str = "-",
    ) -> None:
        payload = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="runbook world"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/-/user/token/"):
            path = "/-/user/token/(token)"
        self.registry.log(f"{self.command} {path} {status} {who}")

    def _auth(self) -> tuple[str | None, str]:
        """(user, how): by a token ("token", "read-only token"), by the account password
        ("basic"), or nobody (user None)."""
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        state = self.registry.state
        if scheme.lower() == "bearer" and value:
            row = state.tokens.get(token_key(value.strip()))
            if row is None:
                return None, "token"
            return row["user"], "read-only token" if row["readonly"] else "token"
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, "basic"
            return (user if state.check_password(user, password) else None), "basic"
        return None, "none"

    # -- verbs -------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/-/ping":
            return self._send(200, {})
        if path == "/-/whoami":
            user, _ = self._auth()
            if user is None:
                return self._send(401, {"error": "unauthorized: unknown or revoked token"})
            return self._send(200, {"username": user}, who=user)
        if path == "/-/npm/v1/tokens":
            return self._list_tokens()
        if path.startswith("/-/"):
            return self._send(404, {"error": "not found"})
        self._package(path)

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        body = self._body()
        if path == "/-/npm/v1/tokens":
            return self._create_token(body)
        self._send(404, {"error": "not found"})

    def do_PUT(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        body = self._body()
        prefix = "/-/user/org.couchdb.user:"
        if path.startswith(prefix):
            return self._login(urllib.parse.unquote(path[len(prefix) :]), body)
        self._send(403, {"error": "publishing is not part of this world"})

    def do_DELETE(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        self._body()
        if path.startswith("/-/npm/v1/tokens/token/"):
            return self._revoke(urllib.parse.unquote(path.rsplit("/", 1)[1]))
        if path.startswith("/-/user/token/"):
            token = urllib.parse.unquote(path[len("/-/user/token/") :])
            state = self.registry.state
            with state.lock:
                user = state.user_of(token)
                if user is None:
                    return self._send(404, {"error": "no such token"})
                state.revoke(token_key(token))
            return self._send(200, {"ok": "logged out"}, who=user)
        self._send(404, {"error": "not found"})

    # -- handlers ----------------------------------------------------------------------------
    def _package(self, path: str) -> None:
        name = urllib.parse.unquote(path.lstrip("/"))
        if "/-/" in name:
            package, _, filename = name.partition("/-/")
            data = self.registry.tarball(package, filename)
            if data is None:
                return self._send(404, {"error": "no such tarball"})
            return self._send(200, raw=data, ctype="application/octet-stream")
        data = self.registry.packument(name)
        if data is None:
            return self._send(404, {"error": "no such package available"})
        self._send(200, raw=data)

    def _list_tokens(self) -> None:
        user, _ = self._auth()
        if user is None:
            return self._send(401, {"error": "unauthorized"})
        state = self.registry.state
        with state.lock:
            rows = [
                {
                    "key": key,
                    "token": row["masked"],
                    "readonly": row["readonly"],
                    "cidr_whitelist": row["cidr"],
                    "created": row["created"],
                    "updated": row["created"],
                }
                for key, row in sorted(state.tokens.items(), key=lambda kv: kv[1]["created"])
                if row["user"] == user and row.get("listed", True)
            ]
        self._send(200, {"objects": rows, "total": len(rows), "urls": {}}, who=user)

    def _create_token(self, body: dict[str, Any]) -> None:
        user, how = self._auth()
        if user is None:
            return self._send(401, {"error": "unauthorized"})
        if how == "read-only token":
            return self._send(403, {"error": "a read-only token cannot manage tokens"}, who=user)
        state = self.registry.state
        password = body.get("password")
        if not isinstance(password, str) or not state.check_password(user, password):
            return self._send(401, {"error": "invalid password"}, who=user)
        cidr = body.get("cidr_whitelist") or []
        with state.lock:
            token, row = state.issue(
                user, readonly=bool(body.get("readonly")), cidr=[str(c) for c in cidr]
            )
        answer = {
            "token": token,
            "key": token_key(token),
            "user": user,
            "readonly": row["readonly"],
            "cidr_whitelist": row["cidr"],
            "created": row["created"],
            "updated": row["created"],
        }
        self._send(200, answer, who=user)

    def _revoke(self, key: str) -> None:
        user, how = self._auth()
        if user is None:
            return self._send(401, {"error": "unauthorized"})
        if how == "read-only token":
            return self._send(403, {"error": "a read-only token cannot manage tokens"}, who=user)
        state = self.registry.state
        with state.lock:
            row = state.tokens.get(key)
            if row is None or row["user"] != user:
                return self._send(404, {"error": "no such token"}, who=user)
            state.revoke(key)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.registry.log(f"DELETE /-/npm/v1/tokens/token/{key[:12]}... 204 {user}")

    def _login(self, name: str, body: dict[str, Any]) -> None:
        password = body.get("password")
        state = self.registry.state
        if not isinstance(password, str) or not password:
            return self._send(400, {"error": "a password is required"})
        with state.lock:
            if name in state.users:
                if not state.check_password(name, password):
                    return self._send(401, {"error": "bad username or password"})
            else:
                state.users[name] = account(name, password, secrets.token_hex(8))
            token, _ = state.issue(name, listed=False)  # a session, as npm login makes
        self._send(201, {"ok": f"you are authenticated as '{name}'", "token": token}, who=name)
