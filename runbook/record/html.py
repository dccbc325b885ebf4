"""The record as one self-contained HTML file: no script, no network, no font or image to fetch.

A Content-Security-Policy forbids any load at all, the visual timeline is inline SVG drawn here
(one lane per host and target, dry runs in their own dashed lanes, step attempts coloured by
outcome, notes and injects marked), and a print stylesheet lays it out for "Save as PDF". Every
text from a journal is escaped for HTML after its control characters are made visible.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from runbook.record.events import finding_where
from runbook.record.merge import Record, RunFacts, counted, journals_line
from runbook.redact import Redactor
from runbook.termsafe import printable

OUTCOME_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "outstanding": "#f2a900",
    "skipped": "#9e9e9e",
    "unfinished": "#1565c0",
}
EXPOSURE_CLASSES = {
    "compromised": "bad",
    "exposed": "warn",
    "unknown": "unknown",
    "clean": "good",
    "not checked": "unknown",
}
WIDTH, LABEL, RIGHT = 1200, 300, 16
LANE, BAR, AXIS = 30, 16, 34
GAP = 22  # pixels for a stretch of time with nothing in it
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --head: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 24px auto; max-width: 1400px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--head); } td.mono, code { font-family: ui-monospace, Menlo, Consolas,
  monospace; font-size: 12px; word-break: break-all; }
table.meta { width: auto; } table.meta th { width: 160px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  color: #fff; white-space: nowrap; }
.bad { background: #c62828; } .warn { background: #e65100; } .good { background: #2e7d32; }
.unknown { background: #6a5acd; }
.problems { border: 2px solid #c62828; background: #fff5f5; padding: 8px 12px; margin: 12px 0; }
.warnings { border: 2px solid #e65100; background: #fff8f0; padding: 8px 12px; margin: 12px 0; }
.problems h2, .warnings h2 { border: 0; margin-top: 4px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -2px; border-radius: 2px; }
svg.lanes { width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
svg.lanes text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg.lanes text.axis { font-size: 10px; fill: var(--muted); }
svg.lanes .dry text { fill: var(--muted); }
tr.note td { background: #fffbe6; } tr.inject td { background: #f3e8ff; }
tr.dry td { color: var(--muted); }
.muted { color: var(--muted); }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { margin: 0; max-width: none; font-size: 10pt; }
  table { font-size: 8pt; } thead { display: table-header-group; }
  tr, .problems, .warnings, svg.lanes { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def esc(value: Any) -> str:
    """Text from a journal, safe inside HTML text and attribute values."""
    text = "" if value is None else str(value)
    if not (text.isascii() and text.isprintable()):
        text = printable(text)
    return html.escape(text, quote=True)


_REDACTOR = Redactor()


def resc(value: Any) -> str:
    """`esc` after the redactor: for text drawn from the runs' own facts (the lanes)."""
    return esc(_REDACTOR.text(printable("" if value is None else value)))


def _code(value: Any) -> str:
    return f"<code>{esc(value)}</code>" if value else ""


def _ms(ts: str) -> int:
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


