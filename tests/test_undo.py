"""`runbook undo JOURNAL`: a live run's file changes are put back from its backups."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from pydantic import Field

from runbook.journal import Journal, read_entries, verify
from runbook.operator import HeadlessOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor
from runbook.registry import default_registry
from runbook.runner import Runner, RunSummary
from runbook.step import Action, Plan, StepContext, StepKind, StepParams, StepResult
from runbook.step import fingerprint_of as fp

HEAD = """\
id: test-undo
title: Test undo playbook
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1", "0.30.4"], safe_pins: {"1": "1.14.0", "0": "0.30.3"}}
    - {name: plain-crypto-js, any_version: true}
steps:
"""


class WriteParams(StepParams):
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> new content


class WriteStep(StepKind):
    """Writes files under the target through the effects door (a stand-in for `pin`)."""

    name = "test_write_files"
    Params = WriteParams
    params: WriteParams

    def plan(self, ctx: StepContext) -> Plan:
        actions = [Action(kind="edit", summary=f"write {p}") for p in self.params.files]
        return Plan(actions=actions, fingerprint=fp(ctx.step.id, sorted(self.params.files)))

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        for relative, content in self.params.files.items():
            ctx.effects.write_file(ctx.target / relative, content, reason="test edit")
        return StepResult("succeeded", f"wrote {len(self.params.files)} file(s)")


default_registry().register(WriteStep)


def live_run(
    tmp_path: Path,
    target: Path,
    steps: str,
    env: dict[str, str],
    *,
    dry_run: bool = False,
    head: str = HEAD,
    name: str = "run",
) -> tuple[Path, RunSummary]:
    """Run a playbook in-process (the real runner, journal and effects); returns the journal."""
    pb = tmp_path / f"{name}.yaml"
    pb.write_text(head + steps)
    loaded = load_playbook(pb)
    journal_path = tmp_path / "state" / f"{name}.jsonl"
    redactor = Redactor()
    with Journal(journal_path, redactor) as journal:
        runner = Runner(
            loaded,
            target,
            journal,
            HeadlessOperator("op", assume_yes=True),
            dry_run=dry_run,
            redactor=redactor,
            env=env,
        )
        summary = runner.run_all()
    return journal_path, summary


STEPS = """\
  - id: first
    uses: test_write_files
    title: First edit
    with: {files: {package.json: "{\\"v\\": 2}\\n", sub/lock.txt: "lock v2\\n", new.txt: "new\\n"}}
  - id: second
    uses: test_write_files
    title: Second edit
    with: {files: {package.json: "{\\"v\\": 3}\\n"}}
