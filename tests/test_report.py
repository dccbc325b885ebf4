"""The post-incident action log, rendered from a real journal written by `runbook run`."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook import __version__
from runbook.journal import read_entries

PLAYBOOK = """\
id: report-test
title: Report test playbook
version: "1.2.3"
incident:
  summary: A test incident for the report.
  window:
    start: "2026-03-31T00:21:00Z"
    end: "2026-03-31T03:29:00Z"
  packages:
    - name: axios
      bad_versions: ["1.14.1"]
      safe_pins: {"1": "1.14.0"}
steps:
  - id: rotate
    uses: manual
    title: Rotate credentials by hand
    with:
      items:
        - Revoke the npm token of the CI user
        - Rotate the AWS keys of the build host
  - id: inform
    uses: manual
    title: Tell people
    with:
      items: [Tell the security team]
"""
ITEMS = [
    ("rotate", "Revoke the npm token of the CI user"),
    ("rotate", "Rotate the AWS keys of the build host"),
    ("inform", "Tell the security team"),
]
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
HEAD = re.compile(r"^head: ([0-9a-f]{64})$", re.M)


@dataclass
class Run:
    journal: Path
    run_head: str
    note_head: str
    note: str


@pytest.fixture
def finished_run(run_cli, project: Path, tmp_path: Path) -> Run:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    journal = tmp_path / "runs" / "journal.jsonl"
    proc = run_cli(
        "run", playbook, "--dry-run", "--target", project, "--journal", journal, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DRY RUN" in proc.stdout
    match = HEAD.search(proc.stdout)
    assert match, proc.stdout
    run_head = match[1]
    assert read_entries(journal)[-1]["hash"] == run_head

    # the run's head verifies the journal exactly as it was at the end of the run
    verified = run_cli("audit", "verify", journal, "--head", run_head)
    assert verified.returncode == 0, verified.stdout

    note = "Called the CI owner; token revocation scheduled for 14:00 UTC"
    added = run_cli("note", journal, note)
    assert added.returncode == 0, added.stderr
    note_head = re.search(r"head: ([0-9a-f]{64})", added.stdout)
    assert note_head, added.stdout
    return Run(journal, run_head, note_head[1], note)


def render(run_cli, journal: Path, *args: str | Path) -> str:
    proc = run_cli("report", journal, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def header(markdown: str) -> dict[str, str]:
    rows = {}
    for line in markdown.split("## Timeline")[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] and not cells[0].startswith("---"):
            rows[cells[0]] = cells[1]
    return rows


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_markdown_report(run_cli, finished_run: Run, project: Path) -> None:
    entries = read_entries(finished_run.journal)
    md = render(run_cli, finished_run.journal)
    assert md.startswith("# Action log: Report test playbook\n")
    rows = header(md)
    assert rows["Playbook"].startswith("`report-test` v1.2.3 (sha256 `")
    assert rows["Operator"] == "test-operator"
    assert rows["Host"] == socket.gethostname()
    assert rows["Mode"] == "dry-run"
    assert rows["Target"] == f"`{project.resolve()}`"
    assert re.fullmatch(TS, rows["Started (UTC)"])
    assert rows["Started (UTC)"] == entries[0]["ts"]
    finished = [e for e in entries if e["event"] == "run_finished"]
    assert rows["Ended (UTC)"] == finished[-1]["ts"]
    assert rows["Outcome"] == "completed"
    assert rows["Tool version"] == f"runbook {__version__}"
    assert rows["Audit chain"] == f"intact, {len(entries)} entries"
    # the note came after the run: the head moved on from the one the run printed
    assert rows["Head hash"] == f"`{finished_run.note_head}`"
    assert entries[-1]["prev"] == finished_run.run_head

    timeline = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section(md, "Timeline").splitlines()
        if re.match(rf"\| {TS} \|", line)
    ]
    assert len(timeline) == len([e for e in entries if e["event"] != "step_started"])
    assert timeline[0][1:] == ["", "run started (dry-run)", "by test-operator"]
    for step, text in ITEMS:
        assert [step, f"checklist: {text}", "outstanding"] in [row[1:] for row in timeline]
    assert ["rotate", "finished", "outstanding: 0/2 done, 2 outstanding"] in [
        row[1:] for row in timeline
    ]
    assert timeline[-2][1:] == ["", "run finished", "completed"]
    assert timeline[-1][1:] == ["", "note", finished_run.note]
    assert [row[0] for row in timeline] == sorted(row[0] for row in timeline)

    outstanding = section(md, "Outstanding manual items")
    for step, text in ITEMS:
        assert f"- [ ] **{step}**: {text} (outstanding)" in outstanding
    notes = section(md, "Notes").strip().splitlines()
    assert len(notes) == 1
    assert re.fullmatch(rf"- {TS} test-operator: {re.escape(finished_run.note)}", notes[0])
    assert "No findings were recorded." in section(md, "Findings")


def test_report_before_the_note_shows_the_run_head(run_cli, project: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    journal = tmp_path / "journal.jsonl"
    proc = run_cli("run", playbook, "--dry-run", "--target", project, "--journal", journal)
    run_head = HEAD.search(proc.stdout)
    assert run_head, proc.stdout
    rows = header(render(run_cli, journal))
    assert rows["Head hash"] == f"`{run_head[1]}`"
    assert rows["Audit chain"].startswith("intact, ")
    assert section(render(run_cli, journal), "Notes").strip() == "None."


def test_json_report(run_cli, finished_run: Run, project: Path) -> None:
    entries = read_entries(finished_run.journal)
    report = json.loads(render(run_cli, finished_run.journal, "--format", "json"))
    assert report["schema"] == "runbook.report/v1"
    assert report["playbook"]["id"] == "report-test"
    assert report["playbook"]["version"] == "1.2.3"
    assert re.fullmatch(r"[0-9a-f]{64}", report["playbook"]["sha256"])
    assert report["operator"] == "test-operator"
    assert report["host"] == socket.gethostname()
    assert report["mode"] == "dry-run"
    assert report["target"] == str(project.resolve())
    assert report["tool_version"] == __version__
    assert report["started"] == entries[0]["ts"]
    assert report["ended"] == next(e["ts"] for e in entries if e["event"] == "run_finished")
    assert report["outcome"] == "completed"
    assert report["chain"] == {
        "ok": True,
        "entries": len(entries),
        "head": finished_run.note_head,
        "problem": None,
    }
    assert [(o["step"], o["text"], o["answer"]) for o in report["outstanding"]] == [
        (step, text, "outstanding") for step, text in ITEMS
    ]
    assert [o["item"] for o in report["outstanding"]] == ["item-1", "item-2", "item-1"]
    assert report["findings"] == []
    assert [(n["by"], n["text"]) for n in report["notes"]] == [("test-operator", finished_run.note)]
    events = [row["action"] for row in report["timeline"]]
    assert events[0] == "run started (dry-run)" and events[-1] == "note"
    assert {"time", "step", "event", "action", "outcome"} == set(report["timeline"][0])


def test_tampered_journal_is_reported_broken(run_cli, finished_run: Run) -> None:
    journal = finished_run.journal
    lines = journal.read_bytes().splitlines()
    number = next(
        i
        for i, line in enumerate(lines, start=1)
        if b"Rotate the AWS keys" in line and b'"manual_item"' in line
    )
    lines[number - 1] = lines[number - 1].replace(b'"outstanding"', b'"done"', 1)
    journal.write_bytes(b"\n".join(lines) + b"\n")

    verified = run_cli("audit", "verify", journal)
    assert verified.returncode == 1
    assert verified.stdout.startswith(f"{journal}:{number}: chain broken:")

    md = render(run_cli, journal)
    chain = header(md)["Audit chain"]
    assert chain.startswith(f"BROKEN (line {number}: hash does not match")
    report = json.loads(render(run_cli, journal, "--format", "json"))
    assert report["chain"]["ok"] is False
    assert report["chain"]["problem"].startswith(f"line {number}:")
    assert report["chain"]["entries"] == number - 1


def test_output_file(run_cli, finished_run: Run, tmp_path: Path) -> None:
    for fmt in ("md", "json"):
        out = tmp_path / f"report.{fmt}"
        proc = run_cli("report", finished_run.journal, "--format", fmt, "-o", out)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
        assert out.read_text(encoding="utf-8") == render(
            run_cli, finished_run.journal, "--format", fmt
        )
    assert json.loads((tmp_path / "report.json").read_text())["playbook"]["id"] == "report-test"
    assert (tmp_path / "report.md").read_text().startswith("# Action log: ")


def test_secrets_in_notes_stay_out_of_journal_and_report(
    run_cli, finished_run: Run, tmp_path: Path
) -> None:
    aws = "AKIA" + "R" * 16
    npm = "npm_" + "k9" * 18
    proc = run_cli("note", finished_run.journal, f"old key {aws} and token {npm} revoked")
    assert proc.returncode == 0, proc.stderr
    raw = finished_run.journal.read_text()
    md = render(run_cli, finished_run.journal)
    js = render(run_cli, finished_run.journal, "--format", "json")
    for text in (raw, md, js):
        assert aws not in text and npm not in text
    assert f"old key AKIA…{aws[-4:]} [sha256:" in md


def test_missing_journal_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    proc = run_cli("report", tmp_path / "nope.jsonl")
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr
