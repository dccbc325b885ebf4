"""The `runbook` command line. Headless: no TTY needed, nothing here imports Textual."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from runbook import __version__
from runbook.exitcodes import FAILED as EXIT_FAILED
from runbook.exitcodes import INTERRUPTED as EXIT_INTERRUPTED
from runbook.exitcodes import OK as EXIT_OK
from runbook.exitcodes import USAGE as EXIT_USAGE


def _parser(plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Interactive remediation runbook for software supply-chain incidents.",
    )
    parser.add_argument("--version", action="version", version=f"runbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a playbook against a target directory")
    run.add_argument("playbook", help="a playbook file, or the id of a bundled playbook")
    run.add_argument("--target", type=Path, default=Path.cwd(), help="directory to act on (.)")
    run.add_argument(
        "--dry-run", action="store_true", help="change nothing; journal what would be done"
    )
    run.add_argument("--yes", action="store_true", help="confirm every step (for CI and scripts)")
    run.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    run.add_argument(
        "--no-input",
        action="store_true",
        help="never prompt, even from a terminal (as without a TTY)",
    )
    run.add_argument("--journal", type=Path, help="journal file (default: under the XDG state dir)")
    run.add_argument("--from", dest="from_step", metavar="STEP_ID", help="start at this step")
    run.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP_ID=REASON",
        help="skip a step, giving the reason (repeatable)",
    )
    run.add_argument("--new", action="store_true", help="start a new run even if one is unfinished")
    run.add_argument("--operator", help="name recorded as the operator (default: $USER)")
    creds = run.add_argument_group("credential steps")
    creds.add_argument(
        "--allow-insecure-keyring",
        action="store_true",
        help="accept a plaintext, null or failing keyring backend for new secrets",
    )
    creds.add_argument(
        "--aws-endpoint-url",
        metavar="URL",
        help="AWS endpoint for IAM and STS (default: $AWS_ENDPOINT_URL, else AWS itself)",
    )
    creds.add_argument(
        "--all-users",
        action="store_true",
        help="also list IAM users whose keys were used in the exposure window (needs IAM read)",
    )
    from runbook.runargs import git_author

    commit = run.add_argument_group("commit step")
    commit.add_argument(
        "--git-author",
        type=git_author,
        metavar='"NAME <EMAIL>"',
        help="author and committer of the commit step, when git has no identity here",
    )
    commit.add_argument(
        "--no-commit",
        action="store_true",
        help="leave the commit to the caller (multi-gitter, a CI job): commit steps change "
        "nothing, and the run's changes stay in the working tree",
    )

    validate = sub.add_parser(
        "validate", help="check playbook and scenario files; exit 1 if any is invalid"
    )
    validate.add_argument("files", nargs="+")

    schema = sub.add_parser("schema", help="print the JSON Schema of the playbook format")
    schema.add_argument(
        "--scenario", action="store_true", help="the exercise scenario format instead"
    )
    sub.add_parser("list", help="list the bundled playbooks")

    from runbook.record import cli as record_cli

    audit = sub.add_parser("audit", help="audit-log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser("verify", help="verify a journal's hash chain (and signature)")
    verify.add_argument("journal", type=Path)
    verify.add_argument("--head", help="the head hash printed at the end of the run")
    record_cli.register_audit_verify_args(verify)
    sign = audit_sub.add_parser("sign", help="sign a journal's head with your SSH key")
    record_cli.register_audit_sign_args(sign)

    report = sub.add_parser(
        "report", help="the post-incident action log of one journal, or of many merged"
    )
    record_cli.register_report_args(report)

    export = sub.add_parser("export", help="export a playbook to another format (cacao)")
    record_cli.register_export_args(export)

    note = sub.add_parser("note", help="add a note to a run's journal")
    note.add_argument("journal", type=Path)
    note.add_argument("text")
    note.add_argument("--operator", help="name recorded with the note (default: $USER)")

    undo = sub.add_parser(
        "undo",
        help="restore every file a run changed from its backups",
        description=(
            "Restore every file a run changed, from the run's own backups. A journal's hash "
            "chain has no key (whoever can edit it can recompute it), so undo takes its bounds "
            "from the command line: --target names the directory the run changed (every target "
            "the journal records must be that directory, and nothing outside it is written or "
            "removed), and --head, the head hash printed at the end of the run, pins the "
            "journal down (only the changes journaled up to it are undone)."
        ),
    )
    undo.add_argument("journal", type=Path)
    undo.add_argument(
        "--target",
        type=Path,
        metavar="DIR",
        help="the directory the run changed (required, except with --dry-run)",
    )
    undo.add_argument(
        "--head",
        metavar="HASH",
        help="the head hash printed at the end of the run (recommended): the journal must hold "
        "it, and only changes up to it are undone",
    )
    undo.add_argument(
        "--force", action="store_true", help="also overwrite files edited since the run"
    )
    undo.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be done; change nothing (without --target: shows the journal's "
        "target, unchecked)",
    )
    undo.add_argument("--operator", help="name recorded with the undo (default: $USER)")

    sub.add_parser(
        "demo",
        help="try runbook on a bundled compromised example project, in a sandbox (a dry run)",
    )

    if plugins:
        from importlib import metadata

        for ep in metadata.entry_points(group=COMMANDS_GROUP):
            if ep.name not in sub.choices:
                ep.load()(sub)  # a plugin's `register(subparsers)`; it sets `handler`
    return parser


COMMANDS_GROUP = "runbook.commands"


def _err(message: str) -> None:
    print(f"runbook: {message}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    """Playbooks and exercise scenarios alike; problems quote the files, shown escaped."""
    from runbook.exercise.validate import validate_files

    return validate_files(args.files)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.scenario:
        from runbook.exercise.schema import scenario_schema

        print(json.dumps(scenario_schema(), indent=2))
        return EXIT_OK
    from runbook.schema import playbook_schema

    print(json.dumps(playbook_schema(), indent=2))
    return EXIT_OK


def cmd_list(_: argparse.Namespace) -> int:
    from runbook.playbook import PlaybookInvalid, bundled_playbooks, load_playbook
    from runbook.termsafe import printable

    for pid, path in bundled_playbooks().items():
        try:
            title = load_playbook(path).playbook.title
        except PlaybookInvalid:
            title = "(invalid)"
        print(f"{printable(pid)}\t{printable(title)}")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """The journal's path and the reason quote journal text: shown escaped."""
    if args.signature is not None or args.allowed_signers is not None:
        from runbook.record.cli import audit_verify_signature

        return audit_verify_signature(args)
    from runbook.journal import verify
    from runbook.termsafe import printable

    try:
        result = verify(args.journal, args.head)
    except OSError as exc:
        _err(printable(f"cannot read {args.journal}: {exc.strerror or exc}"))
        return EXIT_USAGE
    if result.ok:
        print(printable(f"{args.journal}: {result}"))
        return EXIT_OK
    print(printable(f"{args.journal}:{result.bad_line}: chain broken: {result.reason}"))
    return EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    """One journal as before, or many merged into one incident record."""
    from runbook.record.cli import report_many

    return report_many(args)


