"""`rotate_npm_tokens` against a real verdaccio 6.8 with real accounts, through the real CLI.

Each test signs up its own account, plants one of its tokens in a user `~/.npmrc` (CRLF), a
`~/.yarnrc.yml` and a project `.npmrc` (no final newline), then runs
`runbook run tests/playbooks/npm-rotation.yaml --yes --allow-insecure-keyring` headless, with the
keyring a `keyrings.alt` PlaintextKeyring under the test's own XDG_DATA_HOME. Afterwards it asks
the registry which tokens work, compares the files byte for byte and greps every output (stdout,
stderr, the journal, `runbook report`, the backups) for the secrets.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from keyrings.alt.file import PlaintextKeyring

from runbook.effects import Effects
from runbook.journal import read_entries, verify
from runbook.redact import Redactor, fingerprint
from runbook.step import StepError
from steps.credentials.npm_registry import (
    CreatedToken,
    NpmRegistry,
    OtpRequired,
    PasswordRefused,
    TokenInfo,
    TokenRefused,
    find_token,
)
from steps.credentials.npm_rotation import NpmRotation, TokenGroup
from steps.credentials.persist import Replacement
from steps.credentials.rewrite import FileEdit
from steps.credentials.vault import StoredEntry, Vault, service_for
from tests.conftest import ROOT, RUNBOOK
from tests.npmreg import (
    Registry,
    add_user,
    create_token,
    require_tools,
    start_registry,
    token_keys,
    whoami,
)

PLAYBOOK = ROOT / "tests" / "playbooks" / "npm-rotation.yaml"
SERVICE = service_for("npm-rotation-test")
PHASES = ["created", "persisted", "verified"]
_accounts = itertools.count(1)


class Secret(str):
    """A token or password: compares and formats as itself, but its repr (all pytest shows of
    it when an assertion fails) is a fingerprint, so no test output carries a secret."""

    def __repr__(self) -> str:
        return f"<secret sha256:{fingerprint(self)}>"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    require_tools("verdaccio", "npm")
    with start_registry(tmp_path_factory.mktemp("registry"), storage=None) as reg:
        yield reg


@dataclass
class Machine:
    """A sandboxed laptop: HOME, a project, an environment, and the secrets planted in them."""

    reg: Registry
    user: str
    password: Secret
    login: Secret
    old: Secret
    old_key: str
    home: Path
    project: Path
    env: dict[str, str]
    files: dict[Path, bytes] = field(repr=False)  # as planted: they hold the token

    @property
    def hostpath(self) -> str:
        return self.reg.url.split("://", 1)[1]

    def run(self, *args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **extra}
        return subprocess.run(
            [str(RUNBOOK), *map(str, args)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def rotate(self, *flags: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "run",
            PLAYBOOK,
            "--target",
            self.project,
            "--yes",
            "--allow-insecure-keyring",
            *flags,
            **extra,
        )

    def vault(self) -> Vault:
        backend = PlaintextKeyring()
        backend.file_path = str(  # type: ignore[misc]
            Path(self.env["XDG_DATA_HOME"]) / "python_keyring" / backend.filename
        )
        return Vault(backend)

    def stored(self, name: str) -> Secret | None:
        value = self.vault().get(SERVICE, name)
        return Secret(value) if value else None

    def unchanged(self) -> bool:
        """Every planted file is byte for byte as planted."""
        return all(path.read_bytes() == before for path, before in self.files.items())

    def journals(self) -> list[Path]:
        return sorted((Path(self.env["XDG_STATE_HOME"]) / "runbook").rglob("*.jsonl"))

    def tokens_in_files(self) -> set[Secret]:
        """The values the planted token lines hold now (between the same bytes as before)."""
        found = set()
        old = self.old.encode()
        for path, before in self.files.items():
            [(now, was)] = [
                (now, was)
                for now, was in zip(
                    path.read_bytes().splitlines(), before.splitlines(), strict=True
                )
                if old in was
            ]
            head, tail = was.split(old)
            assert now.startswith(head) and now.endswith(tail), f"{path}: the line changed"
            found.add(Secret(now[len(head) : len(now) - len(tail)].decode()))
        return found


def machine(tmp_path: Path, reg: Registry, *, login_token: bool = False) -> Machine:
    user = f"dev{next(_accounts)}-{os.getpid()}"
    password = Secret(f"pw-{user}-Correct-Horse")
    login = Secret(add_user(reg, user, password))
    made = {"token": login, "key": ""} if login_token else create_token(reg, login, password)
    home = tmp_path / "home"
    project = tmp_path / "project"
    for folder in (home, project, tmp_path / "state", home / ".local" / "share", tmp_path / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    url, hostpath = reg.url, reg.url.split("://", 1)[1]
    token = Secret(made["token"])
    files = {
        home / ".npmrc": (
            f"registry={url}\r\n# personal publish token\r\n//{hostpath}:_authToken={token}\r\n"
            "fund=false\r\n"
        ).encode(),
        home / ".yarnrc.yml": (
            f'npmRegistryServer: "{url.rstrip("/")}"\n'
            f'npmRegistries:\n  "//{hostpath.rstrip("/")}":\n'
            f'    npmAuthToken: "{token}"  # same account\n'
            "enableTelemetry: false\n"
        ).encode(),
        project / ".npmrc": (
            f"# project settings\nregistry={url}\n//{hostpath}:_authToken={token} \nsave-exact=true"
        ).encode(),
    }
    for path, data in files.items():
        path.write_bytes(data)
        path.chmod(0o600)
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "npm_config_cache": str(home / ".npm"),
        "NO_PROXY": "*",
        "no_proxy": "*",
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "RUNBOOK_NPM_PASSWORD": password,
        "RUNBOOK_OPERATOR": "test-operator",
    }
    return Machine(reg, user, password, login, token, made["key"], home, project, env, files)


def outputs(m: Machine, *results: subprocess.CompletedProcess[str]) -> str:
    """Everything runbook wrote: stdout/stderr, journals, their reports and any backup."""
    texts = [r.stdout + r.stderr for r in results]
    for journal in m.journals():
        texts.append(journal.read_text())
        report = m.run("report", journal)
        assert report.returncode == 0, report.stderr
        texts.append(report.stdout + report.stderr)
    for backup in (Path(m.env["XDG_STATE_HOME"]) / "runbook").rglob("*"):
        if backup.is_file() and "backups" in backup.parts:
            texts.append(backup.read_text(errors="replace"))
    return "\n".join(texts)


def assert_no_secret(m: Machine, text: str, *extra: str) -> None:
    """No secret, nor a long piece of one, in `text` (failures name fingerprints only)."""
    secrets = (m.old, m.login, m.password, *extra)
    leaked = [fingerprint(s) for s in secrets if s in text or s[:24] in text]
    assert leaked == []


def entries(m: Machine) -> list[dict]:
    return [e for j in m.journals() for e in read_entries(j)]


def phases(m: Machine, *, intents: bool = False) -> list[str]:
    """The rotation's phases (the `intent` bookkeeping row only when asked)."""
    rows = [e["data"]["phase"] for e in entries(m) if e["event"] == "npm_rotation"]
    return rows if intents else [p for p in rows if p != "intent"]


