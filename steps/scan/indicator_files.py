"""The file indicators of an incident that are not in installed packages: files written into
repositories (`repo_files`, `runner_names`) and, on the host, the malware's self-hosted runners.
Called by `steps.scan.scan`; it costs nothing for an incident without such indicators. (Payload
files inside installed packages, `package_files`, are looked for by the install tree walk:
`steps.scan.installed.scan_node_modules`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runbook.models import Indicators
from runbook.step import Finding
from steps.scan import repo_files
from steps.scan.runners import scan_runner_configs

if TYPE_CHECKING:
    from steps.scan import ScanOptions


def scan_indicator_files(
    paths: list[Path],
    repos: list[Path],
    indicators: Indicators,
    options: ScanOptions,
    homes: list[Path],
) -> list[Finding]:
    """Repository files (and their history) in the repositories found under `paths` (`repos`,
    from the scan's walk) and in the paths themselves; with the host, runner registrations."""
    findings: list[Finding] = []
    if paths and repo_files.wanted(indicators):
        roots = list(dict.fromkeys([*repos, *(Path(p) for p in paths)]))
        findings += repo_files.scan_repo_files(roots, indicators)
        if options.history:
            findings += repo_files.scan_repo_history(repos, indicators)
    if (options.host or options.root) and indicators.runner_names:
        findings += scan_runner_configs(homes, indicators.runner_names)
    return findings
