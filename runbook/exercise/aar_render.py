"""The after-action report as Markdown, or as one self-contained HTML file that prints well.

Every piece of text comes from the journal; it passes the redactor again (a hand-edited journal
gets no secret into a report), has its control characters escaped, and is escaped for the
format (table cells in Markdown, everything in HTML). The HTML loads nothing: no scripts, no
fonts, no images from anywhere, so it opens the same offline, in a mail client or on paper.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from runbook.exercise.aar import PHASE_TITLES, RATINGS, Aar
from runbook.exercise.model import format_duration
from runbook.redact import Redactor
from runbook.termsafe import printable

_REDACT = Redactor()
STATUS_WORDS = {
    "met": "met",
    "failed": "not met",
    "rejected": "rejected by the facilitator",
    "pending": "not assessed",
}


def clean(value: Any, *, keep_newlines: bool = False) -> str:
    text = "" if value is None else str(value)
    return printable(_REDACT.text(text), keep_newlines=keep_newlines)


def _when(seconds: float | None) -> str:
    return "not reached" if seconds is None else format_duration(seconds)


def _day(ts: str) -> str:
    return ts.replace("T", " ").replace("Z", " UTC")[:23].rstrip(".") if ts else ""


# -- Markdown -------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    return clean(value).replace("|", "\\|") or " "


def _table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _para(value: Any) -> str:
    return clean(value, keep_newlines=True).strip()


DECISION_COLUMNS = ["When", "Decision", "Options", "Owner", "Chosen", "Rationale", "By"]


def _decision_rows(aar: Aar) -> list[list[Any]]:
    return [
        [
            _when(d.get("_at")),
            d.get("title", ""),
            ", ".join(str(o) for o in d.get("options") or []),
            d.get("owner", ""),
            d.get("decision", ""),
            d.get("rationale", ""),
            f"{d.get('by', '')} ({d.get('role', '')})",
        ]
        for d in aar.decisions
    ]


def to_markdown(aar: Aar) -> str:
    s = aar.scenario
    got, total = aar.score
    out = [f"# After-action report: {clean(s.title)}", ""]
    if not aar.finished:
        out += ["> The exercise has not finished: this report shows it as it stands.", ""]
    out += ["## 1. Exercise overview", ""]
    participants = "; ".join(
        f"{clean(p.get('name'))} ({clean(p.get('role_name') or p.get('role'))})"
        for p in aar.participants
    )
    out += _table(
        ["", ""],
        [
            ["Scenario", f"{s.id} v{s.version}"],
            ["Playbook", aar.record.started.get("playbook", s.playbook)],
            ["Variant", f"{aar.variant}: {aar.record.started.get('variant_title', '')}"],
            ["Seed", aar.record.started.get("seed", "")],
            ["Started", _day(aar.started)],
            ["Ended", _day(aar.ended)],
            ["Exercise time", format_duration(aar.exercise_seconds)],
            ["Participants", participants or "none recorded"],
            ["Facilitators", ", ".join(aar.facilitators) or "none recorded"],
            ["Audience", s.audience],
            ["Score", f"{got} of {total}"],
            ["Must expectations", "all met" if aar.must_met else "NOT all met"],
        ],
    )
    out.append("")
    if s.summary:
        out += [_para(s.summary), ""]
    if s.objectives:
        out += ["**Objectives**", ""]
        out += [f"- {clean(o.text)}" for o in s.objectives]
        out.append("")
    if aar.missing_tools:
        out += [
            "Missing on this machine (the drill went on without): "
            + clean(", ".join(aar.missing_tools)),
            "",
        ]

    out += ["## 2. Metrics", ""]
    out += _table(["Metric", "Exercise time"], [[m.name, _when(m.seconds)] for m in aar.metrics])
    out.append("")

    out += ["## 3. Analysis of phases", ""]
    for phase in aar.phases:
        rating = phase.rating or "-"
        label = RATINGS.get(rating, "not rated")
        out += [f"### {phase.title}: {rating} ({label})", ""]
        if phase.override:
            out += [
                f"Rating set by {clean(phase.override.get('by'))}: "
                f"{clean(phase.override.get('reason'))} (suggested from the expectations: "
                f"{phase.suggested or '-'})",
                "",
            ]
        if phase.expectations:
            out += _table(
                ["Expectation", "Score", "Deadline", "Result", "When", "Judged by", "Comment"],
                [
                    [
                        e.expectation.title + (" (must)" if e.expectation.must else ""),
                        e.expectation.score,
                        _when(e.expectation.deadline) if e.expectation.deadline else "-",
                        STATUS_WORDS.get(e.status, e.status),
                        _when(e.at) if e.at is not None and e.status != "pending" else "-",
                        e.by or "-",
                        e.comment,
                    ]
                    for e in phase.expectations
                ],
            )
            out.append("")
        if phase.strengths:
            out += ["**Strengths**", ""] + [
                f"- {clean(e.expectation.title)}" for e in phase.strengths
            ]
            out.append("")
        if phase.improvements:
            out += ["**Areas for improvement**", ""]
            out += [
                f"- {clean(e.expectation.title)}: {clean(STATUS_WORDS.get(e.status, e.status))}"
                + (f" ({clean(e.comment)})" if e.comment else "")
                for e in phase.improvements
            ]
            out.append("")
        if phase.questions:
            out += ["**Discussion**", ""]
            for item in phase.questions:
                who = clean(item.get("by"))
                out += [f"- *{clean(item.get('question'))}* {who}: {clean(item.get('answer'))}"]
            out.append("")

    out += ["## 4. Decision log", ""]
    if aar.decisions:
        out += _table(DECISION_COLUMNS, _decision_rows(aar))
    else:
        out.append("No decisions were recorded.")
    out.append("")

    out += ["## 5. Observations", ""]
    if aar.observations:
        out += [
            f"- {_when(o.get('_at'))} {clean(o.get('by'))}: {clean(o.get('text'))}"
            for o in aar.observations
        ]
    else:
        out.append("No observations were recorded.")
    out.append("")

    out += ["## 6. Lessons-learned survey", ""]
    if any(answers for _, _, answers in aar.survey):
        for _, question, answers in aar.survey:
            out += [f"**{clean(question)}**", ""]
            out += [f"- {clean(a.get('by'))}: {clean(a.get('answer'))}" for a in answers] or [
                "- no answers"
            ]
            out.append("")
    else:
        out += ["No survey answers were recorded.", ""]

    out += ["## 7. Improvement plan", ""]
    if aar.improvement_plan:
        out += _table(
            ["Action", "Owner", "Due", "Phase", "From"],
            [
                [i.action, i.owner, i.due, PHASE_TITLES.get(i.phase, i.phase), i.source]
                for i in aar.improvement_plan
            ],
        )
    else:
        out.append("Nothing to improve was recorded.")
    out.append("")

    out += ["## Appendix A. Timeline", ""]
    out += _table(
        ["Exercise time", "Wall clock (UTC)", "What"],
        [[format_duration(t.at), _day(t.ts), t.text] for t in aar.timeline],
    )
    out += ["", "## Appendix B. Integrity", ""]
    out += [
        f"Journal: `{clean(aar.record.path)}`, {len(aar.record.entries)} entries.",
        "",
        f"Head hash: `{aar.head}`",
        "",
        "Hash chain: " + ("intact." if aar.chain_ok else f"BROKEN: {clean(aar.chain_reason)}"),
        "",
        "Compare the head with the one printed at the end of the drill "
        "(`runbook audit verify JOURNAL --head HASH`).",
        "",
    ]
    return "\n".join(out)


# -- HTML -----------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:3px solid #1b1b1b;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #999}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #bbb;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#eee}
.rating{display:inline-block;min-width:1.6em;text-align:center;font-weight:bold;color:#fff;
border-radius:3px;padding:0 .3em;margin-right:.4em}
.r-P{background:#2e7d32}.r-S{background:#9e9d24}.r-M{background:#ef6c00}.r-U{background:#c62828}
.r-none{background:#777}
.met{color:#2e7d32;font-weight:bold}.notmet{color:#c62828;font-weight:bold}
.muted{color:#666}.warn{border-left:4px solid #ef6c00;padding:.3rem .6rem;background:#fff3e0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
@media print{body{margin:0;max-width:none;font-size:11pt}h2{break-after:avoid}
tr,.phase{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def _h(value: Any) -> str:
    return html.escape(clean(value), quote=True)


def _hp(value: Any) -> str:
    return "<br>".join(html.escape(line) for line in clean(value, keep_newlines=True).splitlines())


def _html_table(header: list[str], rows: Iterable[list[Any]], raw: set[int] | None = None) -> str:
    raw = raw or set()
    head = "".join(f"<th>{_h(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if i in raw else _h(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _badge(rating: str | None) -> str:
    if rating not in RATINGS:
        return '<span class="rating r-none">-</span>'
    return f'<span class="rating r-{rating}">{rating}</span>'


def to_html(aar: Aar) -> str:
    s = aar.scenario
    got, total = aar.score
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>After-action report: {_h(s.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>After-action report: {_h(s.title)}</h1>",
    ]
    if not aar.finished:
        parts.append(
            '<p class="warn">The exercise has not finished: this report shows it as it stands.</p>'
        )
    participants = (
        "<br>".join(
            f"{_h(p.get('name'))} ({_h(p.get('role_name') or p.get('role'))})"
            for p in aar.participants
        )
        or "none recorded"
    )
    must = (
        '<span class="met">all met</span>'
        if aar.must_met
        else '<span class="notmet">NOT all met</span>'
    )
    overview = [
        ["Scenario", _h(f"{s.id} v{s.version}")],
        ["Playbook", _h(aar.record.started.get("playbook", s.playbook))],
        ["Variant", _h(f"{aar.variant}: {aar.record.started.get('variant_title', '')}")],
        ["Seed", _h(aar.record.started.get("seed", ""))],
        ["Started", _h(_day(aar.started))],
        ["Ended", _h(_day(aar.ended))],
        ["Exercise time", _h(format_duration(aar.exercise_seconds))],
        ["Participants", participants],
        ["Facilitators", _h(", ".join(aar.facilitators) or "none recorded")],
        ["Audience", _h(s.audience)],
        ["Score", _h(f"{got} of {total}")],
        ["Must expectations", must],
    ]
    parts += ["<h2>1. Exercise overview</h2>", _html_table(["", ""], overview, raw={1})]
    if s.summary:
        parts.append(f"<p>{_hp(s.summary)}</p>")
    if s.objectives:
        parts.append("<p><strong>Objectives</strong></p><ul>")
        parts += [f"<li>{_h(o.text)}</li>" for o in s.objectives]
        parts.append("</ul>")
    if aar.missing_tools:
        parts.append(
            '<p class="warn">Missing on this machine (the drill went on without): '
            f"{_h(', '.join(aar.missing_tools))}</p>"
        )
    parts += [
        "<h2>2. Metrics</h2>",
        _html_table(["Metric", "Exercise time"], [[m.name, _when(m.seconds)] for m in aar.metrics]),
        "<h2>3. Analysis of phases</h2>",
    ]
    for phase in aar.phases:
        label = RATINGS.get(phase.rating or "", "not rated")
        parts.append(
            f'<div class="phase"><h3>{_badge(phase.rating)}{_h(phase.title)}: {_h(label)}</h3>'
        )
        if phase.override:
            parts.append(
                f"<p>Rating set by {_h(phase.override.get('by'))}: "
                f'{_h(phase.override.get("reason"))} <span class="muted">(suggested from the '
                f"expectations: {_h(phase.suggested or '-')})</span></p>"
            )
        if phase.expectations:
            rows = []
            for e in phase.expectations:
                word = STATUS_WORDS.get(e.status, e.status)
                css = "met" if e.status == "met" else "notmet" if e.status != "pending" else "muted"
                rows.append(
                    [
                        _h(e.expectation.title + (" (must)" if e.expectation.must else "")),
                        _h(e.expectation.score),
                        _h(_when(e.expectation.deadline) if e.expectation.deadline else "-"),
                        f'<span class="{css}">{_h(word)}</span>',
                        _h(_when(e.at) if e.at is not None and e.status != "pending" else "-"),
                        _h(e.by or "-"),
                        _h(e.comment),
                    ]
                )
            parts.append(
                _html_table(
                    ["Expectation", "Score", "Deadline", "Result", "When", "Judged by", "Comment"],
                    rows,
                    raw={0, 1, 2, 3, 4, 5, 6},
                )
            )
        if phase.strengths:
            parts.append("<p><strong>Strengths</strong></p><ul>")
            parts += [f"<li>{_h(e.expectation.title)}</li>" for e in phase.strengths]
            parts.append("</ul>")
        if phase.improvements:
            parts.append("<p><strong>Areas for improvement</strong></p><ul>")
            parts += [
                f"<li>{_h(e.expectation.title)}: {_h(STATUS_WORDS.get(e.status, e.status))}"
                + (f" ({_h(e.comment)})" if e.comment else "")
                + "</li>"
                for e in phase.improvements
            ]
            parts.append("</ul>")
        if phase.questions:
            parts.append("<p><strong>Discussion</strong></p><ul>")
            parts += [
                f"<li><em>{_h(q.get('question'))}</em> {_h(q.get('by'))}: "
                f"{_hp(q.get('answer'))}</li>"
                for q in phase.questions
            ]
            parts.append("</ul>")
        parts.append("</div>")
    parts.append("<h2>4. Decision log</h2>")
    if aar.decisions:
        parts.append(_html_table(DECISION_COLUMNS, _decision_rows(aar)))
    else:
        parts.append("<p>No decisions were recorded.</p>")
    parts.append("<h2>5. Observations</h2>")
    if aar.observations:
        parts.append("<ul>")
        parts += [
            f"<li>{_h(_when(o.get('_at')))} {_h(o.get('by'))}: {_hp(o.get('text'))}</li>"
            for o in aar.observations
        ]
        parts.append("</ul>")
    else:
        parts.append("<p>No observations were recorded.</p>")
    parts.append("<h2>6. Lessons-learned survey</h2>")
    if any(answers for _, _, answers in aar.survey):
        for _, question, answers in aar.survey:
            parts.append(f"<p><strong>{_h(question)}</strong></p><ul>")
            parts += [f"<li>{_h(a.get('by'))}: {_hp(a.get('answer'))}</li>" for a in answers] or [
                "<li>no answers</li>"
            ]
            parts.append("</ul>")
    else:
        parts.append("<p>No survey answers were recorded.</p>")
    parts.append("<h2>7. Improvement plan</h2>")
    if aar.improvement_plan:
        parts.append(
            _html_table(
                ["Action", "Owner", "Due", "Phase", "From"],
                [
                    [i.action, i.owner, i.due, PHASE_TITLES.get(i.phase, i.phase), i.source]
                    for i in aar.improvement_plan
                ],
            )
        )
    else:
        parts.append("<p>Nothing to improve was recorded.</p>")
    parts += [
        "<h2>Appendix A. Timeline</h2>",
        _html_table(
            ["Exercise time", "Wall clock (UTC)", "What"],
            [[format_duration(t.at), _day(t.ts), t.text] for t in aar.timeline],
        ),
        "<h2>Appendix B. Integrity</h2>",
        f"<p>Journal: <code>{_h(aar.record.path)}</code>, {len(aar.record.entries)} entries.</p>",
        f"<p>Head hash: <code>{_h(aar.head)}</code></p>",
        "<p>Hash chain: "
        + (
            "intact."
            if aar.chain_ok
            else f'<span class="notmet">BROKEN: {_h(aar.chain_reason)}</span>'
        )
        + "</p>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
