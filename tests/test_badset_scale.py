"""A bad set of thousands (issue 13): the 2,915-version playbook, its byte filters, and detection
of a few of its 1,630 packages in every kind of place, with real npm, yarn 1, yarn berry, pnpm and
bun against verdaccio (fake packages: `tests/bigset_registry.py`).

The scan's speed with this set is measured by the benchmark (`bench.run`: the axios playbook, this
one and the bundled shai-hulud-2025 in one run against `find`);
`test_the_benchmark_checks_every_playbook` runs it on the tiny home so that its planted findings
stay right.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import git
import pytest

from bench.list_playbook import PLAYBOOK, read_list, render
from runbook.models import AffectedPackage, Incident
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LockfileError, parse_lockfile
from steps.npm.lockfiles.evidence import find_evidence
from steps.npm.lockfiles.graph import utf8_bytes
from steps.scan.history import scan_repo
from steps.scan.host import _tarball_of
from steps.scan.lockfiles import scan_lockfile
from tests.bigset_registry import big_set_playbook, publish_fakes
from tests.conftest import ROOT
from tests.npmreg import berry_rc, require_tools, run_tool, start_registry, tool_env, tool_paths
from tests.test_scan_history import commit

FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = [FIXTURES / "realworld", FIXTURES / "lockfiles", FIXTURES / "projects"]
SCALIBR = FIXTURES / "osv-scalibr-js"
LOCKFILE_NAMES = {
    "package-lock.json",
    "npm-shrinkwrap.json",
    ".package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
}


@pytest.fixture(scope="module")
def big() -> Incident:
    return big_set_playbook().incident


# -- the playbook -------------------------------------------------------------------------------
def test_the_playbook_is_the_list_and_validates(big: Incident) -> None:
    assert PLAYBOOK.read_text(encoding="utf-8") == render(read_list()), (
        "tests/playbooks/shai-hulud-list.yaml is stale: run python -m bench.list_playbook"
    )
    badset = BadSet(big)
    assert len(badset.names) == 1630
    assert sum(len(v) for v in badset.bad_versions.values()) == 2915
    assert sum(n.startswith("@") for n in badset.names) == 1104
    assert not badset.substring_filters  # the token filters, not 1,630 substring searches


# -- the byte filters never rule out what a parser would find ----------------------------------
SCALIBR_NAMES = {
    "bunlock": "bun.lock",
    "packagelockjson": "package-lock.json",
    "pnpmlock": "pnpm-lock.yaml",
    "yarnlock": "yarn.lock",
}


def _corpus_lockfiles() -> list[tuple[Path, str]]:
    """(file, the lockfile name it is read as) for every lockfile of the corpus."""
    found = [
        (p, p.name)
        for root in CORPUS
        for p in root.rglob("*")
        if p.is_file() and p.name in LOCKFILE_NAMES
    ]
    for folder, name in SCALIBR_NAMES.items():
        found += [(p, name) for p in (SCALIBR / folder).rglob("*") if p.is_file()]
    return sorted(found)


def _packages(bad: dict[str, set[str]]) -> list[AffectedPackage]:
    """Playbook entries for `bad` (name -> versions); a "version" that is not semver (a git or
    file entry) is left out: nothing a bad set could list."""
    out = []
    for name, versions in bad.items():
        try:
            out.append(AffectedPackage(name=name, bad_versions=sorted(versions)))
        except ValueError:
            continue
    return out


def _with(big: Incident, bad: dict[str, set[str]]) -> BadSet:
    """The big set plus `bad` (name -> versions), as one BadSet."""
    return BadSet(big.model_copy(update={"packages": [*big.packages, *_packages(bad)]}))


def test_every_resolution_in_real_lockfiles_passes_the_filters(big: Incident) -> None:
    """For each lockfile of the corpus and each package it resolves, a bad set of thousands that
    lists that exact version must let the file through (`resolvable` names the package): the
    token filter may never hide what the full parse reports; and the scan of the file reports it.
    Every version is checked: round k lists the k-th version of each package."""
    checked = 0
    for path, read_as in _corpus_lockfiles():
        data = path.read_bytes()
        try:
            graph = parse_lockfile(Path(read_as), data)
        except LockfileError:
            continue  # the corpus keeps broken files too: not resolutions
        versions: dict[str, list[str]] = defaultdict(list)
        for node in graph.nodes.values():
            if node.version and node.version not in versions[node.name]:
                versions[node.name].append(node.version)
        utf8 = utf8_bytes(data)
        for k in range(max((len(v) for v in versions.values()), default=0)):
            round_k = {n: {vs[k]} for n, vs in versions.items() if len(vs) > k}
            badset = _with(big, round_k)
            listed = {n for n in round_k if n in badset.bad_versions}
            missed = listed - badset.resolvable(utf8)
            assert not missed, f"{path.relative_to(ROOT)}: the filter hides {sorted(missed)}"
            reported = {
                (f.package, f.version)
                for f in scan_lockfile(Path(read_as), data, badset)
                if f.severity == "compromised"
            }
            wanted = {(n, v) for n in listed for v in round_k[n]}
            assert wanted <= reported, f"{path.relative_to(ROOT)}: {sorted(wanted - reported)}"
            checked += len(listed)
    assert checked > 1400  # the corpus really was read (1,490 pairs when written)


def test_broken_lockfiles_give_the_same_evidence_with_thousands_of_names(big: Incident) -> None:
    """A lockfile that cannot be parsed is searched as text for what it records. With the big set
    only the names its bytes could resolve are searched (one pass per name would cost seconds per
    file): each truncated corpus lockfile must give the same evidence as a set of just the
    packages it holds."""
    compared = 0
    for path, read_as in _corpus_lockfiles():
        data = path.read_bytes()
        try:
            graph = parse_lockfile(Path(read_as), data)
        except LockfileError:
            continue
        pairs = sorted({(n.name, n.version) for n in graph.nodes.values() if n.version})[:40]
        bad: dict[str, set[str]] = defaultdict(set)
        for name, version in pairs:
            bad[name].add(version)
        broken = data[: len(data) * 3 // 5] + b"\n{{{ [[[ garbage\n"
        few = BadSet(big.model_copy(update={"packages": _packages(bad)}))
        many = _with(big, bad)

        expected = _evidence(Path(read_as), broken, few, set(pairs))
        assert _evidence(Path(read_as), broken, many, set(pairs)) == expected, path
        compared += len(expected)
    assert compared > 200


def test_text_evidence_with_the_whole_set_costs_what_the_text_costs(big: Incident) -> None:
    """`find_evidence` given the whole set of 1,630 names (as a caller other than the scanner
    does) finds what a set of just the file's packages finds, in every truncated corpus lockfile,
    and each call takes milliseconds: the names are picked from the text's tokens first, instead
    of one alternation of every name (1.3 s for a 22 KB pnpm file) and a loop over every name per
    entry."""
    compared = 0
    slowest = 0.0
    for path, read_as in _corpus_lockfiles():
        data = path.read_bytes()
        try:
            graph = parse_lockfile(Path(read_as), data)
        except LockfileError:
            continue
        pairs = sorted({(n.name, n.version) for n in graph.nodes.values() if n.version})[:40]
        bad: dict[str, set[str]] = defaultdict(set)
        for name, version in pairs:
            bad[name].add(version)
        text = utf8_bytes(data[: len(data) * 3 // 5] + b"\n{{{ [[[ garbage\n").decode(
            "utf-8", "replace"
        )
        few = BadSet(big.model_copy(update={"packages": _packages(bad)}))
        many = _with(big, bad)
        assert len(many.names) >= 1630
        expected = {(e.name, e.version) for e in find_evidence(read_as, text, few)}
        start = time.perf_counter()
        found = find_evidence(read_as, text, many)
        slowest = max(slowest, time.perf_counter() - start)
        got = {(e.name, e.version) for e in found if (e.name, e.version) in set(pairs)}
        assert got == expected & set(pairs), path
        compared += len(got)
    assert compared > 200
    assert slowest < 1.0, f"one call took {slowest:.2f} s"


def _evidence(path: Path, data: bytes, badset: BadSet, pairs: set) -> set[tuple[str, str]]:
    findings = scan_lockfile(path, data, badset)
    return {
        (f.package, f.version)
        for f in findings
        if f.severity == "compromised" and (f.package, f.version) in pairs
    }


def test_every_npm_cache_entry_passes_the_filters(big: Incident) -> None:
    index = FIXTURES / "npm-cache" / "_cacache" / "index-v5"
    seen = 0
    for bucket in sorted(p for p in index.rglob("*") if p.is_file()):
        data = bucket.read_bytes()
        for line in data.splitlines():
            _, _, body = line.partition(b"\t")
            if not body:
                continue
            name, version = _tarball_of(json.loads(body)["key"])
            if name:
                assert name in _with(big, {name: {version}}).resolvable(data), bucket
                seen += 1
    assert seen


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b'"node_modules/@ctrl/tinycolor": {"version": "4.1.1"}', {"@ctrl/tinycolor"}),
        (b'"node_modules/@ctrl/tinycolor": {"version": "4.1.10"}', set()),
        (b'"node_modules/@ctrl/tinycolor": {"version": "4.1.1-rc.1"}', set()),
        (b'"node_modules/@other/tinycolor": {"version": "4.1.1"}', set()),
        (b'"node_modules/tinycolor": {"version": "4.1.1"}', set()),
        (b'"@ctrl/tinycolor-extra@npm:4.1.1":', set()),
        (b"/@ctrl/tinycolor/4.1.1_debug@4.4.1:", {"@ctrl/tinycolor"}),
        (b"debug@4.4.2(supports-color@8.1.1):", {"debug"}),
        (b'"debug-utils": "4.4.2"', set()),
        (b'resolved "https://r.example/debug/-/debug-4.4.2.tgz#abc"', {"debug"}),
        (b'"@dev-blinq/cucumber_client@npm:1.0.1"', set()),  # not a listed version
        (b'"n\\u0061me": "@ctrl/tinyc\\u006flor", "version": "4.1.1"', "every"),
    ],
)
def test_token_filter_cases(big: Incident, text: bytes, found: set[str] | str) -> None:
    badset = BadSet(big)
    got = badset.resolvable(text)
    if found == "every":
        assert got == badset.names  # an escape could spell any name: never ruled out
    else:
        assert got == found


# -- detection with real package managers ---------------------------------------------------------
MANAGERS = ("npm", "yarn1", "berry", "pnpm", "bun")
BAD_DEPS = {"@ctrl/tinycolor": "^4.1.0", "bigset-lib-a": "1.0.0"}  # 4.1.1, and debug 4.4.2 below
GOOD_DEPS = {"@ctrl/tinycolor": "4.1.0", "debug": "4.4.1"}
INSTALL = {
    "npm": ["install", "--ignore-scripts"],
    "yarn1": ["install", "--ignore-scripts", "--non-interactive"],
    "berry": ["install"],
    "pnpm": ["install", "--ignore-scripts"],
    "bun": ["install", "--ignore-scripts"],
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    require_tools("verdaccio", *MANAGERS)
    work = tmp_path_factory.mktemp("bigset-registry")
    with start_registry(work / "registry") as reg:
        publish_fakes(reg, work)
        yield reg


def _install(manager: str, project: Path, deps: dict[str, str], registry, env: dict) -> None:
    project.mkdir(parents=True)
    manifest = {"name": project.name, "version": "1.0.0", "dependencies": deps}
    (project / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if manager == "berry":  # Plug'n'Play: packages stay zipped in the project's .yarn/cache
        # the fakes were published a moment ago: yarn 4's default age gate (1 day) would refuse
        rc = berry_rc(registry.url, yarnPath=str(tool_paths()["berry"]), npmMinimalAgeGate="0")
        (project / ".yarnrc.yml").write_text(rc)
        (project / "yarn.lock").write_text("")
    run_tool(manager, INSTALL[manager], cwd=project, env=env, timeout=300)


@pytest.mark.parametrize("manager", MANAGERS)
def test_a_few_of_1630_packages_are_found_everywhere(manager, registry, tmp_path, run_cli):
    """A scoped bad version (direct, through a range) and an unscoped one (transitive) are found
    in the lockfile, the installed tree and the package manager's cache; the good versions of the
    same packages, installed by another project into the same cache, are not."""
    home = tmp_path / "home"
    env = tool_env(registry.url, home)
    bad, good = tmp_path / "bad-project", tmp_path / "good-project"
    _install(manager, bad, BAD_DEPS, registry, env)
    _install(manager, good, GOOD_DEPS, registry, env)

    result = run_cli(
        "scan", bad, good, "--host", "--playbook", PLAYBOOK, "--format", "json", env=env
    )
    data = json.loads(result.stdout)
    findings = data["findings"]
    assert result.returncode == 1, result.stderr
    assert not [f for f in findings if f["severity"] == "unknown"], findings
    assert not [f for f in findings if Path(f["path"]).is_relative_to(good)], findings

    def where(f: dict) -> str:
        return "project" if Path(f["path"]).is_relative_to(bad) else "home"

    got = {(f["kind"], f["package"], f["version"], where(f)) for f in findings}
    bad_pairs = {("@ctrl/tinycolor", "4.1.1"), ("debug", "4.4.2")}
    for name, version in bad_pairs:
        assert ("lockfile", name, version, "project") in got, (manager, got)
        assert ("installed", name, version, "project") in got, (manager, got)
    assert ("manifest", "@ctrl/tinycolor", "^4.1.0", "project") in got
    # npm's index-v5, the yarn 1 cache, yarn berry's global mirror, pnpm's store, bun's cache
    cached = {(f["package"], f["version"]) for f in findings if f["kind"] == "cache"}
    assert cached == bad_pairs, (manager, findings)
    reported = {(f["package"], f["version"]) for f in findings if f["kind"] != "manifest"}
    assert reported == bad_pairs  # never 4.1.0 or 4.4.1, which sit in the same cache


# -- git history --------------------------------------------------------------------------------
def _npm_lock(packages: dict[str, str]) -> str:
    entries = {f"node_modules/{name}": {"version": version} for name, version in packages.items()}
    root = {"name": "app", "version": "1.0.0", "dependencies": dict.fromkeys(packages, "*")}
    doc = {"name": "app", "lockfileVersion": 3, "packages": {"": root, **entries}}
    return json.dumps(doc, indent=2) + "\n"


def test_history_with_the_big_set(big: Incident, tmp_path: Path) -> None:
    """`git log -G` gets one alternation of the list's 916 distinct versions; the bad window of
    each package is found, a good version of a listed package is not."""
    repo = git.Repo.init(tmp_path / "repo")
    shas = [
        commit(repo, {"package-lock.json": _npm_lock(lock)}, who, when)
        for lock, who, when in [
            ({"@ctrl/tinycolor": "4.1.0"}, "Carol", "2025-09-01T10:00:00+00:00"),
            ({"@ctrl/tinycolor": "4.1.1"}, "Alice", "2025-09-15T10:00:00+00:00"),
            ({"@ctrl/tinycolor": "4.1.0", "debug": "4.4.2"}, "Bob", "2025-09-16T10:00:00+00:00"),
        ]
    ]
    findings = list(scan_repo(tmp_path / "repo", BadSet(big)))
    alice = f"{shas[1][:10]} (Alice, 2025-09-15T10:00:00+00:00)"
    bob = f"{shas[2][:10]} (Bob, 2025-09-16T10:00:00+00:00)"
    windows = {f.message.split(": anything")[0] for f in findings}
    assert windows == {
        f"@ctrl/tinycolor@4.1.1 was in package-lock.json from {alice} until {bob}",
        f"debug@4.4.2 was in package-lock.json since {bob}, still at HEAD",
    }, findings


# -- the benchmark --------------------------------------------------------------------------------
def test_the_benchmark_checks_every_playbook(tmp_path: Path) -> None:
    """`bench.run` on the tiny home: the three scans (axios, 2,915 versions, the bundled
    shai-hulud-2025 with its payload files) report exactly what `bench.make_home` planted for
    them (exit 0), and the results name all three."""
    results = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--size",
            "tiny",
            "--dir",
            str(tmp_path / "b"),
            "--reps",
            "1",
            "--skip-npm",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(results.read_text())
    assert report["correctness"] == {"ok": True, "problems": []}
    assert {"scanner", "scanner_big_set", "scanner_shai_hulud", "find"} <= set(report["timings"])
    assert "find" in report["ratios_vs_scanner_big_set"]
    assert "find" in report["ratios_vs_scanner_shai_hulud"]
    assert "shai_hulud_faster_than_find" in report["goals"]


# -- thousands of findings: the dependency paths, the journal and the report ----------------------
def test_graph_paths_agree_with_via() -> None:
    """The one-search `LockGraph.paths` gives every entry of every corpus lockfile the chain
    `LockGraph.via` gives it."""
    compared = 0
    for path, read_as in _corpus_lockfiles():
        try:
            graph = parse_lockfile(Path(read_as), path.read_bytes())
        except LockfileError:
            continue
        paths = graph.paths()
        for key in graph.nodes:
            assert paths(key) == graph.via(key), (path, key)
            compared += 1
    assert compared > 1000


def _worm_project(root: Path) -> int:
    """A project whose package-lock.json resolves every version of the list (the first version of
    each package at the top, the others nested under a holder package), and whose package.json
    asks for the first version of each exactly. Returns the number of bad versions."""
    deps: dict[str, str] = {}
    packages: dict[str, dict] = {"": {"name": "app", "version": "1.0.0", "dependencies": deps}}
    count = 0
    for name, versions in read_list().items():
        deps[name] = versions[0]
        packages[f"node_modules/{name}"] = {"version": versions[0]}
        for version in versions[1:]:
            holder = f"holder-{count}"
            deps[holder] = "1.0.0"
            packages[f"node_modules/{holder}"] = {"version": "1.0.0", "dependencies": {name: "*"}}
            packages[f"node_modules/{holder}/node_modules/{name}"] = {"version": version}
            count += 1
        count += 1
    root.mkdir()
    manifest = {"name": "app", "version": "1.0.0", "dependencies": deps}
    (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    lock = {"name": "app", "version": "1.0.0", "lockfileVersion": 3, "packages": packages}
    (root / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    return count


def test_a_detect_step_with_thousands_of_findings_is_journaled_and_reported(
    tmp_path: Path, run_cli
) -> None:
    """4,545 findings (2,915 resolved bad versions, 1,630 at-risk specs) go through a live
    `runbook run`, its journal and `runbook report` (about 2 s and 1 s here; the timeouts only
    catch a return of the quadratic dependency-path search, which took 10 s)."""
    assert _worm_project(tmp_path / "app") == 2915
    journal = tmp_path / "run.jsonl"
    run = run_cli(
        "run", PLAYBOOK, "--target", tmp_path / "app", "--yes", "--journal", journal, timeout=60
    )
    assert "2915 compromised, 1630 at-risk" in run.stdout, run.stdout + run.stderr
    report = run_cli("report", journal, "--format", "json", timeout=30)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    text = json.dumps(doc)
    assert text.count('"compromised"') >= 2915 and text.count('"at-risk"') >= 1630
    markdown = run_cli("report", journal, timeout=30).stdout
    assert "2915 compromised, 1630 at-risk" in markdown
    assert "@accordproject/concerto-analysis@3.24.1" in markdown


def test_the_commit_message_of_a_big_playbook_lists_what_the_run_found(
    tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """With 1,630 packages in the playbook, the commit message lists only those the run found (a
    line each) and counts the others, instead of 1,630 lines."""
    from tests.test_undo import live_run  # registers `test_write_files`

    target = tmp_path / "project"
    target.mkdir()
    (target / "package.json").write_text('{"dependencies": {"@ctrl/tinycolor": "^4.1.0"}}\n')
    repo = git.Repo.init(target, initial_branch="main")
    repo.index.add(["package.json"])
    author = git.Actor("Test Author", "author@example.test")
    repo.index.commit("initial", author=author, committer=author)
    head = PLAYBOOK.read_text(encoding="utf-8").split("\nsteps:\n")[0] + "\nsteps:\n"
    steps = """\
  - {id: detect, uses: detect, title: Detect, confirm: never}
  - id: pin
    uses: test_write_files
    title: Pin
    with:
      files:
        package.json: "{\\"dependencies\\": {\\"@ctrl/tinycolor\\": \\"4.1.0\\"}}\\n"
  - id: commit
    uses: git_commit
    title: Commit
    with: {author_name: Remediation Bot, author_email: bot@example.test}
"""
    _, summary = live_run(tmp_path, target, steps, sandbox_env, head=head)
    assert summary.outcome == "completed", summary.reason
    message = repo.head.commit.message
    assert "@ctrl/tinycolor: bad 4.1.1, 4.1.2" in message, message
    assert "and 1,629 other packages of the incident were not found here" in message
    assert "debug:" not in message and "zuper-sdk" not in message
    assert len(message.splitlines()) < 15
    assert "Runbook-Journal-Head: " in message
