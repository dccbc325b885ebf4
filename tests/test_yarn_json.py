"""yarn 6 (zpm) writes yarn.lock as JSON: not read yet, so never clean, and its evidence is kept."""

from __future__ import annotations

import json
from pathlib import Path

from runbook.playbook import load_playbook
from steps.npm.badset import BadSet
from steps.scan.lockfiles import scan_lockfile
from tests.conftest import BUNDLED

BAD = BadSet(load_playbook(BUNDLED).playbook.incident)


def _lock(resolution: str) -> bytes:
    doc = {
        "__metadata": {"version": 10},
        "axios@npm:^1.14.0": {"resolution": resolution, "checksum": "10c0/abc"},
    }
    return json.dumps(doc, indent=2).encode()


def test_a_json_yarn_lock_is_unknown_with_a_clear_reason(tmp_path: Path) -> None:
    findings = list(scan_lockfile(tmp_path / "yarn.lock", _lock("axios@npm:1.14.0"), BAD))
    assert [f.severity for f in findings] == ["unknown"]
    assert "JSON (the yarn 6 format)" in findings[0].message


def test_a_json_yarn_lock_resolving_a_bad_version_keeps_the_evidence(tmp_path: Path) -> None:
    findings = list(scan_lockfile(tmp_path / "yarn.lock", _lock("axios@npm:1.14.1"), BAD))
    severities = sorted(f.severity for f in findings)
    assert severities == ["compromised", "unknown"], findings
    [bad] = [f for f in findings if f.severity == "compromised"]
    assert (bad.package, bad.version, bad.line) == ("axios", "1.14.1", 6)  # the "resolution" line
