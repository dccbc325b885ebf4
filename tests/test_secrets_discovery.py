"""Credential discovery against a planted HOME, project and environment (see
tests/fixtures/credentials/plant.py).

Every planted credential must be found with its type, file, line and rotation path; no decoy may
be; no planted value may reach a redacted display, a rendering, a problem or the journal.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import Journal, read_entries, verify
from runbook.operator import HeadlessOperator
from runbook.playbook import load_playbook
from runbook.redact import Redactor, fingerprint
from runbook.registry import default_registry
from runbook.runner import Runner
from steps.credentials.discover import discover
from steps.credentials.model import Credential, Discovery
from steps.credentials.output import render_json, render_table, summary
from steps.credentials.patterns import classify, decoy_reason, high_entropy, named_like_secret
from steps.credentials.vault import Vault, service_for
from tests.fixtures.credentials.plant import (
    AWS_EXAMPLE_ID,
    AWS_EXAMPLE_SECRET,
    Plant,
    World,
    aws_key_id,
    aws_secret,
    build,
    github,
    npm_token,
    rand,
    registry_token,
)

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"


def rand_b64(n: int) -> str:
    return rand(n, string.ascii_letters + string.digits + "+/")


NOBODY = 65534


@pytest.fixture
def world(tmp_path: Path, sandbox_env: dict[str, str]) -> World:
    """The planted world; its HOME is the sandbox's HOME (so the keyring file lives there too)."""
    w = build(tmp_path)
    assert str(w.home) == sandbox_env["HOME"]
    w.env["PYTHON_KEYRING_BACKEND"] = PLAINTEXT
    return w


def key_of(c: Credential) -> tuple:
    loc = c.location
    return (loc.source, str(loc.path) if loc.path else None, loc.line, loc.name)


def plant_key(p: Plant) -> tuple:
    return (p.source, str(p.path) if p.path else None, p.line, p.name)


def expected_summary(plants: list[Plant]) -> str:
    by = Counter(p.rotation for p in plants)
    return (
        f"{len(plants)} credentials: {by['aws'] + by['npm']} rotate automatically "
        f"(aws {by['aws']}, npm {by['npm']}), {by['manual']} by hand"
    )


def find_all(w: World, vault: Vault | None = None) -> Discovery:
    return discover(targets=[w.target], home=w.home, env=w.env, vault=vault)


def assert_matches(found: Discovery, plants: list[Plant]) -> None:
    by_place = {key_of(c): c for c in found.credentials}
    assert len(by_place) == len(found.credentials), "two credentials at one place"
    missing = [p.label for p in plants if plant_key(p) not in by_place]
    assert not missing, f"not found: {missing}"
    extra = sorted(set(by_place) - {plant_key(p) for p in plants})
    assert not extra, f"reported but not planted: {extra}"
    for plant in plants:
        c = by_place[plant_key(plant)]
        label = plant.label
        assert (c.type, c.rotation) == (plant.type, plant.rotation), label
        assert c.value == plant.value, label
        for name, value in plant.companions.items():
            assert c.companions.get(name) == value, (label, name)
        for name, value in plant.detail.items():
            assert c.detail.get(name) == value, (label, name, c.detail)
        assert plant.revoke in c.revoke_at, (label, c.revoke_at)


# -- the planted world ---------------------------------------------------------------------------
def test_every_planted_credential_is_found_and_no_decoy(world: World) -> None:
    found = find_all(world)
    assert found.problems == []
    assert_matches(found, world.plants)
    types = {p.type for p in world.plants}
    assert types == {
        "aws-access-key",
        "aws-temporary-key",
        "aws-profile",
        "npm-token",
        "github-token",
        "gitlab-token",
        "slack-token",
        "private-key",
        "docker-auth",
        "git-credential",
        "generic-secret",
    }
    values = {v for c in found.credentials for v in c.secret_values()}
    for decoy in world.decoys + world.ignored:
        assert decoy not in values


