"""`review_npm_publishes` against a real verdaccio: a user whose token was exposed published
versions before and inside the incident window (one shaped like the worm's republish); the step
lists exactly the ones inside, from the token the npmrc holds."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook.effects import Effects
from runbook.models import Playbook
from runbook.operator import HeadlessOperator
from runbook.redact import Redactor
from runbook.step import StepContext
from steps.npm_published import ReviewNpmPublishes, ReviewNpmPublishesParams
from tests.npmreg import add_user, create_token, publish, require_tools, start_registry, tool_env

PASSWORD = "alice-password-1"


def playbook_doc(since: datetime, until: datetime) -> dict:
    return {
        "id": "publish-review",
        "title": "review",
        "version": "1",
        "incident": {
            "summary": "test",
            "window": {"start": since.isoformat(), "end": until.isoformat()},
            "packages": [{"name": "not-installed-anywhere", "bad_versions": ["1.0.0"]}],
            "indicators": {"package_files": [{"name": "bundle.js"}, {"name": "setup_bun.js"}]},
        },
        "steps": [
            {
                "id": "review-npm-publishes",
                "uses": "review_npm_publishes",
                "title": "Review",
                "confirm": "never",
            }
        ],
    }


def write_package(folder: Path, name: str, version: str, **extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "version": version, "license": "MIT", **extra}
    (folder / "package.json").write_text(json.dumps(manifest))
    (folder / "index.js").write_text("module.exports = 1;\n")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """verdaccio with alice's packages: alice-lib 1.0.0 before the window, 1.0.1 (plain) and 1.0.2
    (a postinstall running bundle.js, as the worm republished) inside; bob's bob-lib inside."""
    require_tools("npm", "verdaccio")
    root = tmp_path_factory.mktemp("publishes")
    with start_registry(root / "registry", storage=None) as reg:
        login = add_user(reg, "alice", PASSWORD)
        token = create_token(reg, login, PASSWORD)["token"]
        bob = add_user(reg, "bob", "bob-password-1")
        host = reg.url.split("://", 1)[1]

        def env_for(who: str, secret: str) -> dict[str, str]:
            env = tool_env(reg.url, root / f"publish-{who}", auth=False)
            npmrc = Path(env["NPM_CONFIG_USERCONFIG"])
            npmrc.write_text(npmrc.read_text() + f"//{host}:_authToken={secret}\n")
            return env

        alice_env, bob_env = env_for("alice", token), env_for("bob", bob)
        src = root / "src"
        publish(write_package(src / "a0", "alice-lib", "1.0.0"), alice_env)
        time.sleep(1.1)
        since = datetime.now(UTC)
        time.sleep(1.1)
        publish(write_package(src / "a1", "alice-lib", "1.0.1"), alice_env)
        worm = {"postinstall": "node bundle.js"}
        publish(write_package(src / "a2", "alice-lib", "1.0.2", scripts=worm), alice_env)
        publish(write_package(src / "b1", "bob-lib", "2.0.0"), bob_env)
        yield {"reg": reg, "token": token, "since": since, "host": host, "root": root}


def project(tmp_path: Path, host: str, token: str | None) -> tuple[Path, dict[str, str]]:
    target = tmp_path / "alice-lib"
    target.mkdir(parents=True)
    manifest = {"name": "alice-lib", "version": "1.0.2", "dependencies": {"bob-lib": "2.0.0"}}
    (target / "package.json").write_text(json.dumps(manifest))
    (target / "packages" / "internal").mkdir(parents=True)
    (target / "packages" / "internal" / "package.json").write_text(
        json.dumps({"name": "internal", "private": True})
    )
    home = tmp_path / "npm-home"
    home.mkdir()
    lines = [f"registry=http://{host}"]
    if token:
        lines.append(f"//{host}:_authToken={token}")
    (home / ".npmrc").write_text("\n".join(lines) + "\n")
    env = {
        "HOME": str(home),
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "NO_PROXY": "*",
    }
    return target, env


