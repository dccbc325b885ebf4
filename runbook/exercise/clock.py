"""The exercise clock, derived from the journal's `clock` entries alone.

Every process that reads the journal (the players' app, the facilitator console, the report)
derives the same clock from it. Exercise time runs at `speed` times the wall clock while the
clock runs and stands still while it is paused, so a timed inject due at `+10m` is due ten
exercise minutes after the start however long the pauses were: pausing shifts every pending
timed inject by the paused time, and resuming never fires a backlog at once.

Actions: `start` (with `speed`, and `scripted` for `--auto`, where only `advance` moves the
clock), `pause`, `resume`, `speed`, `advance` (scripted time passing) and `fire_now` (a request
to fire an inject now; it does not move the clock). Each entry carries the exercise time at
which it was written, which is the anchor the clock continues from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACTIONS = ("start", "pause", "resume", "speed", "advance", "fire_now")


def wall_time(ts: str) -> float:
    """A journal timestamp (`2026-03-31T09:00:00.000Z`) as seconds since the epoch."""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


@dataclass
class Clock:
    """Where the exercise clock stands after some `clock` entries."""

    started: bool = False
    running: bool = False
    scripted: bool = False
    speed: float = 1.0
    base: float = 0.0  # exercise seconds at `anchor`
    anchor: float = 0.0  # wall seconds of the last change
    paused_wall: float = 0.0  # wall seconds spent paused, in total
    started_wall: float | None = None

    @property
    def paused(self) -> bool:
        return self.started and not self.running

    def now(self, wall: float) -> float:
        """Exercise seconds at wall time `wall`."""
        if not self.started:
            return 0.0
        if not self.running or self.scripted:
            return self.base
        return self.base + max(0.0, wall - self.anchor) * self.speed

    def apply(self, data: dict[str, Any], wall: float) -> None:
        """Move on by one `clock` entry written at `wall`."""
        action = data.get("action")
        if action not in ACTIONS:
            return
        at = _number(data.get("exercise_time"), self.now(wall))
        if action == "start":
            if self.started:
                return
            self.started = self.running = True
            self.scripted = bool(data.get("scripted"))
            self.speed = max(_number(data.get("speed"), 1.0), 0.0)
            self.base, self.anchor, self.started_wall = at, wall, wall
            return
        if not self.started or action == "fire_now":
            return
        if action == "pause" and self.running:
            self.base, self.anchor, self.running = at, wall, False
        elif action == "resume" and not self.running:
            self.paused_wall += max(0.0, wall - self.anchor)
            self.base, self.anchor, self.running = at, wall, True
        elif action == "speed":
            self.base, self.anchor = at, wall
            self.speed = max(_number(data.get("speed"), self.speed), 0.0)
        elif action == "advance":
            self.base, self.anchor = max(at, self.base), wall


def clock_of(entries: list[dict[str, Any]]) -> Clock:
    """The clock after every `clock` entry of a journal."""
    clock = Clock()
    for entry in entries:
        if entry.get("event") == "clock":
            clock.apply(entry.get("data") or {}, wall_time(entry.get("ts", "")))
    return clock
