"""`pin` against real npm 11, yarn 1, yarn berry, pnpm 10 and bun, with verdaccio."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from runbook.playbook import load_playbook
from runbook.step import StepContext, StepError
from steps.npm.badset import BadSet
from steps.npm.lockfiles import parse_lockfile
from steps.pin import PinParams, PinStep
from tests.conftest import BUNDLED
from tests.npmreg import (
    FIXED_REGISTRY,
    NODE_MODULES,
    berry_rc,
    require_tools,
    start_registry,
    tool_env,
    tool_paths,
)
from tests.support.context import step_context

FIXTURES = Path(__file__).parent / "fixtures" / "projects"
PLAYBOOK = load_playbook(BUNDLED).playbook
LOCKS = ("package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("npm", "yarn1", "berry", "pnpm", "bun", "verdaccio")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def make_env(registry, tmp_path: Path) -> dict[str, str]:
    env = tool_env(registry.url, tmp_path / "home")
    bun_dir = tool_paths()["bun"].parent
    yarn1 = NODE_MODULES / "yarn" / "bin"
    env["PATH"] = os.pathsep.join(
        [str(bun_dir), str(yarn1), str(NODE_MODULES / ".bin"), env["PATH"]]
    )
    return env


def context(target: Path, env: dict, *, dry_run: bool = False, records=None) -> StepContext:
    step = next(s for s in PLAYBOOK.steps if s.id == "pin")
    return step_context(PLAYBOOK, step, target, env, dry_run=dry_run, records=records)


def run_pin(target: Path, env: dict, **params):
    kind = PinStep(PinParams(**params))
    ctx = context(target, env)
    plan = kind.plan(ctx)
    assert kind.current_fingerprint(ctx, plan) == plan.fingerprint
    return plan, kind.apply(ctx, plan)


def copy_fixture(name: str, tmp_path: Path, registry=None) -> Path:
    """A fixture without node_modules; lockfile URLs point at `registry` (yarn 1 fetches them)."""
    target = tmp_path / name
    shutil.copytree(
        FIXTURES / name, target, symlinks=True, ignore=shutil.ignore_patterns("node_modules")
    )
    if registry is not None:
        for lock in LOCKS:
            path = target / lock
            if path.is_file():
                path.write_text(path.read_text().replace(FIXED_REGISTRY, registry.url))
    return target


def resolved(target: Path) -> set[str]:
    """name@version of every package in the project's lockfile."""
    for name in LOCKS:
        path = target / name
        if path.is_file():
            manifest = json.loads((target / "package.json").read_text())
            graph = parse_lockfile(path, path.read_bytes(), manifest)
            return {f"{n.name}@{n.version}" for n in graph.nodes.values() if n.version}
    raise AssertionError("no lockfile")


def assert_clean(target: Path) -> set[str]:
    got = resolved(target)
    badset = BadSet(PLAYBOOK.incident)
    bad = {x for x in got if badset.is_bad(*x.rsplit("@", 1)) or x.startswith("plain-crypto-js@")}
    assert not bad, bad
    return got


def berry_ready(target: Path, registry) -> None:
    rc = berry_rc(registry.url, nodeLinker="node-modules", yarnPath=str(tool_paths()["berry"]))
    (target / ".yarnrc.yml").write_text(rc)


@pytest.mark.parametrize(
    "fixture",
    [
        "npm-v3-direct",
        "npm-transitive-nested",
        "npm-alias",
        "npm-workspaces",
        "npm-legacy-0x",
        "yarn1-transitive",
        "pnpm10",
        "yarn-berry",
    ],
)
def test_pin_regenerates_a_clean_lockfile(fixture, registry, tmp_path):
    env = make_env(registry, tmp_path)
    target = copy_fixture(fixture, tmp_path, registry)
    if fixture == "yarn-berry":
        berry_ready(target, registry)
    plan, result = run_pin(target, env)
    assert result.outcome == "succeeded", result.summary
    assert any(a.kind == "run" for a in plan.actions)
    got = assert_clean(target)
    assert {v for v in got if v.startswith("axios@")} <= {"axios@1.14.0", "axios@0.30.3"}
    # idempotent: nothing left to do
    again = PinStep(PinParams()).plan(context(target, env))
    assert again.actions == []


def test_bun_lockfile_is_regenerated(registry, tmp_path):
    env = make_env(registry, tmp_path)
    target = copy_fixture("bun", tmp_path, registry)
    _, result = run_pin(target, env)
    assert result.summary
    text = (target / "bun.lock").read_text()
    assert "plain-crypto-js" not in text and "axios@1.14.1" not in text.replace(
        '"axios@1.14.1":', ""
    )
    assert '"axios@1.14.0"' in text and '"axios@0.30.3"' in text
    manifest = json.loads((target / "package.json").read_text())
    assert manifest["dependencies"]["axios"] == "1.14.0"
    assert manifest["overrides"] == {"axios@0.30.4": "0.30.3", "axios@1.14.1": "1.14.0"}


