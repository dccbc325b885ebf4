"""`bad_ranges` (node-semver ranges of bad versions) work wherever `bad_versions` do: the manifest
judgement (a spec that can resolve into a range is at risk; one that cannot be compared is
unknown, never clean), the scan, the git history, `pin` (real npm against verdaccio) and the
commit message."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
import yaml

from runbook.models import AffectedPackage, Incident, Playbook
from runbook.playbook import load_playbook
from runbook.step import StepContext, StepError
from steps.git_commit import GitCommitStep
from steps.npm.badset import BadSet
from steps.npm.lockfiles import parse_lockfile
from steps.npm.ranges import Undecidable, overlap, range_majors
from steps.pin import PinParams, PinStep
from steps.scan.history import scan_repo
from tests.bigset_registry import publish_fakes
from tests.conftest import BUNDLED
from tests.npmreg import require_tools, run_tool, start_registry
from tests.support.context import step_context
from tests.test_pin import make_env
from tests.test_scan_history import commit

TINYCOLOR = ">=4.1.1 <=4.1.2"  # OSV: introduced 4.1.1, last_affected 4.1.2
DEBUG = ">=4.4.2 <4.5.0"  # OSV: introduced 4.4.2, fixed 4.5.0
PLAYBOOK_TEXT = f"""\
id: ranges-test
title: Bad ranges (test)
version: "1"
incident:
  summary: Two packages whose bad versions are given as ranges only.
  window: {{start: 2025-09-08T00:00:00Z, end: 2025-09-16T00:00:00Z}}
  packages:
    - {{name: "@ctrl/tinycolor", bad_ranges: ["{TINYCOLOR}"], safe_pins: {{"4": "4.1.0"}}}}
    - {{name: debug, bad_ranges: ["{DEBUG}"], safe_pins: {{"4": "4.4.1"}}}}
steps:
  - {{id: detect, uses: detect, title: Find the bad versions}}
  - {{id: pin, uses: pin, title: Pin, confirm: destructive}}
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    path = tmp_path_factory.mktemp("ranges") / "ranges.yaml"
    path.write_text(PLAYBOOK_TEXT)
    return load_playbook(path).playbook


@pytest.fixture(scope="module")
def badset(playbook: Playbook) -> BadSet:
    return BadSet(playbook.incident)


# -- do two ranges share a version? ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "bad_range", "example"),
    [
        ("^4.1.0", TINYCOLOR, "4.1.1"),
        ("~4.1.2", TINYCOLOR, "4.1.2"),
        ("4.1.2", TINYCOLOR, "4.1.2"),
        (">4.1.1", TINYCOLOR, "4.1.2"),
        ("4.x", TINYCOLOR, "4.1.1"),
        ("*", TINYCOLOR, "4.1.1"),
        ("4.1.0 - 4.1.1", TINYCOLOR, "4.1.1"),
        ("4.1.0 || ^4.1.2", TINYCOLOR, "4.1.2"),
        ("4.1.0", TINYCOLOR, None),
        ("~4.1.3", TINYCOLOR, None),
        ("<4.1.1", TINYCOLOR, None),
        ("^3.0.0", TINYCOLOR, None),
        (">=1.95.0", ">=1.95.6 <1.95.8", "1.95.6"),
        ("^1.95.8", ">=1.95.6 <1.95.8", None),  # `fixed` is exclusive
        ("^3.0.0", ">=4.1.1", None),  # no upper bound
        (">=5", ">=4.1.1", "5.0.0"),
        # pre-releases: admitted only where a comparator of each side carries one on that tuple
        ("^1.0.0", ">=2.0.0-rc.1 <2.0.0", None),
        ("^2.0.0-rc.0", ">=2.0.0-rc.2 <2.0.0", "2.0.0-rc.2"),
        (">2.0.0-beta <2.0.0-beta.5", ">=2.0.0-beta <2.0.0", "2.0.0-beta.0"),
        (">=2.0.0-beta.5 <2.0.0", ">=2.0.0-rc <2.0.0-rc.1", "2.0.0-rc"),
        (">=2.0.0-beta.5 <2.0.0", ">=2.0.0-alpha <2.0.0-beta", None),
    ],
)
def test_overlap(spec: str, bad_range: str, example: str | None) -> None:
    found = overlap(spec, bad_range)
    assert (found.example if found else None) == example


