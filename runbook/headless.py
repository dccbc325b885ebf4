"""`runbook run` without the TUI: one line per step (or JSON lines), for CI, scripts and fleets.

Exit codes: 0 completed; 1 a step failed, findings remain, or the run stopped; 2 usage error or a
confirmation nobody could give; 3 completed without failures, but a step could not check
everything (it reported `unchecked`); 130 interrupted. Text lines escape control characters (step
summaries quote paths from the target); JSON lines are escaped by JSON itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from runbook.exitcodes import FAILED as EXIT_FAILED
from runbook.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from runbook.exitcodes import OK as EXIT_OK
from runbook.exitcodes import UNCHECKED as EXIT_UNCHECKED
from runbook.exitcodes import USAGE as EXIT_USAGE
from runbook.journal import Journal, JournalError
from runbook.models import StepSpec
from runbook.operator import ConsoleOperator, HeadlessOperator, Operator
from runbook.playbook import load_for_command
from runbook.redact import Redactor
from runbook.runargs import parse_skips, run_options
from runbook.runner import Runner, operator_name
from runbook.runs import choose_journal
from runbook.runstate import StepState
from runbook.termsafe import printable

LABEL = {"succeeded": "ok", "failed": "FAILED", "skipped": "skipped", "outstanding": "open"}


SUMMARY_LINES = 12  # of a step's summary, in the terminal; the journal keeps all of it


def _err(message: str) -> None:
    print(f"runbook: {printable(message)}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run like Ctrl-C: journaled, resumable


def _operator(args: argparse.Namespace) -> Operator:
    name = args.operator or operator_name(os.environ)
    if sys.stdin.isatty() and sys.stdout.isatty() and not (args.json or args.no_input):
        return ConsoleOperator(name, assume_yes=args.yes)
    return HeadlessOperator(name, assume_yes=args.yes)


def run_headless(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    loaded = load_for_command(
        args.playbook, display=args.playbook if Path(args.playbook).exists() else None
    )
    if loaded is None:
        return EXIT_USAGE
    try:
        skips = parse_skips(args.skip)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    step_ids = {s.id for s in loaded.playbook.steps}
    for step_id in [args.from_step, *skips]:
        if step_id and step_id not in step_ids:
            _err(
                f"no step '{step_id}' in {loaded.playbook.id}; steps: {', '.join(sorted(step_ids))}"
            )
            return EXIT_USAGE
    target = Path(os.path.realpath(args.target))
    if not target.is_dir():
        _err(f"target {args.target} is not a directory")
        return EXIT_USAGE
    mode = "dry-run" if args.dry_run else "live"
    journal_path, resumed = choose_journal(
        env, loaded.playbook.id, target, mode, args.journal, args.new
    )

    emit = JsonEmitter() if args.json else TextEmitter()
    redactor = Redactor()
    try:
        journal = Journal(journal_path, redactor)
    except (JournalError, OSError) as exc:
        _err(str(exc))
        if resumed and isinstance(exc, JournalError) and "broken chain" in str(exc):
            _err("keep that journal as evidence; start a new run with --new")
        return EXIT_FAILED
    with journal:
        runner = Runner(
            loaded,
            target,
            journal,
            _operator(args),
            dry_run=args.dry_run,
            redactor=redactor,
            env=env,
            listener=emit.step,
            options=run_options(args),
        )
        emit.start(loaded.playbook.id, target, mode, journal.path, resumed)
        for warning in runner.preflight():
            _err(f"warning: {warning}")
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            summary = runner.run_all(from_step=args.from_step, skips=skips)
        except KeyboardInterrupt:
            emit.end(
                "interrupted", journal.head, journal.path, "interrupted (Ctrl-C); rerun to resume"
            )
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
    emit.end(
        summary.outcome,
        summary.head,
        summary.journal,
        summary.reason,
        outstanding=summary.outstanding,
        unchecked=summary.unchecked,
    )
    if summary.needs_confirmation:
        return EXIT_USAGE
    if summary.outcome != "completed" or summary.failed or summary.findings_remain:
        return EXIT_FAILED
    return EXIT_UNCHECKED if summary.unchecked else EXIT_OK


def _unchecked(count: int) -> str:
    return f"{count} thing{'s' if count != 1 else ''} could not be checked"


class TextEmitter:
    """One readable line per step."""

    def start(self, playbook: str, target: Path, mode: str, journal: Path, resumed: bool) -> None:
        verb = "resuming" if resumed else "running"
        banner = "DRY RUN: nothing will be changed" if mode == "dry-run" else "LIVE"
        print(f"{verb} {printable(playbook)} on {printable(target)} [{banner}]", flush=True)

    def step(self, step: StepSpec, state: StepState) -> None:
        label = LABEL.get(state.status, state.status)
        took = f" ({state.duration:.1f}s)" if state.duration else ""
        # a multi-line summary (a failed command's output) goes on indented lines below its row
        lines = printable(state.summary or "", keep_newlines=True).splitlines() or [""]
        summary = f"  {lines[0]}" if lines[0] else ""
        print(f"  {label:<8} {printable(step.id):<28}{summary}{took}", flush=True)
        for line in lines[1:SUMMARY_LINES]:
            print(f"{'':<40}{line}", flush=True)
        if len(lines) > SUMMARY_LINES:
            print(f"{'':<40}({len(lines) - SUMMARY_LINES} more line(s) in the journal)", flush=True)

    def end(
        self,
        outcome: str,
        head: str,
        journal: Path,
        reason: str = "",
        outstanding: list[str] | None = None,
        unchecked: int = 0,
    ) -> None:
        said = [reason] if reason else []
        if unchecked:
            said.append(_unchecked(unchecked))
        print(f"run {outcome}" + (f": {printable('; '.join(said))}" if said else ""))
        if outstanding:
            print(f"outstanding manual steps: {printable(', '.join(outstanding))}")
        print(f"journal: {printable(journal)}")
        print(f"head: {head}", flush=True)


class JsonEmitter:
    """One JSON object per line: the run, each step, the end."""

    def _line(self, **data: object) -> None:
        print(json.dumps(data, sort_keys=True), flush=True)

    def start(self, playbook: str, target: Path, mode: str, journal: Path, resumed: bool) -> None:
        self._line(
            event="run",
            playbook=playbook,
            target=str(target),
            mode=mode,
            journal=str(journal),
            resumed=resumed,
        )

    def step(self, step: StepSpec, state: StepState) -> None:
        self._line(
            event="step",
            step=step.id,
            title=step.title,
            status=state.status,
            summary=state.summary,
            duration=state.duration,
            findings=len(state.findings),
        )

    def end(
        self,
        outcome: str,
        head: str,
        journal: Path,
        reason: str = "",
        outstanding: list[str] | None = None,
        unchecked: int = 0,
    ) -> None:
        self._line(
            event="end",
            outcome=outcome,
            reason=reason,
            head=head,
            journal=str(journal),
            outstanding=outstanding or [],
            unchecked=unchecked,
        )
