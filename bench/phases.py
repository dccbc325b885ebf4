"""Where `runbook scan --host` spends its time: the real `steps.scan.scan`, its detectors timed.

    .venv/bin/python -m bench.phases HOME_DIR

Every detector `scan()` calls is wrapped with a clock (a generator is drained inside the clock),
then `scan()` itself runs as `runbook scan HOME --host` would. Nothing is re-implemented here, so
the phases cannot drift from what the scanner really does.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

T0 = time.perf_counter()
import steps.scan as scanner  # noqa: E402
from runbook.playbook import load_playbook, resolve_playbook  # noqa: E402
from steps.scan import ScanOptions  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0
PHASES = {
    "walk": "walk (find manifests, lockfiles, node_modules)",
    "_read": "read files (manifests, lockfiles)",
    "scan_manifest": "manifests",
    "scan_lockfile": "lockfiles (decode, compare, full parse where needed)",
    "scan_node_modules": "installed trees",
    "scan_npm_aliases": "aliases from npm's hidden lockfile",
    "scan_yarn_dir": "yarn berry cache / unplugged",
    "scan_caches": "--host: caches (npm index-v5 ...)",
    "scan_globals": "--host: global installs",
    "scan_editors": "--host: editor extensions",
    "scan_indicators": "--host: indicators",
}


def main(argv: list[str] | None = None) -> int:
    home = Path((argv if argv is not None else sys.argv[1:])[0]).resolve()
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env["HOME"] = str(home)
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            if hasattr(result, "__next__"):
                result = list(result)
            spent[name] += time.perf_counter() - start
            calls[name] += 1
            return result

        return wrapper

    for name in PHASES:
        setattr(scanner, name, timed(name, getattr(scanner, name)))
    incident = load_playbook(resolve_playbook("axios-2026-03")).playbook.incident
    start = time.perf_counter()
    # in one process, so that every phase is timed here (not in the background walker)
    result = scanner.scan([home], incident, ScanOptions(host=True, background=False), env=env)
    total = time.perf_counter() - start

    print(f"imports (before any work): {IMPORT_SECONDS:6.2f} s")
    print(f"{'phase':<52}{'seconds':>8}{'share':>8}{'calls':>8}")
    for name, label in sorted(PHASES.items(), key=lambda kv: -spent[kv[0]]):
        share = spent[name] / total if total else 0.0
        print(f"{label:<52}{spent[name]:8.2f}{share:8.1%}{calls[name]:8d}")
    print(f"{'total scan() (phases overlap: reads happen inside others)':<52}{total:8.2f}")
    print(f"findings: {len(result.findings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
