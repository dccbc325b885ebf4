"""The QA campaign's lockfiles that visibly record a bad resolution and yet scanned clean.

Issue 10: such a lockfile never gets a clean verdict. What the parsers cannot take as written
(a version its tarball URL contradicts, a key written twice, npm sections that disagree or are
missing, a pnpm importer without its package, an unclosed quote, a control character) is a
LockfileError with its line: the scan reports it as `unknown` beside a `compromised` finding
for every bad resolution the text shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import git
import orjson
import pytest

from runbook.playbook import load_playbook
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LockfileError, parse_lockfile
from steps.npm.lockfiles.graph import (
    keys_may_repeat,
    load_yaml,
    registry_tarball,
    utf8_bytes,
)
from steps.npm.lockfiles.quick import Malformed, npm_resolutions
from steps.scan.history import scan_repo
from steps.scan.lockfiles import scan_lockfile
from tests.conftest import BUNDLED
from tests.test_scan_history import commit

BAD = BadSet(load_playbook(BUNDLED).playbook.incident)
REALWORLD = Path(__file__).parent / "fixtures" / "realworld"
HAND = Path(__file__).parent / "fixtures" / "lockfiles"
NPM_NAMES = ("package-lock.json", "npm-shrinkwrap.json", ".package-lock.json")
REGISTRY = "https://registry.npmjs.org"


def scan(tmp_path: Path, name: str, content: str | bytes, bad: BadSet = BAD) -> list[Finding]:
    path = tmp_path / "proj" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return list(scan_lockfile(path, path.read_bytes(), bad))


def summary(findings: list[Finding]) -> list[tuple]:
    return sorted(
        (f.severity, f.line, f.package, f.version, tuple(f.via) if f.via else None)
        for f in findings
    )


def unknown_reason(findings: list[Finding]) -> str:
    [unknown] = [f for f in findings if f.severity == "unknown"]
    return unknown.message


def parse(name: str, text: str) -> object:
    return parse_lockfile(Path("proj") / name, text.encode())


# --- 1. the version says one thing, the tarball URL another -------------------------------------

NPM_V3_RESOLVED = """\
{
  "name": "app",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "app", "dependencies": {"axios": "^1.14.0"}},
    "node_modules/axios": {
      "version": "1.14.0",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz",
      "integrity": "sha512-x"
    }
  }
}
"""
NPM_V1_RESOLVED = """\
{
  "name": "app",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "axios": {
      "version": "1.14.0",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz",
      "integrity": "sha512-x"
    }
  }
}
"""
YARN_RESOLVED = """\
# yarn lockfile v1

axios@^1.14.0:
  version "1.14.0"
  resolved "https://registry.yarnpkg.com/axios/-/axios-1.14.1.tgz#2553649f2322049666871cea80a5d0d6adc700ca"
  integrity sha512-x
"""
PNPM_RESOLVED = """\
lockfileVersion: '9.0'

importers:

  .:
    dependencies:
      axios:
        specifier: ^1.14.0
        version: 1.14.0

