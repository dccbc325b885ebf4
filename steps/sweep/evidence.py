"""What each part of the host sweep hands back: findings for the plan, evidence for the journal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runbook.models import Severity
from runbook.step import Finding

AFFECTING = frozenset({"compromised", "at-risk"})


@dataclass
class Part:
    """The result of one part of the sweep (files, processes, network, persistence)."""

    findings: list[Finding] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0  # how many things were looked at (processes, connections, entries, files)


def severity_of(confidence: str) -> Severity:
    """High-confidence indicators are evidence of compromise; disputed ones put the host at risk."""
    return "compromised" if confidence == "high" else "at-risk"


def iso(timestamp: float | None) -> str | None:
    """A POSIX timestamp as UTC ISO 8601 (seconds), or None."""
    if timestamp is None:
        return None
    try:
        moment = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
