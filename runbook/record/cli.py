"""Command-line wiring for the incident record, signed journals and the CACAO export.

`runbook/cli.py` builds its parsers with the `register_*` functions and calls the handlers:

    runbook report J1 J2 DIR... [--incident NAME] [--format FMT] [--allowed-signers FILE] [-o F]
    runbook export cacao PLAYBOOK [-o FILE]
    runbook audit sign JOURNAL [--key KEY]
    runbook audit verify JOURNAL [--head H] [--signature SIG] --allowed-signers FILE

Exit codes: 0 done; 1 a journal could not be used, a signature does not hold or a chain is
broken (the report is still written); 2 usage (nothing to read, a file that is not there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.atomic import write_output
from runbook.exitcodes import FAILED, OK, USAGE
from runbook.termsafe import printable

if TYPE_CHECKING:
    from runbook.record.merge import Record

FORMATS = ("md", "json", "html", "timeline-jsonl", "timeline-csv", "cacao-status")


def _err(message: str) -> None:
    print(f"runbook: {printable(message)}", file=sys.stderr)


def _write(text: str | Iterable[str], output: Path | None) -> int:
    """Write the text (or its pieces, in order) to `output` atomically, or to stdout."""
    chunks = [text] if isinstance(text, str) else text
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return OK

    try:
        write_output(Path(output), chunks)
    except OSError as exc:
        _err(f"cannot write {output}: {exc.strerror or exc}")
        return USAGE
    return OK


# -- runbook report ---------------------------------------------------------------------------
def register_report_args(parser: argparse.ArgumentParser) -> None:
    """The arguments of `runbook report` (replacing its single `journal` and `--format`)."""
    parser.add_argument(
        "journals",
        nargs="+",
        type=Path,
        metavar="JOURNAL_OR_DIR",
        help="journals to merge; a folder means every *.jsonl journal under it",
    )
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format (md)")
    parser.add_argument("--incident", metavar="NAME", help="name the incident in the record")
    parser.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="ssh allowed_signers file: say who signed each signed journal (JOURNAL.sig)",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def _single(args: argparse.Namespace) -> bool:
    """One journal file, in a format the one-run report has: render exactly as before."""
    return (
        len(args.journals) == 1
        and not Path(args.journals[0]).is_dir()
        and args.format in ("md", "json")
        and not args.incident
    )


def _report_one(args: argparse.Namespace) -> int:
    from runbook.journal import JournalError, read_entries
    from runbook.report import render
    from runbook.signing import SigningError, check, read, signature_path

    journal = Path(args.journals[0])
    try:
        text = render(journal, args.format)
    except OSError as exc:
        _err(f"cannot read {journal}: {exc.strerror or exc}")
        return USAGE
    except JournalError as exc:  # a malformed entry, named by its line
        _err(f"{journal}: {exc}")
        return USAGE
    sig_path = signature_path(journal)
    status = OK
    if os.path.lexists(sig_path):
        try:
            hashes = [str(e["hash"]) for e in read_entries(journal)]
            result = check(hashes, read(sig_path), args.allowed_signers)
            line, ok = result.describe(), result.ok
        except (SigningError, OSError, JournalError) as exc:
            line, ok = f"signature INVALID: {exc}", False
        if not ok:
            _err(f"{sig_path}: {line}")
            status = FAILED
        if args.format == "md":
            text += f"\n## Signature\n\n{printable(sig_path)}: {printable(line)}\n"
        else:
            data = json.loads(text)
            data["signature"] = {"file": str(sig_path), "ok": ok, "text": line}
            text = json.dumps(data, indent=2) + "\n"
    written = _write(text, args.output)
    return written or status


def render_record(record: Record, fmt: str) -> str | Iterable[str]:
    """A merged record in one of the `FORMATS` (the large ones in pieces, in order)."""
    if fmt == "json":
        return json.dumps(record.as_json(), indent=2) + "\n"
    if fmt == "html":
        from runbook.record.html import iter_html

        return iter_html(record)
    if fmt == "timeline-jsonl":
        from runbook.record.timeline import to_jsonl

        return to_jsonl(record)
    if fmt == "timeline-csv":
        from runbook.record.timeline import to_csv

        return to_csv(record)
    if fmt == "cacao-status":
        from runbook.record.cacao import status_records

        return json.dumps(status_records(record), indent=2) + "\n"
    from runbook.record.markdown import iter_markdown

    return iter_markdown(record)


def report_many(args: argparse.Namespace) -> int:
    """`runbook report`: one journal as before, or many merged into one incident record."""
    signers = args.allowed_signers
    if signers is not None and not Path(signers).is_file():
        _err(f"no allowed signers file at {signers}")
        return USAGE
    if _single(args):
        return _report_one(args)
    from runbook.record.load import NoJournals, load
    from runbook.record.merge import build

    try:
        collection = load([str(p) for p in args.journals], signers)
    except NoJournals as exc:
        _err(str(exc))
        return USAGE
    for problem in collection.problems:
        where = problem.journal + (f":{problem.line}" if problem.line else "")
        verdict = "not used" if problem.blocking else "warning"
        _err(f"{where}: {verdict}: {problem.reason}")
    text = render_record(build(collection, args.incident), args.format)
    written = _write(text, args.output)
    if written:
        return written
    return FAILED if any(p.blocking for p in collection.problems) else OK


# -- runbook export cacao -----------------------------------------------------------------------
def register_export_args(parser: argparse.ArgumentParser) -> None:
    """`runbook export` and its formats (so far `cacao`)."""
    formats = parser.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    cacao = formats.add_parser("cacao", help="the playbook as an OASIS CACAO 2.0 JSON playbook")
    cacao.add_argument("playbook", help="a playbook file, or the id of a bundled playbook")
    cacao.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    cacao.set_defaults(handler=export_cacao)


def export_cacao(args: argparse.Namespace) -> int:
    from runbook.playbook import load_for_command
    from runbook.record.cacao import export_playbook

    loaded = load_for_command(args.playbook, display=args.playbook)
    if loaded is None:
        return USAGE
    document = export_playbook(loaded)
    return _write(json.dumps(document, indent=2) + "\n", args.output)


# -- runbook audit sign / verify --signature ----------------------------------------------------
def register_audit_sign_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", type=Path)
    parser.add_argument(
        "--key",
        type=Path,
        help="SSH key to sign with (default ~/.ssh/id_ed25519; a .pub whose private key is in "
        "ssh-agent works too)",
    )
    parser.set_defaults(handler=audit_sign)


def audit_sign(args: argparse.Namespace) -> int:
    """Sign a journal's head with the operator's SSH key, writing `JOURNAL.sig`."""
    from runbook.signing import SigningError, default_key, sign

    if not Path(args.journal).is_file():
        _err(f"no journal at {args.journal}")
        return USAGE
    key = args.key or default_key(os.environ)
    if not Path(key).is_file():
        _err(f"no SSH key at {key}; give one with --key")
        return USAGE
    try:
        signed = sign(Path(args.journal), Path(key))
    except SigningError as exc:
        _err(str(exc))
        return FAILED
    if signed.replaced is not None:
        print(
            f"replaced the signature of head {signed.replaced.head} "
            f"({signed.replaced.entries} entries)"
        )
    print(
        printable(
            f"signed {args.journal}: head {signed.head} ({signed.entries} entries) with "
            f"{signed.key}; wrote {signed.path}"
        )
    )
    return OK


def register_audit_verify_args(parser: argparse.ArgumentParser) -> None:
    """The options `runbook audit verify` gains (beside its `journal` and `--head`)."""
    parser.add_argument(
        "--signature",
        type=Path,
        metavar="SIG",
        help="also check this signature of the journal's head (default: JOURNAL.sig)",
    )
    parser.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="ssh allowed_signers file: whose signatures are accepted",
    )


def audit_verify_signature(args: argparse.Namespace) -> int:
    """`runbook audit verify JOURNAL --signature SIG --allowed-signers FILE`: the chain, then
    the signature and who made it. Exit 0 only when both hold."""
    from runbook.journal import read_entries, verify
    from runbook.signing import SigningError, check, read, signature_path

    journal = Path(args.journal)
    if args.allowed_signers is None:
        _err("give --allowed-signers FILE: who may sign (see ssh-keygen(1), ALLOWED SIGNERS)")
        return USAGE
    if not Path(args.allowed_signers).is_file():
        _err(f"no allowed signers file at {args.allowed_signers}")
        return USAGE
    sig_path = Path(args.signature) if args.signature else signature_path(journal)
    try:
        result = verify(journal, getattr(args, "head", None))
    except OSError as exc:
        _err(f"cannot read {journal}: {exc.strerror or exc}")
        return USAGE
    if not result.ok:
        print(printable(f"{journal}:{result.bad_line}: chain broken: {result.reason}"))
        return FAILED
    print(printable(f"{journal}: {result}"))
    try:
        signature = read(sig_path)
        hashes = [str(e["hash"]) for e in read_entries(journal)]
        outcome = check(hashes, signature, Path(args.allowed_signers))
    except (SigningError, OSError) as exc:
        print(printable(f"{sig_path}: signature INVALID: {exc}"))
        return FAILED
    print(printable(f"{sig_path}: {outcome.describe()}"))
    return OK if outcome.ok and outcome.status == "verified" else FAILED
