"""The moto server of one world, run as its own process by `steps.world.aws`.

    python -m steps.world.aws_child --state STATE.json --fd N

It loads the world's IAM users, their inline policies and access keys from STATE.json (the
key ids and secrets the world wrote into its credential files, so those keys really
authenticate), turns IAM authentication on, prints `ready` and serves IAM and STS on the
listening socket it inherited (fd N). When its standard input closes (the world stopped, or the
process that started it died) or on SIGTERM, it writes the users and keys as they are now back
to STATE.json and exits: a restart resumes from there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

PARTITION = "aws"


def _backend(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account][PARTITION]


def load(state: dict[str, Any]) -> None:
    """Create the users, policies and keys of `state` in moto (authentication still off)."""
    backend = _backend(state["account"])
    for user in state["users"]:
        backend.create_user(region_name="us-east-1", user_name=user["name"])
        for name, document in sorted(user["policies"].items()):
            backend.put_user_policy(user["name"], name, json.dumps(document))
        for row in user["keys"]:
            key = backend.create_access_key(user["name"], status=row["status"])
            # moto makes its own id and secret: the world's are the ones its files hold
            backend.access_keys.pop(key.access_key_id)
            key.access_key_id = row["id"]
            key.secret_access_key = row["secret"]
            if row.get("created"):
                key.create_date = datetime.fromisoformat(row["created"])
            backend.access_keys[key.access_key_id] = key


def dump(account: str, previous: dict[str, Any]) -> dict[str, Any]:
    """The users and keys as moto holds them now."""
    backend = _backend(account)
    users = []
    for user in sorted(backend.users.values(), key=lambda u: u.name):
        policies = {
            name: json.loads(doc) if isinstance(doc, str) else doc
            for name, doc in sorted(user.policies.items())
        }
        keys = [
            {
                "id": key.access_key_id,
                "secret": key.secret_access_key,
                "status": key.status,
                "created": key.create_date.isoformat(),
            }
            for key in user.access_keys
        ]
        users.append({"name": user.name, "policies": policies, "keys": keys})
    return {**previous, "users": users}


def write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="steps.world.aws_child")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    state = json.loads(args.state.read_text(encoding="utf-8"))

    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    load(state)
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # every request signed by a key moto knows
    ActionAuthenticatorMixin.request_count = 0
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler, fd=args.fd
    )
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        stop()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=watch_stdin, daemon=True).start()
    print("ready", flush=True)
    server.serve_forever()
    write_state(args.state, dump(state["account"], state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
