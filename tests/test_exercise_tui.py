"""Both faces of an exercise under Pilot: the players' app (EXERCISE banner and clock, the role
a player picks, an inject as a modal with its decision, discussion at a phase boundary, the
hot wash and survey at the end) and the facilitator console (fire, skip, pause, speed, verdicts,
observations, ratings; a finished run says so). The facilitator writes through a second handle
on the journal, as its own process does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from runbook.exercise.facilitation import Facilitation, FacilitationError
from runbook.exercise.scenario import load_scenario
from runbook.exercise.session import Prepared, build_world, draw_variant, exercise_dir
from runbook.journal import read_entries, verify
from runbook.tui.exercise.launch import players_app
from runbook.tui.exercise.modals import (
    DiscussionScreen,
    InjectScreen,
    RoleScreen,
    SurveyScreen,
)
from runbook.tui.exercise.screen import ExerciseRunScreen
from runbook.tui.facilitator.app import FacilitatorApp
from runbook.tui.screens.prompt import QuestionScreen, TextPromptScreen
from runbook.tui.widgets.header import RunHeader
from tests.exercise_support import SCENARIO, install_small_world, write_small
from tests.tui_support import on_screen, text_of, wait_until


async def type_in(pilot, text: str) -> None:
    """Fill the focused field (as a paste would) and press enter."""
    await wait_until(pilot, lambda: isinstance(pilot.app.focused, Input))
    field = pilot.app.focused
    assert isinstance(field, Input), field
    field.value = text
    await pilot.press("enter")


# the first inject comes later here, so the test decides when an inject reaches the players
LATER = SCENARIO.replace("    at: 0m\n    to: [oncall]", "    at: 50m\n    to: [oncall]")


def prepare(tmp_path: Path, text: str = SCENARIO, variant: str = "laptop") -> Prepared:
    install_small_world()
    loaded = load_scenario(write_small(tmp_path, text))
    drawn = draw_variant(loaded, 5, variant)
    directory = exercise_dir(tmp_path / "drill")
    return Prepared(loaded, drawn, 5, directory, build_world(loaded, drawn, 5, directory))


def events(prepared: Prepared, name: str) -> list[dict]:
    return [e["data"] for e in read_entries(prepared.directory / "run.jsonl") if e["event"] == name]


async def test_the_players_app_from_role_to_survey(tmp_path: Path) -> None:
    prepared = prepare(tmp_path)
    app = players_app(prepared, "alice", blink=False)
    app.animation_level = "none"
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RoleScreen))
        screen = next(s for s in app.screen_stack if isinstance(s, ExerciseRunScreen))
        header = screen.query_one(RunHeader)
        assert "EXERCISE" in text_of(header) and "clock +0:0" in text_of(header)
        await pilot.press("down", "enter")  # the incident commander
        # the inject due at +0 is on screen, with its decision
        await on_screen(pilot, InjectScreen, "#inject-title", "#inject-text")
        assert "CI pulled plain-crypto-js" in text_of(app.screen.query_one("#inject-title"))
        assert "Build 4711" in text_of(app.screen.query_one("#inject-text"))
        await pilot.press("down", "down", "enter")  # keep running; then the rationale
        await type_in(pilot, "no evidence yet")
        await wait_until(pilot, lambda: isinstance(app.screen, ExerciseRunScreen))
        await wait_until(pilot, lambda: events(prepared, "decision"))
        # the detect step, then the questions of the phase it ends
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DiscussionScreen))
        await type_in(pilot, "security, then the IC")
        await wait_until(pilot, lambda: events(prepared, "discussion"))
        await pilot.press("i")  # the injects so far
        await pilot.press("enter")
        await on_screen(pilot, InjectScreen, "#inject-title")
        assert not app.screen.query("#options"), "decided already: no second decision"
        await pilot.press("escape")
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.press("y")
        # phases not discussed yet (rotate, communicate), then the survey
        await wait_until(pilot, lambda: isinstance(app.screen, DiscussionScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DiscussionScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SurveyScreen))
        await type_in(pilot, "4")
        await type_in(pilot, "TODO: a CI runbook")
        await wait_until(pilot, lambda: app.return_value is not None, timeout=20)
    assert app.return_value.outcome == "stopped"
    journal = prepared.directory / "run.jsonl"
    assert verify(journal).ok
    assert events(prepared, "participant") == [
        {"name": "alice", "role": "ic", "role_name": "Incident commander"}
    ]
    [decision] = events(prepared, "decision")
    assert (decision["decision"], decision["rationale"], decision["role"]) == (
        "keep running",
        "no evidence yet",
        "ic",
    )
    assert events(prepared, "discussion") == [
        {"phase": "detect", "question": "Who do you tell first?",
         "answer": "security, then the IC", "by": "alice", "role": "ic"}
    ]  # fmt: skip
    assert [(s["id"], s["answer"]) for s in events(prepared, "survey")] == [
        ("confidence", "4"),
        ("missing", "TODO: a CI runbook"),
    ]
    [started] = events(prepared, "run_started")
    assert started["mode"] == "exercise"
    finished = events(prepared, "exercise_finished")
    assert finished and "contained" in finished[0]["failed"]
    assert prepared.world.started == 1 and prepared.world.stopped == 1


async def test_an_inject_the_facilitator_fires_is_on_screen_within_a_second(
    tmp_path: Path,
) -> None:
    prepared = prepare(tmp_path, LATER)
    app = players_app(prepared, "alice", blink=False)
    app.animation_level = "none"
    prepared.role = "oncall"
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.run_screen and app.run_screen.session is not None)
        await pilot.pause(0.3)
        assert not isinstance(app.screen, InjectScreen)
        facilitator = Facilitation(prepared.directory / "run.jsonl", "fran")
        try:
            facilitator.pause()
            fired = time.monotonic()
            facilitator.fire("dns-log")  # during a pause
            await on_screen(pilot, InjectScreen, "#inject-title", timeout=5)
            latency = time.monotonic() - fired
            assert "DNS logs name the C2" in text_of(app.screen.query_one("#inject-title"))
            assert latency < 1.0, f"{latency:.2f}s"
            screen = app.run_screen
            assert screen is not None and "PAUSED" in text_of(screen.query_one(RunHeader))
            with pytest.raises(FacilitationError, match="already fired"):
                facilitator.fire("dns-log")
        finally:
            facilitator.close()
        await pilot.press("escape")
        await pilot.press("q", "y")
        await wait_until(pilot, lambda: isinstance(app.screen, DiscussionScreen))
        for _ in range(3):  # three phases with questions left, then the survey
            await pilot.press("escape")
            await pilot.pause(0.05)
        await wait_until(pilot, lambda: isinstance(app.screen, SurveyScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.return_value is not None)
    [fired_entry] = events(prepared, "inject_fired")
    assert (fired_entry["inject"], fired_entry["by"]) == ("dns-log", "facilitator")
    assert Path(fired_entry["evidence"][0]).read_text() == "query sfrclak.com A\n"
    assert verify(prepared.directory / "run.jsonl").ok


def running_exercise(tmp_path: Path):
    """An exercise opened (scripted operator) and left running, as the players' app holds it."""
    from runbook.exercise.auto import ScriptedOperator
    from runbook.exercise.session import open_exercise

    prepared = prepare(tmp_path, LATER)
    script = prepared.loaded.scenario.script("laptop")
    return open_exercise(
        prepared.loaded, ScriptedOperator(script), seed=5, variant=prepared.variant,
        directory=prepared.directory, world=prepared.world, role="oncall",
    )  # fmt: skip


