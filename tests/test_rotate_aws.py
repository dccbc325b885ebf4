"""`rotate_aws_keys` against a real moto server (HTTP, IAM authentication enforced).

End to end through the installed `runbook` command: the key lives in a fake `~/.aws/credentials`
(and a project `.env`), the new key goes into a real keyring backend (keyrings.alt's plaintext
file in the test's HOME, accepted with `--allow-insecure-keyring`), faults are injected with
`RUNBOOK_FAULT`. Every run's stdout, stderr, journal, report and backups are searched for the
secrets; assertions compare fingerprints, never values, so a failure prints no secret either.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import Journal, read_entries
from runbook.operator import HeadlessOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor, fingerprint, redact_value
from runbook.registry import default_registry
from runbook.report import render
from runbook.runner import Runner
from runbook.runs import run_dir
from steps.credentials.aws import (
    AwsClient,
    AwsError,
    AwsTarget,
    KeyPair,
    make_client,
    wait_until_accepted,
)
from steps.credentials.aws_rotation import pack, unpack
from steps.credentials.vault import Vault
from tests.conftest import ROOT, RunCli
from tests.moto_server import LIST_USERS, SELF_SERVICE, MotoServer, start_moto, stop_moto

PLAYBOOK = ROOT / "tests" / "playbooks" / "aws-rotation.yaml"
ALL_USERS = ROOT / "tests" / "playbooks" / "aws-all-users.yaml"
KEYRING = "keyrings.alt.file.PlaintextKeyring"
PHASES = ["intent", "created", "persisted", "verified", "deactivated", "deleted", "done"]


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    stop_moto(server)


@pytest.fixture
def moto(moto_module: MotoServer) -> MotoServer:
    """The server, wiped, authentication off until the test calls `enforce_auth()`."""
    moto_module.reset()
    return moto_module


@pytest.fixture
def aws_env(sandbox_env: dict[str, str]) -> dict[str, str]:
    """The sandbox (HOME, XDG dirs in tmp_path) and nothing else of the caller's environment:
    no AWS_* variable, no token from the machine running the tests."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "RUNBOOK_OPERATOR")
    env = {k: v for k, v in sandbox_env.items() if k in keep or k.startswith("XDG_")}
    env["PYTHON_KEYRING_BACKEND"] = KEYRING
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    target.mkdir()
    (target / "package.json").write_text('{"name": "p", "version": "1.0.0"}\n')
    return target


# -- helpers -------------------------------------------------------------------------------------
def credentials_file(home: Path, pair: KeyPair, *, extra: str = "") -> Path:
    """A `~/.aws/credentials` with comments, odd spacing and other profiles around the key."""
    path = home / ".aws" / "credentials"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# laptop credentials\n"
        "[default]\n"
        f"aws_access_key_id = {pair.access_key_id}\n"
        f"aws_secret_access_key={pair.secret_access_key}   \n"
        "region = us-east-1\n"
        "\n"
        "[deploy]\n"
        "role_arn = arn:aws:iam::123456789012:role/deployer\n"
        "source_profile = default\n" + extra
    )
    path.chmod(0o600)
    return path


def dotenv(project: Path, pair: KeyPair) -> Path:
    path = project / ".env"
    path.write_text(
        "# local settings\n"
        "PORT=3000\n"
        f"AWS_ACCESS_KEY_ID={pair.access_key_id}\n"
        f'AWS_SECRET_ACCESS_KEY="{pair.secret_access_key}"\n'
        "DEBUG=false"  # no final newline: kept as it is
    )
    return path


