"""Whole walks through the app with real step kinds: the bundled axios playbook in a dry run, and
a live walk through detection and pins against a real npm and verdaccio."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from runbook.journal import read_entries, verify
from runbook.tui.screens.checklist import ChecklistScreen
from runbook.tui.screens.confirm import ConfirmScreen
from runbook.tui.screens.finished import FinishedScreen
from runbook.tui.screens.prompt import SecretScreen, TextPromptScreen
from steps.npm.lockfiles import parse_lockfile
from tests.conftest import BUNDLED, EXAMPLE
from tests.npmreg import manager_env, prepare_fixture, require_tools, start_registry
from tests.treehash import tree_digest
from tests.tui_support import (
    REAL_PLAYBOOK,
    events,
    idle,
    make_app,
    on_screen,
    ready,
    status,
    text_of,
    wait_until,
    write,
)

SIZE = (100, 30)


async def walk(pilot, screen, timeout: float = 120, observe=None) -> dict[str, int]:
    """Answer whatever the app asks until every step is finished: enter on the run screen, yes
    to confirmations (typing the step id where asked), done to checklist items. `observe`, if
    given, is awaited with the screen on top before each answer."""
    app = pilot.app
    seen = {"confirm": 0, "checklist": 0}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        top = app.screen
        if isinstance(top, FinishedScreen):
            return seen
        if observe is not None:
            await observe(top)
        if isinstance(top, ConfirmScreen):
            seen["confirm"] += 1
            await pilot.press(*top.step.id, "enter") if top.typed else await pilot.press("y")
        elif isinstance(top, ChecklistScreen):
            seen["checklist"] += 1
            await pilot.press("y")
        elif isinstance(top, SecretScreen | TextPromptScreen):
            await pilot.press("escape")
        elif top is screen and screen.busy is None:
            await pilot.press("enter")
        await pilot.pause(0.01)
    raise AssertionError(f"the walk did not finish; at {app.screen}, {seen}")


async def test_dry_run_walk_of_the_bundled_playbook(sandbox_env):
    """Every step of the bundled axios playbook, in a dry run, answering every question."""
    home = Path(sandbox_env["HOME"])
    project = home / "invoice-sync"
    shutil.copytree(EXAMPLE, project, symlinks=True)
    app = make_app(BUNDLED, project, sandbox_env)
    before_target, before_home = tree_digest(project), tree_digest(home)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        seen = await walk(pilot, screen)
        assert "The run is finished (nothing was changed)" in text_of(
            app.screen.query_one(".dialog-title")
        )
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None)
    result = app.return_value
    assert result.outcome == "completed"
    assert tree_digest(project) == before_target  # a dry run changes nothing
    assert tree_digest(home) == before_home
    assert verify(result.journal, result.head).ok
    entries = read_entries(result.journal)
    outcomes = {
        e["data"]["step"]: e["data"]["outcome"] for e in entries if e["event"] == "step_finished"
    }
    assert outcomes["detect"] == "succeeded"
    assert outcomes["pin"] == "succeeded"
    assert set(outcomes.values()) <= {"succeeded", "outstanding"}
    assert {e["data"]["outcome"] for e in entries if e["event"] == "effect"} <= {"would", "ok"}
    assert seen["confirm"] >= 3 and seen["checklist"] >= 10
    confirmed = [e["data"] for e in entries if e["event"] == "step_confirmed"]
    assert len(confirmed) == seen["confirm"]
    assert all(c["answer"] == "yes" and c["by"] == "test-operator" for c in confirmed)
    ticked = [e["data"] for e in entries if e["event"] == "manual_item"]
    assert len(ticked) == seen["checklist"]
    assert all(t["answer"] == "done" for t in ticked)
    assert entries[-1]["event"] == "run_finished" and entries[-1]["data"]["outcome"] == "completed"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("verdaccio", "npm")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def resolved(lockfile: Path) -> set[str]:
    graph = parse_lockfile(lockfile, lockfile.read_bytes())
    return {f"{n.name}@{n.version}" for n in graph.nodes.values()}


async def test_live_walk_through_detection_and_pins(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = prepare_fixture(tmp_path, "npm-v3-direct", registry, keep_tree=True)
    assert "axios@1.14.1" in resolved(project / "package-lock.json")
    journal = tmp_path / "journal.jsonl"
    app = make_app(write(tmp_path, REAL_PLAYBOOK), project, env, mode="live", journal=journal)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert "LIVE" in text_of(screen.query_one("RunHeader"))
        await pilot.press("enter")  # detect
        await idle(pilot, screen)
        assert screen.pane.tab == "findings"
        table = screen.pane.query_one("#findings-table")
        packages = {str(table.get_cell_at((row, 2))) for row in range(table.row_count)}
        assert "axios@1.14.1" in packages
        await pilot.press("enter", "enter")  # on to check-host, and run it
        await wait_until(pilot, lambda: isinstance(app.screen, ChecklistScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecklistScreen))
        await pilot.press("escape")  # the rest later
        await idle(pilot, screen)
        assert status(screen, "check-host") == "outstanding"
        await pilot.press("enter", "enter")  # on to pin, and run it
        await on_screen(pilot, ConfirmScreen, "#confirm-plan Static")
        plan = text_of(app.screen.query_one("#confirm-plan Static"))
        assert '-    "axios": "1.14.1"' in plan and '+    "axios": "1.14.0"' in plan
        assert "$ npm install --package-lock-only --ignore-scripts" in plan
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.busy is None, timeout=120)
        await pilot.pause()
        assert status(screen, "pin") == "succeeded", screen.session.runner.states()["pin"]
        assert screen.pane.tab == "log"
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None)
    manifest = json.loads((project / "package.json").read_text())
    assert manifest["dependencies"]["axios"] == "1.14.0"
    axios = {n for n in resolved(project / "package-lock.json") if n.startswith("axios@")}
    assert axios == {"axios@1.14.0"}
    assert verify(journal, app.return_value.head).ok
    assert [(d["step"], d["answer"]) for d in events(journal, "step_confirmed")] == [("pin", "yes")]
    items = [(d["item"], d["answer"]) for d in events(journal, "manual_item")]
    assert items == [("files", "done"), ("network", "outstanding")]
    written = {Path(d["path"]).name for d in events(journal, "effect") if d["op"] == "write_file"}
    assert {"package.json", "package-lock.json"} <= written
    assert events(journal, "run_finished")[-1]["outcome"] == "stopped"  # `wipe` is left
