"""The keyring of a simulated world: a JSON file inside the sandbox, in clear text.

A world's environment selects it with `PYTHON_KEYRING_BACKEND=steps.world.keyring_file.WorldKeyring`
and names the file in `RUNBOOK_WORLD_KEYRING`; the process that runs the playbook must have that
environment (keyring reads it from the process, not from a step's environment). It keeps the
made-up secrets of a drill where the drill can see and delete them, and never touches the real
keyring. It is no place for a real secret: the world's runs accept it with
`allow_insecure_keyring`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import InitError, PasswordDeleteError

ENV = "RUNBOOK_WORLD_KEYRING"
_LOCK = threading.Lock()


class WorldKeyring(KeyringBackend):
    """Secrets as `{service: {username: password}}` in the file `$RUNBOOK_WORLD_KEYRING`."""

    priority = 0.1  # never chosen on its own: only when named by PYTHON_KEYRING_BACKEND

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get(ENV)
        if not path:
            raise InitError(f"{ENV} is not set: this keyring belongs to a simulated world")
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        with _LOCK:
            return self._read().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with _LOCK:
            data = self._read()
            data.setdefault(service, {})[username] = password
            self._write(data)

    def delete_password(self, service: str, username: str) -> None:
        with _LOCK:
            data = self._read()
            if username not in data.get(service, {}):
                raise PasswordDeleteError(f"no such entry: {service} {username}")
            del data[service][username]
            if not data[service]:
                del data[service]
            self._write(data)
