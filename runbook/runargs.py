"""The `runbook run` arguments both faces (headless and the app) turn into runner input."""

from __future__ import annotations

import argparse
import re

_IDENTITY = re.compile(r"\s*([^<>]*?)\s*<([^<>\s]+)>\s*")


def parse_skips(values: list[str]) -> dict[str, str]:
    """`--skip STEP_ID=REASON` values by step id; a missing reason is a ValueError."""
    skips = {}
    for value in values:
        step_id, sep, reason = value.partition("=")
        if not sep or not reason.strip():
            raise ValueError(f"--skip {value!r}: give a reason, as STEP_ID=REASON")
        skips[step_id] = reason.strip()
    return skips


def git_author(value: str) -> str:
    """`--git-author "Name <email>"`, checked when the command line is parsed."""
    match = _IDENTITY.fullmatch(value)
    if not match or not match.group(1):
        raise argparse.ArgumentTypeError(f'expected "Name <email>", got {value!r}')
    return f"{match.group(1)} <{match.group(2)}>"


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The command-line options steps may read through `StepContext.options`."""
    return {
        "allow_insecure_keyring": bool(getattr(args, "allow_insecure_keyring", False)),
        "aws_endpoint_url": getattr(args, "aws_endpoint_url", None),
        "all_users": bool(getattr(args, "all_users", False)),
        "git_author": getattr(args, "git_author", None),
        "no_commit": bool(getattr(args, "no_commit", False)),
    }
