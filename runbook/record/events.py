"""A run's journal entries as timeline events: what happened, where, by whom, of which type.

One event per entry, except `step_started` (it opens the span its `step_finished` closes) and a
`step_planned` without findings (its actions show up as the effects that follow). Every event
keeps its entry's hash (the idempotency key of the timeline exports) and a reference to the
entry's data (the `details` of the exports; never copied, so a large record stays small).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from runbook.record.load import Run
from runbook.redact import Redactor
from runbook.report import ROTATION_EVENTS, SEVERITIES
from runbook.units import human_size

#: Event types of the timeline exports.
TYPES = ("command", "edit", "delete", "checklist", "decision", "note", "finding")
DONE_PHASES = frozenset({"done", "revoked"})  # a rotation's last phase when it completed
MAX_REFS = 20


class Scrub:
    """The redactor once more on the way out, remembering each string it has seen: a record
    repeats the same hosts, targets, steps and paths thousands of times."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        done = self.seen.get(text)
        if done is None:
            done = self.seen[text] = self.redactor.text(text)
        return done

    def tree(self, data: Any) -> Any:
        """Every string inside dicts and lists redacted (as `Redactor.__call__`)."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {key: self.tree(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self.tree(item) for item in data]
        return data


TEXT_FIELDS = ("host", "target", "operator", "step", "title", "description", "outcome")


def text_of(value: Any) -> str:
    """Any JSON value as text: null is empty, arrays and objects are shown as JSON."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


_text = text_of


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def severity_counts(findings: list[dict[str, Any]]) -> str:
    counts = {s: 0 for s in SEVERITIES}
    other = 0
    for finding in findings:
        severity = finding.get("severity") if isinstance(finding, dict) else None
        if severity in counts:
            counts[severity] += 1
        else:
            other += 1
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return ", ".join(parts + ([f"{other} other"] if other else []))


def finding_where(finding: dict[str, Any]) -> str:
    where = _text(finding.get("path"))
    if finding.get("line"):
        where += f":{finding['line']}"
    return where


def _effect(data: dict[str, Any]) -> tuple[str, str, list[dict[str, str]]]:
    """(type, title, refs) of an `effect` entry."""
    op = _text(data.get("op"))
    would = "would " if data.get("dry_run") else ""
    path = _text(data.get("path"))
    refs = [{"type": "file", "value": path}] if path else []
    if data.get("backup"):
        refs.append({"type": "backup", "value": _text(data["backup"])})
    if op == "write_file":
        return "edit", f"{would}write {path}", refs
    if op == "write_secret_file":
        return "edit", f"{would}rewrite credential file {path} (no backup kept)", refs
    if op == "remove_tree":
        size = data.get("bytes")
        shown = f" ({human_size(size)})" if isinstance(size, int) and size else ""
        return "delete", f"{would}remove {path}{shown}", refs
    if op == "run":
        cwd = _text(data.get("cwd"))
        return (
            "command",
            f"{would}run `{_text(data.get('argv'))}`",
            ([{"type": "directory", "value": cwd}] if cwd else []),
        )
    if op == "call":
        title = f"{would}{_text(data.get('service'))} {_text(data.get('operation'))}"
        summary = _text(data.get("summary"))
        return "command", title + (f": {summary}" if summary else ""), refs
    if op in ("allow_files", "allow_roots"):
        listed = data.get("files") if op == "allow_files" else data.get("roots")
        names = [_text(x) for x in listed] if isinstance(listed, list) else []
        return (
            "decision",
            f"{would}allow changes to {', '.join(names)}",
            [{"type": "file", "value": n} for n in names[:MAX_REFS]],
        )
    return "command", f"{would}{op}", refs


def _effect_outcome(data: dict[str, Any]) -> str:
    outcome = _text(data.get("outcome"))
    parts = [outcome]
    if data.get("returncode") not in (None, 0):
        parts.append(f"exit {data['returncode']}")
    if data.get("error"):
        parts.append(_text(data["error"]))
    if data.get("reason"):
        parts.append(_text(data["reason"]))
    return "; ".join(p for p in parts if p)


