"""Lockfiles from public projects (tests/fixtures/realworld): they parse clean, and a bad version
injected the way each package manager writes it is found with its line and dependency path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LOCKFILE_NAMES, parse_lockfile
from steps.scan.lockfiles import scan_lockfile
from tests.conftest import BUNDLED

REALWORLD = Path(__file__).parent / "fixtures" / "realworld"
BAD = BadSet(load_playbook(BUNDLED).playbook.incident)
FAKE_SHA512 = "sha512-" + "A" * 86 + "=="
FAKE_SHA1 = "0" * 40
FAKE_CHECKSUM = "0" * 128


@dataclass(frozen=True)
class Fixture:
    """One real lockfile and where a transitive dependency can be hung in it."""

    kind: str  # which injector writes entries the way this package manager does
    project: str  # the project name the scanner reports first in `via`
    parent: str  # an existing entry (its key as written) to give an axios dependency
    parent_label: str  # how `via` names that parent


FIXTURES: dict[str, Fixture] = {
    "bun/setup-bun/bun.lock": Fixture("bun", "setup-bun", "@iarna/toml", "@iarna/toml@2.2.5"),
    "npm-shrinkwrap/js-license-generator/npm-shrinkwrap.json": Fixture(
        "npm-v1", "js-license-generator", "archy", "archy@1.0.0"
    ),
    "npm-v1/metrics/package-lock.json": Fixture(
        "npm-v1", "metrics", "telemetry-github", "telemetry-github@0.0.0"
    ),
    # the parent is itself one of the entries npm 6 wrote with `"resolved": false`
    "npm-v1-resolved-false/github/package-lock.json": Fixture(
        "npm-v1", "github", "append-transform", "append-transform@1.0.0"
    ),
    "npm-v2/only-allow/package-lock.json": Fixture(
        "npm-v2", "only-allow2", "node_modules/boxen", "boxen@4.2.0"
    ),
    "npm-v3/setup-bun/package-lock.json": Fixture(
        "npm-v3", "setup-bun", "node_modules/@actions/io", "@actions/io@1.1.3"
    ),
    "pnpm-v5.4/symlink-dir/pnpm-lock.yaml": Fixture(
        "pnpm-v5", "symlink-dir", "/better-path-resolve/1.0.0", "better-path-resolve@1.0.0"
    ),
    "pnpm-v6.0/symlink-dir/pnpm-lock.yaml": Fixture(
        "pnpm-v6", "symlink-dir", "/better-path-resolve@1.0.0", "better-path-resolve@1.0.0"
    ),
    "pnpm-v9.0/plugin-better-defaults/pnpm-lock.yaml": Fixture(
        "pnpm-v9",
        "plugin-better-defaults",
        "@pnpm/plugin-esm-node-path@0.1.2",
        "@pnpm/plugin-esm-node-path@0.1.2",
    ),
    "pnpm-v9.0-two-documents/symlink-dir/pnpm-lock.yaml": Fixture(
        "pnpm-v9", "symlink-dir", "better-path-resolve@2.0.0", "better-path-resolve@2.0.0"
    ),
    "yarn-v1/clipanion/yarn.lock": Fixture(
        "yarn-v1", "@manaflair/concierge", "chai@^3.5.0", "chai@3.5.0"
    ),
    "yarn-berry-v4/binjumper/yarn.lock": Fixture(
        "berry", "binjumper", "chalk@npm:^4.0.0", "chalk@4.1.0"
    ),
    "yarn-berry-v6/node-sea/yarn.lock": Fixture(
        "berry", "node-sea", "lodash@npm:^4.17.21", "lodash@4.17.21"
    ),
    "yarn-berry-v8/eslint-plugin-sqlite/yarn.lock": Fixture(
        "berry", "eslint-plugin-sqlite", "chalk@npm:^4.0.0", "chalk@4.1.2"
    ),
    # buffer-from has no `dependencies:` group yet: the injector adds one
    "yarn-berry-v9/pnp-rs/yarn.lock": Fixture(
        "berry", "global-cache", "buffer-from@npm:^1.0.0", "buffer-from@1.1.2"
    ),
}
LOCKFILES = sorted(
    p.relative_to(REALWORLD).as_posix() for p in REALWORLD.rglob("*") if p.name in LOCKFILE_NAMES
)
DECOYS = (("axios-retry", "1.14.1"), ("axios", "1.14.10"))


# ---------------------------------------------------------------------------------------------
# Line helpers for the block formats (pnpm YAML, yarn v1, berry YAML).


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key(line: str) -> str:
    body = line.strip()
    if body[:1] in "'\"":
        return body[1 : body.index(body[0], 1)]
    return body.split(": ", 1)[0].rstrip(":")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """End (exclusive, before trailing blank lines) of the block whose header is lines[start]."""
    i = start + 1
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    while i > start + 1 and not lines[i - 1].strip():
        i -= 1
    return i


def _find(lines: list[str], pred: Callable[[str], bool], start: int = 0, end: int | None = None):
    end = len(lines) if end is None else end
    return next((i for i in range(start, end) if pred(lines[i])), None)


def _insert_sorted(
    lines: list[str], start: int, end: int, indent: int, key: str, entry: list[str], gap: bool
) -> None:
    """Put `entry` among the keys at `indent` in lines[start:end], before the first greater one."""
    pos = _find(
        lines, lambda ln: bool(ln.strip()) and _indent(ln) == indent and _key(ln) > key, start, end
    )
    if pos is None:
        lines[end:end] = ([""] if gap else []) + entry
    else:
        lines[pos:pos] = entry + ([""] if gap else [])


def _top(lines: list[str], name: str) -> tuple[int, int]:
    start = lines.index(f"{name}:")
    return start, _block_end(lines, start, 0)


def _child_group(lines: list[str], header: int, indent: int, group: str) -> tuple[int, int]:
    """(start, end) of `group:` under the block at lines[header]; created when missing."""
    end = _block_end(lines, header, indent - 2)
    at = _find(lines, lambda ln: ln == " " * indent + f"{group}:", header + 1, end)
    if at is None:
        lines.insert(header + 1, " " * indent + f"{group}:")
        return header + 1, header + 2
    return at, _block_end(lines, at, indent)


# ---------------------------------------------------------------------------------------------
# Injectors: (text, manifest text or None, name, version, parent key or None)
#            -> (text, manifest text or None, the exact line where the new entry starts)


def _inject_npm(text, manifest, name, version, parent, lockfile_version):
    doc = json.loads(text)
    tarball = f"https://registry.example.test/{name}/-/{name}-{version}.tgz"
    if lockfile_version >= 2:
        packages = doc["packages"]
        where = packages[parent] if parent else packages[""]
        where.setdefault("dependencies", {})[name] = "^1.14.0"
        entry = {"version": version, "resolved": tarball, "integrity": FAKE_SHA512}
        doc["packages"] = _with_key(packages, f"node_modules/{name}", entry)
        marker = f'    "node_modules/{name}": {{'
    if lockfile_version <= 2:
        deps = doc["dependencies"]
        if parent:  # v2 repeats the parent's requirement in its v1-style section
            requirer = deps[parent.rpartition("node_modules/")[2]]
            requirer.setdefault("requires", {})[name] = "^1.14.0"
        entry = {"version": version, "resolved": tarball, "integrity": FAKE_SHA512}
        doc["dependencies"] = _with_key(deps, name, entry)
        if lockfile_version == 1:
            marker = f'    "{name}": {{'
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n", manifest, marker


def _with_key(mapping: dict, key: str, value: dict) -> dict:
    """`mapping` with `key` added before the first greater key, as npm keeps them sorted."""
    items = list(mapping.items())
    pos = next((i for i, (k, _) in enumerate(items) if k > key), len(items))
    items.insert(pos, (key, value))
    return dict(items)


def _inject_yarn_v1(text, manifest, name, version, parent):
    lines = text.split("\n")
    header = f"{name}@^1.14.0:"
    block = [
        header,
        f'  version "{version}"',
        f'  resolved "https://registry.example.test/{name}/-/{name}-{version}.tgz#{FAKE_SHA1}"',
        f"  integrity {FAKE_SHA512}",
    ]
    if parent:
        at = _find(lines, lambda ln: ln == f"{parent}:" or ln == f'"{parent}":')
        start, end = _child_group(lines, at, 2, "dependencies")
        _insert_sorted(lines, start + 1, end, 4, name, [f'    {name} "^1.14.0"'], gap=False)
    else:
        pkg = json.loads(manifest)
        pkg.setdefault("dependencies", {})[name] = "^1.14.0"
        manifest = json.dumps(pkg, indent=4) + "\n"
    first = _find(lines, lambda ln: bool(ln) and not ln.startswith("#"))
    _insert_sorted(lines, first, len(lines), 0, header[:-1], block, gap=True)
    return "\n".join(lines), manifest, header


def _inject_berry(text, manifest, name, version, parent):
    lines = text.split("\n")
    npm_prefix = any(re.match(r'^    \S.*: "npm:', ln) for ln in lines)
    rng = '"npm:^1.14.0"' if npm_prefix else "^1.14.0"
    header = f'"{name}@npm:^1.14.0":'
    block = [
        header,
        f"  version: {version}",
        f'  resolution: "{name}@npm:{version}"',
        f"  checksum: {FAKE_CHECKSUM}",
        "  languageName: node",
        "  linkType: hard",
    ]
    if parent:
        at = _find(lines, lambda ln: ln in (f'"{parent}":', f"{parent}:"))
    else:
        at = _find(lines, lambda ln: ln.endswith('@workspace:.":'))
    group = _find(lines, lambda ln: ln == "  dependencies:", at + 1, _block_end(lines, at, 0))
    if group is None:
        resolution = _find(lines, lambda ln: ln.startswith("  resolution:"), at + 1)
        lines.insert(resolution + 1, "  dependencies:")
        group = resolution + 1
    end = _block_end(lines, group, 2)
    _insert_sorted(lines, group + 1, end, 4, name, [f"    {name}: {rng}"], gap=False)
    meta = lines.index("__metadata:")
    first = _find(lines, lambda ln: bool(ln) and _indent(ln) == 0, _block_end(lines, meta, 0))
    _insert_sorted(lines, first, len(lines), 0, header[1:-2], block, gap=True)
    return "\n".join(lines), manifest, header


def _inject_pnpm(text, manifest, name, version, parent, major):
    head, sep, body = text.rpartition("\n---\n")  # a pnpm 11 file: the project is the last document
    lines = body.split("\n")
    key = {5: f"/{name}/{version}", 6: f"/{name}@{version}"}.get(major, f"{name}@{version}")
    pkg_block = [f"  {key}:", f"    resolution: {{integrity: {FAKE_SHA512}}}"]
    if major < 9:
        pkg_block.append("    dev: false")
    dep_line = f"      {name}: {version}"
    if parent:
        section = "snapshots" if major >= 9 else "packages"
        start, end = _top(lines, section)
        at = _find(lines, lambda ln: _indent(ln) == 2 and _key(ln) == parent, start, end)
        if lines[at].endswith(": {}"):
            lines[at] = lines[at][: -len(" {}")]
        gstart, gend = _child_group(lines, at, 4, "dependencies")
        _insert_sorted(lines, gstart + 1, gend, 6, name, [dep_line], gap=False)
    elif major >= 9:
        start, _ = _top(lines, "importers")
        at = _find(lines, lambda ln: ln == "  .:", start)
        gstart, gend = _child_group(lines, at, 4, "dependencies")
        entry = [f"      {name}:", "        specifier: ^1.14.0", f"        version: {version}"]
        _insert_sorted(lines, gstart + 1, gend, 6, name, entry, gap=False)
    elif major == 6:
        start, end = _top(lines, "dependencies")
        entry = [f"  {name}:", "    specifier: ^1.14.0", f"    version: {version}"]
        _insert_sorted(lines, start + 1, end, 2, name, entry, gap=False)
    else:
        for section, value in (("specifiers", "^1.14.0"), ("dependencies", version)):
            start, end = _top(lines, section)
            _insert_sorted(lines, start + 1, end, 2, name, [f"  {name}: {value}"], gap=False)
    start, end = _top(lines, "packages")
    _insert_sorted(lines, start + 2, end, 2, key, pkg_block, gap=True)
    if major >= 9:
        start, end = _top(lines, "snapshots")
        _insert_sorted(lines, start + 2, end, 2, key, [f"  {key}: {{}}"], gap=True)
    return head + sep + "\n".join(lines), manifest, f"  {key}:"


def _inject_bun(text, manifest, name, version, parent):
    lines = text.split("\n")
    if parent:
        at = _find(lines, lambda ln: ln.startswith(f'    "{parent}": ['))
        dep = f'"{name}": "^1.14.0"'
        line = lines[at]
        if ', "", {}, ' in line:  # no metadata yet: give it a dependencies map
            line = line.replace(', "", {}, ', f', "", {{ "dependencies": {{ {dep} }} }}, ', 1)
        else:
            line = line.replace('{ "dependencies": { ', f'{{ "dependencies": {{ {dep}, ', 1)
        lines[at] = line
    else:
        ws = _find(lines, lambda ln: ln == '    "": {')
        start = _find(lines, lambda ln: ln == '      "dependencies": {', ws)
        end = _find(lines, lambda ln: ln == "      },", start)
        _insert_sorted(lines, start + 1, end, 8, name, [f'        "{name}": "^1.14.0",'], gap=False)
    entry = f'    "{name}": ["{name}@{version}", "", {{}}, "{FAKE_SHA512}"],'
    start = lines.index('  "packages": {')
    end = lines.index("  }", start)
    _insert_sorted(lines, start + 1, end, 4, name, [entry], gap=True)
    return "\n".join(lines), manifest, entry


INJECTORS: dict[str, Callable] = {
    "npm-v1": lambda *a: _inject_npm(*a, lockfile_version=1),
    "npm-v2": lambda *a: _inject_npm(*a, lockfile_version=2),
    "npm-v3": lambda *a: _inject_npm(*a, lockfile_version=3),
    "yarn-v1": _inject_yarn_v1,
    "berry": _inject_berry,
    "pnpm-v5": lambda *a: _inject_pnpm(*a, major=5),
    "pnpm-v6": lambda *a: _inject_pnpm(*a, major=6),
    "pnpm-v9": lambda *a: _inject_pnpm(*a, major=9),
    "bun": _inject_bun,
}


def _scan_copy(rel: str, tmp_path: Path, injections: list[tuple[str, str, bool]]):
    """Copy the fixture (and its package.json) into tmp_path, inject, scan the copy.

    Returns (findings, injected lockfile lines, the start line of the last injected entry).
    """
    source = REALWORLD / rel
    fixture = FIXTURES[rel]
    target = tmp_path / source.parent.name / source.name
    target.parent.mkdir(parents=True)
    manifest_path = source.parent / "package.json"
    text = source.read_text(encoding="utf-8")
    manifest = manifest_path.read_text(encoding="utf-8") if manifest_path.exists() else None
    marker = ""
    for name, version, transitive in injections:
        parent = fixture.parent if transitive else None
        text, manifest, marker = INJECTORS[fixture.kind](text, manifest, name, version, parent)
    target.write_text(text, encoding="utf-8")
    if manifest is not None:
        (target.parent / "package.json").write_text(manifest, encoding="utf-8")
    lines = text.split("\n")
    marked = [i + 1 for i, line in enumerate(lines) if line == marker]
    assert len(marked) == 1, f"the injected entry {marker!r} is not on exactly one line"
    return list(scan_lockfile(target, target.read_bytes(), BAD)), lines, marked[0]


# ---------------------------------------------------------------------------------------------


def test_corpus_covers_every_format_and_is_documented():
    assert set(LOCKFILES) == set(FIXTURES)
    assert {rel.split("/")[0] for rel in LOCKFILES} >= {
        "npm-v1",
        "npm-v1-resolved-false",
        "npm-v2",
        "npm-v3",
        "npm-shrinkwrap",
        "yarn-v1",
        "yarn-berry-v4",
        "yarn-berry-v6",
        "yarn-berry-v8",
        "yarn-berry-v9",
        "pnpm-v5.4",
        "pnpm-v6.0",
        "pnpm-v9.0",
        "pnpm-v9.0-two-documents",
        "bun",
    }
    readme = (REALWORLD / "README.md").read_text(encoding="utf-8")
    for rel in LOCKFILES:
        assert f"`{rel}`" in readme, f"{rel} has no provenance row in README.md"


@pytest.mark.parametrize("rel", LOCKFILES)
def test_real_lockfile_parses_clean(rel):
    path = REALWORLD / rel
    findings = list(scan_lockfile(path, path.read_bytes(), BAD))
    assert findings == [], [f.message for f in findings]
    manifest_path = path.parent / "package.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    graph = parse_lockfile(path, path.read_bytes(), manifest)
    assert graph.nodes and FIXTURES[rel].project in graph.roots
    assert not [n for n in graph.nodes.values() if BAD.is_bad(n.name, n.version)]
    assert not any(n.name in ("axios", "plain-crypto-js") for n in graph.nodes.values())


@pytest.mark.parametrize("rel", LOCKFILES)
def test_node_lines_point_at_their_entries(rel):
    path = REALWORLD / rel
    manifest_path = path.parent / "package.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    graph = parse_lockfile(path, path.read_bytes(), manifest)
    lines = path.read_text(encoding="utf-8").split("\n")
    wrong = [
        (node.key, node.line)
        for node in graph.nodes.values()
        if node.line is None
        or (node.alias or node.name).rsplit("/", 1)[-1] not in lines[node.line - 1]
    ]
    assert wrong == []


@pytest.mark.parametrize("rel", LOCKFILES)
def test_injected_direct_bad_version_is_found(rel, tmp_path):
    findings, lines, line = _scan_copy(rel, tmp_path, [("axios", "1.14.1", False)])
    assert [f.message for f in findings if f.severity == "unknown"] == []
    [bad] = [f for f in findings if f.severity == "compromised"]
    assert (bad.kind, bad.package, bad.version) == ("lockfile", "axios", "1.14.1")
    assert bad.line == line, lines[(bad.line or 1) - 1]
    assert bad.via == [FIXTURES[rel].project]


@pytest.mark.parametrize("rel", LOCKFILES)
def test_injected_transitive_bad_version_names_its_parent(rel, tmp_path):
    findings, _, line = _scan_copy(rel, tmp_path, [("axios", "1.14.1", True)])
    assert [f.message for f in findings if f.severity == "unknown"] == []
    [bad] = [f for f in findings if f.severity == "compromised"]
    assert (bad.package, bad.version, bad.line) == ("axios", "1.14.1", line)
    fixture = FIXTURES[rel]
    assert bad.via[0] == fixture.project
    assert bad.via[-1] == fixture.parent_label


@pytest.mark.parametrize("rel", LOCKFILES)
def test_decoys_injected_are_not_flagged(rel, tmp_path):
    injections = [(name, version, False) for name, version in DECOYS]
    findings, lines, _ = _scan_copy(rel, tmp_path, injections)
    text = "\n".join(lines)
    assert "axios-retry" in text and "1.14.10" in text
    assert findings == [], [f.message for f in findings]


RESOLVED_FALSE = "npm-v1-resolved-false/github/package-lock.json"


def test_npm6_resolved_false_entries_are_read_as_registry_entries():
    path = REALWORLD / RESOLVED_FALSE
    text = path.read_text(encoding="utf-8")
    false_lines = [i for i, line in enumerate(text.split("\n"), 1) if '"resolved": false' in line]
    assert len(false_lines) >= 50  # what this fixture was chosen for (npm/cli#1138)
    graph = parse_lockfile(path, path.read_bytes(), None)
    # each `"resolved": false` line sits two lines under its entry's key: all became nodes
    by_line = {node.line: node for node in graph.nodes.values()}
    missing = [line for line in false_lines if line - 2 not in by_line]
    assert missing == []
    assert all(by_line[line - 2].version for line in false_lines)


def test_bad_version_written_with_resolved_false_is_found(tmp_path):
    """The compromised entry itself carries npm 6's `"resolved": false`: it is still found."""
    fixture = FIXTURES[RESOLVED_FALSE]
    text = (REALWORLD / RESOLVED_FALSE).read_text(encoding="utf-8")
    text, _, marker = INJECTORS["npm-v1"](text, None, "axios", "1.14.1", fixture.parent)
    doc = json.loads(text)
    doc["dependencies"]["axios"]["resolved"] = False
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    target = tmp_path / "package-lock.json"
    target.write_text(text, encoding="utf-8")
    lines = text.split("\n")
    [line] = [i for i, ln in enumerate(lines, 1) if ln == marker]
    assert lines[line + 1] == '      "resolved": false,'
    findings = list(scan_lockfile(target, target.read_bytes(), BAD))
    assert [f.message for f in findings if f.severity == "unknown"] == []
    [bad] = [f for f in findings if f.severity == "compromised"]
    assert (bad.package, bad.version, bad.line) == ("axios", "1.14.1", line)
    assert bad.via[0] == fixture.project
    assert bad.via[-1] == fixture.parent_label
