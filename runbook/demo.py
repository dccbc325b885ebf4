"""`make demo` / `runbook demo`: the bundled axios playbook on a bundled compromised example, in a
sandbox, as a dry run.

The example (a lockfile resolving axios@1.14.1 and a node_modules with an inert plain-crypto-js)
is copied into a temporary directory; HOME, the XDG directories and npm's cache and config point
into that sandbox, so the demo cannot touch anything real even if it were not a dry run. From a
terminal the app opens; without one (CI) the headless runner prints one line per step.

The demo runs in a scrubbed environment: none of the caller's variables (their real tokens and
keys) reach it, and every connection off this machine goes to a closed local proxy port. The
sandbox HOME holds throw-away credentials, random on each run, so the credential steps have
something to show: they are found, shown redacted, and planned for rotation, never sent anywhere.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import sys
import tempfile
from pathlib import Path

EXAMPLE = "axios-compromised"
PLAYBOOK = "axios-2026-03"
PROJECT = "invoice-sync"
WELCOME = (
    "Demo: a dry run on a copy of a compromised example project, with made-up credentials and "
    "no network; nothing real is touched. Press enter to run step 1."
)
# what the demo keeps of the caller's environment: the terminal and the locale, nothing else
KEEP = (
    "PATH",
    "LANG",
    "TERM",
    "COLORTERM",
    "TERM_PROGRAM",
    "TZ",
    "USER",
    "LOGNAME",
    "NO_COLOR",
    "TMPDIR",
)
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection fails at once


def example_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / "examples", here.parent / "examples"):
        if (candidate / EXAMPLE).is_dir():
            return candidate / EXAMPLE
    raise FileNotFoundError(f"bundled example '{EXAMPLE}' not found")


def sandbox_env(sandbox: Path) -> dict[str, str]:
    """HOME, XDG dirs and npm's cache and user config inside `sandbox` (created), no proxy
    bypass, and the caller's terminal and locale settings; none of the caller's secrets."""
    home = sandbox / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    npmrc = home / ".npmrc"
    npmrc.touch()
    kept = {k: v for k, v in os.environ.items() if k in KEEP or k.startswith("LC_")}
    return {
        **kept,
        "HTTPS_PROXY": CLOSED,
        "HTTP_PROXY": CLOSED,
        "https_proxy": CLOSED,
        "http_proxy": CLOSED,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "RUNBOOK_NO_DNS": "1",  # the indicator domains are not looked up either
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "npm_config_cache": str(home / ".npm"),
        "NPM_CONFIG_USERCONFIG": str(npmrc),
    }


def prepare(sandbox: Path) -> tuple[Path, dict[str, str]]:
    """Copy the example into the sandbox's HOME; returns the project and the sandbox variables."""
    sandboxed = sandbox_env(sandbox)
    target = Path(sandboxed["HOME"]) / PROJECT
    shutil.copytree(example_dir(), target, symlinks=True)
    plant_credentials(Path(sandboxed["HOME"]), target)
    return target, sandboxed


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def plant_credentials(home: Path, project: Path) -> None:
    """Made-up credentials, new on every run, where a developer's would be."""
    aws = home / ".aws"
    aws.mkdir(exist_ok=True)
    key = "AKIA" + _random(16, string.ascii_uppercase + "234567")
    (aws / "credentials").write_text(
        f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {_random(40)}\n"
    )
    (aws / "config").write_text(
        "[default]\nregion = eu-west-1\n\n[profile admin-sso]\n"
        "sso_start_url = https://invoice-sync.awsapps.com/start\nsso_region = eu-west-1\n"
        "sso_account_id = 111122223333\nsso_role_name = AdministratorAccess\n"
    )
    (home / ".npmrc").write_text(
        f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_{_random(36)}\n"
    )
    gh = home / ".config" / "gh"
    gh.mkdir(parents=True, exist_ok=True)
    (gh / "hosts.yml").write_text(
        f"github.com:\n    user: oncall\n    oauth_token: gho_{_random(36)}\n"
        "    git_protocol: https\n"
    )
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    body = "\n".join(_random(70, string.ascii_letters + string.digits + "+/") for _ in range(5))
    (ssh / "id_ed25519").write_text(
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    (project / ".env").write_text(
        f"PORT=3000\nSTRIPE_SECRET_KEY=sk_live_{_random(24)}\nSESSION_SECRET=changeme\n"
    )
    for path in [aws / "credentials", home / ".npmrc", gh / "hosts.yml", ssh / "id_ed25519"]:
        path.chmod(0o600)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def main() -> int:
    sandbox = Path(os.path.realpath(tempfile.mkdtemp(prefix="runbook-demo-")))
    target, sandboxed = prepare(sandbox)
    os.environ.clear()  # the demo process sees the sandbox and nothing of the caller's
    os.environ.update(sandboxed)
    interactive = _interactive()
    if interactive:
        code = _run_app(target)
    else:
        from runbook.cli import main as cli_main

        print(f"demo sandbox: {sandbox} (HOME={sandboxed['HOME']})\n", flush=True)
        argv = ["run", PLAYBOOK, "--target", str(target), "--dry-run", "--new", "--no-input"]
        code = cli_main(argv)
    state = Path(sandboxed["XDG_STATE_HOME"]) / "runbook" / PLAYBOOK
    journals = sorted(state.glob("*.jsonl"))
    if journals:
        from runbook.report import render

        report = sandbox / "action-log.md"
        report.write_text(render(journals[-1]), encoding="utf-8")
        print(f"\ndemo sandbox: {sandbox}" if interactive else "")
        print(f"action log:   {report}")
        print(f"verify:       runbook audit verify {journals[-1]}")
    return code


def _run_app(target: Path) -> int:
    from runbook.bundled import resolve_playbook
    from runbook.tui.launch import first_outline, report
    from runbook.tui.request import RunRequest

    path = resolve_playbook(PLAYBOOK)
    env = dict(os.environ)
    outline = first_outline(path, PLAYBOOK, env)
    if outline is None:
        return 2
    request = RunRequest(
        playbook=path,
        target=target,
        mode="dry-run",
        env=env,
        display=PLAYBOOK,
        new=True,
        welcome=WELCOME,
    )
    from runbook.tui.app import RunbookApp

    return report(RunbookApp(request, outline).run(), resumable=False)


if __name__ == "__main__":
    sys.exit(main())