class RunEvents:
    """Walks one run's entries, keeping the operator in charge and each step's open span."""

    def __init__(self, run: Run, scrub: Scrub | None = None) -> None:
        self.run = run
        self.scrub = scrub or Scrub()
        self.operator = _text(run.start.get("operator")) or "unknown"
        self.opened: dict[str, str] = {}  # step -> ts of its latest step_started
        self.checklists: set[str] = set()  # steps that asked checklist items in this run

    def base(self, entry: dict[str, Any], step: str) -> dict[str, Any]:
        run = self.run
        return {
            "ts": entry["ts"],
            "end_ts": entry["ts"],
            "host": run.host,
            "target": run.target,
            "operator": self.operator,
            "run": run.short_id,
            "journal": run.journal,
            "dry_run": run.dry_run,
            "seq": entry["seq"],
            "hash": entry["hash"],
            "event": entry["event"],
            "step": step,
            "type": "note",
            "title": "",
            "description": "",
            "outcome": "",
            "marker": "",
            "refs": [],
            "data": entry["data"],
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        scrub = self.scrub
        for entry in self.run.entries:
            event = self.event(entry)
            if event is not None:
                for key in TEXT_FIELDS:
                    event[key] = scrub(event[key])
                for ref in event["refs"]:
                    ref["value"] = scrub(ref["value"])
                yield event

    def event(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        name, data = entry["event"], entry["data"]
        step = _text(data.get("step"))
        out = self.base(entry, step)
        label = f"{step}: " if step else ""
        if name in ("run_started", "run_resumed"):
            self.operator = _text(data.get("operator")) or self.operator
            out["operator"] = self.operator
            mode = "dry run" if data.get("mode") == "dry-run" else _text(data.get("mode"))
            playbook = data.get("playbook") if isinstance(data.get("playbook"), dict) else {}
            verb = "started" if name == "run_started" else "resumed"
            out["title"] = f"Run {verb} ({mode})"
            about = f"{_text(playbook.get('id'))} v{_text(playbook.get('version'))}"
            out["description"] = (
                f"{about} on {_text(data.get('target'))} by {self.operator} "
                f"(runbook {_text(data.get('tool_version'))})"
            )
            if name == "run_resumed" and isinstance(data.get("finished_steps"), list):
                out["description"] += f"; {len(data['finished_steps'])} step(s) already finished"
        elif name == "run_finished":
            out["title"] = f"Run finished: {_text(data.get('outcome'))}"
            out["outcome"] = _text(data.get("outcome"))
            out["description"] = _text(data.get("reason"))
        elif name == "step_started":
            self.opened[step] = entry["ts"]
            return None
        elif name == "step_planned":
            findings = data.get("findings")
            if not isinstance(findings, list) or not findings:
                return None
            out["type"] = "finding"
            out["title"] = f"{label}{len(findings)} finding(s): {severity_counts(findings)}"
            shown = [f for f in findings if isinstance(f, dict)][:5]
            out["description"] = "; ".join(
                _short(f"{_text(f.get('severity'))} {finding_where(f)}: {_text(f.get('message'))}")
                for f in shown
            ) + ("; …" if len(findings) > len(shown) else "")
            out["refs"] = [
                {"type": "file", "value": _text(f.get("path"))}
                for f in findings[:MAX_REFS]
                if isinstance(f, dict) and f.get("path")
            ]
        elif name == "step_confirmed":
            out["type"] = "decision"
            answer, by = _text(data.get("answer")), _text(data.get("by"))
            out["title"] = f"{label}confirmation: {answer}"
            out["description"] = f"{answer} by {by}" + (
                f" ({_text(data['reason'])})" if data.get("reason") else ""
            )
            out["operator"] = by or self.operator
            out["outcome"] = answer
        elif name == "step_skipped":
            out["type"] = "decision"
            out["title"] = f"{label}skipped"
            out["description"] = f"{_text(data.get('reason'))} (by {_text(data.get('by'))})"
            out["outcome"] = "skipped"
        elif name == "step_reset":
            out["type"] = "decision"
            out["title"] = f"{label}reset"
            out["description"] = _text(data.get("reason"))
        elif name == "step_finished":
            out["type"] = "checklist" if step in self.checklists else "command"
            outcome = _text(data.get("outcome"))
            out["title"] = f"{label}{outcome}"
            out["description"] = _text(data.get("summary"))
            out["outcome"] = outcome
            out["ts"] = self.opened.pop(step, entry["ts"])
            result = data.get("result")
            if isinstance(result, dict) and result.get("commit"):
                out["refs"] = [{"type": "commit", "value": _text(result["commit"])}]
                if result.get("branch"):
                    out["refs"].append({"type": "branch", "value": _text(result["branch"])})
        elif name == "effect":
            kind, title, refs = _effect(data)
            out["type"], out["title"], out["refs"] = kind, label + title, refs
            out["outcome"] = _text(data.get("outcome"))
            out["description"] = _effect_outcome(data)
        elif name == "manual_item":
            self.checklists.add(step)
            answer = _text(data.get("answer"))
            out["type"] = "checklist"
            out["title"] = f"{label}{_text(data.get('text'))}"
            out["description"] = f"{answer} (by {_text(data.get('by')) or self.operator})"
            out["operator"] = _text(data.get("by")) or self.operator
            out["outcome"] = answer
        elif name in ("note", "observation"):  # an observation: noted during an exercise
            out["marker"] = "note"
            out["title"] = "Note" if name == "note" else "Observation"
            out["description"] = _text(data.get("text"))
            out["operator"] = _text(data.get("by")) or self.operator
        elif name in ("inject_fired", "inject_skipped"):  # exercises
            what = _text(data.get("title")) or _text(data.get("inject"))
            fired = name == "inject_fired"
            out["marker"] = "inject" if fired else ""
            out["title"] = f"Inject{'' if fired else ' skipped'}: {what}"
            evidence = data.get("evidence") if isinstance(data.get("evidence"), list) else []
            out["description"] = ", ".join(_text(p) for p in evidence)
            out["operator"] = _text(data.get("by")) or self.operator
            out["refs"] = [{"type": "file", "value": _text(p)} for p in evidence[:MAX_REFS]]
        elif name == "decision":  # an exercise's decision, with its owner
            out["type"] = "decision"
            out["title"] = f"Decision: {_text(data.get('title'))}"
            out["description"] = _text(data.get("decision")) + (
                f" ({_text(data['rationale'])})" if data.get("rationale") else ""
            )
            out["operator"] = _text(data.get("owner")) or _text(data.get("role")) or self.operator
        elif name == "undo":
            action = _text(data.get("action"))
            out["type"] = "delete" if action == "remove" else "edit"
            out["title"] = f"undo: {action} {_text(data.get('path'))}"
            out["description"] = f"{_text(data.get('outcome'))}: {_text(data.get('reason'))}"
            out["outcome"] = _text(data.get("outcome"))
            out["operator"] = _text(data.get("by")) or self.operator
            out["refs"] = [{"type": "file", "value": _text(data.get("path"))}]
        elif name == "credentials_found":
            found = data.get("credentials")
            count = len(found) if isinstance(found, list) else 0
            out["type"] = "finding"
            out["title"] = f"{label}found {count} credential(s)"
            out["description"] = ", ".join(
                f"{_text(c.get('type'))} in {_text(c.get('where'))}"
                for c in (found if isinstance(found, list) else [])[:5]
                if isinstance(c, dict)
            )
        elif name in ROTATION_EVENTS:
            phase = _text(data.get("phase"))
            out["type"] = "command"
            out["title"] = f"{label}{ROTATION_EVENTS[name]} rotation: {phase}"
            old, new = _text(data.get("old")), _text(data.get("new"))
            out["description"] = old + (f" -> {new}" if new else "")
            out["outcome"] = phase
        elif name == "journal_repaired":
            out["title"] = "Journal repaired"
            out["description"] = (
                f"a torn last line ({_text(data.get('torn_bytes'))} bytes) was moved aside"
            )
        elif name == "preflight_warning":
            out["title"] = f"Preflight warning ({_text(data.get('uses'))})"
            out["description"] = _text(data.get("warning"))
        else:
            out["title"] = label + name.replace("_", " ")
        return out


def run_events(run: Run, scrub: Scrub | None = None) -> list[dict[str, Any]]:
    """Every timeline event of one run, in journal order, its texts redacted (`data` is the
    entry's own, not redacted again here: the exports that carry it redact it)."""
    return list(RunEvents(run, scrub))
