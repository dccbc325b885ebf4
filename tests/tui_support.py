"""Helpers for the app's tests: playbooks, an app factory, and waiting on Pilot without sleeping
blindly."""

from __future__ import annotations

import hashlib
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.content import Content
from textual.pilot import Pilot
from textual.widget import Widget

from runbook.journal import read_entries
from runbook.registry import default_registry
from runbook.step import Action, Plan, StepContext, StepKind, StepParams, StepResult
from runbook.tui.app import RunbookApp
from runbook.tui.request import Mode, Outline, RunRequest, outline_of
from runbook.tui.screens.run import RunScreen
from tests.support.kinds import register

register()  # test_slow, test_flaky, test_wipe, test_find


class GateStep(StepKind):
    """Writes `gate-entered`, then waits (up to 20 s) until `gate-open` exists under the target:
    a step that is running for exactly as long as a test wants."""

    name = "test_gate"
    Params = StepParams

    def plan(self, ctx: StepContext) -> Plan:
        return Plan(actions=[Action(kind="other", summary="wait for the gate")], fingerprint="g")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        ctx.effects.write_file(ctx.target / "gate-entered", "", reason="test gate")
        deadline = time.monotonic() + 20
        while not (ctx.target / "gate-open").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return StepResult("succeeded", "the gate opened")


default_registry().register(GateStep)


class CommandStep(StepKind):
    """Runs a command (through Effects) that prints a line, waits for `gate-open` under the
    target, prints a line holding a token, and exits: output a test can watch arrive live."""

    name = "test_command"
    Params = StepParams
    SCRIPT = (
        "import os, pathlib, sys, time\n"
        "(pathlib.Path(sys.argv[1]) / 'command.pid').write_text(str(os.getpid()))\n"
        "print('first line ' + 'from the command', flush=True)\n"
        "gate = pathlib.Path(sys.argv[1]) / 'gate-open'\n"
        "deadline = time.monotonic() + 20\n"
        "while not gate.exists() and time.monotonic() < deadline: time.sleep(0.01)\n"
        "print('token: npm_' + 'T0k3n' * 7 + 'abcd', flush=True)\n"
    )

    def plan(self, ctx: StepContext) -> Plan:
        return Plan(actions=[Action(kind="run", summary="a chatty command")], fingerprint="c")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        argv = [sys.executable, "-c", self.SCRIPT, str(ctx.target)]
        result = ctx.effects.run(argv, cwd=ctx.target, reason="test output")
        return StepResult("succeeded" if result.ok else "failed", "the command ended")


default_registry().register(CommandStep)

INCIDENT = """\
incident:
  summary: axios 1.14.1 and 0.30.4 were published with a malicious dependency.
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1", "0.30.4"], safe_pins: {"1": "1.14.0", "0": "0.30.3"}}
    - {name: plain-crypto-js, any_version: true}
  indicators: {dependencies: [plain-crypto-js]}
"""

# Real step kinds, no host scan: what the snapshots show does not depend on the machine.
REAL_PLAYBOOK = f"""\
id: tui-axios
title: "axios 1.14.1 / 0.30.4 compromise (test playbook)"
version: "1"
{INCIDENT}
steps:
  - id: detect
    uses: detect
    title: Find every copy of the bad versions
    confirm: never
    description: |
      **What:** find where `axios@1.14.1`, `axios@0.30.4` or any `plain-crypto-js` was resolved
      or installed. **Why:** each place may have run the loader.

      ```sh
      npm ls axios plain-crypto-js --all
      ```
  - id: check-host
    uses: manual
    title: Look for the RAT on this machine
    confirm: never
    description: Check for the second stage's files and connections.
    with:
      items:
        - {{id: files, text: "Checked /tmp/ld.py and the other artifact paths"}}
        - {{id: network, text: "Looked for connections to 142.11.206.73:8000"}}
  - id: pin
    uses: pin
    title: Pin axios 1.14.0 and force transitive copies
    confirm: destructive
    description: Exact safe pins, overrides, and the lockfile regenerated with scripts off.
  - id: wipe
    uses: wipe_node_modules
    title: Remove node_modules
    confirm: always
    description: Every installed tree may hold a bad copy; it goes before the reinstall.
"""

