"""`runbook scan`: the detector on its own, for "am I affected?" at 3 a.m. and for CI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `scan` subcommand (called by the CLI through the `runbook.commands` group)."""
    scan = sub.add_parser(
        "scan",
        help="find every trace of an incident's bad versions",
        description="Exit codes: 0 everything checked, nothing compromised or at risk; "
        "1 compromised or at-risk findings; 2 usage error; 3 nothing compromised or at risk "
        "found, but something could not be checked (unknown findings: a file that could not be "
        "read or parsed), so the result is not clean.",
    )
    scan.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="directories to scan (default: . unless --host or --root)",
    )
    scan.add_argument(
        "--host",
        action="store_true",
        help="also this machine: caches, global installs, editors, host indicators",
    )
    scan.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="treat DIR as the filesystem root (a mounted disk image); implies --host",
    )
    scan.add_argument(
        "--history",
        action="store_true",
        help="git history of the lockfiles: when a bad version entered and left",
    )
    scan.add_argument(
        "--playbook",
        default="axios-2026-03",
        metavar="ID|FILE",
        help="whose incident to look for (default: axios-2026-03)",
    )
    scan.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    scan.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    scan.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from runbook.atomic import write_output
    from runbook.exitcodes import FAILED, OK, UNCHECKED, USAGE
    from runbook.playbook import load_for_command
    from runbook.redact import Redactor
    from runbook.termsafe import printable
    from steps.scan import ScanOptions, scan
    from steps.scan.output import RENDERERS

    loaded = load_for_command(args.playbook)
    if loaded is None:
        return USAGE
    playbook = loaded.playbook
    paths = list(args.paths)
    if not paths and not (args.host or args.root):
        paths = [Path(".")]
    for path in paths:
        if not path.is_dir():
            print(f"runbook: {printable(path)} is not a directory", file=sys.stderr)
            return USAGE
    if args.root is not None and not args.root.is_dir():
        print(f"runbook: --root {printable(args.root)} is not a directory", file=sys.stderr)
        return USAGE
    options = ScanOptions(
        host=args.host, root=args.root.resolve() if args.root else None, history=args.history
    )
    result = scan([p.resolve() for p in paths], playbook.incident, options)
    # spec strings and URLs come from the scanned files: a token or a URL password in one is
    # shown redacted, as everywhere else
    text = Redactor().text(RENDERERS[args.format](result))
    if args.output:
        try:
            write_output(args.output, [text])
        except OSError as exc:
            where = printable(args.output)
            print(f"runbook: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
            return USAGE
    else:
        sys.stdout.write(text)
    if result.affected:
        return FAILED
    return UNCHECKED if result.affected is None else OK
