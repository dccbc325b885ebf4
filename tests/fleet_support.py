"""Fleets of local hosts for the `runbook fleet` tests: real Ansible (`ansible_connection=local`),
each host with its own HOME and targets, the real CLI driving ansible-runner.

Every host installs the runbook wheel built once per test session (`tests/fleet_fixtures.py`)
into a virtual environment under one session folder (`runbook_venv_root`), with
`runbook_dependencies: system` pointing at this test Python's site-packages: the install path
(wheel copied, venv created, pip from the wheelhouse, version checked) is the real one; only the
dependencies are not copied 20 times.
One host of the 20-host fleet keeps the default venv root, under its own HOME.

Nothing leaves the machine: the unreachable host is SSH to a port of 127.0.0.1 that a socket
holds bound without listening (connection refused at once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbook.journal import Journal
from tests.conftest import EXAMPLE, ROOT, RUNBOOK

CLEAN = ROOT / "tests" / "fixtures" / "projects" / "clean"
INCIDENT = textwrap.dedent(
    """\
    incident:
      summary: axios 1.14.1 and 0.30.4 were published with a malicious dependency.
      window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
      packages:
        - name: axios
          bad_versions: ["1.14.1", "0.30.4"]
          safe_pins: {"1": "1.14.0", "0": "0.30.3"}
        - {name: plain-crypto-js, any_version: true}
      indicators: {dependencies: [plain-crypto-js]}
    """
)
# Real step kinds only (the hosts run the installed wheel, which has no test kinds).
PLAYBOOK = (
    'id: fleet-test\ntitle: Fleet test playbook\nversion: "1"\n'
    + INCIDENT
    + textwrap.dedent(
        """\
        steps:
          - {id: detect, uses: detect, title: Find every copy, confirm: never, with: {paths: [app]}}
          - {id: wipe, uses: wipe_node_modules, title: Remove node_modules, confirm: destructive,
             with: {paths: [app]}}
          - {id: verify, uses: detect, title: Verify, confirm: never,
             with: {paths: [app], verify: true}}
          - id: rotate
            uses: manual
            title: Rotate the credentials this machine held
            confirm: always
            with: {items: [{id: keys, text: "Rotated every key this machine held"}]}
          - id: review
            uses: manual
            title: Review logs
            confirm: never
            with:
              items: [{id: ci, text: "Searched CI logs"}, {id: dns, text: "Searched DNS logs"}]
        """
    )
)


# -- project fixtures ---------------------------------------------------------------------------
def compromised(app: Path) -> None:
    shutil.copytree(EXAMPLE, app, symlinks=True)


def exposed(app: Path) -> None:
    app.mkdir(parents=True)
    manifest = {"name": "svc", "version": "1.0.0", "dependencies": {"axios": "^1.14.0"}}
    (app / "package.json").write_text(json.dumps(manifest))


def clean(app: Path) -> None:
    shutil.copytree(CLEAN, app, symlinks=True)


def remediable(app: Path) -> None:
    """A bad axios installed, nothing locked, the manifest already pinned: wiping cures it."""
    (app / "node_modules" / "axios").mkdir(parents=True)
    (app / "package.json").write_text('{"name": "fixed", "dependencies": {"axios": "1.14.0"}}')
    (app / "node_modules" / "axios" / "package.json").write_text(
        '{"name": "axios", "version": "1.14.1"}'
    )


def broken(app: Path) -> None:
    """A lockfile cut off mid-way: it cannot be checked (not clean)."""
    app.mkdir(parents=True)
    (app / "package.json").write_text('{"name": "cut", "dependencies": {"left-pad": "1.3.0"}}')
    (app / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {"": {"name": ')


FIXTURES = {
    "compromised": compromised,
    "exposed": exposed,
    "clean": clean,
    "remediable": remediable,
    "broken": broken,
}


def seed_broken_journal(home: Path, target: Path) -> Path:
    """An unfinished live run of the test playbook on `target` whose second line was edited
    afterwards: runbook refuses to resume it, and the fleet must show the broken chain."""
    path = home / ".local/state/runbook/fleet-test/20260331T010000Z-0a0b0c.jsonl"
    with Journal(path, lambda data: data) as journal:
        journal.append(
            "run_started",
            {
                "playbook": {"id": "fleet-test", "title": "Fleet test playbook", "version": "1"},
                "target": os.path.realpath(target),
                "mode": "live",
                "operator": "someone",
                "host": "h15",
                "tool_version": "0.1.0",
            },
        )
        journal.append("step_started", {"step": "detect", "fingerprint": "x"})
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"detect"', '"verify"')
    path.write_text("".join(lines))
    return path


def fake_old_python(where: Path) -> Path:
    """An interpreter that answers the agent's probe as Python 3.9 would."""
    script = where / "python3.9"
    script.write_text('#!/bin/sh\necho \'{"version": "3.9.18", "site": [], "venv": false}\'\n')
    script.chmod(0o755)
    return script


