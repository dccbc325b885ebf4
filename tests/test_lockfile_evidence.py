"""Evidence in lockfiles that cannot be parsed: what the bytes record is never thrown away.

`find_evidence` reads the text of a broken lockfile for exact name and version pairs; the scanner
reports each one as `compromised` beside the `unknown` parse failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import parse_lockfile
from steps.npm.lockfiles.evidence import find_evidence
from steps.scan.lockfiles import scan_lockfile
from tests.conftest import BUNDLED

BAD = BadSet(load_playbook(BUNDLED).playbook.incident)
HAND = Path(__file__).resolve().parent / "fixtures" / "lockfiles"
HAND_FILES = sorted(
    p.relative_to(HAND).as_posix()
    for p in HAND.rglob("*")
    if p.is_file() and p.name != "package.json"
)
AXIOS = ("axios", "1.14.1")
CRYPTO = ("plain-crypto-js", None)


def evidence(file_name: str, text: str) -> set[tuple[str, str | None]]:
    return {(e.name, e.version) for e in find_evidence(file_name, text, BAD)}


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        # yarn v1: headers, version fields, resolved URLs
        ("yarn.lock", 'axios@^1.14.0:\n  version "1.14.1"\n', {AXIOS}),
        ("yarn.lock", 'axios@^1.14.0, "axios@~1.14.0":\n  version "1.14.1"\n', {AXIOS}),
        ("yarn.lock", 'axios-retry@^1.14.0:\n  version "1.14.1"\n', set()),
        ("yarn.lock", 'axios@^1.14.0:\n  version "1.14.10"\n', set()),
        ("yarn.lock", 'axios@^1.14.0:\n  version "1.14.1-beta.1"\n', set()),
        ("yarn.lock", '"@evil/axios@^1.14.0":\n  version "1.14.1"\n', set()),
        ("yarn.lock", 'x@^1:\n  resolved "https://r.test/axios/-/axios-1.14.1.tgz#ab"\n', {AXIOS}),
        (
            "yarn.lock",
            'x@^1:\n  resolved "https://r.test/axios-retry/-/axios-retry-1.14.1.tgz"\n',
            set(),
        ),
        ("yarn.lock", 'x@^1:\n  resolved "https://r.test/@evil/axios/-/axios-1.14.1.tgz"\n', set()),
        ("yarn.lock", 'x@^1:\n  resolved "https://r.test/axios/-/axios-1.14.10.tgz"\n', set()),
        ("yarn.lock", 'x@^1:\n  dependencies:\n    axios "1.14.1"\n', {AXIOS}),
        ("yarn.lock", 'x@^1:\n  dependencies:\n    axios "^1.14.1"\n', set()),
        ("yarn.lock", '"axios@1.14.1 || ^1.13.0":\n  version "1.13.5"\n', set()),
        ("yarn.lock", 'axios@1.14.1:\n  version "1.14.1"\n', {AXIOS}),
        # yarn berry
        ("yarn.lock", '"axios@npm:^1.14.0":\n  version: 1.14.1\n', {AXIOS}),
        ("yarn.lock", '"h@npm:axios@^1":\n  resolution: "axios@npm:1.14.1"\n', {AXIOS}),
        ("yarn.lock", '"h@npm:axios@^1":\n  version: 1.14.1\n', {AXIOS}),
        ("yarn.lock", '"x@npm:1":\n  resolution: "axios-retry@npm:1.14.1"\n', set()),
        ("yarn.lock", '"x@patch:axios@npm%3A1.14.1#~/p.patch":\n  version: 1.14.1\n', {AXIOS}),
        # pnpm v5, v6, v9
        ("pnpm-lock.yaml", "packages:\n  /axios/1.14.1:\n", {AXIOS}),
        ("pnpm-lock.yaml", "packages:\n  /axios/1.14.1_debug@4.3.4:\n", {AXIOS}),
        ("pnpm-lock.yaml", "packages:\n  /axios/1.14.10:\n", set()),
        ("pnpm-lock.yaml", "packages:\n  /@evil/axios/1.14.1:\n", set()),
        ("pnpm-lock.yaml", "packages:\n  /axios@1.14.1(debug@4.3.4):\n", {AXIOS}),
        ("pnpm-lock.yaml", "packages:\n  magic-string@0.30.4:\n", set()),
        ("pnpm-lock.yaml", "packages:\n  axios@0.30.4:\n", {("axios", "0.30.4")}),
        (
            "pnpm-lock.yaml",
            "importers:\n  .:\n    dependencies:\n      axios:\n        specifier: ^1.14.0\n"
            "        version: 1.14.1\n",
            {AXIOS},
        ),
        (
            "pnpm-lock.yaml",
            "importers:\n  .:\n    dependencies:\n      axios:\n        specifier: 1.14.1\n"
            "        version: 1.14.0\n",
            set(),
        ),
        ("pnpm-lock.yaml", "      axios: {specifier: ^1.14.0, version: 1.14.1}\n", {AXIOS}),
        ("pnpm-lock.yaml", "      axios: {specifier: ^1.14.0, version: 1.14.10}\n", set()),
        ("pnpm-lock.yaml", "    dependencies:\n      axios: 1.14.1_debug@4.3.4\n", {AXIOS}),
        ("pnpm-lock.yaml", "    dependencies:\n      axios: 1.14.1 # pinned\n", {AXIOS}),
        ("pnpm-lock.yaml", "    dependencies:\n      axios: 1.14.1 || 1.13.0\n", set()),
        (
            "pnpm-lock.yaml",
            "  registry.test/x/-/x.tgz:\n    resolution: {tarball: x}\n    name: axios\n"
            "    version: 1.14.1\n",
            {AXIOS},
        ),
        (
            "pnpm-lock.yaml",
            "  registry.test/x/-/x.tgz:\n    name: axios-retry\n    version: 1.14.1\n",
            set(),
        ),
        # npm lockfiles, pretty or minified, complete or cut short
        ("package-lock.json", '{"packages": {"node_modules/axios": {"version": "1.14.1"', {AXIOS}),
        (
            "package-lock.json",
            '{"packages": {"node_modules/a/node_modules/axios": {\n  "version": "1.14.1"}}}',
            {AXIOS},
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/axios-retry": {"version": "1.14.1"}}}',
            set(),
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/@evil/axios": {"version": "1.14.1"}}}',
            set(),
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/axios/node_modules/x": {"version": "1.14.1"}}}',
            set(),
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/http": {"name": "axios", "version": "1.14.1"}}}',
            {AXIOS},
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/http": {"version": "1.14.1", "name": "axios"}}}',
            {AXIOS},
        ),
        (
            "package-lock.json",
            '{"dependencies": {"http": {"version": "npm:axios@1.14.1"}}}',
            {AXIOS},
        ),
        (
            "package-lock.json",
            '{"dependencies": {"axios": {"version": "1.14.1", "x": NaN}}}',
            {AXIOS},
        ),
        (
            "package-lock.json",
            '{"dependencies": {"a": {"requires": {"axios": "1.14.1"}}}}',
            {AXIOS},
        ),
        ("package-lock.json", '{"dependencies": {"a": {"requires": {"axios": "^1.14.1"}}}}', set()),
        (
            "package-lock.json",
            '{"dependencies": {"a": {"requires": {"axios": "1.14.1 - 2"}}}}',
            set(),
        ),
        (
            "package-lock.json",
            '{"packages": {"node_modules/axios": {"version": "1.14.10"}}}',
            set(),
        ),
        ("package-lock.json", '{"description": "axios 1.14.1"}', set()),
        # bun.lock
        ("bun.lock", '{"packages": {"axios": ["axios@1.14.1", "", {}, "sha512-x"]', {AXIOS}),
        ("bun.lock", '{"packages": {"h": ["axios@npm:1.14.1", "", {}, "sha512-x"]', {AXIOS}),
        ("bun.lock", '{"packages": {"axios": ["axios@1.14.10", "", {}, "sha512-x"]', set()),
        ("bun.lock", '{"packages": {"r": ["axios-retry@1.14.1", "", {}, "sha512-x"]', set()),
        # any-version packages: the name alone, as a whole name
        ("yarn.lock", 'plain-crypto-js@^4.2.1:\n  version "4.2.0"\n', {CRYPTO}),
        ("pnpm-lock.yaml", "  plain-crypto-js@4.2.0:\n", {("plain-crypto-js", "4.2.0")}),
        (
            "package-lock.json",
            '{"packages": {"node_modules/plain-crypto-js": {"version": "4.2.1"}}}',
            {("plain-crypto-js", "4.2.1")},
        ),
        ("yarn.lock", 'plain-crypto-js-helper@^1:\n  version "4.2.1"\n', set()),
        ("yarn.lock", '"@evil/plain-crypto-js@^1":\n  version "4.2.1"\n', set()),
        ("yarn.lock", 'not-plain-crypto-js@^1:\n  version "4.2.1"\n', set()),
    ],
)
def test_exact_matches_only(file_name: str, text: str, expected: set):
    assert evidence(file_name, text) == expected


@pytest.mark.parametrize("rel", HAND_FILES)
def test_evidence_agrees_with_the_full_parse(rel: str):
    """On a complete lockfile, the evidence finds exactly the bad versions the parser finds:
    none of the traps every fixture holds (axios-retry@1.14.1, axios@1.14.10 ...)."""
    path = HAND / rel
    graph = parse_lockfile(path, path.read_bytes())
    parsed = {(n.name, n.version) for n in graph.nodes.values() if BAD.is_bad(n.name, n.version)}
    found = {(e.name, e.version) for e in find_evidence(path.name, path.read_text(), BAD)}
    assert {p for p in found if p[0] not in BAD.any_version} == {
        p for p in parsed if p[0] not in BAD.any_version
    }
    assert {p[0] for p in found} == {p[0] for p in parsed}


def _scan(path: Path, data: bytes) -> list[Finding]:
    return list(scan_lockfile(path, data, BAD))


@pytest.mark.parametrize("rel", HAND_FILES)
def test_cut_or_garbled_files_keep_every_bad_version_they_hold(rel: str):
    """Cut anywhere, with garbage, a NUL byte or a bad UTF-8 byte appended: once the lines of a
    bad entry (its key and the two lines after it) are in the bytes, it is a compromised finding,
    and a file that does not parse is also an unknown one."""
    path = HAND / rel
    data = path.read_bytes()
    graph = parse_lockfile(path, data)
    bad = [n for n in graph.nodes.values() if BAD.is_bad(n.name, n.version)]
    assert bad
    line_starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
    for cut in range(0, len(data) + 1, max(1, len(data) // 60)):
        for tail in (b"", b"\n]]}}:\n  - x\n", b"\x00", b"\xff"):
            findings = _scan(path, data[:cut] + tail)
            compromised = {f.package for f in findings if f.severity == "compromised"}
            for node in bad:
                if node.line + 2 < len(line_starts) and line_starts[node.line + 2] <= cut:
                    assert node.name in compromised, (cut, tail, node, findings)
            # (npm's hidden lockfile is only read when its bytes could hold a bad version)
            if tail in (b"\x00", b"\xff") and (path.name != ".package-lock.json" or compromised):
                assert any(f.severity == "unknown" for f in findings), (cut, tail)


def test_evidence_finding_reads_well(tmp_path: Path):
    path = tmp_path / "proj" / "package-lock.json"
    path.parent.mkdir()
    data = (HAND / "npm-v3" / "package-lock.json").read_bytes()
    path.write_bytes(data.replace(b'"lockfileVersion": 3', b'"lockfileVersion": 3, "x": NaN'))
    findings = _scan(path, path.read_bytes())
    by_package = {(f.severity, f.package, f.version): f for f in findings}
    axios = by_package[("compromised", "axios", "1.14.1")]
    assert axios.line == 29 and axios.via is None
    assert axios.message == (
        "axios@1.14.1 is recorded at line 29 (also line 30), but package-lock.json could not be "
        "fully parsed (package-lock.json is not valid JSON: NaN is not a JSON value), so the "
        "dependency path is unknown"
    )
    assert by_package[("compromised", "plain-crypto-js", "4.2.1")].line == 70
    assert ("compromised", "axios", "1.14.10") not in by_package
    assert [f.severity for f in findings].count("unknown") == 1


def test_quick_pass_sighting_survives_a_failed_full_parse(tmp_path: Path):
    """The npm quick pass sees axios@1.14.1 under an alias; the full parse then refuses the
    entry's `dependencies` list: the evidence says where, the unknown says why."""
    doc = {
        "lockfileVersion": 3,
        "packages": {
            "": {"dependencies": {"http": "npm:axios@^1.14.0"}},
            "node_modules/http": {"name": "axios", "version": "1.14.1", "dependencies": ["x"]},
        },
    }
    path = tmp_path / "proj" / "package-lock.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc, indent=2))
    findings = _scan(path, path.read_bytes())
    assert [(f.severity, f.package, f.version, f.line) for f in findings] == [
        ("compromised", "axios", "1.14.1", 11),
        ("unknown", None, None, 9),
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("package-lock.json", '{"packages": {"node_modules/axios-retry": {"version": "1.14.1"}, '),
        ("package-lock.json", '{"packages": {"node_modules/axios": {"version": "1.14.10"}}, NaN'),
        ("yarn.lock", 'axios-retry@^1.14.1:\n  version "1.14.1"\n\x00'),
        ("yarn.lock", 'axios@~1.14.10:\n  version "1.14.10"\n\x00'),
        ("pnpm-lock.yaml", "packages:\n  axios-retry@1.14.1: {}\n  magic-string@0.30.4: {}\n\xff"),
        ("bun.lock", '{"packages": {"axios": ["axios@1.14.10", "", {}, "sha512-x"]'),
        ("package-lock.json", '{"packages": {"node_modules/lodash": {"version": "4.17.21"}'),
        ("yarn.lock", 'lodash@^4:\n  version "4.17.21"\n\x00'),
    ],
)
def test_broken_files_without_a_bad_version_are_only_unknown(tmp_path: Path, name: str, text: str):
    path = tmp_path / "proj" / name
    path.parent.mkdir()
    data = text.replace("\xff", "").encode() + (b"\xff" if "\xff" in text else b"")
    path.write_bytes(data)
    findings = _scan(path, path.read_bytes())
    assert [f.severity for f in findings] == ["unknown"], findings


