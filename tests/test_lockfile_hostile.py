"""Lockfiles that real package managers write in unusual ways, and hostile or malformed ones.

Every input ends as findings: the formats npm, pnpm and yarn really write are read, and anything
malformed is an `unknown` finding with its line (plus the `compromised` ones its bytes prove),
never a traceback, a hang, a memory blow-up or silence.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LockfileError, parse_lockfile
from steps.npm.lockfiles.graph import MAX_JSON_DEPTH, compose_yaml, load_json, load_yaml
from steps.scan.lockfiles import scan_lockfile
from tests.conftest import BUNDLED

BAD = BadSet(load_playbook(BUNDLED).playbook.incident)
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def scan(tmp_path: Path, name: str, content: str | bytes, project: str = "proj") -> list[Finding]:
    path = tmp_path / project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return list(scan_lockfile(path, path.read_bytes(), BAD))


def summary(findings: list[Finding]) -> list[tuple]:
    return sorted(
        (f.severity, f.line, f.package, f.version, tuple(f.via) if f.via else None)
        for f in findings
    )


# --- pnpm 11: two YAML documents ----------------------------------------------------------------

PNPM11 = """\
---
lockfileVersion: '9.0'
importers:
  .:
    configDependencies: {}
    packageManagerDependencies:
      pnpm: {specifier: 11.10.0, version: 11.10.0}
packages:
  pnpm@11.10.0: {resolution: {integrity: sha512-AAAA}}
snapshots:
  pnpm@11.10.0: {}
---
lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      axios: {specifier: ^1.14.0, version: 1.14.1}
packages:
  axios@1.14.1: {resolution: {integrity: sha512-AAAA}}
snapshots:
  axios@1.14.1: {}
"""


def test_pnpm11_reads_both_documents(tmp_path: Path):
    findings = scan(tmp_path, "pnpm-lock.yaml", PNPM11)
    assert summary(findings) == [("compromised", 19, "axios", "1.14.1", ("proj",))]
    assert findings[0].message == "pnpm v9.0: axios@1.14.1 resolved as a direct dependency of proj"
    graph = parse_lockfile(tmp_path / "proj" / "pnpm-lock.yaml", PNPM11.encode())
    pnpm = next(n for n in graph.nodes.values() if n.name == "pnpm")
    assert (pnpm.version, pnpm.line) == ("11.10.0", 9)  # pnpm itself is installed too
    assert graph.via(pnpm.key) == ["proj"]


def test_pnpm11_bad_version_in_the_first_document(tmp_path: Path):
    config_dep = PNPM11.replace(
        "configDependencies: {}",
        "configDependencies:\n      axios: {specifier: 0.30.4, version: 0.30.4}",
    ).replace(
        "  pnpm@11.10.0: {resolution: {integrity: sha512-AAAA}}\n",
        "  pnpm@11.10.0: {resolution: {integrity: sha512-AAAA}}\n"
        "  axios@0.30.4: {resolution: {integrity: sha512-BBBB}}\n",
        1,
    )
    assert summary(scan(tmp_path, "pnpm-lock.yaml", config_dep)) == [
        ("compromised", 11, "axios", "0.30.4", ("proj",)),
        ("compromised", 21, "axios", "1.14.1", ("proj",)),
    ]


def test_pnpm11_same_package_in_both_documents_is_found_twice(tmp_path: Path):
    both = PNPM11.replace("pnpm@11.10.0", "axios@1.14.1").replace(
        "pnpm: {specifier: 11.10.0, version: 11.10.0}",
        "axios: {specifier: 1.14.1, version: 1.14.1}",
    )
    assert summary(scan(tmp_path, "pnpm-lock.yaml", both)) == [
        ("compromised", 9, "axios", "1.14.1", ("proj",)),
        ("compromised", 19, "axios", "1.14.1", ("proj",)),
    ]


def test_the_real_pnpm11_lockfile_reads_pnpm_and_its_config_dependencies():
    path = FIXTURES / "realworld/pnpm-v9.0-two-documents/symlink-dir/pnpm-lock.yaml"
    if not path.exists():
        pytest.fail(f"{path} is missing: the real-world corpus holds it")
    graph = parse_lockfile(path, path.read_bytes())
    names = {n.name: n for n in graph.nodes.values()}
    assert names["pnpm"].version.startswith("11.")
    assert graph.via(names["@pnpm/exe"].key) == ["symlink-dir"]
    lines = path.read_text().split("\n")
    for node in graph.nodes.values():
        assert node.name in lines[node.line - 1], node


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("---\nlockfileVersion: '9.0'\npackages:\n  axios@1.14.1: {}\n", 4),
        ("%YAML 1.2\n---\nlockfileVersion: '9.0'\npackages:\n  axios@1.14.1: {}\n...\n", 5),
        ("# pnpm\n---\n---\nlockfileVersion: '9.0'\npackages:\n  axios@1.14.1: {}\n---\n", 6),
    ],
)
def test_document_markers_and_directives(tmp_path: Path, text: str, line: int):
    assert summary(scan(tmp_path, "pnpm-lock.yaml", text)) == [
        ("compromised", line, "axios", "1.14.1", None)
    ]


def test_yarn_berry_with_two_documents_is_unknown_not_half_read(tmp_path: Path):
    text = (
        '__metadata:\n  version: 8\n---\n"axios@npm:^1.14.0":\n  resolution: "axios@npm:1.14.1"\n'
    )
    findings = scan(tmp_path, "yarn.lock", text)
    assert summary(findings) == [
        ("compromised", 5, "axios", "1.14.1", None),
        ("unknown", 3, None, None, None),
    ]
    assert "more than one YAML document" in findings[-1].message


# --- npm 6 `"resolved": false`, npm < 5 shrinkwraps ---------------------------------------------

NPM6 = """\
{"name":"x","version":"1.0.0","lockfileVersion":1,"requires":true,"dependencies":{
 "axios":{"version":"1.14.1","resolved":"https://registry.example.test/axios/-/axios-1.14.1.tgz","integrity":"sha512-AAAA"},
 "string-width":{"version":"1.0.2","resolved":false,"integrity":"sha1-EYvfW4zcUaKn5w0hHgfisLmxB9M="}}}
"""


def test_npm6_resolved_false_is_accepted(tmp_path: Path):
    assert summary(scan(tmp_path, "package-lock.json", NPM6)) == [
        ("compromised", 2, "axios", "1.14.1", ("x",))
    ]
    graph = parse_lockfile(tmp_path / "proj" / "package-lock.json", NPM6.encode())
    assert graph.nodes["node_modules/string-width"].version == "1.0.2"


LEGACY_SHRINKWRAP = {
    "name": "app",
    "version": "1.0.0",
    "dependencies": {
        "http-wrapper": {
            "version": "2.1.0",
            "from": "http-wrapper@^2.0.0",
            "resolved": "https://registry.example.test/http-wrapper/-/http-wrapper-2.1.0.tgz",
            "dependencies": {
                "axios": {
                    "version": "1.14.1",
                    "from": "axios@^1.14.0",
                    "resolved": "https://registry.example.test/axios/-/axios-1.14.1.tgz",
                }
            },
        },
        "left-pad": {"version": "1.3.0", "from": "left-pad@^1.0.0"},
    },
}


def test_legacy_shrinkwrap_nesting_gives_the_path(tmp_path: Path):
    text = json.dumps(LEGACY_SHRINKWRAP, indent=2)
    findings = scan(tmp_path, "npm-shrinkwrap.json", text)
    assert summary(findings) == [
        ("compromised", 10, "axios", "1.14.1", ("app", "http-wrapper@2.1.0"))
    ]
    manifest = {"dependencies": {"http-wrapper": "^2.0.0", "left-pad": "^1.0.0"}}
    (tmp_path / "proj" / "package.json").write_text(json.dumps(manifest))
    again = scan(tmp_path, "npm-shrinkwrap.json", text)
    assert again[0].via == ["app", "http-wrapper@2.1.0"]


# --- malformed types: unknown, with the line ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            '{\n  "lockfileVersion": 3,\n  "packages": ["axios", "1.14.1"]\n}\n',
            3,
            "'packages' is a list, not an object",
        ),
        (
            '{\n  "lockfileVersion": 3,\n  "packages": {\n    "node_modules/axios": {\n'
            '      "version": 1.14\n    }\n  }\n}\n',
            4,
            "'version' is a float, not a string",
        ),
        (
            '{\n  "lockfileVersion": 3,\n  "packages": {\n    "node_modules/axios": {\n'
            '      "version": NaN\n    }\n  }\n}\n',
            5,
            "NaN is not a JSON value",
        ),
        (
            '{\n  "lockfileVersion": 1,\n  "dependencies": {\n    "axios": ["1.14.1"]\n  }\n}\n',
            4,
            "is a list, not an object",
        ),
        ('{\n  "lockfileVersion": 4,\n  "packages": {}\n}\n', 2, "lockfileVersion 4"),
    ],
)
def test_malformed_npm_lockfiles_are_unknown_with_their_line(
    tmp_path: Path, text: str, line: int, reason: str
):
    findings = scan(tmp_path, "package-lock.json", text)
    unknown = [f for f in findings if f.severity == "unknown"]
    assert len(unknown) == 1, findings
    assert unknown[0].line == line
    assert reason in unknown[0].message
    assert "Traceback" not in unknown[0].message


def test_malformed_lockfile_with_bad_bytes_keeps_the_evidence(tmp_path: Path):
    text = (
        '{\n  "lockfileVersion": 3,\n  "packages": {\n    "node_modules/axios": {\n'
        '      "version": "1.14.1",\n      "license": NaN\n    }\n  }\n}\n'
    )
    findings = scan(tmp_path, "package-lock.json", text)
    assert summary(findings) == [
        ("compromised", 5, "axios", "1.14.1", None),
        ("unknown", 6, None, None, None),
    ]


# --- encodings ----------------------------------------------------------------------------------

V3 = (
    '{\n  "name": "x",\n  "lockfileVersion": 3,\n  "packages": {\n    "": {\n'
    '      "dependencies": {"axios": "^1.14.0"}\n    },\n    "node_modules/axios": {\n'
    '      "version": "1.14.1"\n    }\n  }\n}\n'
)


@pytest.mark.parametrize(
    "encoded",
    [
        ("\ufeff" + V3).encode("utf-16-le"),
        ("\ufeff" + V3).encode("utf-16-be"),
        ("\ufeff" + V3).encode("utf-32-le"),
        ("\ufeff" + V3).encode("utf-32-be"),
        V3.encode("utf-16-le"),  # no BOM: told apart by its zero bytes, as RFC 4627 does
        V3.encode("utf-16-be"),
        ("\ufeff" + V3).encode("utf-8"),
    ],
)
def test_utf16_and_utf32_lockfiles_are_read(tmp_path: Path, encoded: bytes):
    assert summary(scan(tmp_path, "package-lock.json", encoded)) == [
        ("compromised", 8, "axios", "1.14.1", ("x",))
    ]


def test_utf16_yarn_lock_is_read(tmp_path: Path):
    text = '\ufeff# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n'
    assert summary(scan(tmp_path, "yarn.lock", text.encode("utf-16-le"))) == [
        ("compromised", 3, "axios", "1.14.1", ("proj",))
    ]


def test_broken_utf16_is_unknown_with_its_line(tmp_path: Path):
    data = ("\ufeff" + V3).encode("utf-16-le")
    cut = data.index('"name"'.encode("utf-16-le"))
    broken = data[:cut] + b"\x00\xdc" + data[cut:]  # a lone low surrogate code unit
    findings = scan(tmp_path, "package-lock.json", broken)
    assert summary(findings) == [
        ("compromised", 9, "axios", "1.14.1", None),
        ("unknown", 2, None, None, None),
    ]
    assert "not valid UTF-16-LE text" in findings[-1].message


# --- depth --------------------------------------------------------------------------------------


def test_json_nesting_every_loader_stage():
    """orjson stops at 1024 levels, `json` at Python's recursion limit, the iterative parser at
    MAX_JSON_DEPTH: each stage hands over to the next, and past the last one it is an error."""
    import orjson

    for depth in (1_500, 5_000, MAX_JSON_DEPTH - 1):
        text = "[" * depth + "]" * depth
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
        with pytest.raises(RecursionError):
            json.loads(text)
        value = load_json(text, "x")
        for _ in range(depth - 1):
            (value,) = value
        assert value == []
    for text, column in (
        ("[" * 100_000 + "]" * 100_000, MAX_JSON_DEPTH + 1),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, 5 * MAX_JSON_DEPTH + 1),
    ):
        with pytest.raises(LockfileError) as info:
            load_json(text, "package-lock.json")
        assert info.value.reason == (
            f"package-lock.json is nested more than {MAX_JSON_DEPTH} levels deep"
        )
        assert (info.value.line, info.value.column) == (1, column)


@pytest.mark.parametrize("name", ["package-lock.json", "bun.lock"])
def test_100k_deep_lockfile_is_unknown_and_keeps_its_evidence(tmp_path: Path, name: str):
    entry = (
        '"node_modules/axios": {"version": "1.14.1"}'
        if name == "package-lock.json"
        else '"axios": ["axios@1.14.1", "", {}, "sha512-A"]'
    )
    deep = "[" * 100_000 + "]" * 100_000
    text = f'{{"lockfileVersion": 3,\n"packages": {{{entry}}},\n"x": {deep}}}\n'
    findings = scan(tmp_path, name, text)
    assert summary(findings) == [
        ("compromised", 2, "axios", "1.14.1", None),
        ("unknown", 3, None, None, None),
    ]
    assert "nested more than" in findings[-1].message


def test_100k_deep_files_through_the_cli(run_cli, tmp_path: Path):
    """The CLI answers with its JSON document (it used to die with a RecursionError)."""
    deep = "[" * 100_000 + "]" * 100_000
    project = tmp_path / "deep"
    project.mkdir()
    (project / "package.json").write_text(
        '{"dependencies": {"axios": "1.14.0"},\n"x": ' + deep + "}\n"
    )
    (project / "package-lock.json").write_text(
        '{"lockfileVersion": 3, "packages": {"node_modules/axios": {"version": "1.14.0"}},\n'
        '"x": ' + deep + "}\n"
    )
    result = run_cli("scan", project, "--format", "json", timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    found = {(Path(f["path"]).name, f["severity"], f["line"]) for f in report["findings"]}
    assert found == {("package.json", "unknown", 2), ("package-lock.json", "unknown", 2)}


# --- YAML anchors and aliases (billion laughs) --------------------------------------------------


def _bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n", prev


def bomb_files() -> dict[str, str]:
    body, last = _bomb()
    return {
        "pnpm-lock.yaml": f"lockfileVersion: '9.0'\n{body}packages:\n"
        f"  axios@1.14.1: {{x: *{last}}}\n",
        "yarn.lock": f"__metadata:\n  version: 8\n{body}"
        f'"axios@npm:^1.14.0":\n  resolution: "axios@npm:1.14.1"\n  x: *{last}\n',
    }


ISOLATED = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from runbook.playbook import load_playbook
from steps.npm.badset import BadSet
from steps.scan.lockfiles import scan_lockfile
from steps.scan.manifests import scan_manifest
from tests.conftest import BUNDLED
bad = BadSet(load_playbook(BUNDLED).playbook.incident)
path = Path(sys.argv[1])
scanner = scan_manifest if path.name == "package.json" else scan_lockfile
start = time.perf_counter()
findings = [f.model_dump() for f in scanner(path, path.read_bytes(), bad)]
seconds = time.perf_counter() - start
# VmHWM: this program's peak (ru_maxrss would keep the peak of the process that forked it)
status = Path("/proc/self/status")
lines = status.read_text().splitlines() if status.exists() else []
hwm = [s for s in lines if s.startswith("VmHWM:")]
if hwm:
    peak = int(hwm[0].split()[1]) // 1024
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({{"findings": findings, "seconds": seconds, "peak_mb": peak}}))
"""


