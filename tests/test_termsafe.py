"""`runbook.termsafe.printable`: what reaches a terminal carries no escape sequence."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.termsafe import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[1A\x1b[2K", "\\x1b[1A\\x1b[2K"),  # cursor up, erase line
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC: set the window title
        ("a\rb", "a\\x0db"),  # carriage return overwrites the line
        ("\x7f\x9b", "\\x7f\\x9b"),  # DEL, and C1 CSI (one byte ESC[)
        ("x\ud800y", "x\\ud800y"),  # a lone surrogate, as json.loads("\"\\ud800\"") gives
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override (Trojan Source)
        ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
    ],
)
def test_control_characters_are_escaped(raw, shown):
    assert printable(raw) == shown


def test_plain_text_tabs_and_non_ascii_letters_pass_unchanged():
    text = "axios@1.14.1\tnode_modules/@scope/päckage — ok ✓"
    assert printable(text) == text


def test_newlines_are_escaped_unless_kept():
    assert printable("one\ntwo") == "one\\x0atwo"
    assert printable("one\ntwo\x1b", keep_newlines=True) == "one\ntwo\\x1b"


def test_the_result_can_always_be_encoded_and_printed():
    shown = printable("\ud800\udfff\x00")
    shown.encode("utf-8")  # raised UnicodeEncodeError before escaping
    assert "\\x00" in shown


def test_any_object_is_shown_by_its_str():
    assert printable(Path("/tmp/a\x1bb")) == "/tmp/a\\x1bb"
    assert printable(OSError(2, "gone\x1b")) == "[Errno 2] gone\\x1b"


def test_a_multi_line_step_summary_is_shown_on_indented_lines(capsys) -> None:
    """A failed command's output in a summary: its first line on the step's row, the others
    below it (escaped, never raw), at most `SUMMARY_LINES` of them in the terminal."""
    from runbook.headless import SUMMARY_LINES, TextEmitter
    from runbook.models import StepSpec
    from runbook.runstate import StepState

    spec = StepSpec.model_validate({"id": "reinstall", "uses": "manual", "title": "Reinstall"})
    lines = [f"npm ERR! line {n}" for n in range(SUMMARY_LINES + 3)]
    summary = "npm ci failed (exit 1):\n" + "\n".join(lines) + "\x1b[31m"
    TextEmitter().step(spec, StepState(status="failed", summary=summary, duration=1.25))
    out = capsys.readouterr().out.splitlines()
    assert " ".join(out[0].split()) == "FAILED reinstall npm ci failed (exit 1): (1.2s)"
    assert out[1] == " " * 40 + "npm ERR! line 0"
    assert len(out) == SUMMARY_LINES + 1
    assert out[-1].strip() == "(4 more line(s) in the journal)"
    assert "\x1b" not in "\n".join(out) and "\\x0a" not in "\n".join(out)
