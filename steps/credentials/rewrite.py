"""Moving the files that hold a credential from its old value to its new one, and back.

Shared by the AWS and npm rotations: check every file before anything is created, rewrite them
one by one through `Effects.write_secret_file` (atomic, mode kept, no backup), and on a failure
put the old values back wherever they were replaced, reporting (never raising) what could not be.
Messages name files and lines, never values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runbook.effects import EffectError, Effects
from steps.credentials.persist import (
    NotText,
    Replacement,
    ValueMoved,
    read_text,
    replace_values,
)


class CannotRewrite(Exception):
    """A file holding the credential cannot be rewritten in place; the message says why."""


@dataclass(frozen=True)
class FileEdit:
    """The replacements that move one file from one value (or key pair) to another."""

    path: Path
    replacements: tuple[Replacement, ...]

    def reverse(self) -> FileEdit:
        back = tuple(Replacement(r.line, r.new, r.old) for r in self.replacements)
        return FileEdit(self.path, back)

    def rewritten(self) -> str:
        """The file's text with the replacements applied; raises ValueMoved, OSError or
        NotText (none of which quotes a value)."""
        return replace_values(read_text(self.path), self.replacements, where=str(self.path))


def preflight(edits: Iterable[FileEdit]) -> None:
    """Raise CannotRewrite unless every edit can be made now: each file is a regular file (not a
    symlink, which `write_secret_file` refuses) and each old value is still on its line."""
    for edit in edits:
        path = edit.path
        if path.is_symlink():
            raise CannotRewrite(
                f"{path} is a symlink (to {os.readlink(path)}); runbook rewrites credential files "
                "in place and never through a link: replace the link by the file, or rotate by hand"
            )
        try:
            edit.rewritten()
        except ValueMoved as exc:
            raise CannotRewrite(str(exc)) from None
        except NotText as exc:
            raise CannotRewrite(
                f"{exc}; runbook rewrites a credential file only when every other byte of it "
                "stays as it is: remove those bytes (or move the credential to a clean file) "
                "and rerun, or rotate this credential by hand"
            ) from None
        except OSError as exc:
            raise CannotRewrite(f"cannot read {path}: {exc.strerror or exc}") from None


def apply_edits(
    effects: Effects, edits: Iterable[FileEdit], done: list[FileEdit], *, reason: str
) -> None:
    """Rewrite each file in place, appending each one to `done` once written (for a rollback)."""
    for edit in edits:
        text = edit.rewritten()
        effects.with_files([edit.path], reason="a file holding the credential").write_secret_file(
            edit.path, text, reason=reason
        )
        done.append(edit)


def undo_edits(effects: Effects, done: Iterable[FileEdit], *, reason: str) -> list[str]:
    """Put the old values back in every file `done` rewrote (last first). Never raises: returns
    one problem per file left holding the new value."""
    problems = []
    for edit in reversed(list(done)):
        back = edit.reverse()
        try:
            text = back.rewritten()
            effects.with_files([back.path], reason="rollback").write_secret_file(
                back.path, text, reason=reason
            )
        except (ValueMoved, OSError, NotText, EffectError) as exc:
            problems.append(f"{back.path} still holds the new value ({exc})")
    return problems
