"""`runbook secrets` through the installed command, against the planted world of
tests/fixtures/credentials/plant.py: JSON and table output, `--host`, the keyring, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.redact import fingerprint
from steps.credentials.vault import Vault, service_for
from tests.conftest import RunCli
from tests.fixtures.credentials.plant import World, build

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def world(tmp_path: Path, sandbox_env: dict[str, str]) -> World:
    w = build(tmp_path)
    assert str(w.home) == sandbox_env["HOME"]
    # only the planted environment: whatever the machine running the tests holds stays out
    w.env.update(
        {
            "XDG_STATE_HOME": sandbox_env["XDG_STATE_HOME"],
            "PYTHON_KEYRING_BACKEND": PLAINTEXT,
            "RUNBOOK_OPERATOR": "tester",
        }
    )
    return w


def places(credentials: list[dict]) -> set[tuple]:
    return {
        (
            c["type"],
            c["location"]["source"],
            c["location"]["path"],
            c["location"]["line"],
            c["location"]["name"],
            c["rotation"],
        )
        for c in credentials
    }


def planted(world: World, *, host: bool = True) -> set[tuple]:
    out = set()
    for p in world.plants:
        if not host and (p.source != "file" or not p.path.is_relative_to(world.target)):
            continue
        out.add((p.type, p.source, str(p.path) if p.path else None, p.line, p.name, p.rotation))
    return out


def assert_no_secret(world: World, *texts: str) -> None:
    blob = "\n".join(texts)
    for secret in world.all_secrets():
        assert secret not in blob


def test_json_with_host_lists_every_planted_credential(run_cli: RunCli, world: World) -> None:
    result = run_cli("secrets", "--host", world.target, "--format", "json", env=world.env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert report["schema"] == "runbook.secrets/v1"
    assert report["problems"] == []
    assert places(report["credentials"]) == planted(world)
    [aws] = [c for c in report["credentials"] if c["where"].startswith("~/.aws/credentials:2")]
    assert aws["redacted"].startswith("AKIA…") and aws["fingerprint"] in aws["redacted"]
    assert aws["detail"] == {"profile": "default", "file": "credentials"}
    assert "IAM console" in aws["revoke_at"]
    assert_no_secret(world, result.stdout, result.stderr)


def test_table_default_path_and_problems_on_stderr(run_cli: RunCli, world: World) -> None:
    (world.target / ".yarnrc.yml").write_text("npmAuthToken: [\n")
    result = run_cli("secrets", env=world.env, cwd=world.target)
    assert result.returncode == 3, result.stderr  # a file could not be read: not a clean 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "WHERE", "REDACTED", "ROTATION"]
    rows = lines[1:-1]
    assert len(rows) == len(planted(world, host=False))
    assert any(
        row.startswith("aws-access-key") and f"{world.target}/.env:2 AWS_ACCESS_KEY_ID" in row
        for row in rows
    )
    assert all(row.split()[-1] in ("aws", "npm", "manual") for row in rows)
    assert lines[-1].startswith(f"{len(rows)} credentials: ")
    assert lines[-1].endswith("(1 problem)")
    assert result.stderr.startswith(f"runbook: {world.target / '.yarnrc.yml'}:")
    assert "malformed YAML" in result.stderr
    assert_no_secret(world, result.stdout, result.stderr)


def test_keyring_entries_show_as_rotated(run_cli: RunCli, world: World, monkeypatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", PLAINTEXT)
    [default] = [p for p in world.plants if p.detail.get("profile") == "default"]
    vault = Vault.open(world.env, allow_insecure=True)
    service = service_for("axios-2026-03")
    vault.store(
        service, "aws:default", default.value, type="aws-access-key",
        fingerprint=fingerprint(default.value),
    )  # fmt: skip
    result = run_cli("secrets", "--host", world.target, "--format", "json", env=world.env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rotated = [c for c in report["credentials"] if c["rotation"] == "rotated"]
    assert {(c["location"]["source"], c["where"]) for c in rotated} == {
        ("file", "~/.aws/credentials:2 [default] aws_access_key_id"),
        ("keyring", "keyring aws:default"),
    }
    assert report["counts"]["rotated"] == 2
    assert "1 already rotated by runbook" not in report["summary"]
    assert "2 already rotated by runbook" in report["summary"]
    assert_no_secret(world, result.stdout, result.stderr)


def test_without_host_only_the_paths_are_read(run_cli: RunCli, world: World) -> None:
    result = run_cli(
        "secrets", world.target / "packages", world.target / ".env", "--format", "json",
        env=world.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {c["location"]["path"] for c in report["credentials"]} == {
        str(world.target / "packages" / "app" / ".npmrc"),
        str(world.target / ".env"),
    }
    assert_no_secret(world, result.stdout)


def test_a_missing_path_is_a_usage_error(run_cli: RunCli, world: World) -> None:
    result = run_cli("secrets", world.target / "nope", env=world.env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope: no such file or directory" in result.stderr
    bad = run_cli("secrets", "--format", "xml", env=world.env)
    assert bad.returncode == 2
