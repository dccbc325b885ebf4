"""How long `pin` takes to plan on a 200-workspace npm monorepo (goal: under 1 s).

    .venv/bin/python -m bench.pin [--workspaces 200] [--reps 5]

Builds the monorepo in a temporary directory: a root package.json with `workspaces`, 200
workspace manifests (every fifth one asks for `axios ^1.14.0`, a few for `^0.30.0`, the rest for
other packages), and a package-lock.json v3 that resolved axios 1.14.1 and 0.30.4. Then plans the
bundled playbook's `pin` step through the real step kind and Effects (a dry run: nothing is
written) and reports the median wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from runbook.effects import Effects
from runbook.operator import HeadlessOperator
from runbook.playbook import bundled_playbooks, load_playbook
from runbook.redact import Redactor
from runbook.step import StepContext
from steps.pin import PinParams, PinStep


def build(root: Path, workspaces: int) -> None:
    packages = {"": {"name": "mono", "version": "1.0.0", "workspaces": ["packages/*"]}}
    for i in range(workspaces):
        name = f"ws-{i:03d}"
        deps = {"left-pad": "^1.3.0", f"lib-{i % 17}": "^2.0.0"}
        if i % 5 == 0:
            deps["axios"] = "^1.14.0"
        elif i % 23 == 0:
            deps["axios"] = "^0.30.0"
        folder = root / "packages" / name
        folder.mkdir(parents=True)
        manifest = {"name": name, "version": "1.0.0", "dependencies": deps}
        (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        packages[f"packages/{name}"] = {"name": name, "version": "1.0.0", "dependencies": deps}
        packages[f"node_modules/{name}"] = {"resolved": f"packages/{name}", "link": True}
        if i % 23 == 0 and i % 5:
            packages[f"packages/{name}/node_modules/axios"] = {"version": "0.30.4"}
    packages["node_modules/axios"] = {
        "version": "1.14.1",
        "dependencies": {"plain-crypto-js": "^4.2.1"},
    }
    packages["node_modules/plain-crypto-js"] = {"version": "4.2.1", "hasInstallScript": True}
    for i in range(17):
        packages[f"node_modules/lib-{i}"] = {"version": "2.1.0"}
    packages["node_modules/left-pad"] = {"version": "1.3.0"}
    root_manifest = {
        "name": "mono",
        "version": "1.0.0",
        "private": True,
        "workspaces": ["packages/*"],
    }
    (root / "package.json").write_text(json.dumps(root_manifest, indent=2) + "\n")
    lock = {
        "name": "mono",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": packages,
    }
    (root / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")


def plan_once(root: Path) -> tuple[float, int]:
    playbook = load_playbook(bundled_playbooks()["axios-2026-03"]).playbook
    step = playbook.step("pin")
    effects = Effects(
        dry_run=True,
        roots=[root],
        backup_dir=root / ".backups",
        record=lambda event, data: None,
        redactor=Redactor(),
    )
    ctx = StepContext(
        playbook=playbook,
        step=step,
        target=root,
        effects=effects,
        operator=HeadlessOperator("bench"),
        env={"PATH": "/usr/bin:/bin"},
        dry_run=True,
        record=lambda event, data: None,
    )
    started = time.perf_counter()
    plan = PinStep(PinParams()).plan(ctx)
    return time.perf_counter() - started, len(plan.actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbook-pin-bench-") as scratch:
        root = Path(scratch)
        build(root, args.workspaces)
        runs = [plan_once(root) for _ in range(args.reps)]
    times = [t for t, _ in runs]
    print(
        f"pin plan on a {args.workspaces}-workspace monorepo: "
        f"median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, {args.reps} runs, "
        f"{runs[0][1]} actions planned); goal: under 1 s"
    )


if __name__ == "__main__":
    main()
