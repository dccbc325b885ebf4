"""Time from process start to the step list on screen, against a minimal Textual app, in tmux.

    .venv/bin/python -m bench.tui_startup       # 9 rounds; results in bench/tui-results.json
    .venv/bin/python -m bench.tui_startup --rounds 3 --results /tmp/tui.json

Both programs run in the same private tmux server (`-L`), in a 100x30 window, one after the other,
alternating which goes first in each round. A round starts the clock, launches the program with
`tmux new-session -d`, and polls `tmux capture-pane` every few milliseconds until the pane shows
the marker; then the program is killed and the next one starts:

- **minimal**: a Textual app whose only widget is a Static with a marker text (the floor: Python,
  Textual's import, the driver, one screen drawn);
- **runbook**: the installed `runbook run axios-2026-03 --target <example copy> --dry-run --new`
  (the app's run path, bundled playbook, a fresh journal); the marker is the title of the
  playbook's last step in the step list.

HOME, the XDG directories and npm's cache point into a scratch directory; the example project is
a copy. Goal (issue 6): runbook's median at most 1.5x the minimal app's median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = Path(sys.executable).with_name("runbook")
GOAL = 1.5
SOCKET = f"runbook-bench-{os.getpid()}"
MINIMAL_MARKER = "minimal textual app ready"
RUNBOOK_MARKER = "15 Harden the project"

MINIMAL_APP = f'''\
from textual.app import App
from textual.widgets import Static


class Minimal(App):
    def compose(self):
        yield Static("{MINIMAL_MARKER}")


Minimal().run()
'''


_RUNS = 0


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check
    )


def time_to_marker(command: str, marker: str, env: dict[str, str], timeout: float = 30) -> float:
    """Seconds from launching `command` in a fresh tmux session until `marker` is on screen."""
    global _RUNS
    _RUNS += 1
    session = f"bench{_RUNS}"
    exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items())
    started = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", f"env {exports} {command}")
    try:
        deadline = started + timeout
        pane = ""
        while time.perf_counter() < deadline:
            pane = tmux("capture-pane", "-p", "-t", session, check=False).stdout
            if marker in pane:
                return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"{marker!r} did not appear within {timeout}s; pane:\n{pane}")
    finally:
        tmux("kill-session", "-t", session, check=False)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def sandbox(root: Path) -> tuple[dict[str, str], Path]:
    home = root / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".npmrc").touch()
    env = {
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "npm_config_cache": str(home / ".npm"),
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    project = home / "invoice-sync"
    shutil.copytree(REPO / "examples" / "axios-compromised", project, symlinks=True)
    return env, project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "tui-results.json")
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="runbook-tui-bench-") as scratch:
        root = Path(scratch)
        env, project = sandbox(root)
        minimal_app = root / "minimal_app.py"
        minimal_app.write_text(MINIMAL_APP)
        commands = {
            "minimal": (f"{sys.executable} {minimal_app}", MINIMAL_MARKER),
            "runbook": (
                f"{RUNBOOK} run axios-2026-03 --target {project} --dry-run --new",
                RUNBOOK_MARKER,
            ),
        }
        times: dict[str, list[float]] = {"minimal": [], "runbook": []}
        # an idle session keeps the server up between runs (a server whose last session ends
        # exits, racing the next new-session)
        tmux("new-session", "-d", "-s", "keep", "-x", "100", "-y", "30", "sleep 86400")
        try:
            for command, marker in commands.values():  # warm the file cache (and outline) once
                time_to_marker(command, marker, env)
            for round_ in range(args.rounds):
                order = ["minimal", "runbook"] if round_ % 2 == 0 else ["runbook", "minimal"]
                for name in order:
                    command, marker = commands[name]
                    times[name].append(time_to_marker(command, marker, env))
        finally:
            tmux("kill-server", check=False)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["runbook"] / medians["minimal"]
    results = {
        "benchmark": "tui startup: process start to first screen, polled in tmux (100x30)",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "rounds": args.rounds,
        "seconds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "median_seconds": {name: round(v, 4) for name, v in medians.items()},
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "goal_met": ratio <= GOAL,
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:8} median {value * 1000:7.1f} ms  ({len(times[name])} runs)")
    print(f"ratio    {ratio:.2f} (goal <= {GOAL})  -> {args.results}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
