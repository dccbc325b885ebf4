"""One host's record (`DIR/<host>/host.json`): what Ansible did there, what came back, its state.

The driver updates the `ansible` part as events arrive; `arrive` adds what the host sent back
(verifying every journal); `derive` turns both into the row the fleet view shows. `load` reads a
record back and verifies again any journal whose bytes changed since it was checked, so an
edited journal is never shown as verified.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runbook.fleet.collect import Unpacked, journals_of, verify_journal
from runbook.fleet.layout import (
    HOST_FILE,
    HOST_SCHEMA,
    read_json,
    utc_now,
    write_json,
    write_text,
)
from runbook.fleet.state import (
    JournalSummary,
    findings_text,
    journal_state,
    scan_counts,
    scan_state,
    worst,
)
from runbook.safeio import JOURNAL_LIMIT, MiB, read_regular

EVENTS_KEPT = 60
HOST_LIMIT = 32 * MiB


def new_record(host: str, fleet_id: str, kind: str) -> dict[str, Any]:
    return {
        "schema": HOST_SCHEMA,
        "host": host,
        "fleet": fleet_id,
        "kind": kind,
        "ansible": {"status": "pending", "reason": "", "stage": "", "attempts": 0, "events": []},
        "targets": [],
        "journals": [],
        "scan": None,
        "ignored": [],
    }


def note(record: dict[str, Any], what: str) -> None:
    """Add a line to the host's fleet timeline (what Ansible did, when)."""
    events = record["ansible"].setdefault("events", [])
    events.append({"ts": utc_now(), "what": what})
    del events[:-EVENTS_KEPT]


def arrive(record: dict[str, Any], host_dir: Path, unpacked: Unpacked) -> None:
    """Take in what the host sent: its summary, the scan, and every journal, verified."""
    summary = unpacked.summary
    ansible = record["ansible"]
    for key in ("python", "python_version", "free_mb", "installed_now", "install_seconds"):
        if key in summary:
            ansible[key] = summary[key]
    targets = []
    for item in summary.get("targets") or []:
        if not isinstance(item, dict):
            continue
        journal = item.get("journal")
        name = Path(str(journal)).name if journal else None
        targets.append(
            {
                "target": str(item.get("target", "")),
                "journal": f"journals/{name}" if name else None,
                "exit": item.get("exit"),
                "outcome": item.get("outcome"),
                "reason": str(item.get("reason") or item.get("stderr") or ""),
                "resumed": bool(item.get("resumed")),
                "duration": item.get("duration"),
            }
        )
    record["targets"] = targets
    record["ignored"] = unpacked.ignored
    if "scan.json" in unpacked.files:
        try:
            scan = read_json(host_dir / "scan.json", limit=256 * MiB)
        except (OSError, ValueError) as exc:
            record["scan"] = {"path": "scan.json", "error": f"cannot read scan.json: {exc}"}
        else:
            record["scan"] = {
                "path": "scan.json",
                "affected": scan.get("affected") if isinstance(scan, dict) else None,
                "counts": scan_counts(scan) if isinstance(scan, dict) else {},
                "state": scan_state(scan) if isinstance(scan, dict) else "unchecked",
                "exit": (summary.get("scan") or {}).get("exit"),
            }
    record["journals"] = [verify_journal(host_dir, j).as_dict() for j in journals_of(host_dir)]
    for journal in record["journals"]:
        if journal["ok"]:
            render_report(host_dir, journal["path"])
    bad = [j for j in record["journals"] if not j["ok"]]
    for journal in record["journals"]:
        if journal["ok"]:
            note(record, f"fetched {journal['path']}: chain verified, head {journal['head'][:12]}")
    for journal in bad:
        note(record, f"fetched {journal['path']}: chain BROKEN at line {journal['bad_line']}")


def render_report(host_dir: Path, journal: str) -> None:
    """The action log of a verified journal, beside it in `reports/` (rendered here, from the
    copy that was verified, rather than trusted from the host)."""
    from runbook.journal import JournalError
    from runbook.report import render

    path = host_dir / journal
    try:
        text = render(path, "md")
    except (OSError, JournalError) as exc:
        text = f"# Action log unavailable\n\n{path.name}: {exc}\n"
    write_text(host_dir / "reports" / f"{path.stem}.md", text)


