"""Time `runbook scan --host` against `npm ls`, `grep -r` and `find` on one synthetic home.

    .venv/bin/python -m bench.run --size full            # generate (or reuse), measure, clean up
    .venv/bin/python -m bench.run --size full --dir /tmp/rb-bench --keep   # keep it for next time

The scanner runs three times over the same home in the same run: with the bundled axios playbook
(2 packages), with the 2,915-version test playbook (`tests/playbooks/shai-hulud-list.yaml`, 1,630
packages) and with the bundled Shai-Hulud playbook (`playbooks/shai-hulud-2025.yaml`: the same
list, bad ranges, and payload files looked for in every installed package); each is compared
with `find`.

Everything lives under a scratch directory (default: a new one under $TMPDIR); the user's HOME
and ~/.npm are never used: the scanner runs with HOME set to the synthetic home, npm with a
private empty userconfig and a cache inside the scratch directory. Each command is timed as a
child of its own (`os.wait4`), so the peak RSS reported is that process's alone.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.make_home import SIZES, ensure_home

REPO = Path(__file__).resolve().parents[1]
BIG_SET = REPO / "tests/playbooks/shai-hulud-list.yaml"
SHAI_HULUD = REPO / "playbooks/shai-hulud-2025.yaml"
#: The scanner contenders: key -> (label, playbook (None: the default, axios), output file).
SCANNERS: dict[str, tuple[str, Path | None, str]] = {
    "scanner": ("runbook scan --host", None, "scan.json"),
    "scanner_big_set": ("runbook scan --host (2,915 versions)", BIG_SET, "scan-big-set.json"),
    "scanner_shai_hulud": (
        "runbook scan --host (shai-hulud-2025)",
        SHAI_HULUD,
        "scan-shai-hulud.json",
    ),
}
GOAL_NPM_RATIO = 20.0
GOAL_RSS_MB = 200.0
GNU_TIME = "/usr/bin/time"
CLEAN_ENV_PREFIXES = ("npm_config_", "NPM_CONFIG_", "YARN_", "PNPM_", "BUN_")


@dataclass
class Run:
    wall: float
    rss_mb: float
    rc: int


@dataclass
class Measure:
    name: str
    command: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.rss_mb for r in self.runs)


def run_once(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    stdout: Path | None = None,
) -> Run:
    """Wall time, peak RSS (MiB) and exit code of one child process.

    A child's ru_maxrss starts from its parent's size at fork time (this Python process, ~30 MB),
    so the command runs under GNU time (a 2 MB C program) when it is there, which reports the
    command's own peak; otherwise the child is reaped with wait4 and its ru_maxrss is used.
    """
    gnu_time = Path(GNU_TIME).exists()
    with tempfile.NamedTemporaryFile(prefix="rss-", delete=False) as handle:
        rss_file = Path(handle.name)
    if gnu_time:
        cmd = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd]
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    finally:
        if stdout:
            out.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kb = usage.ru_maxrss
    if gnu_time:
        lines = rss_file.read_text().split()
        rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else rss_kb
    rss_file.unlink(missing_ok=True)
    return Run(wall=wall, rss_mb=rss_kb / 1024, rc=proc.returncode)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_ENV_PREFIXES)}
    env.update(extra)
    return env


# -- the contenders --------------------------------------------------------------------------------
def scanner_command(runbook: Path, home: Path, playbook: Path | None = None) -> list[str]:
    extra = ["--playbook", str(playbook)] if playbook else []
    return [str(runbook), "scan", str(home), "--host", "--format", "json", *extra]


def npm_env(scratch: Path) -> dict[str, str]:
    npm_dir = scratch / "npm"
    (npm_dir / "cache").mkdir(parents=True, exist_ok=True)
    (npm_dir / "home").mkdir(exist_ok=True)
    (npm_dir / "npmrc").write_text("")
    return clean_env(
        HOME=str(npm_dir / "home"),
        NPM_CONFIG_USERCONFIG=str(npm_dir / "npmrc"),
        npm_config_cache=str(npm_dir / "cache"),
        npm_config_offline="true",
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_loglevel="error",
    )


def npm_loop(projects: list[Path], env: dict[str, str], out_dir: Path) -> tuple[Run, dict]:
    """`npm ls axios --all --json` in every project, one after the other."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_project: dict[str, dict] = {}
    total, peak = 0.0, 0.0
    for k, project in enumerate(projects):
        out = out_dir / f"{k}.json"
        run = run_once(
            ["npm", "ls", "axios", "--all", "--json"], env=env, cwd=str(project), stdout=out
        )
        total += run.wall
        peak = max(peak, run.rss_mb)
        per_project[str(project)] = {"rc": run.rc, "wall": round(run.wall, 3), **_npm_view(out)}
    return Run(wall=total, rss_mb=peak, rc=max(v["rc"] for v in per_project.values())), per_project


