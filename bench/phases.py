"""Where `runbook scan --host` spends its time: the phases of `steps.scan.scan`, timed one by one.

    .venv/bin/python -m bench.phases HOME_DIR

Runs the same functions, in the same order, as `scan_paths` and `scan` (nothing in steps/ is
changed), with a clock around each phase, plus two what-ifs for the lockfiles: `json.loads` alone,
and how many lockfiles would need a full parse if a cheap byte test ran first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

T0 = time.perf_counter()
from runbook.playbook import load_playbook, resolve_playbook  # noqa: E402
from steps.npm.badset import BadSet  # noqa: E402
from steps.scan import _read  # noqa: E402
from steps.scan.host import (  # noqa: E402
    home_dirs,
    scan_caches,
    scan_editors,
    scan_globals,
    scan_indicators,
)
from steps.scan.installed import scan_node_modules, scan_yarn_dir  # noqa: E402
from steps.scan.lockfiles import scan_lockfile  # noqa: E402
from steps.scan.manifests import scan_manifest  # noqa: E402
from steps.scan.walk import walk  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0


class Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def time(self, phase: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        if hasattr(result, "__next__"):
            result = list(result)
        self.spent[phase] += time.perf_counter() - start
        self.count[phase] += 1
        return result


def bad_version_bytes(badset: BadSet) -> tuple[bytes, ...]:
    return tuple(sorted({v.encode() for vs in badset.bad_versions.values() for v in vs}))


def could_resolve_bad(data: bytes, badset: BadSet, versions: tuple[bytes, ...]) -> bool:
    """A necessary condition for a lockfile to resolve a bad version: cheap byte tests."""
    if any(name.encode() in data for name in badset.any_version):
        return True
    return badset.mentions(data) and any(v in data for v in versions)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    home = Path(args[0]).resolve()
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env["HOME"] = str(home)
    clock = Clock()
    playbook = clock.time("load playbook", lambda: load_playbook(resolve_playbook("axios-2026-03")))
    incident = playbook.playbook.incident
    badset = BadSet(incident)
    versions = bad_version_bytes(badset)

    inv = clock.time("walk (find manifests, lockfiles, node_modules)", walk, [home])
    findings = []
    for path in inv.manifests:
        data = clock.time("read package.json (projects)", _read, path)
        findings += clock.time("scan_manifest", scan_manifest, path, data, badset)
    lockfiles = list(inv.lockfiles)
    for nm in inv.node_modules:
        hidden = nm / ".package-lock.json"
        if clock.time("stat hidden lockfiles", hidden.is_file):
            lockfiles.append(hidden)
        findings += clock.time("scan_node_modules (installed trees)", scan_node_modules, nm, badset)
    by_kind: dict[str, list[float]] = defaultdict(list)
    sizes = 0
    mention, maybe_bad = 0, 0
    json_only = 0.0
    for path in lockfiles:
        data = clock.time("read lockfiles", _read, path)
        sizes += len(data)
        start = time.perf_counter()
        findings += list(scan_lockfile(path, data, badset))
        by_kind[path.name].append(time.perf_counter() - start)
        mention += badset.mentions(data)
        maybe_bad += could_resolve_bad(data, badset, versions)
        if path.name.endswith(".json"):
            start = time.perf_counter()
            json.loads(data)
            json_only += time.perf_counter() - start
    clock.spent["scan_lockfile (parse + graph)"] = sum(sum(v) for v in by_kind.values())
    clock.count["scan_lockfile (parse + graph)"] = len(lockfiles)
    for yarn_dir in inv.yarn_dirs:
        findings += clock.time("scan_yarn_dir", scan_yarn_dir, yarn_dir, badset)
    for h in home_dirs(None, env):
        findings += clock.time(
            "--host: caches (npm index-v5 ...)", scan_caches, h, env, badset, True
        )
        findings += clock.time("--host: global installs", scan_globals, h, None, env, badset)
        findings += clock.time("--host: editor extensions", scan_editors, h, badset)
    findings += clock.time(
        "--host: indicators", scan_indicators, incident.indicators, None, [home], env
    )

    total = sum(clock.spent.values())
    print(f"imports (before any work): {IMPORT_SECONDS:6.2f} s")
    print(f"{'phase':<48} {'seconds':>8} {'share':>6} {'calls':>7}")
    for phase, spent in sorted(clock.spent.items(), key=lambda kv: -kv[1]):
        share = spent / total * 100
        print(f"{phase:<48} {spent:8.2f} {share:5.1f}% {clock.count[phase]:7d}")
    print(f"{'total (imports excluded)':<48} {total:8.2f}")
    print()
    print(
        f"inventory: {len(inv.manifests)} package.json, {len(inv.lockfiles)} lockfiles "
        f"(+{len(lockfiles) - len(inv.lockfiles)} hidden), {len(inv.node_modules)} node_modules"
    )
    for name, spent in sorted(by_kind.items()):
        print(
            f"  {name:<22} {len(spent):4d} files {sum(spent):7.2f} s "
            f"({sum(spent) / len(spent) * 1000:6.1f} ms each)"
        )
    print(
        f"  lockfile bytes: {sizes / 1e6:.0f} MB; json.loads alone on the JSON ones: "
        f"{json_only:.2f} s"
    )
    print(
        f"  mention a bad name: {mention}/{len(lockfiles)}; also contain a bad version string "
        f"(or an any-version name): {maybe_bad}/{len(lockfiles)}"
    )
    print(f"findings: {len(findings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
