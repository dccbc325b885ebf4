"""The post-incident action log: a rendering of a journal, as Markdown or JSON.

The journal is read once, as a regular file of bounded size (`journal.read_journal`). Every
entry is checked before use: one runbook could not have written (an array, `data` that is not an
object, a list of findings that is text, ...) raises `MalformedEntry` naming its line. Text
from the journal reaches Markdown with control characters escaped (`termsafe.printable`); JSON
escapes them by its own rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook.journal import MalformedEntry, json_type, numbered_entries, read_journal, verify_bytes
from runbook.redact import Redactor
from runbook.termsafe import printable
from runbook.units import human_size

SEVERITIES = ("compromised", "at-risk", "unknown", "info")


def _text(value: Any) -> str:
    """Any JSON value as text: null is empty, arrays and objects are shown as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _list(data: dict[str, Any], key: str, line: int) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedEntry(line, f"data.{key} is {json_type(value)}, expected an array")
    return value


def _objects(data: dict[str, Any], key: str, line: int) -> list[dict[str, Any]]:
    items = _list(data, key, line)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            what = f"data.{key}[{index}] is {json_type(item)}, expected an object"
            raise MalformedEntry(line, what)
    return items


def _object(data: dict[str, Any], key: str, line: int) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEntry(line, f"data.{key} is {json_type(value)}, expected an object")
    return value


def _findings(data: dict[str, Any], line: int) -> list[dict[str, Any]]:
    findings = _objects(data, "findings", line)
    for index, finding in enumerate(findings):
        if finding.get("severity") not in SEVERITIES:
            what = f"data.findings[{index}].severity is not one of {', '.join(SEVERITIES)}"
            raise MalformedEntry(line, what)
    return findings


def check_data(entry: dict[str, Any], line: int) -> None:
    """`MalformedEntry` when an entry's data has a structural field of the wrong type (what the
    report reads as a list or an object); text fields of any type are shown as text. The merged
    record (runbook/record) applies the same rule, so one journal is usable in both or neither."""
    event, data = entry["event"], entry["data"]
    if event in ("run_started", "run_resumed"):
        _object(data, "playbook", line)
    elif event == "step_planned":
        _findings(data, line)
        _list(data, "actions", line)
    elif event == "credentials_found":
        _objects(data, "credentials", line)
    elif event == "effect" and data.get("op") in ("allow_files", "allow_roots"):
        _list(data, "files" if data.get("op") == "allow_files" else "roots", line)


