"""A person at a plain terminal: checklist answers, typed confirmation, skip; `when` on findings."""

from __future__ import annotations

import io

from runbook.journal import Journal
from runbook.operator import ConsoleOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor
from runbook.runner import Runner
from tests.support.kinds import register
from tests.test_runner import write_playbook

register()


def run_with_answers(tmp_path, project, steps: str, answers: str) -> tuple[Runner, str]:
    loaded = load_playbook(write_playbook(tmp_path, steps))
    redactor = Redactor()
    out = io.StringIO()
    operator = ConsoleOperator("alice", stdin=io.StringIO(answers), stdout=out)
    journal = Journal(tmp_path / "journal.jsonl", redactor)
    runner = Runner(
        loaded,
        project,
        journal,
        operator,
        dry_run=False,
        redactor=redactor,
        env={"HOME": str(tmp_path)},
    )
    runner.summary = runner.run_all()
    journal.close()
    return runner, out.getvalue()


def entries(runner: Runner, event: str) -> list[dict]:
    return [e["data"] for e in runner.journal.entries if e["event"] == event]


def test_checklist_answers_are_journaled(tmp_path, project):
    runner, shown = run_with_answers(
        tmp_path,
        project,
        """\
  - id: check
    uses: manual
    title: Check things
    with: {items: [one, {id: two, text: Second thing}, three]}
""",
        "y\nmaybe\nn\nl\n",
    )
    answers = [(d["item"], d["answer"], d["by"]) for d in entries(runner, "manual_item")]
    assert answers == [
        ("item-1", "done", "alice"),
        ("two", "declined", "alice"),
        ("item-3", "outstanding", "alice"),
    ]
    assert "Second thing" in shown
    assert entries(runner, "step_finished")[0]["outcome"] == "outstanding"


def test_confirm_always_on_a_destructive_step_needs_the_step_id_typed(tmp_path, project):
    steps = "  - {id: wipe, uses: test_wipe, title: Wipe, confirm: always}\n"
    runner, shown = run_with_answers(tmp_path, project, steps, "y\nwipe\n")
    assert "Type 'wipe' to apply" in shown
    assert entries(runner, "step_confirmed") == [
        {"step": "wipe", "answer": "yes", "by": "alice", "reason": "", "typed": True}
    ]
    assert not (project / "node_modules").exists()


def test_declining_stops_the_run_and_keeps_everything(tmp_path, project):
    steps = (
        "  - {id: wipe, uses: test_wipe, title: Wipe}\n  - {id: after, uses: test_slow, title: A}\n"
    )
    runner, _ = run_with_answers(tmp_path, project, steps, "n\n")
    assert runner.summary.outcome == "stopped"
    assert runner.summary.reason == "alice declined step 'wipe'"
    assert (project / "node_modules").is_dir()
    assert not (project / "runlog.txt").exists()


def test_skip_at_the_prompt_asks_for_a_reason(tmp_path, project):
    steps = "  - {id: wipe, uses: test_wipe, title: Wipe}\n"
    runner, shown = run_with_answers(tmp_path, project, steps, "s\n\nkeep for forensics\n")
    assert shown.count("Reason for skipping") == 2
    assert entries(runner, "step_skipped") == [
        {"step": "wipe", "reason": "keep for forensics", "by": "alice"}
    ]
    assert (project / "node_modules").is_dir()


def test_when_conditions_on_findings(tmp_path, project):
    runner, _ = run_with_answers(
        tmp_path,
        project,
        """\
  - {id: scan, uses: test_find, title: Scan, with: {severities: [at-risk, info]}}
  - {id: if-any, uses: test_slow, title: A, when: {step: scan, findings: any}}
  - {id: if-none, uses: test_slow, title: B, when: {step: scan, findings: none}}
  - {id: if-compromised, uses: test_slow, title: C, when: {step: scan, findings: [compromised]}}
  - id: if-both
    uses: test_slow
    title: D
    when:
      - {step: scan, findings: [at-risk]}
      - {step: if-any, outcome: succeeded}
""",
        "",
    )
    status = {d["step"]: d["outcome"] for d in entries(runner, "step_finished")}
    skipped = {d["step"]: d["reason"] for d in entries(runner, "step_skipped")}
    assert status == {"scan": "succeeded", "if-any": "succeeded", "if-both": "succeeded"}
    assert skipped == {
        "if-none": "condition not met (scan: findings none)",
        "if-compromised": "condition not met (scan: findings of severity compromised)",
    }
