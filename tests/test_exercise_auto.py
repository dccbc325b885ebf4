"""`runbook exercise run SCENARIO --auto`: every variant of the bundled scenario, played by its
scripted team, live, in the real simulated world (moto and the registry stand-in up), with
exactly the expectations each variant meets and fails; the exit code follows the `must`
expectations; the journal path and head are printed as `runbook run` prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runbook.exercise.record import read_exercise
from runbook.exercise.scenario import load_scenario
from runbook.exercise.session import draw_variant
from runbook.journal import read_entries, verify
from tests.conftest import ROOT
from tests.exercise_support import SCENARIO, install_small_world, write_small

BUNDLED = ROOT / "scenarios" / "axios-2026-03-drill.yaml"
EVERYTHING = {
    "found-compromise",
    "host-swept",
    "pinned",
    "wiped",
    "pipelines-decided",
    "clean-reinstall",
    "npm-rotated",
    "aws-rotated",
    "c2-searched",
    "security-told",
}
VARIANTS = {
    # variant: (expectations failed, injects fired)
    "laptop-postinstall": (
        set(),
        {
            "ci-alert",
            "proxy-beacon",
            "registry-notice",
            "dns-c2",
            "token-still-live",
            "status-page",
        },
    ),
    "laptop-ignore-scripts": (
        {"npm-rotated"},
        {
            "ci-alert",
            "proxy-beacon",
            "registry-notice",
            "dns-c2",
            "token-still-live",
            "status-page",
        },
    ),
    "ci-runner": (
        {"c2-searched"},
        {
            "ci-alert",
            "proxy-beacon",
            "registry-notice",
            "dns-c2",
            "token-still-live",
            "status-page",
        },
    ),
}


def small_cli(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with the tests' small world installed."""
    code = (
        "import sys; from tests.exercise_support import install_small_world; "
        "install_small_world(); from runbook.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_of_the_bundled_scenario(run_cli, tmp_path: Path, variant: str) -> None:
    failed, injects = VARIANTS[variant]
    directory = tmp_path / "drill"
    result = run_cli(
        "exercise", "run", "axios-2026-03-drill", "--auto", "--variant", variant,
        "--seed", "11", "--dir", directory, timeout=240,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr
    assert f"variant {variant} (seed 11)" in out
    journal = directory / "run.jsonl"
    lines = out.splitlines()
    assert lines[-2] == f"journal: {journal}"
    head = lines[-1].removeprefix("head: ")
    assert verify(journal, head).ok

    record = read_exercise(journal)
    view = record.view()
    met = {e.id for e in view.expectations if e.status == "met"}
    assert met == EVERYTHING - failed
    assert {e.id for e in view.expectations if e.status == "failed"} == failed
    assert {i.id for i in view.injects if i.state == "fired"} == injects
    assert view.exercise_finished is not None and view.exercise_finished["must_met"] is True
    assert view.score() == (
        105 - sum(e.expectation.score for e in view.expectations if e.id in failed),
        105,
    )
    # the run is an exercise run, with the scenario, variant and seed journaled
    assert record.run["mode"] == "exercise"
    assert record.started["variant"] == variant and record.started["seed"] == 11
    assert record.started["scenario"] == "axios-2026-03-drill"
    assert set(record.started["services"]) == {"npm_registry", "aws"}
    assert record.started["sandbox"] == str(directory / "world")
    # the run was live inside the world: the fix is committed in the world's project
    states = {
        e["data"]["step"]: e["data"]["outcome"]
        for e in record.entries
        if e["event"] == "step_finished"
    }
    assert states["pin"] == states["reinstall"] == "succeeded"
    assert states["commit-fix"] == "succeeded"
    # evidence really is in the world, where the inject says
    [ci_log] = (directory / "world").rglob("ci/build-4711.log")
    assert "plain-crypto-js@4.2.1" in ci_log.read_text()
    assert (directory / "world" / "root" / "var" / "log" / "dnsmasq.log").is_file()
    summary = f"score: {view.score()[0]} of 105"
    assert summary in out and "every must expectation met (3)" in out


def test_the_seed_draws_the_variant() -> None:
    loaded = load_scenario(BUNDLED, check_world=False)
    drawn = [draw_variant(loaded, seed).id for seed in range(40)]
    assert drawn == [draw_variant(loaded, seed).id for seed in range(40)], "deterministic"
    assert set(drawn) == {"laptop-postinstall", "laptop-ignore-scripts", "ci-runner"}
    # weight 2 of 4: about half the draws
    assert 10 <= drawn.count("laptop-postinstall") <= 30


def test_a_must_expectation_missed_exits_1(tmp_path: Path, sandbox_env) -> None:
    install_small_world()
    text = SCENARIO.replace(
        "  step_minutes: 4\n",
        "  step_minutes: 4\n  steps:\n    wipe: {answer: skip, reason: the team forgot}\n",
    )
    text = text.replace("  steps:\n    review:", "    review:")
    scenario = write_small(tmp_path, text)
    result = small_cli(
        sandbox_env,
        "exercise",
        "run",
        scenario,
        "--auto",
        "--variant",
        "laptop",
        "--dir",
        tmp_path / "drill",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "must expectations not met: contained" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("head: ")


def test_a_missing_package_manager_is_named_and_the_drill_goes_on(
    tmp_path: Path, sandbox_env
) -> None:
    text = SCENARIO.replace(
        "world: {kind: test-host, project: app}",
        "world: {kind: test-host, project: app, needs: [no-such-pm]}",
    )
    scenario = write_small(tmp_path, text)
    result = small_cli(
        sandbox_env,
        "exercise",
        "run",
        scenario,
        "--auto",
        "--variant",
        "laptop",
        "--dir",
        tmp_path / "drill",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "this machine has no no-such-pm, which the world needs; the drill goes on" in result.stderr
    )
    started = read_exercise(tmp_path / "drill" / "run.jsonl").started
    assert started["missing_tools"] == ["no-such-pm"]


def test_bad_input_is_a_usage_error_without_a_traceback(tmp_path: Path, run_cli) -> None:
    result = run_cli("exercise", "run", "axios-2026-03-dril", "--auto")
    assert result.returncode == 2
    assert "did you mean 'axios-2026-03-drill'?" in result.stderr
    result = run_cli("exercise", "run", "axios-2026-03-drill", "--auto", "--variant", "moon")
    assert result.returncode == 2
    assert "no variant 'moon' in axios-2026-03-drill; variants: laptop-postinstall" in result.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    result = run_cli("exercise", "run", "axios-2026-03-drill", "--auto", "--dir", tmp_path / "full")
    assert result.returncode == 2 and "is not an empty directory" in result.stderr
    result = run_cli("exercise", "start", "axios-2026-03-drill")  # no terminal here
    assert result.returncode == 2 and "exercise run SCENARIO --auto" in result.stderr
    for output in (result.stderr,):
        assert "Traceback" not in output


def test_the_scripted_entries_of_a_small_drill(tmp_path: Path) -> None:
    """The decisions, discussion answers, survey and verdicts the script carries."""
    install_small_world()
    from runbook.exercise.auto import AutoDrill, ScriptedOperator
    from runbook.exercise.session import build_world, exercise_dir, open_exercise

    loaded = load_scenario(write_small(tmp_path))
    variant = draw_variant(loaded, 3, "ci")
    directory = exercise_dir(tmp_path / "drill")
    world = build_world(loaded, variant, 3, directory)
    script = loaded.scenario.script("ci")
    exercise = open_exercise(
        loaded,
        ScriptedOperator(script),
        seed=3,
        variant=variant,
        directory=directory,
        world=world,
        scripted=True,
        role="oncall",
    )
    out = tmp_path / "out.txt"
    with out.open("w") as handle:
        result = AutoDrill(exercise, script, handle).play()
    assert world.started == 1 and world.stopped == 1
    assert (result.met, result.failed) == (
        ["found", "contained", "logs", "decided", "told"],
        ["rotated"],
    )
    assert result.must_met
    entries = read_entries(directory / "run.jsonl")
    events = [e["event"] for e in entries]
    assert events[:4] == ["run_started", "exercise_started", "participant", "clock"]
    assert events[-2:] == ["exercise_finished", "run_finished"]
    decision = next(e["data"] for e in entries if e["event"] == "decision")
    assert decision == {
        "inject": "ci-alert", "title": "Stop the pipelines?",
        "options": ["stop all", "stop affected", "keep running"], "owner": "ic",
        "decision": "stop all", "rationale": "we cannot tell which builds ran it",
        "by": "drill-bot", "role": "oncall",
    }  # fmt: skip
    phases = [e["data"]["phase"] for e in entries if e["event"] == "discussion"]
    assert phases == ["detect", "rotate", "communicate"]  # at each phase boundary, in order
    skipped = next(e["data"] for e in entries if e["event"] == "step_skipped")
    assert skipped == {"step": "rotate", "reason": "not our token", "by": "drill-bot"}
    assert "skipped  rotate" in out.read_text()


def test_the_exercise_engine_imports_neither_textual_nor_steps() -> None:
    code = (
        "import sys\n"
        "import runbook.exercise.cli, runbook.exercise.auto, runbook.exercise.aar\n"
        "import runbook.exercise.aar_render, runbook.exercise.replay\n"
        "import runbook.exercise.facilitation, runbook.exercise.session\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'steps'))\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
