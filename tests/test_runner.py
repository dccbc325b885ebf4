"""The runner through the real CLI: resume after SIGKILL or Ctrl-C, confirmation, skip, retry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook.journal import Journal, read_entries, verify
from runbook.operator import HeadlessOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor
from runbook.registry import default_registry
from runbook.runner import Runner
from tests.conftest import ROOT
from tests.support.kinds import register

register()

HEAD = """\
id: test-pb
title: Test playbook
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
"""


def write_playbook(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "pb.yaml"
    path.write_text(HEAD + steps)
    return path


def cli(env: dict[str, str], *args: str | Path, **kwargs) -> subprocess.Popen[str]:
    env = {**env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.cli", *map(str, args)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = cli(env, *args)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def journals(env: dict[str, str], playbook_id: str = "test-pb") -> list[Path]:
    return sorted((Path(env["XDG_STATE_HOME"]) / "runbook" / playbook_id).glob("*.jsonl"))


def events(path: Path, event: str) -> list[dict]:
    return [e["data"] for e in read_entries(path) if e["event"] == event]


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


STEPS_SLOW = """\
  - {id: first, uses: test_slow, title: First}
  - {id: second, uses: test_slow, title: Second, with: {seconds: 30}}
  - {id: third, uses: test_slow, title: Third}
"""


def test_resume_after_sigkill_does_not_repeat_finished_steps(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_SLOW)
    log = project / "runlog.txt"
    proc = cli(sandbox_env, "run", pb, "--target", project)
    wait_for(lambda: log.exists() and "start second" in log.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert log.read_text() == "start first\nend first\nstart second\n"

    # the rerun must not sleep 30 s again for `second`: shorten it by editing the playbook
    pb.write_text(pb.read_text().replace("seconds: 30", "seconds: 0"))
    result = run(sandbox_env, "run", pb, "--target", project)
    assert result.returncode == 0, result.stderr
    assert "resuming test-pb" in result.stdout
    assert log.read_text() == (
        "start first\nend first\nstart second\nstart second\nend second\nstart third\nend third\n"
    )
    [journal] = journals(sandbox_env)
    assert verify(journal).ok
    resumed = events(journal, "run_resumed")
    assert resumed and resumed[0]["finished_steps"] == ["first"]
    started = [d["step"] for d in events(journal, "step_started")]
    assert started == ["first", "second", "second", "third"]


def test_ctrl_c_is_journaled_and_the_run_resumes(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_SLOW)
    log = project / "runlog.txt"
    proc = cli(sandbox_env, "run", pb, "--target", project)
    wait_for(lambda: log.exists() and "start second" in log.read_text())
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "rerun to resume" in out
    [journal] = journals(sandbox_env)
    assert verify(journal).ok
    assert events(journal, "run_finished")[-1]["outcome"] == "interrupted"
    pb.write_text(pb.read_text().replace("seconds: 30", "seconds: 0"))
    result = run(sandbox_env, "run", pb, "--target", project)
    assert result.returncode == 0
    assert log.read_text().count("start first") == 1
    assert log.read_text().endswith("end third\n")


def test_second_runner_on_the_same_run_is_refused(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_SLOW)
    log = project / "runlog.txt"
    first = cli(sandbox_env, "run", pb, "--target", project)
    try:
        wait_for(lambda: log.exists() and "start second" in log.read_text())
        second = run(sandbox_env, "run", pb, "--target", project)
        assert second.returncode == 1
        assert "in use by another runbook process" in second.stderr
    finally:
        first.kill()
        first.wait()


STEPS_WIPE = """\
  - {id: note, uses: manual, title: Read this, with: {items: [read]}}
  - {id: wipe, uses: test_wipe, title: Remove node_modules}
  - {id: after, uses: test_slow, title: After}