packages:

  axios@1.14.0:
    resolution: {integrity: sha512-x, tarball: https://registry.npmjs.org/axios/-/axios-1.14.1.tgz}

snapshots:

  axios@1.14.0: {}
"""
BUN_RESOLVED = """\
{
  "lockfileVersion": 1,
  "workspaces": {"": {"name": "app", "dependencies": {"axios": "^1.14.0"}}},
  "packages": {
    "axios": ["axios@1.14.0", "https://r.example.test/axios/-/axios-1.14.1.tgz", {}, "sha512-x"],
  }
}
"""


@pytest.mark.parametrize(
    ("name", "text", "evidence_line", "error_line"),
    [
        ("package-lock.json", NPM_V3_RESOLVED, 9, 7),
        ("package-lock.json", NPM_V1_RESOLVED, 8, 6),
        ("npm-shrinkwrap.json", NPM_V3_RESOLVED, 9, 7),
        ("yarn.lock", YARN_RESOLVED, 5, 3),
        ("pnpm-lock.yaml", PNPM_RESOLVED, 14, 13),
        ("bun.lock", BUN_RESOLVED, 5, 5),
    ],
    ids=["npm-v3", "npm-v1", "shrinkwrap", "yarn-v1", "pnpm-v9", "bun"],
)
def test_a_safe_version_with_the_bad_tarball_is_compromised(
    tmp_path: Path, name: str, text: str, evidence_line: int, error_line: int
):
    """npm, yarn, pnpm and bun download `resolved`/`tarball`: the URL's version is installed."""
    findings = scan(tmp_path, name, text)
    assert summary(findings) == [
        ("compromised", evidence_line, "axios", "1.14.1", None),
        ("unknown", error_line, None, None, None),
    ]
    assert "says axios@1.14.0 but downloads axios@1.14.1" in unknown_reason(findings)
    assert "version and tarball disagree" in unknown_reason(findings)


def test_the_quick_npm_pass_sends_a_disagreeing_url_to_the_full_parse():
    with pytest.raises(Malformed, match=r"downloads axios@1\.14\.1"):
        list(npm_resolutions(json.loads(NPM_V3_RESOLVED)))
    with pytest.raises(Malformed, match=r"downloads axios@1\.14\.1"):
        list(npm_resolutions(json.loads(NPM_V1_RESOLVED)))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{REGISTRY}/axios/-/axios-1.14.1.tgz", ("axios", "1.14.1")),
        ("http://127.0.0.1:4873/axios/-/axios-1.14.1.tgz", ("axios", "1.14.1")),
        (
            "https://art.example.test/api/npm/npm-remote/axios/-/axios-1.14.1.tgz#sha1-ab",
            ("axios", "1.14.1"),
        ),
        (f"{REGISTRY}/@scope/pkg/-/pkg-2.0.0-rc.1.tgz", ("@scope/pkg", "2.0.0-rc.1")),
        ("http://127.0.0.1:4873/@scope%2fpkg/-/pkg-2.0.0.tgz", ("@scope/pkg", "2.0.0")),
        (
            "https://gitlab.example.test/api/v4/projects/1/packages/npm/@org/pkg/-/@org/pkg-3.2.3.tgz",
            ("@org/pkg", "3.2.3"),
        ),
        (f"{REGISTRY}/axios/-/axios-1.14.1.tgz?x=1", ("axios", "1.14.1")),
        (f"{REGISTRY}/axios-retry/-/axios-retry-1.14.1.tgz", ("axios-retry", "1.14.1")),
        (f"{REGISTRY}/axios/-/other-1.14.1.tgz", None),  # not the registry's shape
        (f"{REGISTRY}/axios/-/axios-latest.tgz", None),
        ("git+https://github.com/axios/axios.git#abc", None),
        ("file:vendor/axios/-/axios-1.14.1.tgz", None),
        ("https://codeload.github.com/axios/axios/tar.gz/abc", None),
        ("packages/web", None),
        (None, None),
    ],
)
def test_registry_tarball_reads_the_path_shape(url: object, expected: tuple | None):
    assert registry_tarball(url) == expected


def test_a_mismatch_on_any_package_is_unknown(tmp_path: Path):
    """lodash is not bad, but a lockfile whose version and tarball disagree is not one a package
    manager wrote: what it installs cannot be told."""
    text = NPM_V3_RESOLVED.replace("axios", "lodash").replace("1.14.1", "4.17.20")
    findings = scan(tmp_path, "package-lock.json", text)
    assert [f.severity for f in findings] == ["unknown"]
    assert "lodash@1.14.0 but downloads lodash@4.17.20" in findings[0].message


def test_a_tarball_of_another_package_is_its_resolution(tmp_path: Path):
    text = NPM_V3_RESOLVED.replace('"node_modules/axios"', '"node_modules/http"').replace(
        '"version": "1.14.0"', '"version": "1.14.1"'
    )
    text = text.replace("/axios/-/axios-1.14.1.tgz", "/left-pad/-/left-pad-1.14.1.tgz")
    findings = scan(tmp_path, "package-lock.json", text)
    assert [f.severity for f in findings] == ["unknown"]
    assert "says http@1.14.1 but downloads left-pad@1.14.1" in findings[0].message
    swapped = NPM_V3_RESOLVED.replace('"node_modules/axios"', '"node_modules/lodash"')
    findings = scan(tmp_path, "package-lock.json", swapped.replace("1.14.0", "4.17.21"))
    assert summary(findings) == [
        ("compromised", 9, "axios", "1.14.1", None),
        ("unknown", 7, None, None, None),
    ]


def test_a_percent_encoded_scope_is_another_package(tmp_path: Path):
    """`%40ctrl/tinycolor` is `@ctrl/tinycolor`, not the `tinycolor` the entry names."""
    url = "https://registry.npmjs.org/%40ctrl/tinycolor/-/tinycolor-4.1.1.tgz"
    assert registry_tarball(url) == ("@ctrl/tinycolor", "4.1.1")
    doc = {
        "lockfileVersion": 3,
        "packages": {"node_modules/tinycolor": {"version": "4.1.1", "resolved": url}},
    }
    findings = scan(tmp_path, "package-lock.json", json.dumps(doc, indent=2))
    assert [f.severity for f in findings] == ["unknown"]
    assert "says tinycolor@4.1.1 but downloads @ctrl/tinycolor@4.1.1" in findings[0].message


