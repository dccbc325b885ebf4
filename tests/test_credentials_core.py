"""The pieces credential steps share: the keyring vault and its refusal of unsafe backends,
secret-file writes without backups, in-place value rewrites, fault checkpoints, CI-secret links."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.effects import EffectError, Effects
from runbook.faults import FaultInjected, checkpoint
from runbook.redact import Redactor
from steps.credential_checklist import ci_secrets_url
from steps.credentials.persist import Replacement, ValueMoved, read_text, replace_values
from steps.credentials.rewrite import (
    CannotRewrite,
    FileEdit,
    apply_edits,
    preflight,
    undo_edits,
)
from steps.credentials.vault import KeyringRefused, Vault, check_backend, service_for

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"


def keyring_env(tmp_path: Path, backend: str | None = PLAINTEXT) -> dict[str, str]:
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    if backend:
        env["PYTHON_KEYRING_BACKEND"] = backend
    return env


@pytest.fixture
def keyring_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = keyring_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# -- keyring ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backend", "why"),
    [
        ("keyring.backends.fail.Keyring", "cannot store anything"),
        ("keyring.backends.null.Keyring", "silently drops"),
        (PLAINTEXT, "clear text"),
    ],
)
def test_unsafe_backends_are_refused_with_the_reason(
    keyring_home: dict[str, str], backend: str, why: str
) -> None:
    env = {**keyring_home, "PYTHON_KEYRING_BACKEND": backend}
    with pytest.raises(KeyringRefused) as exc:
        check_backend(env)
    message = str(exc.value)
    assert backend in message and why in message and "--allow-insecure-keyring" in message
    assert check_backend(env, allow_insecure=True) is not None


def test_a_misspelt_backend_is_a_clear_refusal(keyring_home: dict[str, str]) -> None:
    env = {**keyring_home, "PYTHON_KEYRING_BACKEND": "no.such.Backend"}
    with pytest.raises(KeyringRefused, match="cannot load the keyring backend"):
        check_backend(env, allow_insecure=True)


def test_vault_stores_values_and_an_index_without_values(keyring_home: dict[str, str]) -> None:
    vault = Vault.open(keyring_home, allow_insecure=True)
    service = service_for("axios-2026-03")
    secret = "canary-" + "k3y" * 8
    entry = vault.store(service, "aws/default", secret, type="aws-access-key", fingerprint="f1")
    assert vault.get(service, "aws/default") == secret
    assert [e.name for e in vault.entries()] == ["aws/default"]
    assert vault.find("f1") == entry
    # the index (itself a keyring entry) never holds the value
    index = vault.get("runbook", "index") or ""
    assert secret not in index and "aws/default" in index
    vault.update_meta(service, "aws/default", phase="verified")
    assert vault.entries()[0].meta == {"phase": "verified"}
    # a second Vault on the same backend sees the same entries (another run, later)
    again = Vault.open(keyring_home, allow_insecure=True)
    assert again.get(service, "aws/default") == secret
    again.delete(service, "aws/default")
    again.delete(service, "aws/default")  # absent: fine
    assert again.entries() == [] and again.get(service, "aws/default") is None


# -- secret files -------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.calls.append((event, data))


def effects(tmp_path: Path, *, dry_run: bool = False) -> tuple[Effects, Recorder]:
    target = tmp_path / "target"
    target.mkdir(exist_ok=True)
    rec = Recorder()
    fx = Effects(
        dry_run=dry_run,
        roots=[target],
        backup_dir=tmp_path / "backups",
        record=rec,
        redactor=Redactor(),
    )
    return fx, rec


def test_secret_file_is_rewritten_atomically_keeping_mode_and_no_backup(tmp_path: Path) -> None:
    fx, rec = effects(tmp_path)
    creds = tmp_path / "home" / ".aws" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text("[default]\naws_secret_access_key = old-secret-value\n")
    os.chmod(creds, 0o640)
    with pytest.raises(EffectError, match="outside the target"):
        fx.write_secret_file(creds, "x")
    granted = fx.with_files([creds], reason="rotate")
    granted.write_secret_file(creds, "[default]\naws_secret_access_key = new\n", reason="rotate")
    assert creds.read_text() == "[default]\naws_secret_access_key = new\n"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o640
    assert not (tmp_path / "backups").exists()
    ops = [data["op"] for _, data in rec.calls]
    assert ops == ["allow_files", "write_secret_file"]
    assert rec.calls[-1][1]["backup"] is None and rec.calls[-1][1]["outcome"] == "ok"
    # the grant is for that file only: its neighbours stay out of reach
    with pytest.raises(EffectError, match="outside the target"):
        granted.write_secret_file(creds.parent / "config", "x")
    with pytest.raises(EffectError, match="outside the target"):
        granted.remove_tree(creds.parent)


def test_new_secret_file_is_private_and_dry_run_touches_nothing(tmp_path: Path) -> None:
    fx, _ = effects(tmp_path)
    new = tmp_path / "target" / ".env"
    fx.write_secret_file(new, "TOKEN=x\n")
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    dry, rec = effects(tmp_path, dry_run=True)
    dry.write_secret_file(new, "TOKEN=changed\n")
    assert new.read_text() == "TOKEN=x\n"
    assert rec.calls[-1][1]["outcome"] == "would"


def test_secret_file_refuses_a_symlink(tmp_path: Path) -> None:
    fx, _ = effects(tmp_path)
    real = tmp_path / "elsewhere"
    real.write_text("x")
    link = tmp_path / "target" / ".npmrc"
    link.symlink_to(real)
    with pytest.raises(EffectError, match="symlink"):
        fx.write_secret_file(link, "y")
    assert real.read_text() == "x"


# -- in-place rewrites --------------------------------------------------------------------------
def test_replace_values_keeps_every_other_byte(tmp_path: Path) -> None:
    text = '# comment\r\nregistry=http://r/\r\n//r/:_authToken="OLDTOKEN"\r\nlast=1'
    new = replace_values(text, [Replacement(3, "OLDTOKEN", "NEWTOKEN")])
    assert new == text.replace("OLDTOKEN", "NEWTOKEN")
    path = tmp_path / "npmrc"
    path.write_bytes(text.encode())
    assert read_text(path) == text  # CRLF kept on read


def test_replace_values_refuses_a_moved_value_without_showing_it() -> None:
    with pytest.raises(ValueMoved) as exc:
        replace_values("a=1\nb=OLDTOKEN\n", [Replacement(1, "OLDTOKEN", "N")], where="f")
    assert "f:1" in str(exc.value) and "OLDTOKEN" not in str(exc.value)
    with pytest.raises(ValueMoved):
        replace_values("x=OLD OLD\n", [Replacement(1, "OLD", "N")])
    with pytest.raises(ValueMoved):
        replace_values("x=1\n", [Replacement(7, "1", "2")])


def test_preflight_refuses_a_symlink_or_a_moved_value_before_anything_is_created(
    tmp_path: Path,
) -> None:
    real = tmp_path / "dotfiles" / "npmrc"
    real.parent.mkdir()
    real.write_text("//r/:_authToken=OLDTOKEN-1234\n")
    link = tmp_path / ".npmrc"
    link.symlink_to(real)
    edit = FileEdit(link, (Replacement(1, "OLDTOKEN-1234", "OLDTOKEN-1234"),))
    with pytest.raises(CannotRewrite) as exc:
        preflight([edit])
    shown = str(exc.value)
    assert f"{link} is a symlink (to {real})" in shown and "OLDTOKEN" not in shown
    moved = FileEdit(real, (Replacement(2, "OLDTOKEN-1234", "OLDTOKEN-1234"),))
    with pytest.raises(CannotRewrite, match=f"{real}:2: the value to replace"):
        preflight([moved])
    with pytest.raises(CannotRewrite, match="cannot read"):
        preflight([FileEdit(tmp_path / "gone", moved.replacements)])
    preflight([FileEdit(real, edit.replacements)])  # a regular file holding the value: fine
    # neither an edit nor a replacement shows a value in its repr
    assert "OLDTOKEN" not in repr(edit) and "OLDTOKEN" not in repr(edit.reverse())


def test_undo_puts_back_what_it_can_and_reports_the_rest(tmp_path: Path) -> None:
    fx, rec = effects(tmp_path)
    first, second = tmp_path / "target" / ".env", tmp_path / "target" / ".npmrc"
    first.write_text("A=1\nTOKEN=OLD-VALUE-1\n")
    second.write_text("//r/:_authToken=OLD-VALUE-1\n")
    edits = [
        FileEdit(first, (Replacement(2, "OLD-VALUE-1", "NEW-VALUE-2"),)),
        FileEdit(second, (Replacement(1, "OLD-VALUE-1", "NEW-VALUE-2"),)),
    ]
    done: list[FileEdit] = []
    apply_edits(fx, edits, done, reason="rotate")
    assert done == edits and "NEW-VALUE-2" in first.read_text() + second.read_text()
    second.write_text("//r/:_authToken=EDITED-BY-HAND\n")  # the new value is gone from there

    problems = undo_edits(fx, done, reason="rollback")

    assert first.read_text() == "A=1\nTOKEN=OLD-VALUE-1\n"
    [problem] = problems
    assert problem.startswith(f"{second} still holds the new value") and f"{second}:1" in problem
    assert "VALUE" not in problem
    writes = [data for _, data in rec.calls if data["op"] == "write_secret_file"]
    assert [w["reason"] for w in writes] == ["rotate", "rotate", "rollback"]


# -- faults -------------------------------------------------------------------------------------
def test_fault_checkpoints() -> None:
    checkpoint("aws.created", {})
    checkpoint("aws.created", {"RUNBOOK_FAULT": "aws.persisted"})
    with pytest.raises(FaultInjected, match=r"aws\.created"):
        checkpoint("aws.created", {"RUNBOOK_FAULT": "aws.created"})
    with pytest.raises(FaultInjected):
        checkpoint("npm.created", {"RUNBOOK_FAULT": "npm.created:fail"})


def test_fault_kill_is_a_sigkill(tmp_path: Path) -> None:
    code = "from runbook.faults import checkpoint; checkpoint('x', {'RUNBOOK_FAULT': 'x:kill'})"
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9


# -- CI secrets link ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop/settings/secrets/actions"),
        (
            "https://token@github.com/acme/shop",
            "https://github.com/acme/shop/settings/secrets/actions",
        ),
        (
            "ssh://git@gitlab.example.com:2222/team/app.git",
            "https://gitlab.example.com/team/app/-/settings/ci_cd#js-cicd-variables-settings",
        ),
        ("/srv/git/local.git", None),
    ],
)
def test_ci_secrets_url_from_the_origin_remote(
    tmp_path: Path, sandbox_env: dict[str, str], remote: str, url: str | None
) -> None:
    import git

    repo = git.Repo.init(tmp_path / "repo")
    repo.create_remote("origin", remote)
    assert ci_secrets_url(tmp_path / "repo") == url
    assert ci_secrets_url(tmp_path) is None


def test_a_live_run_warns_at_the_start_when_the_keyring_will_be_refused(
    run_cli, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    from runbook.journal import read_entries
    from tests.conftest import ROOT

    playbook = ROOT / "tests" / "playbooks" / "npm-rotation.yaml"
    target = tmp_path / "empty"
    target.mkdir()
    env = {**sandbox_env, "PYTHON_KEYRING_BACKEND": PLAINTEXT}
    live = run_cli("run", playbook, "--target", target, "--yes", "--new", env=env)
    assert "warning: the credential rotations will stop" in live.stderr
    assert "--allow-insecure-keyring" in live.stderr
    journal = Path(live.stdout.split("journal: ")[1].split()[0])
    [warning] = [e["data"] for e in read_entries(journal) if e["event"] == "preflight_warning"]
    assert warning["uses"] == "rotate_npm_tokens" and "clear text" in warning["warning"]
    allowed = run_cli(
        "run", playbook, "--target", target, "--yes", "--new", "--allow-insecure-keyring", env=env
    )
    dry = run_cli("run", playbook, "--target", target, "--dry-run", "--new", env=env)
    assert "warning" not in allowed.stderr and "warning" not in dry.stderr
