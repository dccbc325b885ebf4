"""The installed `runbook` command in a real terminal (tmux on a private socket): open a run of
the bundled playbook, run detection, add a note, quit; then read the journal."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from runbook.journal import read_entries, verify
from tests.conftest import EXAMPLE, RUNBOOK


class Pane:
    """One tmux session on a private server: keys in, screen text out."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )
        return result.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "e2e", *keys)

    def wait_for(self, *needles: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not on screen after {timeout}s:\n{text}")
            time.sleep(0.05)


def _start(pane: Pane, env: dict[str, str], command: str, cwd: Path | None = None) -> None:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    cd = f"cd {shlex.quote(str(cwd))} && " if cwd else ""
    pane.tmux(
        "new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30",
        f"{cd}env -i {exports} {command}; echo EXITED=$?; sleep 60",
    )  # fmt: skip


def _terminal_env(sandbox_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    keep = ("HOME", "PATH", "LANG", "RUNBOOK_OPERATOR", "npm_config_cache")
    env = {k: v for k, v in sandbox_env.items() if k in keep or k.startswith(("XDG_", "NPM_"))}
    return {**env, "TERM": "xterm-256color", "TMPDIR": str(tmp_path)}


def test_detection_in_a_real_terminal_then_a_clean_quit(sandbox_env, tmp_path):
    assert shutil.which("tmux"), "tmux is needed for this test"
    home = Path(sandbox_env["HOME"])
    project = home / "invoice-sync"
    shutil.copytree(EXAMPLE, project, symlinks=True)
    pane = Pane(f"runbook-e2e-{os.getpid()}")
    command = f"{RUNBOOK} run axios-2026-03 --target {shlex.quote(str(project))} --dry-run"
    _start(pane, _terminal_env(sandbox_env, tmp_path), command)
    try:
        pane.wait_for("Step 1 of", "DRY RUN", "Press enter to plan and run 'detect'")
        pane.keys("Enter")
        screen = pane.wait_for("'detect' succeeded", "Findings (", "plain-crypto-js@4.2.1")
        assert "compromised" in screen
        pane.keys("n")
        pane.wait_for("Add a note to the journal")
        pane.keys("-l", "seen on the CI runner too")
        pane.keys("Enter")
        pane.wait_for("Note added to the journal")
        pane.keys("q")
        screen = pane.wait_for("EXITED=0")
        assert "run stopped" in screen
    finally:
        pane.tmux("kill-server", check=False)
    [journal] = (Path(sandbox_env["XDG_STATE_HOME"]) / "runbook" / "axios-2026-03").glob("*.jsonl")
    assert verify(journal).ok
    entries = read_entries(journal)
    detect = next(e["data"] for e in entries if e["event"] == "step_planned")
    assert detect["step"] == "detect" and detect["findings"]
    assert any(
        f["package"] == "plain-crypto-js" and f["severity"] == "compromised"
        for f in detect["findings"]
    )
    notes = [e["data"] for e in entries if e["event"] == "note"]
    assert notes == [{"text": "seen on the CI runner too", "by": "test-operator"}]
    assert entries[-1]["event"] == "run_finished"
    assert entries[-1]["data"]["outcome"] == "stopped"


def test_runbook_alone_opens_the_start_screen(sandbox_env, tmp_path):
    home = Path(sandbox_env["HOME"])
    shutil.copytree(EXAMPLE, home / "invoice-sync", symlinks=True)
    pane = Pane(f"runbook-start-{os.getpid()}")
    env = _terminal_env(sandbox_env, tmp_path)
    _start(pane, env, str(RUNBOOK), cwd=home / "invoice-sync")
    try:
        screen = pane.wait_for("Playbook", "axios-2026-03", "Dry run: change nothing")
        assert "~/invoice-sync" in screen  # the target is the current directory
        pane.keys("Enter")  # the highlighted playbook, dry run
        pane.wait_for("Step 1 of", "DRY RUN")
        pane.keys("C-c")  # like q
        assert "run stopped" in pane.wait_for("EXITED=0")
    finally:
        pane.tmux("kill-server", check=False)


def test_demo_opens_the_app_in_a_sandbox(sandbox_env, tmp_path):
    pane = Pane(f"runbook-demo-{os.getpid()}")
    _start(pane, _terminal_env(sandbox_env, tmp_path), f"{RUNBOOK} demo")
    try:
        pane.wait_for("DRY RUN", "~/invoice-sync", "Demo: a dry run on a copy")
        pane.keys("Enter")
        pane.wait_for("'detect' succeeded", "Findings (")
        pane.keys("q")
        screen = pane.wait_for("EXITED=0", "action log:")
        assert "to resume" not in screen  # a demo's sandbox is thrown away
    finally:
        pane.tmux("kill-server", check=False)
    [sandbox] = tmp_path.glob("runbook-demo-*")
    assert (sandbox / "home" / "invoice-sync" / "node_modules" / "plain-crypto-js").is_dir()
    assert "| Mode | dry-run |" in (sandbox / "action-log.md").read_text()
    assert not (Path(sandbox_env["HOME"]) / ".local").exists()  # the real HOME was not used


def test_demo_without_a_terminal_runs_headless(run_cli, sandbox_env, tmp_path):
    # the caller's own credentials never reach the demo: it runs in a scrubbed environment
    mine = "ghp_" + "CallerToken" * 3 + "xyz"
    env = {**sandbox_env, "TMPDIR": str(tmp_path), "GITHUB_TOKEN": mine, "AWS_PROFILE": "prod"}
    result = run_cli("demo", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok       detect" in result.stdout
    assert "[DRY RUN: nothing will be changed]" in result.stdout
    assert "action log:" in result.stdout
    # the made-up credentials of the sandbox are found; the caller's token is not
    assert "discover-credentials          6 credentials" in result.stdout
    [sandbox] = tmp_path.glob("runbook-demo-*")
    journal = next((sandbox / "home" / ".local" / "state").rglob("*.jsonl")).read_text()
    assert "$GITHUB_TOKEN" not in journal and mine[-4:] not in journal
    assert "github-token" in journal  # gh's hosts.yml in the sandbox HOME