def summarize(path: Path) -> dict[str, Any]:
    """Everything the report shows, as plain data (this is the JSON format).

    Raises `OSError` when the journal cannot be read, `MalformedEntry` for an unusable entry.
    """
    raw = read_journal(Path(path))
    check = verify_bytes(raw)
    numbered = numbered_entries(raw)
    if not numbered and raw.strip():
        raise MalformedEntry(1, "no line is a journal entry: this is not a runbook journal")
    entries = [entry for _, entry in numbered]
    starts = [e for e in entries if e["event"] in ("run_started", "run_resumed")]
    first = starts[0]["data"] if starts else {}
    finishes = [e for e in entries if e["event"] == "run_finished"]
    timeline, findings, notes = [], {}, []
    manual: dict[tuple[str, str], dict[str, Any]] = {}
    inventory: list[dict[str, Any]] = []
    rotations: dict[tuple[str, str], dict[str, Any]] = {}
    step_status: dict[str, str] = {}
    for line, entry in numbered:
        event, data, ts = entry["event"], entry["data"], entry["ts"]
        step = _text(data.get("step"))
        row = {"time": ts, "step": step, "event": event, "action": "", "outcome": ""}
        if event in ("run_started", "run_resumed"):
            _object(data, "playbook", line)
            row |= {
                "action": f"{event.replace('_', ' ')} ({data.get('mode')})",
                "outcome": f"by {data.get('operator')}",
            }
        elif event == "step_planned":
            findings[step] = _findings(data, line)
            actions = _list(data, "actions", line)
            row |= {"action": f"planned {len(actions)} action(s), {len(findings[step])} finding(s)"}
        elif event == "step_confirmed":
            row |= {
                "action": "confirmation",
                "outcome": f"{data.get('answer')} by {data.get('by')}",
            }
        elif event == "effect":
            row |= {"action": _effect_text(data, line), "outcome": _text(data.get("outcome"))}
        elif event == "manual_item":
            manual[(step, _text(data.get("item")))] = data
            row |= {
                "action": f"checklist: {_text(data.get('text'))}",
                "outcome": _text(data.get("answer")),
            }
        elif event == "step_finished":
            step_status[step] = _text(data.get("outcome"))
            row |= {
                "action": "finished",
                "outcome": f"{data.get('outcome')}: {data.get('summary', '')}",
            }
        elif event == "step_skipped":
            step_status[step] = "skipped"
            row |= {"action": "skipped", "outcome": f"{data.get('reason')} (by {data.get('by')})"}
        elif event == "note":
            notes.append({"time": ts, "by": data.get("by"), "text": data.get("text")})
            row |= {"action": "note", "outcome": _text(data.get("text"))}
        elif event == "run_finished":
            row |= {"action": "run finished", "outcome": _text(data.get("outcome"))}
        elif event == "undo":
            row |= {
                "action": f"undo: {data.get('action')} {data.get('path')}",
                "outcome": f"{data.get('outcome')} (by {data.get('by')})",
            }
        elif event == "credentials_found":
            inventory = _objects(data, "credentials", line)
            row |= {"action": f"found {len(inventory)} credential(s)"}
        elif event in ROTATION_EVENTS:
            rotation = _rotation_row(event, data, ts)
            key = (event, rotation["old_fp"])
            rotations[key] = {**rotations.get(key, {}), **{k: v for k, v in rotation.items() if v}}
            row |= {
                "action": f"{ROTATION_EVENTS[event]} rotation: {rotation['phase']}",
                "outcome": rotation["old"],
            }
        elif event == "step_started":
            continue
        else:
            row |= {"action": event}
        timeline.append(row)
    outstanding = [
        {"step": step, "item": item, "text": data.get("text"), "answer": data.get("answer")}
        for (step, item), data in manual.items()
        if data.get("answer") != "done" and step_status.get(step) != "skipped"
    ]
    all_findings = [dict(f, step=step) for step, fs in findings.items() for f in fs]
    playbook = first.get("playbook") or {}
    return {
        "schema": "runbook.report/v1",
        "playbook": playbook,
        "operator": first.get("operator"),
        "host": first.get("host"),
        "mode": first.get("mode"),
        "target": first.get("target"),
        "tool_version": first.get("tool_version"),
        "started": entries[0]["ts"] if entries else None,
        "ended": finishes[-1]["ts"] if finishes else None,
        "outcome": finishes[-1]["data"].get("outcome") if finishes else "unfinished",
        "chain": {
            "ok": check.ok,
            "entries": check.entries,
            "head": check.head,
            "problem": None if check.ok else str(check),
        },
        "timeline": timeline,
        "findings": all_findings,
        "outstanding": outstanding,
        "notes": notes,
        "credentials": {"found": inventory, "rotations": list(rotations.values())},
    }


ROTATION_EVENTS = {"aws_rotation": "AWS key", "npm_rotation": "npm token"}


def _rotation_row(event: str, data: dict[str, Any], ts: str) -> dict[str, Any]:
    """One rotation's latest state, from its phase events (fields already redacted)."""
    return {
        "what": ROTATION_EVENTS[event],
        "old_fp": str(data.get("old_fp") or data.get("old") or ""),
        "old": str(data.get("old") or ""),
        "new": str(data.get("new") or ""),
        "owner": str(data.get("user") or data.get("arn") or ""),
        "registry": str(data.get("registry") or ""),
        "phase": str(data.get("phase") or ""),
        "time": ts,
    }


def _effect_text(data: dict[str, Any], line: int) -> str:
    op = _text(data.get("op"))
    path = _text(data.get("path"))
    prefix = "would " if data.get("dry_run") is True else ""
    if op == "write_file":
        return f"{prefix}write {path}"
    if op == "remove_tree":
        size = data.get("bytes")
        counted = isinstance(size, int | float) and not isinstance(size, bool) and size
        return f"{prefix}remove {path}" + (f" ({human_size(size)})" if counted else "")
    if op == "run":
        return f"{prefix}run `{_text(data.get('argv'))}`"
    if op == "write_secret_file":
        return f"{prefix}rewrite credential file {path} (no backup kept)"
    if op == "allow_files":
        files = ", ".join(_text(f) for f in _list(data, "files", line))
        return f"{prefix}allow changes to {files}"
    if op == "allow_roots":
        roots = ", ".join(_text(r) for r in _list(data, "roots", line))
        return f"{prefix}allow changes under {roots}"
    if op == "call":
        service, operation = _text(data.get("service")), _text(data.get("operation"))
        return f"{prefix}{service} {operation}: {_text(data.get('summary'))}"
    return f"{prefix}{op}"