def cmd_export(args: argparse.Namespace) -> int:
    from runbook.record.cli import export_cacao

    return export_cacao(args)  # the only format so far: `runbook export cacao PLAYBOOK`


def cmd_note(args: argparse.Namespace) -> int:
    from runbook.journal import Journal, JournalError
    from runbook.redact import Redactor
    from runbook.runner import operator_name

    if not args.journal.is_file():
        _err(f"no journal at {args.journal}")
        return EXIT_USAGE
    try:
        with Journal(args.journal, Redactor()) as journal:
            entry = journal.append(
                "note", {"text": args.text, "by": args.operator or operator_name(os.environ)}
            )
    except JournalError as exc:
        _err(str(exc))
        return EXIT_FAILED
    print(f"note added (seq {entry['seq']}); head: {entry['hash']}")
    return EXIT_OK


def cmd_undo(args: argparse.Namespace) -> int:
    from runbook.journal import Journal, JournalError, MalformedEntry
    from runbook.redact import Redactor
    from runbook.runner import operator_name
    from runbook.safeio import is_regular
    from runbook.termsafe import printable
    from runbook.undo import preview, render, undo

    if not args.journal.exists():
        _err(printable(f"no journal at {args.journal}"))
        return EXIT_USAGE
    if not is_regular(args.journal, follow_symlinks=True):
        _err(printable(f"cannot read {args.journal}: not a regular file"))
        return EXIT_USAGE
    if args.target is None and not args.dry_run:
        _err(
            "undo needs --target DIR, the directory the run changed: the journal's own target "
            "is not trusted (add --head HASH, the head the run printed, to pin the journal)"
        )
        return EXIT_USAGE
    if args.head is None and not args.dry_run:
        _err(
            "warning: without --head, undo trusts the journal's record of what the run changed "
            "inside the target; the head is printed at the end of the run and kept in the fix "
            "commit's Runbook-Journal-Head trailer"
        )
    try:
        if args.dry_run:
            report = preview(args.journal, target=args.target, head=args.head, force=args.force)
        else:
            with Journal(args.journal, Redactor()) as journal:
                report = undo(
                    journal,
                    target=args.target,
                    head=args.head,
                    force=args.force,
                    by=args.operator or operator_name(os.environ),
                )
    except MalformedEntry as exc:
        _err(printable(f"{args.journal}: {exc}"))
        return EXIT_USAGE
    except JournalError as exc:
        _err(printable(exc))
        return EXIT_FAILED
    except OSError as exc:
        _err(printable(f"cannot read {args.journal}: {exc.strerror or exc}"))
        return EXIT_USAGE
    for line in render(report):
        print(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def _terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_run(args: argparse.Namespace) -> int:
    """From a terminal the app opens; `--json`, `--no-input`, `--yes` or no TTY run headless."""
    if _terminal() and not (args.json or args.no_input or args.yes):
        from runbook.tui.launch import run_app

        return run_app(args)
    from runbook.headless import run_headless

    return run_headless(args)


def cmd_demo(_: argparse.Namespace) -> int:
    from runbook.demo import main as demo

    return demo()


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "schema": cmd_schema,
    "list": cmd_list,
    "report": cmd_report,
    "note": cmd_note,
    "undo": cmd_undo,
    "demo": cmd_demo,
    "export": cmd_export,
}


def _builtin(argv: Sequence[str]) -> bool:
    """Whether the command is one of ours: then no plugin is imported (start-up time)."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return not argv  # `runbook` alone; `runbook --help` lists the plugins' commands too
    return words[0] in COMMANDS or words[0] == "audit"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(plugins=not _builtin(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        if _terminal():
            from runbook.tui.launch import start_app

            return start_app()
        parser.print_help()
        return EXIT_USAGE
    if args.command == "audit":
        handler = getattr(args, "handler", None) or cmd_audit_verify
    else:
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
