"""The record as Markdown: journals that could not be used first, then the summary per host and
target, the runs, the dry runs, one timeline, findings, credentials, open items and notes.

Text that came from journals (paths, messages, names) is shown with control characters escaped
(`runbook.termsafe.printable`), `|` escaped for tables and `<` as `&lt;` (no HTML reaches a
Markdown viewer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runbook.record.events import finding_where
from runbook.record.merge import Record, counted, journals_line
from runbook.termsafe import printable


def cell(value: Any) -> str:
    """A table cell: one line, escaped."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable() and not any(c in text for c in "\\|<"):
        return text  # the common case, checked in C
    text = printable(text)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def code(value: Any) -> str:
    """A code span that survives backticks in the text."""
    text = cell(value)
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def short(digest: Any, n: int = 12) -> str:
    return code(str(digest)[:n]) if digest else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _signature(sig: dict[str, Any] | None) -> str:
    if not sig:
        return "no"
    who = sig.get("signer") or "signer not checked"
    text = f"{who} ({sig.get('key')})"
    if sig.get("coverage") == "prefix":
        text += f", first {sig.get('entries')} entries"
    return cell(text)


def _credentials(row: dict[str, Any]) -> str:
    creds = row["credentials"]
    if not creds["found"] and not creds["rotations"]:
        return "none found"
    return f"{creds['found']} found, {creds['rotated']} rotated"


def _last_run(row: dict[str, Any]) -> str:
    last = row.get("last_run")
    if not last:
        return "none (live)"
    when = last.get("ended") or last.get("started")
    return f"{cell(last['outcome'])} ({when}, run {code(last['run'])})"


def _header(record: dict[str, Any]) -> list[str]:
    period = record.get("period") or {}
    playbooks = ", ".join(
        f"{code(p.get('id'))} v{cell(p.get('version'))} (sha256 {short(p.get('sha256'))})"
        for p in record["playbooks"]
    )
    read = journals_line(record)
    rows = [
        ["Incident", cell(record.get("incident") or "(not named)")],
        ["Playbooks", playbooks or "none"],
        ["Journals", read],
        [
            "Period (UTC)",
            f"{period.get('start')} to {period.get('end')}" if period else "no run",
        ],
        ["Tool version", f"runbook {cell(record['tool_version'])}"],
    ]
    return [f"# Incident record: {cell(record['title'])}", "", *_table(["", ""], rows)]


def _problems(record: dict[str, Any]) -> list[str]:
    problems = record["problems"]
    if not problems:
        return []
    blocking = [p for p in problems if not p["used"]]
    lines = ["", "## Journals that could not be used" if blocking else "## Warnings", ""]
    if blocking:
        lines.append(
            f"**{counted(len(blocking), 'journal was', 'journals were')} NOT merged** into this "
            "record; what they hold "
            "is unknown. Hosts and targets they name are shown as unknown below."
        )
        lines.append("")
    rows = [
        [
            code(p["journal"]) + (f":{p['line']}" if p.get("line") else ""),
            "no" if not p["used"] else "yes",
            cell(p["kind"]),
            cell(p["reason"]),
            cell(p.get("host") or ""),
            code(p.get("target") or ""),
        ]
        for p in problems
    ]
    return lines + _table(["Journal", "Used", "Problem", "Reason", "Host", "Target"], rows)