def test_an_entry_without_a_version_installs_its_tarball(tmp_path: Path):
    """The tarball is the resolution: with no version beside it, the graph takes its version
    (and the dependency path is known)."""
    text = NPM_V3_RESOLVED.replace('      "version": "1.14.0",\n', "")
    assert summary(scan(tmp_path, "package-lock.json", text)) == [
        ("compromised", 7, "axios", "1.14.1", ("app",))
    ]
    yarn = YARN_RESOLVED.replace('  version "1.14.0"\n', "")
    assert summary(scan(tmp_path, "yarn.lock", yarn)) == [
        ("compromised", 3, "axios", "1.14.1", ("proj",))
    ]


def test_a_registry_tarball_dependency_is_a_resolution(tmp_path: Path):
    """pnpm keys a dependency on a tarball URL by the URL: a registry tarball still names what
    it installs."""
    url = "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz"
    text = (
        "lockfileVersion: '9.0'\n\nimporters:\n\n  .:\n    dependencies:\n      axios:\n"
        f"        specifier: {url}\n        version: {url}\n\npackages:\n\n"
        f"  axios@{url}:\n    resolution: {{tarball: {url}}}\n    version: 1.14.1\n\n"
        f"snapshots:\n\n  axios@{url}: {{}}\n"
    )
    assert summary(scan(tmp_path, "pnpm-lock.yaml", text)) == [
        ("compromised", 13, "axios", "1.14.1", ("proj",))
    ]


def test_yarn_berry_and_bun_tarball_dependencies_are_resolutions(tmp_path: Path):
    url = "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz"
    berry = (
        f'__metadata:\n  version: 8\n\n"axios@{url}":\n  version: 1.14.1\n'
        f'  resolution: "axios@{url}"\n'
    )
    assert summary(scan(tmp_path, "yarn.lock", berry)) == [
        ("compromised", 4, "axios", "1.14.1", ("proj",))
    ]
    bun = (
        '{\n  "lockfileVersion": 1,\n'
        f'  "workspaces": {{"": {{"name": "app", "dependencies": {{"axios": "{url}"}}}}}},\n'
        f'  "packages": {{\n    "axios": ["axios@{url}", {{}}],\n  }}\n}}\n'
    )
    assert summary(scan(tmp_path, "bun.lock", bun)) == [
        ("compromised", 5, "axios", "1.14.1", ("app",))
    ]


def test_aliases_compare_the_real_name(tmp_path: Path):
    v3 = {
        "name": "app",
        "lockfileVersion": 3,
        "packages": {
            "": {"dependencies": {"http": "npm:axios@^1.14.0"}},
            "node_modules/http": {
                "name": "axios",
                "version": "1.14.0",
                "resolved": f"{REGISTRY}/axios/-/axios-1.14.0.tgz",
            },
        },
    }
    assert scan(tmp_path, "package-lock.json", json.dumps(v3, indent=2)) == []
    v3["packages"]["node_modules/http"]["resolved"] = f"{REGISTRY}/axios/-/axios-1.14.1.tgz"
    findings = scan(tmp_path, "package-lock.json", json.dumps(v3, indent=2))
    assert [(f.severity, f.package) for f in summary_findings(findings)] == [
        ("compromised", "axios"),
        ("unknown", None),
    ]
    yarn = (
        'http@npm:axios@^1.14.0:\n  version "1.14.0"\n'
        f'  resolved "{REGISTRY}/axios/-/axios-1.14.0.tgz#ab"\n'
    )
    assert scan(tmp_path, "yarn.lock", yarn) == []


def summary_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.severity)


REAL_NPM = sorted(p for p in REALWORLD.rglob("*") if p.name in NPM_NAMES)


@pytest.mark.parametrize("path", REAL_NPM, ids=lambda p: p.relative_to(REALWORLD).as_posix())
def test_real_npm_lockfiles_stay_on_the_fast_path(path: Path):
    """Every URL of the real lockfiles agrees with its version, and no key is repeated: the
    quick pass reads them through (no full parse) and finds what the full parse finds."""
    data = path.read_bytes()
    doc = orjson.loads(data)
    quick = set(npm_resolutions(doc))
    assert not keys_may_repeat(data, doc)
    graph = parse_lockfile(path, data)
    parsed = {(n.name, n.version) for n in graph.nodes.values() if n.version}
    assert parsed <= quick


