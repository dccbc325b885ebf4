"""`make demo`: a dry run of the bundled axios playbook on a bundled example project, in a sandbox.

The example is copied to a temporary directory and HOME points at an empty sandbox, so the demo
cannot touch anything real even if it were not a dry run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from runbook.cli import main as cli_main

EXAMPLE = "axios-compromised"
PLAYBOOK = "axios-2026-03"


def example_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / "examples", here.parent / "examples"):
        if (candidate / EXAMPLE).is_dir():
            return candidate / EXAMPLE
    raise FileNotFoundError(f"bundled example '{EXAMPLE}' not found")


def main() -> int:
    sandbox = Path(tempfile.mkdtemp(prefix="runbook-demo-"))
    target = sandbox / "invoice-sync"
    shutil.copytree(example_dir(), target, symlinks=True)
    home = sandbox / "home"
    home.mkdir()
    os.environ.update({"HOME": str(home), "XDG_STATE_HOME": str(sandbox / "state")})
    print(f"demo sandbox: {sandbox} (HOME={home})\n", flush=True)
    code = cli_main(["run", PLAYBOOK, "--target", str(target), "--dry-run", "--new", "--no-input"])
    journals = sorted((sandbox / "state" / "runbook" / PLAYBOOK).glob("*.jsonl"))
    if journals:
        report = sandbox / "action-log.md"
        cli_main(["report", str(journals[-1]), "-o", str(report)])
        print(f"\naction log: {report}")
        print(f"verify:     runbook audit verify {journals[-1]}")
    return code


if __name__ == "__main__":
    sys.exit(main())
