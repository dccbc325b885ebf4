"""The two-line header: playbook title, target, progress, and the mode banner."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from runbook.tui.render import MODE_BANNER

BADGE = {
    "live": " LIVE ",
    "dry-run": " DRY RUN ",
    "tabletop": " TABLETOP ",
    "exercise": " EXERCISE ",
}
BADGE_STYLE = {
    "live": "bold white on red",
    "dry-run": "bold black on yellow",
    "tabletop": "bold white on magenta",
    "exercise": "bold white on dark_cyan",
}


class RunHeader(Static):
    """Shows which playbook runs where, in which mode; `LIVE` is red."""

    def __init__(self, title: str, target: str, mode: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title_text = title
        self.target = target
        self.mode = mode
        self.progress = ""
        self.clock = ""  # an exercise's clock, shown instead of the mode's explanation
        self.add_class(f"mode-{mode}")

    def set_progress(self, text: str) -> None:
        self.progress = text
        self.refresh_content()

    def set_clock(self, text: str) -> None:
        if text != self.clock:
            self.clock = text
            self.refresh_content()

    def on_mount(self) -> None:
        self.refresh_content()

    def refresh_content(self) -> None:
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(
            Text.assemble(("runbook ", "bold"), (self.title_text, "")),
            Text(BADGE.get(self.mode, self.mode), style=BADGE_STYLE.get(self.mode, "reverse")),
        )
        grid.add_row(
            Text.assemble(
                ("target ", "dim"), (self.target, "bold"), ("  ", ""), (self.progress, "")
            ),
            Text(self.clock, style="bold")
            if self.clock
            else Text(MODE_BANNER.get(self.mode, "").split(": ", 1)[-1], style="dim"),
        )
        self.update(grid)
