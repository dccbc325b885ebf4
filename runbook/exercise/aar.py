"""The after-action report, following HSEEP's AAR/IP: what it holds, computed from the journal.

`build_aar` reads an exercise journal and returns an `Aar`; `runbook/exercise/aar_render.py`
writes it as Markdown or as one self-contained HTML file. Ratings per phase use HSEEP's scale:
P performed without challenges, S with some challenges, M with major challenges, U unable to be
performed. They are suggested from the phase's expectations (by score) and can be overridden by
the facilitator with a reason (a `rating` entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from runbook.exercise.clock import wall_time
from runbook.exercise.facts import Facts
from runbook.exercise.model import PHASES, Cond, Scenario
from runbook.exercise.record import ExerciseRecord, NotAnExercise, read_exercise
from runbook.exercise.state import ExerciseView, ExpectationView

RATINGS = {
    "P": "Performed without challenges",
    "S": "Performed with some challenges",
    "M": "Performed with major challenges",
    "U": "Unable to be performed",
}
PHASE_TITLES = {
    "detect": "Detect",
    "contain": "Contain",
    "eradicate": "Eradicate",
    "rotate": "Rotate credentials",
    "communicate": "Communicate",
}
DUE_DAYS = 30
TODO = re.compile(r"^\s*TODO:\s*(?P<text>.+)$", re.S)
OWNER = re.compile(r"\[?\bowner:\s*(?P<owner>[^\],;]+?)\s*(?:\]|;|,|$)", re.I)
DUE = re.compile(r"\[?\bdue:\s*(?P<due>\d{4}-\d{2}-\d{2})\s*\]?", re.I)


class AarError(Exception):
    """The report cannot be made; the message says why."""


@dataclass
class PhaseReport:
    phase: str
    title: str
    expectations: list[ExpectationView]
    suggested: str | None  # P S M U, None without expectations
    rating: str | None
    override: dict[str, Any] | None  # the facilitator's rating entry, when it overrides
    questions: list[dict[str, Any]]  # discussion answers
    steps: list[str]

    @property
    def strengths(self) -> list[ExpectationView]:
        return [e for e in self.expectations if e.status == "met"]

    @property
    def improvements(self) -> list[ExpectationView]:
        return [e for e in self.expectations if e.status != "met"]


@dataclass
class ImprovementItem:
    action: str
    owner: str
    due: str
    source: str
    phase: str = ""


@dataclass
class Metric:
    name: str
    seconds: float | None


@dataclass
class TimelineItem:
    at: float
    ts: str
    event: str
    text: str


@dataclass
class Aar:
    record: ExerciseRecord
    view: ExerciseView
    scenario: Scenario
    started: str
    ended: str
    exercise_seconds: float
    participants: list[dict[str, Any]]
    facilitators: list[str]
    phases: list[PhaseReport]
    decisions: list[dict[str, Any]]
    discussions: list[dict[str, Any]]
    survey: list[tuple[str, str, list[dict[str, Any]]]]  # question id, question, answers
    observations: list[dict[str, Any]]
    improvement_plan: list[ImprovementItem]
    metrics: list[Metric]
    timeline: list[TimelineItem]
    score: tuple[int, int]
    must_met: bool
    finished: bool
    head: str
    chain_ok: bool
    chain_reason: str
    missing_tools: list[str] = field(default_factory=list)

    @property
    def variant(self) -> str:
        return str(self.record.started.get("variant", ""))


# -- ratings --------------------------------------------------------------------------------------
def suggest_rating(expectations: list[ExpectationView]) -> str | None:
    """P S M U from a phase's expectations, weighted by score: all met P; at least 70% S; at
    least 30% M; less U. A `must` expectation not met caps the rating at M."""
    if not expectations:
        return None
    total = sum(e.expectation.score for e in expectations)
    got = sum(e.expectation.score for e in expectations if e.status == "met")
    if total == 0:
        share = sum(e.status == "met" for e in expectations) / len(expectations)
    else:
        share = got / total
    rating = "P" if share >= 1 else "S" if share >= 0.7 else "M" if share >= 0.3 else "U"
    if rating in ("P", "S") and any(e.expectation.must and e.status != "met" for e in expectations):
        rating = "M"
    return rating


# -- improvement plan ------------------------------------------------------------------------------
def parse_todo(text: str) -> tuple[str, str | None, str | None] | None:
    """`TODO: action [owner: NAME] [due: YYYY-MM-DD]` as (action, owner, due); None otherwise."""
    match = TODO.match(text or "")
    if not match:
        return None
    body = match["text"].strip()
    owner_match, due_match = OWNER.search(body), DUE.search(body)
    owner = owner_match["owner"].strip() if owner_match else None
    due = due_match["due"] if due_match else None
    for found in (owner_match, due_match):
        if found:
            body = body.replace(found.group(0), "")
    return re.sub(r"\s+", " ", body).strip(" []"), owner, due


def _default_due(ended: str) -> str:
    try:
        day = datetime.fromisoformat(ended.replace("Z", "+00:00")).date()
    except ValueError:
        day = datetime.now(UTC).date()
    return (day + timedelta(days=DUE_DAYS)).isoformat()


def _valid_day(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


# -- timeline -------------------------------------------------------------------------------------
def _line(event: str, data: dict[str, Any], steps: dict[str, str]) -> str | None:
    """One line of the timeline, or None for entries it leaves out (effects, plans)."""
    step, by = str(data.get("step", "")), data.get("by", "")
    if event == "step_finished":
        summary = f" - {data['summary']}" if data.get("summary") else ""
        return f"step {step}: {data.get('outcome')}{summary}"
    if event == "step_skipped":
        return f"step {step}: skipped ({data.get('reason', '')}, by {data.get('by', '')})"
    if event == "step_confirmed":
        return f"step {step}: confirmed '{data.get('answer')}' by {data.get('by', '')}"
    if event == "manual_item":
        return f"step {step}: checklist '{data.get('item')}' {data.get('answer')} ({by})"
    if event == "inject_fired":
        return f"inject {data.get('inject')}: {data.get('title', '')} (by {data.get('by', '')})"
    if event == "inject_skipped":
        return (
            f"inject {data.get('inject')} skipped by {data.get('by', '')}: {data.get('reason', '')}"
        )
    if event == "clock":
        extra = f" {data.get('inject')}" if data.get("inject") else ""
        speed = f" x{data.get('speed')}" if data.get("action") == "speed" else ""
        return f"clock {data.get('action')}{extra}{speed} (by {data.get('by', '')})"
    if event == "decision":
        title = data.get("title", data.get("inject", ""))
        return f"decision on {title}: {data.get('decision')} ({by})"
    if event == "discussion":
        return f"discussion ({data.get('phase')}): {data.get('question')}"
    if event == "expectation":
        return f"expectation {data.get('id')}: {data.get('status')} ({data.get('by', '')})"
    if event in ("note", "observation"):
        return f"{event} by {data.get('by', '')}: {data.get('text', '')}"
    if event == "rating":
        return f"rating {data.get('phase')}: {data.get('rating')} by {data.get('by', '')}"
    if event == "participant":
        return f"{data.get('name')} joined as {data.get('role_name', data.get('role'))}"
    if event in (
        "run_started",
        "run_resumed",
        "run_finished",
        "exercise_started",
        "exercise_finished",
    ):
        more = f": {data.get('outcome')}" if data.get("outcome") else ""
        return event.replace("_", " ") + more
    if event == "survey":
        return f"survey answer by {data.get('by', '')}"
    if event == "preflight_warning":
        return f"warning: {data.get('warning', '')}"
    return None


# -- building --------------------------------------------------------------------------------------
def build_aar(path: Path) -> Aar:
    """Read an exercise journal into an after-action report. Raises AarError."""
    try:
        record = read_exercise(path)
    except NotAnExercise as exc:
        raise AarError(str(exc)) from None
    scenario = record.scenario
    view = record.view()
    facts = view.facts
    entries = record.entries
    started = entries[0]["ts"] if entries else ""
    ended = entries[-1]["ts"] if entries else ""
    records = view.records

    ratings = {str(r.get("phase")): r for r in records["rating"]}
    discussions = records["discussion"]
    phases = []
    for phase in PHASES:
        spec = scenario.phases.get(phase)  # type: ignore[call-overload]
        expectations = [e for e in view.expectations if e.expectation.phase == phase]
        questions = [d for d in discussions if d.get("phase") == phase]
        if spec is None and not expectations and not questions and phase not in ratings:
            continue
        suggested = suggest_rating(expectations)
        override = ratings.get(phase)
        rating = (
            str(override["rating"]) if override and override.get("rating") in RATINGS else suggested
        )
        phases.append(
            PhaseReport(
                phase,
                PHASE_TITLES[phase],
                expectations,
                suggested,
                rating,
                override if override and override.get("rating") != suggested else None,
                questions,
                list(spec.steps) if spec else [],
            )
        )

    roles = {r.id: r.name for r in scenario.roles}
    due = _default_due(ended)
    plan: list[ImprovementItem] = []
    for item in view.expectations:
        if item.status == "met":
            continue
        spec = item.expectation
        action = spec.improvement or f"Make sure that: {spec.title}"
        why = item.comment or item.status
        plan.append(
            ImprovementItem(
                action,
                roles.get(spec.owner or "", spec.owner or "unassigned"),
                due,
                f"expectation '{spec.id}' {item.status} ({why})",
                spec.phase,
            )
        )
    texts = [("note", r) for r in records["note"]] + [
        ("observation", r) for r in records["observation"]
    ]
    texts += [("discussion", r) for r in discussions] + [("survey", r) for r in records["survey"]]
    for kind, item in texts:
        raw = str(item.get("answer") if kind in ("discussion", "survey") else item.get("text", ""))
        parsed = parse_todo(raw)
        if parsed is None:
            continue
        action, owner, when = parsed
        plan.append(
            ImprovementItem(
                action,
                owner or str(item.get("by") or "unassigned"),
                _valid_day(when) or due,
                f"{kind} by {item.get('by', '')}",
                str(item.get("phase", "")),
            )
        )

    metrics = [
        Metric("Time to first detection", _first(facts, scenario.metrics.detection or _DETECTION)),
        Metric("Time to containment", _first(facts, scenario.metrics.containment)),
        Metric("Time to all credentials rotated", _first(facts, scenario.metrics.rotation)),
    ]

    timeline = []
    for entry, at in zip(facts.entries, facts.times, strict=True):
        text = _line(entry["event"], entry.get("data") or {}, record.steps)
        if text is not None:
            timeline.append(TimelineItem(at, entry["ts"], entry["event"], text))

    survey = []
    for question in scenario.survey:
        answers = [r for r in records["survey"] if r.get("id") == question.id]
        survey.append((question.id, question.question, answers))

    facilitators = sorted(
        {
            str(e["data"].get("by"))
            for e in entries
            if e["event"] in ("observation", "rating", "inject_skipped")
            or (e["event"] == "clock" and e["data"].get("action") not in ("start", "advance"))
            or (e["event"] == "expectation" and e["data"].get("by") != "auto")
            if e["data"].get("by")
        }
    )
    clock_end = facts.clock.now(wall_time(ended)) if ended else 0.0
    final = view.exercise_finished or {}
    return Aar(
        record=record,
        view=view,
        scenario=scenario,
        started=started,
        ended=ended,
        exercise_seconds=float(final.get("exercise_time", clock_end) or clock_end),
        participants=records["participant"],
        facilitators=facilitators,
        phases=phases,
        decisions=records["decision"],
        discussions=discussions,
        survey=survey,
        observations=records["observation"] + records["note"],
        improvement_plan=plan,
        metrics=metrics,
        timeline=timeline,
        score=view.score(),
        must_met=view.must_met(),
        finished=view.finished,
        head=record.verification.head,
        chain_ok=record.verification.ok,
        chain_reason=str(record.verification) if not record.verification.ok else "",
        missing_tools=[str(t) for t in record.started.get("missing_tools") or []],
    )


_DETECTION = Cond.model_validate({"finding": {"severity": ["compromised"]}})


def _first(facts: Facts, cond: Cond | None) -> float | None:
    return None if cond is None else facts.first_moment(cond)


def render_aar(path: Path, fmt: str = "md") -> str:
    """The report of an exercise journal as Markdown (`md`) or self-contained HTML (`html`)."""
    from runbook.exercise.aar_render import to_html, to_markdown

    aar = build_aar(path)
    return to_html(aar) if fmt == "html" else to_markdown(aar)
