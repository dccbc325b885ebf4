"""How fast `host_sweep` is on this machine, against the old manual `check-host` commands.

    .venv/bin/python -m bench.host_sweep [--reps 9]

Contenders, each timed warm, median of `--reps` (the sweep only reads; nothing is written
outside a scratch directory):

- **sweep (in process)**: `steps.sweep.sweep()` with the bundled playbook's indicators: files,
  processes, connections, persistence; the domain lookup included (capped at 1.5 s);
- **runbook run (end to end)**: `runbook run` of a playbook holding only the bundled `check-host`
  step, headless, with a fresh journal: interpreter start, playbook load, journal, report line;
- **manual commands**: the Linux and macOS commands the old `check-host` step asked a person to
  copy, run one after the other (`ls -la` of the artifact paths, `sha256sum` of those found,
  `ps -eo pid,lstart,cmd`, `lsof -nPi` (or `ss -tnp` where lsof is missing), `ls -la` of the
  LaunchAgent / systemd user folders, `crontab -l`). Only the commands are timed, not the reading
  of their output nor the typing, which is where a person's minutes go.

Results go to `bench/host-sweep-results.json`. Goal (issue 15): the sweep under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import machine_info

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "axios-2026-03.yaml"
GOAL_S = 2.0


def manual_commands(home: Path) -> list[list[str]]:
    """The old check-host step's commands for macOS and Linux, as a person would run them."""
    artifacts = ["/Library/Caches/com.apple.act.mond", "/tmp/ld.py"]
    found = [p for p in artifacts if os.path.exists(p)]
    network = (
        ["lsof", "-nPi"] if shutil.which("lsof") else ["ss", "-tnp"]
    )  # lsof is not installed everywhere; ss is its Linux stand-in
    persistence = [
        str(home / "Library/LaunchAgents"),
        "/Library/LaunchAgents",
        "/Library/LaunchDaemons",
        str(home / ".config/systemd/user"),
    ]
    commands = [["ls", "-la", *artifacts]]
    commands += [["sha256sum", path] for path in found]
    commands += [["ps", "-eo", "pid,lstart,cmd"], network, ["ls", "-la", *persistence]]
    if shutil.which("crontab"):
        commands.append(["crontab", "-l"])
    return commands


def time_commands(commands: list[list[str]]) -> float:
    started = time.perf_counter()
    for argv in commands:
        subprocess.run(argv, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_sweep() -> tuple[float, dict]:
    from runbook.playbook import load_playbook
    from steps.sweep import SweepOptions, sweep

    playbook = load_playbook(PLAYBOOK).playbook
    options = SweepOptions(since=playbook.incident.window.start)
    started = time.perf_counter()
    result = sweep(playbook.incident.indicators, options, os.environ)
    seconds = time.perf_counter() - started
    return seconds, {"verdict": result.verdict, "checked": result.checked}


def check_host_playbook(scratch: Path) -> Path:
    """The bundled playbook with only its check-host step."""
    head, _, steps = PLAYBOOK.read_text().partition("\nsteps:\n")
    block = steps.split("\n  - id: check-host\n", 1)[1].split("\n  - id: ", 1)[0]
    path = scratch / "check-host.yaml"
    path.write_text(f"{head}\nsteps:\n  - id: check-host\n{block}\n")
    return path


def time_run(runbook: Path, playbook: Path, scratch: Path, n: int) -> float:
    journal = scratch / f"journal-{n}.jsonl"
    env = dict(os.environ, XDG_STATE_HOME=str(scratch / "state"))
    argv = [str(runbook), "run", str(playbook), "--target", str(scratch), "--yes", "--new"]
    started = time.perf_counter()
    subprocess.run(
        [*argv, "--journal", str(journal)],
        capture_output=True,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--runbook", type=Path, default=REPO / ".venv/bin/runbook")
    parser.add_argument("--results", type=Path, default=REPO / "bench/host-sweep-results.json")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("HOME") or Path.home())
    commands = manual_commands(home)
    with tempfile.TemporaryDirectory(prefix="rb-sweep-bench-") as tmp:
        scratch = Path(tmp)
        playbook = check_host_playbook(scratch)
        time_sweep()  # warm: imports, page cache
        time_run(args.runbook, playbook, scratch, 0)
        time_commands(commands)
        sweeps, runs, manual = [], [], []
        info: dict = {}
        for n in range(1, args.reps + 1):
            seconds, info = time_sweep()
            sweeps.append(seconds)
            runs.append(time_run(args.runbook, playbook, scratch, n))
            manual.append(time_commands(commands))
            print(
                f"  round {n}: sweep {sweeps[-1]:.3f} s, runbook run {runs[-1]:.3f} s, "
                f"manual commands {manual[-1]:.3f} s",
                flush=True,
            )
    medians = {
        "sweep (in process)": statistics.median(sweeps),
        "runbook run (end to end)": statistics.median(runs),
        "manual commands": statistics.median(manual),
    }
    results = {
        "machine": machine_info(),
        "reps": args.reps,
        "sweep": info,
        "manual_commands": [" ".join(c) for c in commands],
        "median_s": {k: round(v, 3) for k, v in medians.items()},
        "goal_s": GOAL_S,
        "goal_met": medians["runbook run (end to end)"] < GOAL_S,
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:<26} {value:7.3f} s")
    print(f"goal: under {GOAL_S:g} s end to end: {'met' if results['goal_met'] else 'NOT met'}")
    return 0 if results["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
