"""The scanner against projects made by the real npm, yarn 1, yarn berry, pnpm and bun."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan
from tests.conftest import BUNDLED

FIXTURES = Path(__file__).parent / "fixtures"
PROJECTS = FIXTURES / "projects"
EXPECTED = json.loads((FIXTURES / "expected-scan.json").read_text())
INCIDENT = load_playbook(BUNDLED).playbook.incident


def normalised(findings, base: Path) -> list[dict]:
    out = []
    for f in findings:
        row = {
            "kind": f.kind,
            "severity": f.severity,
            "path": Path(f.path).relative_to(base).as_posix(),
            "line": f.line,
            "package": f.package,
            "version": f.version,
        }
        if f.kind == "lockfile":
            row["via"] = f.via
        out.append(row)
    return sorted(out, key=json.dumps)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_expected_finding_and_nothing_else(name):
    base = PROJECTS / name
    result = scan([base], INCIDENT, ScanOptions())
    assert normalised(result.findings, base) == sorted(EXPECTED[name], key=json.dumps)
    assert result.affected == bool(EXPECTED[name])


def test_fixtures_cover_every_package_manager():
    formats = {p.name for p in PROJECTS.glob("*/*") if p.is_file()}
    assert {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
    } <= formats


@pytest.mark.parametrize(("name", "code"), [("traps", 0), ("clean", 0), ("npm-alias", 1)])
def test_cli_exit_codes(run_cli, name, code):
    result = run_cli("scan", PROJECTS / name, "--format", "json")
    assert result.returncode == code, result.stderr
    data = json.loads(result.stdout)
    assert data["affected"] is bool(code)


def test_traps_are_never_flagged_even_with_the_host_scan(run_cli, sandbox_env):
    home = Path(sandbox_env["HOME"])
    shutil.copytree(FIXTURES / "npm-cache", home / ".npm")
    result = run_cli("scan", PROJECTS / "traps", "--host", "--format", "json")
    data = json.loads(result.stdout)
    flagged = [(f["path"], f["package"], f["version"]) for f in data["findings"]]
    assert all(
        f"{p}@{v}" not in ("axios@1.14.10", "axios-retry@1.14.1", "magic-string@0.30.4")
        for _, p, v in flagged
    )
    assert not any(path.startswith(str(PROJECTS / "traps")) for path, _, _ in flagged)
    cached = sorted((p, v) for _, p, v in flagged)
    assert cached == [("axios", "0.30.4"), ("axios", "1.14.1"), ("plain-crypto-js", "4.2.1")]


def test_fake_root(run_cli):
    root = FIXTURES / "fake-root"
    result = run_cli("scan", "--root", root, "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    got = sorted(
        (f["kind"], Path(f["path"]).relative_to(root).as_posix(), f["package"], f["version"])
        for f in data["findings"]
        if f["severity"] == "compromised"
    )
    webapp = "home/alice/projects/webapp"
    cache = [p for p in got if p[0] == "cache"]
    assert [(c[2], c[3]) for c in cache] == [("axios", "0.30.4"), ("axios", "1.14.1")]
    assert [g for g in got if g[0] != "cache"] == [
        ("installed", f"{webapp}/node_modules/axios", "axios", "1.14.1"),
        ("installed", f"{webapp}/node_modules/plain-crypto-js", "plain-crypto-js", "4.2.0"),
        ("ioc", "Library/Caches/com.apple.act.mond", None, None),
        ("ioc", "ProgramData/wt.exe", None, None),
        ("ioc", "tmp/ld.py", None, None),
        ("lockfile", f"{webapp}/node_modules/.package-lock.json", "axios", "1.14.1"),
        ("lockfile", f"{webapp}/node_modules/.package-lock.json", "plain-crypto-js", "4.2.1"),
        ("lockfile", f"{webapp}/package-lock.json", "axios", "1.14.1"),
        ("lockfile", f"{webapp}/package-lock.json", "plain-crypto-js", "4.2.1"),
    ]
    assert not any("WindowsApps" in f["path"] for f in data["findings"])


def test_sarif_of_a_real_fixture(run_cli):
    result = run_cli("scan", PROJECTS / "npm-transitive-nested", "--format", "sarif")
    sarif = json.loads(result.stdout)
    [run] = sarif["runs"]
    uris = sorted(
        {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    )
    assert uris == [
        "node_modules/.package-lock.json",
        "node_modules/http-wrapper/node_modules/axios",
        "node_modules/plain-crypto-js",
        "package-lock.json",
    ]
    lock = next(
        r
        for r in run["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "package-lock.json"
        and "axios@1.14.1" in r["message"]["text"]
    )
    assert lock["locations"][0]["physicalLocation"]["region"]["startLine"] == 30
    assert "via npm-transitive-nested > http-wrapper@2.1.0" in lock["message"]["text"]
