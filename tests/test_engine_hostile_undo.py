"""`runbook undo` against journals an attacker rewrote: the hash chain has no key, so a forged
journal verifies; undo must still write nothing outside the directory named on the command line,
and `--head` must pin the journal down."""

from __future__ import annotations

import hashlib
import json
import os
import resource
from pathlib import Path
from typing import Any

from runbook.journal import GENESIS, canonical, entry_hash, read_entries
from runbook.runs import run_dir
from tests.test_undo import STEPS, live_run, make_project, snapshot


def capped() -> None:
    """A child may not take more than 2 GiB of address space (a journal read without bound)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rechain(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write `entries` as a well-chained journal, recomputed with the project's own hashing."""
    prev, lines = GENESIS, []
    for seq, entry in enumerate(entries, start=1):
        entry = {k: v for k, v in entry.items() if k != "hash"} | {"seq": seq, "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        lines.append(canonical(entry) + b"\n")
    path.write_bytes(b"".join(lines))


def planted_backup(journal: Path, content: bytes) -> Path:
    """A 'backup' the attacker put in the run's own backup directory."""
    backup = run_dir(journal) / "backups" / "forged" / "file"
    backup.parent.mkdir(parents=True, exist_ok=True)
    backup.write_bytes(content)
    return backup


def forged_effect(path: Path, backup: Path, before: bytes, after: bytes) -> dict[str, Any]:
    return {
        "ts": "2026-04-01T00:00:00.000Z",
        "event": "effect",
        "data": {
            "op": "write_file",
            "dry_run": False,
            "path": str(path),
            "backup": str(backup),
            "sha256_before": sha(before),
            "sha256_after": sha(after),
            "outcome": "ok",
            "reason": "forged",
        },
    }


def test_target_rewritten_to_the_parent_is_refused(tmp_path, sandbox_env, run_cli):
    """The exact attack: `run_started.target` edited to the parent directory, a `write_file`
    effect added for a file there, the chain recomputed so `audit verify` says ok."""
    target, _ = make_project(tmp_path)
    journal, summary = live_run(tmp_path, target, STEPS, sandbox_env)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    backup = planted_backup(journal, b"attacker content\n")

    entries = read_entries(journal)
    [started] = [e for e in entries if e["event"] == "run_started"]
    started["data"]["target"] = str(tmp_path.resolve())
    entries.append(forged_effect(outside, backup, b"attacker content\n", b"precious\n"))
    rechain(journal, entries)
    assert run_cli("audit", "verify", journal).returncode == 0, "the forgery verifies"
    before = snapshot(target)

    refused = run_cli("undo", journal, "--target", target)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"the journal's target {tmp_path.resolve()} is not --target {target}" in refused.stderr
    assert outside.read_bytes() == b"precious\n"
    assert snapshot(target) == before, "nothing at all is undone from a journal of another target"

    # no --target: a live undo is a usage error, and nothing is written
    bare = run_cli("undo", journal)
    assert bare.returncode == 2
    assert "undo needs --target DIR" in bare.stderr
    assert outside.read_bytes() == b"precious\n"

    # naming the directory the forgery claims, the head the run printed still exposes it
    pinned = run_cli("undo", journal, "--target", tmp_path, "--head", summary.head)
    assert pinned.returncode == 1
    assert f"head {summary.head} is not in {journal}" in pinned.stderr
    assert outside.read_bytes() == b"precious\n"

    # a dry run without --target shows the target the journal claims, marked unchecked
    shown = run_cli("undo", journal, "--dry-run")
    assert shown.stdout.startswith(f"target: {tmp_path.resolve()} (as the journal says; ")
    assert outside.read_bytes() == b"precious\n"


def test_a_symlink_on_the_way_out_of_the_target_is_refused(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    (target / "link").symlink_to(tmp_path, target_is_directory=True)
    backup = planted_backup(journal, b"attacker content\n")
    entries = read_entries(journal)
    through = target.resolve() / "link" / "outside.txt"  # inside the target, on the text
    entries.append(forged_effect(through, backup, b"attacker content\n", b"precious\n"))
    rechain(journal, entries)

    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert f"REFUSED {through}: outside the target" in result.stdout
    assert outside.read_bytes() == b"precious\n"


def test_entries_after_the_head_are_not_undone(tmp_path, sandbox_env, run_cli):
    """An effect appended after the run (chain recomputed) could restore an attacker's content
    into the target; with the head the run printed, it is ignored."""
    target, originals = make_project(tmp_path)
    journal, summary = live_run(tmp_path, target, STEPS, sandbox_env)
    victim = target.resolve() / "untouched.txt"
    backup = planted_backup(journal, b"attacker content\n")
    entries = read_entries(journal)
    entries.append(forged_effect(victim, backup, b"attacker content\n", b"keep\n"))
    rechain(journal, entries)

    result = run_cli("undo", journal, "--target", target, "--head", summary.head)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 entries after --head ignored" in result.stdout
    assert str(victim) not in result.stdout
    assert snapshot(target) == originals, "the run's own changes are undone, nothing else"


def test_backups_from_outside_the_runs_backup_dir_are_refused(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    secret = tmp_path / "secret.txt"  # readable by undo, not by whoever forged the journal
    secret.write_bytes(b"root-only content\n")
    entries = read_entries(journal)
    leak = target.resolve() / "leak.txt"
    entries.append(forged_effect(leak, secret, b"root-only content\n", b""))
    # the backup dir's own files must not be symlinks to elsewhere either
    link = run_dir(journal) / "backups" / "link"
    link.symlink_to(secret)
    entries.append(forged_effect(target.resolve() / "leak2.txt", link, b"root-only content\n", b""))
    rechain(journal, entries)
    (target / "leak.txt").write_bytes(b"")
    (target / "leak2.txt").write_bytes(b"")

    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert f"REFUSED {leak}: backup {secret} is not the run's own" in result.stdout
    assert f"backup {link} is missing or does not match" in result.stdout
    assert (target / "leak.txt").read_bytes() == b""
    assert (target / "leak2.txt").read_bytes() == b""


def test_a_journal_fifo_or_device_is_refused_by_undo(tmp_path, sandbox_env, run_cli):
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    for journal in (fifo, zero):
        for extra in (["--dry-run"], ["--target", tmp_path]):
            result = run_cli("undo", journal, *extra, timeout=20, preexec_fn=capped)
            assert result.returncode == 2, result.stderr
            assert f"cannot read {journal}: " in result.stderr
            assert "Traceback" not in result.stderr


def test_undo_output_escapes_terminal_sequences(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    entries = read_entries(journal)
    evil = "/\x1b]0;pwned\x07/\x1b[2Jx"
    entries.append(forged_effect(Path(evil), Path("/nowhere"), b"a", b"b"))
    rechain(journal, entries)
    result = run_cli("undo", journal, "--dry-run")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout
    assert json.loads(journal.read_bytes().splitlines()[-1])["data"]["path"] == evil
