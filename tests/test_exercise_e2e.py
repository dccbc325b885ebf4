"""Two processes, two terminals, one exercise: the players' app (`runbook exercise start`) and
the facilitator console (`runbook exercise facilitate`) in tmux; the facilitator fires an
inject and the players' pane shows it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from runbook.journal import read_entries, verify
from tests.conftest import RUNBOOK


class Pane:
    """One tmux session on a private server: keys in, screen text out."""

    def __init__(self, socket: str, name: str) -> None:
        self.socket = socket
        self.name = name

    def tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )
        return result.stdout

    def start(self, env: dict[str, str], command: str, size: tuple[int, int] = (110, 32)) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
        self.tmux(
            "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
            f"env -i {exports} {command}; echo EXITED=$?; sleep 60",
        )  # fmt: skip

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, *needles: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(needle in text for needle in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not on screen after {timeout}s:\n{text}")
            time.sleep(0.05)


def test_the_facilitator_fires_an_inject_and_the_players_see_it(sandbox_env, tmp_path) -> None:
    assert shutil.which("tmux"), "tmux is needed for this test"
    keep = ("HOME", "PATH", "LANG", "npm_config_cache")
    env = {k: v for k, v in sandbox_env.items() if k in keep or k.startswith(("XDG_", "NPM_"))}
    env.update(TERM="xterm-256color", LANG="C.UTF-8", RUNBOOK_NO_DNS="1")
    directory = tmp_path / "drill"
    socket = f"runbook-exercise-{os.getpid()}"
    players, facilitator = Pane(socket, "players"), Pane(socket, "facilitator")
    players.start(
        env,
        f"{RUNBOOK} exercise start axios-2026-03-drill --variant laptop-postinstall --seed 3 "
        f"--role oncall --operator alice --dir {shlex.quote(str(directory))}",
    )
    try:
        # the inject due at +0 reaches the players first; they decide later (esc)
        players.wait_for("EXERCISE", "INJECT", "CI: a build installed plain-crypto-js")
        players.keys("Escape")
        players.wait_for("Facilitator console")
        facilitator.start(
            env, f"{RUNBOOK} exercise facilitate {shlex.quote(str(directory))} --operator fran"
        )
        screen = facilitator.wait_for("FACILITATOR", "Customers are asking", "laptop-postinstall")
        assert "A developer laptop ran the postinstall" in screen  # the hidden ground truth
        assert "Customers are asking" not in players.text()
        # injects in scenario order: ci-alert, registry-notice, dns-c2, proxy-beacon,
        # token-still-live, status-page
        facilitator.keys("Down", "Down", "Down", "Down", "Down")
        fired = time.monotonic()
        facilitator.keys("f")
        players.wait_for("INJECT", "Customers are asking", timeout=10)
        latency = time.monotonic() - fired
        assert latency < 3, f"{latency:.2f}s (tmux polling included)"
        facilitator.wait_for("+30:00  fired")
        facilitator.keys("q")
        facilitator.wait_for("EXITED=0")
        # the players end the exercise: the decision later, then quit and skip the hot wash
        players.keys("Escape")
        time.sleep(0.3)  # a lone ESC is told from an escape sequence by a pause
        players.keys("q")
        players.wait_for("End the exercise?")
        players.keys("y")
        for _ in range(12):  # discussion questions and the survey, each left for later
            if "EXITED=" in players.text():
                break
            players.keys("Escape")
            time.sleep(0.3)
        screen = players.wait_for("EXITED=", "after-action report", timeout=30)
        assert "journal:" in screen
    finally:
        players.tmux("kill-server", check=False)
    journal = directory / "run.jsonl"
    assert verify(journal).ok
    entries = read_entries(journal)
    fired_by = {
        e["data"]["inject"]: e["data"]["by"] for e in entries if e["event"] == "inject_fired"
    }
    assert fired_by["ci-alert"] == "clock"
    assert fired_by["status-page"] == "facilitator"
    request = next(
        e for e in entries if e["event"] == "clock" and e["data"]["action"] == "fire_now"
    )
    assert request["data"]["by"] == "fran" and request["data"]["inject"] == "status-page"
    assert [e["event"] for e in entries][-2:] == ["exercise_finished", "run_finished"]
    assert not (Path(sandbox_env["HOME"]) / ".local").exists(), "the real HOME was not used"