def _summary(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Summary by host and target", ""]
    if not record["summary"]:
        return [*lines, "No host or target."]
    rows = [
        [
            cell(r["host"]),
            code(r["target"]),
            f"**{cell(r['exposure'])}**",
            cell(r["remediated"]),
            _credentials(r),
            str(r["outstanding"]),
            _last_run(r),
            short(r.get("head")),
        ]
        + ([counted(r["problems"], "unusable journal")] if r["problems"] else [""])
        for r in record["summary"]
    ]
    header = ["Host", "Target", "Exposure", "Remediated", "Credentials", "Open items"]
    return lines + _table([*header, "Last live run", "Head", "Problems"], rows)


def _runs(title: str, runs: list[dict[str, Any]], empty: str) -> list[str]:
    lines = ["", title, ""]
    if not runs:
        return [*lines, empty]
    rows = [
        [
            code(r["run"]),
            cell(r["host"]),
            code(r["target"]),
            cell(", ".join(r["operators"])),
            r["started"],
            r["ended"] or "not finished",
            cell(r["outcome"])
            + (f" ({cell(', '.join(r['failed_steps']))} failed)" if r["failed_steps"] else ""),
            str(r["sessions"]),
            f"intact, {r['chain']['entries']} entries",
            _signature(r.get("signature")),
            code(r["journal"]) + "".join(f", {code(c)}" for c in r["copies"]),
        ]
        for r in runs
    ]
    header = ["Run", "Host", "Target", "Operators", "Started (UTC)", "Ended (UTC)", "Outcome"]
    lines += _table([*header, "Sessions", "Chain", "Signed", "Journal (and copies)"], rows)
    lines += ["", "Head hashes:", ""]
    lines += [f"- {code(r['run'])}: {code(r['chain']['head'])}" for r in runs]
    return lines


def _timeline(events: list[dict[str, Any]]) -> Iterator[str]:
    yield from ["", "## Timeline (live runs)", ""]
    if not events:
        yield "No live run."
        return
    header = ["Time (UTC)", "Host", "Target", "Operator", "What", "Detail"]
    yield from _table(header, [])
    for e in events:
        row = [
            e["end_ts"],
            cell(e["host"]),
            code(e["target"]),
            cell(e["operator"]),
            f"**Note**: {cell(e['description'])}"
            if e["marker"] == "note"
            else f"**{cell(e['title'])}**"
            if e["marker"]
            else cell(e["title"]),
            "" if e["marker"] == "note" else cell(e["description"]),
        ]
        yield "| " + " | ".join(row) + " |"


def _findings(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Findings", ""]
    if not record["findings"]:
        return [*lines, "No findings were recorded."]
    rows = []
    for f in record["findings"]:
        pkg = f"{f.get('package', '')}@{f.get('version', '')}" if f.get("package") else ""
        rows.append(
            [
                cell(f.get("severity")),
                cell(f["host"]),
                code(f["target"]),
                cell(f.get("step")) + (" (dry run)" if f["dry_run"] else ""),
                cell(f.get("kind")),
                code(finding_where(f)),
                cell(pkg),
                cell(f.get("message")),
            ]
        )
    header = ["Severity", "Host", "Target", "Step", "Kind", "Where", "Package", "Message"]
    return lines + _table(header, rows)


def _credentials_section(record: dict[str, Any]) -> list[str]:
    found, rotations = record["credentials"]["found"], record["credentials"]["rotations"]
    if not found and not rotations:
        return []
    lines = ["", "## Credentials", ""]
    if found:
        rows = [
            [
                cell(c["host"]),
                code(c["target"]),
                cell(c.get("type")),
                code(c.get("where")),
                cell(c.get("redacted")),
                cell(c.get("rotation")),
            ]
            for c in found
        ]
        lines += _table(["Host", "Target", "Type", "Where", "Credential", "Rotation"], rows)
    if rotations:
        rows = [
            [
                cell(r["host"]),
                cell(r.get("what")),
                cell(r.get("owner")),
                cell(r.get("old")),
                cell(r.get("new")),
                cell(r.get("phase")),
                cell(r.get("time")),
            ]
            for r in rotations
        ]
        header = ["Host", "Rotated", "Owner", "Old", "New", "Last phase", "At (UTC)"]
        lines += ["", *_table(header, rows)]
    return lines


def _outstanding(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Outstanding manual items", ""]
    if not record["outstanding"]:
        return [*lines, "None."]
    return lines + [
        f"- [ ] **{cell(o['host'])}** {code(o['target'])} {cell(o['step'])}: {cell(o['text'])} "
        f"({cell(o['answer'])}; run {code(o['run'])}, {code(o['journal'])})"
        for o in record["outstanding"]
    ]


def _notes(record: dict[str, Any]) -> list[str]:
    lines = ["", "## Notes", ""]
    if not record["notes"]:
        return [*lines, "None."]
    return lines + [
        f"- {n['time']} {cell(n['host'])} {cell(n['by'])}: {cell(n['text'])}"
        + (" (inject)" if n.get("kind") == "inject" else "")
        for n in record["notes"]
    ]


def to_markdown(merged: Record) -> str:
    """Render a merged record."""
    return "".join(iter_markdown(merged))


def iter_markdown(merged: Record) -> Iterator[str]:
    """The Markdown in pieces (lines), for writing it without holding it twice."""
    record = merged.data
    lines = _header(record)
    lines += _problems(record)
    lines += _summary(record)
    lines += _runs("## Live runs", record["runs"], "No live run.")
    lines += _runs(
        "## Dry runs and exercises (listed apart: they changed nothing real)",
        record["dry_runs"],
        "None.",
    )
    for line in lines:
        yield line + "\n"
    for line in _timeline(merged.live_events()):
        yield line + "\n"
    lines = _findings(record)
    lines += _credentials_section(record)
    lines += _outstanding(record)
    lines += _notes(record)
    for line in lines:
        yield line + "\n"
