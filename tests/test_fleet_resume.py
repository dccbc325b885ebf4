"""A fleet run killed half way resumes on the rerun (the hosts that finished are skipped, the
others resume through runbook's own resume on the host), and `--max-fail-percent` stops a run.

The kill: one host's `clear_caches` step runs `npm cache clean`, and that host's PATH (through
`runbook_environment`) finds an `npm` that waits until the test opens a gate: a slow package
manager, so the host is mid-step for certain when every process of the fleet run (controller,
ansible-playbook, workers, agents, runbook, npm) gets SIGKILL, as a crashed controller would.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time

import psutil

from runbook.journal import read_entries, verify
from tests.conftest import RUNBOOK
from tests.fleet_support import (
    INCIDENT,
    Fleet,
    controller_env,
    fake_old_python,
    fleet_cli,
    record,
    rows,
    states,
)

pytest_plugins = ["tests.fleet_fixtures"]  # the session's wheelhouse and host venv root

# Bigger than what travels inside the agent's configuration: Ansible copies it (once per host).
PADDING = "\n".join(f"      Note {n}: " + "padding " * 12 for n in range(600))
SLOW_PLAYBOOK = (
    'id: fleet-slow\ntitle: Fleet resume playbook\nversion: "1"\n'
    + INCIDENT
    + f"""\
steps:
  - id: detect
    uses: detect
    title: Find every copy
    confirm: never
    description: |
{PADDING}
    with: {{paths: [app]}}
  - {{id: caches, uses: clear_caches, title: Clear the npm cache, confirm: destructive,
     with: {{managers: [npm]}}}}
  - id: review
    uses: manual
    title: Review logs
    confirm: never
    with: {{items: [{{id: ci, text: "Searched CI logs"}}]}}
"""
)

SECRET = "s3cr3t-fleet-env-7f1c9a"  # a value of runbook_environment: never written anywhere
GATED_NPM = """#!/bin/sh
touch "{gate}/entered"
while [ ! -e "{gate}/open" ]; do sleep 0.05; done
exit 0
"""


def _wait(proc: subprocess.Popen[str], predicate, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the fleet run ended before {what}: {proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the fleet command and every process under it, at once."""
    parent = psutil.Process(proc.pid)
    family = [*parent.children(recursive=True), parent]
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    proc.wait(timeout=30)