def sha(data: str | bytes) -> str:
    """Files holding secrets are compared by hash, so a failing assertion shows no secret."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def digest(path: Path) -> str:
    return sha(path.read_bytes())


def swapped(text: str, old: KeyPair, new: KeyPair) -> str:
    return text.replace(old.access_key_id, new.access_key_id).replace(
        old.secret_access_key, new.secret_access_key
    )


def rotate(
    run_cli: RunCli,
    env: dict[str, str],
    moto: MotoServer,
    project: Path,
    journal: Path,
    *extra: str,
    fault: str | None = None,
    playbook: Path = PLAYBOOK,
    flags: tuple[str, ...] = ("--yes", "--allow-insecure-keyring"),
) -> subprocess.CompletedProcess[str]:
    run_env = dict(env)
    if fault:
        run_env["RUNBOOK_FAULT"] = fault
    args = ["run", playbook, "--target", project, "--journal", journal, *flags]
    if "AWS_ENDPOINT_URL" not in run_env:
        args += ["--aws-endpoint-url", moto.url]
    return run_cli(*args, *extra, env=run_env)


def stored(env: dict[str, str]) -> list[tuple[dict, KeyPair]]:
    """(index row, key pair) for every AWS key runbook keeps in the keyring."""
    vault = Vault.open(env, allow_insecure=True)
    out = []
    for entry in vault.entries():
        pair = unpack(vault.get(entry.service, entry.name))
        assert pair is not None
        out.append((entry.public(), pair))
    return out


def events(journal: Path, name: str) -> list[dict]:
    return [e["data"] for e in read_entries(journal) if e["event"] == name]


def phases(journal: Path) -> list[str]:
    return [d["phase"] for d in events(journal, "aws_rotation")]


def everything_written(journal: Path, *results: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr of every run, the journal, both report formats, the backups."""
    texts = [r.stdout + r.stderr for r in results]
    texts.append(journal.read_text())
    texts += [render(journal, fmt) for fmt in ("md", "json")]  # what `runbook report` prints
    backups = run_dir(journal)
    if backups.exists():
        texts += [p.read_text(errors="replace") for p in backups.rglob("*") if p.is_file()]
    return "\n".join(texts)


def assert_no_secrets(text: str, **secrets: KeyPair | None) -> None:
    """No key id and no secret appears; a failure names the leaked value, never shows it."""
    leaked = [
        f"{name}.{part}"
        for name, pair in secrets.items()
        if pair is not None
        for part, value in (("id", pair.access_key_id), ("secret", pair.secret_access_key))
        if value in text
    ]
    assert not leaked, f"secrets leaked: {leaked}"


def fps(keys) -> list[tuple[str, str]]:
    return sorted((k.fingerprint, k.status) for k in keys)


def summary_of(journal: Path) -> str:
    return events(journal, "step_finished")[-1]["summary"]


# -- the whole rotation --------------------------------------------------------------------------
def test_full_rotation_rewrites_every_place_and_retires_the_old_key(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    home = Path(aws_env["HOME"])
    creds = credentials_file(home, old)
    env_file = dotenv(project, old)
    creds_before, env_before = creds.read_text(), env_file.read_text()
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal)

    assert result.returncode == 0, summary_of(journal)
    [(row, new)] = stored(aws_env)
    assert row["fingerprint"] == new.fingerprint and row["meta"]["phase"] == "done"
    assert row["meta"]["replaces"] == old.fingerprint and row["meta"]["user"] == "alice"
    # both places hold the new pair, every other byte kept (formatting, the other profile)
    assert digest(creds) == sha(swapped(creds_before, old, new))
    assert digest(env_file) == sha(swapped(env_before, old, new))
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    # AWS: one key left, the new one, active; it authenticates; the old one is gone
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    assert AwsClient(new, moto.target).identity().user == "alice"
    with pytest.raises(AwsError) as dead:
        AwsClient(old, moto.target).identity()
    assert dead.value.code == "InvalidClientTokenId"
    # the journal tells the story, phase by phase; the SSO/role profile is a manual item
    assert phases(journal) == PHASES
    [item] = events(journal, "manual_item")
    assert "deployer" in item["text"] and item["answer"] == "outstanding"
    assert events(journal, "step_finished")[-1]["outcome"] == "outstanding"
    planned = events(journal, "step_planned")[0]
    destructive = [a["summary"] for a in planned["actions"] if a["destructive"]]
    assert destructive == [
        f"deactivate the old key {old.redacted} of alice",
        f"delete the old key {old.redacted} of alice",
    ]
    assert "rotated 1 key(s)" in result.stdout
    # a second run finds the new key (runbook made it) and leaves it alone
    again = rotate(run_cli, aws_env, moto, project, tmp_path / "again.jsonl")
    assert again.returncode == 0
    assert not [
        a
        for a in events(tmp_path / "again.jsonl", "step_planned")[0]["actions"]
        if a["kind"] != "manual"
    ]
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    text = everything_written(journal, result, again) + everything_written(tmp_path / "again.jsonl")
    assert_no_secrets(text, old=old, new=new)


