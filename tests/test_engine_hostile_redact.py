"""The redactor is linear in its input: long runs of word characters, separators or secret-ish
words once took time quadratic (even cubic) in their length (a 20,000-character note: 15 s,
its report 31 s; 8,000 times "token": 8 minutes).

These are complexity guards, not benchmarks: the limits are tens of times what a linear redactor
needs on a slow shared machine, and far below what the old one took. Each input runs in a
subprocess with a timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runbook.journal import Journal
from runbook.redact import Redactor, redact_value

N = 200_000
PATHOLOGICAL = {
    "word run": "a" * N,
    "a_ run": "a_" * (N // 2),
    "token repeated": "token" * (N // 5),
    "password repeated": "password" * (N // 8),
    "equals": "=" * N,
    "spaces": " " * N,
    "token colon": "token:" * (N // 6),
    "token equals space": "token= " * (N // 7),
    "dotted words": "a.token" * (N // 7),
    "word run then =": "token" * (N // 5) + "=",
    "gitlab prefix then dashes": "glpat-" + "-" * N,
    "gitlab prefix then non-ASCII end": "glpat-" + "a" * N + "é",
    "private key header then spaces": "-----BEGIN" + " " * N,
    "private key header repeated": "-----BEGIN PRIVATE KEY-----" * (N // 27),
    "npm prefix repeated": "npm_" * (N // 4),
}

PROBE = """
import json, sys, time
from runbook.redact import Redactor
cases = json.loads(sys.stdin.read())
redactor = Redactor()
redactor.add_secret("registered-secret-value")
took = {}
for name, text in cases.items():
    start = time.perf_counter()
    redactor.text(text)
    took[name] = time.perf_counter() - start
print(json.dumps(took))
"""


def test_pathological_inputs_are_redacted_in_linear_time() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(PATHOLOGICAL),
        capture_output=True,
        text=True,
        timeout=120,  # the old redactor needed hours for these
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    took = json.loads(proc.stdout)
    slow = {name: round(seconds, 2) for name, seconds in took.items() if seconds > 2.0}
    assert not slow, f"over 2 s for {N:,} characters (a complexity guard): {slow}"


def test_a_long_note_and_its_report_are_quick(run_cli, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    with Journal(journal, Redactor()) as j:
        j.append("run_started", {"target": str(tmp_path), "playbook": {"id": "x"}})
    note = "token" * 4_000  # 20,000 characters: 15 s to journal and 31 s to report before
    added = run_cli("note", journal, note, timeout=30)
    assert added.returncode == 0, added.stderr
    report = run_cli("report", journal, timeout=30)
    assert report.returncode == 0, report.stderr
    assert note in report.stdout, "a run of words is not a secret"


def test_secrets_inside_long_runs_are_still_found() -> None:
    value = "Zq8wxyzwxyzwxyzk"
    redactor = Redactor()
    prefix = "x" * 50_000 + ".token"
    out = redactor.text(f"{prefix}={value} " + "a_" * 50_000)
    assert value not in out
    assert out.startswith(f"{prefix}={redact_value(value)} ")
    # the name may hold ':' as a separator or inside it, as the old pattern allowed
    assert redactor.text(f"//r.example/:_authToken={value}").endswith(redact_value(value))
    assert redactor.text(f"PASSWORD: {value}") == f"PASSWORD: {redact_value(value)}"
    assert redactor.text(f"token:password={value}") == f"token:password={redact_value(value)}"
