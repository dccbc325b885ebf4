"""What a host's results say: each journal summarised, and one state per host.

States, worst first (the order the fleet view sorts by):

- `unreachable`: Ansible could not connect;
- `failed`: the host could not be worked on (no Python 3.11, no space, the install or the run
  failed) or a fetched journal's chain is broken;
- `compromised`: a bad version was resolved, installed or cached, and is still there (or the run
  was a dry run);
- `exposed`: something admits a bad version (a manifest range, lockfile history), nothing
  compromised;
- `unchecked`: nothing compromised or at risk, but something could not be checked: not clean;
- `remediated`: a live run completed, no step failed or left findings, and its last scan (a
  detect or verify step after the changes) found nothing; checklist items may be outstanding;
- `clean`: a run or scan completed and found nothing;
- `running` / `pending`: being worked on / not reached yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from runbook.journal import verify_bytes

STATES = (
    "unreachable",
    "failed",
    "compromised",
    "exposed",
    "unchecked",
    "remediated",
    "clean",
    "running",
    "pending",
)
RANK = {state: index for index, state in enumerate(STATES)}
SEVERITIES = ("compromised", "at-risk", "unknown")
FINISHED = ("succeeded", "skipped", "outstanding")


@dataclass
class JournalSummary:
    """One fetched journal: its chain, and what its run did."""

    ok: bool
    entries: int
    head: str
    bad_line: int | None = None
    reason: str = ""
    target: str = ""
    mode: str = ""
    run_outcome: str = "unfinished"  # completed | failed | stopped | interrupted | unfinished
    run_reason: str = ""
    started: str = ""
    ended: str = ""
    steps: dict[str, str] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    findings_remain: bool = False
    unchecked: int = 0
    outstanding: list[str] = field(default_factory=list)
    # the verdict of the last step that scanned: True affected, None could not check, False
    # clean; "" when no step reported one
    last_scan: bool | str | None = ""

    @property
    def steps_done(self) -> int:
        return sum(1 for status in self.steps.values() if status in FINISHED)

    @property
    def live(self) -> bool:
        return self.mode == "live"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JournalSummary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _finding_key(finding: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(finding.get(k, "")) for k in ("severity", "kind", "path", "package", "version")
    )


def summarize(raw: bytes) -> JournalSummary:
    """Verify a journal's bytes and replay its entries (only when the chain holds: a broken
    journal says nothing about the host but that it is broken)."""
    check = verify_bytes(raw)
    summary = JournalSummary(check.ok, check.entries, check.head, check.bad_line, check.reason)
    if not check.ok:
        return summary
    steps: dict[str, str] = {}
    findings: dict[str, list[dict[str, Any]]] = {}
    remain: dict[str, bool] = {}
    unchecked: dict[str, int] = {}
    items: dict[tuple[str, str], tuple[str, str]] = {}
    skipped_for_person: dict[str, str] = {}
    for line in raw.splitlines():
        entry = json.loads(line)
        event, data, ts = entry["event"], entry["data"], entry["ts"]
        step = data.get("step") if isinstance(data.get("step"), str) else None
        if event in ("run_started", "run_resumed"):
            if event == "run_started":
                summary.started = ts
                summary.target = str(data.get("target", ""))
                summary.mode = str(data.get("mode", ""))
            summary.run_outcome, summary.run_reason, summary.ended = "unfinished", "", ""
        elif event == "run_finished":
            summary.run_outcome = str(data.get("outcome") or "unfinished")
            summary.run_reason = str(data.get("reason") or "")
            summary.ended = ts
            if isinstance(data.get("steps"), dict):  # every step of the playbook, as it ended
                steps.update({str(sid): str(status) for sid, status in data["steps"].items()})
        elif step is None:
            continue
        elif event == "step_planned":
            listed = data.get("findings")
            findings[step] = [f for f in listed if isinstance(f, dict)] if listed else []
            steps.setdefault(step, "pending")
        elif event == "step_started":
            steps[step] = "running"
        elif event == "step_finished":
            steps[step] = str(data.get("outcome", "failed"))
            remain[step] = bool(data.get("findings_remain"))
            result = data.get("result")
            count = result.get("unchecked") if isinstance(result, dict) else None
            unchecked[step] = count if isinstance(count, int) and count > 0 else 0
            verdict = scan_verdict(result)
            if verdict != "":
                summary.last_scan = verdict
        elif event == "step_skipped":
            steps[step] = "skipped"
            reason = str(data.get("reason", ""))
            if reason.startswith(PERSON_SKIP):
                skipped_for_person[step] = reason
        elif event == "step_reset":
            steps[step] = "pending"
            findings.pop(step, None)
            remain.pop(step, None)
            unchecked.pop(step, None)
        elif event == "manual_item":
            key = (step, str(data.get("item", "")))
            items[key] = (str(data.get("answer", "")), str(data.get("text", "")))
    summary.steps = steps
    seen: dict[tuple[str, ...], str] = {}
    for listed in findings.values():
        for finding in listed:
            seen.setdefault(_finding_key(finding), str(finding.get("severity", "")))
    counts: dict[str, int] = {}
    for severity in seen.values():
        if severity in SEVERITIES:
            counts[severity] = counts.get(severity, 0) + 1
    summary.findings = counts
    summary.findings_remain = any(remain.values())
    summary.unchecked = sum(unchecked.values())
    outstanding = [
        f"{step}: {text}"
        for (step, _), (answer, text) in items.items()
        if answer != "done" and steps.get(step) != "skipped"
    ]
    outstanding += [f"{step}: {reason}" for step, reason in skipped_for_person.items()]
    summary.outstanding = outstanding
    return summary


#: How `runbook fleet run` words the skip of a step that needs a person; such steps come back
#: as outstanding items of the host.
PERSON_SKIP = "needs a person"


SCAN_CHECKS = {"clean": False, "affected": True, "incomplete": None}


def scan_verdict(result: Any) -> bool | str | None:
    """What a step's result says a scan found: its `affected` (true, null: could not check,
    false: looked and found nothing), or a verification's `checks.scan`; "" when neither."""
    if not isinstance(result, dict):
        return ""
    if "affected" in result and result["affected"] in (True, False, None):
        return result["affected"]
    checks = result.get("checks")
    if isinstance(checks, dict) and checks.get("scan") in SCAN_CHECKS:
        return SCAN_CHECKS[checks["scan"]]
    return ""