def test_bad_ranges_are_evidence_too(tmp_path: Path):
    """An incident with `bad_ranges` (from an advisory): the evidence judges each version read
    whole with the incident's own rule, not with a list of strings."""
    from runbook.models import AffectedPackage

    incident = load_playbook(BUNDLED).playbook.incident.model_copy(deep=True)
    incident.packages.append(AffectedPackage(name="left-pad", bad_ranges=[">=1.3.1 <1.4.0"]))
    bad = BadSet(incident)
    text = (
        'left-pad@^1.3.0:\n  version "1.3.2"\n\n'
        'left-pad@^1.2.0:\n  version "1.2.0"\n\n'
        'left-pad-x@^1.3.0:\n  version "1.3.5"\n\x00'
    )
    found = find_evidence("yarn.lock", text, bad)
    assert [(e.name, e.version, e.lines) for e in found] == [("left-pad", "1.3.2", (2,))]
    path = tmp_path / "proj" / "yarn.lock"
    path.parent.mkdir()
    path.write_text(text)
    findings = list(scan_lockfile(path, path.read_bytes(), bad))
    assert [(f.severity, f.package, f.version, f.line) for f in findings] == [
        ("compromised", "left-pad", "1.3.2", 2),
        ("unknown", None, None, 9),
    ]