def test_aws_companions_point_at_their_lines(world: World) -> None:
    found = find_all(world)
    [default] = [c for c in found.credentials if c.detail.get("profile") == "default"]
    secret_at = default.companion_locations["aws_secret_access_key"]
    assert (secret_at.path, secret_at.line, secret_at.section) == (
        world.home / ".aws" / "credentials",
        3,
        "default",
    )
    [temp] = [c for c in found.credentials if c.type == "aws-temporary-key"]
    assert temp.companion_locations["aws_session_token"].line == 8
    [dotenv] = [c for c in found.credentials if c.detail.get("file") == ".env"]
    assert dotenv.companion_locations["aws_secret_access_key"].line == 3
    [env] = [
        c for c in found.credentials if c.type == "aws-access-key" and c.detail["file"] == "env"
    ]
    assert (
        env.companion_locations["aws_secret_access_key"].display() == "env $AWS_SECRET_ACCESS_KEY"
    )
    [sso] = [c for c in found.credentials if c.detail.get("kind") == "sso"]
    assert "~/.aws/sso/cache (1 file" in sso.detail["cache"]


def test_npm_references_give_the_env_token_its_registry(world: World) -> None:
    found = find_all(world)
    by_name = {c.location.name: c for c in found.credentials if c.location.source == "env"}
    npmrc = world.home / ".config" / "npm" / "npmrc"
    assert by_name["NPM_TOKEN"].detail["referenced_by"] == f"{npmrc}:4"
    assert by_name["CORP_NPM_TOKEN"].detail["referenced_by"] == f"{world.home / '.yarnrc.yml'}:9"
    assert "referenced_by" not in by_name["NODE_AUTH_TOKEN"].detail
    # a `${VAR}` whose variable is not set is nothing at all
    referenced = {"NPM_TOKEN", "CORP_NPM_TOKEN"}
    env = {k: v for k, v in world.env.items() if k not in referenced}
    alone = discover(targets=[world.target], home=world.home, env=env)
    names = {c.location.name for c in alone.credentials if c.location.source == "env"}
    assert names == set(by_name) - referenced
    assert len(alone.credentials) == len(found.credentials) - len(referenced)
    # without NPM_CONFIG_USERCONFIG, npm (and discovery) reads ~/.npmrc instead
    default = discover(home=world.home)
    npmrcs = {c.location.path for c in default.credentials if c.type == "npm-token"}
    assert world.home / ".npmrc" in npmrcs and npmrc not in npmrcs


def test_ssh_keys_say_whether_they_have_a_passphrase(world: World) -> None:
    found = find_all(world)
    keys = {c.location.name: c.detail for c in found.credentials if c.type == "private-key"}
    assert keys["id_ed25519"]["passphrase"] == "no"
    assert keys["deploy-prod"]["passphrase"] == "yes"
    assert keys["legacy.key"]["passphrase"] == "no"
    assert keys["legacy-locked.key"]["passphrase"] == "yes"
    assert keys["deploy-prod"]["key_type"] == "ssh-ed25519"
    assert sorted(keys) == ["deploy-prod", "id_ed25519", "legacy-locked.key", "legacy.key"]


def test_no_rendering_shows_a_planted_value(world: World) -> None:
    found = find_all(world)
    texts = [
        render_table(found, world.home),
        render_json(found, world.home),
        json.dumps([c.public(world.home) for c in found.credentials]),
        json.dumps([c.public() for c in found.credentials]),
        repr(found.credentials),
        summary(found),
    ]
    texts += [c.redacted for c in found.credentials]
    blob = "\n".join(texts)
    for secret in world.all_secrets():
        assert secret not in blob
    for c in found.credentials:
        assert fingerprint(c.value) in c.redacted
    table = render_table(found, world.home)
    assert table.splitlines()[0].split() == ["TYPE", "WHERE", "REDACTED", "ROTATION"]
    assert "~/.aws/credentials:2 [default] aws_access_key_id" in table
    assert table.rstrip().endswith(summary(found))
    assert summary(found) == expected_summary(world.plants)


