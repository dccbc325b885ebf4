"""The leak test: the whole bundled playbook, live, on a machine planted with canary secrets of
every kind, then every output is searched for every canary.

Real peers: verdaccio (a real account whose token gets rotated), moto in server mode with
authentication on (a real IAM key that gets rotated), npm for the reinstall, git for the commit,
keyrings.alt's file backend for the new secrets. Everything else discovery knows (GitHub, GitLab,
Slack, SSH, Docker, git-credentials, .env, AWS SSO and temporary keys, env variables) is planted
by `tests/fixtures/credentials/plant.py` with random values. Outputs searched: stdout and stderr,
every file under the state directory (journals, backups), the report in both formats, `runbook
secrets` in both formats, and the git history. A failure names fingerprints, never a value.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from keyrings.alt.file import PlaintextKeyring

from runbook.redact import fingerprint
from steps.credentials.vault import Vault
from tests.conftest import RUNBOOK
from tests.fixtures.credentials import plant
from tests.moto_server import MotoServer, start_moto, stop_moto
from tests.npmreg import (
    Registry,
    add_user,
    create_token,
    manager_env,
    prepare_fixture,
    require_tools,
    start_registry,
    whoami,
)

PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
IDENTITY = {
    "GIT_AUTHOR_NAME": "On Call",
    "GIT_AUTHOR_EMAIL": "oncall@example.test",
    "GIT_COMMITTER_NAME": "On Call",
    "GIT_COMMITTER_EMAIL": "oncall@example.test",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tools("verdaccio", "npm")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    stop_moto(server)


def runbook(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def merge_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)


def keyring_values(env: dict[str, str]) -> list[str]:
    """Every value runbook stored in the test keyring (the new secrets), JSON values opened."""
    backend = PlaintextKeyring()
    backend.file_path = str(  # type: ignore[misc]
        Path(env["XDG_DATA_HOME"]) / "python_keyring" / backend.filename
    )
    vault, values = Vault(backend), []
    for entry in vault.entries():
        value = vault.get(entry.service, entry.name) or ""
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = value
        if isinstance(decoded, dict):
            values += [v for v in decoded.values() if isinstance(v, str) and len(v) >= 8]
        elif isinstance(decoded, str):
            values.append(decoded)
    return values


def leaks(canaries: dict[str, str], outputs: dict[str, str]) -> list[str]:
    """(canary fingerprint, output name) for each canary, or a long middle piece of one, found."""
    found = []
    for label, value in canaries.items():
        pieces = [value] + ([value[4:-4]] if len(value) >= 20 else [])
        for name, text in outputs.items():
            if any(piece in text for piece in pieces):
                found.append(f"{label} sha256:{fingerprint(value)} in {name}")
    return found


def test_no_canary_reaches_any_output_of_a_live_run(
    tmp_path: Path, registry: Registry, moto: MotoServer
) -> None:
    # -- the machine: a compromised npm project in a git repo, HOME full of credentials --------
    project = prepare_fixture(tmp_path, "npm-v3-direct", registry, keep_tree=True)
    env = {**manager_env(tmp_path, registry, "npm"), **IDENTITY}
    home = Path(env["HOME"])
    world = plant.build(tmp_path / "world")
    user_npmrc = home / ".npmrc"
    npm_lines = user_npmrc.read_text().splitlines()
    merge_tree(world.home, home)  # world's own ~/.npmrc (a stray token) replaces the tool one
    merge_tree(world.target, project)
    for key, value in world.env.items():
        if key in ("HOME", "PATH") or key.startswith("XDG_"):
            continue
        env[key] = value.replace(str(world.home), str(home))
    env["NPM_CONFIG_USERCONFIG"] = str(user_npmrc)

    # real credentials the peers know: an npm account's token and an IAM user's key
    account, password = "leak-test", "Canary-Password-" + plant.rand(12)
    login = add_user(registry, account, password)
    npm_token = create_token(registry, login, password)["token"]
    hostpath = registry.url.split("://", 1)[1]
    world_npmrc = (world.home / ".config" / "npm" / "npmrc").read_text().splitlines()
    lines = [line for line in npm_lines if ":_authToken=" not in line]
    lines += [line for line in world_npmrc if not line.startswith("registry=")]
    lines.append(f"//{hostpath}:_authToken={npm_token}")
    user_npmrc.write_text("\n".join(lines) + "\n")
    moto.reset()
    moto.user("incident-bot")
    pair = moto.create_key("incident-bot")
    moto.enforce_auth()
    credentials = home / ".aws" / "credentials"
    with credentials.open("a") as out:
        out.write(
            f"\n[incident-bot]\naws_access_key_id = {pair.access_key_id}\n"
            f"aws_secret_access_key = {pair.secret_access_key}\n"
        )
    repo = git.Repo.init(project, initial_branch="main")
    (project / ".gitignore").write_text("node_modules/\n.env*\n.npmrc\npackages/*/.npmrc\n")
    repo.git.add("-A")
    repo.git.commit("-m", "as installed on 2026-03-31", env=IDENTITY)
    env |= {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "RUNBOOK_NPM_PASSWORD": password,
        # anything not on loopback goes to a closed port: the test never reaches the internet
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }

    # -- the run -----------------------------------------------------------------------------
    result = runbook(
        env,
        "run",
        "axios-2026-03",
        "--target",
        project,
        "--yes",
        "--allow-insecure-keyring",
        "--aws-endpoint-url",
        moto.url,
    )
    status = {
        line.split()[1]: line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith("  ") and len(line.split()) > 1
    }
    assert result.returncode == 0, _safe(result.stdout)
    assert status["rotate-aws-keys"] in ("ok", "open"), _safe(result.stdout)
    assert status["rotate-npm-tokens"] in ("ok", "open"), _safe(result.stdout)

    # the real credentials were rotated: the old ones are dead, the new ones are in the keyring
    assert whoami(registry, npm_token) is None
    new_values = keyring_values(env)
    assert any(whoami(registry, v) == account for v in new_values)
    with moto.no_auth():
        keys = moto.keys("incident-bot")
    assert [k.status for k in keys] == ["Active"]
    assert keys[0].key_id != pair.access_key_id and keys[0].key_id in new_values

    # -- every output ------------------------------------------------------------------------
    state = Path(env["XDG_STATE_HOME"])
    outputs = {"run stdout": result.stdout, "run stderr": result.stderr}
    for path in sorted(state.rglob("*")):
        if path.is_file():
            outputs[str(path.relative_to(state))] = path.read_text(errors="replace")
    journals = sorted(state.rglob("*.jsonl"))
    assert journals
    for journal in journals:
        for fmt in ("md", "json"):
            report = runbook(env, "report", journal, "--format", fmt)
            assert report.returncode == 0, _safe(report.stderr)
            outputs[f"report {fmt} {journal.name}"] = report.stdout + report.stderr
    for fmt in ("table", "json"):
        found = runbook(env, "secrets", "--host", project, "--format", fmt)
        assert found.returncode == 0, _safe(found.stderr)
        outputs[f"secrets {fmt}"] = found.stdout + found.stderr
    outputs["git history"] = repo.git.log("--all", "-p")
    assert "axios-2026-03/remediate" in [h.name for h in repo.heads]

    canaries = {f"planted-{i}": v for i, v in enumerate(world.all_secrets()) if len(v) >= 8}
    canaries |= {
        "npm-old-token": npm_token,
        "npm-login-token": login,
        "npm-password": password,
        "aws-old-key-id": pair.access_key_id,
        "aws-old-secret": pair.secret_access_key,
    }
    canaries |= {f"keyring-{i}": v for i, v in enumerate(new_values)}
    assert len(canaries) > 40
    sample = canaries["npm-old-token"]
    assert leaks({"control": sample}, {"control": f"x{sample}x"}) != []  # the search can fail
    assert leaks(canaries, outputs) == []
    # and the run did write those outputs (an empty search proves nothing)
    assert "rotate-aws-keys" in outputs["run stdout"] and len(outputs) > 8
    assert "credential" in outputs[f"report md {journals[-1].name}"].lower()


def _safe(text: str) -> str:
    """Output shown on failure: it went through runbook's redactor already, but keep it short."""
    return text[-3000:]