def _by_severity(findings: dict[str, int], unchecked: int) -> str:
    if findings.get("compromised"):
        return "compromised"
    if findings.get("at-risk"):
        return "exposed"
    if findings.get("unknown") or unchecked:
        return "unchecked"
    return "clean"


def journal_state(summary: JournalSummary) -> str:
    """The state one run leaves its target in: by the worst finding it saw, unless it is a live
    run that completed, with no step failed or leaving findings, whose last scan (a detect or
    verify step after the changes) looked and found nothing: then `remediated`. Without such a
    scan nothing proves the findings gone."""
    verdict = _by_severity(summary.findings, summary.unchecked)
    if not summary.live or verdict in ("clean", "unchecked"):
        return verdict
    failed = any(status == "failed" for status in summary.steps.values())
    if summary.findings_remain or failed or summary.run_outcome != "completed":
        return verdict
    return "remediated" if summary.last_scan is False else verdict


def scan_state(scan: dict[str, Any]) -> str:
    """The state a `runbook.scan/v1` result gives a host."""
    counts = scan_counts(scan)
    affected = scan.get("affected")
    if affected is True:
        return "compromised" if counts.get("compromised") else "exposed"
    if affected is None or counts.get("unknown"):
        return "unchecked"
    return "clean"


def scan_counts(scan: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in scan.get("findings") or []:
        severity = finding.get("severity") if isinstance(finding, dict) else None
        if severity in SEVERITIES:
            counts[severity] = counts.get(severity, 0) + 1
    return counts


def worst(states: Iterable[str]) -> str:
    """The state that needs attention first (`clean` for none)."""
    return min(states, key=lambda s: RANK.get(s, len(STATES)), default="clean")


def findings_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in SEVERITIES if counts.get(s)]
    return ", ".join(parts) if parts else "none"


def seconds_between(start: str, end: str) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())
