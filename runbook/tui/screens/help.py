"""The help screen: every key, the status icons and the modes."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from runbook.tui.render import ICONS, STATUS_WORDS

KEYS = [
    ("enter", "plan, then run, the selected step (on a finished step: go to the next one)"),
    ("y / n", "answer a confirmation: apply, or do not apply"),
    ("s", "skip the selected step, giving a reason (journaled)"),
    ("r", "retry a failed step (or answer an open checklist again)"),
    ("n", "add a note to the journal (outside a confirmation)"),
    ("up / down, j / k", "move in the step list"),
    ("d f p l", "show the description, findings, plan or log of the step"),
    ("pgup / pgdn", "scroll the shown tab"),
    ("a", "audit view: journal entries as they are written, chain status"),
    ("?", "this help"),
    ("q", "quit: the state is safe in the journal (asks first if a step runs)"),
]


class HelpScreen(ModalScreen[None]):
    """Keys, icons and modes; any of esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for key, what in KEYS:
            keys.add_row(key, what)
        icons = Text()
        for status, (icon, style) in ICONS.items():
            icons.append(f"{icon} ", style=style)
            icons.append(f"{STATUS_WORDS[status]}   ")
        with Vertical(classes="dialog help"):
            yield Static("runbook: keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(keys)
                yield Static(Text("\nStep status", style="bold"))
                yield Static(icons)
                yield Static(
                    Text.assemble(
                        ("\nModes  ", "bold"),
                        ("LIVE", "bold white on red"),
                        " changes are real   ",
                        ("DRY RUN", "bold black on yellow"),
                        " nothing is changed, every step says what it would do   ",
                        ("TABLETOP", "bold white on magenta"),
                        " a rehearsal (a dry run)",
                    )
                )
                yield Static(
                    Text(
                        "\nEverything you answer, skip or note is written to a hash-chained "
                        "journal. Quit at any time: opening the same run again resumes at the "
                        "first unfinished step.",
                        style="dim",
                    )
                )
            yield Static("↑↓: scroll   esc: close", classes="dialog-keys")