def _npm_view(out: Path) -> dict:
    try:
        tree = json.loads(out.read_bytes() or b"{}")
    except ValueError:
        return {"parsed": False, "bad": []}
    bad: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        for name, child in (node.get("dependencies") or {}).items():
            if name == "axios" and child.get("version") in ("1.14.1", "0.30.4"):
                bad.add(child["version"])
            stack.append(child)
    return {"parsed": True, "problems": len(tree.get("problems") or []), "bad": sorted(bad)}


# -- correctness -----------------------------------------------------------------------------------
def expected_for_big_set(expected: dict, playbook: Path) -> dict:
    """What the scan with a playbook of the big list (the test list, or the bundled Shai-Hulud
    one) must report: the axios plants it also lists as bad (axios 1.14.1 and 0.30.4,
    plain-crypto-js 4.2.1, but not a copy claiming 4.2.0) and its own plants
    (`make_home.BIG_SET_*`)."""
    from runbook.playbook import load_playbook
    from steps.npm.badset import BadSet

    badset = BadSet(load_playbook(playbook).playbook.incident)
    big = expected["big_set"]
    return {
        "compromised": [
            *(w for w in expected["compromised"] if badset.is_bad(w["package"], w["version"])),
            *big["compromised"],
        ],
        "at_risk": [*(w for w in expected["at_risk"] if w["package"] in badset.names)]
        + big["at_risk"],
        "traps": [*expected["traps"], *big["traps"]],
        "planted_projects": [*expected["planted_projects"], *big["planted_projects"]],
    }


def check_findings(scan_json: Path, home: Path, expected: dict) -> list[str]:
    """Mismatches between the scanner's findings and what the generator planted."""
    try:
        findings = json.loads(scan_json.read_bytes())["findings"]
    except (OSError, ValueError, KeyError) as exc:
        return [f"scanner output is not runbook.scan JSON: {exc}"]
    problems: list[str] = []

    def rel(path: str | None) -> str:
        return os.path.relpath(path, home) if path and path.startswith(str(home)) else path or ""

    for want in expected["compromised"]:
        if not any(
            f["severity"] == "compromised"
            and f["kind"] == want["kind"]
            and f["package"] == want["package"]
            and f["version"] == want["version"]
            and rel(f["path"]) == want["path"]
            for f in findings
        ):
            problems.append(
                f"MISSED {want['kind']} {want['package']}@{want['version']} at {want['path']}"
            )
    for want in expected["at_risk"]:
        if not any(
            f["severity"] == "at-risk"
            and f["kind"] == want["kind"]
            and f["package"] == want["package"]
            and rel(f["path"]) == want["path"]
            for f in findings
        ):
            problems.append(f"MISSED at-risk {want['kind']} {want['package']} at {want['path']}")
    allowed = [*expected["planted_projects"], ".npm/"]
    trap_paths = [t["path"] for t in expected["traps"]]
    for f in findings:
        where = rel(f["path"])
        label = f"{f['severity']} {f['kind']} {f['package']}@{f['version']} at {where}"
        if f["severity"] == "unknown":
            problems.append(f"UNKNOWN {label}: {f['message']}")
            continue
        if f["severity"] not in ("compromised", "at-risk"):
            continue
        in_trap = any(where == t or where.startswith(t + "/") for t in trap_paths)
        if in_trap or f["package"] == "axios-retry" or f["version"] == "1.14.10":
            problems.append(f"TRAP REPORTED {label}")
        elif not any(where.startswith(a) for a in allowed):
            problems.append(f"UNEXPECTED {label}")
    return problems


# -- machine ---------------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
            return "missing"
        return text.splitlines()[0].strip() if text else "?"

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "node": version(["node", "--version"]),
        "npm": version(["npm", "--version"]),
        "grep": version(["grep", "--version"]),
        "find": version(["find", "--version"]),
    }


def fs_type(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype", str(path)], capture_output=True, text=True, check=False
        ).stdout.split()
        return out[-1] if out else "?"
    except OSError:
        return "?"


