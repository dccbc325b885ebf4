"""The host sweep behind the `host_sweep` step: is this machine compromised, or only exposed?

Four parts, each against the playbook's indicators: host files (the scanner's own check, plus the
known sample hashes), running processes, live network connections, and persistence. Under a
mounted disk image (`root`) only files and persistence can be checked; processes and connections
are skipped with a note. Nothing here writes, kills or contacts anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from runbook.models import Indicators
from runbook.step import Finding
from steps.scan.host import home_dirs
from steps.sweep.evidence import AFFECTING, Part
from steps.sweep.files import sweep_files
from steps.sweep.network import Resolver, Targets, sweep_network
from steps.sweep.persistence import sweep_persistence
from steps.sweep.processes import list_processes, sweep_processes

Verdict = Literal["compromised", "incomplete", "clean"]
PARTS = ("files", "processes", "network", "persistence")


@dataclass
class SweepOptions:
    since: datetime  # persistence changed from then on is listed for review
    root: Path | None = None
    parts: tuple[str, ...] = PARTS
    resolve_domains: bool = True
    resolve_timeout: float = 1.5


@dataclass
class SweepResult:
    findings: list[Finding] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        """compromised: any evidence; incomplete: none, but something could not be checked."""
        severities = {f.severity for f in self.findings}
        if severities & AFFECTING:
            return "compromised"
        return "incomplete" if "unknown" in severities else "clean"


def sweep(indicators: Indicators, options: SweepOptions, env: Mapping[str, str]) -> SweepResult:
    """Run the parts asked for; findings are in part order (files, processes, network, ...)."""
    started = time.monotonic()
    root = options.root
    homes = home_dirs(root, env)
    result = SweepResult()
    live = root is None
    resolver = None
    if live and "network" in options.parts and options.resolve_domains:
        resolver = Resolver(Targets.of(indicators.network).domains).start()  # in the background
    procs = list_processes() if live and {"processes", "network"} & set(options.parts) else []
    parts: dict[str, Part] = {}
    if "files" in options.parts:
        parts["files"] = sweep_files(indicators, root, homes, env)
    if "processes" in options.parts:
        if live:
            parts["processes"] = sweep_processes(indicators, homes, env, procs)
        else:
            result.notes.append(f"processes: not checked: {root} is a disk image, not running")
    if "persistence" in options.parts:
        parts["persistence"] = sweep_persistence(indicators, options.since, root, homes, env)
    if "network" in options.parts:
        if live:
            parts["network"] = sweep_network(
                indicators.network, procs, resolver, options.resolve_timeout
            )
        else:
            result.notes.append(f"network: not checked: {root} is a disk image, not running")
    for name, part in parts.items():
        result.findings += part.findings
        result.evidence += part.evidence
        result.notes += part.notes
        result.checked[name] = part.checked
    result.seconds = time.monotonic() - started
    return result