def test_two_key_limit_deletes_the_inactive_key_first_after_confirmation(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    spare = moto.create_key("alice", active=False)
    old = moto.create_key("alice")
    moto.enforce_auth()
    credentials_file(Path(aws_env["HOME"]), old)
    journal = tmp_path / "run.jsonl"

    # nobody to confirm: the run stops before anything is deleted
    unconfirmed = rotate(
        run_cli, aws_env, moto, project, journal, flags=("--allow-insecure-keyring",)
    )
    assert unconfirmed.returncode == 2
    planned = events(journal, "step_planned")[0]
    first = planned["actions"][0]
    assert first["destructive"] and spare.redacted in first["summary"]
    assert "inactive" in first["summary"] and "two keys" in first["summary"]
    with moto.no_auth():
        assert fps(moto.keys("alice")) == sorted(
            [(spare.fingerprint, "Inactive"), (old.fingerprint, "Active")]
        )

    confirmed = rotate(run_cli, aws_env, moto, project, journal)
    assert confirmed.returncode == 0, summary_of(journal)
    [(_, new)] = stored(aws_env)
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    calls = [d["summary"] for d in events(journal, "effect") if d.get("op") == "call"]
    assert calls[0].startswith(f"delete inactive key {spare.redacted}")
    assert_no_secrets(
        everything_written(journal, unconfirmed, confirmed),
        old=old,
        new=new,
        spare=spare,
    )


# -- failures and crashes ------------------------------------------------------------------------
def test_failure_after_persisting_rolls_back(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    env_file = dotenv(project, old)
    creds_bytes, env_bytes = digest(creds), digest(env_file)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal, fault="aws.persisted:fail")

    assert result.returncode == 1
    assert digest(creds) == creds_bytes and digest(env_file) == env_bytes
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(old.fingerprint, "Active")]
    assert AwsClient(old, moto.target).identity().user == "alice"
    assert stored(aws_env) == []
    assert phases(journal) == ["intent", "created", "persisted", "rolled-back"]
    summary = summary_of(journal)
    assert "rolled back" in summary and "aws.persisted" in summary
    assert old.redacted in summary
    created = events(journal, "aws_rotation")[1]
    new_fp = created["new_fp"]
    assert new_fp != old.fingerprint
    assert_no_secrets(everything_written(journal, result), old=old)


@pytest.mark.parametrize("fault", ["aws.verified:fail", "denied"])
def test_a_failure_of_the_deactivation_rolls_back(
    moto: MotoServer,
    aws_env: dict[str, str],
    project: Path,
    run_cli: RunCli,
    tmp_path: Path,
    fault: str,
) -> None:
    """Until the old key is inactive, nothing is lost: a fault after verification, or AWS
    refusing the deactivation itself, deletes the new key and puts the old one back."""
    allowed = [a for a in SELF_SERVICE if a != "iam:UpdateAccessKey"] if fault == "denied" else None
    moto.user("alice", actions=allowed)
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    before = digest(creds)
    journal = tmp_path / "run.jsonl"

    result = rotate(
        run_cli, aws_env, moto, project, journal, fault=None if fault == "denied" else fault
    )

    assert result.returncode == 1
    assert digest(creds) == before
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(old.fingerprint, "Active")]
    assert AwsClient(old, moto.target).identity().user == "alice"
    assert stored(aws_env) == []
    assert phases(journal)[-1] == "rolled-back" and "deactivated" not in phases(journal)
    assert "rolled back" in summary_of(journal)
    assert_no_secrets(everything_written(journal, result), old=old)


