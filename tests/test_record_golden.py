"""Golden files: every format of the incident record, from the frozen fixture journals.

The fixtures (tests/fixtures/record/, made by real runs: see make_journals.py there) cover two
hosts, a resumed run and an earlier copy of it, a dry run, a failed step, a note, checklists, a
signed journal, a tampered journal and a file that is not a journal. After a deliberate change of
a format (or of the fixtures), regenerate and review the diff:

    RUNBOOK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_record_golden.py -q
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from runbook.journal import read_entries
from tests.record_support import FIXTURES, GOLDEN, JOURNALS, call
from tests.support.kinds import register

UPDATE = os.environ.get("RUNBOOK_UPDATE_GOLDEN") == "1"
FORMATS = {
    "md": "record.md",
    "json": "record.json",
    "html": "record.html",
    "timeline-jsonl": "timeline.jsonl",
    "timeline-csv": "timeline.csv",
    "cacao-status": "cacao-status.json",
}


def _compare(produced: str, name: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run with RUNBOOK_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    assert produced == expected, f"{name} differs from its golden file (see module docstring)"


def _report(fmt: str, out: Path) -> str:
    result = call(
        "report",
        "journals",
        "--incident",
        "axios 2026-03 (fixture)",
        "--allowed-signers",
        "allowed_signers",
        "--format",
        fmt,
        "-o",
        out,
    )
    # a tampered journal and a foreign file are in the folder: the report is written, exit 1
    assert result.code == 1, result.err
    assert result.out == ""
    assert "journals/build-host-2/live.jsonl:8: not used: chain broken at line 8" in result.err
    assert "journals/collected-early/notes.jsonl:1: not used: not a runbook journal" in result.err
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_golden(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    produced = _report(fmt, tmp_path / "out")
    assert _report(fmt, tmp_path / "again") == produced, "the output is deterministic"
    _compare(produced, FORMATS[fmt])


def test_golden_cacao_playbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register()  # the fixture playbook uses a test step kind (test_flaky)
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1774915200")  # 2026-03-31T00:00:00Z
    result = call("export", "cacao", "playbook.yaml", "-o", tmp_path / "pb.json")
    assert result.code == 0, result.err
    produced = (tmp_path / "pb.json").read_text()
    assert json.loads(produced)["created"] == "2026-03-31T00:00:00.000Z"
    _compare(produced, "cacao-playbook.json")


# -- what the golden files must say (so a regenerated file is checked, not just trusted) --------
def _golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def test_markdown_says_what_the_issue_asks() -> None:
    md = _golden("record.md")
    problems = md.index("## Journals that could not be used")
    assert problems < md.index("## Summary by host and target") < md.index("## Timeline")
    assert "`journals/build-host-2/live.jsonl`:8 | no | broken | chain broken at line 8" in md
    summary = md.split("## Summary by host and target")[1].split("\n## ")[0]
    assert "| build-host-2 | `/tmp/rb-incident/dana/src/web-app` | **unknown** |" in summary
    assert "| laptop-ana | `/tmp/rb-incident/ana/src/web-app` | **compromised** |" in summary
    assert "ana@example.test (ED25519 SHA256:" in md.split("## Live runs")[1]
    assert "## Dry runs" in md and "failed (build failed)" in md.split("## Dry runs")[1]
    assert "| **Note**: build fails on the CI cache" in md
    assert "Filed the incident ticket (outstanding; run `5536bf8c2265`" in md


def test_jsonl_objects_and_idempotency_keys() -> None:
    objects = [json.loads(line) for line in _golden("timeline.jsonl").splitlines()]
    keys = {
        "ts",
        "end_ts",
        "title",
        "description",
        "actor",
        "source",
        "type",
        "visibility",
        "refs",
        "details",
        "idempotency_key",
    }
    assert all(set(o) == keys for o in objects)
    assert {o["type"] for o in objects} <= {
        "command",
        "edit",
        "delete",
        "checklist",
        "decision",
        "note",
        "finding",
    }
    assert {o["type"] for o in objects} >= {"edit", "delete", "checklist", "decision", "note"}
    hashes = {
        e["hash"]
        for journal in (
            "laptop-ana/live.jsonl",
            "laptop-ana/dry-run.jsonl",
            "ci-runner-7/live.jsonl",
        )
        for e in read_entries(JOURNALS / journal)
    }
    assert {o["idempotency_key"] for o in objects} <= hashes
    assert len({o["idempotency_key"] for o in objects}) == len(objects)
    assert all(o["visibility"] == "internal" for o in objects)
    dry = [o for o in objects if o["details"]["mode"] == "dry-run"]
    assert dry and all(o["title"].startswith("[dry run] ") for o in dry)
    step = next(o for o in objects if o["title"] == "pin: succeeded")
    assert step["ts"] < step["end_ts"]  # a step's item spans from its start to its end


def test_csv_is_dispatchs_timeline_export() -> None:
    rows = list(csv.reader(io.StringIO(_golden("timeline.csv"), newline="")))
    assert rows[0] == ["Time (in UTC)", "Description", "Owner"]
    assert len(rows) == len(_golden("timeline.jsonl").splitlines()) + 1
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    assert any(
        r[1].startswith("[ci-runner-7 /tmp/rb-incident/ci/builds/api-service] ") for r in rows
    )
    assert {r[2] for r in rows[1:]} == {"ana", "ben", "ci-bot"}
