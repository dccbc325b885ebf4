"""A real moto server (IAM and STS over HTTP) with IAM authentication enforced, for AWS tests.

`moto_server` runs in its own process on a free 127.0.0.1 port. Each test starts from a reset
state: `reset()` wipes it and turns authentication off so the test can create users and keys with
any credentials; `enforce_auth()` turns it on, after which every request must be signed by a key
moto knows and allowed by that user's policies (an unknown or deleted key gets
`InvalidClientTokenId`). `no_auth()` lifts the checks briefly to inspect state between runs.

    with start_moto(tmp_path) as moto:
        moto.reset()
        moto.user("alice")                 # may manage its own keys
        pair = moto.create_key("alice")
        moto.enforce_auth()
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.credentials.aws import AccessKey, AwsTarget, KeyPair, make_client

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
# what runbook needs to rotate a user's own key (moto matches policy resources against "*";
# on AWS, scope them to arn:aws:iam::ACCOUNT:user/${aws:username})
SELF_SERVICE = ["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"]
SELF_SERVICE += ["iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:GetUser"]
LIST_USERS = ["iam:ListUsers"]
# any pair will do while authentication is off
SETUP_PAIR = KeyPair("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def target(self) -> AwsTarget:
        return AwsTarget(self.url)

    def _post(self, path: str, body: str = "") -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with _NO_PROXY.open(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Wipe every account's state and turn authentication off (for the set-up)."""
        self._post("/moto-api/reset")
        self._post("/moto-api/reset-auth", "inf")

    def enforce_auth(self) -> None:
        """From now on every request is authenticated and authorised, as on AWS."""
        self._post("/moto-api/reset-auth", "0")

    @contextlib.contextmanager
    def no_auth(self) -> Iterator[None]:
        """Authentication off for a moment (inspection between runs), then on again."""
        self._post("/moto-api/reset-auth", "inf")
        try:
            yield
        finally:
            self.enforce_auth()

    # -- IAM set-up and inspection (authentication off) ----------------------------------------
    def iam(self, pair: KeyPair = SETUP_PAIR) -> Any:
        return make_client("iam", pair, self.target)

    def user(self, name: str, *, actions: list[str] | None = None) -> None:
        """An IAM user whose inline policy allows `actions` (default: its own keys)."""
        iam = self.iam()
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": actions or SELF_SERVICE, "Resource": "*"},
                {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
            ],
        }
        iam.put_user_policy(UserName=name, PolicyName="self", PolicyDocument=json.dumps(policy))

    def create_key(self, user: str, *, active: bool = True) -> KeyPair:
        key = self.iam().create_access_key(UserName=user)["AccessKey"]
        pair = KeyPair(key["AccessKeyId"], key["SecretAccessKey"])
        if not active:
            self.iam().update_access_key(
                UserName=user, AccessKeyId=pair.access_key_id, Status="Inactive"
            )
        return pair

    def keys(self, user: str) -> list[AccessKey]:
        """The user's keys as AWS lists them (call inside `no_auth()` once auth is on)."""
        rows = self.iam().list_access_keys(UserName=user)["AccessKeyMetadata"]
        return [AccessKey(r["AccessKeyId"], r["Status"], r.get("CreateDate")) for r in rows]


def start_moto(workdir: Path, timeout: float = 30) -> MotoServer:
    """Start `moto_server` on a free port; returns once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
    env.update(HOME=str(workdir), NO_PROXY="*", no_proxy="*")
    for _ in range(3):
        port = free_port()
        log = workdir / "moto.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = MotoServer(f"http://127.0.0.1:{port}", proc, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                server.reset()
                return server
            except OSError:
                time.sleep(0.05)
        stop_moto(server)
    raise RuntimeError(f"moto_server did not start; see {workdir / 'moto.log'}")


def stop_moto(server: MotoServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