def manual_items(m: Machine) -> list[dict]:
    return [e["data"] for e in entries(m) if e["event"] == "manual_item"]


def only_token_changed(m: Machine, new: str) -> None:
    """Each file is byte-identical to what was planted, except the token's characters."""
    for path, before in m.files.items():
        after = path.read_bytes()
        still_old = m.old.encode() in after
        assert not still_old, path
        same = after.replace(new.encode(), m.old.encode()) == before
        assert same, f"{path}: more than the token changed"
        assert path.stat().st_mode & 0o777 == 0o600, path


# -- the whole rotation ----------------------------------------------------------------------
def test_rotation_replaces_the_token_everywhere_and_revokes_the_old(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)
    assert whoami(registry, m.old) == m.user

    result = m.rotate()

    assert result.returncode == 0, result.stdout + result.stderr
    [new] = m.tokens_in_files()
    assert new != m.old
    assert whoami(registry, m.old) is None  # refused
    assert whoami(registry, new) == m.user
    only_token_changed(m, new)
    assert (m.project / ".npmrc").read_bytes().endswith(b"save-exact=true")  # still no newline
    assert b"\r\n" in (m.home / ".npmrc").read_bytes()
    # one token left on the account: the new one (the old is revoked, nothing else was created)
    [entry] = m.vault().entries()
    assert token_keys(registry, new) == [entry.meta["token_id"]]
    assert m.stored(entry.name) == new
    assert entry.type == "npm-token" and entry.meta["user"] == m.user
    assert entry.meta["state"] == "done" and entry.meta["old_revoked"] is True
    assert phases(m) == ["created", "persisted", "verified", "revoked"]
    runs = [e["data"] for e in entries(m) if e["event"] == "effect" and e["data"]["op"] == "run"]
    assert len(runs) == 1 and runs[0]["argv"].split()[1:3] == ["whoami", "--registry"]
    assert runs[0]["outcome"] == "ok" and runs[0]["stdout_tail"].strip() == m.user
    assert list(Path(m.env["TMPDIR"]).iterdir()) == []  # the private userconfig is gone
    [journal] = m.journals()
    assert verify(journal).ok

    again = m.rotate("--new")  # the new token is runbook's own: nothing to rotate
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no npm token to rotate" in again.stdout
    assert whoami(registry, new) == m.user
    only_token_changed(m, new)
    assert_no_secret(m, outputs(m, result, again), new)


