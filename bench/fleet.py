"""The fleet view over 1,000 hosts, and what Ansible costs per host.

    .venv/bin/python -m bench.fleet view                # 1,000 hosts: load, table, the app
    .venv/bin/python -m bench.fleet view --hosts 200 --reps 1
    .venv/bin/python -m bench.fleet overhead            # 20 local hosts: Ansible vs runbook alone

`view` writes a fleet folder of synthetic hosts (their journals are real hash chains of the
shape `runbook run` writes, each one verified on arrival by the same code a fleet run uses, and
its report rendered) and times: `status.load` (every host record read, every journal's digest
checked against the one verified on arrival), `runbook fleet status DIR --format table` as a
child process, and the fleet view (a Textual app, headless) from start to its first full table.
Goal: under 2 s each.

`overhead` makes 20 local hosts (`ansible_connection=local`), runs a small playbook with
`runbook run` on each one directly, then through `runbook fleet run` (once to install, then
timed at --forks 1 and --forks 10), and reports the per-host cost Ansible adds. The results and
the machine go to bench/fleet-results.json; bench/README.md turns them into an estimate for
10,000 hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runbook import __version__
from runbook.fleet import hosts as records
from runbook.fleet.bundle import bundled_pip
from runbook.fleet.collect import Unpacked
from runbook.fleet.layout import FLEET_SCHEMA, FleetDir, write_json
from runbook.journal import GENESIS, canonical, entry_hash

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = Path(sys.executable).with_name("runbook")
RESULTS = Path(__file__).with_name("fleet-results.json")
GOAL_SECONDS = 2.0
STEPS = [
    "detect",
    "check-host",
    "pin",
    "wipe-node-modules",
    "clear-caches",
    "reinstall",
    "verify",
    "discover-credentials",
    "rotate-other-credentials",
    "review-logs",
]
KINDS = [  # (state the host ends in, weight)
    ("compromised", 10),
    ("exposed", 15),
    ("clean", 40),
    ("remediated", 17),
    ("unchecked", 5),
    ("failed", 7),
    ("unreachable", 4),
    ("pending", 2),
]
FINDING = {
    "kind": "lockfile",
    "severity": "compromised",
    "path": "/home/dev/src/app/package-lock.json",
    "line": 30,
    "package": "axios",
    "version": "1.14.1",
    "via": ["app", "http-wrapper@2.1.0"],
    "message": "package-lock v3: axios@1.14.1 resolved via app > http-wrapper@2.1.0",
}


# -- a synthetic fleet -------------------------------------------------------------------------
def _journal(host: str, kind: str, rng: random.Random) -> bytes:
    """A run's journal of the shape `runbook run` writes, ending in `kind`."""
    target = f"/home/{host}/src/app"
    live = kind in ("remediated", "compromised") or rng.random() < 0.5
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "run_started",
            {
                "playbook": {"id": "axios-2026-03", "title": "axios", "version": "3"},
                "target": target,
                "mode": "live" if live else "dry-run",
                "operator": "fleet-lead (runbook fleet)",
                "host": host,
                "tool_version": __version__,
            },
        )
    ]
    severity = {"compromised": "compromised", "remediated": "compromised", "exposed": "at-risk"}
    findings = []
    if kind in severity:
        findings = [dict(FINDING, severity=severity[kind], line=30 + n) for n in range(3)]
    elif kind == "unchecked":
        findings = [dict(FINDING, severity="unknown", message="cannot be parsed")]
    statuses = {}
    for step in STEPS:
        planned = findings if step in ("detect", "verify") else []
        if step == "verify" and kind == "remediated":
            planned = []
        events.append(("step_planned", {"step": step, "findings": planned, "actions": []}))
        events.append(("step_started", {"step": step, "fingerprint": "f" * 64}))
        result: dict[str, Any] = {}
        if step in ("detect", "verify"):
            verdict = {"unchecked": None, "clean": False}.get(kind, bool(findings))
            result = {"affected": False if (step == "verify" and kind == "remediated") else verdict}
        remain = step == "verify" and kind in ("compromised", "exposed") and live
        outcome = "outstanding" if step.startswith(("review", "rotate")) else "succeeded"
        statuses[step] = outcome
        summary = f"{step}: {len(planned)} finding(s)" if planned else f"{step}: done"
        events.append(
            (
                "step_finished",
                {
                    "step": step,
                    "outcome": outcome,
                    "summary": summary,
                    "duration": round(rng.uniform(0.01, 3.0), 3),
                    "findings_remain": remain,
                    **({"result": result} if result else {}),
                },
            )
        )
        if outcome == "outstanding":
            for item in ("ci", "dns", "mirrors"):
                events.append(
                    (
                        "manual_item",
                        {
                            "step": step,
                            "item": item,
                            "text": f"{step}: {item}",
                            "answer": "outstanding",
                        },
                    )
                )
    events.append(("run_finished", {"outcome": "completed", "reason": "", "steps": statuses}))
    lines, prev = [], GENESIS
    for seq, (event, data) in enumerate(events, start=1):
        ts = f"2026-03-31T0{6 + seq // 3600}:{(seq // 60) % 60:02d}:{seq % 60:02d}.000Z"
        entry = {"seq": seq, "ts": ts, "event": event, "data": data, "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        lines.append(canonical(entry))
    return b"\n".join(lines) + b"\n"


def synthetic_fleet(root: Path, count: int, *, seed: int = 1, running: bool = False) -> Path:
    """A fleet run's folder with `count` hosts in every state, each host's journal verified on
    arrival and its record written by the same code a fleet run uses."""
    rng = random.Random(seed)
    names = [f"host-{n:04d}" for n in range(count)]
    fleet = FleetDir(root)
    root.mkdir(parents=True, exist_ok=True)
    write_json(
        fleet.manifest,
        {
            "schema": FLEET_SCHEMA,
            "id": "20260331T060000Z-bench0",
            "kind": "run",
            "mode": "live",
            "inventory": "/etc/ansible/hosts",
            "playbook": {"id": "axios-2026-03", "title": "axios", "steps": STEPS},
            "hosts": names,
            "status": "running" if running else "finished",
            "complete": False,
            "controller": "bench",
            "pid": 0,
            "created": "2026-03-31T06:00:00Z",
        },
    )
    states = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    for name in names:
        kind = rng.choices(states, weights)[0]
        record = records.new_record(name, "20260331T060000Z-bench0", "run")
        ansible = record["ansible"]
        ansible.update(attempts=1, duration=round(rng.uniform(20, 200), 1))
        host_dir = fleet.host_dir(name)
        if kind == "unreachable":
            reason = f"Failed to connect to the host via ssh: ssh: connect to host {name} port 22"
            ansible.update(status="unreachable", reason=reason)
        elif kind == "failed":
            ansible.update(status="failed", reason="no Python 3.11 or newer (python3 is 3.9.18)")
        elif kind == "pending":
            ansible.update(status="not-run", reason="not run: the fleet run was interrupted")
        else:
            ansible["status"] = "ok"
            journal = host_dir / "journals" / f"20260331T0600{rng.randrange(10, 59)}Z-{name}.jsonl"
            journal.parent.mkdir(parents=True, exist_ok=True)
            journal.write_bytes(_journal(name, kind, rng))
            summary = {"targets": [{"target": f"/home/{name}/src/app", "journal": journal.name}]}
            records.arrive(
                record, host_dir, Unpacked(summary=summary, files=[f"journals/{journal.name}"])
            )
        records.save(host_dir, record, len(STEPS))
    return root


# -- timing the view ---------------------------------------------------------------------------
def _timed(function, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


async def _app_first_table(folder: Path, count: int) -> float:
    from runbook.tui.fleet.app import FleetApp

    start = time.perf_counter()
    app = FleetApp(folder, refresh=3600)
    async with app.run_test(size=(160, 50)) as pilot:
        while len(app.shown) < count or app.query_one("#hosts").row_count < count:
            await pilot.pause(0.01)
        took = time.perf_counter() - start
    return took


def bench_view(args: argparse.Namespace) -> dict[str, Any]:
    from runbook.fleet import status

    scratch = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rb-fleet-bench-"))
    folder = scratch / "fleet"
    try:
        if not (folder / "fleet.json").exists():
            start = time.perf_counter()
            synthetic_fleet(folder, args.hosts)
            made = time.perf_counter() - start
        else:
            made = 0.0
        journals = list(folder.glob("*/journals/*.jsonl"))
        load = _timed(lambda: status.load(folder), args.reps)
        env = dict(os.environ)
        table = _timed(
            lambda: subprocess.run(
                [str(RUNBOOK), "fleet", "status", str(folder), "--format", "table"],
                env=env,
                capture_output=True,
                check=False,
            ),
            args.reps,
        )
        app = [asyncio.run(_app_first_table(folder, args.hosts)) for _ in range(args.reps)]
        fleet = status.load(folder)
        result = {
            "hosts": args.hosts,
            "journals": len(journals),
            "journal_bytes": sum(p.stat().st_size for p in journals),
            "generated_seconds": round(made, 2),
            "counts": fleet.counts(),
            "load_seconds": load,
            "table_command_seconds": table,
            "app_first_table_seconds": app,
            "goal_seconds": GOAL_SECONDS,
        }
        for key in ("load_seconds", "table_command_seconds", "app_first_table_seconds"):
            median = statistics.median(result[key])
            mark = "ok" if median < GOAL_SECONDS else "OVER GOAL"
            print(f"{key:<26} median {median:.3f} s  ({mark})")
        return result
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(scratch, ignore_errors=True)


# -- Ansible's overhead ------------------------------------------------------------------------
SMALL_PLAYBOOK = """\
id: bench-fleet
title: Fleet overhead benchmark
version: "1"
incident:
  summary: axios 1.14.1 and 0.30.4 were published with a malicious dependency.
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1", "0.30.4"], safe_pins: {"1": "1.14.0"}}
    - {name: plain-crypto-js, any_version: true}
steps:
  - {id: detect, uses: detect, title: Find every copy, confirm: never}
  - {id: wipe, uses: wipe_node_modules, title: Remove node_modules, confirm: destructive}
  - {id: verify, uses: detect, title: Verify, confirm: never, with: {verify: true}}
  - id: review
    uses: manual
    title: Review logs
    confirm: never
    with: {items: [{id: ci, text: "Searched CI logs"}]}
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _hosts(scratch: Path, count: int) -> tuple[Path, list[tuple[Path, Path]]]:
    """`count` local hosts with the bundled example project; the inventory naming them."""
    example = REPO / "examples" / "axios-compromised"
    venvs = scratch / "venvs"
    hosts = {}
    places = []
    for n in range(count):
        home = scratch / "hosts" / f"h{n:02d}"
        shutil.copytree(example, home / "work", symlinks=True)
        hosts[f"h{n:02d}"] = {"runbook_home": str(home), "runbook_targets": [str(home / "work")]}
        places.append((home, home / "work"))
    inventory = scratch / "inventory.json"
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "runbook_python": sys.executable,
        "runbook_dependencies": "system",
        "runbook_venv_root": str(venvs),
    }
    inventory.write_text(json.dumps({"all": {"vars": common, "hosts": hosts}}))
    return inventory, places


def _reset(scratch: Path, places: list[tuple[Path, Path]]) -> None:
    example = REPO / "examples" / "axios-compromised"
    for home, work in places:
        shutil.rmtree(work)
        shutil.copytree(example, work, symlinks=True)
        shutil.rmtree(home / ".local/state", ignore_errors=True)


def _env(scratch: Path) -> dict[str, str]:
    env = dict(os.environ, RUNBOOK_NO_DNS="1", HOME=str(scratch / "controller"))
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env.pop(name, None)
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def bench_overhead(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="rb-fleet-overhead-"))
    try:
        wheelhouse = scratch / "wheelhouse"
        build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        subprocess.run(
            [*build, "--disable-pip-version-check", "-w", str(wheelhouse), str(REPO)], check=True
        )
        pip = bundled_pip()
        if pip:
            shutil.copy2(pip, wheelhouse / pip.name)
        playbook = scratch / "bench-fleet.yaml"
        playbook.write_text(SMALL_PLAYBOOK)
        inventory, places = _hosts(scratch, args.hosts)
        env = _env(scratch)

        def fleet(out: str, forks: int) -> tuple[float, float, int]:
            cpu = _children_cpu()
            start = time.perf_counter()
            argv = [str(RUNBOOK), "fleet", "run", str(playbook), "-i", str(inventory), "--yes"]
            argv += ["--out", str(scratch / out), "--forks", str(forks)]
            done = subprocess.run(
                [*argv, "--wheelhouse", str(wheelhouse)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            return time.perf_counter() - start, _children_cpu() - cpu, done.returncode

        first = fleet("install", 10)  # installs and stages everything once
        _reset(scratch, places)
        cpu = _children_cpu()
        start = time.perf_counter()
        direct_codes = []
        for home, work in places:
            host_env = dict(env, HOME=str(home))
            done = subprocess.run(
                [str(RUNBOOK), "run", str(playbook), "--target", str(work), "--json", "--yes"],
                env=host_env,
                capture_output=True,
                text=True,
                check=False,
            )
            direct_codes.append(done.returncode)
        direct = (time.perf_counter() - start, _children_cpu() - cpu)
        _reset(scratch, places)
        serial = fleet("forks1", 1)
        _reset(scratch, places)
        parallel = fleet("forks10", 10)
        n = args.hosts
        result = {
            "hosts": n,
            "first_fleet_run_with_install": {"wall": first[0], "cpu": first[1], "rc": first[2]},
            "direct_sequential": {"wall": direct[0], "cpu": direct[1], "codes": direct_codes},
            "fleet_forks1": {"wall": serial[0], "cpu": serial[1], "rc": serial[2]},
            "fleet_forks10": {"wall": parallel[0], "cpu": parallel[1], "rc": parallel[2]},
            "per_host_wall_direct": direct[0] / n,
            "per_host_wall_fleet_forks1": serial[0] / n,
            "per_host_overhead_wall": (serial[0] - direct[0]) / n,
            "per_host_overhead_cpu": (serial[1] - direct[1]) / n,
        }
        print(
            f"direct runbook run, one after another: {direct[0]:.1f} s ({direct[0] / n:.2f} s/host)"
        )
        print(
            f"runbook fleet run --forks 1:           {serial[0]:.1f} s ({serial[0] / n:.2f} s/host)"
        )
        print(f"runbook fleet run --forks 10:          {parallel[0]:.1f} s")
        print(f"first fleet run (install, --forks 10): {first[0]:.1f} s")
        print(
            f"Ansible's overhead per host: {result['per_host_overhead_wall']:.2f} s wall, "
            f"{result['per_host_overhead_cpu']:.2f} s CPU"
        )
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.fleet")
    sub = parser.add_subparsers(dest="what", required=True)
    view = sub.add_parser("view")
    view.add_argument("--hosts", type=int, default=1000)
    view.add_argument("--reps", type=int, default=3)
    view.add_argument("--dir", help="keep (and reuse) the fleet folder here")
    view.add_argument("--keep", action="store_true")
    overhead = sub.add_parser("overhead")
    overhead.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = bench_view(args) if args.what == "view" else bench_overhead(args)
    saved = json.loads(args.results.read_text()) if args.results.exists() else {}
    saved[args.what] = result
    saved["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "runbook": __version__,
    }
    args.results.write_text(json.dumps(saved, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
