"""The post-incident action log: a rendering of a journal, as Markdown or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook.journal import read_entries, verify
from runbook.redact import Redactor
from runbook.units import human_size

SEVERITIES = ("compromised", "at-risk", "unknown", "info")


def summarize(path: Path) -> dict[str, Any]:
    """Everything the report shows, as plain data (this is the JSON format)."""
    entries = read_entries(path)
    check = verify(path)
    starts = [e for e in entries if e["event"] in ("run_started", "run_resumed")]
    first = starts[0]["data"] if starts else {}
    finishes = [e for e in entries if e["event"] == "run_finished"]
    timeline, findings, notes = [], {}, []
    manual: dict[tuple[str, str], dict[str, Any]] = {}
    inventory: list[dict[str, Any]] = []
    rotations: dict[tuple[str, str], dict[str, Any]] = {}
    step_status: dict[str, str] = {}
    for entry in entries:
        event, data, ts = entry["event"], entry.get("data", {}), entry["ts"]
        step = data.get("step", "")
        row = {"time": ts, "step": step, "event": event, "action": "", "outcome": ""}
        if event in ("run_started", "run_resumed"):
            row |= {
                "action": f"{event.replace('_', ' ')} ({data.get('mode')})",
                "outcome": f"by {data.get('operator')}",
            }
        elif event == "step_planned":
            findings[step] = data.get("findings", [])
            actions = data.get("actions", [])
            row |= {"action": f"planned {len(actions)} action(s), {len(findings[step])} finding(s)"}
        elif event == "step_confirmed":
            row |= {
                "action": "confirmation",
                "outcome": f"{data.get('answer')} by {data.get('by')}",
            }
        elif event == "effect":
            row |= {"action": _effect_text(data), "outcome": data.get("outcome", "")}
        elif event == "manual_item":
            manual[(step, data.get("item", ""))] = data
            row |= {"action": f"checklist: {data.get('text')}", "outcome": data.get("answer", "")}
        elif event == "step_finished":
            step_status[step] = data.get("outcome", "")
            row |= {
                "action": "finished",
                "outcome": f"{data.get('outcome')}: {data.get('summary', '')}",
            }
        elif event == "step_skipped":
            step_status[step] = "skipped"
            row |= {"action": "skipped", "outcome": f"{data.get('reason')} (by {data.get('by')})"}
        elif event == "note":
            notes.append({"time": ts, "by": data.get("by"), "text": data.get("text")})
            row |= {"action": "note", "outcome": data.get("text", "")}
        elif event == "run_finished":
            row |= {"action": "run finished", "outcome": data.get("outcome", "")}
        elif event == "undo":
            row |= {
                "action": f"undo: {data.get('action')} {data.get('path')}",
                "outcome": f"{data.get('outcome')} (by {data.get('by')})",
            }
        elif event == "credentials_found":
            inventory = data.get("credentials", [])
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
    playbook = first.get("playbook", {})
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


def _effect_text(data: dict[str, Any]) -> str:
    op = data.get("op", "")
    prefix = "would " if data.get("dry_run") else ""
    if op == "write_file":
        return f"{prefix}write {data.get('path')}"
    if op == "remove_tree":
        size = data.get("bytes")
        return f"{prefix}remove {data.get('path')}" + (f" ({human_size(size)})" if size else "")
    if op == "run":
        return f"{prefix}run `{data.get('argv')}`"
    if op == "write_secret_file":
        return f"{prefix}rewrite credential file {data.get('path')} (no backup kept)"
    if op == "allow_files":
        return f"{prefix}allow changes to {', '.join(data.get('files', []))}"
    if op == "allow_roots":
        return f"{prefix}allow changes under {', '.join(data.get('roots', []))}"
    if op == "call":
        return f"{prefix}{data.get('service')} {data.get('operation')}: {data.get('summary', '')}"
    return f"{prefix}{op}"


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    pb, chain = report["playbook"], report["chain"]
    status = "intact" if chain["ok"] else f"BROKEN ({chain['problem']})"
    pb_hash = str(pb.get("sha256"))[:12]
    lines = [
        f"# Action log: {pb.get('title', pb.get('id', 'unknown playbook'))}",
        "",
        "| | |",
        "|---|---|",
        f"| Playbook | `{pb.get('id')}` v{pb.get('version')} (sha256 `{pb_hash}`) |",
        f"| Operator | {_cell(report['operator'])} |",
        f"| Host | {_cell(report['host'])} |",
        f"| Target | `{_cell(report['target'])}` |",
        f"| Mode | {_cell(report['mode'])} |",
        f"| Started (UTC) | {report['started']} |",
        f"| Ended (UTC) | {report['ended'] or 'not finished'} |",
        f"| Outcome | {report['outcome']} |",
        f"| Tool version | runbook {report['tool_version']} |",
        f"| Audit chain | {status}, {chain['entries']} entries |",
        f"| Head hash | `{chain['head']}` |",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Step | Action | Outcome |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['time']} | {_cell(r['step'])} | {_cell(r['action'])} | {_cell(r['outcome'])} |"
        for r in report["timeline"]
    ]
    lines += ["", "## Findings", ""]
    if report["findings"]:
        counts = {s: sum(1 for f in report["findings"] if f["severity"] == s) for s in SEVERITIES}
        lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
        lines += ["", "| Severity | Kind | Where | Package | Message |", "|---|---|---|---|---|"]
        for f in sorted(report["findings"], key=lambda f: SEVERITIES.index(f["severity"])):
            where = f.get("path", "") + (f":{f['line']}" if f.get("line") else "")
            pkg = f"{f.get('package', '')}@{f.get('version', '')}" if f.get("package") else ""
            lines.append(
                f"| {f['severity']} | {f['kind']} | `{_cell(where)}` | {_cell(pkg)} | "
                f"{_cell(f.get('message'))} |"
            )
    else:
        lines.append("No findings were recorded.")
    lines += _credentials_markdown(report.get("credentials") or {})
    lines += ["", "## Outstanding manual items", ""]
    if report["outstanding"]:
        lines += [
            f"- [ ] **{o['step']}**: {o['text']} ({o['answer']})" for o in report["outstanding"]
        ]
    else:
        lines.append("None.")
    lines += ["", "## Notes", ""]
    if report["notes"]:
        lines += [f"- {n['time']} {n['by']}: {n['text']}" for n in report["notes"]]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


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
            f"| {r['what']} | {_cell(r.get('owner'))} | {_cell(r.get('old'))} | "
            f"{_cell(r.get('new'))} | {_cell(r.get('phase'))} | {r.get('time')} |"
            for r in rotations
        ]
    return lines


def render(path: Path, fmt: str = "md") -> str:
    """Render a journal; everything passes the redactor once more on the way out."""
    report = Redactor()(summarize(Path(path)))
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    return to_markdown(report)
