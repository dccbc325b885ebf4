"""The audit view: every journal entry as it is written, and whether the hash chain holds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from runbook.journal import verify
from runbook.tui.render import Paths, entry_text
from runbook.tui.widgets.table import FittedTable

if TYPE_CHECKING:
    from runbook.tui.session import Session

HEADERS = ["#", "Time (UTC)", "Step", "Entry", "Hash"]


class AuditScreen(Screen[None]):
    """Journal entries, live, with the chain verified from the file on disk."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "app.pop_screen", "Back", show=False),
        Binding("q", "app.pop_screen", "Back", show=False),
        Binding("v", "verify", "Verify again"),
    ]

    def __init__(self, session: Session, paths: Paths) -> None:
        super().__init__()
        self.session = session
        self.paths = paths
        self._last_seq = 0
        self._entries: list[dict[str, Any]] = []
        self._verify_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text.assemble(
                ("Audit log ", "bold"),
                (self.paths.place(self.session.journal.path), ""),
            ),
            id="audit-title",
        )
        yield Static(id="chain")
        yield FittedTable([5, 12, 24, 200, 10], 3, drop=(4, 1), id="audit-table", cursor_type="row")
        yield Static(id="audit-entry")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(FittedTable)
        entries = list(self.session.journal.entries)
        self._entries = entries
        self._last_seq = entries[-1]["seq"] if entries else 0
        table.fill(HEADERS, [self._row(e) for e in entries])
        if entries:
            table.move_cursor(row=len(entries) - 1, animate=False)
        self.action_verify()
        table.focus()

    def _row(self, entry: dict[str, Any]) -> list[str | Text]:
        return [
            str(entry["seq"]),
            str(entry["ts"])[11:23],
            (entry.get("data") or {}).get("step", ""),
            Text.assemble((entry["event"], "bold"), "  ", entry_text(entry, self.paths)),
            Text(entry["hash"][:10], style="dim"),
        ]

    def add_entry(self, entry: dict[str, Any]) -> None:
        """A new journal entry (called by the run screen as the journal grows)."""
        if entry["seq"] <= self._last_seq:
            return
        self._last_seq = entry["seq"]
        self._entries.append(entry)
        table = self.query_one(FittedTable)
        follow = table.cursor_row >= table.row_count - 1
        table.append(self._row(entry))
        if follow:
            table.move_cursor(row=table.row_count - 1, animate=False)
        if self._verify_timer is not None:
            self._verify_timer.stop()
        self._verify_timer = self.set_timer(0.2, self.action_verify)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._entries):
            entry = self._entries[event.cursor_row]
            text = Text.assemble(
                (f"#{entry['seq']} {entry['event']}", "bold"),
                f"  {entry['ts']}\n",
                ("hash ", "dim"),
                entry["hash"],
                ("  prev ", "dim"),
                entry["prev"][:16] + "…\n",
                (json.dumps(entry.get("data") or {}, sort_keys=True, ensure_ascii=False), ""),
            )
            self.query_one("#audit-entry", Static).update(text)

    def action_verify(self) -> None:
        """Verify the journal file's chain (every hash, link and sequence number)."""
        result = verify(self.session.journal.path)
        if result.ok:
            text = Text.assemble(
                ("✔ chain intact", "bold green"),
                f": {result.entries} entries, every hash and link checked; head ",
                (result.head[:16] + "…", "bold"),
            )
        else:
            text = Text.assemble(
                ("✘ chain BROKEN", "bold red"), f" at line {result.bad_line}: {result.reason}"
            )
        self.query_one("#chain", Static).update(text)
