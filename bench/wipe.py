"""`wipe_node_modules` against `rm -rf` on the same 100k-file tree, side by side.

    .venv/bin/python -m bench.wipe                 # 100,000 files, 3 rounds, in $TMPDIR
    .venv/bin/python -m bench.wipe --files 20000 --rounds 1 --dir /var/tmp/wipe-bench

Each round builds two identical project trees (root node_modules with nested node_modules and a
`.pnpm` folder, two workspaces with their own node_modules, a `.pnp.cjs` and `.yarn/unplugged`),
flushes them to disk (`sync`), then removes one with `rm -rf` on exactly the paths the step
removes and the other with the step through a real `Runner` (real `Journal`, real `Effects`, live).
The order alternates between rounds. Timed for the step:

- `plan`: the walk and the size of everything (before the operator confirms);
- `execute`: what follows the confirmation: the runner re-checks the fingerprint (walks and
  sizes again), then `apply` removes each path through `Effects.remove_tree`, journaled.

Goal (issue 4): the step's removal takes no more than 1.2x the time of `rm -rf`, measured as
`execute / rm`; `(plan + execute) / rm` is printed too. Results go to `bench/wipe-results.json`.
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
GOAL = 1.2
FILES_PER_PACKAGE = 20

PLAYBOOK = """\
id: wipe-bench
title: wipe benchmark
version: "1"
incident:
  summary: benchmark
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
  - id: wipe
    title: Remove node_modules
    uses: wipe_node_modules
    confirm: never