@pytest.mark.parametrize("phase", ["created", "persisted", "verified", "deactivated"])
def test_killed_rotation_is_finished_by_a_rerun(
    phase: str,
    moto: MotoServer,
    aws_env: dict[str, str],
    project: Path,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    creds_before = creds.read_text()
    journal = tmp_path / "run.jsonl"

    killed = rotate(run_cli, aws_env, moto, project, journal, fault=f"aws.{phase}:kill")
    assert killed.returncode == -9
    [(row, new)] = stored(aws_env)  # stored before anything else happened
    assert row["meta"]["replaces"] == old.fingerprint
    # two keys; the old one untouched until the new one was verified
    status = "Inactive" if phase == "deactivated" else "Active"
    with moto.no_auth():
        assert fps(moto.keys("alice")) == sorted(
            [(old.fingerprint, status), (new.fingerprint, "Active")]
        )

    rerun = rotate(run_cli, aws_env, moto, project, journal)

    assert rerun.returncode == 0, summary_of(journal)
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    assert digest(creds) == sha(swapped(creds_before, old, new))
    assert AwsClient(new, moto.target).identity().user == "alice"
    [(row, again)] = stored(aws_env)
    assert again.fingerprint == new.fingerprint and row["meta"]["phase"] == "done"
    seen = phases(journal)
    assert seen.count("created") == 1  # no second key was ever created
    assert seen[seen.index("resumed") :][-1] == "done"
    resumed = next(d for d in events(journal, "aws_rotation") if d["phase"] == "resumed")
    assert resumed["from_phase"] == phase
    assert ("persist" in resumed["ops"]) == (phase == "created")
    assert_no_secrets(everything_written(journal, killed, rerun), old=old, new=new)


def test_a_symlinked_credentials_file_stops_the_rotation_before_a_key_is_created(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """Effects never writes through a symlink (dotfile managers make ~/.aws/credentials one):
    that is found before CreateAccessKey, not by a rollback after it."""
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    home = Path(aws_env["HOME"])
    real = credentials_file(home, old)
    kept = home / "dotfiles" / "aws-credentials"
    kept.parent.mkdir()
    real.rename(kept)
    real.symlink_to(kept)
    before = digest(kept)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal)

    assert result.returncode == 1
    summary = summary_of(journal)
    assert f"nothing was changed: {real} is a symlink (to {kept})" in summary
    assert phases(journal) == []  # not even an intent: no key was created
    assert not [d for d in events(journal, "effect") if d.get("op") == "call"]
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(old.fingerprint, "Active")]
    assert digest(kept) == before and real.is_symlink()
    assert stored(aws_env) == []
    assert_no_secrets(everything_written(journal, result), old=old)