# -- main ------------------------------------------------------------------------------------------
@dataclass
class Contender:
    name: str
    cmd: list[str]
    kw: dict = field(default_factory=dict)


def measure_interleaved(contenders: dict[str, Contender], reps: int) -> dict[str, Measure]:
    """Each command once untimed, then `reps` rounds of every command in turn: on a machine
    shared with other work, a change of load hits every contender alike instead of one block."""
    results = {k: Measure(name=c.name, command=" ".join(c.cmd)) for k, c in contenders.items()}
    for c in contenders.values():
        run_once(c.cmd, **c.kw)
    for _ in range(reps):
        for key, c in contenders.items():
            run = run_once(c.cmd, **c.kw)
            results[key].runs.append(run)
            print(f"  {c.name:<38} {run.wall:8.2f} s  {run.rss_mb:7.1f} MiB", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="scratch directory (default: new one in $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per command (median)")
    parser.add_argument("--npm-reps", type=int, default=1, help="timed runs of the npm ls loop")
    parser.add_argument("--skip-npm", action="store_true", help="leave out the npm ls loop")
    parser.add_argument("--runbook", type=Path, default=REPO / ".venv/bin/runbook")
    parser.add_argument("--results", type=Path, default=REPO / "bench/results.json")
    args = parser.parse_args(argv)

    created = args.dir is None or not args.dir.exists()
    scratch = (args.dir or Path(tempfile.mkdtemp(prefix="runbook-bench-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, scratch)
    finally:
        if args.keep:
            print(f"kept {scratch}")
        elif created:
            shutil.rmtree(scratch, ignore_errors=True)
        else:  # a directory the caller gave us: remove only what we put there
            for name in ("home", "npm", "out", "home.stamp.json", "expected.json"):
                target = scratch / name
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists():
                    target.unlink()


def _bench(args: argparse.Namespace, scratch: Path) -> int:
    stamp = ensure_home(scratch, args.seed, args.size)
    home = scratch / "home"
    expected = json.loads((scratch / "expected.json").read_text())
    projects = [home / p["path"] for p in expected["projects"]]
    out = scratch / "out"
    out.mkdir(exist_ok=True)
    if not args.runbook.exists():
        print(f"runbook not found at {args.runbook}", file=sys.stderr)
        return 2

    print("warm-up: grep -r over the whole home (reads every file once)", flush=True)
    run_once(["grep", "-r", "-q", "-e", "no-such-string-anywhere", str(home)])
    scan_env = clean_env(HOME=str(home))
    include = ["--include=package.json", "--include=package-lock.json"]
    contenders = {
        key: Contender(
            label,
            scanner_command(args.runbook, home, playbook),
            {"env": scan_env, "stdout": out / output},
        )
        for key, (label, playbook, output) in SCANNERS.items()
    }
    contenders |= {
        "find": Contender("find", ["find", str(home)]),
        "find_name": Contender(
            "find -name package.json", ["find", str(home), "-name", "package.json"]
        ),
        "grep": Contender("grep -rl axios", ["grep", "-rl", "-e", "axios", str(home)]),
        "grep_include": Contender(
            "grep -rl --include=package*.json", ["grep", "-rl", *include, "-e", "axios", str(home)]
        ),
    }
    load_before = _load()
    print(f"load average: {load_before}", flush=True)
    results = measure_interleaved(contenders, args.reps)
    print(f"load average: {_load()}", flush=True)
    problems = check_findings(out / "scan.json", home, expected)
    for key, label in (("scanner_big_set", "big set"), ("scanner_shai_hulud", "shai-hulud-2025")):
        _, playbook, output = SCANNERS[key]
        assert playbook is not None
        wanted = expected_for_big_set(expected, playbook)
        problems += [f"{label}: {p}" for p in check_findings(out / output, home, wanted)]
    npm_projects: dict = {}
    if not args.skip_npm:
        env = npm_env(scratch)
        m = Measure(
            name=f"npm ls loop ({len(projects)} projects)",
            command="npm ls axios --all --json  # in each project",
            note="warmed by the grep -r pass, not by a loop of its own",
        )
        for _ in range(args.npm_reps):
            run, npm_projects = npm_loop(projects, env, out / "npm")
            m.runs.append(run)
            print(f"  {m.name:<34} {run.wall:8.2f} s  {run.rss_mb:7.1f} MiB", flush=True)
        results["npm_ls"] = m

    scanners = tuple(SCANNERS)
    # each other command's median time / each scanner's: above 1, the scanner is faster
    ratios_by = {
        s: {
            k: round(v.median / results[s].median, 2)
            for k, v in results.items()
            if k not in scanners
        }
        for s in scanners
    }
    ratios, big_ratios = ratios_by["scanner"], ratios_by["scanner_big_set"]
    shai_ratios = ratios_by["scanner_shai_hulud"]
    find = results["find"].median
    goals = {
        "faster_than_find": results["scanner"].median < find,
        "big_set_faster_than_find": results["scanner_big_set"].median < find,
        "shai_hulud_faster_than_find": results["scanner_shai_hulud"].median < find,
        "npm_ls_ratio_at_least_20": (ratios["npm_ls"] >= GOAL_NPM_RATIO)
        if "npm_ls" in ratios
        else None,
        "peak_rss_under_200_mib": max(results[k].peak_mb for k in scanners) < GOAL_RSS_MB,
    }
    npm_errors = {p: v for p, v in npm_projects.items() if v["rc"] not in (0, 1) or v["problems"]}
    npm_bad = sorted(os.path.relpath(p, home) for p, v in npm_projects.items() if v["bad"])

    print()
    header = f"{'command':<38} {'median s':>9} {'min s':>8} {'peak MiB':>9}"
    print(f"{header} {'x scanner':>10} {'x big set':>10} {'x shai':>8}")
    for key, m in results.items():
        shown = ["-" if key in scanners else f"{ratios_by[s][key]:.2f}" for s in scanners]
        best = min(r.wall for r in m.runs)
        print(
            f"{m.name:<38} {m.median:9.2f} {best:8.2f} {m.peak_mb:9.1f} "
            f"{shown[0]:>10} {shown[1]:>10} {shown[2]:>8}"
        )
    print(
        "(x scanner = that command's median time / the scanner's, with the axios playbook, the "
        "2,915-version one and the bundled shai-hulud-2025 one: above 1, the scanner is faster)"
    )
    print()
    for goal, ok in goals.items():
        print(f"goal {goal}: {'n/a' if ok is None else 'MET' if ok else 'NOT MET'}")
    if npm_projects:
        print(f"npm ls saw a bad axios in {len(npm_bad)} projects: {', '.join(npm_bad)}")
        if npm_errors:
            print(f"npm ls reported problems in {len(npm_errors)} projects")
    if problems:
        print("\n!!! SCANNER FINDINGS DO NOT MATCH WHAT WAS PLANTED !!!")
        for line in problems:
            print(f"  {line}")
    else:
        print(
            "scanner findings (all three playbooks): every planted bad version reported, "
            "no trap reported"
        )

    report = {
        "machine": {**machine_info(), "filesystem": fs_type(home)},
        "generated": {k: stamp[k] for k in ("seed", "size", "counts")},
        "generation_seconds": stamp.get("seconds"),
        "page_cache": "warm: grep -r read the whole home first; each command ran once untimed "
        "before its timed runs (the npm ls loop only had the grep -r warm-up)",
        "order": "interleaved: the timed runs went round the contenders (scanner, scanner with "
        "the big set, scanner with shai-hulud-2025, find, find -name, grep, grep --include) once "
        "per repetition",
        "load_average": {"before": load_before, "after": _load()},
        "reps": args.reps,
        "timings": {
            k: {**asdict(m), "median": round(m.median, 3), "peak_rss_mib": round(m.peak_mb, 1)}
            for k, m in results.items()
        },
        "big_set_playbook": str(BIG_SET.relative_to(REPO)),
        "shai_hulud_playbook": str(SHAI_HULUD.relative_to(REPO)),
        "ratios_vs_scanner": ratios,
        "ratios_vs_scanner_big_set": big_ratios,
        "ratios_vs_scanner_shai_hulud": shai_ratios,
        "goals": goals,
        "correctness": {"ok": not problems, "problems": problems},
        "npm_ls": {
            "projects_with_bad_axios": npm_bad,
            "projects_with_problems": sorted(os.path.relpath(p, home) for p in npm_errors),
            "exit_codes": _count(v["rc"] for v in npm_projects.values()),
        },
    }
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")
    return 0 if not problems else 1


def _load() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on a shared machine)."""
    return [round(x, 2) for x in os.getloadavg()]


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
