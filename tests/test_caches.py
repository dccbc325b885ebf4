"""`clear_caches` against caches that real npm, yarn 1, berry, pnpm 10 and bun filled.

Each test gets a copy of one HOME whose caches hold the fake axios@1.14.1 (and its
plain-crypto-js@4.2.1); the step runs through a real Runner, Journal and Effects with yarn, pnpm
and bun reachable on PATH through small shims, and the `--host` scan is asked before and after.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from runbook.effects import EffectError, Effects
from runbook.journal import Journal, read_entries, verify
from runbook.operator import HeadlessOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor
from runbook.registry import default_registry
from runbook.runner import Runner
from tests.npmreg import (
    berry_rc,
    require_tools,
    run_tool,
    start_registry,
    tool_command,
    tool_env,
)
from tests.treehash import tree_digest

MANAGERS = ("npm", "yarn1", "berry", "pnpm", "bun")
ADD = {
    "berry": ["add", "axios@1.14.1"],
    "npm": ["install", "--ignore-scripts", "axios@1.14.1"],
    "yarn1": ["add", "--ignore-scripts", "axios@1.14.1"],
    "pnpm": ["add", "--ignore-scripts", "axios@1.14.1"],
    "bun": ["add", "--ignore-scripts", "axios@1.14.1"],
}
SHIMS = {"yarn": "yarn1", "pnpm": "pnpm", "bun": "bun"}
PLAYBOOK = """\
id: caches-test
title: caches test
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
    - {name: plain-crypto-js, any_version: true}
steps:
  - id: caches
    title: Clear package-manager caches
    uses: clear_caches
    confirm: destructive
