"""Journals that are not what they claim: FIFOs and devices (never waited on, never read without
bound), entries of the wrong shape (a message naming the line, exit 2, never a traceback), text
with terminal escape sequences (shown escaped in Markdown and on the terminal)."""

from __future__ import annotations

import copy
import json
import os
import re
import resource
from pathlib import Path
from typing import Any

import pytest

from runbook.cli import main
from runbook.journal import FIELDS, Journal, canonical, read_entries, verify
from runbook.redact import Redactor
from runbook.runs import find_unfinished
from tests.test_engine_hostile_undo import rechain
from tests.test_report import PLAYBOOK
from tests.test_undo import STEPS, live_run, make_project

MALFORMED = re.compile(r"journal entry (\d+) is malformed: ")
MEMORY_CAP = 2 << 30


def capped() -> None:
    """Cap a child's address space: a regression reading /dev/zero fails, it does not take the
    machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


# -- FIFOs and devices --------------------------------------------------------------------------
@pytest.fixture
def traps(tmp_path: Path) -> list[Path]:
    """A FIFO (nobody ever writes to it) and a symlink to /dev/zero, both named like journals."""
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    return [fifo, zero]


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "verify"],
        ["report"],
        ["report", "--format", "json"],
        ["undo", "--dry-run"],
    ],
)
def test_reading_commands_refuse_a_fifo_or_device_at_once(run_cli, traps, command) -> None:
    for journal in traps:
        # without the fix, a FIFO blocks forever and /dev/zero is read until memory runs out
        result = run_cli(*command, journal, timeout=20, preexec_fn=capped)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"runbook: cannot read {journal}: " in result.stderr
        assert "not a regular file" in result.stderr
        assert "Traceback" not in result.stderr


def test_note_and_run_refuse_a_fifo_journal(run_cli, traps, project: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    for journal in traps:
        note = run_cli("note", journal, "text", timeout=20, preexec_fn=capped)
        assert note.returncode == 2 and "Traceback" not in note.stderr, note.stderr
        run = run_cli(
            "run",
            playbook,
            "--dry-run",
            "--target",
            project,
            "--journal",
            journal,
            timeout=30,
            preexec_fn=capped,
        )
        assert run.returncode == 1, run.stdout + run.stderr
        assert "not a regular file" in run.stderr
        assert "Traceback" not in run.stderr


def test_resume_scan_passes_over_fifos_in_the_state_dir(
    run_cli, project: Path, tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    folder = Path(sandbox_env["XDG_STATE_HOME"]) / "runbook" / "report-test"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "20260101T000000Z-aaaaaa.jsonl")
    (folder / "20260101T000000Z-bbbbbb.jsonl").symlink_to("/dev/zero")
    (folder / "20260101T000000Z-cccccc.jsonl").symlink_to(tmp_path / "missing")
    assert find_unfinished(sandbox_env, "report-test", project.resolve(), "dry-run") is None

    result = run_cli(
        "run", playbook, "--dry-run", "--target", project, timeout=60, preexec_fn=capped
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running report-test" in result.stdout, "a new run, not a resumed FIFO"


# -- malformed entries --------------------------------------------------------------------------
WRONG: list[Any] = [None, True, 7, "text", [1, 2], {"k": "v"}]


def _call(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """The real CLI in-process (fast enough to fuzz); an exception here is a traceback."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _wrong_for(value: Any) -> list[Any]:
    return [w for w in WRONG if type(w) is not type(value)]


@pytest.fixture
def real_run(tmp_path: Path, sandbox_env: dict[str, str]) -> tuple[Path, Path, list[dict]]:
    target, _ = make_project(tmp_path)
    journal, summary = live_run(tmp_path, target, STEPS, sandbox_env)
    assert summary.outcome == "completed"
    return journal, target, read_entries(journal)


def _first_of_each_event(entries: list[dict]) -> list[int]:
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        seen.setdefault(entry["event"], index)
    return sorted(seen.values())