def test_a_failure_after_persisting_rolls_everything_back(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)

    result = m.rotate(RUNBOOK_FAULT="npm.persisted:fail")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stdout.lower()
    assert whoami(registry, m.old) == m.user  # the old token still works
    assert token_keys(registry, m.old) == [m.old_key]  # the new one is revoked
    assert m.unchanged()  # restored byte for byte
    assert m.vault().entries() == []
    assert phases(m) == ["created", "persisted", "rolled-back"]
    [rolled] = [e["data"] for e in entries(m) if e["data"].get("phase") == "rolled-back"]
    assert rolled["left"] == [] and "new token revoked" in rolled["undone"]
    assert_no_secret(m, outputs(m, result))


def test_a_token_created_but_never_stored_is_revoked_by_the_rerun(tmp_path, registry) -> None:
    """Killed between the registry's answer and the keyring: nobody holds that token, so the
    rerun finds it (listed now, absent from the journaled intent) and revokes it first."""
    m = machine(tmp_path, registry)

    killed = m.rotate(RUNBOOK_FAULT="npm.created-unstored:kill")

    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert m.vault().entries() == [] and m.unchanged()
    keys = token_keys(registry, m.old)
    assert len(keys) == 2 and m.old_key in keys  # the old token and the orphan
    [orphan_key] = [k for k in keys if k != m.old_key]

    rerun = m.rotate()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    [new] = m.tokens_in_files()
    assert whoami(registry, new) == m.user and whoami(registry, m.old) is None
    assert orphan_key not in token_keys(registry, new)
    assert len(token_keys(registry, new)) == 1  # exactly one token left: the new one
    assert phases(m, intents=True)[:3] == ["intent", "orphan-revoked", "intent"]
    assert_no_secret(m, outputs(m, killed, rerun), new)


@pytest.mark.parametrize(
    ("checkpoint", "files_after_kill", "resumed_from"),
    [
        ("npm.created", "old", "created"),
        ("npm.persisted", "new", "persisted"),
        ("npm.verified", "new", "verified"),
    ],
)
def test_killed_half_way_then_rerun_finishes_without_a_second_token(
    tmp_path, registry, checkpoint, files_after_kill, resumed_from
) -> None:
    m = machine(tmp_path, registry)

    killed = m.rotate(RUNBOOK_FAULT=f"{checkpoint}:kill")

    assert killed.returncode == -9, killed.stdout + killed.stderr
    [entry] = m.vault().entries()
    assert entry.meta["state"] == resumed_from
    new = m.stored(entry.name)
    assert new and whoami(registry, new) == m.user
    assert m.tokens_in_files() == {m.old if files_after_kill == "old" else new}
    assert whoami(registry, m.old) == m.user  # not revoked yet

    rerun = m.rotate()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming" in rerun.stdout
    assert m.tokens_in_files() == {new}  # the token created before the kill, no other
    assert whoami(registry, m.old) is None
    assert whoami(registry, new) == m.user
    assert token_keys(registry, new) == [entry.meta["token_id"]]  # exactly one token works
    only_token_changed(m, new)
    before_kill = phases(m)[: phases(m).index("resumed")]
    assert before_kill == PHASES[: PHASES.index(resumed_from) + 1]
    assert phases(m)[len(before_kill) :] == ["resumed", "persisted", "verified", "revoked"]
    assert m.vault().entries()[0].meta["state"] == "done"
    assert_no_secret(m, outputs(m, killed, rerun), new)