def test_targets_only_reads_no_host_file_and_no_environment(world: World) -> None:
    found = discover(targets=[world.target])
    paths = {c.location.path for c in found.credentials}
    assert paths == {
        world.target / ".env",
        world.target / ".env.production",
        world.target / ".npmrc",
        world.target / "packages" / "app" / ".npmrc",
    }
    # no user npmrc now: the project npmrc's `${NPM_TOKEN}` names the .env token's registry
    [npm] = [c for c in found.credentials if c.location.name == "NPM_TOKEN"]
    assert npm.detail == {
        "registry": "https://registry.npmjs.org/",
        "key": "//registry.npmjs.org/:_authToken",
        "referenced_by": f"{world.target / '.npmrc'}:2",
    }


def test_a_target_inside_home_is_not_read_twice(world: World) -> None:
    found = discover(targets=[world.home, world.target], home=world.home)
    places = [key_of(c) for c in found.credentials]
    assert len(places) == len(set(places))


def test_dotenv_quoting_and_pruned_folders(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    (target / ".cache" / "x").mkdir(parents=True)
    (target / ".venv").mkdir()
    key = "-----BEGIN PRIVATE KEY-----\n" + rand_b64(64) + "\n-----END PRIVATE KEY-----"
    token, hidden = github(), [npm_token(), npm_token()]
    (target / ".env.test").write_text(
        f'SIGNING_PRIVATE_KEY="{key}"\n'  # double quotes span lines
        f"export GH_TOKEN='{token}' # trailing comment\n"
        "BROKEN='never closed\n"
    )
    (target / ".cache" / "x" / ".env").write_text(f"NPM_TOKEN={hidden[0]}\n")
    (target / ".venv" / ".npmrc").write_text(f"//r.example/:_authToken={hidden[1]}\n")
    found = discover(targets=[target])
    assert [(c.type, c.location.line, c.value) for c in found.credentials] == [
        ("private-key", 1, key),
        ("github-token", 4, token),
    ]
    assert found.problems == [(f"{target / '.env.test'}:5", "unterminated quoted value of BROKEN")]


def test_an_unclosed_double_quote_does_not_hide_the_lines_after_it(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    token = npm_token()
    (target / ".env").write_text(f'GREETING="hello\nNPM_TOKEN={token}\nPORT=3000\n')
    found = discover(targets=[target])
    assert [(c.type, c.location.line) for c in found.credentials] == [("npm-token", 2)]
    assert found.problems == [(f"{target / '.env'}:1", "unterminated quoted value of GREETING")]


def test_a_password_in_a_registry_url_is_a_credential_and_never_part_of_a_registry(
    tmp_path: Path,
) -> None:
    home, target = tmp_path / "home", tmp_path / "repo"
    target.mkdir()
    (home / ".yarnrc.yml").parent.mkdir(parents=True)
    alnum = string.ascii_letters + string.digits
    npm_password, yarn_password, token = rand(18, alnum), rand(18, alnum), npm_token()
    (home / ".npmrc").write_text(
        f"registry=https://me:{npm_password}@art.example.test/api/npm/\n_authToken={token}\n"
    )
    (home / ".yarnrc.yml").write_text(
        f'npmRegistryServer: "https://bob:{yarn_password}@yarn.example.test"\n'
    )
    found = discover(targets=[target], home=home, env={"NPM_TOKEN": npm_token()})
    by_key = {
        (c.location.path.name if c.location.path else "env", c.location.name): c
        for c in found.credentials
    }
    assert by_key[(".npmrc", "registry")].value == npm_password
    assert by_key[(".yarnrc.yml", "npmRegistryServer")].value == yarn_password
    assert {c.rotation for c in found.credentials if c.detail.get("auth") == "url"} == {"manual"}
    # the tokens keep their registry, shown without the account's password
    assert (
        by_key[(".npmrc", "_authToken")].detail["registry"] == "https://art.example.test/api/npm/"
    )
    assert by_key[("env", "NPM_TOKEN")].detail["registry"] == "https://art.example.test/api/npm/"
    shown = render_json(found, home) + render_table(found, home)
    assert npm_password not in shown and yarn_password not in shown


def test_a_token_written_as_the_user_name_of_a_git_credential_is_the_secret(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    classic, gitlab = rand(40, "0123456789abcdef"), "glpat-" + rand(20)
    (home / ".git-credentials").write_text(
        f"https://{classic}:x-oauth-basic@github.com\n"
        f"https://{gitlab}@gitlab.com\n"
        "https://alice@git.example.test\n"  # a user name alone: nothing secret
    )
    found = discover(home=home)
    assert [(c.type, c.value, c.location.name) for c in found.credentials] == [
        ("git-credential", classic, "https://github.com"),
        ("gitlab-token", gitlab, "https://gitlab.com"),
    ]
    shown = render_json(found, home) + render_table(found, home)
    assert classic not in shown and gitlab not in shown and "x-oauth-basic" not in shown


# -- the keyring ---------------------------------------------------------------------------------
def test_keyring_entries_are_found_and_mark_the_file_copy_rotated(world: World) -> None:
    vault = Vault.open(world.env, allow_insecure=True)
    service = service_for("axios-2026-03")
    [default] = [p for p in world.plants if p.detail.get("profile") == "default"]
    [workspace] = [p for p in world.plants if p.label == "token in a workspace npmrc"]
    vault.store(
        service,
        "aws:default",
        json.dumps(
            {"aws_access_key_id": default.value, **default.companions}
        ),  # the new key, as rotation wrote it
        type="aws-access-key",
        fingerprint=fingerprint(default.value),
        meta={"profile": "default"},
    )
    vault.store(
        service,
        "npm:workspace",
        workspace.value,
        type="npm-token",
        fingerprint=fingerprint(workspace.value),
        meta={"registry": "https://npm.internal.example:8443/"},
    )
    other = npm_token()
    vault.store(service, "npm:old-run", other, type="npm-token", fingerprint=fingerprint(other))

    found = find_all(world, Vault.open(world.env, allow_insecure=True))
    assert found.problems == []
    for plant in (default, workspace):
        plant.rotation = "rotated"
    keyring = [c for c in found.credentials if c.location.source == "keyring"]
    assert_matches(
        Discovery([c for c in found.credentials if c.location.source != "keyring"]),
        world.plants,
    )
    by_plant = {key_of(c): c for c in found.credentials}
    assert (
        by_plant[plant_key(default)].detail["rotated_by"]
        == f"runbook (keyring {service} aws:default)"
    )
    assert {(c.location.name, c.location.section, c.rotation, c.type) for c in keyring} == {
        ("aws:default", service, "rotated", "aws-access-key"),
        ("npm:workspace", service, "rotated", "npm-token"),
        ("npm:old-run", service, "rotated", "npm-token"),
    }
    [aws] = [c for c in keyring if c.location.name == "aws:default"]
    assert aws.value == default.value
    assert aws.companions == default.companions
    assert aws.detail["profile"] == "default"
    [npm] = [c for c in keyring if c.location.name == "npm:workspace"]
    assert "https://npm.internal.example:8443/" in npm.revoke_at
    blob = render_json(found, world.home) + render_table(found, world.home)
    for secret in [*world.all_secrets(), other]:
        assert secret not in blob


def test_an_index_entry_whose_value_is_gone_is_a_problem(world: World) -> None:
    vault = Vault.open(world.env, allow_insecure=True)
    token = registry_token()
    vault.store("runbook:x", "npm:gone", token, type="npm-token", fingerprint=fingerprint(token))
    vault.backend.delete_password("runbook:x", "npm:gone")
    found = discover(vault=vault)
    assert found.credentials == []
    assert found.problems == [
        (
            "keyring runbook:x npm:gone",
            "listed in runbook's index but not in the keyring (deleted by hand?)",
        )
    ]


# -- malformed and unreadable files -----------------------------------------------------------
AS_NOBODY = """
import json, os, sys
from pathlib import Path
from steps.credentials.discover import discover
args = json.loads(sys.argv[1])
os.setgroups([])
os.setgid(args["uid"])
os.setuid(args["uid"])
found = discover(targets=[Path(args["target"])], home=Path(args["home"]), env=args["env"])
print(json.dumps({
    "problems": found.problems,
    "found": [[c.type, str(c.location.path), c.location.line] for c in found.credentials],
}))
"""


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A folder another user may enter (pytest's tmp_path is private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="runbook-secrets-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for name in dirnames:
                (Path(dirpath) / name).chmod(0o755)
        shutil.rmtree(base)


def discover_unprivileged(w: World) -> tuple[list[tuple[str, str]], list[list]]:
    """Discovery as a user that permission bits apply to (root reads a 0o000 file anyway)."""
    if os.geteuid() != 0:
        found = discover(targets=[w.target], home=w.home, env=w.env)
        rows = [[c.type, str(c.location.path), c.location.line] for c in found.credentials]
        return found.problems, rows
    for dirpath, dirnames, filenames in os.walk(w.home.parent):
        for name in [".", *dirnames, *filenames]:
            os.lchown(Path(dirpath) / name, NOBODY, NOBODY)
    args = {"uid": NOBODY, "target": str(w.target), "home": str(w.home), "env": w.env}
    proc = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, json.dumps(args)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    return [tuple(p) for p in result["problems"]], result["found"]


def test_malformed_and_unreadable_files_are_problems_and_discovery_goes_on(
    shared_base: Path,
) -> None:
    w = build(shared_base)
    (w.home / ".docker" / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "x"}},\n}\n')
    hosts = w.home / ".config" / "gh" / "hosts.yml"
    token = github("gho_")
    hosts.write_text(f"github.com:\n    oauth_token: {token}\n  user: [unclosed\n")
    (w.target / ".yarnrc.yml").write_text('npmAuthToken: "abc\nnodeLinker: x\n')
    creds = w.home / ".aws" / "credentials"
    creds.write_text(creds.read_text() + "this line is not ini\n")
    unreadable = w.target / ".env.local"
    hidden = npm_token()
    unreadable.write_text(f"NPM_TOKEN={hidden}\n")
    unreadable.chmod(0o000)
    (w.target / ".env.latin1").write_bytes(b"PASSWORD=caf\xe9-caf\xe9-caf\xe9-99\n")

    problems, rows = discover_unprivileged(w)

    by_file = {
        where.rsplit(":", 1)[0] if where[-1].isdigit() else where: (where, msg)
        for where, msg in problems
    }
    assert set(by_file) == {
        str(w.home / ".docker" / "config.json"),
        str(hosts),
        str(w.target / ".yarnrc.yml"),
        str(creds),
        str(unreadable),
        str(w.target / ".env.latin1"),
    }, problems
    assert by_file[str(w.home / ".docker" / "config.json")][1].startswith("malformed JSON")
    assert by_file[str(hosts)] == (f"{hosts}:3", by_file[str(hosts)][1])
    assert by_file[str(hosts)][1].startswith("malformed YAML")
    assert by_file[str(w.target / ".yarnrc.yml")][1].startswith("malformed YAML")
    assert by_file[str(creds)][0] == f"{creds}:{len(creds.read_text().splitlines())}"
    assert by_file[str(unreadable)][1] == "cannot read: permission denied"
    assert by_file[str(w.target / ".env.latin1")][1] == (
        "holds bytes that are not UTF-8 text: line 1 was skipped"
    )
    for secret in [*w.all_secrets(), token, hidden]:
        assert secret not in json.dumps(problems)
    # everything else is still found
    found_places = {(t, p, line) for t, p, line in rows}
    affected = {str(w.home / ".docker" / "config.json"), str(hosts)}
    expected = {
        (p.type, str(p.path) if p.path else "None", p.line)
        for p in w.plants
        if str(p.path) not in affected
    }
    assert expected <= found_places
    assert not any(p == str(unreadable) for _, p, _ in rows)


# -- patterns ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (AWS_EXAMPLE_ID, "AWS documentation example"),
        (AWS_EXAMPLE_SECRET, "AWS documentation example"),
        ("AKIAABCDEFGHEXAMPLE", "AWS documentation example"),
        ("${NPM_TOKEN}", "a reference to another variable"),
        ("$GITHUB_TOKEN", "a reference to another variable"),
        ("123e4567-e89b-42d3-a456-426614174000", "a UUID"),
        ("changeme", "a placeholder"),
        ("xxxxxxxxxxxxxxxx", "a placeholder"),
        ("<token>", "a placeholder"),
        ("your-api-key-here", "a placeholder"),
        ("/tmp/ssh-XXXX/agent.1", "a file path"),
        ("~/.ssh/id_ed25519", "a file path"),
        ("https://example.com/a?b=c", "a URL without credentials"),
        ("true", "a boolean or number"),
        ("3600", "a boolean or number"),
        ("", "empty"),
    ],
)
def test_decoys(value: str, reason: str) -> None:
    assert decoy_reason(value) == reason
    assert classify("API_TOKEN", value) is None