"""


def build(root: Path, files: int) -> list[Path]:
    """A project whose installed trees hold `files` files; returns the paths the wipe removes."""
    packages = max(1, files // FILES_PER_PACKAGE)
    (root / "packages").mkdir(parents=True)
    (root / "package.json").write_text('{"name": "bench", "workspaces": ["packages/*"]}\n')
    (root / ".pnp.cjs").write_bytes(b"// pnp\n" * 100)
    (root / ".yarn" / "cache").mkdir(parents=True)
    (root / ".yarn" / "cache" / "keep.zip").write_bytes(b"z" * 100)
    removed = [root / "node_modules", root / ".pnp.cjs", root / ".yarn" / "unplugged"]
    for ws in ("a", "b"):
        (root / "packages" / ws).mkdir()
        (root / "packages" / ws / "package.json").write_text(f'{{"name": "{ws}"}}\n')
        removed.append(root / "packages" / ws / "node_modules")
    blob = os.urandom(4096)
    for i in range(packages):
        bucket = i % 20
        if bucket < 12:
            pkg = root / "node_modules" / f"pkg-{i}"
        elif bucket < 15:
            pkg = root / "node_modules" / f"pkg-{i - 1}" / "node_modules" / f"dep-{i}"
        elif bucket < 17:
            pkg = root / "node_modules" / ".pnpm" / f"p-{i}@1.0.0" / "node_modules" / f"p-{i}"
        elif bucket < 19:
            pkg = root / "packages" / ("a" if i % 2 else "b") / "node_modules" / f"w-{i}"
        else:
            pkg = root / ".yarn" / "unplugged" / f"u-{i}-npm-1.0.0" / "node_modules" / f"u-{i}"
        (pkg / "lib").mkdir(parents=True, exist_ok=True)
        for j in range(FILES_PER_PACKAGE):
            folder = pkg if j < 6 else pkg / "lib"
            size = (i * 131 + j * 977) % 4096
            with open(folder / f"f{j}.js", "wb") as handle:
                handle.write(blob[:size])
    return removed


def count_files(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))


def time_rm(paths: list[Path]) -> float:
    started = time.perf_counter()
    subprocess.run(["rm", "-rf", "--", *map(str, paths)], check=True)
    return time.perf_counter() - started


def time_step(project: Path, scratch: Path) -> tuple[float, float, int]:
    """(plan seconds, execute seconds, bytes freed) for one live run through a real Runner."""
    from runbook.journal import Journal
    from runbook.operator import HeadlessOperator
    from runbook.playbook import load_playbook
    from runbook.redact import Redactor
    from runbook.registry import default_registry
    from runbook.runner import Runner

    playbook = scratch / "wipe-bench.yaml"
    playbook.write_text(PLAYBOOK)
    loaded = load_playbook(playbook, default_registry())
    redactor = Redactor()
    env = {**os.environ, "HOME": str(scratch / "home"), "XDG_STATE_HOME": str(scratch / "state")}
    journal_path = scratch / f"journal-{time.time_ns()}.jsonl"
    with Journal(journal_path, redactor) as journal:
        runner = Runner(
            loaded,
            project,
            journal,
            HeadlessOperator("bench", assume_yes=True),
            dry_run=False,
            redactor=redactor,
            env=env,
        )
        runner.begin()
        step = loaded.playbook.step("wipe")
        started = time.perf_counter()
        plan = runner.plan(step)
        planned = time.perf_counter()
        state = runner.execute(step, plan)
        done = time.perf_counter()
    if state.status != "succeeded":
        raise SystemExit(f"the step did not succeed: {state.summary}")
    freed = sum(
        e["data"].get("bytes", 0)
        for e in journal.entries
        if e["event"] == "effect" and e["data"].get("op") == "remove_tree"
    )
    return planned - started, done - planned, freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: new)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "wipe-results.json")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="wipe-bench-", dir=args.dir))
    rounds = []
    try:
        for n in range(args.rounds):
            rm_tree, step_tree = scratch / f"rm-{n}", scratch / f"step-{n}"
            rm_paths = build(rm_tree, args.files)
            build(step_tree, args.files)
            files = count_files(rm_tree)
            os.sync()
            order = ("rm", "step") if n % 2 == 0 else ("step", "rm")
            result: dict[str, float | int | str] = {"files": files, "order": "-then-".join(order)}
            for who in order:
                if who == "rm":
                    result["rm"] = time_rm(rm_paths)
                else:
                    plan_s, exec_s, freed = time_step(step_tree, scratch)
                    result.update(plan=plan_s, execute=exec_s, bytes_freed=freed)
                os.sync()
            assert not (step_tree / "node_modules").exists()
            assert (step_tree / ".yarn" / "cache" / "keep.zip").exists()
            result["ratio_execute"] = result["execute"] / result["rm"]
            result["ratio_total"] = (result["plan"] + result["execute"]) / result["rm"]
            rounds.append(result)
            print(
                f"round {n + 1}: {files} files ({result['order']}): rm -rf {result['rm']:.2f} s; "
                f"step plan {result['plan']:.2f} s + execute {result['execute']:.2f} s; "
                f"execute/rm {result['ratio_execute']:.2f}, total/rm {result['ratio_total']:.2f}",
                flush=True,
            )
            shutil.rmtree(rm_tree, ignore_errors=True)
            shutil.rmtree(step_tree, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    med = {k: statistics.median(r[k] for r in rounds) for k in ("rm", "plan", "execute")}
    ratio = statistics.median(r["ratio_execute"] for r in rounds)
    ratio_total = statistics.median(r["ratio_total"] for r in rounds)
    verdict = "met" if ratio <= GOAL else "NOT MET"
    print(
        f"median: rm -rf {med['rm']:.2f} s, step execute {med['execute']:.2f} s "
        f"(plan {med['plan']:.2f} s): execute/rm = {ratio:.2f} (goal <= {GOAL}: {verdict}); "
        f"(plan+execute)/rm = {ratio_total:.2f}"
    )
    summary = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "files": args.files,
        "rounds": rounds,
        "median": med,
        "ratio_execute_over_rm": ratio,
        "ratio_total_over_rm": ratio_total,
        "goal": GOAL,
        "verdict": verdict,
    }
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
