"""Scan results as a table grouped by severity, as `runbook.scan/v1` JSON, or as SARIF 2.1.0.

Paths, names and messages come from the scanned tree: the table shows them through
`runbook.termsafe.printable` (no escape sequence reaches the terminal); JSON and SARIF escape them
by their own rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runbook import __version__
from runbook.step import Finding
from runbook.termsafe import printable
from steps.scan import ScanResult, Unchecked

SCHEMA = "runbook.scan/v1"
HEADINGS = {
    "compromised": "COMPROMISED: a bad version or the malware itself was found",
    "at-risk": "AT RISK: a spec admits a bad version, or an indicator matched",
    "unknown": "UNKNOWN: could not be read or judged, so the scan is incomplete; check by hand",
    "info": "INFO",
}
SARIF_LEVEL = {"compromised": "error", "at-risk": "warning", "unknown": "note", "info": "note"}
SECURITY_SEVERITY = {"compromised": "9.8", "at-risk": "7.5", "unknown": "4.0", "info": "1.0"}


def finding_dict(finding: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": finding.kind,
        "severity": finding.severity,
        "path": finding.path,
        "package": finding.package,
        "version": finding.version,
        "message": finding.message,
    }
    if finding.line is not None:
        data["line"] = finding.line
    if finding.via is not None:
        data["via"] = finding.via
    return data


def to_json(result: ScanResult) -> str:
    return (
        json.dumps(
            {
                "schema": SCHEMA,
                "targets": result.targets,
                "affected": result.affected,
                "unchecked": [{"path": u.path, "reason": u.reason} for u in result.unchecked],
                "findings": [finding_dict(f) for f in result.findings],
            },
            indent=2,
        )
        + "\n"
    )


def _where(finding: Finding) -> str:
    where = printable(finding.path or "")
    return f"{where}:{finding.line}" if finding.line else where


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


def _places(unchecked: list[Unchecked], shown: int = 3) -> str:
    names = [printable(u.path) for u in unchecked[:shown]]
    more = f" and {len(unchecked) - shown} more" if len(unchecked) > shown else ""
    return ", ".join(names) + more


def verdict_line(result: ScanResult) -> str:
    """The last line of the table: AFFECTED, INCOMPLETE (could not check everything) or clean."""
    counts = ", ".join(
        f"{sum(1 for f in result.findings if f.severity == s)} {s}"
        for s in HEADINGS
        if any(f.severity == s for f in result.findings)
    )
    unchecked = result.unchecked
    if result.affected:
        also = f"; also could not check {_files(len(unchecked))}" if unchecked else ""
        return f"AFFECTED: {counts}{also}"
    if result.affected is None:
        return (
            f"INCOMPLETE: could not check {_files(len(unchecked))} ({_places(unchecked)}); "
            f"nothing compromised or at risk in the rest: {counts}"
        )
    return f"not affected (nothing compromised or at risk): {counts}"


def to_table(result: ScanResult) -> str:
    if not result.findings:
        targets = ", ".join(printable(t) for t in result.targets) or "nothing"
        return f"No traces found in {targets}.\n"
    lines = []
    for severity, heading in HEADINGS.items():
        group = [f for f in result.findings if f.severity == severity]
        if not group:
            continue
        lines.append(f"{heading} ({len(group)})")
        for f in group:
            package = f"{f.package}@{f.version}" if f.package and f.version else (f.package or "")
            lines.append(f"  {f.kind:<9} {printable(package):<28} {_where(f)}")
            lines.append(f"  {'':<9} {printable(f.message)}")
        lines.append("")
    lines.append(verdict_line(result))
    return "\n".join(lines) + "\n"


def _uri(path: str, bases: list[Path]) -> tuple[str, str | None]:
    absolute = Path(path)
    for base in bases:
        try:
            return absolute.relative_to(base).as_posix(), "SCANROOT"
        except ValueError:
            continue
    return absolute.as_uri() if absolute.is_absolute() else absolute.as_posix(), None


def _notification(unchecked: Unchecked, bases: list[Path]) -> dict[str, Any]:
    uri, base = _uri(unchecked.path or ".", bases)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    return {
        "level": "warning",
        "message": {"text": f"could not check: {unchecked.reason}"},
        "locations": [{"physicalLocation": {"artifactLocation": artifact}}],
    }


def to_sarif(result: ScanResult) -> str:
    bases = [Path(os.path.realpath(t)) for t in result.targets if not t.startswith("host:")]
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in result.findings:
        rule_id = f"runbook/{f.kind}-{f.severity}"
        if rule_id not in rules:
            rules[rule_id] = {
                "id": rule_id,
                "name": f"{f.kind.title()}{f.severity.title().replace('-', '')}",
                "shortDescription": {"text": f"{f.severity} {f.kind} finding"},
                "fullDescription": {"text": HEADINGS[f.severity]},
                "help": {"text": "Run `runbook` with the incident's playbook to remediate."},
                "defaultConfiguration": {"level": SARIF_LEVEL[f.severity]},
                "properties": {
                    "tags": ["security", "supply-chain", f.kind],
                    "security-severity": SECURITY_SEVERITY[f.severity],
                },
            }
        uri, base = _uri(f.path or ".", bases[:1])
        artifact: dict[str, Any] = {"uri": uri}
        if base:
            artifact["uriBaseId"] = base
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if f.line:
            physical["region"] = {"startLine": f.line}
        results.append(
            {
                "ruleId": rule_id,
                "level": SARIF_LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {
                    "runbookFinding/v1": f"{f.kind}:{uri}:{f.package}@{f.version}"
                },
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "runbook",
                "version": __version__,
                "rules": list(rules.values()),
            }
        },
        "results": results,
        # what could not be checked, where SARIF readers look for a tool's own trouble
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    _notification(u, bases[:1]) for u in result.unchecked
                ],
            }
        ],
    }
    if bases:
        run["originalUriBaseIds"] = {"SCANROOT": {"uri": bases[0].as_uri() + "/"}}
    return (
        json.dumps(
            {
                "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
                "version": "2.1.0",
                "runs": [run],
            },
            indent=2,
        )
        + "\n"
    )


RENDERERS = {"table": to_table, "json": to_json, "sarif": to_sarif}