# --- 2. a key written twice: the last one would hide the first ---------------------------------

DUP_ENTRY = """\
{
  "name": "app",
  "lockfileVersion": 3,
  "packages": {
    "": {"name": "app", "dependencies": {"axios": "^1.14.0"}},
    "node_modules/axios": {
      "version": "1.14.1",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz",
      "integrity": "sha512-x"
    },
    "node_modules/axios": {
      "version": "1.14.0",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.0.tgz",
      "integrity": "sha512-y"
    }
  }
}
"""


@pytest.mark.parametrize(
    ("text", "evidence_line", "error_line", "key"),
    [
        (DUP_ENTRY, 7, 11, "node_modules/axios"),
        (
            '{"lockfileVersion": 3, "packages": {\n"node_modules/axios": {\n'
            '"version": "1.14.1",\n"version": "1.14.0"}}}\n',
            3,
            4,
            "version",
        ),
        (
            '{"lockfileVersion": 3,\n"packages": {"node_modules/axios": {"version": "1.14.1"}},\n'
            '"packages": {}}\n',
            2,
            3,
            "packages",
        ),
        (
            '{"lockfileVersion": 3, "packages": {\n"node_modules/x": {\n"name": "axios",\n'
            '"name": "left-pad", "version": "1.14.1"}}}\n',
            4,
            4,
            "name",
        ),
    ],
    ids=["entry", "field", "section", "name-field"],
)
def test_npm_key_written_twice(
    tmp_path: Path, text: str, evidence_line: int, error_line: int, key: str
):
    findings = scan(tmp_path, "package-lock.json", text)
    assert summary(findings) == [
        ("compromised", evidence_line, "axios", "1.14.1", None),
        ("unknown", error_line, None, None, None),
    ]
    assert f"key {key!r} is written twice" in unknown_reason(findings)


def test_a_repeated_key_without_a_bad_version_is_unknown(tmp_path: Path):
    text = DUP_ENTRY.replace("axios", "lodash")
    findings = scan(tmp_path, "package-lock.json", text)
    assert [(f.severity, f.line) for f in findings] == [("unknown", 11)]


def test_bun_key_written_twice(tmp_path: Path):
    text = (
        '{\n  "lockfileVersion": 1,\n'
        '  "workspaces": {"": {"name": "app", "dependencies": {"axios": "^1.14.0"}}},\n'
        '  "packages": {\n'
        '    "axios": ["axios@1.14.1", "", {}, "sha512-x"],\n'
        '    "axios": ["axios@1.14.0", "", {}, "sha512-y"],\n  }\n}\n'
    )
    findings = scan(tmp_path, "bun.lock", text)
    assert summary(findings) == [
        ("compromised", 5, "axios", "1.14.1", None),
        ("unknown", 6, None, None, None),
    ]
    assert "key 'axios' is written twice" in unknown_reason(findings)


@pytest.mark.parametrize(
    ("text", "evidence_line", "error_line", "what"),
    [
        (
            '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n  version "1.14.0"\n',
            4,
            5,
            "'version' is written twice in the entry of line 3",
        ),
        (
            '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n\n'
            'axios@^1.14.0, axios@^1.0.0:\n  version "1.14.0"\n',
            4,
            6,
            "'axios@^1.14.0' already has the entry of line 3",
        ),
        (
            '# yarn lockfile v1\n\nx@^1:\n  version "1.0.0"\n  dependencies:\n'
            '    axios "1.14.1"\n    axios "^1.0.0"\n',
            6,
            7,
            "'axios' is written twice in one block",
        ),
    ],
    ids=["field", "spec", "block-key"],
)
def test_yarn_v1_repeats(tmp_path: Path, text: str, evidence_line: int, error_line: int, what: str):
    findings = scan(tmp_path, "yarn.lock", text)
    assert summary(findings) == [
        ("compromised", evidence_line, "axios", "1.14.1", None),
        ("unknown", error_line, None, None, None),
    ]
    assert what in unknown_reason(findings)


@pytest.mark.parametrize(
    ("name", "text", "evidence_line", "error_line"),
    [
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  axios@1.14.1: {}\nsnapshots:\n"
            "  axios@1.14.1: {}\npackages:\n  axios@1.14.0: {}\n",
            3,
            6,
        ),
        (
            "yarn.lock",
            '__metadata:\n  version: 8\n\n"axios@npm:^1.14.0":\n  version: 1.14.1\n'
            '  resolution: "axios@npm:1.14.1"\n  resolution: "axios@npm:1.14.0"\n',
            5,
            7,
        ),
    ],
    ids=["pnpm", "berry"],
)
def test_yaml_key_written_twice(
    tmp_path: Path, name: str, text: str, evidence_line: int, error_line: int
):
    findings = scan(tmp_path, name, text)
    assert summary(findings) == [
        ("compromised", evidence_line, "axios", "1.14.1", None),
        ("unknown", error_line, None, None, None),
    ]
    assert "is written twice in one mapping" in unknown_reason(findings)