def _journal(record: dict[str, Any], path: str | None) -> JournalSummary | None:
    for journal in record["journals"]:
        if journal["path"] == path:
            return JournalSummary.from_dict(journal)
    return None


def derive(record: dict[str, Any], steps_total: int = 0) -> dict[str, Any]:
    """The host's row: state, reason, findings, steps, outstanding items, duration, head."""
    ansible = record["ansible"]
    status = ansible.get("status", "pending")
    broken = [j for j in record["journals"] if not j["ok"]]
    findings: dict[str, int] = {}
    done = total = 0
    outstanding: list[str] = []
    heads: list[str] = []
    states: list[str] = []
    problems: list[str] = []
    if record.get("kind") == "scan":
        scan = record.get("scan") or {}
        findings = dict(scan.get("counts") or {})
        if scan.get("state"):
            states.append(scan["state"])
        elif scan.get("error"):
            problems.append(scan["error"])
    for target in record["targets"]:
        summary = _journal(record, target.get("journal"))
        if summary is None:
            problems.append(f"{target['target']}: no journal came back")
            continue
        if not summary.ok:
            continue
        for severity, count in summary.findings.items():
            findings[severity] = findings.get(severity, 0) + count
        done += summary.steps_done
        total += max(len(summary.steps), steps_total)
        outstanding += summary.outstanding
        heads.append(summary.head)
        states.append(journal_state(summary))
    if status == "unreachable":
        state, reason = "unreachable", ansible.get("reason", "")
    elif broken:
        first = broken[0]
        state = "failed"
        reason = f"journal broken: {first['path']}: line {first['bad_line']}: {first['reason']}"
    elif status == "failed":
        state, reason = "failed", ansible.get("reason", "")
    elif status in ("pending", "not-run"):
        state, reason = "pending", ansible.get("reason", "")
    elif status == "running":
        state, reason = "running", ansible.get("stage", "")
    elif problems:
        state, reason = "failed", "; ".join(problems)
    elif not states:  # fail closed: a host that sent nothing back is not clean
        state, reason = "failed", "no result came back from this host"
    else:
        state, reason = worst(states), ""
    return {
        "host": record["host"],
        "state": state,
        "reason": reason,
        "findings": findings,
        "findings_text": findings_text(findings),
        "steps_done": done,
        "steps_total": total,
        "outstanding": outstanding,
        "duration": ansible.get("duration"),
        "head": heads[0] if len(heads) == 1 else (f"{len(heads)} journals" if heads else ""),
        "heads": heads,
        "broken": [j["path"] for j in broken],
        "attempts": ansible.get("attempts", 0),
    }


def save(host_dir: Path, record: dict[str, Any], steps_total: int = 0) -> dict[str, Any]:
    record["row"] = derive(record, steps_total)
    record["updated"] = utc_now()
    write_json(host_dir / HOST_FILE, record)
    return record


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(read_regular(path, limit=JOURNAL_LIMIT)).hexdigest()
    except OSError:
        return None


def load(host_dir: Path, steps_total: int = 0) -> dict[str, Any]:
    """A host's record, with any journal that changed (or appeared) since it was verified
    verified again. Raises OSError or ValueError for a record that cannot be read."""
    record = read_json(host_dir / HOST_FILE, limit=HOST_LIMIT)
    if not isinstance(record, dict) or record.get("schema") != HOST_SCHEMA:
        raise ValueError(f"{host_dir / HOST_FILE}: not a fleet host record ({HOST_SCHEMA})")
    known = {j["path"]: j for j in record.get("journals") or [] if isinstance(j, dict)}
    current = journals_of(host_dir)
    changed = set(known) != set(current)
    journals = []
    for relative in current:
        seen = known.get(relative)
        if seen is not None and seen.get("sha256") == _digest(host_dir / relative):
            journals.append(seen)
            continue
        changed = True
        journals.append(verify_journal(host_dir, relative).as_dict())
    if changed:
        record["journals"] = journals
        record["row"] = derive(record, steps_total)
        record["reverified"] = True
    elif "row" not in record:
        record["row"] = derive(record, steps_total)
    return record