async def test_no_canary_reaches_the_screen(tmp_path: Path) -> None:
    """The app walks the whole bundled playbook (dry run) on the planted machine; an SVG of every
    screen it shows (each tab of each step, each confirmation, the audit view) is searched."""
    from runbook.tui.screens.checklist import ChecklistScreen
    from runbook.tui.screens.confirm import ConfirmScreen
    from tests.conftest import BUNDLED, EXAMPLE
    from tests.test_tui_walks import walk
    from tests.tui_support import make_app, ready

    world = plant.build(tmp_path / "world")
    merge_tree(EXAMPLE, world.target)
    env = {
        **world.env,
        "PATH": os.environ["PATH"],
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "RUNBOOK_OPERATOR": "test-operator",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        **{name: "http://127.0.0.1:9" for name in PROXIES},
    }
    shots: dict[str, str] = {}
    app = make_app(BUNDLED, world.target, env)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot)

        def shoot(name: str) -> None:
            shots[f"{len(shots):03d}-{name}.svg"] = app.export_screenshot()

        finished_steps = 0

        async def observe(top) -> None:
            nonlocal finished_steps
            if isinstance(top, ConfirmScreen):
                shoot(f"confirm-{top.step.id}")
            elif isinstance(top, ChecklistScreen) and top.step.id.startswith("rotate"):
                shoot(f"checklist-{top.step.id}")  # the items naming credentials
            elif top is screen and screen.busy is None:
                states = screen.session.runner.states().values()
                done = sum(1 for state in states if state.status != "pending")
                if done != finished_steps:
                    finished_steps = done
                    for tab in "dfpl":
                        await pilot.press(tab)
                        shoot(f"step{done}-{tab}")

        await walk(pilot, screen, observe=observe)
        shoot("finished")
        await pilot.press("escape")
        await pilot.press("a")
        await pilot.pause(0.2)
        shoot("audit")
    for name, svg in shots.items():
        (tmp_path / name).write_text(svg)
    assert len(shots) > 40
    canaries = {f"planted-{i}": v for i, v in enumerate(world.all_secrets()) if len(v) >= 8}
    assert any("credential" in svg for svg in shots.values())  # the credential steps were shown
    assert leaks(canaries, shots) == []
