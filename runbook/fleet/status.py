"""A fleet folder read back: one row per host, for the headless table, JSON and the fleet view.

Rows come from each host's `host.json` (the state derived when its results arrived); a journal
whose bytes changed since it was verified is verified again (`hosts.load`). A fleet run that
is no longer running (killed) leaves hosts "running" in their records: they are shown as failed,
"the fleet run stopped before this host's results came back; rerun to resume".
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.fleet import hosts as records
from runbook.fleet.layout import HOST_FILE, FleetDir
from runbook.fleet.state import RANK, STATES
from runbook.termsafe import printable

COLUMNS = ("host", "state", "findings", "steps", "outstanding", "duration", "head")
SORT_KEYS = ("state", "host", "findings", "steps", "outstanding", "duration")
STOPPED = "the fleet run stopped before this host's results came back; rerun to resume"


@dataclass
class Fleet:
    """A fleet folder's manifest and host rows."""

    path: Path
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]
    running: bool = False
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["state"]] = out.get(row["state"], 0) + 1
        return {s: out[s] for s in STATES if s in out}


def _alive(manifest: dict[str, Any]) -> bool:
    """Whether the fleet run that wrote the manifest still runs (on this controller)."""
    if manifest.get("status") != "running":
        return False
    pid = manifest.get("pid")
    if manifest.get("controller") != socket.gethostname() or not isinstance(pid, int):
        return True  # another machine's run: take its word
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def host_names(fleet: FleetDir, manifest: dict[str, Any]) -> list[str]:
    """The manifest's hosts, then any other host folder (a fleet copied together by hand)."""
    names = [str(h) for h in manifest.get("hosts") or []]
    known = {fleet.host_dir(h).name for h in names}
    for child in sorted(fleet.path.iterdir()) if fleet.path.is_dir() else []:
        if child.name not in known and (child / HOST_FILE).is_file():
            names.append(child.name)
    return names


def load(path: Path) -> Fleet:
    """Read a fleet folder. Raises OSError/ValueError when it is not one."""
    fleet = FleetDir(path)
    manifest = fleet.load_manifest()
    steps_total = len((manifest.get("playbook") or {}).get("steps") or [])
    running = _alive(manifest)
    rows, problems = [], []
    for host in host_names(fleet, manifest):
        try:
            record = records.load(fleet.host_dir(host), steps_total)
            row = record["row"]
        except FileNotFoundError:
            row = records.derive(records.new_record(host, "", ""), steps_total)
        except (OSError, ValueError) as exc:
            problems.append(f"{host}: {exc}")
            row = records.derive(records.new_record(host, "", ""), steps_total)
            row.update(state="failed", reason=f"its record cannot be read: {exc}")
        if row["state"] == "running" and not running:
            row = dict(row, state="failed", reason=STOPPED)
        rows.append(row)
    return Fleet(path, manifest, rows, running, problems)


def matches(row: dict[str, Any], text: str) -> bool:
    """The view's filter: every word must appear in the host, state, findings or reason
    (`state:failed` matches the state exactly)."""
    haystack = " ".join(
        str(row.get(k, "")) for k in ("host", "state", "findings_text", "reason")
    ).lower()
    for word in text.lower().split():
        if word.startswith("state:"):
            if row["state"] != word[6:]:
                return False
        elif word not in haystack:
            return False
    return True


def _findings_weight(row: dict[str, Any]) -> tuple[int, int, int]:
    f = row.get("findings") or {}
    return (-int(f.get("compromised", 0)), -int(f.get("at-risk", 0)), -int(f.get("unknown", 0)))


def sort_key(column: str):
    """A key for sorting rows by a column (worst or biggest first, then host name)."""
    if column == "host":
        return lambda r: (r["host"],)
    if column == "findings":
        return lambda r: (*_findings_weight(r), r["host"])
    if column == "steps":
        return lambda r: (-int(r.get("steps_done") or 0), r["host"])
    if column == "outstanding":
        return lambda r: (-len(r.get("outstanding") or []), r["host"])
    if column == "duration":
        return lambda r: (-(r.get("duration") or 0.0), r["host"])
    return lambda r: (RANK.get(r["state"], len(RANK)), r["host"])


def cells(row: dict[str, Any]) -> list[str]:
    """A row as the table's text cells (text from hosts made safe for a terminal)."""
    total = row.get("steps_total") or 0
    steps = f"{row.get('steps_done', 0)}/{total}" if total else "-"
    duration = row.get("duration")
    return [
        printable(row["host"]),
        row["state"],
        row.get("findings_text") or "none",
        steps,
        str(len(row.get("outstanding") or [])),
        f"{duration:.0f}s" if isinstance(duration, int | float) else "-",
        printable((row.get("head") or "")[:16]),
        printable(row.get("reason") or ""),
    ]


HEADERS = ["HOST", "STATE", "FINDINGS", "STEPS", "OUTSTANDING", "DURATION", "JOURNAL HEAD"]


