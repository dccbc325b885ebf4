"""Finding an unfinished run never trips on a journal that is not one of ours."""

from __future__ import annotations

from pathlib import Path

from runbook.runs import find_unfinished


def test_odd_journals_are_passed_over(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    folder = tmp_path / "state" / "runbook" / "axios-2026-03"
    folder.mkdir(parents=True)
    (folder / "list.jsonl").write_text("[1, 2]\n")
    (folder / "number.jsonl").write_text("7\n")
    (folder / "bad-data.jsonl").write_text('{"event": "run_started", "data": 5}\n')
    (folder / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    (folder / "empty.jsonl").write_text("")
    assert find_unfinished(env, "axios-2026-03", tmp_path, "live") is None
