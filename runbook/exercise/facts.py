"""What the journal says so far, entry by entry, and whether a condition holds on it.

`Facts` is fed journal entries in order. It keeps the steps' states (as the runner derives them),
checklist answers, the exercise clock, and, for every `since:` condition it was told to watch,
the exercise time at which that condition first held.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runbook.exercise.clock import Clock, wall_time
from runbook.exercise.model import Cond
from runbook.runstate import StepState, apply_entry


def _since_nodes(conds: Iterable[Cond | None]) -> list[Cond]:
    from runbook.exercise.scenario import iter_conditions

    out = []
    for cond in conds:
        for node, _ in iter_conditions(cond, ()):
            if node.since is not None:
                out.append(node)
    return out


class Facts:
    """The journal replayed: step states, events, checklist answers, clock, `since` moments."""

    def __init__(self, steps: Iterable[str], watch: Iterable[Cond | None] = ()) -> None:
        """`steps` are the playbook's step ids; `watch` the conditions whose `since:` parts
        need their first moments kept."""
        self.states: dict[str, StepState] = {step: StepState() for step in steps}
        self.clock = Clock()
        self.entries: list[dict[str, Any]] = []
        self.times: list[float] = []  # exercise time of each entry
        self.items: dict[tuple[str, str], str] = {}  # (step, item) -> latest answer
        self.fired: dict[str, float] = {}  # inject -> exercise time it fired
        self.skipped: set[str] = set()
        self.decided: set[str] = set()  # injects a decision was recorded on
        self.by_event: dict[str, list[dict[str, Any]]] = {}  # event -> the entries' data
        self._since = _since_nodes(watch)
        self.moments: dict[int, float] = {}  # id(since node) -> when its condition first held

    @property
    def fed(self) -> int:
        return len(self.entries)

    def feed(self, entry: dict[str, Any]) -> float:
        """Take one more entry; returns its exercise time."""
        event, data = entry.get("event"), entry.get("data") or {}
        wall = wall_time(entry.get("ts", ""))
        if event == "clock":
            self.clock.apply(data, wall)
        at = self.clock.now(wall)
        apply_entry(self.states, entry)
        if event == "manual_item":
            self.items[(str(data.get("step")), str(data.get("item")))] = str(data.get("answer"))
        elif event == "inject_fired":
            self.fired.setdefault(str(data.get("inject")), at)
        elif event == "inject_skipped":
            self.skipped.add(str(data.get("inject")))
        elif event == "decision" and data.get("inject"):
            self.decided.add(str(data["inject"]))
        self.by_event.setdefault(str(event), []).append(data)
        self.entries.append(entry)
        self.times.append(at)
        self.observe(at)
        return at

    def observe(self, now: float) -> None:
        """Note the first moment of each watched `since` condition that holds at `now`."""
        for node in self._since:
            watched = id(node) not in self.moments and node.since is not None
            if watched and self.holds(node.since, now):  # type: ignore[arg-type]
                self.moments[id(node)] = now

    def now(self, wall: float) -> float:
        return self.clock.now(wall)

    # -- conditions ----------------------------------------------------------------------------
    def holds(self, cond: Cond, now: float) -> bool:
        head = cond.head
        if head == "all":
            return all(self.holds(c, now) for c in cond.all_ or [])
        if head == "any":
            return any(self.holds(c, now) for c in cond.any_ or [])
        if head == "not":
            assert cond.not_ is not None
            return not self.holds(cond.not_, now)
        if head == "step":
            state = self.states.get(str(cond.step))
            return state is not None and state.status in (cond.outcome or ["succeeded"])
        if head == "finding":
            return self._finding(cond)
        if head == "event":
            wanted = (cond.where or {}).items()
            return any(
                all(data.get(key) == value for key, value in wanted)
                for data in self.by_event.get(str(cond.event), [])
            )
        if head == "inject":
            return cond.inject in self.fired
        if head == "decision":
            return cond.decision in self.decided
        if head == "checklist":
            assert cond.checklist is not None
            answer = self.items.get((cond.checklist.step, cond.checklist.item))
            return answer in cond.checklist.answer
        if head == "elapsed":
            return self.clock.started and now >= float(cond.elapsed or 0)
        if head == "since":
            moment = self.moments.get(id(cond))
            if moment is None and cond.since is not None and self.holds(cond.since, now):
                moment = self.moments[id(cond)] = now
            return moment is not None and now - moment >= float(cond.after or 0)
        return False

    def _finding(self, cond: Cond) -> bool:
        match = cond.finding
        assert match is not None
        steps = [match.step] if match.step else list(self.states)
        for step_id in steps:
            for finding in self.states.get(step_id, StepState()).findings:
                if match.severity and finding.get("severity") not in match.severity:
                    continue
                if match.kind and finding.get("kind") != match.kind:
                    continue
                if match.package and finding.get("package") != match.package:
                    continue
                return True
        return False

    def first_moment(self, cond: Cond) -> float | None:
        """When `cond` first held, replaying what was fed (for reports; O(entries))."""
        replay = Facts(list(self.states), [cond])
        for entry in self.entries:
            at = replay.feed(entry)
            if replay.holds(cond, at):
                return at
        return None
