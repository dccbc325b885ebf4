"""The bundled `shai-hulud-2025` playbook: it validates, carries the standard steps and the
published payload hashes with their sources, runs dry on fixtures made by real package managers
(a package with a safe pin, and one without: the pin step names it and the run goes on to the
credentials), stays quick on a normal project; and the pin step fixes npm, pnpm and yarn 1
projects against verdaccio (the test playbook's pins)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from runbook.step import StepContext
from steps.npm.lockfiles import parse_lockfile
from steps.osv.template import Facts, standard_steps
from steps.pin import PinParams, PinStep
from steps.scan import ScanOptions, scan
from tests.npmreg import FIXED_REGISTRY, NODE_MODULES, require_tools, start_registry, tool_env
from tests.support.context import step_context

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_PATH = ROOT / "playbooks" / "shai-hulud-2025.yaml"
BUNDLED = load_playbook(BUNDLED_PATH).playbook
HERE = ROOT / "tests" / "fixtures" / "shai-hulud"
TEST_PLAYBOOK = load_playbook(HERE / "playbook.yaml").playbook
LOCKS = ("package-lock.json", "yarn.lock", "pnpm-lock.yaml")


def test_validates(run_cli) -> None:
    out = run_cli("validate", "shai-hulud-2025")
    assert out.returncode == 0, out.stderr
    assert "ok (shai-hulud-2025 v1, 18 steps)" in out.stdout
    listed = run_cli("list")
    assert "shai-hulud-2025\t" in listed.stdout


def test_has_the_standard_steps_in_order() -> None:
    standard = [(s["id"], s["uses"]) for s in standard_steps(Facts("x", [], []))]
    mine = [(s.id, s.uses) for s in BUNDLED.steps]
    positions = [mine.index(step) for step in standard]
    assert positions == sorted(positions), mine
    extra = {s for s in mine if s not in standard}
    assert extra == {
        ("clean-repositories", "manual"),
        ("review-npm-publishes", "review_npm_publishes"),
        ("exfiltration-repositories", "manual"),
    }


def test_payload_hashes_are_the_published_ones_each_with_its_source() -> None:
    indicators = BUNDLED.incident.indicators
    files = {e.name: e for e in indicators.package_files}
    assert len(files["bundle.js"].sha256) == 7
    assert files["setup_bun.js"].sha256 == [
        "a3894003ad1d293ba96d77881ccd2071446dc3f65f434669b49b3da92421901a"
    ]
    assert len(files["bun_environment.js"].sha256) == 3
    assert files["bundle.js"].other_hashes == "ignore"  # thousands of packages ship a bundle.js
    assert files["setup_bun.js"].other_hashes == "at-risk"
    described = {h.sha256: h.description for h in indicators.file_hashes}
    for entry in files.values():
        for digest in entry.sha256:
            assert re.search(r"Socket|Unit 42|Koi", described[digest]), digest
    # and in the file, every hash line names its source in a comment
    for line in BUNDLED_PATH.read_text().splitlines():
        if re.match(r"\s+- [0-9a-f]{64}", line):
            assert "#" in line, line
    assert indicators.runner_names == ["SHA1HULUD"]
    references = " ".join(r.url for r in BUNDLED.incident.references)
    for vendor in (
        "stepsecurity",
        "socket.dev",
        "wiz.io",
        "aikido",
        "unit42",
        "datadoghq",
        "github.com/advisories",
        "Cobenian/shai-hulud-detect",
    ):
        assert vendor in references, vendor


def test_safe_pins_where_known_and_none_for_the_rest() -> None:
    pinned = {p.name: p.safe_pins for p in BUNDLED.incident.packages if p.safe_pins}
    assert pinned["debug"] == {"4": "4.4.3"} and pinned["chalk"] == {"5": "5.6.2"}
    assert pinned["@ctrl/tinycolor"] == {"4": "4.2.0"}
    assert len(pinned) == 19
    for package in BUNDLED.incident.packages:
        for version in package.safe_pins.values():
            assert version not in package.bad_versions
    pin = BUNDLED.step("pin")
    assert pin.continue_on_error
    reinstall = BUNDLED.step("reinstall")
    assert reinstall.when[0].step == "pin" and reinstall.continue_on_error
    ids = [s.id for s in BUNDLED.steps]
    assert ids.index("clean-repositories") < ids.index("reinstall")  # its scan counts workflows


def copy(name: str, tmp_path: Path, *, tree: bool = True) -> Path:
    ignore = None if tree else shutil.ignore_patterns("node_modules")
    return Path(
        shutil.copytree(HERE / "projects" / name, tmp_path / name, symlinks=True, ignore=ignore)
    )


def journal_of(state: Path) -> list[dict]:
    path = next(state.rglob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def finished(entries: list[dict]) -> dict[str, tuple[str, str]]:
    out = {}
    for e in entries:
        if e["event"] == "step_finished":
            out[e["data"]["step"]] = (e["data"]["outcome"], e["data"]["summary"])
        elif e["event"] == "step_skipped":
            out[e["data"]["step"]] = ("skipped", e["data"]["reason"])
    return out


def test_dry_run_on_a_project_with_a_pinned_package(tmp_path: Path, run_cli, sandbox_env) -> None:
    project = copy("npm-worm-v1", tmp_path)
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    out = run_cli("run", "shai-hulud-2025", "--target", project, "--dry-run", "--no-input")
    assert out.returncode == 0, out.stdout + out.stderr
    steps = finished(journal_of(Path(sandbox_env["XDG_STATE_HOME"])))
    assert steps["detect"][0] == "succeeded" and "compromised" in steps["detect"][1]
    assert steps["pin"] == ("succeeded", "dry run: 1 file(s) and 1 lockfile(s) would change")
    assert steps["reinstall"][0] == "succeeded"
    assert steps["review-npm-publishes"][0] == "succeeded"
    assert steps["exfiltration-repositories"][0] == "outstanding"
    assert after_equals(project, before)


def after_equals(project: Path, before: dict[Path, bytes]) -> bool:
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    return after == before


def test_dry_run_without_a_safe_pin_names_the_package_and_goes_on(
    tmp_path: Path, run_cli, sandbox_env
) -> None:
    project = copy("pnpm-worm-v2", tmp_path)
    out = run_cli("run", "shai-hulud-2025", "--target", project, "--dry-run", "--no-input")
    assert out.returncode == 1  # a failed step is a failed run, even when it goes on
    steps = finished(journal_of(Path(sandbox_env["XDG_STATE_HOME"])))
    outcome, summary = steps["pin"]
    assert outcome == "failed"
    assert "no safe pin for @zapier/zapier-sdk 0.x" in summary
    assert steps["reinstall"][0] == "skipped" and steps["verify"][0] == "skipped"
    assert steps["commit-fix"][0] == "skipped"
    for later in ("discover-credentials", "rotate-npm-tokens", "review-npm-publishes"):
        assert steps[later][0] == "succeeded", later
    detect = next(
        e["data"]
        for e in journal_of(Path(sandbox_env["XDG_STATE_HOME"]))
        if e["event"] == "step_planned" and e["data"]["step"] == "detect"
    )
    kinds = {f["kind"] for f in detect["findings"]}
    assert {"lockfile", "installed", "payload", "repo-file"} <= kinds


def test_scan_of_a_normal_project_stays_quick() -> None:
    """A few hundred installed packages (the test tools' own tree), 1,630 bad package names."""
    tree = ROOT / "tests" / "registry"
    started = time.monotonic()
    result = scan([tree], BUNDLED.incident, ScanOptions(history=True))
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    assert not [f for f in result.findings if f.kind in ("payload", "repo-file")]
    started = time.monotonic()
    load_playbook(BUNDLED_PATH)
    assert time.monotonic() - started < 5


# -- the pins, live, against verdaccio -----------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("npm", "yarn1", "pnpm", "verdaccio")
    with start_registry(tmp_path_factory.mktemp("registry"), storage=HERE / "storage") as reg:
        yield reg


def live_context(target: Path, env: dict) -> StepContext:
    return step_context(TEST_PLAYBOOK, TEST_PLAYBOOK.step("pin"), target, env)


def resolved(target: Path) -> set[str]:
    for name in LOCKS:
        path = target / name
        if path.is_file():
            manifest = json.loads((target / "package.json").read_text())
            graph = parse_lockfile(path, path.read_bytes(), manifest)
            return {f"{n.name}@{n.version}" for n in graph.nodes.values() if n.version}
    raise AssertionError("no lockfile")


@pytest.mark.parametrize(
    ("fixture", "bad", "good"),
    [
        ("npm-worm-v1", "@ctrl/tinycolor@4.1.1", "@ctrl/tinycolor@4.1.0"),
        ("pnpm-worm-v2", "@zapier/zapier-sdk@0.15.5", "@zapier/zapier-sdk@0.15.4"),
        ("yarn1-worm-v2", "@zapier/zapier-sdk@0.15.5", "@zapier/zapier-sdk@0.15.4"),
    ],
)
def test_pin_fixes_the_lockfile(fixture, bad, good, registry, tmp_path: Path) -> None:
    target = copy(fixture, tmp_path, tree=False)
    for lock in LOCKS:
        path = target / lock
        if path.is_file():
            path.write_text(path.read_text().replace(FIXED_REGISTRY, registry.url))
    env = tool_env(registry.url, tmp_path / "home")
    env["PATH"] = os.pathsep.join(
        [str(NODE_MODULES / "yarn" / "bin"), str(NODE_MODULES / ".bin"), env["PATH"]]
    )
    assert bad in resolved(target)
    kind = PinStep(PinParams())
    ctx = live_context(target, env)
    plan = kind.plan(ctx)
    result = kind.apply(ctx, plan)
    assert result.outcome == "succeeded", result.summary
    got = resolved(target)
    assert bad not in got and good in got, got
    findings = scan([target], TEST_PLAYBOOK.incident, ScanOptions()).findings
    assert not [f for f in findings if f.kind in ("lockfile", "manifest")], findings


def test_test_playbook_yaml_is_what_the_generator_writes() -> None:
    """playbook.yaml is playbook.template.yaml with the fake payloads' digests filled in."""
    import hashlib

    packages = HERE / "packages"
    digests = {
        "@BUNDLE@": packages / "ctrl-tinycolor-4.1.1" / "bundle.js",
        "@SETUP@": packages / "zapier-sdk-0.15.5" / "setup_bun.js",
        "@ENV@": packages / "zapier-sdk-0.15.5" / "bun_environment.js",
    }
    text = (HERE / "playbook.template.yaml").read_text()
    for marker, path in digests.items():
        text = text.replace(marker, hashlib.sha256(path.read_bytes()).hexdigest())
    assert (HERE / "playbook.yaml").read_text() == text
