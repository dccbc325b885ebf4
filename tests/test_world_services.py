"""The world's stand-ins: the npm registry (packages, accounts, tokens) with the real npm CLI
and runbook's registry client, and moto with the world's keys and IAM authentication on."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from steps.credentials.aws import AwsClient, AwsError, AwsTarget, KeyPair
from steps.credentials.npm_registry import Basic, NpmRegistry, PasswordRefused, TokenRefused
from steps.world.build import BuiltWorld
from steps.world.plugin import plugin

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def world(tmp_path: Path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    built = plugin.build({}, "laptop-postinstall", {}, 5, sandbox)
    with built:
        built.start_services()
        yield built


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def npm(world: BuiltWorld, *args: str, token_env: dict[str, str] | None = None):
    return subprocess.run(
        ["npm", *args],
        cwd=world.targets[0],
        env={**world.env, **(token_env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def world_token(world: BuiltWorld) -> str:
    return re.search(r":_authToken=(\S+)", (world.home / ".npmrc").read_text()).group(1)


def test_the_registry_serves_the_fake_packages(world: BuiltWorld):
    status, body = get(world.registry.url + "axios")
    doc = json.loads(body)
    assert status == 200 and doc["dist-tags"]["latest"] == "1.14.1"
    tarballs = {v["dist"]["tarball"] for v in doc["versions"].values()}
    assert all(t.startswith(world.registry.url) for t in tarballs)
    assert not [k for k in doc if k.startswith("_") and k not in ("_id", "_rev")]
    status, tgz = get(world.registry.url + "axios/-/axios-1.14.0.tgz")
    assert status == 200 and tgz[:2] == b"\x1f\x8b"
    for path in (
        "nope",
        "axios/-/axios-9.9.9.tgz",
        "..%2f..%2fservices%2fregistry.json",
        "axios/-/..%2fpackage.json",
        "-/npm/v1/keys",
    ):
        assert get(world.registry.url + path)[0] == 404, path
    assert get(world.registry.url + "-/ping")[0] == 200
    # the real npm installs from it (scripts off), into the world's cache
    scratch = world.home / "scratch"
    scratch.mkdir()
    (scratch / "package.json").write_text('{"name": "scratch", "version": "1.0.0"}\n')
    result = subprocess.run(
        ["npm", "install", "--ignore-scripts", "axios@0.30.3"],
        cwd=scratch,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (scratch / "node_modules/axios/package.json").is_file()


def test_tokens_live_and_die_on_the_registry(world: BuiltWorld):
    token = world_token(world)
    registry = NpmRegistry(world.registry.url)
    assert registry.whoami(token) == "dev"
    assert npm(world, "whoami").stdout.strip() == "dev"  # the world's ~/.npmrc authenticates
    listed = registry.list_tokens(token)
    assert len(listed) == 1 and listed[0].masked == f"{token[:6]}...{token[-4:]}"
    with pytest.raises(PasswordRefused):
        registry.create_token(token, "not the password")
    made = registry.create_token(token, world.npm_password)
    assert made.user == "dev" and made.token.startswith("npm_") and made.token != token
    assert registry.whoami(made.token) == "dev"
    # npm's own token commands against the stand-in
    listing = npm(world, "token", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)) == 2
    readonly = registry.create_token(token, world.npm_password, readonly=True)
    assert registry.whoami(readonly.token) == "dev"
    with pytest.raises(TokenRefused) as forbidden:  # a read-only token manages no tokens
        registry.create_token(readonly.token, world.npm_password)
    assert forbidden.value.status == 403
    registry.revoke_token(Basic("dev", world.npm_password), readonly.key)
    registry.revoke_token(Basic("dev", world.npm_password), listed[0].key)
    assert registry.refused(token)
    assert npm(world, "whoami").returncode != 0  # the file still holds the revoked token
    assert get(world.registry.url + "-/whoami", token)[0] == 401
    with pytest.raises(TokenRefused):
        registry.list_tokens(token)
    state = (world.sandbox / "services" / "registry.json").read_text()
    assert token not in state and made.token not in state and world.npm_password not in state
    log = (world.sandbox / "services" / "registry.log").read_text()
    assert token not in log and made.token not in log


def test_npm_login_and_logout(world: BuiltWorld):
    registry = world.registry.url
    body = json.dumps({"name": "dev", "password": world.npm_password}).encode()
    request = urllib.request.Request(
        registry + "-/user/org.couchdb.user:dev",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with NO_PROXY.open(request, timeout=10) as resp:
        session = json.loads(resp.read())["token"]
    assert NpmRegistry(registry).whoami(session) == "dev"
    wrong = urllib.request.Request(
        registry + "-/user/org.couchdb.user:dev",
        data=json.dumps({"name": "dev", "password": "guess"}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        NO_PROXY.open(wrong, timeout=10)
    assert refused.value.code == 401
    # `npm logout` revokes the token of the world's ~/.npmrc and removes it from the file
    token = world_token(world)
    logout = npm(world, "logout")
    assert logout.returncode == 0, logout.stderr
    assert "_authToken" not in (world.home / ".npmrc").read_text()
    assert NpmRegistry(registry).refused(token)
    assert NpmRegistry(registry).whoami(session) == "dev"  # the other session is untouched


def test_moto_knows_the_worlds_keys_and_nothing_else(world: BuiltWorld):
    text = (world.home / ".aws" / "credentials").read_text()
    pair = KeyPair(
        re.search(r"aws_access_key_id = (\S+)", text).group(1),
        re.search(r"aws_secret_access_key = (\S+)", text).group(1),
    )
    target = AwsTarget(world.aws.url)
    client = AwsClient(pair, target)
    assert client.identity().arn == "arn:aws:iam::123456789012:user/dev"
    with pytest.raises(AwsError) as wrong_secret:
        AwsClient(KeyPair(pair.access_key_id, "x" * 40), target).identity()
    assert wrong_secret.value.code == "SignatureDoesNotMatch"
    with pytest.raises(AwsError) as unknown:
        AwsClient(KeyPair("AKIA" + "Q" * 16, pair.secret_access_key), target).identity()
    assert unknown.value.rejected
    # the self-service policy: its own keys, not other users
    with pytest.raises(AwsError) as denied:
        client.list_users()
    assert denied.value.code == "AccessDenied"

    # a rotation done by hand, then the services restart: moto keeps what happened
    new = client.create_key("dev")
    client.set_status("dev", pair.access_key_id, "Inactive")
    client.delete_key("dev", pair.access_key_id)
    port = world.aws.port
    world.stop_services()
    assert not world.services_state()["aws"]["running"]
    world.start_services()
    assert world.aws.port == port
    assert AwsClient(new, target).identity().user == "dev"
    with pytest.raises(AwsError):
        AwsClient(pair, target).identity()
