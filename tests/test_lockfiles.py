"""Lockfile parsers: the osv-scalibr corpus, hand-written axios fixtures, errors, size and depth."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from steps.npm.lockfiles import (
    BUN_CONVERT,
    LOCKFILE_NAMES,
    LockfileError,
    LockGraph,
    is_lockfile,
    parse_lockfile,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = FIXTURES / "osv-scalibr-js"
HAND = FIXTURES / "lockfiles"

# Corpus files that are not valid lockfiles: each must raise LockfileError with a clear reason.
INVALID = {
    "packagelockjson/testdata/not-json.txt": "not valid JSON",
    "packagelockjson/testdata/null.v2.jsontest": "expected a JSON object",
    "pnpmlock/testdata/not-yaml.txt": "expected a mapping",
    "bunlock/testdata/not-json.txt": "not valid JSON",
    "bunlock/testdata/bad-tuple.json5": "is not a",
    # synthetic files npm and pnpm never write (issue 10: a lockfile that cannot be taken as
    # written is unknown): a tarball URL naming another version than the entry's ...
    "packagelockjson/testdata/files.v2.json": "version and tarball disagree",
    # ... and dependencies on versions the file has no package entry for (trimmed files)
    "pnpmlock/testdata/commits.yaml": "has no entry for it",
    "pnpmlock/testdata/exotic.yaml": "has no entry for it",
    "pnpmlock/testdata/invalid-path.yaml": "has no entry for it",
    "pnpmlock/testdata/invalid-paths.yaml": "has no entry for it",
    "pnpmlock/testdata/multiple-versions.v9.yaml": "has no entry for it",
    "pnpmlock/testdata/multiple-versions.yaml": "has no entry for it",
    "pnpmlock/testdata/peer-dependencies-advanced.v9.yaml": "has no entry for it",
    "pnpmlock/testdata/peer-dependencies-advanced.yaml": "has no entry for it",
}
REAL_NAME = {
    "packagelockjson": "package-lock.json",
    "yarnlock": "yarn.lock",
    "pnpmlock": "pnpm-lock.yaml",
    "bunlock": "bun.lock",
}
CORPUS_FILES = sorted(
    p.relative_to(CORPUS).as_posix()
    for p in CORPUS.rglob("*")
    if p.is_file() and p.name not in ("LICENSE", "README.md")
)


def corpus_parse(rel: str, tmp_path: Path, drop: tuple[str, ...] = ()) -> LockGraph:
    """Copy a corpus file to its real lockfile name in tmp_path/proj and parse it from there;
    `drop`: lines left out of the copy (a trimmed file's dependencies without an entry)."""
    source = CORPUS / rel
    name = source.name if source.name in LOCKFILE_NAMES else REAL_NAME[rel.split("/")[0]]
    target = tmp_path / "proj" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if drop:
        lines = target.read_text().split("\n")
        target.write_text("\n".join(line for line in lines if line not in drop))
    return parse_lockfile(target, target.read_bytes())


def hand(rel: str) -> tuple[Path, bytes, dict | None]:
    path = HAND / rel
    project = path.parent.parent if path.parent.name == "node_modules" else path.parent
    manifest_path = project / "package.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    return path, path.read_bytes(), manifest


def test_corpus_is_complete_with_its_licence():
    assert "Apache License" in (CORPUS / "LICENSE").read_text()
    assert "osv-scalibr" in (CORPUS / "README.md").read_text()
    assert len(CORPUS_FILES) == 110
    assert set(INVALID) <= set(CORPUS_FILES)


@pytest.mark.parametrize("rel", [r for r in CORPUS_FILES if r not in INVALID])
def test_corpus_valid_files_parse(rel: str, tmp_path: Path):
    graph = corpus_parse(rel, tmp_path)
    lines = (CORPUS / rel).read_text().split("\n")
    for node in graph.nodes.values():
        assert node.name, node
        assert node.name not in ("axios", "plain-crypto-js")  # the corpus has neither
        assert node.line is not None and 1 <= node.line <= len(lines), node
        text = lines[node.line - 1]
        fragments = (node.name, node.alias, node.key.rsplit("node_modules/", 1)[-1].split("(")[0])
        assert any(f and f in text for f in fragments), (node, text)
        for child in graph.edges.get(node.key, []):
            assert child in graph.nodes
    for direct in graph.roots.values():
        assert all(key in graph.nodes for key in direct)


@pytest.mark.parametrize("rel", sorted(INVALID))
def test_corpus_invalid_files_raise_lockfile_error(rel: str, tmp_path: Path):
    with pytest.raises(LockfileError) as info:
        corpus_parse(rel, tmp_path)
    assert INVALID[rel] in info.value.reason
    assert "could not be parsed" not in info.value.reason  # not the safety net


def test_corpus_bad_tuple_points_at_the_line(tmp_path: Path):
    with pytest.raises(LockfileError) as info:
        corpus_parse("bunlock/testdata/bad-tuple.json5", tmp_path)
    assert "wrappy-bad1" in info.value.reason
    assert info.value.line == 12


def test_corpus_npm_spot_checks(tmp_path: Path):
    for rel in ("alias.v1.json", "alias.v2.json"):
        g = corpus_parse(f"packagelockjson/testdata/{rel}", tmp_path / rel)
        cjs = g.nodes["node_modules/string-width-cjs"]
        assert (cjs.name, cjs.version, cjs.alias) == ("string-width", "4.2.0", "string-width-cjs")
        frame = g.nodes["node_modules/babel-code-frame"]
        assert (frame.name, frame.version) == ("@babel/code-frame", "7.0.0")
        assert g.nodes["node_modules/string-width"].alias is None
    g = corpus_parse("packagelockjson/testdata/scoped-packages.v2.json", tmp_path / "s")
    assert g.nodes["node_modules/@babel/code-frame"].version == "7.0.0"
    assert g.nodes["node_modules/@babel/code-frame"].line == 10
    g = corpus_parse("packagelockjson/testdata/nested-dependencies.v1.json", tmp_path / "n")
    nested = g.nodes["node_modules/postcss-calc/node_modules/postcss"]
    assert (nested.version, nested.line) == ("7.0.16", 26)
    assert g.via("node_modules/postcss-calc/node_modules/supports-color") == [
        "proj",
        "postcss-calc@7.0.1",
        "postcss@7.0.16",
    ]
    assert g.via("node_modules/supports-color") == ["proj", "postcss@6.0.23"]
    g = corpus_parse("packagelockjson/testdata/commits.v1.json", tmp_path / "c")
    assert g.nodes["node_modules/ansi-styles"].version == "1.0.0"
    assert g.nodes["node_modules/raven-js"].version == ""  # a git commit, not a registry version
    g = corpus_parse("packagelockjson/testdata/commits.v2.json", tmp_path / "c2")
    assert g.nodes["node_modules/is-number-1"].version == ""  # resolved from git
    assert "bump-test" in g.roots
    g = corpus_parse("packagelockjson/testdata/both/npm-shrinkwrap.json", tmp_path / "b")
    assert g.format == "npm-shrinkwrap v2"
    assert g.nodes["node_modules/wrappy"].version == "1.0.2"


def test_corpus_yarn_spot_checks(tmp_path: Path):
    for rel, key in (
        ("with-aliases.v1.lock", "ansi-regex-cjs@npm:ansi-regex@^5.0.0"),
        ("with-aliases.v2.lock", "ansi-regex-cjs@npm:ansi-regex@^5.0.0"),
    ):
        g = corpus_parse(f"yarnlock/testdata/{rel}", tmp_path / rel)
        node = g.nodes[key]
        assert (node.name, node.version, node.alias) == ("ansi-regex", "5.0.1", "ansi-regex-cjs")
    g = corpus_parse("yarnlock/testdata/with-aliases.v2.lock", tmp_path / "a2")
    assert set(g.roots) == {"mine"}  # the workspace entry is the project, not a package
    g = corpus_parse("yarnlock/testdata/scoped-packages.v1.lock", tmp_path / "s1")
    frame = g.nodes["@babel/code-frame@7.12.11"]
    assert (frame.name, frame.version, frame.line) == ("@babel/code-frame", "7.12.11", 5)
    g = corpus_parse("yarnlock/testdata/with-quotes.v1.lock", tmp_path / "q1")
    assert g.nodes["concat-stream@^1.5.0"].version == "1.6.2"
    g = corpus_parse("yarnlock/testdata/multiple-constraints.v1.lock", tmp_path / "m1")
    assert g.nodes["@babel/code-frame@^7.0.0"].version == "7.12.13"
    g = corpus_parse("yarnlock/testdata/exclude-root.v2.lock", tmp_path / "x2")
    assert set(g.roots) == {"@ws/ansi-regex", "ansi-regex"}
    assert g.nodes["ansi-regex@npm:^6.1.0"].version == "6.1.0"
    assert g.roots["@ws/ansi-regex"] == ["ansi-regex@npm:^6.1.0"]
    g = corpus_parse("yarnlock/testdata/commits.v1.lock", tmp_path / "c1")
    assert {n.version for n in g.nodes.values()} == {""}  # all git or tarball sources
    g = corpus_parse("yarnlock/testdata/empty.v2.lock", tmp_path / "e2")
    assert g.nodes == {}


def test_corpus_pnpm_spot_checks(tmp_path: Path):
    g = corpus_parse("pnpmlock/testdata/peer-dependencies.yaml", tmp_path / "p5")
    jsx = g.nodes["/acorn-jsx/5.3.2_acorn@8.7.0"]
    assert (jsx.name, jsx.version) == ("acorn-jsx", "5.3.2")
    assert g.edges[jsx.key] == ["/acorn/8.7.0"]
    g = corpus_parse("pnpmlock/testdata/peer-dependencies.v9.yaml", tmp_path / "p9")
    assert g.via("acorn@8.11.3") == ["proj", "acorn-jsx@5.3.2"]
    g = corpus_parse("pnpmlock/testdata/scoped-packages-v6-lockfile.yaml", tmp_path / "s6")
    assert g.nodes["/@typescript-eslint/types@5.57.1"].name == "@typescript-eslint/types"
    g = corpus_parse(
        "pnpmlock/testdata/exotic.yaml", tmp_path / "ex", ("  '@typescript-eslint/types': 5.13.0",)
    )
    bar = g.nodes["registry.example.test/@foo/bar/1.1.0"]
    assert (bar.name, bar.version) == ("@foo/bar", "1.1.0")
    assert len(g.warnings) == 2  # keys that name no package are skipped, not fatal
    g = corpus_parse("pnpmlock/testdata/invalid-path.yaml", tmp_path / "ip", ("  test: 1.2.3",))
    assert [n.key for n in g.nodes.values()] == ["/acorn/8.7.0"]
    assert "invalidpath" in g.warnings[0]
    g = corpus_parse("pnpmlock/testdata/tarball.yaml", tmp_path / "tb")
    (node,) = g.nodes.values()
    # a registry tarball (GitLab's) names its version: a resolution like any other
    assert (node.name, node.version) == ("@my-org/my-package", "3.2.3")
    g = corpus_parse("pnpmlock/testdata/commits.yaml", tmp_path / "cm", ("      faker: 5.5.3",))
    assert g.via("github.com/my-org/faker-parser/d2dc42a9351d4d89ec48c525e34f612b6d77993f") == [
        "proj",
        "mocks",
    ]


def test_corpus_bun_spot_checks(tmp_path: Path):
    g = corpus_parse("bunlock/testdata/alias.json5", tmp_path / "a")
    old = g.nodes["supports-color-old"]
    assert (old.name, old.version, old.alias, old.line) == (
        "supports-color",
        "6.1.0",
        "supports-color-old",
        17,
    )
    assert g.edges["supports-color-old"] == ["supports-color-old/has-flag"]
    assert g.edges["supports-color"] == ["has-flag"]
    g = corpus_parse("bunlock/testdata/nested-dependencies.json5", tmp_path / "n")
    assert g.nodes["chalk/supports-color/has-flag"].version == "4.0.0"
    assert g.via("chalk/supports-color/has-flag") == [
        "bun-lockfile",
        "chalk@4.1.2",
        "supports-color@7.2.0",
    ]
    g = corpus_parse("bunlock/testdata/commits.json5", tmp_path / "c")
    assert (g.nodes["is-number-1"].name, g.nodes["is-number-1"].version) == ("is-number", "")
    assert g.nodes["@babel/types"].version == "7.26.5"
    g = corpus_parse("bunlock/testdata/files.json5", tmp_path / "f")
    assert g.nodes["etag"].version == ""


# --- hand-written fixtures: axios 1.14.1 transitive, nested copies, an alias, workspaces, traps --

# (fixture, {key: (name, version, line, alias, via)})
EXPECTED = {
    "npm-v3/package-lock.json": {
        "node_modules/axios": ("axios", "1.14.1", 28, None, ["my-app", "some-lib@2.0.0"]),
        "node_modules/other-lib/node_modules/axios": (
            "axios",
            "1.14.10",
            64,
            None,
            ["my-app", "other-lib@1.0.0"],
        ),
        "node_modules/http-client": ("axios", "0.30.4", 47, "http-client", ["my-app"]),
        "node_modules/axios-retry": ("axios-retry", "1.14.1", 37, None, ["my-app"]),
        "packages/web/node_modules/axios": ("axios", "1.14.0", 93, None, ["web"]),
        "node_modules/plain-crypto-js": (
            "plain-crypto-js",
            "4.2.1",
            69,
            None,
            ["my-app", "axios@0.30.4"],
        ),
    },
    "npm-v2/package-lock.json": {
        "node_modules/axios": ("axios", "1.14.1", 28, None, ["my-app", "some-lib@2.0.0"]),
        "node_modules/other-lib/node_modules/axios": (
            "axios",
            "1.14.10",
            64,
            None,
            ["my-app", "other-lib@1.0.0"],
        ),
        "node_modules/http-client": ("axios", "0.30.4", 47, "http-client", ["my-app"]),
        "node_modules/axios-retry": ("axios-retry", "1.14.1", 37, None, ["my-app"]),
        "packages/web/node_modules/axios": ("axios", "1.14.0", 93, None, ["web"]),
    },
    "npm-v1/package-lock.json": {
        "node_modules/axios": ("axios", "1.14.1", 12, None, ["my-app", "some-lib@2.0.0"]),
        "node_modules/other-lib/node_modules/axios": (
            "axios",
            "1.14.10",
            47,
            None,
            ["my-app", "other-lib@1.0.0"],
        ),
        "node_modules/http-client": ("axios", "0.30.4", 31, "http-client", ["my-app"]),
        "node_modules/axios-retry": ("axios-retry", "1.14.1", 21, None, ["my-app"]),
    },
    "npm-hidden/node_modules/.package-lock.json": {
        "node_modules/axios": ("axios", "1.14.1", 12, None, ["my-app", "some-lib@2.0.0"]),
        "node_modules/other-lib/node_modules/axios": (
            "axios",
            "1.14.10",
            48,
            None,
            ["my-app", "other-lib@1.0.0"],
        ),
        "node_modules/http-client": ("axios", "0.30.4", 31, "http-client", ["my-app"]),
    },
    "yarn-v1/yarn.lock": {
        "axios@^1.14.0": ("axios", "1.14.1", 15, None, ["my-app", "some-lib@2.0.0"]),
        "axios@~1.14.10": ("axios", "1.14.10", 23, None, ["my-app", "other-lib@1.0.0"]),
        "http-client@npm:axios@^0.30.0": ("axios", "0.30.4", 33, "http-client", ["my-app"]),
        "axios-retry@^1.14.1": ("axios-retry", "1.14.1", 10, None, ["my-app"]),
        "@scope/pkg@^1.0.0": ("@scope/pkg", "1.2.0", 5, None, ["my-app"]),
        "local-tool@file:./tools/local-tool": ("local-tool", "", 40, None, ["my-app"]),
    },
    "yarn-berry/yarn.lock": {
        "axios@npm:^1.14.0": ("axios", "1.14.1", 31, None, ["my-app", "some-lib@2.0.0"]),
        "axios@npm:~1.14.10": ("axios", "1.14.10", 41, None, ["my-app", "other-lib@1.0.0"]),
        "http-client@npm:axios@^0.30.0": ("axios", "0.30.4", 62, "http-client", ["my-app"]),
        "axios-retry@npm:^1.14.1": ("axios-retry", "1.14.1", 15, None, ["my-app"]),
        "axios@npm:1.14.0": ("axios", "1.14.0", 22, None, ["web"]),
        "git-dep@https://github.com/example/git-dep.git#v1.14.1": (
            "git-dep",
            "",
            55,
            None,
            ["my-app"],
        ),
        "resolve@patch:resolve@npm%3A^1.22.0#optional!builtin<compat/resolve>": (
            "resolve",
            "1.22.8",
            102,
            None,
            ["my-app"],
        ),
    },
    "pnpm-v9/pnpm-lock.yaml": {
        "axios@1.14.1": ("axios", "1.14.1", 51, None, ["pnpm-v9", "some-lib@2.0.0"]),
        "axios@1.14.10": ("axios", "1.14.10", 54, None, ["pnpm-v9", "other-lib@1.0.0"]),
        "axios@0.30.4": ("axios", "0.30.4", 45, "http-client", ["pnpm-v9"]),
        "axios-retry@1.14.1": ("axios-retry", "1.14.1", 42, None, ["pnpm-v9"]),
        "axios@1.14.0": ("axios", "1.14.0", 48, None, ["packages/web"]),
        "some-lib@2.0.0(react@18.2.0)": ("some-lib", "2.0.0", 69, None, ["pnpm-v9"]),
    },
    "pnpm-v6/pnpm-lock.yaml": {
        "/axios@1.14.1": ("axios", "1.14.1", 42, None, ["pnpm-v6", "some-lib@2.0.0"]),
        "/axios@1.14.10": ("axios", "1.14.10", 49, None, ["pnpm-v6", "other-lib@1.0.0"]),
        "/axios@0.30.4": ("axios", "0.30.4", 36, "http-client", ["pnpm-v6"]),
        "/axios-retry@1.14.1": ("axios-retry", "1.14.1", 32, None, ["pnpm-v6"]),
    },
    "pnpm-v5/pnpm-lock.yaml": {
        "/axios/1.14.1": ("axios", "1.14.1", 50, None, ["pnpm-v5", "some-lib@2.0.0"]),
        "/axios/1.14.10": ("axios", "1.14.10", 57, None, ["pnpm-v5", "other-lib@1.0.0"]),
        "/axios/0.30.4": ("axios", "0.30.4", 38, "http-client", ["pnpm-v5"]),
        "/axios-retry/1.14.1": ("axios-retry", "1.14.1", 34, None, ["pnpm-v5"]),
        "/axios/1.14.0": ("axios", "1.14.0", 44, None, ["packages/web"]),
    },
    "bun/bun.lock": {
        "axios": ("axios", "1.14.1", 27, None, ["my-app", "some-lib@2.0.0"]),
        "other-lib/axios": ("axios", "1.14.10", 45, None, ["my-app", "other-lib@1.0.0"]),
        "http-client": ("axios", "0.30.4", 33, "http-client", ["my-app"]),
        "axios-retry": ("axios-retry", "1.14.1", 29, None, ["my-app"]),
        "web/axios": ("axios", "1.14.0", 47, None, ["web"]),
        "note": ("note", "1.0.0", 35, None, None),
    },
}


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_hand_written_fixtures(rel: str):
    graph = parse_lockfile(*hand(rel))
    for key, (name, version, line, alias, via) in EXPECTED[rel].items():
        node = graph.nodes[key]
        assert (node.name, node.version, node.line, node.alias) == (name, version, line, alias)
        assert graph.via(key) == via, key
    assert graph.warnings == []
    bad = [n for n in graph.nodes.values() if n.name == "axios" and n.version == "1.14.1"]
    assert len(bad) == 1  # the traps (axios-retry@1.14.1, axios@1.14.10) are what they are
    assert "plain-crypto-js" in {n.name for n in graph.nodes.values()}


def test_workspaces_are_projects_not_packages():
    for rel, web in (
        ("npm-v3/package-lock.json", "web"),
        ("yarn-berry/yarn.lock", "web"),
        ("pnpm-v9/pnpm-lock.yaml", "packages/web"),
        ("bun/bun.lock", "web"),
    ):
        graph = parse_lockfile(*hand(rel))
        assert set(graph.roots) == {graph_root(graph), web}, rel
        assert all(n.name not in ("web", "my-app") for n in graph.nodes.values()), rel
        assert len(graph.roots[web]) == 1, rel


def graph_root(graph: LockGraph) -> str:
    return next(iter(graph.roots))


def test_npm_v2_reads_the_legacy_tree_too():
    """npm 6 installs from the `dependencies` tree: what only it holds is a resolution too."""
    graph = parse_lockfile(*hand("npm-v2/package-lock.json"))
    assert graph.format == "package-lock v2"
    ghost = graph.nodes["node_modules/ghost-only-in-legacy-tree"]
    assert (ghost.name, ghost.version) == ("ghost-only-in-legacy-tree", "9.9.9")
    assert len(graph.nodes) == 11


def test_npm_link_to_workspace_is_not_an_edge():
    graph = parse_lockfile(*hand("npm-v3/package-lock.json"))
    assert "node_modules/web" not in graph.nodes
    assert "node_modules/web" not in graph.roots["my-app"]
    assert graph.roots["web"] == ["packages/web/node_modules/axios"]


def test_manifest_is_a_fallback_for_roots():
    path, data, manifest = hand("npm-hidden/node_modules/.package-lock.json")
    assert parse_lockfile(path, data, manifest).roots["my-app"][0] == "node_modules/@scope/pkg"
    bare = parse_lockfile(path, data)  # no package.json: top-level packages nothing requires
    assert set(bare.roots["my-app"]) == {
        "node_modules/@scope/pkg",
        "node_modules/axios-retry",
        "node_modules/http-client",
        "node_modules/other-lib",
        "node_modules/some-lib",
    }
    assert bare.via("node_modules/axios") == ["my-app", "some-lib@2.0.0"]
    path, data, _ = hand("yarn-v1/yarn.lock")
    graph = parse_lockfile(path, data)
    assert graph.via("axios@^1.14.0") == ["yarn-v1", "local-tool"]  # first in file order
    assert "local-tool@file:./tools/local-tool" in graph.roots["yarn-v1"]
    path, data, _ = hand("npm-v1/package-lock.json")
    assert parse_lockfile(path, data).via("node_modules/axios") == ["my-app", "some-lib@2.0.0"]


def test_yarn_v1_manifest_with_workspaces_puts_leftovers_apart():
    path, data, manifest = hand("yarn-v1/yarn.lock")
    assert manifest is not None
    manifest = dict(manifest, workspaces=["packages/*"], devDependencies={})
    graph = parse_lockfile(path, data, manifest)
    assert set(graph.roots["(workspaces)"]) == {
        "axios-retry@^1.14.1",
        "local-tool@file:./tools/local-tool",
    }


def test_lockfile_names():
    assert {"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"} <= set(
        LOCKFILE_NAMES
    )
    assert {"bun.lock", "bun.lockb", ".package-lock.json"} <= set(LOCKFILE_NAMES)
    assert is_lockfile(Path("a/node_modules/.package-lock.json"))
    assert not is_lockfile(Path("a/.package-lock.json"))
    assert is_lockfile(Path("a/bun.lockb"))
    assert not is_lockfile(Path("a/package.json"))


# --- errors: only LockfileError, with a clear reason ------------------------------------------


def test_bun_lockb_tells_the_conversion_command():
    with pytest.raises(LockfileError) as info:
        parse_lockfile(Path("p/bun.lockb"), b"#!/usr/bin/env bun\nbun-lockfile-format-v0\n\x00")
    assert BUN_CONVERT in info.value.reason
    assert "bun install --save-text-lockfile --frozen-lockfile --lockfile-only" in BUN_CONVERT
    with pytest.raises(LockfileError) as info:
        parse_lockfile(Path("p/bun.lock"), b"#!/usr/bin/env bun\nbun-lockfile-format-v0\n\x00")
    assert BUN_CONVERT in info.value.reason


@pytest.mark.parametrize(
    ("name", "data", "reason", "line"),
    [
        ("package-lock.json", b'{"lockfileVersion": 3,\n "packages": {\x00}}', "binary", 2),
        ("yarn.lock", b"a@^1:\n  version \xff\xfe\n", "not valid UTF-8", 2),
        ("package-lock.json", b'{"lockfileVersion": 4, "packages": {}}', "lockfileVersion 4", None),
        ("package-lock.json", b'{"lockfileVersion": "3", "packages": {}}', "lockfileVersion", None),
        ("package-lock.json", b'{"lockfileVersion": 3, "packages": []}', "not an object", None),
        ("package-lock.json", b"[1, 2]", "expected a JSON object", 1),
        ("package-lock.json", b'{"lockfileVersion": 3,\n "packages": {', "not valid JSON", 2),
        (
            "npm-shrinkwrap.json",
            b'{"lockfileVersion": 1, "dependencies": 5}',
            "not an object",
            None,
        ),
        ("pnpm-lock.yaml", b"lockfileVersion: '4.0'\n", "lockfileVersion", None),
        ("pnpm-lock.yaml", b"packages: {}\n", "lockfileVersion", None),
        ("pnpm-lock.yaml", b"lockfileVersion: '9.0'\npackages: []\n", "not a mapping", None),
        ("pnpm-lock.yaml", b"lockfileVersion: '9.0'\npackages: {a: [\n", "not valid YAML", None),
        ("pnpm-lock.yaml", b"- 1\n- 2\n", "expected a mapping", 1),
        ("yarn.lock", b"# yarn lockfile v1\n\nthis is not a lockfile\n", "header", 3),
        ("yarn.lock", b"  version 1.0.0\n", "outside of an entry", 1),
        ("yarn.lock", b"__metadata:\n  version: 8\nx: [1\n", "not valid YAML", None),
        ("yarn.lock", b"__metadata: 5\n", "__metadata", None),
        ("yarn.lock", b'__metadata:\n  version: 8\n"a@npm:1.0.0": []\n', "not a mapping", 3),
        ("bun.lock", b'{"lockfileVersion": 7}', "lockfileVersion 7", None),
        ("bun.lock", b'{"packages": []}', "not an object", None),
        ("bun.lock", b'{"packages": {\n "a": [123]}}', "tuple", 2),
        ("bun.lock", b'{"packages": {"a": "a@1.0.0"}}', "tuple", 1),
        (".package-lock.json", b"{}", "not a lockfile name", None),
        ("package.json", b"{}", "not a lockfile name", None),
    ],
)
def test_errors(name: str, data: bytes, reason: str, line: int | None):
    with pytest.raises(LockfileError) as info:
        parse_lockfile(Path("proj") / name, data)
    assert reason in info.value.reason
    assert "could not be parsed" not in info.value.reason
    if line is not None:
        assert info.value.line == line


def test_wrong_types_inside_entries_give_the_entry_line():
    path, data, manifest = hand("npm-v3/package-lock.json")
    broken = data.replace(b'"version": "1.14.10"', b'"version": 5')
    with pytest.raises(LockfileError) as info:
        parse_lockfile(path, broken, manifest)
    assert info.value.line == 64
    assert "'version' is a int" in info.value.reason
    broken = data.replace(
        b'"dependencies": {\n        "axios": "^1.14.1"\n      }', b'"dependencies": []'
    )
    with pytest.raises(LockfileError) as info:
        parse_lockfile(path, broken, manifest)
    assert info.value.line == 74
    path, data, manifest = hand("pnpm-v9/pnpm-lock.yaml")
    with pytest.raises(LockfileError) as info:
        parse_lockfile(path, data.replace(b"      axios: 1.14.10\n", b"      - 1\n"), manifest)
    assert "not a mapping" in info.value.reason


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_truncated_and_garbled_files_only_raise_lockfile_error(rel: str):
    path, data, manifest = hand(rel)
    for cut in range(0, len(data), max(1, len(data) // 50)):
        for chunk in (data[:cut], data[:cut] + b"\n]]}}:\n  - x\n"):
            try:
                parse_lockfile(path, chunk, manifest)
            except LockfileError as exc:
                assert "could not be parsed" not in exc.reason, (cut, exc.reason)


def test_utf8_bom_is_accepted():
    path, data, manifest = hand("npm-v3/package-lock.json")
    graph = parse_lockfile(path, b"\xef\xbb\xbf" + data, manifest)
    assert graph.nodes["node_modules/axios"].line == 28


# --- size and depth ---------------------------------------------------------------------------


def _big_v3(n: int) -> bytes:
    parts = [
        '{\n  "name": "big",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n',
        '  "requires": true,\n  "packages": {\n    "": {\n      "name": "big",\n',
        '      "dependencies": {\n        "pkg-0": "^1.0.0"\n      }\n    }',
    ]
    sha = "sha512-" + "A" * 86 + "=="
    for i in range(n):
        deps = ",\n".join(f'        "pkg-{(i * 7 + j) % n}": "^1.0.0"' for j in (1, 2, 3))
        if i == 1:
            deps += ',\n        "axios": "^1.14.0"'
        parts.append(
            f',\n    "node_modules/pkg-{i}": {{\n      "version": "1.{i % 50}.{i % 7}",\n'
            f'      "resolved": "https://registry.example.test/pkg-{i}/-/pkg-{i}-1.{i % 50}.{i % 7}'
            '.tgz",\n'
            f'      "integrity": "{sha}",\n      "license": "MIT",\n'
            f'      "dependencies": {{\n{deps}\n      }},\n'
            f'      "engines": {{\n        "node": ">=12"\n      }}\n    }}'
        )
    parts.append(
        ',\n    "node_modules/pkg-1/node_modules/axios": {\n      "version": "1.14.1"\n    }'
    )
    parts.append("\n  }\n}\n")
    return "".join(parts).encode()


def test_fifty_megabyte_package_lock(tmp_path: Path):
    path = tmp_path / "big" / "package-lock.json"
    path.parent.mkdir()
    path.write_bytes(_big_v3(120_000))
    data = path.read_bytes()
    assert len(data) > 48_000_000
    start = time.perf_counter()
    graph = parse_lockfile(path, data)
    elapsed = time.perf_counter() - start
    assert len(graph.nodes) == 120_001
    assert graph.nodes["node_modules/pkg-1/node_modules/axios"].line == data.count(b"\n") - 4
    assert graph.via("node_modules/pkg-1/node_modules/axios") == [
        "big",
        "pkg-0@1.0.0",
        "pkg-1@1.1.1",
    ]
    assert elapsed < 20, elapsed  # typically a few seconds


def _deep_v3(depth: int) -> tuple[bytes, str]:
    packages: dict = {"": {"name": "deep", "dependencies": {"x0": "1.0.0"}}}
    location = ""
    for i in range(depth):
        location = f"{location}/node_modules/x{i}" if location else f"node_modules/x{i}"
        packages[location] = {"version": "1.0.0", "dependencies": {f"x{i + 1}": "1", "up": "1"}}
    packages["node_modules/up"] = {"version": "1.14.1"}
    return json.dumps({"lockfileVersion": 3, "packages": packages}, indent=1).encode(), location


def test_deep_nesting_v3():
    data, deepest = _deep_v3(1000)
    graph = parse_lockfile(Path("deep/package-lock.json"), data)
    assert len(graph.via(deepest)) == 1000
    assert graph.via("node_modules/up") == ["deep", "x0@1.0.0"]
    assert graph.edges[deepest] == ["node_modules/up"]  # resolved by walking up 1000 levels


def test_deep_nesting_v1():
    depth = 1000
    tree = "{}"
    for i in reversed(range(depth)):
        entry = (
            f'{{"version": "1.0.0", "requires": {{"x{i + 1}": "1", "up": "1"}}, '
            f'"dependencies": {tree}}}'
        )
        tree = f'{{"x{i}": {entry}}}'
    text = (
        '{"lockfileVersion": 1,\n"dependencies": {"up": {"version": "1.14.1"},\n' + tree[1:] + "}"
    )
    graph = parse_lockfile(
        Path("deep/package-lock.json"), text.encode(), {"dependencies": {"x0": "1"}}
    )
    deepest = max(graph.nodes, key=len)
    assert deepest.count("node_modules/") == depth
    assert len(graph.via(deepest)) == depth
    assert graph.via("node_modules/up") == ["deep", "x0@1.0.0"]
    assert graph.edges[deepest] == ["node_modules/up"]
    assert graph.nodes["node_modules/up"].line == 2
    assert graph.nodes[deepest].line == 3


def test_fast_yaml_reader_agrees_with_pyyaml():
    import yaml

    from steps.npm.lockfiles.graph import fast_block_yaml

    sources = [*CORPUS.rglob("*.yaml"), *CORPUS.rglob("*.v2.lock"), *HAND.rglob("*.yaml")]
    sources.append(HAND / "yarn-berry" / "yarn.lock")
    fast_count = 0
    for source in sources:
        text = source.read_text()
        fast = fast_block_yaml(text)
        if fast is not None:
            fast_count += 1
            assert fast == yaml.load(text, Loader=yaml.CBaseLoader), source
    assert fast_count >= len(sources) - 2  # only the comment-only files fall back
    for tricky in (
        "a: &x 1\nb: *x\n",
        "a: |\n  text\n",
        "a: 'it''s'\nb: \"q\\u0041\"\n",
        "a: {b: 'x, y', c: d}\n",
        "a:\n- 1\n- 2\n",
        "a: b # comment\n",
    ):
        fast = fast_block_yaml(tricky)
        assert fast is None or fast == yaml.load(tricky, Loader=yaml.CBaseLoader), tricky