"""


def make_project(tmp_path: Path) -> tuple[Path, dict[str, tuple[bytes, int]]]:
    target = tmp_path / "project"
    (target / "sub").mkdir(parents=True)
    originals = {
        "package.json": (b'{\r\n\t"v": 1\r\n}', 0o640),
        "sub/lock.txt": (b"\xef\xbb\xbflock v1\n", 0o600),
        "untouched.txt": (b"keep\n", 0o644),
    }
    for relative, (content, mode) in originals.items():
        path = target / relative
        path.write_bytes(content)
        os.chmod(path, mode)
    return target, originals


def snapshot(target: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(target).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }


def undo_entries(journal: Path) -> list[dict]:
    return [e["data"] for e in read_entries(journal) if e["event"] == "undo"]


def test_undo_restores_every_file_byte_for_byte(tmp_path, sandbox_env, run_cli):
    target, originals = make_project(tmp_path)
    journal, summary = live_run(tmp_path, target, STEPS, sandbox_env)
    assert summary.outcome == "completed"
    assert (target / "package.json").read_bytes() == b'{"v": 3}\n'
    assert (target / "new.txt").exists()

    result = run_cli("undo", journal, "--target", target, "--head", summary.head)
    assert result.returncode == 0, result.stderr
    assert snapshot(target) == originals  # content and mode; new.txt is gone
    assert result.stdout.startswith(f"target: {target.resolve()}\n")
    assert "restored" in result.stdout and "removed" in result.stdout
    assert verify(journal).ok
    done = undo_entries(journal)
    assert sorted((d["action"], Path(d["path"]).name) for d in done) == [
        ("remove", "new.txt"),
        ("restore", "lock.txt"),
        ("restore", "package.json"),
    ]
    assert all(d["outcome"] == "ok" for d in done)
    assert result.stdout.strip().endswith(read_entries(journal)[-1]["hash"])

    again = run_cli("undo", journal, "--target", target)
    assert again.returncode == 0, again.stderr
    assert "nothing to undo" in again.stdout
    assert len(undo_entries(journal)) == 3  # the second undo journals nothing new
    assert snapshot(target) == originals
    assert verify(journal).ok


def test_a_file_edited_after_the_run_is_refused_without_force(tmp_path, sandbox_env, run_cli):
    target, originals = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    (target / "package.json").write_bytes(b'{"v": "edited by hand"}\n')

    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert "REFUSED" in result.stdout and "package.json" in result.stdout
    assert "--force" in result.stdout
    assert (target / "package.json").read_bytes() == b'{"v": "edited by hand"}\n'
    # the other files were restored all the same
    assert (target / "sub/lock.txt").read_bytes() == originals["sub/lock.txt"][0]
    refused = [d for d in undo_entries(journal) if d["outcome"] == "refused"]
    assert [Path(d["path"]).name for d in refused] == ["package.json"]

    forced = run_cli("undo", journal, "--target", target, "--force")
    assert forced.returncode == 0, forced.stdout
    assert snapshot(target) == originals
    assert verify(journal).ok


def test_undo_dry_run_changes_nothing(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    before_files, before_journal = snapshot(target), journal.read_bytes()

    result = run_cli("undo", journal, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would restore" in result.stdout and "would remove" in result.stdout
    assert "dry run" in result.stdout
    # without --target a dry run shows the journal's target, and says it is not checked
    assert result.stdout.startswith(f"target: {target.resolve()} (as the journal says; ")
    checked = run_cli("undo", journal, "--dry-run", "--target", target)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"target: {target.resolve()}\n")
    assert snapshot(target) == before_files
    assert journal.read_bytes() == before_journal


def test_a_dry_run_journal_has_nothing_to_undo(tmp_path, sandbox_env, run_cli):
    target, originals = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env, dry_run=True)
    assert snapshot(target) == originals
    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 0
    assert "nothing to undo" in result.stdout
    assert snapshot(target) == originals


def test_undo_refuses_a_journal_in_use_and_a_missing_one(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    before = snapshot(target)
    with Journal(journal, Redactor()):
        result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert "in use" in result.stderr
    assert snapshot(target) == before
    missing = run_cli("undo", tmp_path / "nope.jsonl", "--target", target)
    assert missing.returncode == 2


def test_a_tampered_backup_is_refused(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    [backup] = [
        d["backup"]
        for e in read_entries(journal)
        if e["event"] == "effect"
        and (d := e["data"]).get("op") == "write_file"
        and d["path"].endswith("lock.txt")
    ]
    Path(backup).write_bytes(b"not the original\n")
    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert "does not match" in result.stdout
    assert (target / "sub/lock.txt").read_bytes() == b"lock v2\n"


def test_a_journal_naming_files_outside_the_target_is_refused(tmp_path, sandbox_env, run_cli):
    target, _ = make_project(tmp_path)
    journal, _ = live_run(tmp_path, target, STEPS, sandbox_env)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    decoy = tmp_path / "decoy-backup"
    decoy.write_bytes(b"overwritten\n")
    with Journal(journal, Redactor()) as j:  # a well-chained but forged entry
        j.append(
            "effect",
            {
                "op": "write_file",
                "dry_run": False,
                "path": str(outside),
                "backup": str(decoy),
                "sha256_before": hashlib.sha256(b"overwritten\n").hexdigest(),
                "sha256_after": hashlib.sha256(b"precious\n").hexdigest(),
                "outcome": "ok",
            },
        )
    result = run_cli("undo", journal, "--target", target)
    assert result.returncode == 1
    assert f"REFUSED {outside}: outside the target ({target.resolve()})" in result.stdout
    assert outside.read_bytes() == b"precious\n"
