"""The exercise clock: pause, resume, speed and "fire now" arithmetic, derived from journal
entries alone, and the drill master's timing of injects and deadlines on it.

The wall clock is a variable the test moves; journal timestamps are written from it, so the
arithmetic is exact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.exercise.clock import Clock, clock_of, wall_time
from runbook.exercise.drill import Drill
from runbook.exercise.model import Scenario
from runbook.journal import Journal
from runbook.models import StepSpec
from runbook.redact import Redactor

T0 = datetime(2026, 3, 31, 9, 0, tzinfo=UTC).timestamp()


def ts(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def clock_entry(wall: float, action: str, clock: Clock, **extra: object) -> dict:
    return {
        "event": "clock",
        "ts": ts(wall),
        "data": {"action": action, "exercise_time": clock.now(wall), **extra},
    }


class Wall:
    """A wall clock the test moves; the journal's timestamps follow it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def iso(self) -> str:
        return ts(self.now)


def test_timestamps_read_back_exactly() -> None:
    assert wall_time(ts(T0 + 61.25)) == pytest.approx(T0 + 61.25)
    assert wall_time("not a time") == 0.0


def test_running_paused_resumed_and_sped_up() -> None:
    clock, entries = Clock(), []

    def act(wall: float, action: str, **extra: object) -> None:
        entry = clock_entry(wall, action, clock, **extra)
        entries.append(entry)
        clock.apply(entry["data"], wall)

    assert clock.now(T0) == 0
    act(T0, "start", speed=1.0)
    assert clock.now(T0 + 300) == 300  # five minutes in
    act(T0 + 300, "pause")
    assert clock.paused
    assert clock.now(T0 + 300 + 1800) == 300  # a half-hour pause does not count
    act(T0 + 2100, "resume")
    assert clock.now(T0 + 2100 + 60) == 360
    act(T0 + 2160, "speed", speed=4.0)
    assert clock.now(T0 + 2160 + 60) == 360 + 240  # four exercise minutes per wall minute
    act(T0 + 2220, "pause")
    act(T0 + 2220, "resume")  # a zero-length pause changes nothing
    assert clock.now(T0 + 2220 + 15) == 600 + 60
    assert clock.paused_wall == pytest.approx(1800)
    # every process that reads the same entries derives the same clock
    again = clock_of(entries)
    assert again.now(T0 + 2235) == clock.now(T0 + 2235) == 660


def test_actions_out_of_turn_change_nothing() -> None:
    clock = Clock()
    clock.apply({"action": "pause", "exercise_time": 5}, T0)  # before the start
    assert not clock.started and clock.now(T0 + 99) == 0
    clock.apply({"action": "start", "exercise_time": 0, "speed": 2}, T0)
    clock.apply({"action": "resume", "exercise_time": 99}, T0 + 10)  # not paused
    assert clock.now(T0 + 10) == 20
    clock.apply({"action": "start", "exercise_time": 0, "speed": 9}, T0 + 10)  # started already
    clock.apply({"action": "explode"}, T0 + 10)
    assert clock.speed == 2 and clock.now(T0 + 20) == 40


def test_scripted_clock_moves_only_when_advanced() -> None:
    clock = Clock()
    clock.apply({"action": "start", "exercise_time": 0, "scripted": True}, T0)
    assert clock.now(T0 + 3600) == 0
    clock.apply({"action": "advance", "exercise_time": 240}, T0 + 1)
    assert clock.now(T0 + 9999) == 240


# -- the drill master on the clock ----------------------------------------------------------------
SCENARIO = {
    "id": "timing",
    "title": "Timing",
    "playbook": "unused.yaml",
    "variants": [{"id": "only", "title": "Only"}],
    "injects": [
        {"id": "early", "title": "Early", "at": "5m"},
        {"id": "ten", "title": "At ten", "at": "10m"},
        {"id": "late", "title": "Late", "at": "30m"},
        {
            "id": "after-a",
            "title": "Two minutes after step a",
            "when": {"since": {"step": "a"}, "after": "2m"},
        },
    ],
    "expectations": [
        {
            "id": "a-by-8",
            "title": "a by +8",
            "phase": "detect",
            "deadline": "8m",
            "when": {"step": "a"},
        },
        {
            "id": "b-by-4",
            "title": "b by +4",
            "phase": "contain",
            "deadline": "4m",
            "when": {"step": "b"},
        },
    ],
}
STEPS = [
    StepSpec(id="a", uses="manual", title="A"),
    StepSpec(id="b", uses="manual", title="B"),
]


class ClockedJournal(Journal):
    """A journal whose timestamps come from the test's wall clock."""

    def __init__(self, path: Path, wall: Wall) -> None:
        self.wall = wall
        super().__init__(path, Redactor(), shared=True)

    def _write(self, event: str, data: dict | None) -> dict:
        import runbook.journal as journal_module

        real = journal_module.utc_now
        journal_module.utc_now = self.wall.iso
        try:
            return super()._write(event, data)
        finally:
            journal_module.utc_now = real


