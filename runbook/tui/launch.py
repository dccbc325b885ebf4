"""Starting the app from the command line, and what is printed once it is closed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runbook.exitcodes import FAILED, INTERRUPTED, OK, UNCHECKED, USAGE
from runbook.tui.app import AppResult, RunbookApp
from runbook.tui.request import Mode, Outline, RunRequest, StartSettings, outline_of


def _err(message: str) -> None:
    print(f"runbook: {message}", file=sys.stderr)


def first_outline(path: Path, display: str, env: dict[str, str]) -> Outline | None:
    """The step list to draw at once; when the quick read fails, the full validation reports
    why (on stderr) and None is returned."""
    outline = outline_of(path, env)
    if outline is not None:
        return outline
    from runbook.playbook import PlaybookInvalid, load_playbook

    try:
        loaded = load_playbook(path, display=display)
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    playbook = loaded.playbook
    return Outline(playbook.id, playbook.title, [(s.id, s.title) for s in playbook.steps])


def request_from_args(
    args: argparse.Namespace, env: dict[str, str]
) -> tuple[RunRequest, Outline] | int:
    """`runbook run ...` arguments as a run request, or an exit code after printing why not."""
    from runbook.bundled import resolve_playbook
    from runbook.runargs import parse_skips, run_options

    try:
        path = resolve_playbook(args.playbook)
        skips = parse_skips(args.skip)
    except (FileNotFoundError, ValueError) as exc:
        _err(str(exc))
        return USAGE
    target = Path(os.path.realpath(args.target))
    if not target.is_dir():
        _err(f"target {args.target} is not a directory")
        return USAGE
    display = args.playbook if Path(args.playbook).exists() else str(path)
    outline = first_outline(path, display, env)
    if outline is None:
        return USAGE
    mode: Mode = "dry-run" if args.dry_run else "live"
    request = RunRequest(
        playbook=path,
        target=target,
        mode=mode,
        env=env,
        operator=args.operator,
        display=display,
        options=run_options(args),
        journal=args.journal,
        new=args.new,
        from_step=args.from_step,
        skips=skips,
    )
    return request, outline


def run_app(args: argparse.Namespace) -> int:
    """`runbook run` from a terminal."""
    env = dict(os.environ)
    prepared = request_from_args(args, env)
    if isinstance(prepared, int):
        return prepared
    request, outline = prepared
    return report(RunbookApp(request, outline).run())


def start_app(target: Path | None = None) -> int:
    """`runbook` alone from a terminal: the start screen."""
    settings = StartSettings(target or Path.cwd(), dict(os.environ))
    return report(RunbookApp(start=settings).run())


def report(result: AppResult | None, *, resumable: bool = True) -> int:
    """Print how the run ended (its journal and head, how to resume) and pick the exit code."""
    if result is None:  # the app stopped without a result (an error it already printed)
        return INTERRUPTED
    if result.error:
        for line in result.error:
            print(line, file=sys.stderr)
        return USAGE
    if result.journal is None:
        return OK
    print(f"run {result.outcome}")
    if result.failed:
        print(f"failed steps: {', '.join(result.failed)}")
    if result.unchecked:
        print(f"could not check {result.unchecked} thing(s): not a clean result")
    print(f"journal: {result.journal}")
    print(f"head: {result.head}")
    if result.outcome != "completed" and resumable:
        print("to resume, run the same command again: it continues at the first unfinished step")
    if result.outcome == "interrupted":
        return INTERRUPTED
    if result.failed or result.findings_remain:
        return FAILED
    return UNCHECKED if result.unchecked else OK