def _md(text: Any) -> str:
    """Journal text for Markdown: control characters escaped, one line."""
    return printable(_text(text).replace("\n", " "))


def _cell(text: Any) -> str:
    return _md(text).replace("|", "\\|")


def to_markdown(report: dict[str, Any]) -> str:
    pb, chain = report["playbook"], report["chain"]
    status = "intact" if chain["ok"] else f"BROKEN ({chain['problem']})"
    pb_hash = _text(pb.get("sha256") or "None")[:12]
    title = pb.get("title") or pb.get("id") or "unknown playbook"
    lines = [
        f"# Action log: {_md(title)}",
        "",
        "| | |",
        "|---|---|",
        f"| Playbook | `{_cell(pb.get('id'))}` v{_cell(pb.get('version'))} "
        f"(sha256 `{_cell(pb_hash)}`) |",
        f"| Operator | {_cell(report['operator'])} |",
        f"| Host | {_cell(report['host'])} |",
        f"| Target | `{_cell(report['target'])}` |",
        f"| Mode | {_cell(report['mode'])} |",
        f"| Started (UTC) | {_cell(report['started'])} |",
        f"| Ended (UTC) | {_cell(report['ended'] or 'not finished')} |",
        f"| Outcome | {_cell(report['outcome'])} |",
        f"| Tool version | runbook {_cell(report['tool_version'])} |",
        f"| Audit chain | {_cell(status)}, {chain['entries']} entries |",
        f"| Head hash | `{_cell(chain['head'])}` |",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Step | Action | Outcome |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(r['time'])} | {_cell(r['step'])} | {_cell(r['action'])} | "
        f"{_cell(r['outcome'])} |"
        for r in report["timeline"]
    ]
    lines += ["", "## Findings", ""]
    if report["findings"]:
        counts = {s: sum(1 for f in report["findings"] if f["severity"] == s) for s in SEVERITIES}
        lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
        lines += ["", "| Severity | Kind | Where | Package | Message |", "|---|---|---|---|---|"]
        for f in sorted(report["findings"], key=lambda f: SEVERITIES.index(f["severity"])):
            where = _text(f.get("path")) + (f":{_text(f['line'])}" if f.get("line") else "")
            pkg = f.get("package")
            pkg = f"{_text(pkg)}@{_text(f.get('version'))}" if pkg else ""
            lines.append(
                f"| {f['severity']} | {_cell(f.get('kind'))} | `{_cell(where)}` | {_cell(pkg)} | "
                f"{_cell(f.get('message'))} |"
            )
    else:
        lines.append("No findings were recorded.")
    lines += _credentials_markdown(report.get("credentials") or {})
    lines += ["", "## Outstanding manual items", ""]
    if report["outstanding"]:
        lines += [
            f"- [ ] **{_md(o['step'])}**: {_md(o['text'])} ({_md(o['answer'])})"
            for o in report["outstanding"]
        ]
    else:
        lines.append("None.")
    lines += ["", "## Notes", ""]
    if report["notes"]:
        lines += [f"- {_md(n['time'])} {_md(n['by'])}: {_note(n['text'])}" for n in report["notes"]]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def _note(text: Any) -> str:
    """A note keeps its lines, indented so they stay in its list item."""
    return "\n  ".join(printable(part) for part in _text(text).split("\n"))


def _credentials_markdown(creds: dict[str, Any]) -> list[str]:
    found, rotations = creds.get("found") or [], creds.get("rotations") or []
    if not found and not rotations:
        return []
    lines = ["", "## Credentials", ""]
    if found:
        lines += ["| Type | Where | Credential | Rotation |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(c.get('type'))} | `{_cell(c.get('where'))}` | {_cell(c.get('redacted'))} "
            f"| {_cell(c.get('rotation'))} |"
            for c in found
        ]
    if rotations:
        lines += ["", "| Rotated | Owner | Old | New | Last phase | At (UTC) |"]
        lines += ["|---|---|---|---|---|---|"]
        lines += [
            f"| {_cell(r.get('what'))} | {_cell(r.get('owner'))} | {_cell(r.get('old'))} | "
            f"{_cell(r.get('new'))} | {_cell(r.get('phase'))} | {_cell(r.get('time'))} |"
            for r in rotations
        ]
    return lines


def render(path: Path, fmt: str = "md") -> str:
    """Render a journal; everything passes the redactor once more on the way out.

    Raises `OSError` (a journal that cannot be read) and `MalformedEntry`."""
    report = Redactor()(summarize(Path(path)))
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    return to_markdown(report)