@pytest.fixture
def drill(tmp_path: Path):
    wall = Wall()
    journal = ClockedJournal(tmp_path / "run.jsonl", wall)
    master = Drill(Scenario.model_validate(SCENARIO), STEPS, journal, None, wall=wall)
    yield master, wall, journal
    journal.close()


def fired(journal: Journal) -> list[tuple[str, float, str]]:
    return [
        (e["data"]["inject"], e["data"]["exercise_time"], e["data"]["by"])
        for e in journal.entries
        if e["event"] == "inject_fired"
    ]


def finish(journal: Journal, step: str) -> None:
    journal.append("step_started", {"step": step})
    journal.append("step_finished", {"step": step, "outcome": "succeeded"})


def test_a_pause_shifts_every_pending_timed_inject(drill) -> None:
    master, wall, journal = drill
    master.clock("start", "fac", speed=1.0)
    wall.now += 301  # +5:01
    master.tick()
    assert fired(journal) == [("early", 301.0, "clock")]
    wall.now += 60  # +6:01
    master.clock("pause", "fac")
    wall.now += 3600  # an hour of lunch
    master.tick()
    assert [i for i, _, _ in fired(journal)] == ["early"], "nothing fires during the pause"
    master.clock("resume", "fac")
    master.tick()
    assert [i for i, _, _ in fired(journal)] == ["early"], "no backlog fires on resume"
    wall.now += 238  # +9:59
    master.tick()
    assert [i for i, _, _ in fired(journal)] == ["early"]
    wall.now += 2  # +10:01: 'ten' is due ten exercise minutes after the start
    master.tick()
    assert fired(journal)[-1] == ("ten", 601.0, "clock")


def test_fire_now_during_a_pause(drill) -> None:
    master, wall, journal = drill
    master.clock("start", "fac")
    wall.now += 120
    master.clock("pause", "fac")
    wall.now += 600
    master.clock("fire_now", "fac", inject="late")  # the facilitator's request
    master.tick()
    assert fired(journal) == [("late", 120.0, "facilitator")]
    assert master.facts.clock.paused, "firing now does not resume the clock"
    view = master.view()
    assert view.inject("late").state == "fired"
    assert view.inject("early").state == view.inject("ten").state == "pending"
    wall.now += 600
    master.tick()
    assert len(fired(journal)) == 1
    master.clock("resume", "fac")
    wall.now += 181  # +5:01
    master.tick()
    assert [i for i, _, _ in fired(journal)] == ["late", "early"]
    wall.now += 1800  # +35:01: 'late' is not fired a second time
    master.tick()
    assert [i for i, _, _ in fired(journal)] == ["late", "early", "ten"]


def test_speed_brings_timed_injects_forward(drill) -> None:
    master, wall, journal = drill
    master.clock("start", "fac")
    wall.now += 60
    master.clock("speed", "fac", speed=10.0)
    wall.now += 24  # +1:00 + 240 s = +5:00
    master.tick()
    assert fired(journal) == [("early", 300.0, "clock")]


def test_conditions_and_deadlines_follow_exercise_time(drill) -> None:
    master, wall, journal = drill
    master.clock("start", "fac")
    wall.now += 60
    finish(journal, "a")  # at +1:00
    master.tick()
    wall.now += 100  # +2:40: 'after-a' waits for two exercise minutes after a
    master.clock("pause", "fac")
    wall.now += 900
    master.clock("resume", "fac")
    master.tick()
    assert "after-a" not in [i for i, _, _ in fired(journal)]
    wall.now += 21  # +3:01
    master.tick()
    assert fired(journal)[-1][0] == "after-a"
    assert fired(journal)[-1][2] == "condition"
    view = master.view()
    assert view.expectation("a-by-8").status == "met"
    assert view.expectation("a-by-8").at == pytest.approx(60)
    wall.now += 60  # +4:01: b's deadline passed
    master.tick()
    b = master.view().expectation("b-by-4")
    assert b.status == "failed" and "deadline +4:00" in b.comment
    finish(journal, "b")  # late: stays failed, judged once
    master.tick()
    verdicts = [e["data"]["id"] for e in journal.entries if e["event"] == "expectation"]
    assert verdicts == ["a-by-8", "b-by-4"]


def test_scripted_advance_fires_in_order_at_their_own_times(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.jsonl", Redactor(), shared=True)
    master = Drill(Scenario.model_validate(SCENARIO), STEPS, journal, None)
    master.clock("start", "bot", scripted=True)
    master.advance(11 * 60, "bot")  # +11:00 in one scripted move
    assert [(i, t) for i, t, _ in fired(journal)] == [("early", 300.0), ("ten", 600.0)]
    b = master.view().expectation("b-by-4")
    assert b.status == "failed" and b.at == pytest.approx(240.001, abs=0.01)
    assert master.now() == 660
    entry = master.finish("bot")
    assert entry is not None and entry["data"]["failed"] == ["a-by-8", "b-by-4"]
    assert master.finish("bot") is None, "finished once"
    journal.close()