def test_top_level_fields_of_the_wrong_type(capsys, real_run) -> None:
    journal, target, entries = real_run
    cases = 0
    for index in _first_of_each_event(entries):
        line = index + 1
        for name in FIELDS:
            for wrong in _wrong_for(entries[index][name]):
                mutated = copy.deepcopy(entries)
                if name in ("seq", "prev", "hash"):  # the chain itself: it cannot verify
                    rechain(journal, mutated)
                    lines = journal.read_bytes().splitlines()
                    entry = json.loads(lines[index])
                    entry[name] = wrong
                    lines[index] = canonical(entry)
                    journal.write_bytes(b"\n".join(lines) + b"\n")
                else:
                    mutated[index][name] = wrong
                    rechain(journal, mutated)
                    assert verify(journal).ok, "the malformed-entry handling is what is tested"
                for fmt in ("md", "json"):
                    code, _, err = _call(capsys, "report", journal, "--format", fmt)
                    assert code == 2, (name, wrong, line, err)
                    assert f"{journal}: journal entry {line} is malformed: {name} is " in err
                for extra in (["--dry-run"], []):
                    code, out, err = _call(capsys, "undo", journal, "--target", target, *extra)
                    if verify(journal).ok:
                        assert code == 2, (name, wrong, line, out, err)
                        assert f"journal entry {line} is malformed: {name} is " in err
                    else:  # a broken chain is refused before any entry is used
                        assert code == 1, (name, wrong, line, out, err)
                        assert "broken chain" in err or "does not verify" in err
                cases += 1
    assert cases > 60


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]", "an array, not an object"),
        (b'"text"', "text, not an object"),
        (b"7", "a number, not an object"),
        (b"null", "null, not an object"),
        (b"", "blank line"),
        (b"{not json", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_lines_that_are_not_entries(capsys, real_run, line: bytes, problem: str) -> None:
    journal, target, _ = real_run
    lines = journal.read_bytes().splitlines()
    lines.insert(2, line)
    journal.write_bytes(b"\n".join(lines) + b"\n")
    for argv in (["report"], ["report", "--format", "json"]):
        code, _, err = _call(capsys, *argv, journal)
        assert code == 2
        assert f"journal entry 3 is malformed: {problem}" in err
    for extra in (["--dry-run"], []):
        code, _, err = _call(capsys, "undo", journal, "--target", target, *extra)
        assert code == 1 and "line 3" in err  # the chain is broken there: refused, untouched
    code, out, _ = _call(capsys, "audit", "verify", journal)
    assert code == 1 and f"{journal}:3: chain broken" in out


def test_missing_fields(capsys, real_run) -> None:
    journal, _, entries = real_run
    for name in FIELDS:
        mutated = copy.deepcopy(entries)
        rechain(journal, mutated)
        lines = journal.read_bytes().splitlines()
        entry = json.loads(lines[1])
        del entry[name]
        lines[1] = canonical(entry)
        journal.write_bytes(b"\n".join(lines) + b"\n")
        code, _, err = _call(capsys, "report", journal)
        assert code == 2
        assert f"journal entry 2 is malformed: missing {name}" in err


def test_data_fields_of_the_wrong_type(capsys, real_run) -> None:
    """Every key of each kind of entry's data, replaced by each other JSON type: the report
    and undo either cope or name the entry, never a traceback."""
    journal, target, entries = real_run
    named = cases = 0
    for index in _first_of_each_event(entries):
        for key in entries[index]["data"]:
            for wrong in _wrong_for(entries[index]["data"][key]):
                mutated = copy.deepcopy(entries)
                mutated[index]["data"][key] = wrong
                rechain(journal, mutated)
                for argv in (
                    ["report"],
                    ["report", "--format", "json"],
                    ["undo", "--dry-run", "--target", target],
                    ["undo", "--dry-run"],
                ):
                    code, _, err = _call(capsys, argv[0], journal, *argv[1:])
                    assert code in (0, 1, 2), (argv, key, wrong)
                    if code == 2:
                        match = MALFORMED.search(err)
                        assert match and int(match[1]) == index + 1, err
                        named += 1
                cases += 1
    assert cases > 40 and named > 10


def test_a_write_file_effect_with_a_path_of_the_wrong_type(capsys, real_run) -> None:
    journal, target, entries = real_run
    index = next(
        i
        for i, e in enumerate(entries)
        if e["event"] == "effect" and e["data"].get("op") == "write_file"
    )
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    for key in ("path", "backup", "sha256_before", "sha256_after"):
        for wrong in ([1, 2], {"k": "v"}, 7, True):
            mutated = copy.deepcopy(entries)
            mutated[index]["data"][key] = wrong
            rechain(journal, mutated)
            for extra in (["--dry-run"], []):
                code, _, err = _call(capsys, "undo", journal, "--target", target, *extra)
                assert code == 2, (key, wrong, err)
                assert f"journal entry {index + 1} is malformed: data.{key} is " in err
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


def test_findings_of_the_wrong_shape(capsys, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    for findings, problem in (
        ("none", "data.findings is text, expected an array"),
        ([5], "data.findings[0] is a number, expected an object"),
        ([{"severity": "dire", "kind": "x"}], "data.findings[0].severity is not one of"),
    ):
        journal.unlink(missing_ok=True)
        with Journal(journal, Redactor()) as j:
            j.append("run_started", {"target": str(tmp_path), "playbook": {"id": "x"}})
            j.append("step_planned", {"step": "s", "findings": findings, "actions": []})
        code, _, err = _call(capsys, "report", journal)
        assert code == 2
        assert f"journal entry 2 is malformed: {problem}" in err


def test_a_torn_last_line_is_still_reported(capsys, real_run) -> None:
    journal, _, entries = real_run
    with journal.open("ab") as handle:
        handle.write(b'{"seq": 99, "ts": "2026')  # what a crash mid-write leaves
    code, out, _ = _call(capsys, "report", journal)
    assert code == 0
    assert f"BROKEN (line {len(entries) + 1}: not a JSON object" in out


# -- text that is not printable ------------------------------------------------------------------
ESCAPES = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202e"
CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e")


def test_report_and_verify_escape_control_characters(capsys, real_run, tmp_path: Path) -> None:
    journal, _, _ = real_run
    with Journal(journal, Redactor()) as j:
        j.append("note", {"text": f"line one {ESCAPES}\nline two", "by": f"op{ESCAPES}"})
        j.append("weird" + ESCAPES, {"step": "s" + ESCAPES})
    named = tmp_path / f"j{ESCAPES}.jsonl"
    named.write_bytes(journal.read_bytes())

    code, md, _ = _call(capsys, "report", named)
    assert code == 0
    for char in CONTROLS:
        assert char not in md
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\u202e" in md
    assert f"line one {ESCAPES}\nline two" not in md
    notes = md.split("## Notes\n", 1)[1]
    assert "line one \\x1b[2J" in notes and "\n  line two" in notes  # the note keeps its lines

    out = tmp_path / "report.md"
    assert _call(capsys, "report", named, "-o", out)[0] == 0
    assert out.read_text(encoding="utf-8") == md, "a file gets the same escaped Markdown"

    code, js, _ = _call(capsys, "report", named, "--format", "json")
    assert code == 0 and "\x1b" not in js
    report = json.loads(js)
    assert any(n["text"] == f"line one {ESCAPES}\nline two" for n in report["notes"])

    code, said, _ = _call(capsys, "audit", "verify", named)
    assert code == 0 and "\x1b" not in said and "\\x1b[2J" in said
    lines = named.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"ts":"', b'"ts":"X', 1)
    named.write_bytes(b"\n".join(lines) + b"\n")
    code, said, _ = _call(capsys, "audit", "verify", named)
    assert code == 1 and "\x1b" not in said and ":2: chain broken" in said


def test_a_lone_surrogate_is_journaled_as_its_escape(capsys, tmp_path: Path) -> None:
    """A file name that is not UTF-8 comes through `surrogateescape` as a lone surrogate: the
    entry is still written (it raised UnicodeEncodeError before), verifies and is reported."""
    journal = tmp_path / "j.jsonl"
    with Journal(journal, Redactor()) as j:
        j.append("run_started", {"target": str(tmp_path), "playbook": {"id": "x"}})
        entry = j.append("note", {"text": "file \udcff.json", "by": "op"})
    assert entry["data"]["text"] == "file \\udcff.json"
    assert verify(journal).ok
    with Journal(journal, Redactor()) as again:  # and it can be reopened and appended to
        again.append("note", {"text": "more", "by": "op"})
    code, md, _ = _call(capsys, "report", journal)
    assert code == 0 and "file \\udcff.json" in md
    # a line someone wrote with a raw surrogate escape fails verification, without a traceback
    lines = journal.read_bytes().splitlines()
    lines[1] = lines[1].replace(b"\\\\udcff", b"\\udcff")
    journal.write_bytes(b"\n".join(lines) + b"\n")
    code, out, _ = _call(capsys, "audit", "verify", journal)
    assert code == 1 and ":2: chain broken" in out