@pytest.mark.parametrize(
    ("text", "repeats"),
    [
        ('{"a": 1, "b": {"a": 2}}', False),
        ('{"a": "x:y", "b": [":", {"c": ":"}]}', False),
        ('{"a": 1, "a": 2}', True),
        ('{"a" : 1, "a"  :2}', True),  # a space before the colon changes nothing
        ('{"b": {"a": 1, "a": 1}}', True),
        ('{"a\\u0062": 1, "ab": 2}', True),  # an escape: the count cannot tell, so it says so
    ],
    ids=["plain", "colon-in-strings", "repeat", "spaced-colon", "nested-repeat", "escape"],
)
def test_keys_may_repeat_never_misses_a_repeat(text: str, repeats: bool):
    doc = json.loads(text)
    assert keys_may_repeat(text, doc) is repeats
    assert keys_may_repeat(text.encode(), doc) is repeats


# --- 3. npm sections that disagree or are missing -----------------------------------------------

V2_DEPS = """\
{
  "name": "app",
  "lockfileVersion": 2,
  "requires": true,
  "packages": {
    "": {"name": "app", "dependencies": {"axios": "^1.14.0"}},
    "node_modules/axios": {"version": "1.14.0", "resolved": "https://r.test/axios/-/axios-1.14.0.tgz"}
  },
  "dependencies": {
    "axios": {"version": "1.14.1", "resolved": "https://r.test/axios/-/axios-1.14.1.tgz"}
  }
}
"""


def test_v2_sections_that_disagree_are_unknown_with_the_evidence(tmp_path: Path):
    findings = scan(tmp_path, "package-lock.json", V2_DEPS)
    assert summary(findings) == [
        ("compromised", 10, "axios", "1.14.1", None),
        ("unknown", 10, None, None, None),
    ]
    assert "'packages' and 'dependencies' disagree at node_modules/axios" in unknown_reason(
        findings
    )


def test_v2_legacy_tree_only_entry_is_read(tmp_path: Path):
    """npm 6 installs what only the `dependencies` tree holds: it is a resolution too."""
    doc = json.loads(V2_DEPS)
    del doc["packages"]["node_modules/axios"]
    text = json.dumps(doc, indent=2)
    line = text.split("\n").index('    "axios": {') + 1
    assert summary(scan(tmp_path, "package-lock.json", text)) == [
        ("compromised", line, "axios", "1.14.1", ("app",))
    ]


def _v2_workspace(in_packages: str, in_tree: str) -> str:
    """A v2 lockfile whose workspace `web` installs its own axios: `packages` keeps it under the
    folder, the `dependencies` tree under the link."""
    doc = {
        "name": "app",
        "lockfileVersion": 2,
        "packages": {
            "": {"name": "app", "workspaces": ["packages/*"]},
            "node_modules/web": {"resolved": "packages/web", "link": True},
            "packages/web": {"name": "web", "dependencies": {"axios": "^1.14.0"}},
            "packages/web/node_modules/axios": {"version": in_packages},
        },
        "dependencies": {
            "web": {
                "version": "file:packages/web",
                "requires": {"axios": "^1.14.0"},
                "dependencies": {"axios": {"version": in_tree}},
            }
        },
    }
    return json.dumps(doc, indent=2)


def test_v2_workspace_installs_are_matched_through_the_link(tmp_path: Path):
    findings = scan(tmp_path, "package-lock.json", _v2_workspace("1.14.1", "1.14.1"))
    assert [(f.severity, f.package, f.version, f.via) for f in findings] == [
        ("compromised", "axios", "1.14.1", ["web"])
    ]
    findings = scan(tmp_path, "package-lock.json", _v2_workspace("1.14.0", "1.14.1"))
    assert [(f.severity, f.package) for f in summary_findings(findings)] == [
        ("compromised", "axios"),
        ("unknown", None),
    ]
    assert "disagree at packages/web/node_modules/axios" in unknown_reason(findings)
    assert scan(tmp_path, "package-lock.json", _v2_workspace("1.14.0", "1.14.0")) == []


