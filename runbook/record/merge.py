"""Many verified runs, one record: a timeline, a summary per host and target, what is open.

The record is plain data (the `json` format, schema `runbook.record/v1`); every other format
renders it. Dry runs are kept apart from live runs: they never count as remediation and their
events are not in the main timeline, but what they observed (findings) is reported. A host and
target whose only journal could not be used is shown as unknown, never as clean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runbook import __version__
from runbook.record.events import DONE_PHASES, Scrub, run_events, text_of
from runbook.record.load import Collection, Problem, Run
from runbook.report import ROTATION_EVENTS, SEVERITIES
from runbook.runstate import last_run_outcome

SCHEMA = "runbook.record/v1"


@dataclass
class StepFacts:
    """A step's latest state in one run, replayed from its entries."""

    status: str = "pending"
    summary: str = ""
    attempts: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    findings_remain: bool = False
    unchecked: int = 0
    spans: list[dict[str, Any]] = field(default_factory=list)


_text = text_of


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 dry run`, `2 dry runs`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def journals_line(record: dict[str, Any]) -> str:
    """What was read, in one line (the header of md and html)."""
    journals = record["journals"]
    return (
        f"{journals['read']} read: {counted(journals['runs'], 'live run')}, "
        f"{counted(journals['dry_runs'], 'dry run')}, "
        f"{counted(journals['copies'], 'earlier copy', 'earlier copies')} of a run, "
        f"{journals['unusable']} not usable"
    )


def replay(run: Run) -> dict[str, StepFacts]:
    """Each step's state and attempts (as spans of time), from the journal alone."""
    steps: dict[str, StepFacts] = {}
    for entry in run.entries:
        data, name, ts = entry["data"], entry["event"], entry["ts"]
        step = data.get("step")
        if not isinstance(step, str) or not step:
            continue
        facts = steps.setdefault(step, StepFacts())
        if name == "step_planned":
            findings = data.get("findings")
            facts.findings = (
                [f for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
            )
        elif name == "step_started":
            facts.status = "running"
            facts.attempts += 1
            facts.spans.append({"start": ts, "end": None, "outcome": "unfinished"})
        elif name == "step_finished":
            facts.status = _text(data.get("outcome")) or "unknown"
            facts.summary = _text(data.get("summary"))
            facts.findings_remain = bool(data.get("findings_remain"))
            result = data.get("result")
            count = result.get("unchecked") if isinstance(result, dict) else None
            facts.unchecked = count if isinstance(count, int) and count > 0 else 0
            if facts.spans and facts.spans[-1]["end"] is None:
                facts.spans[-1] |= {"end": ts, "outcome": facts.status}
            else:
                facts.spans.append({"start": ts, "end": ts, "outcome": facts.status})
        elif name == "step_skipped":
            facts.status = "skipped"
            facts.summary = _text(data.get("reason"))
            facts.spans.append({"start": ts, "end": ts, "outcome": "skipped"})
        elif name == "step_reset":
            steps[step] = StepFacts(attempts=facts.attempts, spans=facts.spans)
    last = run.last
    for facts in steps.values():
        for span in facts.spans:
            if span["end"] is None:
                span["end"] = last
    return steps


def _finished(run: Run) -> tuple[str, str | None, str]:
    """(outcome, ended, reason) of the run's latest session; `unfinished` when it never ended."""
    outcome = last_run_outcome(run.entries)
    if outcome is None:
        return "unfinished", None, "the last session never finished (a crash, or still running)"
    last = next(e for e in reversed(run.entries) if e["event"] == "run_finished")
    return _text(outcome), last["ts"], _text(last["data"].get("reason"))


@dataclass
class RunFacts:
    """Everything the record needs from one run."""

    run: Run
    steps: dict[str, StepFacts]
    events: list[dict[str, Any]]
    outcome: str
    ended: str | None
    reason: str
    operators: list[str]
    sessions: int
    findings: list[dict[str, Any]]
    credentials: list[dict[str, Any]]
    rotations: list[dict[str, Any]]
    items: list[dict[str, Any]]  # every manual_item answer, in order
    notes: list[dict[str, Any]]


def facts_of(run: Run, scrub: Scrub | None = None) -> RunFacts:
    """Everything the record needs from one run, in one pass over its entries."""
    steps = replay(run)
    events = run_events(run, scrub)
    outcome, ended, reason = _finished(run)
    operators: list[str] = []
    sessions = 0
    credentials: list[dict[str, Any]] = []
    rotations: dict[tuple[str, str], dict[str, Any]] = {}
    items, notes = [], []
    for entry in run.entries:
        name, data, ts = entry["event"], entry["data"], entry["ts"]
        if name in ("run_started", "run_resumed"):
            sessions += 1
            who = _text(data.get("operator"))
            if who and who not in operators:
                operators.append(who)
        elif name == "credentials_found" and isinstance(data.get("credentials"), list):
            credentials = [c for c in data["credentials"] if isinstance(c, dict)]
        elif name in ROTATION_EVENTS:
            old = _text(data.get("old_fp") or data.get("old"))
            row = {
                "what": ROTATION_EVENTS[name],
                "old": _text(data.get("old")),
                "new": _text(data.get("new")),
                "owner": _text(data.get("user") or data.get("arn")),
                "registry": _text(data.get("registry")),
                "phase": _text(data.get("phase")),
                "time": ts,
            }
            key = (name, old)
            rotations[key] = {**rotations.get(key, {}), **{k: v for k, v in row.items() if v}}
        elif name == "manual_item":
            items.append(
                {
                    "time": ts,
                    "step": _text(data.get("step")),
                    "item": _text(data.get("item")),
                    "text": _text(data.get("text")),
                    "answer": _text(data.get("answer")),
                    "by": _text(data.get("by")),
                }
            )
        elif name in ("note", "observation", "inject_fired"):
            inject = name == "inject_fired"
            notes.append(
                {
                    "time": ts,
                    "by": _text(data.get("by")),
                    "text": _text(data.get("title") if inject else data.get("text")),
                    "kind": "inject" if inject else "note",
                }
            )
    findings = [dict(f, step=step) for step, facts in steps.items() for f in facts.findings]
    return RunFacts(
        run,
        steps,
        events,
        outcome,
        ended,
        reason,
        operators,
        sessions,
        findings,
        credentials,
        list(rotations.values()),
        items,
        notes,
    )


# -- per host and target ------------------------------------------------------------------------
def exposure(facts: Iterable[RunFacts]) -> str:
    """compromised, exposed (at risk), unknown (something could not be checked), clean (a run
    completed and saw none of these), or not checked."""
    facts = list(facts)
    severities = {f.get("severity") for rf in facts for f in rf.findings}
    if "compromised" in severities:
        return "compromised"
    if "at-risk" in severities:
        return "exposed"
    if "unknown" in severities or any(s.unchecked for rf in facts for s in rf.steps.values()):
        return "unknown"
    if any(rf.outcome == "completed" for rf in facts):
        return "clean"
    return "not checked"


def remediated(latest: RunFacts | None) -> str:
    """What the latest live run says about remediation."""
    if latest is None:
        return "no: dry run only"
    failed = [s for s, f in latest.steps.items() if f.status == "failed"]
    if latest.outcome != "completed":
        return f"no: run {latest.outcome}" + (f" ({', '.join(failed)} failed)" if failed else "")
    if failed:
        return f"partly: {', '.join(failed)} failed"
    if any(f.findings_remain for f in latest.steps.values()):
        return "partly: findings remain"
    if any(f.status == "outstanding" for f in latest.steps.values()):
        return "partly: checklist items open"
    return "yes"


def _open_items(live: list[RunFacts]) -> list[dict[str, Any]]:
    """Manual items whose latest answer, across every live run of a host and target, is not
    `done` (a step skipped later in the same run drops its items)."""
    latest: dict[tuple[str, str, str, str], tuple[dict[str, Any], RunFacts]] = {}
    for rf in live:
        for item in rf.items:
            key = (rf.run.host, rf.run.target, item["step"], item["item"])
            if key not in latest or item["time"] >= latest[key][0]["time"]:
                latest[key] = (item, rf)
    out = []
    for (_, _, step, _), (item, rf) in sorted(latest.items(), key=lambda kv: kv[1][0]["time"]):
        facts = rf.steps.get(step)
        if item["answer"] == "done" or (facts is not None and facts.status == "skipped"):
            continue
        out.append(
            {
                **item,
                "host": rf.run.host,
                "target": rf.run.target,
                "run": rf.run.short_id,
                "journal": rf.run.journal,
            }
        )
    return out


def _summary_row(
    host: str, target: str, runs: list[RunFacts], problems: list[Problem], open_items: int
) -> dict[str, Any]:
    live = [rf for rf in runs if not rf.run.dry_run]
    latest = max(live, key=lambda rf: (rf.run.last, rf.run.journal)) if live else None
    rotations = [r for rf in live for r in rf.rotations]
    found = next((rf.credentials for rf in reversed(live) if rf.credentials), [])
    row: dict[str, Any] = {
        "host": host,
        "target": target,
        "exposure": exposure(runs) if runs else "unknown",
        "remediated": remediated(latest) if runs else "unknown: no usable journal",
        "credentials": {
            "found": len(found),
            "rotated": sum(1 for r in rotations if r.get("phase") in DONE_PHASES),
            "rotations": len(rotations),
        },
        "outstanding": open_items,
        "live_runs": len(live),
        "dry_runs": len(runs) - len(live),
        "last_run": None,
        "head": None,
        "problems": len([p for p in problems if p.blocking]),
    }
    if latest is not None:
        row["last_run"] = {
            "run": latest.run.short_id,
            "outcome": latest.outcome,
            "started": latest.run.started,
            "ended": latest.ended,
            "journal": latest.run.journal,
        }
        row["head"] = latest.run.head
    if problems and row["exposure"] == "clean":
        row["exposure"] = "unknown"  # an unusable journal of this host and target: fail closed
    return row


# -- the record ---------------------------------------------------------------------------------
def _run_row(rf: RunFacts) -> dict[str, Any]:
    run, pb = rf.run, rf.run.playbook
    signature = None
    if run.signature is not None:
        check = run.signature
        signature = {
            "status": check.status,
            "signer": check.signer or None,
            "key": check.key,
            "head": check.head,
            "entries": check.entries,
            "coverage": check.coverage,
            "file": run.signature_file,
        }
    failed = [s for s, f in rf.steps.items() if f.status == "failed"]
    return {
        "run": run.short_id,
        "id": run.id,
        "journal": run.journal,
        "copies": run.copies,
        "host": run.host,
        "target": run.target,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "playbook": {k: pb.get(k) for k in ("id", "title", "version", "sha256")},
        "operators": rf.operators,
        "sessions": rf.sessions,
        "started": run.started,
        "ended": rf.ended,
        "outcome": rf.outcome,
        "reason": rf.reason,
        "failed_steps": failed,
        "tool_version": _text(run.start.get("tool_version")),
        "newer": run.newer,
        "chain": {"ok": True, "entries": len(run.entries), "head": run.head},
        "signature": signature,
    }


def _strip(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "data"}


def _order(event: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (event["end_ts"], event["host"], event["target"], event["run"], event["seq"])


@dataclass
class Record:
    """The merged record: `data` (redacted; the `json` format without its timelines), `events`
    (every run's, in time order, texts redacted; each keeps its entry's `data`, which the
    exports that carry it redact) and each run's `facts`."""

    data: dict[str, Any]
    events: list[dict[str, Any]]
    facts: list[RunFacts]

    def live_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if not e["dry_run"]]

    def dry_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["dry_run"]]

    def as_json(self) -> dict[str, Any]:
        """The whole record, as the `json` format writes it."""
        return {
            **self.data,
            "timeline": [_strip(e) for e in self.live_events()],
            "dry_run_timeline": [_strip(e) for e in self.dry_events()],
        }


def build(collection: Collection, incident: str | None = None) -> Record:
    """Merge the collection's runs into one record."""
    scrub = Scrub()
    facts = [facts_of(run, scrub) for run in collection.runs]
    live = [rf for rf in facts if not rf.run.dry_run]
    dry = [rf for rf in facts if rf.run.dry_run]
    places: dict[tuple[str, str], list[RunFacts]] = {}
    for rf in facts:
        places.setdefault((rf.run.host, rf.run.target), []).append(rf)
    place_problems: dict[tuple[str, str], list[Problem]] = {}
    for problem in collection.problems:
        if problem.host is not None or problem.target is not None:
            key = (problem.host or "unknown host", problem.target or "unknown target")
            place_problems.setdefault(key, []).append(problem)
            places.setdefault(key, [])
    outstanding = _open_items(live)
    open_count: dict[tuple[str, str], int] = {}
    for item in outstanding:
        key = (item["host"], item["target"])
        open_count[key] = open_count.get(key, 0) + 1
    summary = [
        _summary_row(
            host,
            target,
            places[(host, target)],
            place_problems.get((host, target), []),
            open_count.get((host, target), 0),
        )
        for host, target in sorted(places)
    ]
    events = sorted((e for rf in facts for e in rf.events), key=_order)
    playbooks: dict[str, dict[str, Any]] = {}
    for rf in facts:
        pb = rf.run.playbook
        playbooks.setdefault(
            f"{pb.get('id')}@{pb.get('sha256')}",
            {k: pb.get(k) for k in ("id", "title", "version", "sha256")},
        )
    titles = sorted({_text(p.get("title")) for p in playbooks.values() if p.get("title")})
    times = [rf.run.started for rf in facts] + [rf.run.last for rf in facts]
    findings = [
        {
            **f,
            "host": rf.run.host,
            "target": rf.run.target,
            "run": rf.run.short_id,
            "dry_run": rf.run.dry_run,
        }
        for rf in facts
        for f in rf.findings
    ]
    findings.sort(
        key=lambda f: (
            SEVERITIES.index(f["severity"]) if f.get("severity") in SEVERITIES else 9,
            f["host"],
            f["target"],
            _text(f.get("path")),
        )
    )
    data = {
        "schema": SCHEMA,
        "incident": incident,
        "title": incident or (", ".join(titles) if titles else "Action log"),
        "tool_version": __version__,
        "journals": {
            "read": collection.read,
            "runs": len(live),
            "dry_runs": len(dry),
            "copies": sum(len(rf.run.copies) for rf in facts),
            "unusable": sum(1 for p in collection.problems if p.blocking),
        },
        "period": {"start": min(times), "end": max(times)} if times else None,
        "playbooks": list(playbooks.values()),
        "problems": [p.as_dict() for p in collection.problems],
        "summary": summary,
        "runs": [_run_row(rf) for rf in live],
        "dry_runs": [_run_row(rf) for rf in dry],
        "findings": findings,
        "outstanding": outstanding,
        "credentials": {
            "found": [
                {**c, "host": rf.run.host, "target": rf.run.target, "run": rf.run.short_id}
                for rf in live
                for c in rf.credentials
            ],
            "rotations": [
                {**r, "host": rf.run.host, "target": rf.run.target, "run": rf.run.short_id}
                for rf in live
                for r in rf.rotations
            ],
        },
        "notes": sorted(
            (
                {**n, "host": rf.run.host, "target": rf.run.target, "run": rf.run.short_id}
                for rf in facts
                for n in rf.notes
            ),
            key=lambda n: n["time"],
        ),
    }
    return Record(scrub.tree(data), events, facts)
