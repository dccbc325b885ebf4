"""Helpers for the incident-record tests: the frozen fixture journals, a test-only command line
over `runbook.record.cli` (the same `register_*` functions `runbook/cli.py` wires in), and
journals written with the real Journal class."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.journal import Journal
from runbook.record import cli
from runbook.redact import Redactor

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "record"
JOURNALS = FIXTURES / "journals"
ALLOWED = FIXTURES / "allowed_signers"
GOLDEN = Path(__file__).resolve().parent / "golden" / "record"


def parser() -> argparse.ArgumentParser:
    """`report`, `export`, `audit sign` and `audit verify`, wired as runbook/cli.py wires them."""
    top = argparse.ArgumentParser(prog="runbook")
    sub = top.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report")
    cli.register_report_args(report)
    report.set_defaults(handler=cli.report_many)
    cli.register_export_args(sub.add_parser("export"))
    audit = sub.add_parser("audit").add_subparsers(dest="audit_command", required=True)
    cli.register_audit_sign_args(audit.add_parser("sign"))
    verify = audit.add_parser("verify")
    verify.add_argument("journal", type=Path)
    verify.add_argument("--head")
    cli.register_audit_verify_args(verify)
    verify.set_defaults(handler=cli.audit_verify_signature)
    return top


@dataclass
class Result:
    code: int
    out: str
    err: str


def call(*args: str | Path) -> Result:
    """Run a handler in-process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        parsed = parser().parse_args([str(a) for a in args])
        code = parsed.handler(parsed)
    return Result(code, out.getvalue(), err.getvalue())


def copy_fixtures(where: Path) -> Path:
    """A private copy of the fixture journals (tests that change files use it)."""
    target = where / "journals"
    shutil.copytree(JOURNALS, target)
    return target


def write(path: Path, entries: list[tuple[str, dict[str, Any]]]) -> Path:
    """A journal written by the real Journal class (real hashing, redaction, fsync)."""
    with Journal(path, Redactor()) as journal:
        for event, data in entries:
            journal.append(event, data)
    return path


def started(
    host: str = "host-a",
    target: str = "/srv/app",
    operator: str = "ana",
    mode: str = "live",
    version: str = "0.1.0",
    playbook: str = "pb",
) -> tuple[str, dict[str, Any]]:
    return (
        "run_started",
        {
            "playbook": {
                "id": playbook,
                "title": "A playbook",
                "version": "1",
                "sha256": "ab" * 32,
            },
            "target": target,
            "mode": mode,
            "operator": operator,
            "host": host,
            "tool_version": version,
        },
    )


def finished(outcome: str = "completed") -> tuple[str, dict[str, Any]]:
    return ("run_finished", {"outcome": outcome, "reason": "", "steps": {}})


def step(step_id: str, outcome: str, summary: str = "") -> list[tuple[str, dict[str, Any]]]:
    return [
        ("step_started", {"step": step_id, "fingerprint": "f"}),
        ("step_finished", {"step": step_id, "outcome": outcome, "summary": summary}),
    ]


def item(step_id: str, item_id: str, answer: str, by: str = "ana") -> tuple[str, dict[str, Any]]:
    return (
        "manual_item",
        {"step": step_id, "item": item_id, "text": f"do {item_id}", "answer": answer, "by": by},
    )


def ssh_key(where: Path, principal: str) -> tuple[Path, str]:
    """A fresh ed25519 key (no passphrase) and its allowed_signers line."""
    where.mkdir(parents=True, exist_ok=True)
    key = where / principal.split("@")[0]
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)],
        check=True,
        timeout=30,
    )
    return key, f"{principal} {key.with_suffix('.pub').read_text().strip()}\n"


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    with contextlib.chdir(path):
        yield