def test_key_created_by_a_run_killed_before_storing_it_is_deleted_by_the_rerun(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """Killed between CreateAccessKey and the keyring: the key exists, its secret is lost.
    The rerun recognises it (created right after the journaled intent, not in the keyring),
    deletes it and rotates; the user never has a third key."""
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    creds_before = creds.read_text()
    journal = tmp_path / "run.jsonl"

    killed = rotate(run_cli, aws_env, moto, project, journal, fault="aws.created-unstored:kill")
    assert killed.returncode == -9
    assert stored(aws_env) == [] and digest(creds) == sha(creds_before)
    with moto.no_auth():
        [orphan] = [k for k in moto.keys("alice") if k.fingerprint != old.fingerprint]

    rerun = rotate(run_cli, aws_env, moto, project, journal)

    assert rerun.returncode == 0, summary_of(journal)
    [(_, new)] = stored(aws_env)
    assert new.fingerprint != orphan.fingerprint
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    assert digest(creds) == sha(swapped(creds_before, old, new))
    calls = [d["summary"] for d in events(journal, "effect") if d.get("op") == "call"]
    assert (
        f"delete {orphan.redacted} of alice: an interrupted run created it and never stored its "
        "secret"
    ) in calls
    assert phases(journal).count("intent") == 2 and phases(journal)[-1] == "done"
    assert_no_secrets(everything_written(journal, killed, rerun), old=old, new=new)
    assert orphan.key_id not in everything_written(journal, killed, rerun)


def _runner(
    playbook: Path,
    project: Path,
    journal: Journal,
    env: dict[str, str],
    moto: MotoServer,
    redactor: Redactor,
    *,
    dry_run: bool = False,
) -> Runner:
    return Runner(
        load_playbook(playbook, default_registry()),
        project,
        journal,
        HeadlessOperator("test-operator", assume_yes=True),
        dry_run=dry_run,
        redactor=redactor,
        env=env,
        options={
            "aws_endpoint_url": moto.url,
            "allow_insecure_keyring": True,
            "all_users": False,
        },
    )


# -- what is not rotated -------------------------------------------------------------------------
def test_temporary_key_becomes_a_manual_item_and_nothing_calls_iam(
    aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """An ASIA key against an endpoint where nothing listens: any IAM call would fail the step."""
    temp = KeyPair("ASIA" + "QX7TEMPORARYKEY2", "t3mp/S3cret+Value0123456789abcdefghijklm")
    token = "FwoGZXIvYXdzEXAMPLE" + "x" * 60
    creds = Path(aws_env["HOME"]) / ".aws" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text(
        "[session]\n"
        f"aws_access_key_id = {temp.access_key_id}\n"
        f"aws_secret_access_key = {temp.secret_access_key}\n"
        f"aws_session_token = {token}\n"
    )
    before = digest(creds)
    journal = tmp_path / "run.jsonl"
    dead = f"http://127.0.0.1:{_closed_port()}"

    result = run_cli(
        "run", PLAYBOOK, "--target", project, "--journal", journal, "--yes",
        "--allow-insecure-keyring", "--aws-endpoint-url", dead,
        env=aws_env,
    )  # fmt: skip

    assert result.returncode == 0, summary_of(journal)
    [item] = events(journal, "manual_item")
    assert item["item"] == f"aws-temporary-{fingerprint(temp.access_key_id)}"
    assert "Revoke sessions > Revoke active sessions" in item["text"]
    assert "console.aws.amazon.com/iam" in item["text"]
    assert events(journal, "step_finished")[-1]["outcome"] == "outstanding"
    assert not [
        d for d in events(journal, "effect") if d.get("op") in ("call", "write_secret_file")
    ]
    assert digest(creds) == before
    text = everything_written(journal, result)
    assert_no_secrets(text, temp=temp)
    assert token not in text


def test_temporary_key_item_names_the_role_sts_reports(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """Real temporary credentials (moto's AssumeRole): STS names the role, IAM is never called."""
    moto.user("alice", actions=["sts:AssumeRole"])
    alice = moto.create_key("alice")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    moto.iam().create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))
    moto.enforce_auth()
    answer = make_client("sts", alice, moto.target).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/deployer", RoleSessionName="laptop"
    )["Credentials"]
    temp = KeyPair(answer["AccessKeyId"], answer["SecretAccessKey"])
    token = answer["SessionToken"]
    creds = Path(aws_env["HOME"]) / ".aws" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text(
        "[session]\n"
        f"aws_access_key_id = {temp.access_key_id}\n"
        f"aws_secret_access_key = {temp.secret_access_key}\n"
        f"aws_session_token = {token}\n"
    )
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal)

    assert result.returncode == 0, summary_of(journal)
    [item] = events(journal, "manual_item")
    assert "(role deployer)" in item["text"]
    assert (
        "IAM console > Roles > deployer > Revoke sessions > Revoke active sessions" in item["text"]
    )
    assert not [d for d in events(journal, "effect") if d.get("op") == "call"]
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(alice.fingerprint, "Active")]
    text = everything_written(journal, result)
    assert_no_secrets(text, temp=temp, alice=alice)
    assert token not in text


