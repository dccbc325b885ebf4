"""`runbook new` without --from-osv: the same facts asked one by one in a terminal (a real pseudo-
terminal around the real CLI), answers that cannot be used asked again; headless it refuses."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from pathlib import Path

import yaml

from steps.osv.interactive import ask_incident
from tests.conftest import RUNBOOK


class Terminal:
    """The real `runbook` on a pseudo-terminal: wait for a prompt, type an answer."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [str(RUNBOOK), *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
        )
        os.close(slave)
        self.seen = ""

    def read(self, timeout: float = 0.1) -> str:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # the other side closed: the process ended
                self.seen += os.read(self.master, 65536).decode(errors="replace")
        return self.seen

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self.read()):
                raise AssertionError(f"never saw {text!r}; screen so far:\n{self.seen}")
            self.read()
        self.seen = self.seen[self.seen.index(text) + len(text) :]

    def answer(self, prompt: str, text: str) -> None:
        self.expect(prompt)
        os.write(self.master, text.encode() + b"\n")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read()
        for _ in range(20):
            self.read(0.05)
        os.close(self.master)
        return self.proc.wait(timeout=5), self.seen


def test_questions_in_a_terminal_write_a_valid_playbook(sandbox_env, tmp_path: Path, run_cli):
    term = Terminal(["new", "-o", "mine.yaml"], sandbox_env, tmp_path)
    term.answer("Playbook id", "Left Pad")
    term.expect("use lowercase letters")
    term.answer("Playbook id", "left-pad-2026")
    term.answer("Title", "left-pad hijack")
    term.answer("Summary", "A hijacked maintainer account published two bad releases.")
    term.answer("Package name", "left-pad")
    term.answer("Bad versions of left-pad", "1.3.1, ~2")
    term.expect("'~2' is not an exact version (like 1.14.1) or a range")
    term.answer("Bad versions of left-pad", "1.3.1, >=2.0.0 <2.0.2")
    term.answer("Package name", "evil-helper")
    term.answer("Bad versions of evil-helper", "*")
    term.answer("Package name", "")
    term.answer("Safe pin for left-pad 1.x (Enter: fill in later)", "1.3.0")
    term.answer("Safe pin for left-pad 2.x", "2.0.1")
    term.expect("2.0.1 is one of the bad versions")
    term.answer("Safe pin for left-pad 2.x", "2.0.2")
    term.answer("When was the first bad version published?", "2026-04-01T10:00:00Z")
    term.answer("Domains", "evil.test")
    term.answer("IP addresses", "not-an-ip")
    term.expect("'not-an-ip' is not an IP address")
    term.answer("IP addresses", "203.0.113.7")
    term.answer("URLs", "")
    term.answer("Reference URLs", "https://example.test/advisory")
    code, screen = term.finish()
    assert code == 0, screen
    assert "wrote mine.yaml: left-pad-2026 (2 packages, 0 warnings to review)" in screen

    playbook = tmp_path / "mine.yaml"
    doc = yaml.safe_load(playbook.read_text())
    assert doc["id"] == "left-pad-2026" and doc["title"] == "left-pad hijack"
    incident = doc["incident"]
    assert incident["summary"].startswith("A hijacked maintainer account")
    assert incident["window"]["start"] == "2026-04-01T10:00:00Z"
    assert incident["packages"] == [
        {
            "name": "left-pad",
            "bad_versions": ["1.3.1"],
            "bad_ranges": [">=2.0.0 <2.0.2"],
            "safe_pins": {"2": "2.0.2", "1": "1.3.0"},
        },
        {"name": "evil-helper", "any_version": True},
    ]
    assert incident["indicators"]["network"] == {"domains": ["evil.test"], "ips": ["203.0.113.7"]}
    assert incident["references"] == [
        {"title": "https://example.test/advisory", "url": "https://example.test/advisory"}
    ]
    assert [s["id"] for s in doc["steps"]][:3] == ["detect", "check-host", "pin"]
    validated = run_cli("validate", playbook)
    assert validated.returncode == 0, validated.stderr


def test_end_of_input_writes_nothing(sandbox_env, tmp_path: Path) -> None:
    term = Terminal(["new", "--id", "x", "-o", "x.yaml"], sandbox_env, tmp_path)
    term.expect("Title")
    os.write(term.master, b"\x04")  # Ctrl-D
    code, screen = term.finish()
    assert code == 2, screen
    assert "input ended; nothing written" in screen
    assert not (tmp_path / "x.yaml").exists()


def test_pins_left_empty_stay_to_fill_in() -> None:
    answers = iter(["the title", "", "is-odd", "3.0.1", "", "", "", "", "", "", ""])
    said: list[str] = []
    draft = ask_incident(lambda _prompt: next(answers), said.append, "odd")
    assert draft.packages["is-odd"].bad_versions == {"3.0.1"}
    assert draft.fill_ins() == [("is-odd", "3")]
    assert draft.warnings == ["the incident window starts when the playbook was written"]
    assert next(answers, None) is None  # every answer was asked for, no more
