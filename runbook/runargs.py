"""The `runbook run` arguments both faces (headless and the app) turn into runner input."""

from __future__ import annotations

import argparse


def parse_skips(values: list[str]) -> dict[str, str]:
    """`--skip STEP_ID=REASON` values by step id; a missing reason is a ValueError."""
    skips = {}
    for value in values:
        step_id, sep, reason = value.partition("=")
        if not sep or not reason.strip():
            raise ValueError(f"--skip {value!r}: give a reason, as STEP_ID=REASON")
        skips[step_id] = reason.strip()
    return skips


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The command-line options steps may read through `StepContext.options`."""
    return {
        "allow_insecure_keyring": bool(getattr(args, "allow_insecure_keyring", False)),
        "aws_endpoint_url": getattr(args, "aws_endpoint_url", None),
        "all_users": bool(getattr(args, "all_users", False)),
    }
