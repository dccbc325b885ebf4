"""AWS IAM and STS of a world: moto's server on 127.0.0.1, in a process of its own.

The world's build writes the state (`services/aws.json`: IAM users, their self-service policy,
their access keys with the ids and secrets its credential files hold); `MotoService.start()`
runs `steps.world.aws_child` on the port reserved at build time, with IAM authentication on, so
only those keys (and the ones a rotation creates) are accepted. The child writes its state back
when it stops, so stopping and starting the services keeps a rotation's result.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
# what rotating a user's own key needs, and nothing more (docs/credentials.md)
SELF_SERVICE = [
    "iam:CreateAccessKey",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetUser",
]
START_TIMEOUT = 30.0
_PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "SYSTEMROOT")


def user_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": SELF_SERVICE, "Resource": "*"},
            {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        ],
    }


def initial_state(keys: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """The state file for IAM users and their (access key id, secret) pairs."""
    users = [
        {
            "name": user,
            "policies": {"self-service": user_policy()},
            "keys": [
                {"id": kid, "secret": secret, "status": "Active", "created": None}
                for kid, secret in pairs
            ],
        }
        for user, pairs in sorted(keys.items())
    ]
    return {"account": ACCOUNT, "users": users}


class MotoService:
    """moto for one world: the port is reserved at build time, the process runs from `start()`."""

    def __init__(self, state: Path, workdir: Path, port: int = 0) -> None:
        self.state = state
        self.workdir = workdir
        self._sock: socket.socket | None = bind(port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "moto.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if importlib.util.find_spec("moto") is None:
            raise RuntimeError(
                "the AWS stand-in needs moto's server: install runbook[exercise] "
                "(moto[server]), as the README's set-up does"
            )
        if self._sock is None:
            self._sock = bind(self.port)
        self._sock.listen(64)
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(HOME=str(self.workdir), NO_PROXY="*", no_proxy="*", PYTHONDONTWRITEBYTECODE="1")
        fd = self._sock.fileno()
        argv = [sys.executable, "-m", "steps.world.aws_child", "--state", str(self.state)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*argv, "--fd", str(fd)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                pass_fds=(fd,),
            )
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = proc.stdout.readline()
                    if line.strip() == b"ready":
                        return
                    if not line:
                        break
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"the AWS stand-in (moto) did not start; {self.log}:\n{tail}")

    def stop(self) -> None:
        """Let the server write its state and exit (it stops when its stdin closes); the port
        is freed, and bound again by a later `start()` (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _close(proc.stdin)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            _close(proc.stdout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc else None


def bind(port: int) -> socket.socket:
    """A socket bound to `port` on 127.0.0.1 (0: a free one), not yet listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()
