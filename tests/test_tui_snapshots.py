"""What the app looks like, as SVG snapshots at 100x30 (`--snapshot-update` rewrites them; look
at them in tests/__snapshots__/ before committing).

Journal timestamps, hashes, the host name and the sizes of directories differ from run to run and
machine to machine; the tests pin them (see `stable`) so the pictures only change when the app's
look does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from runbook.tui.app import RunbookApp
from runbook.tui.request import StartSettings
from runbook.tui.screens.audit import AuditScreen
from runbook.tui.screens.checklist import ChecklistScreen
from runbook.tui.screens.confirm import ConfirmScreen
from runbook.tui.screens.finished import FinishedScreen
from tests.conftest import EXAMPLE
from tests.tui_support import (
    REAL_PLAYBOOK,
    fixed_clock,
    idle,
    make_app,
    on_screen,
    ready,
    stand_in_hash,
    wait_until,
    write,
)

SIZE = (100, 30)


def file_bytes(path: Path) -> tuple[int, int]:
    """(bytes of regular files, entries) under `path`: what `tree_size` reports, without the
    sizes of directories, which depend on the file system."""
    total, entries = 0, 1
    for root, dirs, files in os.walk(path):
        entries += len(dirs) + len(files)
        total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
    return total, entries


@pytest.fixture
def stable(monkeypatch, sandbox_env, tmp_path) -> dict[str, str]:
    """An environment whose journal and project live under HOME (shown as ~), with time,
    hashes, host name and directory sizes pinned."""
    monkeypatch.setattr("runbook.journal.utc_now", fixed_clock())
    monkeypatch.setattr("runbook.journal.entry_hash", stand_in_hash)
    monkeypatch.setattr("runbook.runner.socket.gethostname", lambda: "oncall-laptop")
    monkeypatch.setattr("steps.wipe.tree_size", file_bytes)
    monkeypatch.setattr("runbook.effects.tree_size", file_bytes)
    home = Path(sandbox_env["HOME"])
    shutil.copytree(EXAMPLE, home / "invoice-sync", symlinks=True)
    return {**sandbox_env, "XDG_STATE_HOME": str(home / ".local" / "state")}


def run_app(tmp_path: Path, env: dict[str, str]) -> RunbookApp:
    home = Path(env["HOME"])
    journal = home / ".local" / "state" / "runbook" / "tui-axios" / "run.jsonl"
    return make_app(write(tmp_path, REAL_PLAYBOOK), home / "invoice-sync", env, journal=journal)


def test_start_screen(snap_compare, stable):
    home = Path(stable["HOME"])
    app = RunbookApp(start=StartSettings(home / "invoice-sync", stable), blink=False)

    async def settle(pilot):
        await wait_until(pilot, lambda: app.screen.query("#unfinished"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_main_screen_with_findings(snap_compare, stable, tmp_path):
    app = run_app(tmp_path, stable)

    async def detect(pilot):
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)

    assert snap_compare(app, terminal_size=SIZE, run_before=detect)


def test_plan_preview_with_a_diff(snap_compare, stable, tmp_path):
    app = run_app(tmp_path, stable)

    async def plan_pin(pilot):
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        screen.steps.select_id("pin")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # not now: the plan stays on screen
        await idle(pilot, screen)

    assert snap_compare(app, terminal_size=SIZE, run_before=plan_pin)


def test_confirmation_modal(snap_compare, stable, tmp_path):
    app = run_app(tmp_path, stable)

    async def ask_wipe(pilot):
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press(*"wi")

    assert snap_compare(app, terminal_size=SIZE, run_before=ask_wipe)


def test_audit_view(snap_compare, stable, tmp_path):
    app = run_app(tmp_path, stable)

    async def audit(pilot):
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        screen.session.runner.note("Told the incident lead; the laptop stays on the network.")
        await pilot.press("a")
        await on_screen(pilot, AuditScreen, "#chain")
        await wait_until(pilot, lambda: "entries" in str(app.screen.query_one("#chain").content))

    assert snap_compare(app, terminal_size=SIZE, run_before=audit)


def test_finished_run(snap_compare, stable, tmp_path):
    app = run_app(tmp_path, stable)

    async def finish(pilot):
        screen = await ready(pilot)
        for _ in range(2000):  # a step that fails every time must fail the test, not hang it
            if isinstance(app.screen, FinishedScreen):
                break
            top = app.screen
            states = screen.session.runner.states()
            failed = [s for s, st in states.items() if st.status == "failed"]
            assert not failed, f"a step failed during the walk: {failed}"
            if isinstance(top, ConfirmScreen):
                await pilot.press(*top.step.id, "enter") if top.typed else await pilot.press("y")
            elif isinstance(top, ChecklistScreen):
                await pilot.press("y")
            elif top is screen and screen.busy is None:
                await pilot.press("enter")
            await pilot.pause(0.01)
        else:
            raise AssertionError("the walk never reached the finished screen")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=finish)