def test_a_plan_made_stale_by_a_new_key_is_refused(
    moto: MotoServer, aws_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    credentials_file(Path(aws_env["HOME"]), old)
    redactor = Redactor()
    with Journal(tmp_path / "run.jsonl", redactor) as journal:
        runner = _runner(PLAYBOOK, project, journal, aws_env, moto, redactor)
        step = runner.playbook.step("rotate-aws")
        plan = runner.plan(step)
        with moto.no_auth():
            extra = moto.create_key("alice")  # someone adds a key between plan and apply
        state = runner.execute(step, plan)
    assert state.status == "failed"
    assert "changed since it was planned" in state.summary
    with moto.no_auth():
        assert fps(moto.keys("alice")) == sorted(
            [(old.fingerprint, "Active"), (extra.fingerprint, "Active")]
        )
    assert stored(aws_env) == []


def test_keyring_entry_of_a_key_aws_no_longer_has_is_forgotten(
    moto: MotoServer, aws_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    """A pending rotation whose new key was deleted meanwhile: nothing to finish, no key made."""
    moto.user("alice")
    gone = moto.create_key("alice")
    moto.iam().delete_access_key(UserName="alice", AccessKeyId=gone.access_key_id)
    moto.enforce_auth()
    vault = Vault.open(aws_env, allow_insecure=True)
    vault.store(
        "runbook:aws-rotation-test",
        "aws-access-key:123456789012:alice",
        pack(gone),
        type="aws-access-key",
        fingerprint=gone.fingerprint,
        meta={"replaces": "0123abcd", "user": "alice", "phase": "persisted"},
    )
    redactor = Redactor()
    with Journal(tmp_path / "run.jsonl", redactor) as journal:
        summary = _runner(PLAYBOOK, project, journal, aws_env, moto, redactor).run_all()
    assert summary.outcome == "completed" and not summary.failed, summary.reason
    assert stored(aws_env) == []
    planned = events(tmp_path / "run.jsonl", "step_planned")[0]
    assert [a["kind"] for a in planned["actions"]] == ["keyring"]
    assert "forget the keyring entry" in planned["actions"][0]["summary"]
    with moto.no_auth():
        assert moto.keys("alice") == []


def test_a_dry_run_without_aws_counts_the_keys_it_could_not_check(
    moto: MotoServer, aws_env, project, run_cli, tmp_path
) -> None:
    """AWS unreachable in a dry run: the plan still names each key a live run would rotate, and
    the summary counts them as not checked instead of "would rotate 0"."""
    moto.user("alice")
    old = moto.create_key("alice")
    creds = credentials_file(Path(aws_env["HOME"]), old)
    before = digest(creds)
    journal = tmp_path / "run.jsonl"
    dead = f"http://127.0.0.1:{_closed_port()}"

    result = run_cli(
        "run", PLAYBOOK, "--target", project, "--journal", journal, "--dry-run",
        "--aws-endpoint-url", dead,
        env=aws_env,
    )  # fmt: skip

    assert result.returncode == 0, summary_of(journal)
    summary = summary_of(journal)
    assert "would rotate 1 key(s) (1 not checked: AWS not reachable)" in summary
    notes = events(journal, "step_planned")[0]["notes"]
    assert any(n.startswith("AWS is not reachable at") for n in notes)
    assert digest(creds) == before
    assert_no_secrets(everything_written(journal, result), old=old)


def _closed_port() -> int:
    from tests.moto_server import free_port

    return free_port()


def test_two_active_keys_are_refused(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    other = moto.create_key("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    before = digest(creds)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal)

    assert result.returncode == 0
    planned = events(journal, "step_planned")[0]
    assert [a["kind"] for a in planned["actions"]] == ["manual", "manual"]
    [finding] = [f for f in planned["findings"] if f["kind"] == "aws-two-active-keys"]
    assert other.redacted in finding["message"] and old.redacted in finding["message"]
    refused = next(i for i in events(journal, "manual_item") if i["item"].startswith("aws-two"))
    assert "does not guess" in refused["text"] and other.redacted in refused["text"]
    assert digest(creds) == before
    with moto.no_auth():
        assert fps(moto.keys("alice")) == sorted(
            [(old.fingerprint, "Active"), (other.fingerprint, "Active")]
        )
    assert stored(aws_env) == []
    assert_no_secrets(everything_written(journal, result), old=old, other=other)


def test_key_aws_no_longer_accepts_is_a_finding_and_a_manual_item(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    gone = moto.create_key("alice")
    moto.iam().delete_access_key(UserName="alice", AccessKeyId=gone.access_key_id)
    moto.enforce_auth()
    credentials_file(Path(aws_env["HOME"]), gone)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal)

    assert result.returncode == 0
    planned = events(journal, "step_planned")[0]
    [finding] = [f for f in planned["findings"] if f["kind"] == "aws-key-invalid"]
    assert "already invalid" in finding["message"] and "InvalidClientTokenId" in finding["message"]
    item = next(i for i in events(journal, "manual_item") if i["item"].startswith("aws-invalid"))
    assert "Remove the dead AWS key" in item["text"] and "~/.aws/credentials" in item["text"]
    assert_no_secrets(everything_written(journal, result), gone=gone)


# -- dry run, keyring refusal, endpoint from the environment -------------------------------------
def test_dry_run_creates_nothing_and_changes_no_file(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    env_file = dotenv(project, old)
    before = digest(creds), digest(env_file)
    journal = tmp_path / "run.jsonl"
    env = {**aws_env, "AWS_ENDPOINT_URL": moto.url}  # the endpoint from the environment

    result = rotate(run_cli, env, moto, project, journal, flags=("--dry-run",))

    assert result.returncode == 0, summary_of(journal)
    assert (digest(creds), digest(env_file)) == before
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(old.fingerprint, "Active")]
    assert stored(aws_env) == []
    would = [(d["operation"], d["outcome"]) for d in events(journal, "effect") if d["op"] == "call"]
    assert ("iam:CreateAccessKey", "would") in would and ("iam:DeleteAccessKey", "would") in would
    assert all(outcome == "would" for _, outcome in would)
    writes = [d for d in events(journal, "effect") if d["op"] == "write_secret_file"]
    assert {d["outcome"] for d in writes} == {"would"} and len(writes) == 2
    assert "would rotate 1 key(s)" in summary_of(journal)
    notes = events(journal, "step_planned")[0]["notes"]
    assert any(n.startswith("a live run would stop here: refusing the keyring") for n in notes)
    assert_no_secrets(everything_written(journal, result), old=old)


def test_live_run_refuses_a_plaintext_keyring_without_the_flag(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    creds = credentials_file(Path(aws_env["HOME"]), old)
    before = digest(creds)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal, flags=("--yes",))

    assert result.returncode == 1
    summary = summary_of(journal)
    assert summary.startswith("planning failed: refusing the keyring backend")
    assert "clear text" in summary and "--allow-insecure-keyring" in summary
    assert "--allow-insecure-keyring" in result.stdout
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(old.fingerprint, "Active")]
    assert digest(creds) == before
    assert not [d for d in events(journal, "effect") if d.get("op") == "call"]


# -- env-only keys, other users ------------------------------------------------------------------
def test_key_only_in_the_environment_is_rotated_into_the_keyring(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    env = {
        **aws_env,
        "AWS_ACCESS_KEY_ID": old.access_key_id,
        "AWS_SECRET_ACCESS_KEY": old.secret_access_key,
    }
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, env, moto, project, journal)

    assert result.returncode == 0, summary_of(journal)
    [(_, new)] = stored(aws_env)
    with moto.no_auth():
        assert fps(moto.keys("alice")) == [(new.fingerprint, "Active")]
    item = next(i for i in events(journal, "manual_item") if i["item"].startswith("aws-env"))
    assert "AWS_ACCESS_KEY_ID" in item["text"] and "keyring" in item["text"]
    assert not [d for d in events(journal, "effect") if d["op"] == "write_secret_file"]
    assert_no_secrets(everything_written(journal, result), old=old, new=new)


def test_all_users_reports_keys_used_since_the_window_began(
    moto: MotoServer, aws_env: dict[str, str], project: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    moto.user("alice", actions=[*SELF_SERVICE, *LIST_USERS])
    moto.user("bob")
    moto.user("carol")
    old = moto.create_key("alice")
    bob = moto.create_key("bob")
    carol = moto.create_key("carol")  # never used
    moto.enforce_auth()
    AwsClient(bob, moto.target).identity()  # bob's key is used now, after the window began
    credentials_file(Path(aws_env["HOME"]), old)
    journal = tmp_path / "run.jsonl"

    result = rotate(run_cli, aws_env, moto, project, journal, playbook=ALL_USERS)

    assert result.returncode == 0, summary_of(journal)
    [(_, new)] = stored(aws_env)
    planned = events(journal, "step_planned")[0]
    used = [f for f in planned["findings"] if f["kind"] == "aws-key-used-in-window"]
    assert [bob.redacted in f["message"] and "bob" in f["message"] for f in used] == [True]
    items = {i["item"]: i for i in events(journal, "manual_item")}
    assert f"aws-user-key-{bob.fingerprint}" in items
    assert f"aws-user-key-{carol.fingerprint}" not in items
    with moto.no_auth():  # delete_old: false keeps the old key, inactive
        assert fps(moto.keys("alice")) == sorted(
            [(old.fingerprint, "Inactive"), (new.fingerprint, "Active")]
        )
        assert fps(moto.keys("bob")) == [(bob.fingerprint, "Active")]
    assert "deleted" not in phases(journal) and phases(journal)[-1] == "done"
    assert_no_secrets(
        everything_written(journal, result),
        old=old,
        new=new,
        bob=bob,
        carol=carol,
    )


def test_all_users_without_permission_is_a_finding_not_a_failure(
    moto: MotoServer, aws_env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    moto.user("alice")  # may not call iam:ListUsers
    old = moto.create_key("alice")
    moto.enforce_auth()
    credentials_file(Path(aws_env["HOME"]), old)
    redactor = Redactor()
    with Journal(tmp_path / "run.jsonl", redactor) as journal:
        runner = _runner(PLAYBOOK, project, journal, aws_env, moto, redactor, dry_run=True)
        runner.options["all_users"] = True
        summary = runner.run_all()
    assert summary.outcome == "completed" and not summary.failed, summary.reason
    planned = events(tmp_path / "run.jsonl", "step_planned")[0]
    [missing] = [f for f in planned["findings"] if f["kind"] == "aws-permission-missing"]
    assert "iam:ListUsers" in missing["message"] and missing["severity"] == "unknown"


# -- the engine on its own -----------------------------------------------------------------------
def test_verification_backs_off_exponentially_until_the_timeout(moto: MotoServer) -> None:
    moto.enforce_auth()
    unknown = KeyPair("AKIA" + "UNKNOWNKEY234567", "not-a-real-secret-value-0123456789abcdef")
    slept: list[float] = []
    with pytest.raises(AwsError) as failed:
        wait_until_accepted(
            AwsClient(unknown, moto.target),
            "arn:aws:iam::123456789012:user/alice",
            timeout=0.5,
            sleep=slept.append,
            first_delay=0.01,
            max_delay=0.04,
        )
    assert failed.value.code == "NotVerified"
    assert slept[:3] == [0.01, 0.02, 0.04] and max(slept) <= 0.04
    assert unknown.access_key_id not in str(failed.value)
    assert redact_value(unknown.access_key_id) in str(failed.value)


def test_errors_are_translated_without_secrets(moto: MotoServer) -> None:
    moto.user("alice", actions=["iam:ListAccessKeys"])
    pair = moto.create_key("alice")
    moto.enforce_auth()
    client = AwsClient(pair, moto.target)
    with pytest.raises(AwsError) as denied:
        client.create_key("alice")
    assert denied.value.code == "AccessDenied"
    assert "iam:CreateAccessKey" in str(denied.value) and "alice" in str(denied.value)
    with pytest.raises(AwsError) as missing:
        client.list_keys("nobody")
    assert missing.value.code == "NoSuchEntity"
    assert "no such user or access key" in str(missing.value)
    wrong = AwsClient(KeyPair(pair.access_key_id, "x" * 40), moto.target)
    with pytest.raises(AwsError) as mismatch:
        wrong.identity()
    assert mismatch.value.code == "SignatureDoesNotMatch"
    unreachable = AwsClient(pair, AwsTarget(f"http://127.0.0.1:{_closed_port()}"))
    with pytest.raises(AwsError) as offline:
        unreachable.identity()
    assert offline.value.code == "EndpointConnectionError"
    assert "cannot reach the AWS endpoint http://127.0.0.1:" in str(offline.value)
    for error in (denied, missing, mismatch, offline):
        text = str(error.value)
        assert pair.access_key_id not in text and pair.secret_access_key not in text


def test_clients_ignore_credentials_and_endpoints_of_the_environment(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """boto3 never picks up AWS_* variables or ~/.aws files itself: only what it is given."""
    moto.user("alice")
    pair = moto.create_key("alice")
    moto.enforce_auth()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "ENVIRONMENTKEY23")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment-0123456789abcdefghij")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert AwsClient(pair, moto.target).identity().user == "alice"
    assert AwsTarget.resolve({}, dict(os.environ)).endpoint_url == os.environ["AWS_ENDPOINT_URL"]
    assert AwsTarget.resolve({"aws_endpoint_url": moto.url}, dict(os.environ)).endpoint_url == (
        moto.url
    )
