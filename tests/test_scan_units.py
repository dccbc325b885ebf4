"""Scanner detectors on trees built in tmp_path: manifests, install trees, host, output formats."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from steps.npm.badset import BadSet
from steps.scan import ScanOptions, ScanResult, scan
from steps.scan.host import scan_caches, scan_editors, scan_globals
from steps.scan.installed import scan_node_modules
from steps.scan.manifests import scan_manifest
from steps.scan.output import to_json, to_sarif, to_table
from tests.conftest import BUNDLED

INCIDENT = load_playbook(BUNDLED).playbook.incident
BAD = BadSet(INCIDENT)


def pkg(folder: Path, name: str, version: str, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version, **extra}))
    return folder


def manifest_findings(tmp_path: Path, manifest: dict) -> list:
    path = tmp_path / "package.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return list(scan_manifest(path, path.read_bytes(), BAD))


@pytest.mark.parametrize(
    ("spec", "severity"),
    [
        ("^1.14.0", "at-risk"),
        ("~1.14.0", "at-risk"),
        ("1.x", "at-risk"),
        ("*", "at-risk"),
        (">=1.0.0", "at-risk"),
        ("latest", "at-risk"),
        ("^0.30.0", "at-risk"),
        ("0.30.x", "at-risk"),
        ("1.14.0", None),
        ("~1.13.0", None),
        ("^1.14.2", None),
        ("1.14.10", None),
        ("0.30.3", None),
        ("github:axios/axios", "unknown"),
        ("file:../axios", "unknown"),
        ("https://example.test/axios-1.14.1.tgz", "unknown"),
        ("beta", "unknown"),
    ],
)
def test_manifest_specs(tmp_path, spec, severity):
    findings = manifest_findings(tmp_path, {"dependencies": {"axios": spec}})
    assert [f.severity for f in findings] == ([severity] if severity else [])
    if severity:
        assert findings[0].line == 3
        assert findings[0].version == spec


def test_manifest_traps_are_not_findings(tmp_path):
    findings = manifest_findings(
        tmp_path,
        {
            "description": "we once had axios@1.14.1",
            "dependencies": {"axios-retry": "1.14.1", "magic-string": "^0.30.4"},
        },
    )
    assert findings == []


def test_manifest_groups_aliases_and_overrides(tmp_path):
    findings = manifest_findings(
        tmp_path,
        {
            "devDependencies": {"http-client": "npm:axios@^1.14.0"},
            "peerDependencies": {"axios": "1.x"},
            "optionalDependencies": {"plain-crypto-js": "^4.2.0"},
            "overrides": {"some-lib": {"axios": "^1.14.0"}, "axios": "1.14.0"},
            "resolutions": {"**/axios": "0.30.x"},
            "pnpm": {"overrides": {"foo>axios": "1.14.1"}},
        },
    )
    got = sorted((f.message.split(":")[0], f.package, f.severity) for f in findings)
    assert got == [
        ("devDependencies", "axios", "at-risk"),
        ("optionalDependencies", "plain-crypto-js", "at-risk"),
        ("overrides.some-lib.axios", "axios", "at-risk"),
        ("peerDependencies", "axios", "at-risk"),
        ("pnpm.overrides.foo>axios", "axios", "at-risk"),
        ("resolutions.**/axios", "axios", "at-risk"),
    ]
    alias = next(f for f in findings if f.message.startswith("devDependencies"))
    assert "(alias 'http-client')" in alias.message


def test_broken_manifest_is_unknown_not_a_crash(tmp_path):
    path = tmp_path / "package.json"
    path.write_bytes(b'{"dependencies": {"axios": ')
    [finding] = scan_manifest(path, path.read_bytes(), BAD)
    assert finding.severity == "unknown"
    assert "cannot parse package.json" in finding.message


def test_install_tree_nested_scoped_pnpm_and_self_cleaned_loader(tmp_path):
    nm = tmp_path / "node_modules"
    pkg(nm / "axios", "axios", "1.14.0")
    pkg(nm / "http-wrapper", "http-wrapper", "2.0.0")
    pkg(nm / "http-wrapper" / "node_modules" / "axios", "axios", "1.14.1")
    pkg(nm / "plain-crypto-js", "plain-crypto-js", "4.2.0")  # rewritten by the loader
    pkg(nm / "@scope" / "lib" / "node_modules" / "axios", "axios", "0.30.4")
    pkg(nm / "axios-retry", "axios-retry", "1.14.1")
    pkg(nm / "magic-string", "magic-string", "0.30.4")
    pkg(nm / ".pnpm" / "axios@1.14.1" / "node_modules" / "axios", "axios", "1.14.1")
    pkg(nm / ".pnpm" / "axios@1.14.10" / "node_modules" / "axios", "axios", "1.14.10")
    findings = sorted(scan_node_modules(nm, BAD), key=lambda f: f.path)
    got = [(Path(f.path).relative_to(tmp_path).as_posix(), f.version, f.via) for f in findings]
    assert got == [
        ("node_modules/.pnpm/axios@1.14.1/node_modules/axios", "1.14.1", None),
        ("node_modules/@scope/lib/node_modules/axios", "0.30.4", ["@scope/lib"]),
        ("node_modules/http-wrapper/node_modules/axios", "1.14.1", ["http-wrapper"]),
        ("node_modules/plain-crypto-js", "4.2.0", None),
    ]
    crypto = findings[-1]
    assert crypto.severity == "compromised"
    assert "package.json says 4.2.0; every version of plain-crypto-js is evidence" in crypto.message


def test_install_tree_symlinks_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    pkg(outside / "axios", "axios", "1.14.1")
    nm = tmp_path / "project" / "node_modules"
    nm.mkdir(parents=True)
    (nm / "axios").symlink_to(outside / "axios")
    (nm / "loop").mkdir()
    (nm / "loop" / "node_modules").symlink_to(nm)
    (nm / "web").symlink_to(tmp_path / "project")
    assert list(scan_node_modules(nm, BAD)) == []
    result = scan([tmp_path / "project"], INCIDENT, ScanOptions())
    assert result.findings == []


def test_deep_nesting(tmp_path):
    folder = tmp_path / "node_modules"
    for depth in range(200):
        folder = folder / f"p{depth}" / "node_modules"
    pkg(folder / "axios", "axios", "1.14.1")
    [finding] = scan_node_modules(tmp_path / "node_modules", BAD)
    assert len(finding.via) == 200


def npm_index_line(key: str, integrity: str | None = "sha512-x") -> str:
    body = json.dumps({"key": key, "integrity": integrity, "time": 1})
    return hashlib.sha1(body.encode()).hexdigest() + "\t" + body


def build_home(home: Path) -> None:
    bucket = home / ".npm" / "_cacache" / "index-v5" / "1a" / "2b"
    bucket.mkdir(parents=True)
    (bucket / "c3").write_text(
        "\n".join(
            [
                npm_index_line(
                    "make-fetch-happen:request-cache:https://mirror.corp.test/npm/axios/-/"
                    "axios-1.14.1.tgz"
                ),
                npm_index_line(
                    "make-fetch-happen:request-cache:https://registry.npmjs.org/axios/-/"
                    "axios-1.14.10.tgz"
                ),
                npm_index_line("pacote:tarball:plain-crypto-js@4.2.1"),
                npm_index_line(
                    "make-fetch-happen:request-cache:https://registry.npmjs.org/axios/-/"
                    "axios-0.30.4.tgz"
                ),
                npm_index_line(
                    "make-fetch-happen:request-cache:https://registry.npmjs.org/axios/-/"
                    "axios-0.30.4.tgz",
                    None,
                ),  # deleted again
            ]
        )
        + "\n"
    )
    pkg(home / ".npm/_npx/abc123/node_modules/axios", "axios", "1.14.1")
    (home / ".cache/yarn/v6" / ("npm-axios-0.30.4-" + "a" * 40 + "-integrity")).mkdir(parents=True)
    (home / ".cache/yarn/v6" / ("npm-axios-retry-1.14.1-" + "b" * 40 + "-integrity")).mkdir()
    berry = home / ".yarn/berry/cache"
    berry.mkdir(parents=True)
    (berry / "plain-crypto-js-npm-4.2.1-0123456789-abcdef.zip").write_bytes(b"PK")
    (berry / "axios-npm-1.14.10-0123456789-abcdef.zip").write_bytes(b"PK")
    (home / ".bun/install/cache/axios@1.14.1@@@1").mkdir(parents=True)
    store = home / ".local/share/pnpm/store/v10/index/ab"
    store.mkdir(parents=True)
    (store / "cdef-axios@0.30.4.json").write_text(
        json.dumps({"name": "axios", "version": "0.30.4"})
    )
    pkg(
        home / ".nvm/versions/node/v20.1.0/lib/node_modules/plain-crypto-js",
        "plain-crypto-js",
        "4.2.1",
    )
    pkg(home / ".vscode/extensions/acme.tool-1.0.0/node_modules/axios", "axios", "1.14.1")


def test_host_caches_globals_and_editors(tmp_path):
    home = tmp_path / "home"
    build_home(home)
    env = {"HOME": str(home)}
    findings = [
        *scan_caches(home, env, BAD, True),
        *scan_globals(home, tmp_path, env, BAD),
        *scan_editors(home, BAD),
    ]
    got = sorted(
        (f.kind, f.package, f.version, Path(f.path).relative_to(home).parts[0]) for f in findings
    )
    assert got == [
        ("cache", "axios", "0.30.4", ".cache"),
        ("cache", "axios", "0.30.4", ".local"),
        ("cache", "axios", "1.14.1", ".bun"),
        ("cache", "axios", "1.14.1", ".npm"),
        ("cache", "axios", "1.14.1", ".npm"),
        ("cache", "plain-crypto-js", "4.2.1", ".npm"),
        ("cache", "plain-crypto-js", "4.2.1", ".yarn"),
        ("global", "plain-crypto-js", "4.2.1", ".nvm"),
        ("installed", "axios", "1.14.1", ".vscode"),
    ]
    npm_line = next(f for f in findings if "mirror.corp.test" in f.message)
    assert npm_line.line == 1


def test_npm_cache_location_from_env_and_npmrc(tmp_path):
    home = tmp_path / "home"
    elsewhere = tmp_path / "cache-elsewhere"
    build_home(elsewhere)  # a complete home layout, used only for its .npm folder
    (home).mkdir()
    (home / ".npmrc").write_text(f"cache={elsewhere / '.npm'}\n")
    from_npmrc = list(scan_caches(home, {"HOME": str(home)}, BAD, True))
    from_env = list(scan_caches(tmp_path, {"npm_config_cache": str(elsewhere / ".npm")}, BAD, True))
    assert len([f for f in from_npmrc if "_cacache" in f.path]) == 2
    assert len([f for f in from_env if "_cacache" in f.path]) == 2


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "disk"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp/ld.py").write_text("# harmless stand-in\n")
    ps = root / "Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
    ps.parent.mkdir(parents=True)
    ps.write_bytes(b"MZ powershell stand-in")
    (root / "ProgramData").mkdir()
    (root / "ProgramData/wt.exe").write_bytes(b"MZ powershell stand-in")
    terminal = root / "Users/bob/AppData/Local/Microsoft/WindowsApps/wt.exe"
    terminal.parent.mkdir(parents=True)
    terminal.write_bytes(b"MZ windows terminal")
    (root / "Users/bob/AppData/Local/Temp").mkdir(parents=True)
    (root / "Users/bob/AppData/Local/Temp/6202033.vbs").write_text("' stand-in\n")
    pkg(root / "home/alice/src/app/node_modules/plain-crypto-js", "plain-crypto-js", "4.2.0")
    return root


def test_root_scan_finds_host_artifacts_and_projects_in_every_home(tmp_path):
    root = fake_root(tmp_path)
    result = scan([], INCIDENT, ScanOptions(root=root))
    got = sorted((f.kind, Path(f.path).relative_to(root).as_posix()) for f in result.findings)
    assert got == [
        ("installed", "home/alice/src/app/node_modules/plain-crypto-js"),
        ("ioc", "ProgramData/wt.exe"),
        ("ioc", "Users/bob/AppData/Local/Temp/6202033.vbs"),
        ("ioc", "tmp/ld.py"),
    ]
    homes = [str(root / "home/alice"), str(root / "Users/bob")]
    assert result.targets == [*homes, f"host:{root}"]


def test_wt_exe_with_another_hash_is_not_an_indicator(tmp_path):
    root = fake_root(tmp_path)
    (root / "ProgramData/wt.exe").write_bytes(b"MZ a real windows terminal")
    result = scan([], INCIDENT, ScanOptions(root=root))
    assert all("wt.exe" not in f.path for f in result.findings)


def result_with_everything(tmp_path: Path) -> ScanResult:
    nm = tmp_path / "node_modules"
    pkg(nm / "plain-crypto-js", "plain-crypto-js", "4.2.0")
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"axios": "^1.14.0"}}))
    return scan([tmp_path], INCIDENT, ScanOptions())


def test_json_output_schema(tmp_path):
    data = json.loads(to_json(result_with_everything(tmp_path)))
    assert data["schema"] == "runbook.scan/v1"
    assert data["affected"] is True
    assert data["targets"] == [str(tmp_path)]
    kinds = [(f["kind"], f["severity"]) for f in data["findings"]]
    assert kinds == [("installed", "compromised"), ("manifest", "at-risk")]
    for finding in data["findings"]:
        assert {"kind", "severity", "path", "package", "version", "message"} <= set(finding)


def test_sarif_output_is_well_formed(tmp_path):
    sarif = json.loads(to_sarif(result_with_everything(tmp_path)))
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    for res in run["results"]:
        assert res["ruleId"] in rules
        assert res["level"] in ("error", "warning", "note")
        location = res["locations"][0]["physicalLocation"]
        assert not os.path.isabs(location["artifactLocation"]["uri"])
        assert location["artifactLocation"]["uriBaseId"] == "SCANROOT"
    manifest = next(r for r in run["results"] if r["ruleId"] == "runbook/manifest-at-risk")
    assert manifest["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}


def test_table_groups_by_severity(tmp_path):
    text = to_table(result_with_everything(tmp_path))
    assert text.index("COMPROMISED") < text.index("AT RISK")
    assert text.rstrip().endswith("AFFECTED: 1 compromised, 1 at-risk")


# --- malformed, oddly encoded and hostile manifests ---------------------------------------------


def manifest_bytes_findings(tmp_path: Path, data: bytes) -> list:
    path = tmp_path / "package.json"
    path.write_bytes(data)
    return list(scan_manifest(path, data, BAD))


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('{\n  "name": "x",\n  "dependencies": ["axios"]\n}\n', 3, "'dependencies' is a list"),
        ('{\n  "devDependencies": "axios@^1.14.0"\n}\n', 2, "'devDependencies' is a string"),
        ('{\n  "resolutions": [["axios", "1.14.1"]]\n}\n', 2, "'resolutions' is a list"),
        ('{\n  "pnpm": {\n    "overrides": 5\n  },\n  "x": "axios"\n}\n', 3, "is a number"),
        ('{\n  "dependencies": {\n    "axios": 1.14\n  }\n}\n', 3, "spec of axios is a number"),
        ('{\n  "overrides": {\n    "axios": {".": null}\n  }\n}\n', 3, "spec of axios is null"),
    ],
)
def test_malformed_manifest_is_unknown_with_its_line(tmp_path, text, line, reason):
    [finding] = manifest_bytes_findings(tmp_path, text.encode())
    assert (finding.severity, finding.line) == ("unknown", line)
    assert reason in finding.message


def test_malformed_spec_of_another_package_is_not_a_finding(tmp_path):
    assert manifest_findings(tmp_path, {"dependencies": {"lodash": 4, "axios": "1.14.0"}}) == []


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-8"])
def test_utf16_and_utf32_manifests_are_read(tmp_path, codec):
    text = "\ufeff" + json.dumps({"dependencies": {"axios": "^1.14.0"}}, indent=2) + "\n"
    [finding] = manifest_bytes_findings(tmp_path, text.encode(codec))
    assert (finding.severity, finding.line, finding.version) == ("at-risk", 3, "^1.14.0")


def test_100k_deep_manifest_is_unknown(tmp_path):
    data = b'{"dependencies": {"axios": "^1.14.0"},\n"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    [finding] = manifest_bytes_findings(tmp_path, data)
    assert (finding.severity, finding.line) == ("unknown", 2)
    assert "nested more than 10000 levels deep" in finding.message


def test_deep_overrides_are_walked_without_recursion(tmp_path):
    depth = 4_000
    keys = "".join(f'{{"p{i}": ' for i in range(depth))
    text = (
        '{"dependencies": {"axios": "1.14.0"}, "overrides": '
        + keys
        + '{"axios": "^1.14.0"}'
        + "}" * depth
        + "}"
    )
    [finding] = manifest_bytes_findings(tmp_path, text.encode())
    assert finding.severity == "at-risk"
    assert finding.message.startswith("overrides.p0.p1.p2.")


def test_forty_thousand_character_spec_answers_at_once(run_cli, tmp_path):
    """node-semver needs about a minute for this spec; it is not evaluated, it is unknown."""
    spec = "1" + " " * 40_000 + "x"
    [finding] = manifest_findings(tmp_path, {"dependencies": {"axios": spec}})
    assert finding.severity == "unknown"
    assert "spec too long to evaluate (40002 characters" in finding.message
    assert len(finding.message) < 300 and len(finding.version) <= 1030
    result = run_cli("scan", tmp_path, "--format", "json", timeout=20)
    assert "Traceback" not in result.stderr
    [found] = json.loads(result.stdout)["findings"]
    assert found["severity"] == "unknown"


def test_lone_surrogates_in_a_manifest_are_carried(tmp_path):
    data = b'{"name": "\\ud800", "dependencies": {"axios": "^1.14.0", "\\udfff": "1"}}'
    [finding] = manifest_bytes_findings(tmp_path, data)
    assert finding.severity == "at-risk"
    broken = manifest_bytes_findings(
        tmp_path, b'{"dependencies": {"\\ud800axios": [1]}, "a": "axios"}'
    )
    assert broken == []
