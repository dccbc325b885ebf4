"""The app through Pilot: every key of the issue, confirmations, skips, notes, quit and resume,
on the test step kinds (fast, every outcome on demand). Every journal is read back."""

from __future__ import annotations

import threading

import pytest

from runbook.journal import verify
from runbook.tui.screens.audit import AuditScreen
from runbook.tui.screens.confirm import ConfirmScreen
from runbook.tui.screens.help import HelpScreen
from runbook.tui.screens.prompt import QuestionScreen, SecretScreen, TextPromptScreen
from tests.tui_support import (
    INCIDENT,
    KINDS_PLAYBOOK,
    answer,
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


@pytest.fixture
def keys_app(tmp_path, sandbox_env, project):
    """The app on the test-kinds playbook, live, with an explicit journal."""
    journal = tmp_path / "journal.jsonl"
    app = make_app(
        write(tmp_path, KINDS_PLAYBOOK), project, sandbox_env, mode="live", journal=journal
    )
    return app, journal


async def test_moving_with_arrows_and_j_k(keys_app):
    app, _ = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.steps.selected_id == "find"
        await pilot.press("down")
        assert screen.steps.selected_id == "flaky"
        await pilot.press("j")
        assert screen.steps.selected_id == "wipe"
        await pilot.press("k")
        assert screen.steps.selected_id == "flaky"
        await pilot.press("up")
        assert screen.steps.selected_id == "find"
        head = text_of(screen.pane.query_one("#step-head"))
        assert "Step 1 of 5" in head and "Find traces" in head


async def test_enter_plans_and_runs_then_moves_on(keys_app):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        assert status(screen, "find") == "succeeded"
        assert screen.pane.tab == "findings"  # a step that only observes shows what it saw
        await pilot.press("enter")  # on a finished step: go to the next one, run nothing
        assert screen.steps.selected_id == "flaky"
        assert status(screen, "flaky") == "pending"
    planned = events(journal, "step_planned")
    assert [p["step"] for p in planned] == ["find"]
    assert [f["severity"] for f in planned[0]["findings"]] == ["compromised", "at-risk"]


async def test_retry_a_failed_step(keys_app, project):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("flaky")
        await pilot.press("r")  # not run yet: nothing to retry
        assert status(screen, "flaky") == "pending"
        await pilot.press("enter")
        await idle(pilot, screen)
        assert status(screen, "flaky") == "failed"
        assert "FAILED" in text_of(screen.query_one("#hint"))
        (project / "flaky-ok").touch()
        await pilot.press("r")
        await idle(pilot, screen)
        assert status(screen, "flaky") == "succeeded"
    outcomes = [(d["step"], d["outcome"]) for d in events(journal, "step_finished")]
    assert outcomes == [("flaky", "failed"), ("flaky", "succeeded")]


async def test_confirmation_no_then_yes(keys_app, project):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await on_screen(pilot, ConfirmScreen, "#counts")
        shown = text_of(app.screen.query_one("#counts"))
        assert "1 action(s), 1 destructive: 1 path(s) removed" in shown
        await pilot.press("n")
        await idle(pilot, screen)
        assert status(screen, "wipe") == "pending"
        assert (project / "node_modules" / "plain-crypto-js").is_dir()
        assert "nothing was changed" in text_of(screen.query_one("#hint"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await idle(pilot, screen)
        assert status(screen, "wipe") == "succeeded"
    assert not (project / "node_modules").exists()
    answers = [(d["answer"], d["by"], d["typed"]) for d in events(journal, "step_confirmed")]
    assert answers == [("no", "test-operator", False), ("yes", "test-operator", False)]


async def test_confirm_always_needs_the_step_id_typed(tmp_path, sandbox_env, project):
    playbook = write(
        tmp_path,
        KINDS_PLAYBOOK.replace("title: Remove node_modules}", "title: W, confirm: always}"),
    )
    journal = tmp_path / "journal.jsonl"
    app = make_app(playbook, project, sandbox_env, mode="live", journal=journal)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y", "enter")  # "y" is a letter of the answer here, not yes
        assert isinstance(app.screen, ConfirmScreen)
        assert (project / "node_modules").is_dir()
        await pilot.press("backspace", *"wipe", "enter")
        await idle(pilot, screen)
        assert status(screen, "wipe") == "succeeded"
    assert not (project / "node_modules").exists()
    [confirmed] = events(journal, "step_confirmed")
    assert (confirmed["answer"], confirmed["typed"]) == ("yes", True)


async def test_skip_asks_for_a_reason(keys_app, project):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press("enter")  # an empty reason is refused
        assert isinstance(app.screen, TextPromptScreen)
        await answer(pilot, "kept for forensics")
        await wait_until(pilot, lambda: status(screen, "wipe") == "skipped")
        assert "skipped" in text_of(screen.query_one("#hint"))
    assert (project / "node_modules").is_dir()
    assert events(journal, "step_skipped") == [
        {"step": "wipe", "reason": "kept for forensics", "by": "test-operator"}
    ]


async def test_skip_from_the_confirmation(keys_app, project):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await answer(pilot, "the disk image is evidence")
        await idle(pilot, screen)
        assert status(screen, "wipe") == "skipped"
    assert (project / "node_modules").is_dir()
    [confirmed] = events(journal, "step_confirmed")
    assert (confirmed["answer"], confirmed["reason"]) == ("skip", "the disk image is evidence")
    assert events(journal, "step_skipped")[0]["reason"] == "the disk image is evidence"


async def test_a_note_reaches_the_journal(keys_app):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await answer(pilot, "told the incident lead")
        await wait_until(pilot, lambda: not isinstance(app.screen, TextPromptScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press("x", "escape")  # cancelled: nothing is journaled
        await wait_until(pilot, lambda: not isinstance(app.screen, TextPromptScreen))
    assert events(journal, "note") == [{"text": "told the incident lead", "by": "test-operator"}]
    assert verify(journal).ok


async def test_audit_view_is_live_and_verifies_the_chain(keys_app):
    app, _journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("a")
        await on_screen(pilot, AuditScreen, "#chain")
        audit = app.screen
        assert "chain intact: 1 entries" in text_of(audit.query_one("#chain"))
        table = audit.query_one("#audit-table")
        assert table.row_count == 1
        screen.session.runner.note("written while the audit view is open")
        await wait_until(pilot, lambda: table.row_count == 2)
        await wait_until(pilot, lambda: "2 entries" in text_of(audit.query_one("#chain")))
        assert "note" in text_of(audit.query_one("#audit-entry"))
        await pilot.press("escape")
        assert app.screen is screen


async def test_audit_view_shows_a_broken_chain(keys_app):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        lines = journal.read_bytes().splitlines(keepends=True)
        journal.write_bytes(lines[0].replace(b"test-operator", b"someone-else"))
        await pilot.press("a")
        await on_screen(pilot, AuditScreen, "#chain")
        chain = text_of(app.screen.query_one("#chain"))
        assert "chain BROKEN at line 1" in chain


async def test_help_and_tabs(keys_app):
    app, _ = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "audit view" in text_of(app.screen.query_one("#help-body Static"))
        await pilot.press("escape")
        assert app.screen is screen
        for key, tab in (("f", "findings"), ("p", "plan"), ("l", "log"), ("d", "description")):
            await pilot.press(key)
            assert screen.pane.tab == tab


async def test_quit_when_idle_ends_the_session(keys_app):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None)
    assert app.return_value.outcome == "stopped"
    [finished] = events(journal, "run_finished")
    assert finished["outcome"] == "stopped"
    assert "rerun to resume" in finished["reason"]
    assert verify(journal, app.return_value.head).ok


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_during_a_running_step_then_resume(keys_app, sandbox_env, project, key):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        screen.steps.select_id("gate")
        await pilot.press("enter")
        await wait_until(pilot, lambda: (project / "gate-entered").exists())
        await pilot.press(key)
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.press("n")  # keep running
        assert app.return_value is None and screen.busy == "gate"
        await pilot.press(key)
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_value is not None)
        thread = screen.thread
    assert app.return_value.outcome == "interrupted"
    (project / "gate-open").touch()
    thread.join(timeout=10)  # the abandoned step thread finds the journal closed and stops
    assert not thread.is_alive()
    assert events(journal, "run_finished")[-1]["outcome"] == "interrupted"
    assert [d["step"] for d in events(journal, "step_finished")] == ["find"]
    assert verify(journal).ok

    (project / "gate-open").unlink()
    (project / "gate-entered").unlink()
    again = make_app(app.request.playbook, project, sandbox_env, mode="live", journal=journal)
    async with again.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.session.resumed
        assert status(screen, "find") == "succeeded"
        assert screen.steps.selected_id == "flaky"  # the first unfinished step
        assert screen._status("gate") == "interrupted"
        screen.steps.select_id("gate")
        await pilot.pause()
        assert "interrupted" in text_of(screen.pane.query_one("#step-head"))
        (project / "gate-open").touch()
        await pilot.press("enter")
        await idle(pilot, screen)
        assert status(screen, "gate") == "succeeded"
    resumed = events(journal, "run_resumed")
    assert resumed and resumed[0]["finished_steps"] == ["find"]
    assert [d["step"] for d in events(journal, "step_started")] == ["find", "gate", "gate"]
    assert verify(journal).ok


async def test_a_step_that_waits_for_an_earlier_one(tmp_path, sandbox_env, project):
    playbook = write(
        tmp_path,
        KINDS_PLAYBOOK.replace(
            "title: A slow step,", "title: A slow step, when: {step: wipe, outcome: succeeded},"
        ),
    )
    journal = tmp_path / "journal.jsonl"
    app = make_app(playbook, project, sandbox_env, mode="live", journal=journal)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("slow")
        await pilot.press("enter")  # `wipe` has not run: nothing happens
        await pilot.pause()
        assert status(screen, "slow") == "pending"
        screen.steps.select_id("wipe")
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await answer(pilot, "not today")
        await wait_until(pilot, lambda: status(screen, "wipe") == "skipped")
        screen.steps.select_id("slow")
        await pilot.press("enter")  # its condition can no longer hold: skipped, by `when`
        await wait_until(pilot, lambda: status(screen, "slow") == "skipped")
    assert events(journal, "step_skipped")[-1] == {
        "step": "slow",
        "reason": "condition not met (wipe: outcome in succeeded)",
        "by": "when",
    }


async def test_an_invalid_playbook_closes_the_app_with_the_problems(tmp_path, sandbox_env, project):
    playbook = write(tmp_path, KINDS_PLAYBOOK.replace("uses: test_flaky", "uses: test_flakey"))
    app = make_app(playbook, project, sandbox_env)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.return_value is not None)
    [problem] = app.return_value.error
    assert "unknown step kind 'test_flakey' (did you mean 'test_flaky'?)" in problem


async def test_a_secret_prompt_is_masked(keys_app):
    app, _ = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        step = screen.session.loaded.playbook.steps[0]
        answers = []
        worker = threading.Thread(
            target=lambda: answers.append(screen.operator.secret(step, "npm password"))
        )
        worker.start()
        await on_screen(pilot, SecretScreen, "#answer")
        field = app.screen.query_one("#answer")
        assert field.password
        await pilot.press(*"hunter2")
        assert "hunter2" not in str(app.screen.query_one("#answer").render_line(0))
        await answer(pilot, "hunter2-secret")
        await wait_until(pilot, lambda: answers)
        worker.join(timeout=5)
    assert answers == ["hunter2-secret"]


async def test_skips_and_from_of_the_command_line(tmp_path, sandbox_env, project):
    journal = tmp_path / "journal.jsonl"
    app = make_app(write(tmp_path, KINDS_PLAYBOOK), project, sandbox_env, journal=journal)
    app.request.from_step = "wipe"
    app.request.skips = {"slow": "not needed here"}
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.steps.selected_id == "wipe"  # the steps before --from are skipped
    skipped = {d["step"]: d["reason"] for d in events(journal, "step_skipped")}
    assert skipped == {
        "find": "run started at 'wipe' (--from)",
        "flaky": "run started at 'wipe' (--from)",
        "slow": "not needed here",
    }


async def test_tabletop_mode_is_a_dry_run_with_its_own_banner(tmp_path, sandbox_env, project):
    journal = tmp_path / "journal.jsonl"
    playbook = write(tmp_path, KINDS_PLAYBOOK)
    app = make_app(playbook, project, sandbox_env, mode="tabletop", journal=journal)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert "TABLETOP" in text_of(screen.query_one("RunHeader"))
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await on_screen(pilot, ConfirmScreen, "#counts")
        assert "TABLETOP" in text_of(app.screen.query_one("#counts"))
        await pilot.press("y")
        await idle(pilot, screen)
    assert (project / "node_modules").is_dir()  # a rehearsal changes nothing
    assert events(journal, "run_started")[0]["mode"] == "dry-run"
    assert events(journal, "note")[0]["text"].startswith("tabletop exercise")


async def test_a_running_command_streams_its_output_into_the_log(tmp_path, sandbox_env, project):
    """Lines appear in the step's log while the command still runs, redacted."""
    from textual.widgets import RichLog

    playbook = write(
        tmp_path,
        f"id: chatty\ntitle: Output\nversion: '1'\n{INCIDENT}steps:\n"
        "  - {id: chatty, uses: test_command, title: A chatty command, confirm: never}\n",
    )
    app = make_app(playbook, project, sandbox_env, mode="live")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")

        def logged() -> str:
            log = screen.query_one("#log-text", RichLog)
            return "\n".join(strip.text for strip in log.lines)

        await wait_until(pilot, lambda: "first line from the command" in logged())
        assert screen.busy == "chatty"  # live: the command has not ended yet
        (project / "gate-open").write_text("")
        await wait_until(pilot, lambda: "token: npm_" in logged())
        await idle(pilot, screen)
        assert "T0k3nT0k3n" not in logged()  # redacted on its way to the screen
        assert logged().count("first line from the command") == 1  # not repeated from the tail


async def test_a_live_run_warns_at_the_start_when_the_keyring_will_be_refused(
    tmp_path, sandbox_env, project
):
    from tests.conftest import ROOT

    playbook = ROOT / "tests" / "playbooks" / "npm-rotation.yaml"
    env = {**sandbox_env, "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    app = make_app(playbook, project, env, mode="live")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_until(pilot, lambda: list(app._notifications))
        [note] = list(app._notifications)
        assert note.title == "Before you start" and "--allow-insecure-keyring" in note.message


async def test_brackets_in_titles_and_errors_are_text_not_markup(tmp_path, sandbox_env, project):
    """A `[/b]` in a step title or an error message once crashed the app (a MarkupError)."""
    from runbook.tui.messages import StepThreadDone

    title = "Remove [/b] node_modules [red]now[/red]"
    playbook = write(
        tmp_path, KINDS_PLAYBOOK.replace("title: Remove node_modules}", f"title: '{title}'}}")
    )
    app = make_app(playbook, project, sandbox_env, mode="live")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("s")
        await on_screen(pilot, TextPromptScreen, ".dialog-title")
        assert title in text_of(app.screen.query_one(".dialog-title"))
        await pilot.press("escape")
        await pilot.press("enter")
        await on_screen(pilot, ConfirmScreen, "#confirm-title")
        assert title in text_of(app.screen.query_one("#confirm-title"))
        await pilot.press("n")
        await idle(pilot, screen)
        screen.post_message(StepThreadDone("find", error="KeyError: '[/b]'"))
        await wait_until(pilot, lambda: list(app._notifications))
        await pilot.pause(0.2)  # the toast is drawn
        assert app.is_running and app.return_value is None
        [note] = list(app._notifications)
        assert note.message == "KeyError: '[/b]'" and not note.markup


async def test_ctrl_c_twice_over_a_confirmation_asks_once_and_keeps_the_journal(keys_app, project):
    app, journal = keys_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        screen.steps.select_id("wipe")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("ctrl+c", "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionScreen))
        assert sum(isinstance(s, QuestionScreen) for s in app.screen_stack) == 1
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_value is not None)
        thread = screen.thread
    thread.join(timeout=10)  # the step thread waiting on the confirmation is released
    assert not thread.is_alive()
    assert app.return_value.outcome == "interrupted"
    assert (project / "node_modules").is_dir()
    assert events(journal, "step_confirmed") == []  # nobody answered
    assert events(journal, "run_finished")[-1]["outcome"] == "interrupted"
    assert verify(journal).ok


async def test_thousands_of_findings_list_the_worst_first_and_say_so(
    tmp_path, sandbox_env, project
):
    from runbook.tui.widgets.steppane import MAX_FINDING_ROWS

    severities = ", ".join(["info"] * (MAX_FINDING_ROWS + 200) + ["compromised"])
    playbook = write(
        tmp_path,
        KINDS_PLAYBOOK.replace("severities: [compromised, at-risk]", f"severities: [{severities}]"),
    )
    app = make_app(playbook, project, sandbox_env, mode="live")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")
        await idle(pilot, screen)
        table = screen.pane.query_one("#findings-table")
        assert table.row_count == MAX_FINDING_ROWS
        assert "compromised" in str(table.get_row_at(0)[0])  # the worst is not cut off
        summary = text_of(screen.pane.query_one("#findings-summary"))
        assert f"1 compromised, {MAX_FINDING_ROWS + 200} info" in summary
        assert f"the first {MAX_FINDING_ROWS} are listed" in summary


async def test_help_fits_80x24_and_scrolls(keys_app):
    app, _ = keys_app
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await on_screen(pilot, HelpScreen, ".dialog-keys")
        keys = app.screen.query_one(".dialog-keys")
        assert "esc: close" in text_of(keys)
        assert keys.region.height and keys.region.bottom <= 24  # on screen, not cut off
        body = app.screen.query_one("#help-body")
        await pilot.press("down", "down")
        assert body.scroll_y > 0


async def test_quitting_during_a_command_ends_the_command_and_journals_it(
    tmp_path, sandbox_env, project
):
    """A command must not outlive the run (a rerun would race it): quitting ends it, and the
    journal says how the step ended before the run is closed."""
    import os

    playbook = write(
        tmp_path,
        f"id: chatty\ntitle: Output\nversion: '1'\n{INCIDENT}steps:\n"
        "  - {id: chatty, uses: test_command, title: A chatty command, confirm: never}\n",
    )
    app = make_app(playbook, project, sandbox_env, mode="live")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: (project / "command.pid").exists())
        pid = int((project / "command.pid").read_text())
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_value is not None)
    assert app.return_value.outcome == "interrupted"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the command is gone (reaped), not left running
    journal = app.return_value.journal
    [run] = [d for d in events(journal, "effect") if d["op"] == "run"]
    assert run["outcome"] == "error" and run["returncode"] < 0
    assert [d["outcome"] for d in events(journal, "step_finished")] == ["failed"]
    assert events(journal, "run_finished")[-1]["outcome"] == "interrupted"
    assert verify(journal).ok
