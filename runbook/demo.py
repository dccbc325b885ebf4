"""`make demo` / `runbook demo`: the bundled axios playbook on a bundled compromised example, in a
sandbox, as a dry run.

The example (a lockfile resolving axios@1.14.1 and a node_modules with an inert plain-crypto-js)
is copied into a temporary directory; HOME, the XDG directories and npm's cache and config point
into that sandbox, so the demo cannot touch anything real even if it were not a dry run. From a
terminal the app opens; without one (CI) the headless runner prints one line per step.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

EXAMPLE = "axios-compromised"
PLAYBOOK = "axios-2026-03"
PROJECT = "invoice-sync"
WELCOME = (
    "Demo: a dry run on a copy of a compromised example project; nothing real is touched. "
    "Press enter to run step 1."
)


def example_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / "examples", here.parent / "examples"):
        if (candidate / EXAMPLE).is_dir():
            return candidate / EXAMPLE
    raise FileNotFoundError(f"bundled example '{EXAMPLE}' not found")


def sandbox_env(sandbox: Path) -> dict[str, str]:
    """HOME, XDG dirs and npm's cache and user config inside `sandbox` (created)."""
    home = sandbox / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    npmrc = home / ".npmrc"
    npmrc.touch()
    return {
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
    return target, sandboxed


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def main() -> int:
    sandbox = Path(os.path.realpath(tempfile.mkdtemp(prefix="runbook-demo-")))
    target, sandboxed = prepare(sandbox)
    os.environ.update(sandboxed)  # for anything that reads the process environment
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
