"""`runbook secrets`: placeholder."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("secrets", help="list credentials this machine holds (redacted)")
    parser.set_defaults(handler=lambda args: 2)