"""


def test_destructive_step_needs_confirmation_without_a_tty(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_WIPE)
    result = run(sandbox_env, "run", pb, "--target", project)
    assert result.returncode == 2
    assert "step 'wipe' needs confirmation and there is no terminal to ask" in result.stdout
    assert (project / "node_modules" / "plain-crypto-js").is_dir()
    [journal] = journals(sandbox_env)
    assert not events(journal, "step_started")[1:]  # only the manual step started

    again = run(sandbox_env, "run", pb, "--target", project, "--yes")
    assert again.returncode == 0, again.stdout
    assert not (project / "node_modules").exists()
    assert journals(sandbox_env) == [journal]  # the same run was resumed
    confirmed = events(journal, "step_confirmed")
    assert confirmed == [
        {
            "step": "wipe",
            "answer": "yes",
            "by": "test-operator (--yes)",
            "reason": "",
            "typed": False,
        }
    ]
    assert [d["step"] for d in events(journal, "step_started")] == ["note", "wipe", "after"]
    assert verify(journal).ok


def test_dry_run_confirms_nothing_and_changes_nothing(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_WIPE)
    result = run(sandbox_env, "run", pb, "--target", project, "--dry-run")
    assert result.returncode == 0, result.stdout
    assert (project / "node_modules" / "plain-crypto-js").is_dir()
    assert not (project / "runlog.txt").exists()
    [journal] = journals(sandbox_env)
    effects = events(journal, "effect")
    assert {e["outcome"] for e in effects} == {"would"}
    assert any(e["op"] == "remove_tree" and e["bytes"] > 0 for e in effects)


def test_skip_with_a_reason(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_WIPE)
    result = run(sandbox_env, "run", pb, "--target", project, "--skip", "wipe=kept for forensics")
    assert result.returncode == 0
    assert (project / "node_modules").is_dir()
    [journal] = journals(sandbox_env)
    assert events(journal, "step_skipped") == [
        {"step": "wipe", "reason": "kept for forensics", "by": "test-operator"}
    ]
    bad = run(sandbox_env, "run", pb, "--target", project, "--new", "--skip", "wipe")
    assert bad.returncode == 2
    assert "give a reason" in bad.stderr


def test_failed_step_stops_the_run_and_a_rerun_retries_it(tmp_path, sandbox_env, project):
    pb = write_playbook(
        tmp_path,
        """\
  - {id: first, uses: test_slow, title: First}
  - {id: flaky, uses: test_flaky, title: Flaky}
  - {id: last, uses: test_slow, title: Last}
""",
    )
    result = run(sandbox_env, "run", pb, "--target", project)
    assert result.returncode == 1
    assert "FAILED   flaky" in result.stdout
    assert "flaky-ok is missing" in result.stdout
    (project / "flaky-ok").touch()
    retry = run(sandbox_env, "run", pb, "--target", project)
    assert retry.returncode == 0, retry.stdout
    assert (project / "runlog.txt").read_text() == "start first\nend first\nstart last\nend last\n"
    [journal] = journals(sandbox_env)
    outcomes = [(d["step"], d["outcome"]) for d in events(journal, "step_finished")]
    assert outcomes == [
        ("first", "succeeded"),
        ("flaky", "failed"),
        ("flaky", "succeeded"),
        ("last", "succeeded"),
    ]


def test_continue_on_error_goes_on(tmp_path, sandbox_env, project):
    pb = write_playbook(
        tmp_path,
        """\
  - {id: flaky, uses: test_flaky, title: Flaky, continue_on_error: true}
  - {id: last, uses: test_slow, title: Last}
  - id: cleanup
    uses: test_slow
    title: Only after a failure
    when: {step: flaky, outcome: failed}
""",
    )
    result = run(sandbox_env, "run", pb, "--target", project, "--json")
    assert result.returncode == 1  # a step failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    steps = {line["step"]: line["status"] for line in lines if line["event"] == "step"}
    assert steps == {"flaky": "failed", "last": "succeeded", "cleanup": "succeeded"}
    assert lines[-1]["event"] == "end" and lines[-1]["outcome"] == "completed"


def test_from_skips_earlier_steps(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_SLOW.replace("seconds: 30", "seconds: 0"))
    result = run(sandbox_env, "run", pb, "--target", project, "--from", "second")
    assert result.returncode == 0
    assert (
        project / "runlog.txt"
    ).read_text() == "start second\nend second\nstart third\nend third\n"
    [journal] = journals(sandbox_env)
    assert events(journal, "step_skipped")[0]["reason"] == "run started at 'second' (--from)"
    unknown = run(sandbox_env, "run", pb, "--target", project, "--from", "nope")
    assert unknown.returncode == 2
    assert "no step 'nope'" in unknown.stderr


def test_a_stale_plan_is_refused(tmp_path, sandbox_env, project):
    pb = write_playbook(tmp_path, STEPS_WIPE)
    loaded = load_playbook(pb, default_registry())
    redactor = Redactor()
    with Journal(tmp_path / "j.jsonl", redactor) as journal:
        runner = Runner(
            loaded,
            project,
            journal,
            HeadlessOperator("op", assume_yes=True),
            dry_run=False,
            redactor=redactor,
            env=sandbox_env,
        )
        runner.begin()
        step = loaded.playbook.step("wipe")
        plan = runner.plan(step)
        assert plan.destructive
        (project / "node_modules" / "added-after-the-plan").mkdir()
        state = runner.execute(step, plan)
    assert state.status == "failed"
    assert "changed since it was planned" in state.summary
    assert (project / "node_modules" / "plain-crypto-js").is_dir()


@pytest.mark.parametrize("mode_flag", [[], ["--dry-run"]])
def test_runs_are_resumed_per_mode(tmp_path, sandbox_env, project, mode_flag):
    pb = write_playbook(tmp_path, STEPS_WIPE)
    run(sandbox_env, "run", pb, "--target", project, *mode_flag)
    other = [] if mode_flag else ["--dry-run"]
    result = run(sandbox_env, "run", pb, "--target", project, *other)
    assert "running test-pb" in result.stdout  # a new run, not the other mode's
    assert len(journals(sandbox_env)) == 2
    assert os.environ["HOME"] == sandbox_env["HOME"]
