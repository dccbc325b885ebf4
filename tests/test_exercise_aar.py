"""The after-action report from a crafted exercise journal: ratings suggested from the
expectations and overridden by the facilitator, strengths and areas for improvement, the
decision log, discussion and survey answers, the improvement plan from failed expectations and
`TODO:` notes, the metrics, the timeline and the head hash; Markdown and one self-contained HTML
file; `runbook exercise report` on the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

import runbook.journal as journal_module
from runbook.exercise.aar import build_aar, parse_todo, render_aar, suggest_rating
from runbook.exercise.model import Scenario
from runbook.exercise.state import ExpectationView
from runbook.journal import Journal, verify
from runbook.redact import Redactor
from tests.exercise_support import SCENARIO

T0 = datetime(2026, 3, 31, 9, 0, tzinfo=UTC).timestamp()


def craft(path: Path, *, finish: bool = True) -> str:
    """An exercise journal whose entries are `seconds` apart on a known wall clock."""
    scenario = Scenario.model_validate(yaml.safe_load(SCENARIO))
    clock = {"t": T0}

    def at(seconds: float) -> None:
        clock["t"] = T0 + seconds

    def now() -> str:
        stamp = datetime.fromtimestamp(clock["t"], UTC).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")

    real = journal_module.utc_now
    journal_module.utc_now = now
    try:
        with Journal(path, Redactor()) as j:
            j.append(
                "run_started",
                {
                    "playbook": {"id": "drill-kinds"},
                    "target": "/w/app",
                    "mode": "exercise",
                    "operator": "alice",
                },
            )
            j.append("exercise_started", {
                "scenario": scenario.id, "title": scenario.title, "variant": "laptop",
                "variant_title": "The loader ran on a laptop", "seed": 42,
                "playbook": "drill-kinds",
                "steps": {"detect": "Find traces", "wipe": "Remove node_modules",
                          "rotate": "Rotate the npm token", "review": "Review the logs"},
                "missing_tools": ["pnpm"],
                "scenario_data": scenario.model_dump(mode="json", by_alias=True,
                                                     exclude_none=True),
            })  # fmt: skip
            j.append(
                "participant", {"name": "alice", "role": "oncall", "role_name": "On-call developer"}
            )
            j.append(
                "participant", {"name": "bob", "role": "ic", "role_name": "Incident commander"}
            )
            j.append("clock", {"action": "start", "exercise_time": 0, "speed": 1, "by": "alice"})
            j.append(
                "inject_fired",
                {
                    "inject": "ci-alert",
                    "title": "CI pulled plain-crypto-js",
                    "by": "clock",
                    "exercise_time": 0,
                    "evidence": [],
                },
            )
            at(60)
            j.append(
                "step_planned",
                {
                    "step": "detect",
                    "findings": [
                        {"kind": "lockfile", "severity": "compromised", "package": "axios"}
                    ],
                },
            )
            j.append("step_started", {"step": "detect"})
            j.append("step_finished", {"step": "detect", "outcome": "succeeded"})
            j.append(
                "expectation",
                {"id": "found", "status": "met", "by": "auto", "exercise_time": 60, "comment": ""},
            )
            at(120)
            j.append(
                "decision",
                {
                    "inject": "ci-alert",
                    "title": "Stop the pipelines?",
                    "options": ["stop all", "stop affected"],
                    "owner": "ic",
                    "decision": "stop all",
                    "rationale": "<b>unsure</b> | which",
                    "by": "bob",
                    "role": "ic",
                },
            )
            j.append(
                "expectation",
                {
                    "id": "decided",
                    "status": "met",
                    "by": "auto",
                    "exercise_time": 120,
                    "comment": "",
                },
            )
            j.append(
                "discussion",
                {
                    "phase": "detect",
                    "question": "Who do you tell first?",
                    "answer": "TODO: page security first [owner: bob] [due: 2026-05-01]",
                    "by": "bob",
                    "role": "ic",
                },
            )
            at(300)
            j.append("clock", {"action": "pause", "exercise_time": 300, "by": "fac"})
            at(900)  # ten minutes of pause
            j.append("clock", {"action": "resume", "exercise_time": 300, "by": "fac"})
            at(1260)  # +11:00 exercise time
            j.append(
                "expectation",
                {
                    "id": "contained",
                    "status": "failed",
                    "by": "auto",
                    "exercise_time": 1200,
                    "comment": "not achieved by the deadline +20:00",
                },
            )
            at(1320)
            j.append("step_started", {"step": "wipe"})
            j.append("step_finished", {"step": "wipe", "outcome": "succeeded"})
            j.append("note", {"text": "TODO: write down the CI runners' owners", "by": "alice"})
            j.append(
                "observation", {"text": "The IC waited for the scan before deciding.", "by": "fac"}
            )
            j.append(
                "expectation",
                {"id": "logs", "status": "met", "by": "auto", "exercise_time": 1300, "comment": ""},
            )
            j.append(
                "expectation",
                {
                    "id": "told",
                    "status": "rejected",
                    "by": "fac",
                    "exercise_time": 1300,
                    "comment": "nobody told security",
                },
            )
            j.append(
                "rating",
                {
                    "phase": "detect",
                    "rating": "S",
                    "by": "fac",
                    "reason": "found fast, but only after the second scan",
                },
            )
            j.append(
                "survey",
                {
                    "id": "confidence",
                    "question": "How confident?",
                    "answer": "3",
                    "by": "alice",
                    "role": "oncall",
                },
            )
            if finish:
                at(1400)
                j.append(
                    "expectation",
                    {
                        "id": "rotated",
                        "status": "failed",
                        "by": "auto",
                        "exercise_time": 1340,
                        "comment": "not achieved by the end of the exercise",
                    },
                )
                j.append("exercise_finished", {"exercise_time": 1340, "score": 25})
                j.append("run_finished", {"outcome": "stopped"})
            return j.head
    finally:
        journal_module.utc_now = real


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "run.jsonl"
    return path, craft(path)


def test_ratings_are_suggested_from_the_expectations_and_overridden(crafted) -> None:
    path, _ = crafted
    aar = build_aar(path)
    ratings = {p.phase: (p.suggested, p.rating) for p in aar.phases}
    assert ratings == {
        "detect": ("P", "S"),  # 10/10 met; the facilitator said S, with a reason
        "contain": ("M", "M"),  # 5/15 met, and the must expectation failed
        "rotate": ("U", "U"),  # 0/10
        "communicate": ("M", "M"),  # 5/10: logs met, told rejected
    }
    detect = aar.phases[0]
    assert detect.override == {
        "phase": "detect", "rating": "S", "by": "fac",
        "reason": "found fast, but only after the second scan",
        "_at": pytest.approx(720), "_ts": "2026-03-31T09:22:00.000Z",
    }  # fmt: skip
    contain = next(p for p in aar.phases if p.phase == "contain")
    assert [e.id for e in contain.strengths] == ["decided"]
    assert [e.id for e in contain.improvements] == ["contained"]
    assert aar.score == (20, 45) and not aar.must_met and aar.finished


def test_suggested_rating_scale() -> None:
    scenario = Scenario.model_validate(yaml.safe_load(SCENARIO))

    def views(*statuses: str) -> list[ExpectationView]:
        return [
            ExpectationView(e, status=s)
            for e, s in zip(scenario.expectations, statuses, strict=False)
        ]

    # found (10, must), contained (10, must), rotated (10), logs (5), decided (5), told (5)
    assert suggest_rating([]) is None
    assert suggest_rating(views("met", "met", "met", "met", "met", "met")) == "P"
    assert suggest_rating(views("met", "met", "met", "met", "failed", "met")) == "S"  # 40/45
    assert suggest_rating(views("failed", "met", "met", "met", "met", "met")) == "M"  # must
    assert suggest_rating(views("met", "failed", "failed", "failed", "failed", "met")) == "M"
    assert suggest_rating(views("failed", "failed", "failed", "met", "failed", "failed")) == "U"


def test_improvement_plan_metrics_and_timeline(crafted) -> None:
    path, head = crafted
    aar = build_aar(path)
    plan = [(i.action, i.owner, i.due, i.source) for i in aar.improvement_plan]
    assert plan == [
        ("Make sure that: node_modules removed", "unassigned", "2026-04-30",
         "expectation 'contained' failed (not achieved by the deadline +20:00)"),
        ("Make sure that: The token is rotated", "unassigned", "2026-04-30",
         "expectation 'rotated' failed (not achieved by the end of the exercise)"),
        ("Make sure that: Security was told", "unassigned", "2026-04-30",
         "expectation 'told' rejected (nobody told security)"),
        ("write down the CI runners' owners", "alice", "2026-04-30", "note by alice"),
        ("page security first", "bob", "2026-05-01", "discussion by bob"),
    ]  # fmt: skip
    metrics = {m.name: m.seconds for m in aar.metrics}
    assert metrics == {
        "Time to first detection": 60,
        "Time to containment": pytest.approx(720),  # the ten-minute pause does not count
        "Time to all credentials rotated": None,
    }
    texts = [t.text for t in aar.timeline]
    assert "inject ci-alert: CI pulled plain-crypto-js (by clock)" in texts
    assert "clock pause (by fac)" in texts and "step wipe: succeeded" in texts
    assert aar.head == head and aar.chain_ok
    assert [d["decision"] for d in aar.decisions] == ["stop all"]
    assert aar.participants[1]["role_name"] == "Incident commander"
    assert aar.facilitators == ["fac"]
    assert aar.missing_tools == ["pnpm"]


def test_parse_todo() -> None:
    assert parse_todo("TODO: a thing") == ("a thing", None, None)
    assert parse_todo("  TODO: rotate [owner: cloud team] [due: 2026-06-01] now") == (
        "rotate now",
        "cloud team",
        "2026-06-01",
    )
    assert parse_todo("todo: lower case is not a TODO") is None
    assert parse_todo("not a TODO: here") is None


def test_markdown_follows_the_aar_ip_structure(crafted) -> None:
    path, head = crafted
    text = render_aar(path, "md")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# After-action report: A small drill",
        "## 1. Exercise overview",
        "## 2. Metrics",
        "## 3. Analysis of phases",
        "### Detect: S (Performed with some challenges)",
        "### Contain: M (Performed with major challenges)",
        "### Rotate credentials: U (Unable to be performed)",
        "### Communicate: M (Performed with major challenges)",
        "## 4. Decision log",
        "## 5. Observations",
        "## 6. Lessons-learned survey",
        "## 7. Improvement plan",
        "## Appendix A. Timeline",
        "## Appendix B. Integrity",
    ]
    assert "| Participants | alice (On-call developer); bob (Incident commander) |" in text
    assert "| Variant | laptop: The loader ran on a laptop |" in text
    assert "| Seed | 42 |" in text
    assert (
        "Rating set by fac: found fast, but only after the second scan (suggested from the "
        "expectations: P)" in text
    )
    assert "| Time to containment | +12:00 |" in text
    assert "<b>unsure</b> \\| which" in text  # a table cell cannot be split by a '|'
    assert f"Head hash: `{head}`" in text and "Hash chain: intact." in text
    assert "| page security first | bob | 2026-05-01 | Detect | discussion by bob |" in text


def test_html_is_one_self_contained_file(crafted, tmp_path: Path) -> None:
    path, head = crafted
    page = render_aar(path, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "url(" not in page
    assert "&lt;b&gt;unsure&lt;/b&gt;" in page and "<b>unsure" not in page
    assert "@media print" in page
    assert '<span class="rating r-S">S</span>Detect' in page
    assert head in page
    for heading in (
        "1. Exercise overview",
        "4. Decision log",
        "7. Improvement plan",
        "Appendix A. Timeline",
        "Appendix B. Integrity",
    ):
        assert f"<h2>{heading}</h2>" in page


def test_report_of_an_unfinished_exercise_says_so(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    craft(path, finish=False)
    aar = build_aar(path)
    assert not aar.finished
    rotated = next(e for p in aar.phases for e in p.expectations if e.id == "rotated")
    assert rotated.status == "pending"
    assert "The exercise has not finished" in render_aar(path, "md")
    assert "not assessed" in render_aar(path, "md")


def test_cli_writes_both_formats(crafted, run_cli, tmp_path: Path) -> None:
    path, head = crafted
    result = run_cli("exercise", "report", path, "-o", tmp_path / "aar.html")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "aar.html").read_text().startswith("<!DOCTYPE html>")
    result = run_cli("exercise", "report", tmp_path)  # the exercise directory names the run
    assert result.returncode == 0 and result.stdout.startswith("# After-action report")
    assert verify(path, head).ok, "the report only reads"


def test_not_an_exercise_and_broken_journals(run_cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    with Journal(plain, Redactor()) as j:
        j.append("run_started", {"mode": "live", "target": "/x"})
    result = run_cli("exercise", "report", plain)
    assert result.returncode == 2
    assert "is a live run, not an exercise (use `runbook report` for it)" in result.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"seq": 1}\n')
    result = run_cli("exercise", "report", broken)
    assert result.returncode == 2 and "journal entry 1 is malformed" in result.stderr
    result = run_cli("exercise", "report", tmp_path / "missing.jsonl")
    assert result.returncode == 2 and "cannot read" in result.stderr
    for output in (result.stdout, result.stderr):
        assert "Traceback" not in output


def test_rating_and_observing_from_a_shell(crafted, run_cli) -> None:
    path, _ = crafted
    result = run_cli(
        "exercise", "rate", path, "contain", "P", "--reason", "the IC stopped CI at once",
        "--operator", "fran",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert run_cli("exercise", "observe", path, "TODO: drill CI runners").returncode == 0
    joined = run_cli("exercise", "join", path, "--role", "ic", "--operator", "carol")
    assert joined.returncode == 0, joined.stderr
    refused = run_cli("exercise", "join", path, "--role", "chef")
    assert refused.returncode == 1 and "unknown role 'chef'; roles: oncall, ic" in refused.stderr
    aar = build_aar(path)
    assert [p["name"] for p in aar.participants] == ["alice", "bob", "carol"]
    contain = next(p for p in aar.phases if p.phase == "contain")
    assert (contain.suggested, contain.rating) == ("M", "P")
    assert contain.override and contain.override["by"] == "fran"
    assert "drill CI runners" in [i.action for i in aar.improvement_plan]
    assert verify(path).ok
    result = run_cli("exercise", "rate", path, "contain", "P", "--reason", " ")
    assert result.returncode == 1 and "give the reason for the rating" in result.stderr
