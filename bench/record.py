"""Merge 1,000 journals of the bundled playbook into one incident record (md and html).

    .venv/bin/python -m bench.record                 # 1,000 journals, 3 timed runs per format
    .venv/bin/python -m bench.record --journals 200 --reps 1

The template is a real journal: the bundled playbook run dry by the real `runbook run` on a copy
of the bundled example project (74 entries), followed by a resumed session with notes and
checklist answers so that each journal holds about 100 entries. Each of the 1,000 copies gets
its own host, target, operator and start time (nine in ten live, one in ten a dry run), and its
hash chain is recomputed with the journal's own hashing, so every one verifies. Then `runbook
report DIR --format md|html` runs as a child process, timed, with its peak RSS taken from GNU
time (see bench/run.py). Goal: under 10 s and under 500 MB for each format.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.run import Run, run_once
from runbook.journal import GENESIS, canonical, entry_hash

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = Path(sys.executable).with_name("runbook")
GOAL_SECONDS, GOAL_MB = 10.0, 500.0
# until `runbook report` takes many journals, the same handlers are driven directly
DRIVER = """
import argparse, sys
from runbook.record.cli import register_report_args, report_many
parser = argparse.ArgumentParser(prog="runbook report")
register_report_args(parser)
sys.exit(report_many(parser.parse_args(sys.argv[1:])))
"""


def _env(scratch: Path) -> dict[str, str]:
    closed = "http://127.0.0.1:9"  # nothing leaves the machine
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch / "home"),
        "XDG_STATE_HOME": str(scratch / "state"),
        "RUNBOOK_OPERATOR": "bench",
        "AWS_ENDPOINT_URL": closed,
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }


def template(scratch: Path) -> list[dict[str, Any]]:
    """A real dry run of the bundled playbook, as entries."""
    project = scratch / "project"
    shutil.copytree(REPO / "examples" / "axios-compromised", project, symlinks=True)
    (scratch / "home").mkdir()
    journal = scratch / "template.jsonl"
    args = ["run", "axios-2026-03", "--target", str(project), "--dry-run", "--yes"]
    proc = subprocess.run(
        [str(RUNBOOK), *args, "--journal", str(journal)],
        env=_env(scratch),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"the template run failed ({proc.returncode}):\n{proc.stderr}")
    return [json.loads(line) for line in journal.read_bytes().splitlines()]


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def variant(entries: list[dict[str, Any]], index: int) -> list[bytes]:
    """Journal lines for machine `index`: its own host, target, times; ~100 entries."""
    host, target = f"host-{index:04d}", f"/srv/fleet/host-{index:04d}/app"
    operator, live = f"oncall-{index % 17}", index % 10 != 0
    base = datetime(2026, 3, 31, 6, 0, tzinfo=UTC) + timedelta(seconds=37 * index)
    template_target = entries[0]["data"]["target"]
    out: list[dict[str, Any]] = []
    for n, entry in enumerate(entries):
        text = json.dumps(entry["data"]).replace(template_target, target)
        data = json.loads(text)
        if entry["event"] == "run_started":
            data |= {"host": host, "operator": operator, "mode": "live" if live else "dry-run"}
        out.append({"event": entry["event"], "data": data, "ts": base + timedelta(seconds=n)})
    later = base + timedelta(hours=2)
    start = dict(out[0]["data"], finished_steps=[])
    extra: list[tuple[str, dict[str, Any]]] = [("run_resumed", start)]
    for k in range(12):
        extra.append(("note", {"text": f"checked item {k} on {host}", "by": operator}))
        extra.append(
            (
                "manual_item",
                {
                    "step": "review-logs",
                    "item": f"extra-{k}",
                    "text": f"Follow-up {k}",
                    "answer": "done" if k % 3 else "outstanding",
                    "by": operator,
                },
            )
        )
    extra.append(("run_finished", {"outcome": "completed", "reason": "", "steps": {}}))
    out += [
        {"event": event, "data": data, "ts": later + timedelta(seconds=k)}
        for k, (event, data) in enumerate(extra)
    ]
    lines, prev = [], GENESIS
    for seq, item in enumerate(out, start=1):
        entry = {
            "seq": seq,
            "ts": _ts(item["ts"]),
            "event": item["event"],
            "data": item["data"],
            "prev": prev,
        }
        entry["hash"] = prev = entry_hash(entry)
        lines.append(canonical(entry))
    return lines


def make_journals(scratch: Path, count: int) -> tuple[Path, int]:
    entries = template(scratch)
    folder = scratch / "journals"
    total = 0
    for index in range(count):
        lines = variant(entries, index)
        total += len(lines)
        path = folder / f"host-{index:04d}" / "run.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
    return folder, total


def _wired() -> bool:
    proc = subprocess.run(
        [str(RUNBOOK), "report", "--help"], capture_output=True, text=True, check=False
    )
    return "--incident" in proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journals", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "record-results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rb-record-bench-") as tmp:
        scratch = Path(tmp)
        folder, entries = make_journals(scratch, args.journals)
        size = sum(p.stat().st_size for p in folder.rglob("*.jsonl"))
        print(f"{args.journals} journals, {entries} entries, {size / 1e6:.1f} MB")
        command = [str(RUNBOOK), "report"] if _wired() else [sys.executable, "-c", DRIVER]
        results: dict[str, Any] = {}
        for fmt in ("md", "html"):
            out = scratch / f"record.{fmt}"
            cmd = [*command, str(folder), "--format", fmt, "--incident", "bench", "-o", str(out)]
            run_once(cmd, env=_env(scratch))  # warm the page cache and the imports
            runs: list[Run] = [run_once(cmd, env=_env(scratch)) for _ in range(args.reps)]
            if any(r.rc != 0 for r in runs):
                raise SystemExit(f"{fmt}: report exited with {[r.rc for r in runs]}")
            median = statistics.median(r.wall for r in runs)
            peak = max(r.rss_mb for r in runs)
            results[fmt] = {
                "median_s": round(median, 2),
                "runs_s": [round(r.wall, 2) for r in runs],
                "peak_rss_mb": round(peak, 1),
                "output_mb": round(out.stat().st_size / 1e6, 1),
                "met": median < GOAL_SECONDS and peak < GOAL_MB,
            }
            print(
                f"{fmt}: median {median:.2f} s ({', '.join(f'{r.wall:.2f}' for r in runs)}), "
                f"peak RSS {peak:.0f} MiB, output {out.stat().st_size / 1e6:.1f} MB"
            )
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "journals": args.journals,
        "entries": entries,
        "goals": {"seconds": GOAL_SECONDS, "rss_mb": GOAL_MB},
        "results": results,
    }
    args.results.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
