"""An open run: the validated playbook, its journal and the runner. No Textual in here.

Opened in a thread once the app's first frame is drawn: validating the playbook imports pydantic
and every step kind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.journal import Journal, JournalError
from runbook.tui.request import RunRequest

if TYPE_CHECKING:
    from runbook.operator import Operator
    from runbook.playbook import LoadedPlaybook
    from runbook.redact import Redactor
    from runbook.runner import Runner

Observer = Callable[[dict[str, Any]], None]


class RunClosed(Exception):
    """The session was closed (the operator quit) while a step thread was still working."""


class ObservedJournal(Journal):
    """A journal that tells an observer about every entry (a shared one's too: those other
    processes appended), and refuses entries once closed."""

    def __init__(
        self,
        path: Path,
        redact: Callable[[Any], Any],
        observer: Observer,
        *,
        shared: bool = False,
    ) -> None:
        self._observer = observer
        self._gate = threading.Lock()
        self._closed = False
        super().__init__(path, redact, shared=shared)

    def _adopted(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            self._observer(entry)

    def _write(self, event: str, data: dict[str, Any] | None) -> dict[str, Any]:
        # told while the journal's lock is held, so the observer hears of entries in order
        # whichever thread (or process) wrote them
        entry = super()._write(event, data)
        self._observer(entry)
        return entry

    def append(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._gate:
            if self._closed:
                raise RunClosed(f"the run was closed; '{event}' was not journaled")
            return super().append(event, data)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._gate:
            self._closed = True
            super().close()


class SessionError(Exception):
    """The run cannot be opened; `lines` say why (a playbook's problems, one per line)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Session:
    """An open run: the runner and its journal."""

    request: RunRequest
    loaded: LoadedPlaybook
    journal: ObservedJournal
    runner: Runner
    resumed: bool
    outcome: str = ""
    warnings: list[str] = field(default_factory=list)  # foreseen problems (an unsafe keyring)

    @property
    def steps(self) -> list[Any]:
        return self.loaded.playbook.steps

    def all_finished(self) -> bool:
        states = self.runner.states()
        return all(states[s.id].finished(s) for s in self.steps)

    def close(self, running: str | None = None) -> str:
        """Journal how the session ended and release the journal; returns the head hash."""
        if self.journal.closed:
            return self.journal.head
        left = [s.id for s in self.steps if not self.runner.states()[s.id].finished(s)]
        if running:
            outcome, reason = "interrupted", f"the operator quit while '{running}' was running"
        elif not left:
            outcome, reason = "completed", ""
        else:
            outcome = "stopped"
            reason = f"the operator quit with {len(left)} step(s) left; rerun to resume"
        self.outcome = outcome
        head = self.runner.finish(outcome, reason)
        self.journal.close()
        return head


def open_session(
    request: RunRequest,
    operator: Operator,
    observer: Observer,
    redactor: Redactor,
    output: Callable[[str, str], None] | None = None,
) -> Session:
    """Validate the playbook, open (or resume) its journal and journal the start. Raises
    SessionError with lines to show."""
    from runbook.playbook import PlaybookInvalid, load_playbook
    from runbook.runner import Runner
    from runbook.runs import choose_journal

    display = request.display or str(request.playbook)
    try:
        loaded = load_playbook(request.playbook, display=display)
    except PlaybookInvalid as exc:
        raise SessionError([str(p) for p in exc.problems]) from None
    ids = [s.id for s in loaded.playbook.steps]
    for step_id in [request.from_step, *request.skips]:
        if step_id and step_id not in ids:
            known = ", ".join(sorted(ids))
            raise SessionError([f"no step '{step_id}' in {loaded.playbook.id}; steps: {known}"])
    path, resumed = choose_journal(
        request.env,
        loaded.playbook.id,
        request.target,
        request.engine_mode,
        request.journal,
        request.new,
    )
    try:
        journal = ObservedJournal(path, redactor, observer)
    except (JournalError, OSError) as exc:
        lines = [str(exc)]
        if resumed and "broken chain" in str(exc):
            lines.append("keep that journal as evidence; start a new run with --new")
        raise SessionError(lines) from None
    runner = Runner(
        loaded,
        request.target,
        journal,
        operator,
        dry_run=request.mode != "live",
        redactor=redactor,
        env=request.env,
        options=request.options,
        output=output,
    )
    runner.begin()
    warnings = runner.preflight(record=True)
    if request.mode == "tabletop" and not resumed:
        runner.note("tabletop exercise: a rehearsal run as a dry run; nothing is changed")
    if request.from_step:
        runner.reset_from(request.from_step)
    states = runner.states()
    for step in loaded.playbook.steps:
        if step.id in request.skips and not states[step.id].finished(step):
            runner.skip(step, request.skips[step.id])
    return Session(request, loaded, journal, runner, resumed, warnings=warnings)
