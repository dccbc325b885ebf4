"""A DataTable whose columns always fit its width, so nothing hides behind a horizontal scrollbar.

One flexible column takes the width the others leave; when the table is narrow, optional columns
are dropped first (in the given order), then the widest other columns shrink. Long cells end in an
ellipsis; the flexible column can keep its tail instead (a path's file name matters most).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import DataTable

CELL_PADDING = 2  # DataTable pads each cell by one on either side
SCROLLBAR = 2
MIN_FLEX = 16


class FittedTable(DataTable[Text]):
    """`fill(headers, rows)` replaces the content; `append(row)` adds one row."""

    def __init__(
        self,
        caps: list[int],
        flex: int,
        *,
        drop: tuple[int, ...] = (),
        keep_tail: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.caps = caps
        self.flex = flex
        self.drop = drop
        self.keep_tail = keep_tail
        self._headers: list[str] = []
        self._rows: list[list[Text]] = []
        self._shown: list[int] = []
        self._widths: list[int] = []
        self._width = 0

    def fill(self, headers: list[str], rows: list[list[str | Text]]) -> None:
        self._headers = headers
        self._rows = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
        self._draw()

    def append(self, row: list[str | Text]) -> None:
        """Add one row (the audit view's live entries) without redrawing the others."""
        cells = [c if isinstance(c, Text) else Text(str(c)) for c in row]
        self._rows.append(cells)
        layout = list(zip(self._shown, self._widths, strict=True))
        if all(cells[i].cell_len <= w or i == self.flex for i, w in layout):
            self.add_row(*[self._cell(cells[i], w, i) for i, w in layout])
        else:
            self._draw()

    # -- layout ----------------------------------------------------------------------------------
    def _available(self) -> int:
        # inside a tab that is not shown the table has no size yet: use the nearest ancestor's
        for node in (self, *self.ancestors):
            size = getattr(node, "size", None)
            if size is not None and size.width:
                width = size.width
                break
        else:
            width = self.app.size.width
        height = self.size.height or 10
        return width - (SCROLLBAR if len(self._rows) + 1 > height else 0)

    def _layout(self) -> tuple[list[int], list[int]]:
        """(the columns shown, their widths)."""
        natural = [len(h) for h in self._headers]
        for row in self._rows:
            for i, cell in enumerate(row):
                natural[i] = max(natural[i], cell.cell_len)
        wanted = {i: min(n, cap) for i, (n, cap) in enumerate(zip(natural, self.caps, strict=True))}
        available = self._available()
        shown = list(range(len(self._headers)))
        for index in self.drop:
            others = sum(wanted[i] for i in shown if i != self.flex)
            if others + CELL_PADDING * len(shown) + MIN_FLEX <= available:
                break
            shown.remove(index)
        room = available - CELL_PADDING * len(shown)
        widths = {i: wanted[i] for i in shown if i != self.flex}
        floor = {i: max(len(self._headers[i]), 4) for i in widths}
        while sum(widths.values()) + MIN_FLEX > room:
            shrinkable = [i for i in widths if widths[i] > floor[i]]
            if not shrinkable:
                break
            widths[max(shrinkable, key=lambda i: widths[i])] -= 1
        widths[self.flex] = max(MIN_FLEX, room - sum(widths.values()))
        return shown, [widths[i] for i in shown]

    def _cell(self, cell: Text, width: int, index: int) -> Text:
        if index == self.flex and self.keep_tail and cell.cell_len > width:
            cell = Text("…") + cell[cell.cell_len - width + 1 :]
        cell = cell.copy()
        cell.no_wrap = True
        cell.overflow = "ellipsis"
        return cell

    def _draw(self) -> None:
        cursor = self.cursor_row
        self.clear(columns=True)
        if not self._headers:
            return
        self._width = self.size.width
        self._shown, self._widths = self._layout()
        for index, width in zip(self._shown, self._widths, strict=True):
            self.add_column(self._headers[index], width=width)
        for row in self._rows:
            cells = [
                self._cell(row[i], w, i) for i, w in zip(self._shown, self._widths, strict=True)
            ]
            self.add_row(*cells)
        if self._rows:
            self.move_cursor(row=min(cursor, len(self._rows) - 1), animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._draw()