def test_an_interrupted_rotation_whose_token_was_revoked_elsewhere_starts_over(
    tmp_path, registry
) -> None:
    m = machine(tmp_path, registry)
    # what a run killed after `created` leaves, once someone revoked that new token by hand
    dead = create_token(registry, m.old, m.password)
    dead_token = Secret(dead["token"])
    NpmRegistry(registry.url, env={}).revoke_token(m.old, dead["key"])
    name = f"npm:{m.user}@{m.hostpath}:replaces-{fingerprint(m.old)}"
    meta = {"replaces": fingerprint(m.old), "registry": registry.url, "user": m.user}
    meta |= {"token_id": dead["key"], "state": "created"}
    m.vault().store(SERVICE, name, dead_token, type="npm-token", fingerprint="x", meta=meta)
    dry = m.rotate("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert phases(m) == [] and len(m.vault().entries()) == 1  # a dry run forgets nothing

    result = m.rotate()

    assert result.returncode == 0, result.stdout + result.stderr
    [new] = m.tokens_in_files()
    assert new not in (m.old, dead_token)
    assert whoami(registry, new) == m.user and whoami(registry, m.old) is None
    [entry] = m.vault().entries()
    assert entry.name == name and entry.meta["state"] == "done"
    assert m.stored(name) == new
    assert phases(m) == ["forgotten", "created", "persisted", "verified", "revoked"]
    assert_no_secret(m, outputs(m, dry, result), new, dead_token)


def test_a_symlinked_npmrc_stops_the_rotation_before_a_token_is_created(tmp_path, registry) -> None:
    """Effects never writes through a symlink (a dotfile manager's ~/.npmrc): that is found
    before a token is created, not by a roll-back after it."""
    m = machine(tmp_path, registry)
    npmrc = m.home / ".npmrc"
    kept = m.home / "dotfiles" / "npmrc"
    kept.parent.mkdir()
    npmrc.rename(kept)
    npmrc.symlink_to(kept)

    result = m.rotate()

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{npmrc} is a symlink (to {kept})" in result.stdout
    assert phases(m) == []  # nothing created, so nothing to roll back
    assert token_keys(registry, m.old) == [m.old_key]
    assert whoami(registry, m.old) == m.user
    assert kept.read_bytes() == m.files[npmrc] and npmrc.is_symlink()
    assert all(path.read_bytes() == data for path, data in m.files.items() if path != npmrc)
    assert m.vault().entries() == []
    assert_no_secret(m, outputs(m, result))


def test_one_token_failing_does_not_stop_the_others(tmp_path, registry) -> None:
    """Two accounts; the first token's account has another password than the one given, so
    creating its successor fails. The second token is still rotated and the step fails."""
    m = machine(tmp_path, registry)
    for path in m.files:
        path.unlink()
    other_user = f"other{next(_accounts)}-{os.getpid()}"
    other_password = Secret(f"pw-{other_user}-Battery-Staple")
    other_login = Secret(add_user(registry, other_user, other_password))
    made = create_token(registry, other_login, other_password)
    other = Secret(made["token"])
    (m.home / ".npmrc").write_text(f"registry={registry.url}\n//{m.hostpath}:_authToken={other}\n")
    npmrc = m.project / ".npmrc"
    npmrc.write_text(f"registry={registry.url}\n//{m.hostpath}:_authToken={m.old}\n")

    result = m.rotate()

    assert result.returncode == 1, result.stdout + result.stderr
    [finished] = [e["data"] for e in entries(m) if e["event"] == "step_finished"]
    assert finished["outcome"] == "failed" and finished["result"]["failed"] == 1
    assert "1 npm token(s) rotated" in finished["summary"]
    assert f"cannot create a new npm token for {other_user}" in finished["summary"]
    # the other account's token: untouched, still the only one
    assert token_keys(registry, other) == [made["key"]] and whoami(registry, other) == other_user
    assert other.encode() in (m.home / ".npmrc").read_bytes()
    # this account's token: rotated in place, the old one revoked
    line = npmrc.read_text().splitlines()[1]
    new = Secret(line.split("_authToken=", 1)[1])
    assert new != m.old and whoami(registry, new) == m.user
    assert whoami(registry, m.old) is None
    assert_no_secret(m, outputs(m, result), new, other, other_password)


def test_a_roll_back_that_cannot_restore_a_file_keeps_the_new_token(tmp_path) -> None:
    """A file that no longer holds the new token cannot get the old one back: the new token is
    then neither revoked nor forgotten (a file may use it), and the operator is told so."""
    events: list[tuple[str, dict]] = []

    def record(event: str, data: dict) -> None:
        events.append((event, data))

    fx = Effects(
        dry_run=False,
        roots=[tmp_path],
        backup_dir=tmp_path / "backups",
        record=record,
        redactor=Redactor(),
    )
    ctx = SimpleNamespace(
        playbook=SimpleNamespace(id="p"), effects=fx, dry_run=False, env={}, record=record
    )
    old, new = Secret("old-token-0123456789"), Secret("new-token-9876543210")
    fine, edited = tmp_path / "fine.npmrc", tmp_path / "edited.npmrc"
    fine.write_text(f"//r/:_authToken={new}\n")  # as the rotation wrote it
    edited.write_text("//r/:_authToken=changed-by-hand-000\n")  # edited since
    entry = StoredEntry("runbook:p", "npm:me@r/:replaces-x", "npm-token", "fp", 0.0, {})
    group = TokenGroup("http://r/", old, fingerprint(old), user="me", entry=entry, new=new)
    revoked: list[str] = []
    registry = SimpleNamespace(revoke_token=lambda auth, key, otp=None: revoked.append(key))
    made = CreatedToken(token=new, key="new-key-id", user="me")
    rewritten = [
        FileEdit(path, (Replacement(1, old, new),)) for path in (fine, edited)
    ]  # what the run wrote

    with pytest.raises(StepError) as failed:
        NpmRotation(ctx, None, timeout=5)._roll_back(  # type: ignore[arg-type]
            group, registry, made, None, rewritten, "verifying it", RuntimeError("boom")
        )

    message = str(failed.value)
    assert f"could not be rolled back fully: {edited} still holds the new value" in message
    assert "is kept valid (keyring runbook:p/npm:me@r/:replaces-x)" in message
    assert "rerun this step" in message and new not in message and old not in message
    assert fine.read_text() == f"//r/:_authToken={old}\n"  # put back where it could be
    assert revoked == []  # the new token still works for the file that holds it
    [(_, journaled)] = [(e, d) for e, d in events if e == "npm_rotation"]
    assert journaled["phase"] == "rollback-incomplete" and journaled["left"]


def test_the_private_userconfig_of_npm_whoami_never_holds_the_token(tmp_path) -> None:
    """npm reads the new token from its environment: a run killed while npm runs leaves a
    reference in the temporary userconfig, never the token."""
    seen = tmp_path / "seen"
    npm = tmp_path / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--userconfig" ]; do shift; done\n'
        f'cp "$2" {seen}/npmrc; env > {seen}/env\n'
        "echo me\n"
    )
    npm.chmod(0o755)
    seen.mkdir()
    fx = Effects(
        dry_run=False,
        roots=[tmp_path],
        backup_dir=tmp_path / "backups",
        record=lambda event, data: None,
        redactor=Redactor(),
    )
    ctx = SimpleNamespace(
        playbook=SimpleNamespace(id="p"), effects=fx, env={"PATH": "/usr/bin:/bin"},
        home=tmp_path, target=tmp_path, record=lambda event, data: None,
    )  # fmt: skip
    token = Secret("new-token-0123456789abcdef")
    group = TokenGroup("http://r.example/", "old-token-0123456789", "x", user="me")

    result = NpmRotation(ctx, None, timeout=30)._npm_whoami(str(npm), group, token)  # type: ignore[arg-type]

    assert result.returncode == 0 and result.stdout.strip() == "me"
    written = (seen / "npmrc").read_text()
    assert token not in written and "_authToken=${RUNBOOK_NPM_VERIFY_TOKEN}" in written
    assert f"RUNBOOK_NPM_VERIFY_TOKEN={token}" in (seen / "env").read_text().splitlines()


