"""The fleet view: one row per host (state, findings, steps done, outstanding items, duration,
journal head), filterable and sortable, with the selected host's detail and timeline below.

It refreshes itself while a fleet run is in progress (each second it looks at what changed on
disk). Keys: `/` filter (words, or `state:failed`), `escape` clear the filter, `s` next sort
column (or click a column's header), `r` reload, `q` quit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Input, Static

from runbook.fleet.status import (
    SORT_KEYS,
    Fleet,
    Watcher,
    cells,
    exit_code,
    matches,
    sort_key,
    timeline,
)
from runbook.termsafe import printable
from runbook.tui.closing import widgets_gone
from runbook.tui.widgets.table import FittedTable

HEADERS = ["Host", "State", "Findings", "Steps", "Open", "Took", "Journal head", "Reason"]
SORT_OF_COLUMN = ["host", "state", "findings", "steps", "outstanding", "duration", None, None]
STATE_STYLE = {
    "unreachable": "bold magenta",
    "failed": "bold red",
    "compromised": "bold red",
    "exposed": "bold yellow",
    "unchecked": "yellow",
    "remediated": "cyan",
    "clean": "green",
    "running": "bold blue",
    "pending": "dim",
}
REFRESH_SECONDS = 1.0


class FleetApp(App[int]):
    """`runbook fleet status DIR` from a terminal; returns the command's exit code."""

    CSS_PATH = "fleet.tcss"
    TITLE = "runbook fleet"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_view", "Quit"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(
        self,
        path: Path,
        *,
        state: str | None = None,
        sort: str = "state",
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        super().__init__()
        self.path = path
        self.watcher = Watcher(path)
        self.filter_text = f"state:{state}" if state else ""
        self.sort = sort if sort in SORT_KEYS else "state"
        self.refresh_seconds = refresh
        self.shown: list[dict[str, Any]] = []
        self.selected: str | None = None

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title")
        yield Input(
            value=self.filter_text,
            placeholder="filter: words in host, state, findings or reason; state:failed",
            id="filter",
        )
        yield FittedTable(
            [24, 12, 26, 7, 5, 6, 12, 200], 7, drop=(6, 5), id="hosts", cursor_type="row"
        )
        with VerticalScroll(id="detail-scroll"):
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        if self.filter_text:
            self.query_one("#filter", Input).add_class("shown")
        self.draw()
        self.query_one("#hosts", FittedTable).focus()
        self.set_interval(self.refresh_seconds, self.poll)

    # -- data -------------------------------------------------------------------------------------
    @property
    def fleet(self) -> Fleet:
        return self.watcher.fleet

    def visible(self) -> list[dict[str, Any]]:
        rows = [r for r in self.fleet.rows if matches(r, self.filter_text)]
        return sorted(rows, key=sort_key(self.sort))

    def _cells(self, row: dict[str, Any]) -> list[str | Text]:
        out: list[str | Text] = list(cells(row))
        out[1] = Text(row["state"], style=STATE_STYLE.get(row["state"], ""))
        return out

    def draw(self) -> None:
        self.shown = self.visible()
        table = self.query_one("#hosts", FittedTable)
        table.fill(HEADERS, [self._cells(r) for r in self.shown])
        hosts = [r["host"] for r in self.shown]
        if self.selected in hosts:
            table.move_cursor(row=hosts.index(self.selected), animate=False)
        self._title()
        self._detail()

    def _title(self) -> None:
        manifest = self.fleet.manifest
        playbook = (manifest.get("playbook") or {}).get("id", "")
        status = "running" if self.fleet.running else str(manifest.get("status", ""))
        counts = "  ".join(f"{n} {s}" for s, n in self.fleet.counts().items())
        line1 = Text.assemble(
            ("runbook fleet ", "bold"),
            (f"{manifest.get('kind', '')} {printable(playbook)} ", ""),
            (f"[{manifest.get('mode', '')}] ", "bold"),
            (status, "bold blue" if self.fleet.running else "dim"),
        )
        shown = f"{len(self.shown)} of {len(self.fleet.rows)} hosts"
        extra = f"  filter: {self.filter_text}" if self.filter_text else ""
        line2 = Text.assemble((shown, ""), ("  sorted by ", "dim"), (self.sort, ""), (extra, ""))
        line2.append(f"   {counts}", style="dim")
        self.query_one("#fleet-title", Static).update(Text.assemble(line1, "\n", line2))

    def _detail(self) -> None:
        row = next((r for r in self.shown if r["host"] == self.selected), None)
        if row is None and self.shown:
            row = self.shown[0]
            self.selected = row["host"]
        widget = self.query_one("#detail", Static)
        if row is None:
            widget.update(Text("No host matches the filter.", style="dim"))
            return
        text = Text.assemble(
            (printable(row["host"]), "bold"),
            "  ",
            (row["state"], STATE_STYLE.get(row["state"], "")),
        )
        if row.get("reason"):
            text.append(f"\n{printable(row['reason'])}")
        text.append(f"\nfindings: {row.get('findings_text') or 'none'}", style="")
        total = row.get("steps_total") or 0
        if total:
            text.append(f"   steps: {row.get('steps_done', 0)}/{total}")
        for head in row.get("heads") or []:
            text.append(f"\njournal head {head}", style="dim")
        for path in row.get("broken") or []:
            text.append(f"\nBROKEN chain: {printable(path)}", style="bold red")
        outstanding = row.get("outstanding") or []
        if outstanding:
            text.append(f"\n\nOutstanding ({len(outstanding)}):", style="bold")
            for item in outstanding:
                text.append(f"\n  - {printable(item)}")
        lines = timeline(self.path, row["host"])
        if lines:
            text.append("\n\nTimeline:", style="bold")
            for ts, what in lines:
                text.append(f"\n{ts[11:19] or '        '}  ", style="dim")
                text.append(what)
        widget.update(text)

    # -- events and actions ------------------------------------------------------------------
    def poll(self) -> None:
        if widgets_gone(self, "#hosts"):
            return
        if self.watcher.poll():
            self.draw()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if widgets_gone(self, "#detail"):
            return
        if 0 <= event.cursor_row < len(self.shown):
            host = self.shown[event.cursor_row]["host"]
            if host != self.selected:
                self.selected = host
                self._detail()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        name = str(event.label)
        index = HEADERS.index(name) if name in HEADERS else -1
        if index >= 0 and SORT_OF_COLUMN[index]:
            self.sort = SORT_OF_COLUMN[index]
            self.draw()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.draw()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#hosts", FittedTable).focus()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("shown")
        self.filter_text = ""
        self.draw()
        self.query_one("#hosts", FittedTable).focus()

    def action_next_sort(self) -> None:
        self.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        self.draw()

    def action_reload(self) -> None:
        self.watcher = Watcher(self.path)
        self.draw()

    def action_quit_view(self) -> None:
        self.exit(exit_code(self.fleet))


def run_fleet_view(path: Path, *, state: str | None = None, sort: str = "state") -> int:
    """Open the view; its exit code is the fleet's (as `runbook fleet status` headless)."""
    result = FleetApp(path, state=state, sort=sort).run()
    return result if isinstance(result, int) else exit_code(Watcher(path).fleet)
