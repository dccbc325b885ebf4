"""The hash-chained journal: its exact format, the tamper matrix through `runbook audit verify`,
the single-writer lock, crash repair and redaction of everything written."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.journal import Journal, JournalError, read_entries, verify
from runbook.redact import Redactor

GENESIS = "0" * 64
N = 6  # entries in the journal every tamper case starts from
K = 3  # the line each tamper case aims at


# -- helpers: an independent implementation of the format -------------------------------------
def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def forge(seq: int, prev: str, event: str = "forged", data: dict | None = None) -> bytes:
    """A well-formed line: right fields, its own hash recomputed."""
    entry = {"seq": seq, "ts": "2026-03-31T00:00:00.000Z", "event": event, "data": data or {}}
    entry["prev"] = prev
    entry["hash"] = chain_hash(entry)
    return canonical(entry)


def write_journal(path: Path, n: int = N) -> list[bytes]:
    with Journal(path, Redactor()) as journal:
        for i in range(1, n + 1):
            journal.append("step_finished", {"step": f"s{i}", "outcome": "succeeded", "n": i})
    return path.read_bytes().splitlines()


def save(path: Path, lines: list[bytes], tail: bytes = b"\n") -> None:
    path.write_bytes(b"\n".join(lines) + (tail if lines else b""))


def head_of(lines: list[bytes]) -> str:
    return json.loads(lines[-1])["hash"]


def loaded(line: bytes) -> dict:
    return json.loads(line)


# -- the format ---------------------------------------------------------------------------------
def test_format_is_exactly_the_documented_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, Redactor()) as journal:
        journal.append("run_started", {"playbook": {"id": "p"}, "text": "café ✓"})
        journal.append("note", {"nested": [1, 2.5, None, True], "b": {"z": 1, "a": 2}})
        journal.append("run_finished")
        head = journal.head
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.splitlines()
    assert len(lines) == 3
    prev = GENESIS
    for seq, line in enumerate(lines, start=1):
        entry = json.loads(line)
        assert list(entry) == sorted(entry), "keys are written sorted"
        assert set(entry) == {"seq", "ts", "event", "data", "prev", "hash"}
        assert entry["seq"] == seq
        assert entry["prev"] == prev
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
        assert entry["hash"] == chain_hash(entry)
        assert line == canonical(entry), "each line is the canonical JSON of its entry"
        prev = entry["hash"]
    assert "café ✓".encode() in lines[0], "UTF-8 as is, not \\u escapes"
    assert json.loads(lines[2])["data"] == {}
    assert head == prev
    result = verify(path)
    assert (result.ok, result.entries, result.head, result.bad_line) == (True, 3, head, None)
    assert verify(path, head).ok
    assert [e["event"] for e in read_entries(path)] == ["run_started", "note", "run_finished"]


def test_new_journal_starts_at_genesis(tmp_path: Path) -> None:
    with Journal(tmp_path / "deep" / "dir" / "j.jsonl", Redactor()) as journal:
        assert journal.head == GENESIS
        assert journal.entries == []
        entry = journal.append("x")
    assert entry["seq"] == 1 and entry["prev"] == GENESIS
    assert os.stat(tmp_path / "deep" / "dir" / "j.jsonl").st_mode & 0o777 == 0o600


# -- the tamper matrix, through the real command -------------------------------------------------
Tamper = Callable[[list[bytes]], list[bytes]]


def _modify_data(lines: list[bytes]) -> list[bytes]:
    lines[K - 1] = lines[K - 1].replace(b'"outcome":"succeeded"', b'"outcome":"failed"')
    return lines


def _modify_data_and_rehash(lines: list[bytes]) -> list[bytes]:
    entry = loaded(lines[K - 1])
    entry["data"]["outcome"] = "failed"
    entry["hash"] = chain_hash(entry)
    lines[K - 1] = canonical(entry)
    return lines


def _modify_hash(lines: list[bytes]) -> list[bytes]:
    entry = loaded(lines[K - 1])
    entry["hash"] = "f" * 64
    lines[K - 1] = canonical(entry)
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[K - 1]
    return lines


def _delete_first(lines: list[bytes]) -> list[bytes]:
    return lines[1:]


def _insert_misnumbered(lines: list[bytes]) -> list[bytes]:
    # well-formed and self-consistent, but it claims to be the line before
    before = loaded(lines[K - 3])
    lines.insert(K - 1, forge(before["seq"] + 1, before["hash"]))
    return lines


def _insert_fitting(lines: list[bytes]) -> list[bytes]:
    # seq, prev and hash all fit where it stands: only the line after it shows the fork
    lines.insert(K - 1, forge(K, loaded(lines[K - 2])["hash"]))
    return lines


def _insert_first(lines: list[bytes]) -> list[bytes]:
    return [forge(1, GENESIS), *lines]


def _duplicate(lines: list[bytes]) -> list[bytes]:
    lines.insert(K, lines[K - 1])  # line K appears again as line K + 1
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[K - 1], lines[K] = lines[K], lines[K - 1]
    return lines


def _blank_line(lines: list[bytes]) -> list[bytes]:
    lines.insert(K - 1, b"")
    return lines


def _garbage_last(lines: list[bytes]) -> list[bytes]:
    return [*lines, b"this is not json"]


def _non_object_line(lines: list[bytes]) -> list[bytes]:
    lines[K - 1] = b"[1, 2, 3]"
    return lines


def _extra_field(lines: list[bytes]) -> list[bytes]:
    entry = loaded(lines[K - 1])
    entry["extra"] = 1
    entry["hash"] = chain_hash(entry)
    lines[K - 1] = canonical(entry)
    return lines


TAMPER_CASES: list[tuple[str, Tamper, int]] = [
    ("modified data", _modify_data, K),
    ("modified data, hash recomputed", _modify_data_and_rehash, K + 1),
    ("modified hash", _modify_hash, K),
    ("deleted line", _delete, K),
    ("deleted first line", _delete_first, 1),
    ("inserted line, misnumbered", _insert_misnumbered, K),
    ("inserted line, fitting seq/prev/hash", _insert_fitting, K),
    ("inserted first line", _insert_first, 1),
    ("duplicated line", _duplicate, K + 1),
    ("swapped lines", _swap, K),
    ("blank line", _blank_line, K),
    ("garbage last line", _garbage_last, N + 1),
    ("not an object", _non_object_line, K),
    ("extra field", _extra_field, K),
]


@pytest.fixture
def journal_file(tmp_path: Path) -> tuple[Path, list[bytes]]:
    path = tmp_path / "journal.jsonl"
    return path, write_journal(path)


def _verify(run_cli, path: Path, head: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["audit", "verify", path] + (["--head", head] if head else [])
    return run_cli(*args)


def assert_broken_at(proc: subprocess.CompletedProcess[str], path: Path, line: int) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout.strip()
    assert re.fullmatch(rf"{re.escape(str(path))}:{line}: chain broken: .+", out), out


def test_intact_journal_verifies(run_cli, journal_file) -> None:
    path, lines = journal_file
    proc = _verify(run_cli, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{path}: ok: {N} entries, head {head_of(lines)}"
    assert _verify(run_cli, path, head_of(lines)).returncode == 0


@pytest.mark.parametrize(
    ("tamper", "bad_line"),
    [pytest.param(fn, line, id=name) for name, fn, line in TAMPER_CASES],
)
def test_tampering_is_named_by_line(run_cli, journal_file, tamper: Tamper, bad_line: int) -> None:
    path, lines = journal_file
    head = head_of(lines)
    save(path, tamper(list(lines)))
    assert_broken_at(_verify(run_cli, path), path, bad_line)
    # the library answer agrees with the command
    result = verify(path, head)
    assert not result.ok and result.bad_line == bad_line


def test_reasons_say_what_happened(journal_file) -> None:
    path, lines = journal_file
    save(path, _modify_data(list(lines)))
    assert "hash does not match" in verify(path).reason
    save(path, _delete(list(lines)))
    assert "seq is 4, expected 3" in verify(path).reason
    save(path, _insert_fitting(list(lines)))
    assert "inserted" in verify(path).reason
    save(path, _garbage_last(list(lines)))
    assert "not a JSON object" in verify(path).reason


def test_truncated_tail_needs_the_head(run_cli, journal_file) -> None:
    path, lines = journal_file
    head = head_of(lines)
    save(path, lines[: N - 2])
    proc = _verify(run_cli, path)
    assert proc.returncode == 0, "without the head a clean cut is undetectable (as documented)"
    assert f"ok: {N - 2} entries" in proc.stdout
    proc = _verify(run_cli, path, head)
    assert_broken_at(proc, path, N - 1)
    assert "not found" in proc.stdout


def test_wrong_head(run_cli, journal_file) -> None:
    path, _ = journal_file
    proc = _verify(run_cli, path, "ab" * 32)
    assert_broken_at(proc, path, N + 1)


def test_line_appended_after_the_head(run_cli, journal_file) -> None:
    path, lines = journal_file
    head = head_of(lines)
    save(path, [*lines, forge(N + 1, head)])
    assert _verify(run_cli, path).returncode == 0, "a well-formed append is a valid chain"
    proc = _verify(run_cli, path, head)
    assert_broken_at(proc, path, N + 1)
    assert f"follow the expected head (line {N})" in proc.stdout


def test_torn_last_line(run_cli, journal_file) -> None:
    path, lines = journal_file
    torn = forge(N + 1, head_of(lines))[:25]
    save(path, [*lines, torn], tail=b"")
    assert_broken_at(_verify(run_cli, path), path, N + 1)


def test_empty_file(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    proc = _verify(run_cli, path)
    assert proc.returncode == 0
    assert f"ok: 0 entries, head {GENESIS}" in proc.stdout
    # an empty file is a journal truncated to nothing: the head says so
    assert_broken_at(_verify(run_cli, path, "ab" * 32), path, 1)


def test_missing_file_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    proc = _verify(run_cli, tmp_path / "nope.jsonl")
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr


# -- the single writer ----------------------------------------------------------------------------
def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, Redactor()) as first:
        first.append("a")
        with pytest.raises(JournalError, match="in use"):
            Journal(path, Redactor())
        first.append("b")
    with Journal(path, Redactor()) as again:  # the lock went with the first writer
        assert again.append("c")["seq"] == 3
    assert verify(path).ok


LOCK_PROBE = """
import sys
from runbook.journal import Journal, JournalError
from runbook.redact import Redactor
try:
    with Journal(sys.argv[1], Redactor()) as journal:
        journal.append("from_child")
