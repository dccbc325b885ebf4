"""Text from a scanned tree made safe for a terminal: no escape sequences, no unprintable text.

Directory names, manifest keys and parser messages come from files an attacker may have written.
Printed raw, `ESC[1A ESC[2K` erases the line above and an OSC sequence retitles the window; a lone
surrogate (`\\ud800` from a JSON escape) makes `print` raise. Every human-readable output passes
such text through `printable` first. Machine formats (JSON, SARIF) escape by their own rules.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, lone surrogates, and the bidi overrides
# and isolates that can reorder what a reader sees (Trojan Source).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_NEWLINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control character, lone surrogate and bidi override shown escaped.

    A newline is escaped too unless `keep_newlines` (one finding, one line).
    """
    text = str(text)
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)