def run_isolated(path: Path, timeout: float = 20) -> dict:
    """Scan one file in a fresh interpreter under a wall-clock limit; its findings, the time the
    scan took and the process's peak memory."""
    result = subprocess.run(
        [sys.executable, "-c", ISOLATED.format(root=str(ROOT)), str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", sorted(bomb_files()))
def test_yaml_bomb_is_refused_before_it_expands(tmp_path: Path, name: str):
    text = bomb_files()[name]
    assert len(text) < 1500
    path = tmp_path / "proj" / name
    path.parent.mkdir()
    path.write_text(text)
    out = run_isolated(path)
    assert out["seconds"] < 1 and out["peak_mb"] < 200, out
    unknown = [f for f in out["findings"] if f["severity"] == "unknown"]
    assert len(unknown) == 1
    line = 2 if name == "pnpm-lock.yaml" else 3
    assert unknown[0]["line"] == line
    assert f"{name}:{line}:4: YAML anchor '&a' refused" in unknown[0]["message"]
    [evidence] = [f for f in out["findings"] if f["severity"] == "compromised"]
    assert (evidence["package"], evidence["version"]) == ("axios", "1.14.1")


def test_a_single_alias_is_refused_with_its_place():
    with pytest.raises(LockfileError) as info:
        load_yaml("a: {x: 1}\nb: [1, *ref]\n", "pnpm-lock.yaml", 10)
    assert (info.value.line, info.value.column) == (12, 8)
    assert info.value.reason.startswith("pnpm-lock.yaml:12:8: YAML alias '*ref' refused")


def test_event_composer_builds_what_pyyaml_builds():
    import yaml

    sources = [*FIXTURES.rglob("*.yaml"), *FIXTURES.rglob("*.v2.lock")]
    sources.append(FIXTURES / "lockfiles" / "yarn-berry" / "yarn.lock")
    checked = 0
    for source in sources:
        text = source.read_text()
        if "\n---" in text or text.startswith("---"):
            continue  # several documents: yaml.load refuses them
        assert compose_yaml(text, source.name) == yaml.load(text, Loader=yaml.CBaseLoader), source
        checked += 1
    assert checked >= 40
    for tricky in ("a: |\n  text\n", "- 1\n- {b: [c, 'd']}\n", "? complex\n: key\n", "", "x\n"):
        assert compose_yaml(tricky, "t") == yaml.load(tricky, Loader=yaml.CBaseLoader), tricky


# --- linear time and memory on long tokens ------------------------------------------------------


def test_yarn_v1_twenty_megabyte_token(tmp_path: Path):
    path = tmp_path / "proj" / "yarn.lock"
    path.parent.mkdir()
    token = '"' + "a" * 20_000_000  # an unterminated quoted string: 2.5 GB through the old regex
    path.write_text(
        '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n'
        f'  resolved "https://registry.example.test/axios/-/axios-1.14.1.tgz"\n'
        f"  integrity {token}\n"
    )
    out = run_isolated(path)
    assert out["peak_mb"] < 400, out
    # yarn refuses an unclosed quote: unknown, with the evidence of the lines above it
    assert [(f["severity"], f["line"]) for f in out["findings"]] == [
        ("compromised", 4),
        ("unknown", 6),
    ]


def test_bun_lock_long_string_and_unclosed_comments(tmp_path: Path):
    path = tmp_path / "proj" / "bun.lock"
    path.parent.mkdir()
    junk = "/*" + " /*" * 200_000  # each `/*` was scanned to the end of the file: quadratic
    escapes = "\\\\" * 2_000_000  # a long string made of escapes (JSON `\\`)
    path.write_text(
        '{"lockfileVersion": 1, "workspaces": {"": {"dependencies": {"axios": "^1.14.0"}}},\n'
        '"packages": {"axios": ["axios@1.14.1", "", {}, "sha512-' + "A" * 10_000_000 + '"]},\n'
        '"x": "' + escapes + '"}\n' + junk
    )
    out = run_isolated(path)
    assert out["peak_mb"] < 400, out
    assert [(f["severity"], f["line"]) for f in out["findings"]] == [("compromised", 2)]


# --- lone surrogates ----------------------------------------------------------------------------


def test_lone_surrogate_escapes_are_carried_not_raised(tmp_path: Path):
    text = (
        '{"name": "app\\ud800", "lockfileVersion": 3, "packages": {\n'
        '"": {"dependencies": {"axios": "^1.14.0"}},\n'
        '"node_modules/axios": {"version": "1.14.1"},\n'
        '"node_modules/\\udfff": {"version": "1.0.0"}}}\n'
    )
    findings = scan(tmp_path, "package-lock.json", text)
    assert summary(findings) == [("compromised", 3, "axios", "1.14.1", ("app\ud800",))]
    assert "app\ud800" in findings[0].message
    broken = scan(tmp_path, "package-lock.json", text.replace('"version": "1.0.0"', "NaN"))
    assert summary(broken) == [
        ("compromised", 3, "axios", "1.14.1", None),
        ("unknown", 4, None, None, None),
    ]