def test_a_secret_that_starts_with_a_slash_is_no_file_path() -> None:
    secret = "/" + "wJa7rXUtnFEMI" + "K7MDENGbPxRfiCY" + "9xAmPleKq2z"  # AWS-shaped: 40 chars
    assert len(secret) == 40 and decoy_reason(secret) is None
    assert classify("APP_SECRET", secret) == ("generic-secret", secret)
    assert decoy_reason("/etc/ssl/private/Server2024.key") == "a file path"
    assert decoy_reason("/srv/Backups/2024") == "a file path"


def test_token_formats_and_secret_names() -> None:
    key, token = aws_key_id(), npm_token()
    assert classify("ANYTHING", key) == ("aws-access-key", key)
    assert classify("ANYTHING", aws_key_id("ASIA"))[0] == "aws-temporary-key"  # type: ignore[index]
    assert classify("X", f"Bearer {token}") == ("npm-token", token)
    assert classify("DB_URL", "postgres://u:Pa55-word-Z@db/x") == ("generic-secret", "Pa55-word-Z")
    assert classify("APP_SECRET", aws_secret())[0] == "generic-secret"  # type: ignore[index]
    assert classify("APP_NAME", aws_secret()) is None  # random, but not named like a secret
    assert classify("APP_SECRET", "hello-world") is None  # named so, but not random
    assert named_like_secret("DB_PASSWORD") and named_like_secret("api-key")
    assert not named_like_secret("AWS_SHARED_CREDENTIALS_FILE")
    assert not named_like_secret("TOKEN_URL") and not named_like_secret("HOME")
    assert named_like_secret("OPENAI_KEY") and not named_like_secret("STRIPE_PUBLISHABLE_KEY")
    assert not named_like_secret("KEYBOARD") and not named_like_secret("MONKEY_PATCH")
    assert high_entropy(aws_secret()) and not high_entropy("aaaaaaaaaaaaaaaaaaaa")