def test_v1_with_only_a_packages_section_is_read(tmp_path: Path):
    text = """\
{
  "name": "app",
  "lockfileVersion": 1,
  "requires": true,
  "packages": {
    "node_modules/axios": {
      "version": "1.14.1",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz"
    }
  }
}
"""
    assert summary(scan(tmp_path, "package-lock.json", text)) == [
        ("compromised", 6, "axios", "1.14.1", ("app",))
    ]


def test_no_packages_section_but_other_content_is_unknown(tmp_path: Path):
    text = """\
{
  "name": "app",
  "lockfileVersion": 3,
  "requires": true,
  "packagez": {
    "node_modules/axios": {
      "version": "1.14.1",
      "resolved": "https://registry.npmjs.org/axios/-/axios-1.14.1.tgz"
    }
  }
}
"""
    findings = scan(tmp_path, "package-lock.json", text)
    assert summary(findings) == [
        ("compromised", 7, "axios", "1.14.1", None),
        ("unknown", 5, None, None, None),
    ]
    assert "no 'packages' or 'dependencies' section but other content ('packagez')" in (
        unknown_reason(findings)
    )
    lodash = text.replace("axios", "lodash")
    assert [f.severity for f in scan(tmp_path, "package-lock.json", lodash)] == ["unknown"]


@pytest.mark.parametrize(
    "text",
    [  # what npm 11 writes for a project without dependencies, and the bare minimum
        '{\n  "name": "e",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n  "requires": true,\n'
        '  "packages": {\n    "": {\n      "name": "e",\n      "version": "1.0.0"\n    }\n  }\n}\n',
        '{\n  "name": "e",\n  "version": "1.0.0",\n  "lockfileVersion": 1,\n'
        '  "requires": true\n}\n',
        '{"name": "e", "lockfileVersion": 3}',
        '{"requires": true, "lockfileVersion": 1, "dependencies": {}}',
    ],
    ids=["npm11-v3", "npm11-v1", "bare-v3", "empty-v1"],
)
def test_empty_project_lockfiles_are_clean(tmp_path: Path, text: str):
    assert scan(tmp_path, "package-lock.json", text) == []
    assert parse("package-lock.json", text).nodes == {}


# --- 4. pnpm importers resolving what the lockfile has no entry for -----------------------------


@pytest.mark.parametrize(
    ("text", "evidence_line", "error_line"),
    [
        (
            "lockfileVersion: '9.0'\n\nimporters:\n\n  .:\n    dependencies:\n      axios:\n"
            "        specifier: ^1.14.0\n        version: 1.14.1\n",
            9,
            7,
        ),
        (
            "lockfileVersion: '6.0'\n\ndependencies:\n  axios:\n    specifier: ^1.14.0\n"
            "    version: 1.14.1\n",
            6,
            4,
        ),
        (
            "lockfileVersion: 5.4\n\nspecifiers:\n  axios: ^1.14.0\n\ndependencies:\n"
            "  axios: 1.14.1\n",
            7,
            7,
        ),
        (
            "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n"
            "      axios: {specifier: ^1.14.0, version: 1.14.1(debug@4.3.4)}\n",
            5,
            5,
        ),
    ],
    ids=["v9", "v6", "v5", "v9-flow"],
)
def test_pnpm_importer_without_its_package_entry(
    tmp_path: Path, text: str, evidence_line: int, error_line: int
):
    findings = scan(tmp_path, "pnpm-lock.yaml", text)
    assert summary(findings) == [
        ("compromised", evidence_line, "axios", "1.14.1", None),
        ("unknown", error_line, None, None, None),
    ]
    assert "importer '.' resolves axios@1.14.1 but the lockfile has no entry for it" in (
        unknown_reason(findings)
    )


def test_pnpm_package_dependency_without_its_entry(tmp_path: Path):
    text = (
        "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n"
        "      lib: {specifier: ^2.0.0, version: 2.0.0}\npackages:\n  lib@2.0.0: {}\n"
        "snapshots:\n  lib@2.0.0:\n    dependencies:\n      axios: 1.14.1\n"
    )
    findings = scan(tmp_path, "pnpm-lock.yaml", text)
    assert summary(findings) == [
        ("compromised", 11, "axios", "1.14.1", None),
        ("unknown", 7, None, None, None),
    ]
    assert "package 'lib@2.0.0' resolves axios@1.14.1" in unknown_reason(findings)


def test_pnpm_links_files_and_workspaces_need_no_entry():
    text = (
        "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n"
        "      web: {specifier: workspace:*, version: link:packages/web}\n"
        "      local: {specifier: file:../local, version: file:../local}\n"
        "  packages/web: {}\n"
    )
    graph = parse("pnpm-lock.yaml", text)
    assert graph.nodes == {}


