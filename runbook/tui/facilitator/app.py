"""The facilitator console (`runbook exercise facilitate RUN`): a second app, in another
terminal, on the same exercise journal.

It shows what the players do not see (the variant drawn, where the loader ran, the world's
credentials in redacted form), the inject timeline, the expectations, and the team's decisions,
discussion answers and notes as they come. Keys fire or skip an inject, pause and resume the
clock, change its speed, validate or reject a manual expectation, add an observation and rate a
phase. Everything it does is a journal entry, written through the journal's lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, RichLog, Static

from runbook.exercise.facilitation import Facilitation, FacilitationError
from runbook.exercise.model import format_duration
from runbook.termsafe import printable
from runbook.tui.closing import widgets_gone

REFRESH = 0.25  # seconds between looks at the journal
STATE_STYLE = {
    "pending": "dim",
    "requested": "bold yellow",
    "fired": "green",
    "skipped": "dim strike",
    "met": "bold green",
    "failed": "bold red",
    "rejected": "bold red",
}
TITLE_WIDTH = 34
LOGGED = ("participant", "decision", "discussion", "observation", "note", "survey", "rating")


def _short(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


class FacilitatorApp(App[None]):
    """The facilitator's view of one exercise, and the levers."""

    CSS_PATH = "facilitator.tcss"
    TITLE = "runbook facilitator"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "fire", "Fire inject"),
        Binding("x", "skip", "Skip inject"),
        Binding("space", "pause", "Pause/resume"),
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower"),
        Binding("v", "verdict('met')", "Validate"),
        Binding("r", "verdict('rejected')", "Reject"),
        Binding("o", "observe", "Observation"),
        Binding("R", "rate", "Rate phase"),
        Binding("tab", "switch", "Switch table", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, journal: Path, operator: str, *, blink: bool = True) -> None:
        super().__init__()
        self.journal_path = Path(journal)
        self.operator = operator
        self.blink = blink
        self.f: Facilitation | None = None
        self.error: str = ""
        self._drawn = -1

    def compose(self) -> ComposeResult:
        yield Static(id="f-head")
        yield Static(id="f-banner")
        with Horizontal(id="f-body"):
            with Vertical(id="f-left"):
                yield Static("Injects", classes="f-title")
                yield DataTable(id="injects", cursor_type="row", zebra_stripes=True)
                yield Static("Ground truth (hidden from the players)", classes="f-title")
                yield Static(id="truth")
            with Vertical(id="f-right"):
                yield Static("Expectations", classes="f-title")
                yield DataTable(id="expectations", cursor_type="row", zebra_stripes=True)
                yield Static("What the team records", classes="f-title")
                yield RichLog(id="activity", wrap=True, markup=False, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.f = Facilitation(self.journal_path, self.operator)
        except FacilitationError as exc:
            self.error = str(exc)
            self.exit()
            return
        injects = self.query_one("#injects", DataTable)
        injects.add_columns("Due", "State", "Fired", "Inject", "By")
        expectations = self.query_one("#expectations", DataTable)
        expectations.add_columns("Status", "Pts", "Deadline", "Phase", "Expectation", "By")
        self._truth()
        for entry in self.f.journal.entries:
            self._log(entry)
        self._redraw()
        injects.focus()
        self.set_interval(REFRESH, self._poll)

    def on_unmount(self) -> None:
        if self.f is not None:
            self.f.close()

    # -- drawing -------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.f is None or widgets_gone(self, "#f-head"):
            return
        try:
            new = self.f.refresh()
        except Exception as exc:  # a journal another process broke: say so, keep showing
            self._banner(f"cannot read the journal any more: {exc}", "bold white on red")
            return
        for entry in new:
            self._log(entry)
        self._redraw(force=bool(new))

    def _head_text(self) -> Text:
        assert self.f is not None
        f, started = self.f, self.f.record.started
        clock = f.facts.clock
        now = f.now()
        state = "FINISHED" if f.finished else "PAUSED" if clock.paused else "RUNNING"
        if not clock.started:
            state = "NOT STARTED"
        got, total = f.view.score()
        return Text.assemble(
            (" FACILITATOR ", "bold white on dark_magenta"),
            " ",
            (printable(f.scenario.title), "bold"),
            "\n",
            ("variant ", "dim"),
            (printable(started.get("variant", "")), "bold"),
            (f" (seed {started.get('seed')})  ", "dim"),
            (f"clock {format_duration(now)}", "bold"),
            (f" ×{clock.speed:g}" if not clock.scripted else " scripted", ""),
            "  ",
            (state, "bold red" if state in ("FINISHED", "PAUSED") else "bold green"),
            (f"   score {got}/{total}", ""),
        )

    def _banner(self, text: str, style: str) -> None:
        banner = self.query_one("#f-banner", Static)
        banner.update(Text(text, style=style))
        banner.display = bool(text)

    def _redraw(self, *, force: bool = False) -> None:
        assert self.f is not None
        self.query_one("#f-head", Static).update(self._head_text())
        if self.f.finished:
            finished = self.f.view.run_finished or self.f.view.exercise_finished or {}
            outcome = finished.get("outcome") or "ended"
            self._banner(
                f"This exercise has finished ({outcome}). You can still validate or reject "
                "manual expectations, rate phases and add observations for the report.",
                "bold white on dark_red",
            )
        else:
            self._banner("", "")
        if not force and self._drawn == self.f.facts.fed:
            return
        self._drawn = self.f.facts.fed
        self._fill_injects()
        self._fill_expectations()

    def _fill_injects(self) -> None:
        assert self.f is not None
        table = self.query_one("#injects", DataTable)
        row = table.cursor_row
        table.clear()
        for item in self.f.view.injects:
            due = format_duration(item.inject.at) if item.inject.at is not None else "when…"
            fired = format_duration(item.fired_at) if item.fired_at is not None else ""
            table.add_row(
                due,
                Text(item.state, style=STATE_STYLE.get(item.state, "")),
                fired,
                Text(_short(item.inject.title, TITLE_WIDTH)),
                printable(item.by or item.requested_by),
                key=item.id,
            )
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))

    def _fill_expectations(self) -> None:
        assert self.f is not None
        table = self.query_one("#expectations", DataTable)
        row = table.cursor_row
        table.clear()
        for item in self.f.view.expectations:
            spec = item.expectation
            title = ("(manual) " if spec.validation == "manual" else "") + spec.title
            deadline = format_duration(spec.deadline) if spec.deadline is not None else "-"
            table.add_row(
                Text(item.status, style=STATE_STYLE.get(item.status, "")),
                str(spec.score),
                deadline,
                spec.phase,
                Text(_short(title, TITLE_WIDTH), style="bold" if spec.must else ""),
                printable(item.by),
                key=item.id,
            )
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))

    def _truth(self) -> None:
        assert self.f is not None
        truth = self.f.truth
        started = self.f.record.started
        text = Text()
        text.append("variant: ", style="dim")
        text.append(printable(started.get("variant_title") or started.get("variant", "")) + "\n")
        if truth is None:
            text.append("(the ground truth file beside the journal is missing)\n", style="dim")
        else:
            if truth.get("variant_description"):
                text.append(printable(truth["variant_description"]) + "\n")
            if truth.get("players_password"):
                text.append(
                    "password of the world's accounts (give it when a step asks): ", style="dim"
                )
                text.append(printable(truth["players_password"]) + "\n", style="bold")
            world = truth.get("world") or {}
            for key, value in world.items():
                shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                text.append(f"{printable(key)}: ", style="dim")
                text.append(printable(shown) + "\n")
        missing = started.get("missing_tools") or []
        if missing:
            text.append(
                f"missing on this machine: {', '.join(map(str, missing))}\n", style="yellow"
            )
        self.query_one("#truth", Static).update(text)

    def _log(self, entry: dict[str, Any]) -> None:
        event, data = entry["event"], entry.get("data") or {}
        if event not in LOGGED and event != "step_finished":
            return
        who = printable(data.get("by") or data.get("name") or "")
        if event == "participant":
            line = f"{who} joined as {data.get('role_name') or data.get('role')}"
        elif event == "decision":
            why = data.get("rationale", "")
            line = f"DECISION {data.get('title')}: {data.get('decision')} ({who}: {why})"
        elif event == "discussion":
            line = f"[{data.get('phase')}] {data.get('question')} {who}: {data.get('answer')}"
        elif event == "survey":
            line = f"survey {data.get('id')} {who}: {data.get('answer')}"
        elif event == "rating":
            line = f"rating {data.get('phase')}: {data.get('rating')} ({who}: {data.get('reason')})"
        elif event == "step_finished":
            line = f"step {data.get('step')}: {data.get('outcome')}"
        else:
            line = f"{event} {who}: {data.get('text', '')}"
        self.query_one("#activity", RichLog).write(Text(printable(line)))

    # -- levers --------------------------------------------------------------------------------
    def _act(self, action: Any, *args: Any, done: str = "") -> None:
        if self.f is None:
            return
        try:
            action(*args)
        except FacilitationError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        if done:
            self.notify(done, markup=False)
        self._redraw(force=True)

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value)

    def action_fire(self) -> None:
        inject = self._selected("injects")
        if inject and self.f is not None:
            self._act(self.f.fire, inject, done=f"'{inject}' fires at the players' next tick.")

    def action_skip(self) -> None:
        from runbook.tui.screens.prompt import TextPromptScreen

        inject = self._selected("injects")
        if not inject or self.f is None:
            return

        def skip(reason: str | None) -> None:
            if reason and self.f is not None:
                self._act(self.f.skip, inject, reason, done=f"'{inject}' skipped.")

        self.push_screen(
            TextPromptScreen(f"Skip the inject '{inject}'", "Why? (journaled)", "reason"), skip
        )

    def action_pause(self) -> None:
        if self.f is not None:
            self._act(self.f.toggle)

    def action_speed(self, step: int) -> None:
        if self.f is not None:
            self._act(self.f.faster, step)

    def action_verdict(self, status: str) -> None:
        from runbook.tui.screens.prompt import TextPromptScreen

        expectation = self._selected("expectations")
        if not expectation or self.f is None:
            self.notify("Select an expectation first (tab switches tables).")
            return
        try:
            item = self.f.view.expectation(expectation)
        except StopIteration:
            return
        if item.expectation.validation != "manual":
            self.notify(
                f"'{expectation}' is judged automatically from the journal; add an observation "
                "(o) to disagree with it.",
                severity="warning",
                markup=False,
            )
            return
        word = "Validate" if status == "met" else "Reject"

        def judged(comment: str | None) -> None:
            if comment and self.f is not None:
                self._act(self.f.verdict, expectation, status, comment, done=f"{word}d.")

        self.push_screen(
            TextPromptScreen(
                f"{word}: {item.expectation.title}", "Your comment (journaled):", "comment"
            ),
            judged,
        )

    def action_observe(self) -> None:
        from runbook.tui.screens.prompt import TextPromptScreen

        def add(text: str | None) -> None:
            if text and self.f is not None:
                self._act(self.f.observe, text, done="Observation added.")

        self.push_screen(
            TextPromptScreen(
                "Add an observation",
                "What did you see? (start with TODO: to put it in the improvement plan)",
                "observation",
            ),
            add,
        )

    def action_rate(self) -> None:
        from runbook.tui.screens.prompt import TextPromptScreen

        def rate(text: str | None) -> None:
            if not text or self.f is None:
                return
            parts = text.split(None, 2)
            if len(parts) < 3:
                self.notify("Write: PHASE RATING REASON, e.g. contain S the pins took two tries")
                return
            self._act(self.f.rate, parts[0].lower(), parts[1].upper(), parts[2], done="Rated.")

        self.push_screen(
            TextPromptScreen(
                "Rate a phase (overrides the suggested rating in the report)",
                "PHASE RATING REASON: phase detect, contain, eradicate, rotate or communicate; "
                "rating P, S, M or U; then why.",
                "contain S the pins took two tries",
            ),
            rate,
        )

    def action_switch(self) -> None:
        injects = self.query_one("#injects", DataTable)
        expectations = self.query_one("#expectations", DataTable)
        (expectations if injects.has_focus else injects).focus()
