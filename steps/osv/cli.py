"""`runbook new`: write a playbook for a new incident, from OSV advisories or by questions."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.models import STEP_ID

if TYPE_CHECKING:
    from steps.osv.draft import IncidentDraft

DESCRIPTION = (
    "Writes a playbook from OSV malicious-package advisories (--from-osv), or asks for the facts "
    "in a terminal. Safe pins come from the registry's package metadata with --registry; "
    "without it they are left as FILL-IN placeholders that `runbook validate` names. "
    "Exit codes: 0 written and valid; 1 written, but something is left to fill in (see the "
    "messages and the comment block at its top); 2 usage error or unusable input, nothing written."
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `new` subcommand (called by the CLI through the `runbook.commands` group)."""
    parser = sub.add_parser(
        "new",
        help="write a playbook for a new incident (from OSV advisories)",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--from-osv",
        nargs="+",
        action="extend",
        type=Path,
        metavar="FILE|DIR",
        help="OSV records (JSON files, or directories searched for *.json)",
    )
    parser.add_argument(
        "--from-list",
        nargs="+",
        action="extend",
        type=Path,
        metavar="FILE",
        help="flat lists of bad versions, one a line: name<TAB>version or name@version "
        "(with or without --from-osv; the playbook takes every version of every source)",
    )
    parser.add_argument(
        "--no-pins",
        action="store_true",
        help="leave safe pins out instead of leaving them to fill in (for lists too long to "
        "pin by hand): the pin step then stops at a project that needs one, naming the package",
    )
    parser.add_argument("--id", dest="playbook_id", metavar="ID", help="the playbook's id")
    parser.add_argument("--title", help="the playbook's title (default: from the packages)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="PLAYBOOK",
        help="where to write it (default: ID.yaml here; - for standard output)",
    )
    parser.add_argument(
        "--registry",
        metavar="URL",
        help="npm registry to take safe pins and range versions from (e.g. "
        "https://registry.npmjs.org/); without it, pins are left to fill in",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(handler=run)


def _say(message: str) -> None:
    from runbook.termsafe import printable

    print(f"runbook: {printable(message)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from runbook.exitcodes import USAGE

    if args.registry and not re.match(r"^https?://[^/\s]+", args.registry):
        _say(f"--registry {args.registry}: expected an http:// or https:// URL")
        return USAGE
    if args.playbook_id is not None and not re.match(STEP_ID, args.playbook_id):
        _say(
            f"--id {args.playbook_id}: use lowercase letters, digits, '-' and '_', starting "
            "with a letter or digit"
        )
        return USAGE
    if args.from_osv or args.from_list:
        if args.playbook_id is None:
            given = "--from-osv" if args.from_osv else "--from-list"
            _say(f"--id ID is needed with {given} (e.g. --id axios-2026-03)")
            return USAGE
        draft = _from_osv(args)
    else:
        if not sys.stdin.isatty():
            _say(
                "new: no terminal to ask the questions on; pass --from-osv FILE|DIR (OSV "
                "advisories) and --id ID, or run it in a terminal"
            )
            return USAGE
        from steps.osv.interactive import ask_incident

        try:
            draft = ask_incident(input, print, args.playbook_id, args.registry)
        except EOFError:
            print(file=sys.stderr)
            _say("new: input ended; nothing written")
            return USAGE
    if draft is None:
        return USAGE
    if args.title:
        draft.title = args.title
    return _write(draft, args)


def _from_osv(args: argparse.Namespace) -> IncidentDraft | None:
    from steps.osv.merge import merge
    from steps.osv.pins import complete
    from steps.osv.records import read_records
    from steps.osv.versionlist import add_lists, read_lists

    records, problems = read_records(list(args.from_osv)) if args.from_osv else ([], [])
    lists, list_problems = read_lists(list(args.from_list or []))
    problems += list_problems
    if problems:
        for problem in problems:
            _say(str(problem))
        _say(f"new: {len(problems)} unusable input files or records; nothing written")
        return None
    draft = merge(records, args.playbook_id)
    if not records:
        draft.summary = ""  # written from the lists' packages instead
    add_lists(draft, lists)
    if args.no_pins:
        draft.warnings.append(
            "no safe pins (--no-pins): the pin step stops at a project that resolves or admits "
            "a bad version, naming the package and its major line; add `safe_pins` for the "
            "packages your projects use (`npm view PACKAGE versions`)"
        )
    if not draft.packages:
        for note in draft.notes:
            _say(f"note: {note}")
        _say(
            "new: no package left to put in a playbook (every record was skipped); nothing written"
        )
        return None
    complete(draft, args.registry, pins=not args.no_pins)
    return draft


def _write(draft: IncidentDraft, args: argparse.Namespace) -> int:
    from runbook.atomic import write_output
    from runbook.exitcodes import FAILED, OK, USAGE
    from runbook.playbook import PlaybookInvalid, validate_document
    from runbook.registry import default_registry
    from runbook.termsafe import printable
    from runbook.yamlsource import YamlSyntaxError, load_yaml
    from steps.osv.generate import render

    given = [
        opt for opt, used in (("--from-osv", draft.sources), ("--from-list", draft.lists)) if used
    ]
    command = " ".join(["runbook new", *given])
    text = render(draft, command)
    output = args.output or f"{draft.id}.yaml"
    if output != "-":
        path = Path(output)
        if (path.exists() or path.is_symlink()) and not args.force:
            _say(f"{output} already exists; pass --force to overwrite it, or -o another file")
            return USAGE
        if not path.parent.is_dir():
            _say(f"{output}: the directory {path.parent} does not exist")
            return USAGE
        try:
            write_output(path, [text])
        except OSError as exc:
            _say(f"cannot write {output}: {exc.strerror or exc}")
            return USAGE
    else:
        sys.stdout.write(text)

    for note in draft.notes:
        _say(f"note: {note}")
    for warning in draft.warnings:
        _say(f"review: {warning}")
    shown = "standard output" if output == "-" else output
    about = f"{len(draft.packages)} packages, {len(draft.warnings)} warnings to review"
    print(printable(f"wrote {shown}: {draft.id} ({about})"), file=sys.stderr)
    try:
        validate_document(load_yaml(text, output), default_registry())
    except (PlaybookInvalid, YamlSyntaxError) as exc:
        problems = exc.problems if isinstance(exc, PlaybookInvalid) else [exc.problem]
        for problem in problems:
            print(printable(problem), file=sys.stderr)
        fill = len(draft.fill_ins())
        what = f"fill in the {fill} safe pins above, then " if fill else "fix the above, then "
        print(printable(f"not valid yet: {what}run `runbook validate {output}`"), file=sys.stderr)
        return FAILED
    print(printable(f"next: review it, then `runbook validate {output}`"), file=sys.stderr)
    return OK