def test_missing_manager_fails_with_the_command_and_a_rerun_resumes(registry, tmp_path):
    env = make_env(registry, tmp_path)
    target = copy_fixture("npm-v2", tmp_path, registry)
    lock_before = (target / "package-lock.json").read_bytes()
    bare = {**env, "PATH": str(tmp_path / "empty")}
    with pytest.raises(StepError, match="npm install --package-lock-only --ignore-scripts"):
        run_pin(target, bare)
    assert json.loads((target / "package.json").read_text())["dependencies"]["axios"] == "1.14.0"
    assert (target / "package-lock.json").read_bytes() == lock_before
    plan = PinStep(PinParams()).plan(context(target, env))
    assert [a.kind for a in plan.actions] == ["run"]
    _, result = run_pin(target, env)
    assert result.outcome == "succeeded"
    assert_clean(target)


def test_malformed_manifest_refuses_and_writes_nothing(tmp_path):
    target = copy_fixture("npm-workspaces", tmp_path)
    bad = target / "packages" / "web" / "package.json"
    bad.write_text('{\n  "dependencies": {\n    "axios": "^1.14.0",\n  }\n}\n')
    records: list = []
    with pytest.raises(StepError, match=r"packages/web/package.json, line 4: .*"):
        PinStep(PinParams()).plan(context(target, {}, records=records))
    assert records == []


def test_dry_run_changes_nothing(tmp_path):
    target = copy_fixture("npm-v3-direct", tmp_path)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    kind = PinStep(PinParams())
    ctx = context(target, {}, dry_run=True)
    plan = kind.plan(ctx)
    assert plan.destructive and "1.14.0" in plan.actions[0].detail["diff"]
    result = kind.apply(ctx, plan)
    assert result.outcome == "succeeded"
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


# -- files that are not what their name says ------------------------------------------------------
PIN_ONLY = """\
id: pin-only
title: pin (test)
version: "1"
incident:
  summary: axios 1.14.1 pulled plain-crypto-js.
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1", "0.30.4"], safe_pins: {"1": "1.14.0", "0": "0.30.3"}}
    - {name: plain-crypto-js, any_version: true}
steps:
  - {id: pin, uses: pin, title: Pin axios, confirm: destructive}
"""


def dry_run_pin(target: Path, tmp_path: Path) -> tuple[str, str]:
    """`runbook run --dry-run` of a pin-only playbook through the real CLI, with a timeout (a
    FIFO read would block forever); returns (outcome, summary) of the pin step."""
    import subprocess

    from runbook.journal import read_entries
    from tests.conftest import RUNBOOK

    playbook = tmp_path / "pin-only.yaml"
    playbook.write_text(PIN_ONLY)
    journal = tmp_path / "run.jsonl"
    env = {
        "PATH": str(tmp_path / "empty"),  # no package manager: planning alone is tested
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "RUNBOOK_OPERATOR": "tester",
    }
    flags = ["--dry-run", "--yes", "--journal", journal]
    subprocess.run(
        [str(RUNBOOK), "run", playbook, "--target", target, *flags],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    [done] = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    return done["outcome"], done["summary"]


def test_a_fifo_package_json_beside_a_lockfile_is_named_not_waited_on(tmp_path):
    target = copy_fixture("npm-v3-direct", tmp_path)
    manifest = target / "package.json"
    manifest.unlink()
    os.mkfifo(manifest)
    outcome, summary = dry_run_pin(target, tmp_path)
    assert outcome == "failed"
    assert f"pin: cannot read {manifest}: is a FIFO, not a regular file" in summary


def test_a_lockfile_linked_to_dev_zero_is_refused(tmp_path):
    target = copy_fixture("npm-v3-direct", tmp_path)
    lock = target / "package-lock.json"
    lock.unlink()
    lock.symlink_to("/dev/zero")
    outcome, summary = dry_run_pin(target, tmp_path)
    assert outcome == "failed"
    assert f"pin: cannot read {lock}: is a symlink (not followed)" in summary


def test_a_fifo_yarnrc_does_not_block_detection(tmp_path):
    """yarn berry's `yarnPath` is looked up in .yarnrc.yml: a FIFO there means no yarnPath."""
    target = copy_fixture("yarn-berry", tmp_path)
    rc = target / ".yarnrc.yml"
    rc.unlink(missing_ok=True)
    os.mkfifo(rc)
    outcome, summary = dry_run_pin(target, tmp_path)
    # planned to the end: with no yarnPath and no yarn on PATH, it stops at the regeneration
    assert outcome == "failed"
    assert "yarn is not installed (manifests are edited)" in summary
