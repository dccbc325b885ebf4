"""`report_many`, the handler `runbook report` calls: exit codes, output files, the one-journal
report kept as it was (with its signature added), and hostile text in every human format."""

from __future__ import annotations

import json
from pathlib import Path

from runbook.journal import Journal
from runbook.signing import sign
from tests.record_support import JOURNALS, call, finished, ssh_key, started, step, write


def test_exit_codes_and_output(tmp_path: Path) -> None:
    good = call("report", JOURNALS / "laptop-ana", JOURNALS / "ci-runner-7")
    assert good.code == 0 and good.err == ""
    assert good.out.startswith("# Incident record: ")
    (tmp_path / "empty").mkdir()
    empty = call("report", tmp_path / "empty")
    assert (empty.code, empty.out) == (2, "")
    assert "no journal (*.jsonl) under" in empty.err
    missing = call("report", JOURNALS, tmp_path / "missing.jsonl")
    assert missing.code == 2 and "cannot read" in missing.err and missing.out == ""
    nowhere = call("report", JOURNALS / "laptop-ana", "-o", tmp_path / "no" / "dir" / "r.md")
    assert nowhere.code == 2 and "cannot write" in nowhere.err
    signers = call("report", JOURNALS, "--allowed-signers", tmp_path / "none")
    assert signers.code == 2 and "no allowed signers file" in signers.err


def test_only_unusable_journals_still_give_a_record(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("garbage\n")
    result = call("report", tmp_path, "--format", "json")
    assert result.code == 1
    record = json.loads(result.out)
    assert record["runs"] == [] and record["problems"][0]["kind"] == "foreign"


def test_one_journal_keeps_its_report_and_gains_its_signature(tmp_path: Path) -> None:
    journal = write(tmp_path / "j.jsonl", [started(), *step("detect", "succeeded"), finished()])
    plain = call("report", journal)
    assert plain.code == 0 and plain.out.startswith("# Action log: ")
    assert "## Signature" not in plain.out
    key, line = ssh_key(tmp_path / "keys", "ana@example.test")
    allowed = tmp_path / "allowed"
    allowed.write_text(line)
    sign(journal, key)
    md = call("report", journal, "--allowed-signers", allowed)
    assert md.code == 0
    assert md.out.startswith(plain.out)  # the report as it was, then the signature
    assert f"## Signature\n\n{journal}.sig: signed by ana@example.test (ED25519 SHA256:" in md.out
    data = json.loads(call("report", journal, "--format", "json").out)
    assert data["schema"] == "runbook.report/v1"
    assert data["signature"]["ok"] is True and "signer not checked" in data["signature"]["text"]
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[:-1]))
    cut = call("report", journal, "--allowed-signers", allowed)
    assert cut.code == 1 and "cut short or rewritten" in cut.err


def test_hostile_text_is_shown_escaped(tmp_path: Path) -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07 | <script>alert(1)</script> \u202eevil"
    path = tmp_path / "j.jsonl"
    with Journal(path, lambda data: data) as journal:
        journal.append(*started(operator=hostile, target=f"/srv/{hostile}"))
        journal.append("note", {"text": hostile, "by": hostile})
        journal.append(*finished())
    for fmt in ("md", "html", "timeline-csv"):
        result = call("report", path, "--incident", hostile, "--format", fmt)
        assert result.code == 0, result.err
        text = result.out
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, fmt
        assert "\\x1b[2J" in text and "\\u202e" in text, fmt
        if fmt != "timeline-csv":  # a CSV cell is text, not markup
            assert "<script>" not in text, fmt
    md = call("report", path, "--incident", "x").out
    assert "\\| &lt;script>" in md
    html = call("report", path, "--format", "html").out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # machine formats keep the text exactly, escaped by JSON's own rules
    jsonl = call("report", path, "--format", "timeline-jsonl").out
    note = json.loads(jsonl.splitlines()[1])
    assert note["description"] == hostile and "\x1b" not in jsonl