# Test step kinds only: fast, and every outcome on demand.
KINDS_PLAYBOOK = f"""\
id: tui-keys
title: Key bindings
version: "1"
{INCIDENT}
steps:
  - {{id: find, uses: test_find, title: Find traces, confirm: never,
      with: {{severities: [compromised, at-risk]}}}}
  - {{id: flaky, uses: test_flaky, title: A step that fails until flaky-ok exists}}
  - {{id: wipe, uses: test_wipe, title: Remove node_modules}}
  - {{id: slow, uses: test_slow, title: A slow step, with: {{seconds: 0}}}}
  - {{id: gate, uses: test_gate, title: A step that runs until the test opens its gate}}
"""


def write(tmp_path: Path, text: str, name: str = "playbook.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def make_app(
    playbook: Path,
    target: Path,
    env: dict[str, str],
    *,
    mode: Mode = "dry-run",
    journal: Path | None = None,
    new: bool = False,
) -> RunbookApp:
    """The app on a run, as `runbook run` opens it (cursor blink off for stable screens)."""
    outline = outline_of(playbook, env)
    assert isinstance(outline, Outline)
    request = RunRequest(
        playbook=playbook, target=target, mode=mode, env=env, journal=journal, new=new
    )
    app = RunbookApp(request, outline, blink=False)
    app.animation_level = "none"  # Pilot waits for animations (tab underlines) after each key
    return app


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 20):
    """Let the app run until `predicate()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.02)


async def on_screen(pilot: Pilot[Any], screen_type: type, *selectors: str, timeout: float = 20):
    """Wait until a `screen_type` is the active screen and each selector matches on it (a
    pushed screen is active before its widgets are mounted)."""
    app = pilot.app

    def shown() -> bool:
        screen = app.screen
        return isinstance(screen, screen_type) and all(screen.query(s) for s in selectors)

    await wait_until(pilot, shown, timeout)
    return app.screen


def run_screen(app: RunbookApp) -> RunScreen:
    screen = app.run_screen
    assert screen is not None
    return screen


async def ready(pilot: Pilot[Any]) -> RunScreen:
    """Wait until the run is open (playbook validated, journal open) and its footer shows keys.

    The footer composes its keys on its own schedule; under load a snapshot taken right after
    the session opened could miss them."""
    app = pilot.app
    assert isinstance(app, RunbookApp)
    await wait_until(pilot, lambda: app.run_screen and app.run_screen.session is not None)
    await wait_until(pilot, lambda: app.run_screen.query("FooterKey"))
    return run_screen(app)


async def idle(pilot: Pilot[Any], screen: RunScreen) -> None:
    """Wait until no step thread runs and the last message was handled."""
    await wait_until(pilot, lambda: screen.busy is None)
    await pilot.pause()


def status(screen: RunScreen, step_id: str) -> str:
    assert screen.session is not None
    return screen.session.runner.states()[step_id].status


def text_of(widget: Widget) -> str:
    """What a Static shows, as plain text."""
    content = getattr(widget, "content", None)
    if isinstance(content, str):
        return Content.from_markup(content).plain
    if isinstance(content, Content):
        return content.plain
    console = Console(width=300, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(content)
    return captured.get()


async def answer(pilot: Pilot[Any], text: str) -> None:
    """Fill the focused prompt's field (as a paste would) and press enter."""
    from textual.widgets import Input

    app = pilot.app
    await wait_until(
        pilot, lambda: isinstance(app.focused, Input) and app.focused.screen is app.screen
    )
    field = app.screen.query_one(Input)
    field.value = text
    await pilot.press("enter")


def events(journal: Path, event: str) -> list[dict[str, Any]]:
    return [e["data"] for e in read_entries(journal) if e["event"] == event]


def stand_in_hash(entry: dict[str, Any]) -> str:
    """For snapshots: a hash of the sequence number only. Real hashes cover temporary paths and
    the host name, which differ between runs; the chain is still built and verified with it."""
    return hashlib.sha256(f"entry {entry['seq']}".encode()).hexdigest()


def fixed_clock() -> Callable[[], str]:
    """For snapshots: journal timestamps one second apart, from a fixed moment."""
    ticks = iter(range(3600))

    def now() -> str:
        tick = next(ticks)
        return f"2026-03-31T09:{tick // 60:02d}:{tick % 60:02d}.000Z"

    return now