def test_overlap_spans_major_lines() -> None:
    assert range_majors(">=1.0.0 <3.0.0") == (1, 2)
    assert range_majors(">=4.1.1") == (4, None)
    assert range_majors(">=2.0.0-rc.1 <2.0.0") == (2, 2)
    found = overlap("*", ">=1.2.0 <3.1.0")
    assert found is not None and (found.low_major, found.high_major) == (1, 3)
    with pytest.raises(Undecidable):
        overlap("^1.0.0", "not a range at all")


# -- the manifest judgement ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "severity", "what"),
    [
        ("^4.1.0", "at-risk", f"admits 4.1.1 (bad range {TINYCOLOR})"),
        ("4.1.2", "at-risk", f"admits 4.1.2 (bad range {TINYCOLOR})"),
        ("latest", "at-risk", "a dist-tag or wildcard admits whatever was published"),
        ("npm:@ctrl/tinycolor@~4.1.1", "at-risk", f"admits 4.1.1 (bad range {TINYCOLOR})"),
        ("4.1.0", None, ""),
        ("^4.1.3", None, ""),
        ("github:bgrins/TinyColor#4.1.1", "unknown", "not a registry range"),
    ],
)
def test_judge_spec(badset: BadSet, spec: str, severity: str | None, what: str) -> None:
    verdict = badset.judge_spec("@ctrl/tinycolor", spec)
    if severity is None:
        assert verdict is None
        return
    assert verdict is not None and verdict.severity == severity
    assert verdict.what().startswith(what)
    if severity == "at-risk":
        assert verdict.lines == (4,)


def test_a_range_that_cannot_be_compared_is_unknown_never_clean() -> None:
    """A range the playbook validator would refuse (built around it here) cannot be compared
    with a spec: the spec is `unknown`, so the scan's verdict cannot be "not affected"."""
    odd = AffectedPackage.model_construct(
        name="odd", bad_versions=[], bad_ranges=["not a range"], any_version=False, safe_pins={}
    )
    badset = BadSet(Incident.model_construct(packages=[odd], indicators=_no_indicators()))
    verdict = badset.judge_spec("odd", "^1.0.0")
    assert verdict is not None and verdict.severity == "unknown"
    assert "cannot tell" in verdict.reason


def _no_indicators():
    from runbook.models import Indicators

    return Indicators()


# -- the scanner and the history -------------------------------------------------------------------
def test_scan_reports_specs_and_resolutions_in_a_range(tmp_path: Path, run_cli) -> None:
    (tmp_path / "pb.yaml").write_text(PLAYBOOK_TEXT)
    app = tmp_path / "app"
    app.mkdir()
    deps = {"@ctrl/tinycolor": "^4.1.0", "debug": "4.4.1"}
    (app / "package.json").write_text(json.dumps({"name": "app", "dependencies": deps}))
    lock = {
        "name": "app",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "dependencies": deps},
            "node_modules/@ctrl/tinycolor": {"version": "4.1.2"},
            "node_modules/debug": {"version": "4.4.1"},
            "node_modules/x/node_modules/debug": {"version": "4.4.9"},
        },
    }
    (app / "package-lock.json").write_text(json.dumps(lock, indent=2))
    result = run_cli("scan", app, "--playbook", tmp_path / "pb.yaml", "--format", "json")
    findings = json.loads(result.stdout)["findings"]
    got = {(f["kind"], f["severity"], f["package"], f["version"]) for f in findings}
    assert got == {
        ("manifest", "at-risk", "@ctrl/tinycolor", "^4.1.0"),
        ("lockfile", "compromised", "@ctrl/tinycolor", "4.1.2"),
        ("lockfile", "compromised", "debug", "4.4.9"),
    }
    manifest = next(f for f in findings if f["kind"] == "manifest")
    assert manifest["message"].endswith(f"'^4.1.0' admits 4.1.1 (bad range {TINYCOLOR})")
    assert result.returncode == 1


