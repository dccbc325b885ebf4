"""The incident record through the real `runbook` command.

These need the wiring in runbook/cli.py (`report` taking many paths and the new formats, the
`export` command, `audit sign`, `audit verify --signature --allowed-signers`): until it is in,
they fail with argparse's usage errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.record_support import ALLOWED, copy_fixtures, finished, ssh_key, started, write


def test_help_lists_the_new_commands(run_cli) -> None:
    assert "export" in run_cli("--help").stdout
    report = run_cli("report", "--help").stdout
    for option in ("--incident", "--allowed-signers", "timeline-jsonl", "cacao-status", "html"):
        assert option in report
    assert "--key" in run_cli("audit", "sign", "--help").stdout
    verify = run_cli("audit", "verify", "--help").stdout
    assert "--signature" in verify and "--allowed-signers" in verify


def test_report_merges_a_folder(run_cli, tmp_path: Path) -> None:
    copy_fixtures(tmp_path)
    out = tmp_path / "record.md"
    proc = run_cli(
        "report",
        "journals",
        "--incident",
        "axios",
        "--allowed-signers",
        ALLOWED,
        "-o",
        out,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr  # a tampered journal is in the folder
    assert "journals/build-host-2/live.jsonl:8: not used: chain broken at line 8" in proc.stderr
    md = out.read_text()
    assert md.startswith("# Incident record: axios\n")
    assert md.index("## Journals that could not be used") < md.index("## Summary by host")
    assert "ana@example.test" in md


def test_every_format(run_cli, tmp_path: Path) -> None:
    journals = copy_fixtures(tmp_path)
    good = [journals / "laptop-ana", journals / "ci-runner-7"]

    def report(fmt: str) -> str:
        proc = run_cli("report", *good, "--format", fmt)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert json.loads(report("json"))["schema"] == "runbook.record/v1"
    assert report("html").startswith("<!DOCTYPE html>")
    lines = report("timeline-jsonl").splitlines()
    assert lines and all("idempotency_key" in json.loads(line) for line in lines)
    rows = list(csv.reader(io.StringIO(report("timeline-csv"))))
    assert rows[0] == ["Time (in UTC)", "Description", "Owner"]
    records = json.loads(report("cacao-status"))
    assert records and {r["type"] for r in records} == {"execution-status"}
    assert report("md").startswith("# Incident record: ")


def test_one_journal_is_reported_as_before(run_cli, tmp_path: Path) -> None:
    journal = write(tmp_path / "j.jsonl", [started(), finished()])
    proc = run_cli("report", journal, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schema"] == "runbook.report/v1"


def test_bad_input(run_cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("report", tmp_path / "empty")
    assert proc.returncode == 2 and "no journal (*.jsonl) under" in proc.stderr
    proc = run_cli("report", tmp_path / "missing.jsonl", tmp_path / "empty")
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    write(tmp_path / "ok" / "j.jsonl", [started(), finished()])
    (tmp_path / "ok" / "foreign.jsonl").write_text("not json\n")
    proc = run_cli("report", tmp_path / "ok")
    assert proc.returncode == 1
    assert "foreign.jsonl:1: not used: not a runbook journal" in proc.stderr
    assert "## Summary by host and target" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_export_cacao(run_cli, tmp_path: Path) -> None:
    proc = run_cli("export", "cacao", "axios-2026-03")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert (document["type"], document["spec_version"]) == ("playbook", "cacao-2.0")
    assert document["playbook_types"] == ["remediation"]
    assert run_cli("export", "cacao", tmp_path / "nope.yaml").returncode == 2


def test_audit_sign_and_verify(run_cli, tmp_path: Path) -> None:
    journal = write(tmp_path / "j.jsonl", [started(), finished()])
    key, line = ssh_key(tmp_path / "keys", "ana@example.test")
    allowed = tmp_path / "allowed"
    allowed.write_text(line)
    signed = run_cli("audit", "sign", journal, "--key", key)
    assert signed.returncode == 0, signed.stderr
    assert (tmp_path / "j.jsonl.sig").is_file()
    verified = run_cli(
        "audit",
        "verify",
        journal,
        "--signature",
        tmp_path / "j.jsonl.sig",
        "--allowed-signers",
        allowed,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "signed by ana@example.test" in verified.stdout
    # the plain chain check is unchanged
    assert run_cli("audit", "verify", journal).returncode == 0
    journal.write_bytes(journal.read_bytes().replace(b'"completed"', b'"failed"'))
    broken = run_cli("audit", "verify", journal, "--allowed-signers", allowed)
    assert broken.returncode == 1 and "chain broken" in broken.stdout