except JournalError as exc:
    print("locked:", exc)
    sys.exit(3)
print("appended")
"""


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"

    def child() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", LOCK_PROBE, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    with Journal(path, Redactor()) as journal:
        journal.append("parent")
        proc = child()
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "locked:" in proc.stdout and "in use by another runbook process" in proc.stdout
        assert len(path.read_bytes().splitlines()) == 1, "the refused writer wrote nothing"
    proc = child()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [e["event"] for e in read_entries(path)] == ["parent", "from_child"]
    assert verify(path).ok


def test_the_lock_is_held_on_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, Redactor()):
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


# -- reopening, crash repair, refusing broken chains ----------------------------------------------
def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    lines = write_journal(path, 3)
    with Journal(path, Redactor()) as journal:
        assert journal.head == head_of(lines)
        assert [e["seq"] for e in journal.entries] == [1, 2, 3]
        entry = journal.append("resumed")
    assert entry["seq"] == 4 and entry["prev"] == head_of(lines)
    assert path.read_bytes().splitlines()[:3] == lines, "earlier lines are untouched"
    assert verify(path, entry["hash"]).ok


def test_torn_last_line_is_moved_aside_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    lines = write_journal(path, 3)
    torn = forge(4, head_of(lines))[:40]  # what a crash mid-write leaves: no newline
    with path.open("ab") as handle:
        handle.write(torn)
    assert not verify(path).ok
    with Journal(path, Redactor()) as journal:
        repaired = journal.entries[-1]
        journal.append("after_repair")
    aside = tmp_path / "j.jsonl.torn"
    assert aside.read_bytes() == torn
    assert repaired["event"] == "journal_repaired"
    assert repaired["seq"] == 4 and repaired["prev"] == head_of(lines)
    assert repaired["data"] == {
        "torn_bytes": len(torn),
        "torn_sha256": hashlib.sha256(torn).hexdigest(),
        "moved_to": str(aside),
    }
    after = path.read_bytes().splitlines()
    assert after[:3] == lines and len(after) == 5
    assert torn not in path.read_bytes()
    result = verify(path)
    assert result.ok and result.entries == 5


def test_torn_only_line_of_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"seq":1,"ts":"2026')
    with Journal(path, Redactor()) as journal:
        assert [e["event"] for e in journal.entries] == ["journal_repaired"]
        assert journal.entries[0]["prev"] == GENESIS
    assert verify(path).ok


@pytest.mark.parametrize("tamper", [_modify_data, _delete, _insert_fitting, _blank_line])
def test_appending_to_a_broken_chain_is_refused(tmp_path: Path, tamper: Tamper) -> None:
    path = tmp_path / "j.jsonl"
    save(path, tamper(write_journal(path, 4)))
    before = path.read_bytes()
    with pytest.raises(JournalError, match="refusing to append to a broken chain"):
        Journal(path, Redactor())
    assert path.read_bytes() == before
    assert not (tmp_path / "j.jsonl.torn").exists()
    # the refused writer let go of its lock
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


# -- redaction of everything written --------------------------------------------------------------
def test_every_data_value_passes_the_redactor(tmp_path: Path) -> None:
    aws = "AKIA" + "Q" * 16
    npm = "npm_" + "a1B2" * 9
    registered = "hunter2-" + "x" * 10
    redactor = Redactor()
    redactor.add_secret(registered)
    path = tmp_path / "j.jsonl"
    with Journal(path, redactor) as journal:
        journal.append(
            "effect",
            {
                "argv": f"aws configure set aws_access_key_id {aws}",
                "nested": {"list": [f"token {npm}", ("tuple", aws)], "n": 5},
                "npmrc": f"//registry.npmjs.org/:_authToken={npm}",
                "url": f"https://user:{registered}@example.invalid/",
            },
        )
    raw = path.read_bytes()
    for secret in (aws, npm, registered):
        assert secret.encode() not in raw
        assert secret[4:-4].encode() not in raw
    assert ("AKIA…" + aws[-4:]).encode() in raw
    assert ("npm_…" + npm[-4:]).encode() in raw
    assert verify(path).ok, "the redacted form is what is hashed"
    entry = read_entries(path)[0]
    assert entry["data"]["nested"]["n"] == 5