# --- 5. line ends and quotes in yarn.lock --------------------------------------------------------


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_yarn_v1_with_classic_mac_or_windows_line_ends(tmp_path: Path, end: str):
    text = (
        '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n'
        '  resolved "https://registry.yarnpkg.com/axios/-/axios-1.14.1.tgz#abc"\n'
    ).replace("\n", end)
    assert summary(scan(tmp_path, "yarn.lock", text)) == [
        ("compromised", 3, "axios", "1.14.1", ("proj",))
    ]


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_yarn_berry_with_classic_mac_or_windows_line_ends(tmp_path: Path, end: str):
    text = (
        '# header\n__metadata:\n  version: 8\n\n"axios@npm:^1.14.0":\n  version: 1.14.1\n'
        '  resolution: "axios@npm:1.14.1"\n'
    ).replace("\n", end)
    assert summary(scan(tmp_path, "yarn.lock", text)) == [
        ("compromised", 5, "axios", "1.14.1", ("proj",))
    ]


def test_pnpm_with_classic_mac_line_ends(tmp_path: Path):
    text = "lockfileVersion: '9.0'\rpackages:\r  axios@1.14.1: {}\rsnapshots:\r  axios@1.14.1: {}\r"
    assert summary(scan(tmp_path, "pnpm-lock.yaml", text)) == [
        ("compromised", 3, "axios", "1.14.1", None)
    ]


@pytest.mark.parametrize(
    ("text", "error_line", "column", "evidence"),
    [
        (
            '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n'
            '  resolved "https://registry.yarnpkg.com/axios/-/axios-1.14.1.tgz#abc\n'
            "  integrity sha512-x\n",
            5,
            12,
            [("compromised", "axios")],
        ),
        (
            '# yarn lockfile v1\n\n"axios@^1.14.0:\n  version "1.14.1"\n',
            3,
            1,
            [("compromised", "axios")],
        ),
        ('# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1\n', 4, 11, []),
        ('# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1\\"\n', 4, 11, []),
    ],
    ids=["resolved", "header", "version", "escaped-quote"],
)
def test_yarn_unclosed_quote_is_an_error_with_its_place(
    tmp_path: Path, text: str, error_line: int, column: int, evidence: list
):
    """Never a silent "" version: yarn refuses the file, and so does the scan."""
    findings = scan(tmp_path, "yarn.lock", text)
    assert [(f.severity, f.package) for f in summary_findings(findings)] == [
        *evidence,
        ("unknown", None),
    ]
    assert unknown_reason(findings) == (
        f"cannot parse yarn.lock: yarn.lock line {error_line}: a quoted string is not closed "
        f"(line {error_line}, column {column})"
    )


def test_yarn_escaped_quotes_still_read():
    text = '# yarn lockfile v1\n\n"a@^1":\n  version "1.0.0"\n  x "q\\"uote\\\\"\n'
    graph = parse("yarn.lock", text)
    assert graph.nodes["a@^1"].version == "1.0.0"


# --- 6. control characters ----------------------------------------------------------------------


def test_pnpm_control_character_is_refused_with_its_place(tmp_path: Path):
    text = (
        "lockfileVersion: '9.0'\n\npackages:\n\n\x1b[2J  axios@1.14.1:\n"
        "    resolution: {integrity: sha512-x}\n\nsnapshots:\n\n\x1b[2J  axios@1.14.1: {}\n"
    )
    findings = scan(tmp_path, "pnpm-lock.yaml", text)
    assert summary(findings) == [
        ("compromised", 5, "axios", "1.14.1", None),
        ("unknown", 5, None, None, None),
    ]
    assert "pnpm-lock.yaml:5:1: control character U+001B is not allowed in YAML" in (
        unknown_reason(findings)
    )


@pytest.mark.parametrize(
    ("char", "refused"),
    [
        ("\x07", True),
        ("\x7f", True),
        ("\x9b", True),  # C1 (CSI)
        ("\ufffe", True),
        ("\t", False),
        ("\xa0", False),
        ("\U0001f600", False),
    ],
)
def test_yaml_refuses_what_pyyaml_refuses(char: str, refused: bool):
    import yaml

    text = f"a: 'x{char}y'\n"
    try:
        yaml.load(text, Loader=yaml.BaseLoader)
        pyyaml_refuses = False
    except yaml.YAMLError:
        pyyaml_refuses = True
    assert pyyaml_refuses is refused
    if refused:
        with pytest.raises(LockfileError) as info:
            load_yaml(text, "pnpm-lock.yaml", 10)
        assert (info.value.line, info.value.column) == (11, 6)
    else:
        assert load_yaml(text, "pnpm-lock.yaml") == {"a": f"x{char}y"}


