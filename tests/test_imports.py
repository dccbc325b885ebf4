"""The engine and the steps never import Textual (the TUI is a face, not a brain)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CORE_MODULES = [
    "runbook.cli",
    "runbook.headless",
    "runbook.runner",
    "runbook.effects",
    "runbook.journal",
    "runbook.playbook",
    "runbook.report",
    "runbook.schema",
    "runbook.demo",
    "steps",
    "steps.manual",
]


def test_engine_and_steps_do_not_import_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "from runbook.registry import default_registry\n"
        "reg = default_registry()\n"
        "[reg.get(n) for n in reg.names()]\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_cli_help_and_version(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("runbook ")
    assert run_cli().returncode == 2
