"""Guards for callbacks (timers, widget messages) that can still arrive while an app closes."""

from __future__ import annotations

from textual.app import App, ScreenStackError


def widgets_gone(app: App[object], selector: str) -> bool:
    """Whether `selector` no longer matches on the active screen, or there is no screen left:
    the app is closing and the callback should do nothing."""
    try:
        return not app.screen.query(selector)
    except ScreenStackError:
        return True