def rows(app: FacilitatorApp, table: str) -> dict[str, list[str]]:
    widget = app.query_one(f"#{table}", DataTable)
    return {str(key.value): [str(c) for c in widget.get_row(key)] for key in widget.rows}


async def test_the_facilitator_console(tmp_path: Path) -> None:
    exercise = running_exercise(tmp_path)
    journal = exercise.journal_path
    app = FacilitatorApp(journal, "fran", blink=False)
    app.animation_level = "none"
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.f is not None and rows(app, "injects"))
            truth = text_of(app.query_one("#truth"))
            assert "The loader ran on a laptop" in truth and "/tmp/ld.py" in truth
            assert rows(app, "injects")["ci-alert"][1] == "pending"
            await pilot.press("f")  # the first row: ci-alert
            await wait_until(pilot, lambda: rows(app, "injects")["ci-alert"][1] == "requested")
            exercise.drill.tick()  # the players' drill master fires it
            await wait_until(pilot, lambda: rows(app, "injects")["ci-alert"][1] == "fired")
            await pilot.press("down", "x")
            await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
            await type_in(pilot, "covered by the CI inject")
            await wait_until(pilot, lambda: rows(app, "injects")["dns-log"][1] == "skipped")
            await pilot.press("space")
            await wait_until(pilot, lambda: "PAUSED" in text_of(app.query_one("#f-head")))
            await pilot.press("space", "plus")
            await wait_until(pilot, lambda: "×2" in text_of(app.query_one("#f-head")))
            await pilot.press("tab")  # the expectations
            expectations = app.query_one("#expectations", DataTable)
            expectations.move_cursor(row=list(rows(app, "expectations")).index("told"))
            await pilot.press("v")
            await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
            await type_in(pilot, "the IC phoned security at +3")
            await wait_until(pilot, lambda: rows(app, "expectations")["told"][0] == "met")
            expectations.move_cursor(row=0)  # an automatic one cannot be judged by hand
            await pilot.press("r")
            await pilot.pause(0.1)
            assert not isinstance(app.screen, TextPromptScreen)
            await pilot.press("o")
            await type_in(pilot, "TODO: name a CI owner")
            await pilot.press("R")
            await type_in(pilot, "detect S slow to start")
            await pilot.pause(0.2)
            await pilot.press("q")
    finally:
        exercise.close()
    entries = read_entries(journal)
    mine = [(e["event"], e["data"]) for e in entries if e["data"].get("by") == "fran"]
    assert [
        (
            event,
            data.get("action")
            or data.get("inject")
            or data.get("id")
            or data.get("phase")
            or data.get("text"),
        )
        for event, data in mine
    ] == [
        ("clock", "fire_now"),
        ("inject_skipped", "dns-log"),
        ("clock", "pause"),
        ("clock", "resume"),
        ("clock", "speed"),
        ("expectation", "told"),
        ("observation", "TODO: name a CI owner"),
        ("rating", "detect"),
    ]
    fired = next(e["data"] for e in entries if e["event"] == "inject_fired")
    assert (fired["inject"], fired["by"]) == ("ci-alert", "facilitator")
    assert verify(journal).ok


