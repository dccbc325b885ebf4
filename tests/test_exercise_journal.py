"""The journal's shared-writer mode: two processes (the players' app and the facilitator) append
to one journal through its lock, each chaining onto what the other wrote; the single-writer
default is unchanged."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.journal import Journal, JournalError, read_entries, verify
from runbook.redact import Redactor

WRITER = """
import sys
from runbook.journal import Journal
from runbook.redact import Redactor
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Journal(path, Redactor(), shared=True) as journal:
    for n in range(count):
        journal.append("note", {"text": f"{name} {n}", "by": name})
print(len(journal.entries))
"""


def writer(path: Path, name: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_processes_append_through_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor(), shared=True) as mine:
        mine.append("run_started", {"mode": "exercise"})
        children = [writer(path, "players", 60), writer(path, "facilitator", 60)]
        for n in range(40):
            mine.append("note", {"text": f"master {n}", "by": "master"})
        for child in children:
            assert child.wait(timeout=60) == 0
        mine.refresh()
        assert len(mine.entries) == 161
    result = verify(path)
    assert result.ok and result.entries == 161
    texts = [e["data"].get("text") for e in read_entries(path)]
    for name, count in (("players", 60), ("facilitator", 60), ("master", 40)):
        mine_in_order = [t for t in texts if t and t.startswith(name + " ")]
        assert mine_in_order == [f"{name} {n}" for n in range(count)]


def test_refresh_adopts_what_another_writer_appended(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    adopted: list[int] = []

    class Watching(Journal):
        def _adopted(self, entries: list[dict]) -> None:
            adopted.extend(e["seq"] for e in entries)

    with Watching(path, Redactor(), shared=True) as players:
        players.append("a")
        with Journal(path, Redactor(), shared=True) as facilitator:
            assert [e["event"] for e in facilitator.entries] == ["a"]
            facilitator.append("b")
            facilitator.append("c")
        assert [e["event"] for e in players.refresh()] == ["b", "c"]
        assert players.refresh() == []
        entry = players.append("d")
        assert entry["seq"] == 4 and entry["prev"] == players.entries[2]["hash"]
    assert adopted == [2, 3]
    assert verify(path).ok


def test_an_append_catches_up_before_chaining(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    adopted: list[str] = []

    class Watching(Journal):
        def _adopted(self, entries: list[dict]) -> None:
            adopted.extend(e["event"] for e in entries)

    with (
        Watching(path, Redactor(), shared=True) as one,
        Journal(path, Redactor(), shared=True) as two,
    ):
        one.append("a")
        two.append("b")  # two catches up with a first
        one.append("c")  # and one with b
        assert [e["event"] for e in one.entries] == ["a", "b", "c"]
    assert adopted == ["b"]
    assert [e["seq"] for e in read_entries(path)] == [1, 2, 3]
    assert verify(path).ok


def test_a_shared_writer_holds_no_lock_between_appends(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor(), shared=True) as journal:
        journal.append("a")
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def test_a_shared_writer_waits_for_a_single_writer_then_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor(), shared=True, wait=0.2) as shared:
        shared.append("a")
        with Journal(path, Redactor()) as single:  # e.g. `runbook note`: holds the lock
            single.append("b")
            with pytest.raises(JournalError, match="in use by another runbook process"):
                shared.append("c")
        entry = shared.append("c")  # the single writer is gone
        assert entry["seq"] == 3
    assert [e["event"] for e in read_entries(path)] == ["a", "b", "c"]
    assert verify(path).ok


def test_a_torn_line_left_by_a_crashed_writer_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor(), shared=True) as journal:
        journal.append("a")
        with path.open("ab") as handle:  # another writer died mid-line
            handle.write(b'{"seq":2,"ts":"2026-')
        assert journal.refresh() == [], "a line being written is left for later"
        entry = journal.append("b")
    assert [e["event"] for e in read_entries(path)] == ["a", "journal_repaired", "b"]
    assert entry["seq"] == 3
    assert (tmp_path / "run.jsonl.torn").read_bytes() == b'{"seq":2,"ts":"2026-'
    assert verify(path).ok


def test_a_forged_line_from_elsewhere_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor(), shared=True) as journal:
        journal.append("a")
        with path.open("ab") as handle:
            handle.write(b'{"seq":2,"ts":"x","event":"e","data":{},"prev":"0","hash":"0"}\n')
        with pytest.raises(JournalError, match="refusing to append to a broken chain: line 2"):
            journal.refresh()
        with pytest.raises(JournalError, match="broken chain"):
            journal.append("b")
    assert len(path.read_bytes().splitlines()) == 2, "nothing was written after the forgery"


def test_the_single_writer_default_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with Journal(path, Redactor()) as single:
        single.append("a")
        assert not single.shared
        with pytest.raises(JournalError, match="in use"):
            Journal(path, Redactor(), shared=True, wait=0.1)
        assert single.refresh() == []