# -- the step kind -------------------------------------------------------------------------------
PLAYBOOK = """\
id: secrets-test
title: secrets test
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
  - id: creds
    title: Find credentials
    uses: discover_credentials
    confirm: always
    with: {host: HOST, paths: PATHS}
"""


def run_step(world: World, tmp_path: Path, *, dry_run: bool, host: bool = True, paths: str = "[]"):
    playbook = tmp_path / f"secrets-{dry_run}-{host}.yaml"
    playbook.write_text(PLAYBOOK.replace("HOST", str(host).lower()).replace("PATHS", paths))
    redactor = Redactor()
    journal_path = tmp_path / f"journal-{dry_run}-{host}.jsonl"
    with Journal(journal_path, redactor) as journal:
        runner = Runner(
            load_playbook(playbook, default_registry()),
            world.target,
            journal,
            HeadlessOperator("tester", assume_yes=True),
            dry_run=dry_run,
            redactor=redactor,
            env=world.env,
        )
        runner.begin()
        step = runner.playbook.step("creds")
        plan = runner.plan(step)
        state = runner.execute(step, plan)
        runner.finish("completed")
    return plan, state, read_entries(journal_path), journal_path, redactor


@pytest.mark.parametrize("dry_run", [False, True])
def test_step_reports_findings_and_journals_the_public_list(
    world: World, tmp_path: Path, dry_run: bool
) -> None:
    plan, state, entries, journal_path, redactor = run_step(world, tmp_path, dry_run=dry_run)
    assert plan.actions == [] and not plan.destructive
    assert len(plan.findings) == len(world.plants)
    kinds = {f.kind for f in plan.findings}
    assert "credential:aws-access-key" in kinds and "credential:private-key" in kinds
    assert {f.severity for f in plan.findings} == {"at-risk"}
    [finding] = [
        f for f in plan.findings if f.line == 2 and f.path == str(world.home / ".aws/credentials")
    ]
    assert finding.message.endswith("] (aws_access_key_id); rotation: aws")
    [from_env] = [f for f in plan.findings if f.path is None and "$AWS_ACCESS_KEY_ID" in f.message]
    assert from_env.message.endswith("(env $AWS_ACCESS_KEY_ID); rotation: aws")
    assert state.status == "succeeded"
    assert state.summary == expected_summary(world.plants)
    by = Counter(p.rotation for p in world.plants)
    assert by["aws"] >= 4 and by["npm"] >= 8 and by["manual"] >= 15
    [event] = [e["data"] for e in entries if e["event"] == "credentials_found"]
    assert event["counts"] == {
        "aws": by["aws"],
        "npm": by["npm"],
        "manual": by["manual"],
        "rotated": 0,
    }
    assert len(event["credentials"]) == len(world.plants)
    assert {c["type"] for c in event["credentials"]} == {p.type for p in world.plants}
    text = journal_path.read_text()
    for secret in world.all_secrets():
        assert secret not in text
    assert verify(journal_path).ok
    # every value found was handed to the run's redactor, token-shaped or not
    for plant in world.plants:
        for secret in plant.secrets:
            assert secret not in redactor.text(f"say {secret} again"), plant.label


def test_step_without_host_reads_the_target_and_extra_paths_only(
    world: World, tmp_path: Path
) -> None:
    extra = world.target / "packages"
    plan, state, *_ = run_step(world, tmp_path, dry_run=False, host=False, paths='["missing"]')
    paths = {f.path for f in plan.findings if f.kind.startswith("credential:") and f.path}
    # extra paths are relative to the target and stay inside it (`../outside` is refused when the
    # playbook is validated: tests/test_playbook_validation.py)
    assert str(world.home.parent / "outside" / ".env") not in paths
    assert not any(p.startswith(str(world.home)) for p in paths)
    assert str(extra / "app" / ".npmrc") in paths
    [missing] = [f for f in plan.findings if f.kind == "credential:unreadable"]
    assert missing.severity == "unknown" and "missing" in missing.message
    assert any("host: false" in note for note in plan.notes)
    assert state.status == "succeeded"