async def test_the_facilitator_console_on_a_finished_run(tmp_path: Path) -> None:
    exercise = running_exercise(tmp_path)
    exercise.close()
    app = FacilitatorApp(exercise.journal_path, "fran", blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.f is not None)
        assert "This exercise has finished (completed)" in text_of(
            app.query_one("#f-banner")
        ) or "This exercise has finished (stopped)" in text_of(app.query_one("#f-banner"))
        before = len(read_entries(exercise.journal_path))
        await pilot.press("f", "space")
        await pilot.pause(0.1)
        assert len(read_entries(exercise.journal_path)) == before, "nothing fired or paused"
        await pilot.press("o")
        await type_in(pilot, "good hot wash")
        await pilot.pause(0.2)
        await pilot.press("q")
    assert read_entries(exercise.journal_path)[-1]["event"] == "observation"


async def test_the_facilitator_console_refuses_what_is_not_an_exercise(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text("")
    app = FacilitatorApp(plain, "fran")
    async with app.run_test() as pilot:
        await pilot.pause(0.1)
    assert "holds no run" in app.error


def test_facilitation_refusals(tmp_path: Path) -> None:
    exercise = running_exercise(tmp_path)
    f = Facilitation(exercise.journal_path, "fran")
    try:
        with pytest.raises(FacilitationError, match="no inject 'nope'"):
            f.fire("nope")
        with pytest.raises(FacilitationError, match="judged automatically"):
            f.verdict("found", "met")
        with pytest.raises(FacilitationError, match="the clock is running"):
            f.resume()
        with pytest.raises(FacilitationError, match="give the reason"):
            f.rate("detect", "P", " ")
        with pytest.raises(FacilitationError, match="unknown phase"):
            f.rate("lunch", "P", "x")
        f.fire("ci-alert")
        with pytest.raises(FacilitationError, match="already asked for"):
            f.fire("ci-alert")
        exercise.drill.tick()
        f.refresh()
        assert f.view.inject("ci-alert").state == "fired"
    finally:
        f.close()
        exercise.close()
    f = Facilitation(exercise.journal_path, "fran")
    try:
        with pytest.raises(FacilitationError, match="has finished"):
            f.pause()
        f.verdict("told", "rejected", "nobody was told")  # the hot wash, after the end
        assert f.view.expectation("told").status == "rejected"
    finally:
        f.close()