"""


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory) -> tuple[Path, str]:
    """A HOME whose npm, yarn 1, pnpm and bun caches hold the bad tarballs; no project is left."""
    require_tools("verdaccio", *MANAGERS)
    base = tmp_path_factory.mktemp("filled")
    with start_registry(base / "registry") as registry:
        home = base / "home"
        env = tool_env(registry.url, home)
        for manager in MANAGERS:
            project = base / f"project-{manager}"
            project.mkdir()
            (project / "package.json").write_text('{"name": "p", "version": "1.0.0"}\n')
            if manager == "berry":  # into the global cache, `$YARN_GLOBAL_FOLDER/cache`
                rc = berry_rc(registry.url, enableScripts="false")
                rc = rc.replace("enableGlobalCache: false", "enableGlobalCache: true")
                (project / ".yarnrc.yml").write_text(rc)
            run_tool(manager, ADD[manager], cwd=project, env=env)
            shutil.rmtree(project)  # what wipe_node_modules does: only the caches are left
        return home, registry.url


def shim_dir(path: Path) -> Path:
    """`yarn`, `pnpm` and `bun` commands running the test tools (node by absolute path)."""
    path.mkdir()
    for name, tool in SHIMS.items():
        shim = path / name
        argv = " ".join(f'"{part}"' for part in tool_command(tool))
        shim.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        shim.chmod(0o755)
    return path


@pytest.fixture
def home_env(filled_home, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    source, url = filled_home
    home = tmp_path / "cache-home"  # `home` is the sandbox's (run_cli)
    shutil.copytree(source, home, symlinks=True)
    env = tool_env(url, home)
    env["PATH"] = f"{shim_dir(tmp_path / 'shims')}{os.pathsep}{env['PATH']}"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["RUNBOOK_OPERATOR"] = "tester"
    return home, env


def bad_in_caches(run_cli, env: dict[str, str], home: Path) -> list[tuple[str, str, str]]:
    result = run_cli("scan", "--host", "--format", "json", env=env, cwd=home)
    assert result.returncode in (0, 1), result.stderr
    found = json.loads(result.stdout)["findings"]
    return sorted(
        (f["package"], f["version"], "/".join(Path(f["path"]).relative_to(home).parts[:2]))
        for f in found
        if f["kind"] == "cache" and Path(f["path"]).is_relative_to(home)
    )


def run_step(tmp_path: Path, env: dict[str, str], *, dry_run: bool):
    playbook = tmp_path / "caches.yaml"
    playbook.write_text(PLAYBOOK)
    target = tmp_path / "target"
    target.mkdir(exist_ok=True)
    redactor = Redactor()
    journal_path = tmp_path / f"journal-{'dry' if dry_run else 'live'}.jsonl"
    with Journal(journal_path, redactor) as journal:
        runner = Runner(
            load_playbook(playbook, default_registry()),
            target,
            journal,
            HeadlessOperator("tester", assume_yes=True),
            dry_run=dry_run,
            redactor=redactor,
            env=env,
        )
        runner.begin()
        step = runner.playbook.step("caches")
        plan = runner.plan(step)
        state = runner.execute(step, plan)
        runner.finish("completed")
    return plan, state, read_entries(journal_path), journal_path


def effects_of(entries: list[dict], op: str) -> list[dict]:
    return [e["data"] for e in entries if e["event"] == "effect" and e["data"]["op"] == op]


def test_live_run_leaves_no_bad_tarball_in_any_cache(tmp_path, home_env, run_cli) -> None:
    home, env = home_env
    before = bad_in_caches(run_cli, env, home)
    for where in (".npm/_cacache", ".cache/yarn", ".yarn/berry", ".local/share", ".bun/install"):
        assert ("axios", "1.14.1", where) in before, before

    plan, state, entries, journal_path = run_step(tmp_path, env, dry_run=False)

    managers = sorted(a.detail["manager"] for a in plan.actions)
    assert managers == ["berry", "bun", "npm", "pnpm", "yarn1"], [a.summary for a in plan.actions]
    assert all(a.destructive and a.detail["bytes"] > 0 for a in plan.actions)
    assert any("only drops unreferenced packages" in n for n in plan.notes)
    assert state.status == "succeeded", state.summary
    assert not state.findings_remain
    assert bad_in_caches(run_cli, env, home) == []

    result = [e["data"] for e in entries if e["event"] == "step_finished"][-1]["result"]
    for cache in result["caches"]:
        assert cache["after"] < cache["before"], cache
    assert result["bytes_after"] < result["bytes_before"]
    assert result["bad_remaining"] == []
    commands = " | ".join(d["argv"] for d in effects_of(entries, "run"))
    assert "cache clean --force --cache" in commands
    assert "cache clean --cache-folder" in commands
    assert "store prune --store-dir" in commands
    assert all(d["outcome"] == "ok" for d in effects_of(entries, "run")), commands
    [grant] = effects_of(entries, "allow_roots")
    assert str(home / ".npm") in grant["roots"]
    # the declared roots themselves are kept, only their contents went
    assert (home / ".npm").is_dir() and (home / ".bun" / "install" / "cache").is_dir()
    assert verify(journal_path).ok


def test_dry_run_touches_nothing(tmp_path, home_env) -> None:
    home, env = home_env
    before = tree_digest(home)
    plan, state, entries, _ = run_step(tmp_path, env, dry_run=True)
    assert plan.actions and state.status == "succeeded"
    assert tree_digest(home) == before
    assert {d["outcome"] for d in effects_of(entries, "run")} == {"would"}
    assert {d["outcome"] for d in effects_of(entries, "remove_tree")} <= {"would"}


def test_without_npm_the_cache_is_removed_directly(tmp_path, home_env, run_cli) -> None:
    home, env = home_env
    env["PATH"] = str(tmp_path / "shims")  # yarn, pnpm, bun shims only: no npm, no node
    assert shutil.which("npm", path=env["PATH"]) is None
    plan, state, entries, _ = run_step(tmp_path, env, dry_run=False)
    [npm] = [a for a in plan.actions if a.detail["manager"] == "npm"]
    assert "npm not found" in npm.summary
    assert state.status == "succeeded", state.summary
    assert not (home / ".npm" / "_cacache").exists()
    ran = [os.path.basename(d["argv"].split()[0]) for d in effects_of(entries, "run")]
    assert sorted(ran) == ["pnpm", "yarn"]
    removed = [d["path"] for d in effects_of(entries, "remove_tree")]
    assert str(home / ".npm" / "_cacache") in removed
    scan_env = {**env, "PATH": os.environ["PATH"]}
    assert bad_in_caches(run_cli, scan_env, home) == []


def test_a_failing_npm_falls_back_to_removal(tmp_path, home_env) -> None:
    home, env = home_env
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "npm").write_text("#!/bin/sh\necho 'npm is broken' >&2\nexit 7\n")
    (broken / "npm").chmod(0o755)
    env["PATH"] = f"{broken}{os.pathsep}{env['PATH']}"
    _, state, entries, _ = run_step(tmp_path, env, dry_run=False)
    assert state.status == "succeeded", state.summary
    assert not (home / ".npm" / "_cacache").exists()
    npm_runs = [d for d in effects_of(entries, "run") if "cache clean --force" in d["argv"]]
    assert npm_runs[0]["returncode"] == 7
    result = [e["data"] for e in entries if e["event"] == "step_finished"][-1]["result"]
    npm_report = [c for c in result["caches"] if c["manager"] == "npm"]
    assert "removed directly" in npm_report[0]["how"]


# -- the Effects widening the step relies on ------------------------------------------------------
def make_effects(tmp_path: Path, calls: list) -> Effects:
    target = tmp_path / "target"
    target.mkdir(exist_ok=True)
    return Effects(
        dry_run=False,
        roots=[target],
        backup_dir=tmp_path / "backups",
        record=lambda event, data: calls.append(data),
        redactor=Redactor(),
    )


def test_widened_effects_allow_only_inside_declared_roots(tmp_path: Path) -> None:
    calls: list = []
    home = tmp_path / "h"
    cache = home / ".npm"
    (cache / "_cacache" / "x").mkdir(parents=True)
    (home / "precious").write_text("keep")
    base = make_effects(tmp_path, calls)
    with pytest.raises(EffectError, match="outside the target"):
        base.remove_tree(cache / "_cacache")
    for bad_root in (home, tmp_path, Path("/"), tmp_path / "target" / ".."):
        with pytest.raises(EffectError, match="refusing to allow"):
            base.widened([bad_root], home=home)
    with pytest.raises(EffectError, match="relative"):
        base.widened([Path("rel")], home=home)

    wide = base.widened([cache], home=home, reason="test")
    assert calls[-1] == {
        "op": "allow_roots",
        "dry_run": False,
        "roots": [str(cache)],
        "reason": "test",
        "outcome": "ok",
    }
    for refused in (cache, home, home / "precious", tmp_path / "target"):
        with pytest.raises(EffectError, match="refusing"):
            wide.remove_tree(refused)
    assert wide.remove_tree(cache / "_cacache") > 0
    assert not (cache / "_cacache").exists()
    assert cache.is_dir() and (home / "precious").read_text() == "keep"
    with pytest.raises(EffectError, match="outside the target"):
        base.remove_tree(cache / "y")  # the original object was not widened


def test_a_misdirected_cache_variable_empties_nothing(tmp_path, home_env) -> None:
    home, env = home_env
    projects = tmp_path / "my-projects"
    (projects / "app").mkdir(parents=True)
    (projects / "app" / "index.js").write_text("mine\n")
    env["BUN_INSTALL_CACHE_DIR"] = str(projects)
    env["YARN_GLOBAL_FOLDER"] = str(home)  # its `cache` is absent: nothing planned for it
    before = tree_digest(projects)
    plan, state, _, _ = run_step(tmp_path, env, dry_run=False)
    assert state.status == "succeeded", state.summary
    assert f"not touched: {projects} does not look like a bun cache" in plan.notes
    assert tree_digest(projects) == before
    assert not any(a.detail["path"] == str(projects) for a in plan.actions)