def test_history_searches_range_packages_by_name(badset: BadSet, tmp_path: Path) -> None:
    """`git log -G` cannot know the versions of a range: it looks for the package's name, and
    each candidate commit's lockfile is judged by the range."""

    def lock(version: str) -> str:
        packages = {"": {"name": "app"}, "node_modules/debug": {"version": version}}
        return json.dumps({"lockfileVersion": 3, "packages": packages}, indent=2) + "\n"

    repo = git.Repo.init(tmp_path / "repo")
    shas = [
        commit(repo, {"package-lock.json": lock(v)}, "Alice", f"2025-09-{day}T10:00:00+00:00")
        for v, day in (("4.4.1", "10"), ("4.4.3", "11"), ("4.5.0", "12"))
    ]
    findings = list(scan_repo(tmp_path / "repo", badset))
    assert [(f.package, f.version) for f in findings] == [("debug", "4.4.3")]
    assert f"from {shas[1][:10]}" in findings[0].message
    assert f"until {shas[2][:10]}" in findings[0].message


# -- pin ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    require_tools("verdaccio", "npm")
    work = tmp_path_factory.mktemp("ranges-registry")
    with start_registry(work / "registry") as reg:
        publish_fakes(reg, work)
        yield reg


def _context(playbook: Playbook, target: Path, env: dict) -> StepContext:
    pin = next(s for s in load_playbook(BUNDLED).playbook.steps if s.id == "pin")
    return step_context(playbook, pin, target, env)


def test_pin_moves_direct_and_transitive_copies_out_of_the_ranges(
    playbook: Playbook, badset: BadSet, registry, tmp_path: Path
) -> None:
    """`@ctrl/tinycolor ^4.1.0` resolves 4.1.1 (in its range), `bigset-lib-a` pulls `debug`
    4.4.2 (in its range): the direct spec is pinned to the safe pin, each resolved bad version is
    overridden, and npm's regenerated lockfile holds nothing in either range."""
    env = make_env(registry, tmp_path)
    target = tmp_path / "app"
    target.mkdir()
    deps = {"@ctrl/tinycolor": "^4.1.0", "bigset-lib-a": "^1.0.0"}
    (target / "package.json").write_text(json.dumps({"name": "app", "dependencies": deps}))
    run_tool("npm", ["install", "--package-lock-only", "--ignore-scripts"], cwd=target, env=env)

    kind = PinStep(PinParams())
    ctx = _context(playbook, target, env)
    result = kind.apply(ctx, kind.plan(ctx))
    assert result.outcome == "succeeded", result.summary

    manifest = json.loads((target / "package.json").read_text())
    assert manifest["dependencies"]["@ctrl/tinycolor"] == "4.1.0"
    assert manifest["overrides"] == {"@ctrl/tinycolor@4.1.1": "4.1.0", "debug@4.4.2": "4.4.1"}
    lock = target / "package-lock.json"
    graph = parse_lockfile(lock, lock.read_bytes(), manifest)
    got = {(n.name, n.version) for n in graph.nodes.values() if n.version}
    assert {("@ctrl/tinycolor", "4.1.0"), ("debug", "4.4.1")} <= got
    assert not [pair for pair in got if badset.is_bad(*pair)]


def test_pin_refuses_a_safe_pin_inside_a_bad_range(tmp_path: Path) -> None:
    text = PLAYBOOK_TEXT.replace('safe_pins: {"4": "4.1.0"}', 'safe_pins: {"4": "4.1.2"}')
    path = tmp_path / "pb.yaml"
    path.write_text(text)
    playbook = load_playbook(path).playbook
    target = tmp_path / "app"
    target.mkdir()
    manifest = {"name": "app", "dependencies": {"@ctrl/tinycolor": "^4.1.0"}}
    (target / "package.json").write_text(json.dumps(manifest))
    with pytest.raises(
        StepError, match=r"safe pin for @ctrl/tinycolor 4\.x, 4\.1\.2, is itself bad"
    ):
        PinStep(PinParams()).plan(_context(playbook, target, {}))


# -- the commit message -------------------------------------------------------------------------
def test_the_commit_message_names_the_ranges(playbook: Playbook, tmp_path: Path) -> None:
    message = GitCommitStep.message(_context(playbook, tmp_path, {}), ["package.json"])
    assert f"@ctrl/tinycolor: bad {TINYCOLOR}; safe 4.1.0 (4.x)" in message
    assert f"debug: bad {DEBUG}; safe 4.4.1 (4.x)" in message
    assert "every version" not in message
    # a package whose every version is bad still says so
    axios = GitCommitStep.message(_context(load_playbook(BUNDLED).playbook, tmp_path, {}), [])
    assert "plain-crypto-js: bad every version" in axios
    assert yaml.safe_load(PLAYBOOK_TEXT)["incident"]["packages"][0]["bad_ranges"] == [TINYCOLOR]
