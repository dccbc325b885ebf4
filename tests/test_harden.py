"""`harden` with the real npm, pnpm 10, yarn berry and bun against verdaccio.

For each manager: the step writes its settings, the manager itself confirms them, an install of
the fake `plain-crypto-js@4.2.1` (whose postinstall writes a marker) no longer runs the script
(for npm and yarn berry a control install without the settings shows that it did), and a version
published a minute ago is refused by the minimum release age.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import read_entries
from steps.harden import HardenParams, HardenStep, project_managers
from steps.harden_settings.catalog import Setting, settings_for
from steps.harden_settings.probe import find_tool, knows
from tests.npmreg import (
    MARKER_NAME,
    Registry,
    berry_rc,
    manager_env,
    publish,
    require_tools,
    run_tool,
    start_registry,
)
from tests.test_undo import HEAD, live_run
from tests.treehash import tree_digest

STEP = """\
  - id: harden
    uses: harden
    title: Harden the project
    confirm: destructive
    with: {checklist: false}
"""
FRESH = "fresh-lib"
VERSIONS = {"pnpm": "10.34.9", "berry": "4.18.1", "bun": "1.4.5"}
#: How each manager says a version is too young (not merely missing).
AGE_REFUSAL = {
    "npm": "with a date before",
    "pnpm": "minimumReleaseAge",
    "berry": "are quarantined",
    "bun": "blocked by minimum-release-age",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("npm", "pnpm", "berry", "bun", "verdaccio")
    reg = start_registry(tmp_path_factory.mktemp("verdaccio"))
    try:
        # a version published just now: any minimum release age refuses it
        package = tmp_path_factory.mktemp("fresh") / FRESH
        package.mkdir()
        (package / "package.json").write_text(
            json.dumps({"name": FRESH, "version": "1.0.0", "main": "index.js", "license": "MIT"})
        )
        (package / "index.js").write_text("module.exports = 1;\n")
        env = manager_env(tmp_path_factory.mktemp("publisher"), reg, "npm")
        publish(package, env)
        yield reg
    finally:
        reg.stop()


def make_project(tmp_path: Path, reg: Registry, manager: str, name: str = "project") -> Path:
    project = tmp_path / name
    project.mkdir()
    manifest: dict = {
        "name": "app",
        "version": "1.0.0",
        "private": True,
        "dependencies": {"plain-crypto-js": "4.2.1"},
    }
    if manager in VERSIONS:
        tool = "yarn" if manager == "berry" else manager
        manifest["packageManager"] = f"{tool}@{VERSIONS[manager]}"
    (project / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if manager == "berry":
        # yarn 4.18 runs no build script by default; this project turned them on
        rc = berry_rc(reg.url, nodeLinker="node-modules", enableScripts="true")
        (project / ".yarnrc.yml").write_text("# the project's own settings stay\n" + rc)
        (project / "yarn.lock").write_text("")
    if manager == "npm":
        (project / ".npmrc").write_text("fund=false\r\n")  # CRLF, no final newline kept
    return project


def install(tool: str, project: Path, env: dict, *args: str):
    if tool == "berry":
        return run_tool("berry", ["install", *args], cwd=project, env=env, check=False)
    verb = {"npm": ["install"], "pnpm": ["install"], "bun": ["install"]}[tool]
    return run_tool(tool, [*verb, *args], cwd=project, env=env, check=False)


def add_fresh(tool: str, project: Path, env: dict):
    verb = {"npm": "install", "pnpm": "add", "berry": "add", "bun": "add"}[tool]
    return run_tool(tool, [verb, f"{FRESH}@1.0.0"], cwd=project, env=env, check=False)


def finished(journal: Path) -> dict:
    return [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"][-1]


def planned(journal: Path) -> dict:
    return next(e["data"] for e in read_entries(journal) if e["event"] == "step_planned")


@pytest.mark.parametrize(
    ("tool", "file", "lines"),
    [
        ("npm", ".npmrc", ["ignore-scripts=true", "save-exact=true", "min-release-age=7"]),
        (
            "pnpm",
            "pnpm-workspace.yaml",
            ["onlyBuiltDependencies: []", "saveExact: true", "minimumReleaseAge: 10080"],
        ),
        (
            "berry",
            ".yarnrc.yml",
            ["enableScripts: false", 'defaultSemverRangePrefix: ""', "npmMinimalAgeGate: 7d"],
        ),
        ("bun", "bunfig.toml", ["[install]", "exact = true", "minimumReleaseAge = 604800"]),
    ],
)
def test_settings_are_written_confirmed_and_stop_the_attack(tmp_path, registry, tool, file, lines):
    require_tools(tool)
    env = manager_env(tmp_path, registry, tool)
    project = make_project(tmp_path, registry, tool)
    before = (project / file).read_text() if (project / file).exists() else ""
    if tool in ("npm", "berry"):  # control: without the settings, the postinstall runs
        control = make_project(tmp_path, registry, tool, "control")
        extra = ["--dangerously-allow-all-scripts"] if tool == "npm" else []
        done = install(tool, control, env, *extra)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (tmp_path / "markers" / MARKER_NAME).exists(), "the control install ran no script"
        (tmp_path / "markers" / MARKER_NAME).unlink()

    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert summary.outcome == "completed", summary.reason
    done = finished(journal)
    assert done["outcome"] == "succeeded", done["summary"]
    verified = done["result"]["verified"]
    settings = [line for line in lines if line != "[install]"]  # bun: no scripts setting
    assert len(verified) == len(settings) and all(row["ok"] for row in verified), verified
    text = (project / file).read_text()
    for line in lines:
        assert line in text.splitlines(), text
    kept = [ln for ln in before.splitlines() if not ln.startswith("enableScripts")]
    assert text.splitlines()[: len(kept)] == kept  # the project's own lines stay, in order
    [action] = planned(journal)["actions"]
    assert action["kind"] == "edit" and action["destructive"]
    assert all(f"+{line}" in action["detail"]["diff"] for line in lines if line != "[install]")

    # an install that would run plain-crypto-js's postinstall no longer does
    result = install(tool, project, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (project / "node_modules" / "plain-crypto-js").is_dir()
    assert not (tmp_path / "markers" / MARKER_NAME).exists()
    # and a version published a minute ago is refused
    fresh = add_fresh(tool, project, env)
    assert fresh.returncode != 0, fresh.stdout[-2000:]
    assert AGE_REFUSAL[tool] in fresh.stdout + fresh.stderr
    assert not (project / "node_modules" / FRESH).exists()


def test_npm_file_keeps_crlf_and_undo_restores_it(tmp_path, registry, run_cli):
    env = manager_env(tmp_path, registry, "npm")
    project = make_project(tmp_path, registry, "npm")
    original = (project / ".npmrc").read_bytes()
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert summary.outcome == "completed", summary.reason
    assert (project / ".npmrc").read_bytes() == (
        b"fund=false\r\nignore-scripts=true\r\nsave-exact=true\r\nmin-release-age=7\r\n"
    )
    undone = run_cli("undo", journal, "--target", project, env=env)
    assert undone.returncode == 0, undone.stderr
    assert (project / ".npmrc").read_bytes() == original


def test_an_npmrc_with_a_token_is_never_copied(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = make_project(tmp_path, registry, "npm")
    token = "npm_" + "R7kq2VxLmP9sT4wZ8yB3nC6dF1gH5jK0aE2i"
    host = registry.url.split("://", 1)[1]
    (project / ".npmrc").write_text(f"//{host}:_authToken={token}\nfund=false\n")
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert summary.outcome == "completed", summary.reason
    text = (project / ".npmrc").read_text()
    assert text.startswith(f"//{host}:_authToken={token}\nfund=false\n")
    assert "ignore-scripts=true" in text
    state = tmp_path / "state"
    for path in state.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path
    notes = planned(journal)["notes"]
    assert any("holds a credential: it is rewritten in place with no backup" in n for n in notes)
    [action] = planned(journal)["actions"]
    assert action["detail"]["backup"] is False
    ops = [e["data"]["op"] for e in read_entries(journal) if e["event"] == "effect"]
    assert ops == ["write_secret_file"]


def test_a_stricter_existing_setting_is_kept(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")
    project = make_project(tmp_path, registry, "npm")
    (project / ".npmrc").write_text("min-release-age=30\nignore-scripts=true\n")
    journal, _ = live_run(tmp_path, project, STEP, env, head=HEAD)
    text = (project / ".npmrc").read_text()
    assert "min-release-age=30" in text and "min-release-age=7" not in text
    assert text.count("ignore-scripts=true") == 1
    notes = planned(journal)["notes"]
    assert any("`min-release-age` already `30`: kept" in n for n in notes), notes
    rows = {r["key"]: r for r in finished(journal)["result"]["verified"]}
    assert rows["min-release-age"]["ok"] and rows["min-release-age"]["answer"] == "30"


def test_a_manager_that_is_not_installed_gets_nothing_written(tmp_path, registry):
    env = manager_env(tmp_path, registry, "npm")  # PATH has no pnpm launcher
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not (Path(p) / "pnpm").exists())
    project = make_project(tmp_path, registry, "pnpm")
    journal, _ = live_run(tmp_path, project, STEP, env, head=HEAD)
    assert not (project / "pnpm-workspace.yaml").exists()
    plan = planned(journal)
    assert plan["actions"] and all(a["kind"] == "manual" for a in plan["actions"])
    texts = [a["summary"] for a in plan["actions"]]
    assert any("`minimumReleaseAge: 10080`" in t and "not installed" in t for t in texts), texts
    assert finished(journal)["outcome"] == "outstanding"


@pytest.mark.parametrize("tool", ["npm", "berry", "bun"])
def test_the_real_manager_says_which_settings_it_knows(tmp_path, registry, tool):
    require_tools(tool)
    env = manager_env(tmp_path, registry, tool)
    project = make_project(tmp_path, registry, tool)
    found = find_tool(tool, project, env)  # type: ignore[arg-type]
    assert found.problem is None and found.version
    real = settings_for(tool, ["exact", "release-age"], 7, [])  # type: ignore[arg-type]
    assert all(knows(found, s) is True for s in real)
    bogus = Setting(tool, "release-age", "minimumReleaseAgeInFortnights", "1", 1)  # type: ignore[arg-type]
    assert knows(found, bogus) is False
    decision = HardenStep(HardenParams())._decide(found, bogus, "")
    assert decision.state == "unsupported"
    assert f"does not know `{bogus.key}`" in decision.reason


def test_managers_found_in_a_project(tmp_path, registry):
    project = make_project(tmp_path, registry, "berry")
    (project / "bunfig.toml").write_text("")
    assert [m for m, _ in project_managers(project)] == ["berry", "bun"]


def test_dry_run_changes_nothing(tmp_path, registry):
    env = manager_env(tmp_path, registry, "berry")
    project = make_project(tmp_path, registry, "berry")
    before = tree_digest(project)
    journal, summary = live_run(tmp_path, project, STEP, env, head=HEAD, dry_run=True)
    assert summary.outcome == "completed", summary.reason
    assert tree_digest(project) == before
    assert finished(journal)["summary"].startswith("dry run: would write 3 setting(s)")
    effects = [e["data"] for e in read_entries(journal) if e["event"] == "effect"]
    assert [(e["op"], e["outcome"]) for e in effects] == [("write_file", "would")]
    shutil.rmtree(tmp_path / "state", ignore_errors=True)
