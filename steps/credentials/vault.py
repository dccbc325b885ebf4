"""New secrets go into the OS keyring, under one service name per playbook.

Keyring backends cannot list their entries, so runbook keeps an index of what it stored (names,
types, fingerprints, never values) as one more keyring entry. Discovery reads it back, and a
rotation interrupted half way finds the new key it already created there.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keyring
import keyring.backend
import keyring.core
import keyring.errors

INDEX_SERVICE = "runbook"
INDEX_NAME = "index"
# Backends that do not keep a secret safe: they fail, forget, or write it in clear text.
INSECURE = {
    "keyring.backends.fail.Keyring": "it cannot store anything (no keyring service is running)",
    "keyring.backends.null.Keyring": "it silently drops every secret",
    "keyrings.alt.file.PlaintextKeyring": "it writes secrets to a file in clear text",
    "steps.world.keyring_file.WorldKeyring": "it is a drill's clear-text file inside the sandbox",
}


class KeyringRefused(Exception):
    """The keyring backend is not safe for secrets and the operator did not opt in."""


def service_for(playbook_id: str) -> str:
    """The keyring service name new secrets of a playbook are stored under."""
    return f"runbook:{playbook_id}"


def backend_name(backend: keyring.backend.KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def load_backend(env: Mapping[str, str] | None = None) -> keyring.backend.KeyringBackend:
    """The backend `keyring` would use, honouring PYTHON_KEYRING_BACKEND in `env`."""
    name = (env or {}).get("PYTHON_KEYRING_BACKEND")
    if name:
        return keyring.core.load_keyring(name)
    return keyring.get_keyring()


def insecure_reason(backend: keyring.backend.KeyringBackend) -> str | None:
    """Why `backend` is unfit for secrets, or None when it is a real keyring."""
    inner = getattr(backend, "backends", None)
    if inner is not None:  # the chainer: unsafe when it holds nothing but unsafe backends
        reasons = [insecure_reason(b) for b in inner]
        if not inner:
            return INSECURE["keyring.backends.fail.Keyring"]
        if all(reasons):
            return reasons[0]
        return None
    return INSECURE.get(backend_name(backend))


def check_backend(
    env: Mapping[str, str] | None = None, *, allow_insecure: bool = False
) -> keyring.backend.KeyringBackend:
    """The backend to store secrets in; raise KeyringRefused when it is unsafe and not allowed."""
    try:
        backend = load_backend(env)
    except Exception as exc:  # a misspelt PYTHON_KEYRING_BACKEND, a broken backend
        raise KeyringRefused(f"cannot load the keyring backend: {exc}") from None
    reason = insecure_reason(backend)
    if reason and not allow_insecure:
        raise KeyringRefused(
            f"refusing the keyring backend {backend_name(backend)}: {reason}. New credentials "
            "must be kept somewhere safe: start a keyring service (GNOME Keyring, KWallet, "
            "macOS Keychain, Windows Credential Locker), or pass --allow-insecure-keyring to "
            "accept this backend knowingly"
        )
    return backend


@dataclass(frozen=True)
class StoredEntry:
    """An index row: what runbook stored and when. `fingerprint` identifies the value."""

    service: str
    name: str
    type: str
    fingerprint: str
    created: float
    meta: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "type": self.type,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "meta": self.meta,
        }


class Vault:
    """Stores and reads back the secrets runbook created, through one keyring backend."""

    def __init__(self, backend: keyring.backend.KeyringBackend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, env: Mapping[str, str] | None = None, *, allow_insecure: bool = False) -> Vault:
        return cls(check_backend(env, allow_insecure=allow_insecure))

    # -- the index -----------------------------------------------------------------------------
    def entries(self) -> list[StoredEntry]:
        """Every entry runbook stored; an unreadable or absent index is an empty one."""
        try:
            raw = self.backend.get_password(INDEX_SERVICE, INDEX_NAME)
        except keyring.errors.KeyringError:
            return []
        if not raw:
            return []
        try:
            rows = json.loads(raw)
            return [StoredEntry(**row) for row in rows]
        except (ValueError, TypeError):
            return []

    def _write_index(self, entries: list[StoredEntry]) -> None:
        blob = json.dumps([e.public() for e in entries], sort_keys=True)
        self.backend.set_password(INDEX_SERVICE, INDEX_NAME, blob)

    # -- values --------------------------------------------------------------------------------
    def store(
        self,
        service: str,
        name: str,
        value: str,
        *,
        type: str,
        fingerprint: str,
        meta: Mapping[str, Any] | None = None,
    ) -> StoredEntry:
        """Store `value` (the value first, then the index row) and return the row."""
        self.backend.set_password(service, name, value)
        entry = StoredEntry(service, name, type, fingerprint, time.time(), dict(meta or {}))
        rows = [e for e in self.entries() if (e.service, e.name) != (service, name)]
        self._write_index([*rows, entry])
        return entry

    def get(self, service: str, name: str) -> str | None:
        try:
            return self.backend.get_password(service, name)
        except keyring.errors.KeyringError:
            return None

    def update_meta(self, service: str, name: str, **meta: Any) -> None:
        rows = self.entries()
        for i, row in enumerate(rows):
            if (row.service, row.name) == (service, name):
                rows[i] = StoredEntry(
                    row.service,
                    row.name,
                    row.type,
                    row.fingerprint,
                    row.created,
                    {**row.meta, **meta},
                )
        self._write_index(rows)

    def delete(self, service: str, name: str) -> None:
        """Forget an entry (a new key that was rolled back); absent entries are fine."""
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            self.backend.delete_password(service, name)
        self._write_index([e for e in self.entries() if (e.service, e.name) != (service, name)])

    def find(self, fingerprint: str) -> StoredEntry | None:
        return next((e for e in self.entries() if e.fingerprint == fingerprint), None)


def keyring_preflight(env: Mapping[str, str], options: Mapping[str, Any]) -> str | None:
    """Said at the start of a live run whose rotations will need the keyring."""
    try:
        check_backend(env, allow_insecure=bool(options.get("allow_insecure_keyring")))
    except KeyringRefused as exc:
        return f"the credential rotations will stop: {exc}"
    return None
