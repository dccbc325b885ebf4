"""Host files: the scanner's indicator check (paths per OS, listed sha256, `same_as`), with each
file found also compared to the playbook's known samples (`file_hashes`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runbook.models import Indicators
from runbook.safeio import sha256_regular
from runbook.step import Finding
from steps.scan.host import current_os, scan_indicators
from steps.sweep.evidence import Part

SYSTEMS = ("macos", "linux", "windows")


def known_sample(indicators: Indicators, digest: str) -> str | None:
    """The name of the known sample (`file_hashes`) with this sha256, if any."""
    return next((h.name for h in indicators.file_hashes if h.sha256 == digest), None)


def sweep_files(
    indicators: Indicators, root: Path | None, homes: list[Path], env: Mapping[str, str]
) -> Part:
    """Every host file indicator of the running OS (of every OS under `root`)."""
    part = Part()
    systems = SYSTEMS if root else (current_os(),)
    part.checked = sum(
        1
        for name in systems
        for artifact in getattr(indicators.host_files, name)
        if artifact.type == "file"
    )
    for finding in scan_indicators(indicators, root, homes, env):
        finding, digest = _with_hash(indicators, finding)
        part.findings.append(finding)
        row = {"what": "file", "path": finding.path, "severity": finding.severity}
        if digest:
            row["sha256"] = digest
        part.evidence.append(row)
    return part


def _with_hash(indicators: Indicators, finding: Finding) -> tuple[Finding, str | None]:
    """The finding, its message saying whether the file is one of the known samples."""
    if finding.severity == "unknown" or not finding.path:
        return finding, None
    try:
        digest = sha256_regular(finding.path)
    except OSError as exc:
        message = f"{finding.message}; its sha256 cannot be read: {exc.strerror or exc}"
        return finding.model_copy(update={"message": message}), None
    sample = known_sample(indicators, digest)
    if sample:
        extra = f"; sha256 {digest[:12]}... is the known sample '{sample}'"
    else:
        extra = f"; sha256 {digest[:12]}... is not a known sample (the file itself is evidence)"
    return finding.model_copy(update={"message": finding.message + extra}), digest
