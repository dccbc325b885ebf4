"""Exercise mode in a real terminal: `exercise start` to the players' app ready, and an inject
fired by the facilitator to the inject on the players' screen.

    .venv/bin/python -m bench.exercise                # 5 rounds; bench/exercise-results.json
    .venv/bin/python -m bench.exercise --rounds 3 --results /tmp/exercise.json

Each round launches the installed `runbook exercise start axios-2026-03-drill` (bundled
scenario, variant laptop-postinstall, a fresh exercise directory) in a private tmux server, in a
110x32 window, and polls `tmux capture-pane` every 5 ms:

- **start**: from launching the command to the pane showing the players' app ready: the step
  list drawn, the world built, moto and the registry stand-in answering, the journal open (the
  marker is the "Facilitator console" notice the app shows once `open_exercise` has returned, so
  the stand-ins are up). Goal (issue 11): under 5 s.
- **inject**: this process plays the facilitator: it appends `clock fire_now` through its own
  shared handle on the journal (what `runbook exercise facilitate` does on `f`), then polls the
  players' pane until the inject's title is there. Four injects per round, each closed (Escape)
  before the next. Goal: under 1 s.

HOME, the XDG directories and npm's cache point into a scratch directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runbook.exercise.facilitation import Facilitation

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = Path(sys.executable).with_name("runbook")
SOCKET = f"runbook-bench-exercise-{os.getpid()}"
START_MARKER = "Facilitator console"
GOALS = {"start": 5.0, "inject": 1.0}
# injects that are not due at once: (id, title on screen)
INJECTS = [
    ("registry-notice", "npm: the bad versions were removed"),
    ("status-page", "Customers are asking"),
    ("dns-c2", "Network: DNS lookups of the C2 domain"),
    ("guardduty", "AWS: GuardDuty reports the old access key"),
]


def tmux(*args: str, check: bool = True) -> str:
    return subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check
    ).stdout


def wait_for(session: str, needle: str, started: float, timeout: float = 30) -> float:
    while time.perf_counter() - started < timeout:
        if needle in tmux("capture-pane", "-p", "-t", session, check=False):
            return time.perf_counter() - started
        time.sleep(0.005)
    screen = tmux("capture-pane", "-p", "-t", session, check=False)
    raise RuntimeError(f"{needle!r} not on screen after {timeout}s:\n{screen}")


def one_round(scratch: Path, number: int) -> tuple[float, list[float]]:
    home = scratch / f"home{number}"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "RUNBOOK_NO_DNS": "1",
    }
    directory = scratch / f"drill{number}"
    command = (
        f"{RUNBOOK} exercise start axios-2026-03-drill --variant laptop-postinstall "
        f"--seed {number} --role oncall --operator bench --dir {shlex.quote(str(directory))}"
    )
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    session = f"players{number}"
    started = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "110", "-y", "32", f"env -i {exports} {command}")
    try:
        start = wait_for(session, START_MARKER, started)
        wait_for(session, "INJECT", started)  # the inject due at +0, then closed
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.5)
        latencies = []
        facilitator = Facilitation(directory / "run.jsonl", "bench")
        try:
            for inject, title in INJECTS:
                fired = time.perf_counter()
                facilitator.fire(inject)
                latencies.append(wait_for(session, title, fired, timeout=10))
                tmux("send-keys", "-t", session, "Escape")
                time.sleep(0.5)
        finally:
            facilitator.close()
        return start, latencies
    finally:
        tmux("send-keys", "-t", session, "C-c", check=False)
        time.sleep(1.0)  # the app ends the exercise and stops the stand-ins
        tmux("kill-session", "-t", session, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "exercise-results.json")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("tmux is needed", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="runbook-bench-exercise-"))
    tmux("new-session", "-d", "-s", "keep", "sleep 3600")  # the server outlives each round
    starts: list[float] = []
    injects: list[float] = []
    try:
        for number in range(1, args.rounds + 1):
            start, latencies = one_round(scratch, number)
            starts.append(start)
            injects += latencies
            shown = ", ".join(f"{x:.3f}" for x in latencies)
            print(f"round {number}: start {start:.2f}s; injects {shown} s", flush=True)
    finally:
        tmux("kill-server", check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rounds": args.rounds,
        "start_seconds": {
            "median": statistics.median(starts),
            "max": max(starts),
            "all": starts,
            "goal": GOALS["start"],
        },
        "inject_seconds": {
            "median": statistics.median(injects),
            "max": max(injects),
            "all": injects,
            "goal": GOALS["inject"],
        },
    }
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    ok = max(starts) < GOALS["start"] and max(injects) < GOALS["inject"]
    start_median = result["start_seconds"]["median"]
    inject_median = result["inject_seconds"]["median"]
    print(
        f"start: median {start_median:.2f}s, max {max(starts):.2f}s "
        f"(goal < {GOALS['start']:.0f}s); inject: median {inject_median:.3f}s, "
        f"max {max(injects):.3f}s "
        f"(goal < {GOALS['inject']:.0f}s): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