def test_a_killed_fleet_run_resumes(tmp_path, wheelhouse, venv_root):
    fleet = Fleet(tmp_path, venv_root)
    gate = tmp_path / "gate"
    gate.mkdir()
    npm = gate / "npm"
    npm.write_text(GATED_NPM.format(gate=gate))
    npm.chmod(0o755)
    slow = fleet.add("r1", "clean")
    (slow / ".npm" / "_cacache" / "index-v5").mkdir(parents=True)
    (slow / ".npm" / "_cacache" / "index-v5" / "entry").write_text("cached\n")
    env = controller_env(tmp_path)
    fleet.hosts["r1"]["runbook_environment"] = {"PATH": f"{gate}:{env['PATH']}", "TOKEN": SECRET}
    fleet.add("r2", "clean")
    fleet.add("r3", "compromised")
    fleet.write()
    playbook = tmp_path / "slow.yaml"
    playbook.write_text(SLOW_PLAYBOOK)
    assert len(SLOW_PLAYBOOK) > 48 * 1024
    out = tmp_path / "out"
    args = ["run", playbook, "-i", fleet.inventory, "--out", out, "--yes", "--wheelhouse"]
    argv = [str(RUNBOOK), "fleet", *map(str, [*args, wheelhouse])]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait(proc, lambda: (gate / "entered").exists(), "r1 to enter its npm")
        _wait(
            proc,
            lambda: all(
                (out / h / "host.json").exists() and record(out, h)["ansible"]["status"] == "ok"
                for h in ("r2", "r3")
            ),
            "r2 and r3 to finish (each host goes on alone)",
        )
    finally:
        _kill_tree(proc)
    killed = rows(env, out)
    assert killed["r1"]["state"] == "failed"
    assert "stopped before this host's results came back" in killed["r1"]["reason"]
    assert (killed["r2"]["state"], killed["r3"]["state"]) == ("clean", "compromised")
    journals = sorted((slow / ".local/state/runbook/fleet-slow").glob("*.jsonl"))
    assert len(journals) == 1
    cut = [e["event"] for e in read_entries(journals[0])]
    assert "run_finished" not in cut and cut[-1] in ("step_started", "effect", "step_planned")

    (gate / "open").touch()
    again = fleet_cli(env, *args, wheelhouse)
    assert again.returncode == 1, again.stdout  # r3 is compromised
    assert "2 finished before (skipped)" in again.stdout
    assert states(env, out) == {"r1": "clean", "r2": "clean", "r3": "compromised"}
    attempts = {h: record(out, h)["ansible"]["attempts"] for h in ("r1", "r2", "r3")}
    assert attempts == {"r1": 2, "r2": 1, "r3": 1}
    fetched = sorted((out / "r1" / "journals").glob("*.jsonl"))
    assert [p.name for p in fetched] == [journals[0].name]  # the same run, resumed
    assert verify(fetched[0]).ok
    entries = read_entries(fetched[0])
    events = [e["event"] for e in entries]
    assert events.count("run_started") == 1 and events.count("run_resumed") == 1
    detect_runs = [e for e in entries if e["event"] == "step_finished"]
    assert [e["data"]["step"] for e in detect_runs] == ["detect", "caches", "review"]
    assert not (slow / ".npm" / "_cacache").exists()
    manifest = json.loads((out / "fleet.json").read_text())
    assert manifest["status"] == "finished" and manifest["complete"] is True
    assert len(manifest["runs"]) == 2
    # the host's environment travelled as a no_log file, read once and removed
    assert not list((venv_root / "private").glob("*.json"))
    for path in [*out.rglob("*"), *(tmp_path / "ansible-remote-tmp").rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_max_fail_percent_stops_the_run_and_a_rerun_continues(tmp_path, wheelhouse, venv_root):
    fleet = Fleet(tmp_path, venv_root)
    old = fleet.add("m1", "clean")
    fleet.hosts["m1"]["runbook_python"] = str(fake_old_python(old))
    for name in ("m2", "m3", "m4"):
        fleet.add(name, "clean")
    fleet.write()
    env = controller_env(tmp_path)
    out = tmp_path / "out"
    base = ["run", fleet.playbook, "-i", fleet.inventory, "--out", out, "--dry-run"]
    base += ["--wheelhouse", wheelhouse, "--serial", "2"]
    stopped = fleet_cli(env, *base, "--max-fail-percent", "49")
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    found = rows(env, out)
    assert found["m1"]["state"] == "failed" and "Python 3.9" in found["m1"]["reason"]
    for host in ("m2", "m3", "m4"):
        assert found[host]["state"] == "pending", host
        assert "--max-fail-percent" in found[host]["reason"]
        assert not (out / host / "journals").exists()
    assert "stopped before finishing" in found["m2"]["reason"]  # m2 shared m1's batch
    assert "not run" in found["m3"]["reason"]

    tolerant = fleet_cli(env, *base, "--max-fail-percent", "50")  # 1 of 2 is not over 50%
    assert tolerant.returncode == 1  # m1 still has no Python 3.11
    assert states(env, out) == {"m1": "failed", "m2": "clean", "m3": "clean", "m4": "clean"}
    assert all(verify(p).ok for p in out.glob("m*/journals/*.jsonl"))


def test_usage_errors_name_the_problem(tmp_path, venv_root):
    fleet = Fleet(tmp_path, venv_root)
    fleet.add("u1", "clean")
    fleet.write()
    env = controller_env(tmp_path)
    live = fleet_cli(env, "run", fleet.playbook, "-i", fleet.inventory, "--out", tmp_path / "o")
    assert live.returncode == 2 and "--yes" in live.stderr
    nothing = fleet_cli(env, "scan", "-i", fleet.inventory, "--limit", "nosuchhost")
    assert nothing.returncode == 2 and "no host" in nothing.stderr
    missing = fleet_cli(env, "scan", "-i", tmp_path / "nope.yml")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    serial = fleet_cli(env, "run", fleet.playbook, "-i", fleet.inventory, "--serial", "0%")
    assert serial.returncode == 2 and "N or N%" in serial.stderr
    allow = fleet_cli(env, "run", fleet.playbook, "-i", fleet.inventory, "--allow", "nope")
    assert allow.returncode == 2 and "no step 'nope'" in allow.stderr
    for result in (live, nothing, missing, serial, allow):
        assert "Traceback" not in result.stderr