# -- the environment and the command ------------------------------------------------------------
def controller_env(root: Path) -> dict[str, str]:
    """The fleet command's environment: HOME and the XDG folders under `root`."""
    home = root / "controller-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(root / "controller-state"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        RUNBOOK_OPERATOR="fleet-lead",
        RUNBOOK_NO_DNS="1",
        ANSIBLE_REMOTE_TEMP=str(root / "ansible-remote-tmp"),
    )
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_HOME", "ANSIBLE_LOCAL_TEMP", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def fleet_cli(
    env: dict[str, str], *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), "fleet", *map(str, args)],
        env=env,
        cwd=cwd or env["HOME"],  # a fleet run without --out writes under ./fleet/
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(env: dict[str, str], out: Path) -> dict[str, Any]:
    done = fleet_cli(env, "status", out, "--format", "json")
    assert done.returncode in (0, 1, 3), done.stderr
    return json.loads(done.stdout)


def states(env: dict[str, str], out: Path) -> dict[str, str]:
    return {row["host"]: row["state"] for row in status(env, out)["hosts"]}


def rows(env: dict[str, str], out: Path) -> dict[str, dict[str, Any]]:
    return {row["host"]: row for row in status(env, out)["hosts"]}


def record(out: Path, host: str) -> dict[str, Any]:
    return json.loads((out / host / "host.json").read_text())


@dataclass
class Fleet:
    """Hosts (folders under `root/hosts`) and the inventory that names them."""

    root: Path
    venv_root: Path
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def playbook(self) -> Path:
        return self.root / "fleet-test.yaml"

    def home(self, name: str) -> Path:
        return self.root / "hosts" / name

    def add(self, name: str, *projects: str, **variables: Any) -> Path:
        """A local host whose targets each hold `app/` made by one fixture."""
        home = self.home(name)
        home.mkdir(parents=True)
        targets = []
        for index, kind in enumerate(projects):
            target = home / (f"work-{index}" if len(projects) > 1 else "work")
            target.mkdir()
            FIXTURES[kind](target / "app")
            targets.append(str(target))
        host: dict[str, Any] = {"runbook_home": str(home)}
        if targets:
            host["runbook_targets"] = targets
        host.update(variables)
        self.hosts[name] = host
        return home

    def write(self) -> Path:
        common = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "runbook_python": sys.executable,
            "runbook_dependencies": "system",
            "runbook_venv_root": str(self.venv_root),
        }
        hosts = {}
        for name, variables in self.hosts.items():
            values = dict(variables)
            if values.pop("default_venv_root", False):
                values["runbook_venv_root"] = None
            hosts[name] = values
        document = {"all": {"vars": common, "hosts": hosts}}
        self.inventory.write_text(yaml.safe_dump(document, sort_keys=False))
        self.playbook.write_text(PLAYBOOK)
        return self.inventory


def unreachable(port: int) -> dict[str, Any]:
    """Host variables of a host Ansible cannot reach (SSH to a refused port; host key checks
    off for this host only: no key is ever offered)."""
    return {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": port,
        "ansible_user": "nobody",
        "ansible_timeout": 5,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o BatchMode=yes -o ConnectionAttempts=1",
    }