def test_yarn_v1_control_character_is_refused(tmp_path: Path):
    text = (
        '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "1.14.1"\n'
        '  resolved "https://registry.yarnpkg.com/axios/-/axios-1.14.1.tgz"\n'
        '\x1b[2J  left-pad@^1:\n  version "1.3.0"\n'
    )
    findings = scan(tmp_path, "yarn.lock", text)
    assert summary(findings) == [
        ("compromised", 4, "axios", "1.14.1", None),
        ("unknown", 6, None, None, None),
    ]
    assert "yarn.lock:6:1: control character U+001B (yarn never writes one)" in (
        unknown_reason(findings)
    )
    header = '# yarn lockfile v1\n\n\x1b[2J  axios@^1.14.0:\n  version "1.14.1"\n'
    assert [f.severity for f in scan(tmp_path, "yarn.lock", header)] == ["unknown"]


# --- 7. the quick pass normalises versions as the full parse does -------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"name":"app","lockfileVersion":3,"packages":{"":{"dependencies":{"axios":"^1.14.0"}},'
        '"node_modules/axios":{"version":"v1.14.1",'
        '"resolved":"https://registry.npmjs.org/axios/-/axios-1.14.1.tgz"}}}\n',
        '{"name":"app","lockfileVersion":1,"dependencies":{"axios":{"version":"v1.14.1"}}}\n',
        '{"name":"app","lockfileVersion":3,"packages":{"":{"dependencies":{"axios":"^1.14.0"}},'
        '"node_modules/axios":{"version":"v1.14.1",'
        '"resolved":"https://registry.npmjs.org/axios/-/axios-v1.14.1.tgz"}}}\n',
    ],
    ids=["v3", "v1", "v3-url"],
)
def test_v_prefixed_version_is_found_by_the_quick_pass(tmp_path: Path, text: str):
    assert ("axios", "1.14.1") in set(npm_resolutions(json.loads(text)))
    assert summary(scan(tmp_path, "package-lock.json", text)) == [
        ("compromised", 1, "axios", "1.14.1", ("app",))
    ]


def test_a_big_bad_set_finds_a_v_prefixed_yarn_version(tmp_path: Path):
    """With thousands of bad names the byte filter reads whole tokens, and `v1.14.1` is not the
    token `1.14.1`: the validating parse's own nodes are judged too."""
    from runbook.models import AffectedPackage

    incident = load_playbook(BUNDLED).playbook.incident.model_copy(deep=True)
    incident.packages.extend(
        AffectedPackage(name=f"filler-{i}", bad_versions=["9.9.9"]) for i in range(20)
    )
    big = BadSet(incident)
    assert not big.substring_filters
    text = '# yarn lockfile v1\n\naxios@^1.14.0:\n  version "v1.14.1"\n'
    assert not big.could_resolve(utf8_bytes(text.encode()))
    assert summary(scan(tmp_path, "yarn.lock", text, big)) == [
        ("compromised", 3, "axios", "1.14.1", ("proj",))
    ]


HAND_NPM = sorted(p for p in HAND.rglob("*") if p.name in NPM_NAMES)


@pytest.mark.parametrize("path", HAND_NPM, ids=lambda p: p.relative_to(HAND).as_posix())
def test_quick_pass_sees_every_bad_version_the_full_parse_sees(path: Path):
    data = path.read_bytes()
    for variant in (data, re.sub(rb'"version": "(?=\d)', b'"version": "v', data)):
        doc = orjson.loads(variant)
        quick = {(n, v) for n, v in npm_resolutions(doc) if BAD.is_bad(n, v)}
        graph = parse_lockfile(path, variant)
        parsed = {
            (n.name, n.version) for n in graph.nodes.values() if BAD.is_bad(n.name, n.version)
        }
        assert parsed and parsed <= quick, path


# --- --history reads the same parsers ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [NPM_V3_RESOLVED, NPM_V3_RESOLVED.replace('"packages"', '"packagez"')],
    ids=["tarball", "no-packages"],
)
def test_history_of_such_a_lockfile_is_not_clean(tmp_path: Path, text: str):
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    commit(repo, {"package-lock.json": text}, "Mallory", "2026-03-31T10:00:00+00:00")
    findings = list(scan_repo(root, BAD))
    assert [f.severity for f in findings] == ["unknown"]
    assert "cannot be parsed in this commit" in findings[0].message
