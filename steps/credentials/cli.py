"""`runbook secrets`: list the credentials a project (and with `--host`, this machine) holds,
redacted, with how each gets rotated and where to revoke it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steps.credentials.vault import Vault


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `secrets` subcommand (called by the CLI through the `runbook.commands` group)."""
    parser = sub.add_parser(
        "secrets",
        help="list credentials this machine holds (redacted)",
        description=(
            "Lists credentials in .env files, npmrc and .yarnrc.yml files under PATH; with --host "
            "also HOME's npm, yarn, AWS, gh, git, docker and SSH files, the environment and the "
            "keys runbook stored in the keyring. Values are never shown. Exit codes: 0 done "
            "(finding credentials is not an error), 2 usage error, 3 something could not be "
            "read (listed on stderr): the list may be incomplete."
        ),
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="project directories (default: .)"
    )
    parser.add_argument(
        "--host",
        action="store_true",
        help="also HOME's credential files, the environment and runbook's keyring entries",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from runbook.exitcodes import OK, UNCHECKED, USAGE
    from runbook.redact import Redactor
    from runbook.termsafe import printable
    from steps.credentials.discover import discover
    from steps.credentials.output import RENDERERS

    paths = list(args.paths) or [Path(".")]
    for path in paths:
        if not path.exists():
            print(f"runbook: {printable(path)}: no such file or directory", file=sys.stderr)
            return USAGE
    env = dict(os.environ)
    home = Path(env.get("HOME") or Path.home())
    found = discover(
        targets=[Path(os.path.abspath(p)) for p in paths],  # a link is named as given
        home=home if args.host else None,
        env=env if args.host else None,
        vault=_vault(env) if args.host else None,
    )
    # the renderers only use redacted data; the redactor is a second line of defence
    redactor = Redactor()
    for value in found.secret_values():
        redactor.add_secret(value)
    sys.stdout.write(redactor.text(RENDERERS[args.format](found, home)))
    for where, message in found.problems:
        print(redactor.text(f"runbook: {printable(where)}: {printable(message)}"), file=sys.stderr)
    # a file that could not be read may hold a credential nobody will rotate: never a clean 0
    return UNCHECKED if found.problems else OK


def _vault(env: dict[str, str]) -> Vault | None:
    """runbook's keyring index, read-only; none when no keyring can be opened."""
    from steps.credentials.vault import Vault

    try:
        return Vault.open(env, allow_insecure=True)
    except Exception:
        return None