def plan_of(world, tmp_path: Path, *, token: str | None, **params):
    target, env = project(tmp_path, world["host"], token)
    until = datetime.now(UTC) + timedelta(hours=1)
    playbook = Playbook.model_validate(playbook_doc(world["since"], until))
    records: list = []
    redactor = Redactor()
    ctx = StepContext(
        playbook=playbook,
        step=playbook.steps[0],
        target=target,
        effects=Effects(
            dry_run=True,
            roots=[target],
            backup_dir=tmp_path / "backups",
            record=lambda e, d: records.append((e, d)),
            redactor=redactor,
        ),
        operator=HeadlessOperator("test"),
        env=env,
        dry_run=True,
        record=lambda e, d: records.append((e, d)),
    )
    kind = ReviewNpmPublishes(ReviewNpmPublishesParams(**params))
    return kind, ctx, kind.plan(ctx), redactor


def test_lists_the_versions_published_inside_the_window(world, tmp_path: Path) -> None:
    kind, ctx, plan, redactor = plan_of(world, tmp_path, token=world["token"])
    found = {(f.package, f.version): f for f in plan.findings}
    assert set(found) == {("alice-lib", "1.0.1"), ("alice-lib", "1.0.2")}, plan.notes
    assert found[("alice-lib", "1.0.2")].severity == "compromised"
    assert "postinstall" in found[("alice-lib", "1.0.2")].message
    assert found[("alice-lib", "1.0.1")].severity == "at-risk"
    # 1.0.0 was published before the window; bob-lib is a dependency, not alice's package
    assert all(f.package != "bob-lib" for f in plan.findings)
    assert [a.detail["version"] for a in plan.actions] == ["1.0.1", "1.0.2"]
    assert "npm deprecate alice-lib@1.0.2" in plan.actions[1].summary
    assert any("the token is alice's" in n for n in plan.notes)
    # verdaccio has no list of a user's packages: the target's own name was asked about
    assert any("from the target" in n for n in plan.notes)
    # the token is never shown
    assert world["token"] not in json.dumps(plan.model_dump())
    assert redactor.text(world["token"]) != world["token"]
    result = kind.apply(ctx, plan)
    assert result.outcome == "outstanding"  # nobody ticked the items
    assert result.summary == "0/2 published versions reviewed"


def test_a_package_named_in_the_step_is_asked_about(world, tmp_path: Path) -> None:
    _, _, plan, _ = plan_of(world, tmp_path, token=world["token"], packages=["bob-lib"])
    published = {(f.package, f.version) for f in plan.findings}
    # verdaccio does not say who published bob-lib: a package named by hand is checked
    assert ("bob-lib", "2.0.0") in published


def test_a_window_before_everything_finds_nothing(world, tmp_path: Path) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    kind, ctx, plan, _ = plan_of(
        world, tmp_path, token=world["token"], since=long_ago, until=long_ago + timedelta(days=1)
    )
    assert plan.findings == [] and plan.actions == []
    result = kind.apply(ctx, plan)
    assert result.outcome == "succeeded"
    assert result.summary == "nothing was published in your name during the window"


def test_no_token_and_a_refused_token(world, tmp_path: Path) -> None:
    _, _, plan, _ = plan_of(world, tmp_path / "none", token=None)
    assert plan.findings == []
    assert any("no npm token found" in n for n in plan.notes)
    _, _, plan, _ = plan_of(world, tmp_path / "bad", token="not-a-real-token-at-all-0000")
    assert plan.findings == []
    said = plan.notes + [f.message for f in plan.findings]
    assert any("refused" in n or "authenticates no user" in n for n in said), said


def test_headless_dry_run_through_the_cli(world, tmp_path: Path, run_cli) -> None:
    target, env = project(tmp_path, world["host"], world["token"])
    until = datetime.now(UTC) + timedelta(hours=1)
    playbook = tmp_path / "review.yaml"
    playbook.write_text(json.dumps(playbook_doc(world["since"], until)))
    import os

    full = {**os.environ, **env, "RUNBOOK_OPERATOR": "test"}
    out = run_cli("run", playbook, "--target", target, "--dry-run", "--no-input", env=full)
    assert "review-npm-publishes" in out.stdout, out.stdout + out.stderr
    assert "0/2 published versions reviewed" in out.stdout
    journal = next((tmp_path / "state").rglob("*.jsonl"))
    text = journal.read_text()
    assert world["token"] not in text and world["token"] not in out.stdout + out.stderr
    planned = [
        json.loads(line)["data"]
        for line in text.splitlines()
        if json.loads(line)["event"] == "step_planned"
    ]
    versions = {(f["package"], f["version"]) for f in planned[0]["findings"]}
    assert versions == {("alice-lib", "1.0.1"), ("alice-lib", "1.0.2")}