def test_an_unsafe_keyring_fails_the_plan_before_anything_is_created(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)

    result = m.run("run", PLAYBOOK, "--target", m.project, "--yes")  # no --allow-insecure-keyring

    assert result.returncode == 1, result.stdout + result.stderr
    assert "planning failed: refusing the keyring backend" in result.stdout
    assert "--allow-insecure-keyring" in result.stdout
    assert token_keys(registry, m.old) == [m.old_key]
    assert m.unchanged()
    # a dry run says what the live run would do and where it would stop, and succeeds
    dry = m.run("run", PLAYBOOK, "--target", m.project, "--yes", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    [planned] = [e["data"] for e in entries(m) if e["event"] == "step_planned"][-1:]
    assert planned["notes"][0].startswith("a live run would stop here: refusing the keyring")
    assert token_keys(registry, m.old) == [m.old_key] and m.unchanged()
    assert_no_secret(m, outputs(m, result, dry))


# -- nothing to do automatically ---------------------------------------------------------------
def test_without_a_password_headless_the_token_becomes_a_checklist_item(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)
    del m.env["RUNBOOK_NPM_PASSWORD"]

    result = m.rotate()

    assert result.returncode == 0, (
        result.stdout + result.stderr
    )  # outstanding items are reported, not failures
    assert "open" in result.stdout and "outstanding manual steps: rotate-npm" in result.stdout
    assert token_keys(registry, m.old) == [m.old_key]  # nothing created
    assert m.unchanged()
    [item] = manual_items(m)
    assert item["answer"] == "outstanding"
    assert "npm token create --registry" in item["text"]
    assert "npm token revoke ID" in item["text"]
    assert m.vault().entries() == []
    assert_no_secret(m, outputs(m, result))


def test_dry_run_changes_nothing(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)

    result = m.rotate("--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "would rotate 1 npm token(s)" in result.stdout
    assert token_keys(registry, m.old) == [m.old_key]
    assert whoami(registry, m.old) == m.user
    assert m.unchanged()
    assert m.vault().entries() == []
    effects = [e["data"] for e in entries(m) if e["event"] == "effect"]
    assert {d["op"] for d in effects} >= {"call", "write_secret_file", "run"}
    assert {d["outcome"] for d in effects if d["op"] != "allow_files"} == {"would"}
    assert_no_secret(m, outputs(m, result))


def test_a_token_from_the_environment_goes_to_the_keyring_and_a_checklist(
    tmp_path, registry
) -> None:
    m = machine(tmp_path, registry)
    for path in m.files:
        path.unlink()
    reference = f"registry={registry.url}\n//{m.hostpath}:_authToken=${{NPM_TOKEN}}\n".encode()
    npmrc = m.project / ".npmrc"
    npmrc.write_bytes(reference)
    m.env["NPM_TOKEN"] = m.old

    result = m.rotate()

    assert result.returncode == 0, (
        result.stdout + result.stderr
    )  # outstanding items are reported, not failures
    assert npmrc.read_bytes() == reference  # untouched
    [entry] = m.vault().entries()
    new = m.stored(entry.name)
    assert new and whoami(registry, new) == m.user
    assert whoami(registry, m.old) is None
    [item] = manual_items(m)
    assert item["text"].startswith("update NPM_TOKEN where it is set")
    assert entry.name in item["text"] and item["answer"] == "outstanding"
    assert_no_secret(m, outputs(m, result), new)


def test_a_login_token_without_npm_is_verified_over_http_and_revoked_by_hand(
    tmp_path, registry
) -> None:
    """verdaccio does not list login tokens: the new token is put in place and verified with
    GET /-/whoami (npm is not on PATH), and revoking the old one becomes a checklist item."""
    m = machine(tmp_path, registry, login_token=True)
    bare = tmp_path / "bin"
    bare.mkdir()
    m.env["PATH"] = str(bare)
    assert shutil.which("npm", path=m.env["PATH"]) is None

    result = m.rotate()

    assert result.returncode == 0, (
        result.stdout + result.stderr
    )  # outstanding items are reported, not failures
    [new] = m.tokens_in_files()
    assert whoami(registry, new) == m.user
    only_token_changed(m, new)
    verified = [e["data"] for e in entries(m) if e["data"].get("phase") == "verified"]
    assert verified[0]["how"] == "GET /-/whoami (npm is not installed)"
    [item] = manual_items(m)
    assert "does not list it" in item["text"] and "npm token revoke" in item["text"]
    assert phases(m)[-1] == "not-revoked"
    assert_no_secret(m, outputs(m, result), new)


def test_a_token_the_registry_already_refuses_is_only_a_checklist_item(tmp_path, registry) -> None:
    m = machine(tmp_path, registry)
    revoked = create_token(registry, m.login, m.password)
    dead = Secret(revoked["token"])
    NpmRegistry(registry.url, env={}).revoke_token(m.old, revoked["key"])
    assert whoami(registry, dead) is None
    for path in m.files:
        path.unlink()
    (m.project / ".npmrc").write_text(
        f"registry={registry.url}\n//{m.hostpath}:_authToken={dead}\n"
    )

    result = m.rotate()

    assert result.returncode == 0, (
        result.stdout + result.stderr
    )  # outstanding items are reported, not failures
    [item] = manual_items(m)
    assert item["text"].startswith("remove the npm token") and "refused" in item["text"]
    assert token_keys(registry, m.old) == [m.old_key]  # nothing created
    assert_no_secret(m, outputs(m, result), dead)


# -- the registry client -----------------------------------------------------------------------
def test_the_client_finds_a_token_by_its_mask_and_says_why_a_call_failed(registry) -> None:
    user, password = f"client-{os.getpid()}", Secret("pw-client-Correct-Horse")
    login = Secret(add_user(registry, user, password))
    client = NpmRegistry(registry.url, env={})
    first = client.create_token(login, password)
    one = Secret(first.token)
    second = client.create_token(one, password, readonly=True)
    two = Secret(second.token)
    rows = client.list_tokens(one)
    assert {r.key for r in rows} == {first.key, second.key}
    assert find_token(rows, one).key == first.key  # type: ignore[union-attr]
    assert find_token(rows, two).readonly  # type: ignore[union-attr]
    assert find_token(rows, login) is None  # login tokens are not listed
    assert find_token(rows, two, exclude=[second.key]) is None
    # the mask shows 5 + 5 characters: a row sharing them makes it ambiguous, never guessed
    mask = next(r.masked for r in rows if r.key == first.key)
    assert mask.count("...") == 1 and len(mask) == 13
    assert find_token([*rows, TokenInfo(key="twin", masked=mask)], one) is None
    with pytest.raises(PasswordRefused) as refused:
        client.create_token(login, "wrong-password")
    shown = str(refused.value)
    assert refused.value.status == 401 and "password" in shown and registry.url in shown
    with pytest.raises(TokenRefused) as readonly:
        client.revoke_token(two, first.key)  # a read-only token may not revoke
    assert readonly.value.status == 403 and registry.url in str(readonly.value)
    client.revoke_token(one, second.key)
    assert client.refused(two) and not client.refused(one)
    with pytest.raises(TokenRefused):
        client.whoami("not-a-token")  # verdaccio answers 200 {} for an unknown token


class _OtpHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.dumps({"error": "OTP required"}).encode()
        self.send_response(401)
        self.send_header("WWW-Authenticate", "OTP")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_client_says_when_two_factor_authentication_is_needed() -> None:
    # verdaccio has no 2FA: a registry that answers like npmjs.org does for an OTP challenge
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtpHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(OtpRequired) as otp:
            NpmRegistry(url, env={}).create_token("tok", "pw-Correct-Horse")
        assert "two-factor" in str(otp.value) and otp.value.status == 401
        with pytest.raises(Exception) as down:
            NpmRegistry("http://127.0.0.1:9/", env={}, timeout=2).whoami("tok")
        assert "cannot reach it" in str(down.value)
    finally:
        server.shutdown()