def table(fleet: Fleet, rows: list[dict[str, Any]] | None = None) -> str:
    """The headless table: one line per host, then the reasons of the hosts that have one."""
    rows = fleet.rows if rows is None else rows
    grid = [HEADERS] + [cells(r)[: len(HEADERS)] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid
    ]
    reasons = [f"  {printable(r['host'])}: {printable(r['reason'])}" for r in rows if r["reason"]]
    if reasons:
        lines += ["", "Reasons:", *reasons]
    counts = ", ".join(f"{n} {s}" for s, n in fleet.counts().items())
    manifest = fleet.manifest
    what = manifest.get("kind", "run")
    mode = manifest.get("mode", "")
    playbook = (manifest.get("playbook") or {}).get("id", "")
    status = "running" if fleet.running else manifest.get("status", "")
    head = f"fleet {what} {printable(playbook)} [{mode}] {status}: {len(fleet.rows)} hosts"
    return "\n".join([head + (f" ({counts})" if counts else ""), "", *lines]) + "\n"


def as_json(fleet: Fleet) -> str:
    return json.dumps(
        {
            "schema": "runbook.fleet.status/v1",
            "fleet": str(fleet.path),
            "manifest": fleet.manifest,
            "running": fleet.running,
            "counts": fleet.counts(),
            "hosts": fleet.rows,
            "problems": fleet.problems,
        },
        indent=1,
        sort_keys=True,
    )


def exit_code(fleet: Fleet) -> int:
    """0 every host clean or remediated; 3 some could not be checked (and nothing worse);
    1 anything else: compromised, exposed, failed, unreachable or not done."""
    from runbook.exitcodes import FAILED, OK, UNCHECKED

    states = {row["state"] for row in fleet.rows}
    if not states or states <= {"clean", "remediated"}:
        return OK
    if states <= {"clean", "remediated", "unchecked"}:
        return UNCHECKED
    return FAILED


def timeline(fleet_path: Path, host: str) -> list[tuple[str, str]]:
    """(time, what) of a host: what Ansible did, then every journal's run, step by step."""
    fleet = FleetDir(fleet_path)
    host_dir = fleet.host_dir(host)
    try:
        record = records.load(host_dir)
    except (OSError, ValueError) as exc:
        return [("", f"no record: {exc}")]
    out = [(e.get("ts", ""), f"fleet: {e.get('what', '')}") for e in record["ansible"]["events"]]
    for journal in record.get("journals") or []:
        if not journal["ok"]:
            out.append(("", f"{journal['path']}: chain BROKEN at line {journal['bad_line']}"))
            continue
        out += _journal_lines(host_dir / journal["path"], journal["path"])
    return out


def _journal_lines(path: Path, shown: str) -> list[tuple[str, str]]:
    from runbook.journal import read_entries

    try:
        entries = read_entries(path)
    except OSError as exc:
        return [("", f"{shown}: cannot read: {exc.strerror or exc}")]
    out = []
    for entry in entries:
        data = entry.get("data") or {}
        event, ts = entry.get("event", ""), str(entry.get("ts", ""))
        step = data.get("step", "")
        if event in ("run_started", "run_resumed"):
            verb = "started" if event == "run_started" else "resumed"
            out.append((ts, f"{shown}: run {verb} on {data.get('target')} ({data.get('mode')})"))
        elif event == "step_finished":
            out.append((ts, f"  {step}: {data.get('outcome')}  {data.get('summary', '')}"))
        elif event == "step_skipped":
            out.append((ts, f"  {step}: skipped  {data.get('reason', '')}"))
        elif event == "manual_item" and data.get("answer") != "done":
            out.append((ts, f"  {step}: open item: {data.get('text', '')}"))
        elif event == "run_finished":
            reason = data.get("reason") or ""
            out.append(
                (ts, f"{shown}: run {data.get('outcome')}" + (f": {reason}" if reason else ""))
            )
    return [(ts, printable(what)) for ts, what in out]


class Watcher:
    """A fleet folder kept current cheaply: each poll stats the manifest and every host record
    and reads again only what changed (for the view's refresh while a fleet run goes on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fleet = load(path)
        self._stamps = self._stat()

    def _stat(self) -> dict[str, tuple[int, int]]:
        out = {}
        names = [str(h) for h in self.fleet.manifest.get("hosts") or []]
        dirs = [FleetDir(self.path).host_dir(h) for h in names]
        for place in [self.path / "fleet.json", *[d / HOST_FILE for d in dirs]]:
            try:
                st = place.stat()
            except OSError:
                continue
            out[str(place)] = (st.st_mtime_ns, st.st_size)
        return out

    def poll(self) -> bool:
        """Reload what changed; True when anything did."""
        stamps = self._stat()
        if stamps == self._stamps:
            if self.fleet.running and not _alive(self.fleet.manifest):
                self.fleet = load(self.path)  # the run died without a word: say so
                return True
            return False
        self._stamps = stamps
        self.fleet = load(self.path)
        return True
