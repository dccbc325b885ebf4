"""Reading many journals: every chain verified first, bad input named with its reason, copies of
one run counted once. Journals are the frozen fixtures (real runs) or written by the real Journal
class; the chain check is compared with `journal.verify_lines` on the whole tamper matrix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from runbook.journal import read_entries, verify_lines
from runbook.record.load import NoJournals, find_journals, load, load_one, verified_entries
from runbook.signing import sign
from tests.record_support import (
    ALLOWED,
    JOURNALS,
    copy_fixtures,
    finished,
    item,
    ssh_key,
    started,
    step,
    write,
)
from tests.test_journal import TAMPER_CASES, write_journal


def kinds(collection) -> dict[str, str]:
    return {
        Path(p.journal).name if "/" not in p.journal else p.journal: p.kind
        for p in collection.problems
    }


# -- the fixtures: what a real incident's folder of journals gives --------------------------------
def test_the_fixture_folder() -> None:
    collection = load([str(JOURNALS)], ALLOWED)
    assert collection.read == 6
    problems = {Path(p.journal).relative_to(JOURNALS).as_posix(): p for p in collection.problems}
    assert set(problems) == {"build-host-2/live.jsonl", "collected-early/notes.jsonl"}
    tampered = problems["build-host-2/live.jsonl"]
    assert (tampered.kind, tampered.line, tampered.blocking) == ("broken", 8, True)
    assert tampered.reason.startswith("chain broken at line 8: hash does not match")
    assert (tampered.host, tampered.target) == ("build-host-2", "/tmp/rb-incident/dana/src/web-app")
    assert problems["collected-early/notes.jsonl"].kind == "foreign"
    runs = {(r.host, r.mode): r for r in collection.runs}
    assert set(runs) == {("laptop-ana", "dry-run"), ("laptop-ana", "live"), ("ci-runner-7", "live")}
    resumed = runs[("laptop-ana", "live")]
    # the copy collected before the resume is the same run: counted once, the longer one used
    assert resumed.journal.endswith("laptop-ana/live.jsonl")
    assert [Path(c).name for c in resumed.copies] == ["laptop-ana-live.jsonl"]
    assert [e["event"] for e in resumed.entries].count("run_resumed") == 1
    assert resumed.signature is not None and resumed.signature.signer == "ana@example.test"
    assert runs[("ci-runner-7", "live")].signature is None
    assert [r.started for r in collection.runs] == sorted(r.started for r in collection.runs)


def test_paths_are_shown_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(JOURNALS.parent)
    collection = load(["journals/laptop-ana", "journals/ci-runner-7/live.jsonl"])
    assert sorted(r.journal for r in collection.runs) == [
        "journals/ci-runner-7/live.jsonl",
        "journals/laptop-ana/dry-run.jsonl",
        "journals/laptop-ana/live.jsonl",
    ]
    # the same file named twice is read once
    assert load(["journals/laptop-ana", "journals/laptop-ana/live.jsonl"]).read == 2


def test_an_empty_folder_or_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoJournals, match="no journal"):
        find_journals([str(tmp_path / "empty")])
    with pytest.raises(NoJournals, match="no such file"):
        find_journals([str(tmp_path / "missing.jsonl")])


def test_run_folders_beside_a_journal_are_not_journals(tmp_path: Path) -> None:
    journal = write(tmp_path / "run.jsonl", [started(), finished()])
    backups = tmp_path / "run.d" / "backups" / "x"
    backups.mkdir(parents=True)
    (backups / "events.jsonl").write_text('{"a": 1}\n')  # a backed-up file of the project
    other = tmp_path / "other.d"
    other.mkdir()
    shutil.copy(journal, other / "kept.jsonl")  # not a run folder: no other.jsonl beside it
    found = [p.name for p, _, _ in find_journals([str(tmp_path)])]
    assert found == ["run.jsonl", "kept.jsonl"]


# -- bad input: named, with the reason, and the rest still read ---------------------------------
def test_bad_files_are_named_and_the_rest_is_read(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", [started(), finished()])
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "foreign.jsonl").write_text('{"level": "info", "msg": "hello"}\n')
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\xff\xfe garbage\n")
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "link.jsonl").symlink_to(good)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked-folder").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "dir.jsonl").mkdir()
    (tmp_path / "dir.jsonl" / "inner.jsonl").write_bytes(good.read_bytes())
    collection = load([str(tmp_path)])
    reasons = {Path(p.journal).name: (p.kind, p.reason) for p in collection.problems}
    assert reasons["empty.jsonl"] == ("empty", "empty file: no entry was ever written")
    assert reasons["foreign.jsonl"][0] == "foreign"
    assert reasons["binary.jsonl"][0] == "foreign"
    assert reasons["fifo.jsonl"] == ("unreadable", "cannot read: is a FIFO, not a regular file")
    assert reasons["link.jsonl"] == ("unreadable", "cannot read: is a symlink (not followed)")
    assert reasons["linked-folder"] == ("unreadable", "cannot read: is a symlink (not followed)")
    # the same run in two files (good.jsonl and its copy inside dir.jsonl/) counts once
    assert len(collection.runs) == 1 and len(collection.runs[0].copies) == 1
    assert all(p.blocking for p in collection.problems)


def test_a_journal_from_a_newer_runbook(tmp_path: Path) -> None:
    newer = write(
        tmp_path / "newer.jsonl", [started(version="9.2.0"), ("teleported", {}), finished()]
    )
    run, problems = load_one(newer, "newer.jsonl")
    assert run is not None and run.newer == "9.2.0"
    assert [p.kind for p in problems] == ["newer"]
    assert "written by runbook 9.2.0, newer than this runbook" in problems[0].reason
    # a newer format this version cannot verify: the message says so, not "tampered"
    lines = newer.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"seq":2', b'"seq":2,"sig":"v2"')
    newer.write_bytes(b"\n".join(lines) + b"\n")
    run, problems = load_one(newer, "newer.jsonl")
    assert run is None and problems[0].kind == "broken"
    assert "newer than this runbook" in problems[0].reason
    assert "upgrade runbook to read it" in problems[0].reason


def test_a_torn_last_line_is_a_warning(tmp_path: Path) -> None:
    journal = write(tmp_path / "j.jsonl", [started(), *step("a", "succeeded")])
    with journal.open("ab") as handle:
        handle.write(b'{"seq":4,"ts":"2026')  # a crash mid-write
    run, problems = load_one(journal, "j.jsonl")
    assert run is not None and len(run.entries) == 3
    assert [(p.kind, p.line, p.blocking) for p in problems] == [("torn", 4, False)]


def test_a_verifying_chain_with_a_malformed_entry(tmp_path: Path) -> None:
    """The Journal class hashes whatever it is given: a chain can verify and hold nonsense."""
    journal = tmp_path / "j.jsonl"
    from runbook.journal import Journal

    with Journal(journal, lambda data: data) as handle:
        handle.append(*started())
        handle.append("note", ["not", "an", "object"])  # type: ignore[arg-type]
    run, problems = load_one(journal, "j.jsonl")
    assert run is None
    assert (
        problems[0].reason == "journal entry 2 is malformed: data is an array, expected an object"
    )


def test_a_journal_without_a_run(tmp_path: Path) -> None:
    journal = write(tmp_path / "j.jsonl", [("note", {"text": "hi", "by": "x"})])
    run, problems = load_one(journal, "j.jsonl")
    assert run is None and problems[0].kind == "foreign"
    assert "no run_started entry" in problems[0].reason


def test_copies_that_disagree_are_all_refused(tmp_path: Path) -> None:
    first = write(tmp_path / "a.jsonl", [started(), *step("a", "succeeded")])
    shutil.copy(first, tmp_path / "b.jsonl")
    write(first, [item("a", "x", "done")])
    write(tmp_path / "b.jsonl", [item("a", "x", "declined")])  # a fork after entry 3
    collection = load([str(tmp_path)])
    assert collection.runs == []
    assert sorted((Path(p.journal).name, p.kind) for p in collection.problems) == [
        ("a.jsonl", "conflict"),
        ("b.jsonl", "conflict"),
    ]
    assert any("at entry 4" in p.reason for p in collection.problems)


def test_a_signature_that_does_not_hold_keeps_the_run_out(tmp_path: Path) -> None:
    journals = copy_fixtures(tmp_path)
    live = journals / "laptop-ana" / "live.jsonl"
    lines = live.read_bytes().splitlines(keepends=True)
    live.write_bytes(b"".join(lines[:-3]))  # cut short: the chain still verifies
    collection = load([str(journals)], ALLOWED)
    problem = next(p for p in collection.problems if p.kind == "signature")
    assert problem.journal.endswith("laptop-ana/live.jsonl.sig")
    assert "not in this journal" in problem.reason
    assert ("laptop-ana", "live") not in {(r.host, r.mode) for r in collection.runs}


def test_a_signature_by_someone_not_allowed(tmp_path: Path) -> None:
    journals = copy_fixtures(tmp_path)
    _, line = ssh_key(tmp_path / "keys", "mallory@example.test")
    mallory_only = tmp_path / "allowed"
    mallory_only.write_text(line)
    collection = load([str(journals)], mallory_only)
    problem = next(p for p in collection.problems if p.kind == "signature")
    assert "is not among the allowed signers" in problem.reason
    # without an allowed signers file the signature is checked, its signer left unnamed
    unnamed = load([str(journals)])
    signed = next(r for r in unnamed.runs if r.signature is not None)
    assert (signed.signature.status, signed.signature.signer) == ("valid", "")


def test_a_note_added_after_signing_keeps_the_signed_part(tmp_path: Path) -> None:
    key, line = ssh_key(tmp_path / "keys", "ana@example.test")
    allowed = tmp_path / "allowed"
    allowed.write_text(line)
    journal = write(tmp_path / "j" / "run.jsonl", [started(), finished()])
    sign(journal, key)
    write(journal, [("note", {"text": "later", "by": "ana"})])
    collection = load([str(tmp_path / "j")], allowed)
    assert collection.problems == []
    assert collection.runs[0].signature.coverage == "prefix"


# -- the chain check is journal.verify_lines' ---------------------------------------------------
@pytest.mark.parametrize(
    ("name", "tamper", "bad_line"), TAMPER_CASES, ids=[c[0] for c in TAMPER_CASES]
)
def test_the_fast_check_agrees_with_verify_lines(tmp_path: Path, name, tamper, bad_line) -> None:
    path = tmp_path / "j.jsonl"
    lines = write_journal(path)
    assert verified_entries(lines) == read_entries(path)
    tampered = tamper(list(lines))
    assert verified_entries(tampered) is None
    assert not verify_lines(tampered).ok
    run, problems = load_one(_save(path, tampered), "j.jsonl")
    assert run is None and problems and problems[0].line == bad_line, name


def _save(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    "data",
    [
        {"f": 1e-05, "g": 1e16, "h": -0.0},
        {"s": 'tab\tnl\nquote"back\\slash\x7f\x1f \u2028 é 😀'},
        {"big": 2**70},
        {"nested": [[], {}, None, True, False, ""]},
    ],
)
def test_the_fast_check_accepts_what_the_journal_writes(tmp_path: Path, data) -> None:
    path = write(tmp_path / "j.jsonl", [started(), ("note", data), finished()])
    lines = path.read_bytes().splitlines()
    assert verify_lines(lines).ok
    assert verified_entries(lines) == read_entries(path)


def test_the_record_modules_import_neither_steps_nor_textual() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    modules = [
        "runbook.signing",
        "runbook.record.cli",
        "runbook.record.load",
        "runbook.record.merge",
        "runbook.record.markdown",
        "runbook.record.html",
        "runbook.record.timeline",
        "runbook.record.cacao",
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('steps', 'textual'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_a_symlink_named_on_the_command_line_is_followed(tmp_path: Path) -> None:
    real = write(tmp_path / "real" / "run.jsonl", [started(), finished()])
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    collection = load([str(link)])
    assert len(collection.runs) == 1 and collection.problems == []