class TimeAxis:
    """Maps times to x: busy stretches share the width by duration (each at least `least`
    pixels), and each quiet stretch between them takes `GAP` pixels, marked as a break."""

    def __init__(self, times: list[int], left: float, right: float, least: float = 48) -> None:
        times = sorted(set(times)) or [0]
        span = max(times[-1] - times[0], 1)
        quiet = max(60_000, span // 40)
        self.segments: list[list[int]] = [[times[0], times[0]]]
        for t in times[1:]:
            if t - self.segments[-1][1] > quiet:
                self.segments.append([t, t])
            else:
                self.segments[-1][1] = t
        room = right - left - GAP * (len(self.segments) - 1)
        total = sum(max(b - a, 1) for a, b in self.segments)
        widths = [max(least, room * max(b - a, 1) / total) for a, b in self.segments]
        scale = room / sum(widths) if sum(widths) > room else 1.0
        self.placed: list[tuple[int, int, float, float]] = []
        x = left
        for (a, b), w in zip(self.segments, widths, strict=True):
            w *= scale
            self.placed.append((a, b, x, w))
            x += w + GAP

    def x(self, t: int) -> float:
        for a, b, x, w in self.placed:
            if t <= b:
                return x + (w * (t - a) / max(b - a, 1) if t >= a else 0)
        a, b, x, w = self.placed[-1]
        return x + w

    def breaks(self) -> list[float]:
        """x of the middle of each quiet stretch."""
        return [x + w + GAP / 2 for (_, _, x, w) in self.placed[:-1]]

    def ticks(self) -> list[tuple[float, str]]:
        """A label at the start of each busy stretch (and the end of the last)."""
        marks = [(x, a) for a, _, x, _ in self.placed]
        last = self.placed[-1]
        marks.append((last[2] + last[3], last[1]))
        days = {_utc(t).date() for _, t in marks}
        form = "%m-%d %H:%M" if len(days) > 1 else "%H:%M:%S"
        return [(x, _utc(t).strftime(form)) for x, t in marks]


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _svg(facts: list[RunFacts], problems: list[dict[str, Any]]) -> str:
    """One lane per host and target (dry runs in a lane of their own, and a struck-out lane for
    a host and target whose journal could not be used)."""
    lanes: dict[tuple[str, str, str], list[RunFacts]] = {}
    for rf in sorted(facts, key=lambda f: (f.run.host, f.run.target, f.run.dry_run)):
        lanes.setdefault((rf.run.host, rf.run.target, rf.run.mode), []).append(rf)
    for problem in problems:
        if not problem["used"] and problem.get("host"):
            lanes.setdefault((problem["host"], problem.get("target") or "", "unusable"), [])
    times = [_ms(e["end_ts"]) for rf in facts for e in rf.events] + [
        _ms(t)
        for rf in facts
        for s in rf.steps.values()
        for sp in s.spans
        for t in (sp["start"], sp["end"])
    ]
    axis = TimeAxis(times, LABEL, WIDTH - RIGHT)
    height = AXIS + LANE * max(len(lanes), 1) + 8
    out = [
        f'<svg class="lanes" id="lanes" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Timeline, one lane per host '
        f'and target">'
    ]
    for index, ((host, target, mode), runs) in enumerate(lanes.items()):
        y = AXIS + index * LANE
        mid = y + LANE / 2
        suffix = {"live": "", "dry-run": " (dry run)", "unusable": " (not usable)"}.get(
            mode, f" ({mode})"
        )
        cls = {"live": "lane", "unusable": "lane unusable"}.get(mode, "lane dry")
        out.append(
            f'<g class="{cls}" data-host="{resc(host)}" data-target="{resc(target)}" '
            f'data-mode="{resc(mode)}"><title>{resc(host)} {resc(target)}{suffix}</title>'
        )
        fill = "#f6f8fa" if index % 2 else "#ffffff"
        out.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{LANE}" fill="{fill}"/>')
        out.append(
            f'<text x="8" y="{mid + 4:.1f}"><tspan font-weight="600">{resc(host)}</tspan> '
            f"{resc(_tail(target))}{suffix}</text>"
        )
        if mode == "unusable":
            out.append(
                f'<line x1="{LABEL}" y1="{mid}" x2="{WIDTH - RIGHT}" y2="{mid}" '
                'stroke="#c62828" stroke-width="2" stroke-dasharray="6 4"/>'
            )
        for rf in runs:
            out += _lane_items(rf, axis, y, mode != "live")
        out.append("</g>")
    shown = -1000.0
    for x, label in axis.ticks():
        out.append(
            f'<line x1="{x:.1f}" y1="{AXIS - 6}" x2="{x:.1f}" y2="{AXIS}" '
            'stroke="#8c959f" stroke-width="1"/>'
        )
        if x - shown >= 64:  # no label on top of the last one
            shown = x
            anchor = "end" if x > WIDTH - RIGHT - 40 else "middle"
            out.append(
                f'<text class="axis" x="{x:.1f}" y="{AXIS - 14}" text-anchor="{anchor}">'
                f"{esc(label)}</text>"
            )
    for x in axis.breaks():
        out.append(
            f'<rect class="quiet" x="{x - GAP / 2 + 3:.1f}" y="{AXIS - 4}" width="{GAP - 6}" '
            f'height="{height - AXIS}" fill="#d0d7de" fill-opacity="0.6"/>'
            f'<text class="axis" x="{x:.1f}" y="{AXIS - 3}" text-anchor="middle">≈</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _tail(target: str) -> str:
    """The last two parts of a long path (the lane's title has all of it)."""
    parts = [p for p in target.split("/") if p]
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else target


def _lane_items(rf: RunFacts, axis: TimeAxis, y: float, dry: bool) -> list[str]:
    out = []
    top = y + (LANE - BAR) / 2
    dash = ' stroke="#57606a" stroke-dasharray="3 2"' if dry else ""
    for step, facts in rf.steps.items():
        for span in facts.spans:
            x1, x2 = axis.x(_ms(span["start"])), axis.x(_ms(span["end"]))
            colour = OUTCOME_COLOURS.get(span["outcome"], "#6e7781")
            tip = f"{step}: {span['outcome']} ({span['start']} to {span['end']})"
            out.append(
                f'<rect class="span outcome-{resc(span["outcome"])}" x="{x1:.1f}" y="{top:.1f}" '
                f'width="{max(x2 - x1, 3):.1f}" height="{BAR}" rx="2" fill="{colour}"'
                f"{dash}><title>{resc(tip)}</title></rect>"
            )
    for event in rf.events:
        if event["event"] in ("run_started", "run_resumed"):
            x = axis.x(_ms(event["ts"]))
            out.append(
                f'<line class="session" x1="{x:.1f}" y1="{y + 3}" x2="{x:.1f}" '
                f'y2="{y + LANE - 3}" stroke="#1b1f23" stroke-width="2">'
                f"<title>{resc(event['title'])} by {resc(event['operator'])}</title></line>"
            )
        if event["marker"]:
            x, top_y = axis.x(_ms(event["ts"])), y + 2
            shape = (
                f"{x:.1f},{top_y} {x + 6:.1f},{top_y + 7} {x:.1f},{top_y + 14} "
                f"{x - 6:.1f},{top_y + 7}"
                if event["marker"] == "note"
                else f"{x:.1f},{top_y} {x + 7:.1f},{top_y + 13} {x - 7:.1f},{top_y + 13}"
            )
            out.append(
                f'<polygon class="marker {event["marker"]}" points="{shape}" '
                f'fill="{"#0969da" if event["marker"] == "note" else "#8250df"}" '
                'stroke="#ffffff" stroke-width="1">'
                f"<title>{resc(event['marker'])} by {resc(event['operator'])}: "
                f"{resc(event['description'])}</title></polygon>"
            )
    return out


def _legend() -> str:
    items = [
        f'<span><i style="background:{colour}"></i>{name}</span>'
        for name, colour in OUTCOME_COLOURS.items()
    ]
    items.append('<span><i style="background:#0969da;transform:rotate(45deg)"></i>note</span>')
    items.append('<span><i style="background:#8250df"></i>inject</span>')
    items.append('<span><i style="background:#1b1f23;width:3px"></i>run started / resumed</span>')
    items.append("<span>≈ quiet time left out</span>")
    return '<div class="legend">' + "".join(items) + "</div>"


def _table(cls: str, header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return (
        f'<table id="{cls}" class="{cls}"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _problems(record: dict[str, Any]) -> str:
    problems = record["problems"]
    if not problems:
        return ""
    blocking = [p for p in problems if not p["used"]]
    rows = [
        "<tr>"
        f"<td class=mono>{esc(p['journal'])}{':' + str(p['line']) if p.get('line') else ''}</td>"
        f"<td>{'no' if not p['used'] else 'yes'}</td><td>{esc(p['kind'])}</td>"
        f"<td>{esc(p['reason'])}</td><td>{esc(p.get('host') or '')}</td>"
        f"<td class=mono>{esc(p.get('target') or '')}</td></tr>"
        for p in problems
    ]
    title = "Journals that could not be used" if blocking else "Warnings"
    lead = (
        f"<p><strong>{counted(len(blocking), 'journal was', 'journals were')} NOT merged"
        "</strong> into this record; what "
        "they hold is unknown. Hosts and targets they name are shown as unknown.</p>"
        if blocking
        else ""
    )
    table = _table(
        "problems-table", ["Journal", "Used", "Problem", "Reason", "Host", "Target"], rows
    )
    cls = "problems" if blocking else "warnings"
    return f'<section class="{cls}" id="problems"><h2>{title}</h2>{lead}{table}</section>'


def _summary(record: dict[str, Any]) -> str:
    rows = []
    for r in record["summary"]:
        cls = EXPOSURE_CLASSES.get(r["exposure"], "unknown")
        creds = r["credentials"]
        last = r.get("last_run")
        last_text = (
            f"{esc(last['outcome'])} <span class=muted>{esc(last.get('ended') or last['started'])}"
            f"</span>"
            if last
            else "none (live)"
        )
        rows.append(
            "<tr>"
            f"<td>{esc(r['host'])}</td><td class=mono>{esc(r['target'])}</td>"
            f'<td><span class="badge {cls}">{esc(r["exposure"])}</span></td>'
            f"<td>{esc(r['remediated'])}</td>"
            f"<td>{creds['found']} found, {creds['rotated']} rotated</td>"
            f"<td>{r['outstanding']}</td><td>{last_text}</td>"
            f"<td class=mono>{esc((r.get('head') or '')[:16])}</td>"
            f"<td>{counted(r['problems'], 'unusable journal') if r['problems'] else ''}</td>"
            "</tr>"
        )
    header = ["Host", "Target", "Exposure", "Remediated", "Credentials", "Open items"]
    return _table("summary", [*header, "Last live run", "Head", "Problems"], rows)


def _runs(table_id: str, runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "<p>None.</p>"
    rows = []
    for r in runs:
        sig = r.get("signature")
        signed = "no"
        if sig:
            signed = (
                f"{esc(sig.get('signer') or 'signer not checked')}<br>"
                f"<code>{esc(sig.get('key'))}</code>"
                + ("<br>earlier entries only" if sig.get("coverage") == "prefix" else "")
            )
        failed = f" ({esc(', '.join(r['failed_steps']))} failed)" if r["failed_steps"] else ""
        rows.append(
            "<tr>"
            f"<td class=mono>{esc(r['run'])}</td><td>{esc(r['host'])}</td>"
            f"<td class=mono>{esc(r['target'])}</td><td>{esc(', '.join(r['operators']))}</td>"
            f"<td>{esc(r['started'])}</td><td>{esc(r['ended'] or 'not finished')}</td>"
            f"<td>{esc(r['outcome'])}{failed}</td><td>{r['sessions']}</td>"
            f"<td>intact, {r['chain']['entries']} entries<br>"
            f'<code title="{esc(r["chain"]["head"])}">{esc(r["chain"]["head"][:16])}</code></td>'
            f"<td>{signed}</td>"
            f"<td class=mono>{'<br>'.join(esc(j) for j in [r['journal'], *r['copies']])}</td>"
            "</tr>"
        )
    header = ["Run", "Host", "Target", "Operators", "Started (UTC)", "Ended (UTC)", "Outcome"]
    heads = "".join(
        f"<li><code>{esc(r['run'])}</code>: <code>{esc(r['chain']['head'])}</code></li>"
        for r in runs
    )
    table = _table(table_id, [*header, "Sessions", "Chain and head", "Signed", "Journal"], rows)
    return f'{table}<p>Head hashes:</p><ul class="heads">{heads}</ul>'


def _timeline_rows(events: list[dict[str, Any]], table_id: str) -> Iterator[str]:
    """The table of every action, row by row (it is most of the page: never built whole)."""
    if not events:
        yield "<p>None.</p>"
        return
    header = ["Time (UTC)", "Host", "Target", "Operator", "Type", "What", "Detail"]
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    yield f'<table id="{table_id}" class="{table_id}"><thead><tr>{head}</tr></thead><tbody>'
    seen: dict[str, str] = {}  # host, target, operator: the same few strings, escaped once

    def once(text: str) -> str:
        done = seen.get(text)
        if done is None:
            done = seen[text] = esc(text)
        return done

    for e in events:
        cls = f' class="{e["marker"]}"' if e["marker"] else ""
        yield (
            f"<tr{cls}><td>{e['end_ts']}</td><td>{once(e['host'])}</td>"
            f"<td class=mono>{once(e['target'])}</td><td>{once(e['operator'])}</td>"
            f"<td>{e['type']}</td><td>{esc(e['title'])}</td>"
            f"<td>{esc(e['description'])}</td></tr>"
        )
    yield "</tbody></table>"


def _findings(record: dict[str, Any]) -> str:
    if not record["findings"]:
        return "<p>No findings were recorded.</p>"
    rows = []
    for f in record["findings"]:
        pkg = f"{f.get('package', '')}@{f.get('version', '')}" if f.get("package") else ""
        rows.append(
            f"<tr{' class=dry' if f['dry_run'] else ''}><td>{esc(f.get('severity'))}</td>"
            f"<td>{esc(f['host'])}</td><td class=mono>{esc(f['target'])}</td>"
            f"<td>{esc(f.get('step'))}{' (dry run)' if f['dry_run'] else ''}</td>"
            f"<td>{esc(f.get('kind'))}</td><td class=mono>{esc(finding_where(f))}</td>"
            f"<td>{esc(pkg)}</td><td>{esc(f.get('message'))}</td></tr>"
        )
    header = ["Severity", "Host", "Target", "Step", "Kind", "Where", "Package", "Message"]
    return _table("findings", header, rows)


def _credentials(record: dict[str, Any]) -> str:
    found, rotations = record["credentials"]["found"], record["credentials"]["rotations"]
    if not found and not rotations:
        return "<p>No credential was found or rotated.</p>"
    parts = []
    if found:
        rows = [
            f"<tr><td>{esc(c['host'])}</td><td class=mono>{esc(c['target'])}</td>"
            f"<td>{esc(c.get('type'))}</td><td class=mono>{esc(c.get('where'))}</td>"
            f"<td class=mono>{esc(c.get('redacted'))}</td><td>{esc(c.get('rotation'))}</td></tr>"
            for c in found
        ]
        header = ["Host", "Target", "Type", "Where", "Credential (redacted)", "Rotation"]
        parts.append(_table("credentials", header, rows))
    if rotations:
        rows = [
            f"<tr><td>{esc(r['host'])}</td><td>{esc(r.get('what'))}</td>"
            f"<td>{esc(r.get('owner'))}</td><td class=mono>{esc(r.get('old'))}</td>"
            f"<td class=mono>{esc(r.get('new'))}</td><td>{esc(r.get('phase'))}</td>"
            f"<td>{esc(r.get('time'))}</td></tr>"
            for r in rotations
        ]
        header = ["Host", "Rotated", "Owner", "Old", "New", "Last phase", "At (UTC)"]
        parts.append(_table("rotations", header, rows))
    return "".join(parts)


def _outstanding(record: dict[str, Any]) -> str:
    if not record["outstanding"]:
        return "<p>None.</p>"
    rows = [
        f"<tr><td>{esc(o['host'])}</td><td class=mono>{esc(o['target'])}</td>"
        f"<td>{esc(o['step'])}</td><td>{esc(o['text'])}</td><td>{esc(o['answer'])}</td>"
        f"<td class=mono>{esc(o['run'])}</td><td class=mono>{esc(o['journal'])}</td></tr>"
        for o in record["outstanding"]
    ]
    header = ["Host", "Target", "Step", "Item", "Answer", "Run", "Journal"]
    return _table("outstanding", header, rows)


def _notes(record: dict[str, Any]) -> str:
    if not record["notes"]:
        return "<p>None.</p>"
    rows = [
        f"<tr class={esc(n.get('kind', 'note'))}><td>{esc(n['time'])}</td>"
        f"<td>{esc(n['host'])}</td><td>{esc(n['by'])}</td><td>{esc(n['text'])}</td></tr>"
        for n in record["notes"]
    ]
    return _table("notes", ["Time (UTC)", "Host", "By", "Text"], rows)


def to_html(record: Record) -> str:
    """Render the record as one HTML document."""
    return "".join(iter_html(record))


def iter_html(record: Record) -> Iterator[str]:
    """The HTML document in pieces, for writing it without holding it twice."""
    data = record.data
    facts = record.facts
    period = data.get("period") or {}
    playbooks = ", ".join(
        f"{_code(p.get('id'))} v{esc(p.get('version'))} (sha256 {_code(str(p.get('sha256'))[:12])})"
        for p in data["playbooks"]
    )
    meta = [
        ("Incident", esc(data.get("incident") or "(not named)")),
        ("Playbooks", playbooks or "none"),
        (
            "Journals",
            esc(journals_line(data)),
        ),
        (
            "Period (UTC)",
            f"{esc(period.get('start'))} to {esc(period.get('end'))}" if period else "no run",
        ),
        ("Tool version", f"runbook {esc(data['tool_version'])}"),
    ]
    meta_rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in meta)
    lanes = _svg(facts, data["problems"]) if facts or data["problems"] else "<p>No run to draw.</p>"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Incident record: {esc(data['title'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Incident record: {esc(data['title'])}</h1>",
        f'<table class="meta">{meta_rows}</table>',
        _problems(data),
        '<section id="summary-section"><h2>Summary by host and target</h2>',
        _summary(data),
        "</section>",
        '<section id="timeline"><h2>Timeline</h2>',
        _legend(),
        lanes,
        "</section>",
        '<section id="runs-section"><h2>Live runs</h2>',
        _runs("runs", data["runs"]),
        "<h2>Dry runs and exercises (listed apart: they changed nothing real)</h2>",
        _runs("dry-runs", data["dry_runs"]),
        "</section>",
        '<section id="events-section"><h2>Every action (live runs)</h2>',
        None,  # the table of every action goes here, streamed
        "</section>",
        '<section id="findings-section"><h2>Findings</h2>',
        _findings(data),
        "</section>",
        '<section id="credentials-section"><h2>Credentials</h2>',
        _credentials(data),
        "</section>",
        '<section id="outstanding-section"><h2>Outstanding manual items</h2>',
        _outstanding(data),
        "</section>",
        '<section id="notes-section"><h2>Notes</h2>',
        _notes(data),
        "</section>",
        "</body></html>",
    ]
    for part in parts:
        if part is None:
            yield from _timeline_rows(record.live_events(), "events")
        elif part:
            yield part + "\n"
