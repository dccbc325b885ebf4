"""Driving Ansible through ansible-runner's Python API, and turning its events into host records.

ansible-runner runs `ansible-playbook` with the play of `runbook.fleet.play` in a private data
dir under the fleet folder (`DIR/.ansible`: play, inventory limit, artifacts, Ansible's local
temp), never under the user's HOME. Its events arrive here as they happen: each one updates the
host's record in `DIR/<host>/host.json`, which is what `runbook fleet status` reads (live, while
the run goes on). A fetched archive is unpacked and its journals verified the moment it arrives.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any

from runbook.fleet import hosts as records
from runbook.fleet.bundle import Wheelhouse
from runbook.fleet.collect import ArchiveRefused, unpack
from runbook.fleet.layout import FleetDir, read_json, utc_now
from runbook.fleet.play import FETCH, PROBE, VERDICT, WORK, build

AGENT = Path(__file__).with_name("agent.py")


class FleetError(Exception):
    """The fleet run cannot start: the message says why."""


def ansible_environment(private: Path) -> dict[str, str]:
    """Where Ansible keeps its own files on the controller: inside the fleet folder, unless the
    environment already says (a user's ANSIBLE_HOME may hold their collections)."""
    env = {
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_HOME": str(private / "home"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }
    return {k: v for k, v in env.items() if k == "ANSIBLE_LOCAL_TEMP" or k not in os.environ}


def select_hosts(inventory: Path, limit: str | None) -> list[str]:
    """The inventory's hosts matching `--limit`, in inventory order (Ansible's own parser, in
    this process; its temporary files go to a folder of our own, removed afterwards)."""
    scratch = Path(tempfile.mkdtemp(prefix="runbook-fleet-"))
    atexit.register(shutil.rmtree, scratch, True)
    for key, value in ansible_environment(scratch).items():
        os.environ.setdefault(key, value)  # read once, when ansible's constants are imported
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    if not inventory.exists():
        raise FleetError(f"inventory {inventory} does not exist")
    try:
        manager = InventoryManager(loader=DataLoader(), sources=[str(inventory)])
        if limit:
            manager.subset(limit)
        return [host.name for host in manager.get_hosts(pattern="all")]
    except AnsibleError as exc:
        raise FleetError(f"inventory {inventory}: {exc.message}") from None


@dataclass
class Plan:
    """One ansible-runner invocation of a fleet run."""

    command: str  # scan | run
    fleet: FleetDir
    fleet_id: str
    inventory: Path
    hosts: list[str]  # the hosts to work on now
    wheelhouse: Wheelhouse
    forks: int = 5
    serial: str | None = None
    max_fail_percent: float | None = None
    steps_total: int = 0
    common: dict[str, Any] = field(default_factory=dict)  # the agent configuration's fleet part
    playbook_file: Path | None = None


class Tracker:
    """Host records kept up to date from ansible-runner's events."""

    def __init__(self, plan: Plan, echo: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.plan = plan
        self.echo = echo
        self.by_digest = {sha1(h.encode()).hexdigest(): h for h in plan.hosts}
        self.records: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.stopped = False
        for host in plan.hosts:
            record = self._existing(host) or records.new_record(host, plan.fleet_id, plan.command)
            ansible = record["ansible"]
            ansible.update(status="pending", reason="waiting for its turn", stage="")
            ansible["attempts"] = int(ansible.get("attempts") or 0) + 1
            self.records[host] = record
            self._save(host)

    def _existing(self, host: str) -> dict[str, Any] | None:
        try:
            return records.load(self.plan.fleet.host_dir(host), self.plan.steps_total)
        except (OSError, ValueError):
            return None

    def _save(self, host: str) -> None:
        records.save(self.plan.fleet.host_dir(host), self.records[host], self.plan.steps_total)

    # -- events -----------------------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> bool:
        """ansible-runner's `event_handler`: True keeps the event in its artifacts."""
        data = event.get("event_data") or {}
        host = data.get("host")
        name = event.get("event", "")
        if name == "playbook_on_no_hosts_remaining":
            self.stopped = True  # a batch went over --max-fail-percent
        if host not in self.records:
            return True
        task = str(data.get("task", ""))
        res = data.get("res") or {}
        record = self.records[host]
        ansible = record["ansible"]
        if name == "runner_on_start":
            ansible["stage"] = task.removeprefix("runbook: ")
            if ansible["status"] != "pending":
                return True  # kept in memory: one write per host at each real change
            ansible.update(status="running", reason="", started=utc_now())
            self.started[host] = time.monotonic()
            records.note(record, "started")
        elif name == "runner_on_unreachable":
            self._end(host, "unreachable", _message(res) or "unreachable")
            return True
        elif name == "runner_on_failed" and not data.get("ignore_errors"):
            if task == PROBE:
                reason = _agent_reason(res)
            elif res.get("censored"):  # no_log: Ansible hides why
                reason = f"{task} failed (its output is hidden: no_log)"
            else:
                reason = _message(res)
            self._end(host, "failed", reason or f"{task} failed")
            return True
        elif name == "runner_on_ok" and task in (PROBE, WORK, FETCH):
            self._ok(host, task, res)
        elif name == "runner_on_skipped" and task == VERDICT:
            self._end(host, "ok", "")
            return True
        else:
            return True
        self._save(host)
        return True

    def _ok(self, host: str, task: str, res: dict[str, Any]) -> None:
        record = self.records[host]
        if task == PROBE:
            facts = _json(res.get("stdout"))
            installed = "installed" if facts.get("installed") else "not installed yet"
            records.note(
                record,
                f"Python {facts.get('python_version', '?')} at {facts.get('python', '?')}, "
                f"{facts.get('free_mb', '?')} MB free, runbook {installed}",
            )
        elif task == WORK:
            facts = _json(res.get("stdout"))
            if facts.get("installed_now"):
                records.note(record, f"installed runbook in {facts.get('install_seconds')} s")
            records.note(record, "work done" if facts.get("ok") else "work failed")
        elif task == FETCH:
            self._arrived(host, res)

    def _arrived(self, host: str, res: dict[str, Any]) -> None:
        record = self.records[host]
        archive = Path(str(res.get("dest") or ""))
        host_dir = self.plan.fleet.host_dir(host)
        try:
            unpacked = unpack(archive, host_dir)
        except ArchiveRefused as exc:
            self._end(host, "failed", f"the fetched results were refused: {exc}")
            return
        finally:
            archive.unlink(missing_ok=True)
        records.arrive(record, host_dir, unpacked)
        records.note(record, f"fetched {len(unpacked.files)} file(s)")

    def _end(self, host: str, status: str, reason: str) -> None:
        record = self.records[host]
        ansible = record["ansible"]
        if ansible["status"] in ("ok", "failed", "unreachable"):
            return
        ansible.update(status=status, reason=reason, ended=utc_now())
        if host in self.started:
            ansible["duration"] = round(time.monotonic() - self.started[host], 1)
        records.note(record, status if not reason else f"{status}: {reason}")
        self._save(host)
        if self.echo:
            self.echo(record["row"])

    def finish(self, reason_not_run: str) -> None:
        """After the run: hosts never reached, or cut off, say why."""
        for host, record in self.records.items():
            ansible = record["ansible"]
            cut = ansible["status"] == "running" and self.stopped
            if ansible["status"] == "pending" or cut:
                what = "stopped before finishing" if cut else reason_not_run
                if cut:
                    what += reason_not_run.removeprefix("not run")
                ansible.update(status="not-run", reason=what)
                records.note(record, what)
                self._save(host)
                if self.echo:
                    self.echo(record["row"])
            elif ansible["status"] == "running":
                why = "its results did not come back before the fleet run ended; rerun to resume"
                self._end(host, "failed", why)


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(str(text or "").strip())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _message(res: dict[str, Any]) -> str:
    msg = res.get("msg")
    if isinstance(msg, str) and msg.strip():
        return " ".join(msg.split())[:800]
    stderr = str(res.get("stderr") or res.get("module_stderr") or "").strip()
    return stderr[-800:]


def _agent_reason(res: dict[str, Any]) -> str:
    """The agent's own reason, or what the host said when the agent could not even start (no
    Python at all: the shell's 'python3: not found')."""
    said = _json(res.get("stdout"))
    if said.get("reason"):
        return str(said["reason"])
    stderr = " ".join(str(res.get("stderr") or res.get("stdout") or "").split())
    return f"the agent could not run: {stderr[-600:] or _message(res)}"


class Cancel:
    """SIGINT/SIGTERM ask ansible-runner to stop (its `cancel_callback`)."""

    def __init__(self) -> None:
        self.asked = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Cancel:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._ask)
        return self

    def _ask(self, signum: int, frame: object) -> None:
        self.asked = True

    def __call__(self) -> bool:
        return self.asked

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class Outcome:
    status: str  # ansible-runner's: successful | failed | canceled | timeout
    rc: int
    interrupted: bool
    said: str = ""  # the end of Ansible's output, when it failed before reaching any host


def run(plan: Plan, echo: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
    """Run the play on `plan.hosts`; host records are written as events arrive."""
    import ansible_runner

    private = plan.fleet.private
    project = private / "project"
    project.mkdir(parents=True, exist_ok=True)
    plan.fleet.incoming.mkdir(parents=True, exist_ok=True)
    shutil.copy2(AGENT, project / "agent.py")
    play = build(
        plan.command,
        serial=plan.serial,
        max_fail_percent=plan.max_fail_percent,
        playbook_file=plan.playbook_file is not None,
    )
    (project / "runbook-fleet.yml").write_text(json.dumps(play, indent=1) + "\n")
    limit = private / "limit"
    limit.write_text("".join(f"{h}\n" for h in plan.hosts))
    extravars: dict[str, Any] = {  # a file, not the command line: no length limit
        "runbook_fleet": plan.common,
        "runbook_fleet_agent": str(project / "agent.py"),
        "runbook_fleet_bundle": str(plan.wheelhouse.archive),
        "runbook_fleet_incoming": str(plan.fleet.incoming),
    }
    if plan.playbook_file is not None:
        extravars["runbook_fleet_playbook"] = str(plan.playbook_file)
    (private / "env").mkdir(exist_ok=True)
    (private / "env" / "extravars").write_text(json.dumps(extravars), encoding="utf-8")
    tracker = Tracker(plan, echo)
    envvars = ansible_environment(private)
    bindir = Path(sys.executable).parent  # the environment ansible-core is installed in
    if (bindir / "ansible-playbook").exists():
        envvars["PATH"] = os.pathsep.join([str(bindir), os.environ.get("PATH", os.defpath)])
    with Cancel() as cancel:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            ident=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}",
            playbook="runbook-fleet.yml",
            inventory=str(plan.inventory),
            limit=f"@{limit}",
            forks=plan.forks,
            envvars=envvars,
            quiet=True,
            event_handler=tracker.handle,
            cancel_callback=cancel,
            rotate_artifacts=10,
            suppress_env_files=True,
        )
    _forget_environment(private / "artifacts")
    interrupted = cancel.asked or runner.status == "canceled"
    if interrupted:
        not_run = "not run: the fleet run was interrupted; rerun to continue"
    elif tracker.stopped:
        not_run = (
            f"not run: more than {plan.max_fail_percent:g}% of a batch failed "
            f"(--max-fail-percent); rerun to continue"
        )
    else:
        not_run = f"not run: the fleet run ended ({runner.status}) before reaching this host"
    tracker.finish(not_run)
    said = ""
    if runner.rc and not tracker.started and not interrupted:
        try:
            said = runner.stdout.read()[-2000:].strip()
        except (OSError, ValueError, AttributeError):
            said = ""
    return Outcome(runner.status, runner.rc or 0, interrupted, said)


def _forget_environment(artifacts: Path) -> None:
    """ansible-runner keeps the controller's whole environment (values included) in each run's
    `command` artifact; keep the variable names only: values may be secrets."""
    for command in artifacts.glob("*/command"):
        try:
            data = json.loads(command.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("env"), dict):
                data["env"] = sorted(data["env"])
                command.write_text(json.dumps(data), encoding="utf-8")
        except (OSError, ValueError):
            command.unlink(missing_ok=True)


def load_rows(fleet: FleetDir, names: list[str], steps_total: int) -> list[dict[str, Any]]:
    """The current row of each host (pending for a host with no record yet)."""
    rows = []
    for host in names:
        try:
            rows.append(records.load(fleet.host_dir(host), steps_total)["row"])
        except (OSError, ValueError):
            rows.append(records.derive(records.new_record(host, "", ""), steps_total))
    return rows


def previous_hosts(fleet: FleetDir) -> list[str]:
    try:
        return list(read_json(fleet.manifest).get("hosts") or [])
    except (OSError, ValueError):
        return []
