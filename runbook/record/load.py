"""Many journals in, verified runs out: what `runbook report J1 J2 DIR...` reads.

Every journal's chain is verified before anything of it is used. A journal that cannot be used
(unreadable, not a journal, broken, a signature that does not hold, two copies of one run that
disagree) becomes a `Problem` naming the file and the reason, and is never merged. Copies of the
same run (the same first entry: a journal collected before and after a resume) count once: the
longest copy is used when every other copy is a prefix of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson

from runbook import __version__
from runbook.journal import (
    FIELDS,
    GENESIS,
    MalformedEntry,
    canonical,
    check_entry,
    read_journal,
    verify_lines,
)
from runbook.report import check_data
from runbook.safeio import JOURNAL_LIMIT, read_regular
from runbook.signing import Check, Signature, SigningError, signature_path
from runbook.signing import check as check_signature
from runbook.signing import read as read_signature

Kind = Literal["unreadable", "empty", "foreign", "broken", "newer", "torn", "conflict", "signature"]
#: Problems that keep a journal out of the record; the others are warnings about a used one.
BLOCKING = frozenset({"unreadable", "empty", "foreign", "broken", "conflict", "signature"})
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


class NoJournals(Exception):
    """The command line named nothing to read (a missing path, a folder with no journal)."""


@dataclass
class Problem:
    """Why a journal was not used (or what to know about one that was)."""

    journal: str
    kind: Kind
    reason: str
    line: int | None = None
    host: str | None = None
    target: str | None = None
    run: str | None = None

    @property
    def blocking(self) -> bool:
        return self.kind in BLOCKING

    def as_dict(self) -> dict[str, Any]:
        return {
            "journal": self.journal,
            "kind": self.kind,
            "used": not self.blocking,
            "reason": self.reason,
            "line": self.line,
            "host": self.host,
            "target": self.target,
            "run": self.run,
        }


@dataclass
class Run:
    """One verified run: its entries (in order) and where they came from."""

    journal: str  # the copy used, as the command line named it
    entries: list[dict[str, Any]]
    copies: list[str] = field(default_factory=list)  # earlier copies of the same run
    signature: Check | None = None
    signature_file: str | None = None
    newer: str | None = None  # tool version, when newer than this runbook

    @property
    def id(self) -> str:
        """The run's identity across copies: the hash of its first entry."""
        return str(self.entries[0]["hash"])

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def head(self) -> str:
        return str(self.entries[-1]["hash"])

    @property
    def hashes(self) -> list[str]:
        return [str(e["hash"]) for e in self.entries]

    @cached_property
    def start(self) -> dict[str, Any]:
        """The `run_started` data."""
        return next(e["data"] for e in self.entries if e["event"] == "run_started")

    @property
    def host(self) -> str:
        return str(self.start.get("host") or "unknown host")

    @property
    def target(self) -> str:
        return str(self.start.get("target") or "unknown target")

    @property
    def mode(self) -> str:
        return str(self.start.get("mode") or "unknown")

    @property
    def dry_run(self) -> bool:
        return self.mode != "live"

    @property
    def playbook(self) -> dict[str, Any]:
        playbook = self.start.get("playbook")
        return playbook if isinstance(playbook, dict) else {}

    @property
    def started(self) -> str:
        return str(self.entries[0]["ts"])

    @property
    def last(self) -> str:
        return str(self.entries[-1]["ts"])


@dataclass
class Collection:
    """What was read: the runs to merge and the problems to show first."""

    runs: list[Run]
    problems: list[Problem]
    read: int  # journal files read


# -- finding journals ------------------------------------------------------------------------
def find_journals(paths: Sequence[str]) -> list[tuple[Path, str, bool]]:
    """Every journal the arguments name, as (path, display, named): a file as given (named), a
    folder as every `*.jsonl` under it (run folders `X.d` beside `X.jsonl` are skipped: they
    hold backups; symlinks are not followed).

    Raises `NoJournals` for a path that does not exist or a folder without any journal.
    """
    found: list[tuple[Path, str, bool]] = []
    seen: set[str] = set()
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            listed = [(p, shown, False) for p, shown in _walk(path, arg)]
            if not listed:
                raise NoJournals(f"no journal (*.jsonl) under {arg}")
        elif os.path.lexists(path):
            listed = [(path, arg, True)]
        else:
            raise NoJournals(f"cannot read {arg}: no such file or directory")
        for item in listed:
            key = os.path.abspath(item[0])  # not realpath: a symlink is named, not merged away
            if key not in seen:
                seen.add(key)
                found.append(item)
    return found


def _walk(root: Path, shown: str) -> Iterable[tuple[Path, str]]:
    """Every `*.jsonl` under `root`, and every symlinked folder (never followed: it is named as
    unreadable rather than silently left out)."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        linked = sorted(d for d in dirs if (here / d).is_symlink())
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in linked and not (d.endswith(".d") and f"{d[:-2]}.jsonl" in files)
        )
        for name in sorted([*(f for f in files if f.endswith(".jsonl")), *linked]):
            path = here / name
            yield path, os.path.join(shown, os.path.relpath(path, root))


# -- reading one journal -----------------------------------------------------------------------
def _version(text: object) -> tuple[int, int, int] | None:
    match = _VERSION.match(str(text or ""))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _newer(version: object) -> bool:
    theirs, ours = _version(version), _version(__version__)
    return theirs is not None and ours is not None and theirs > ours


def _first_object(lines: list[bytes]) -> dict[str, Any] | None:
    try:
        first = json.loads(lines[0])
    except (ValueError, UnicodeDecodeError, IndexError):
        return None
    return first if isinstance(first, dict) else None


def _looks_like_journal(lines: list[bytes]) -> bool:
    """Some line is an entry-shaped object: a journal (perhaps damaged), not a foreign file."""
    for raw in lines[:50]:
        try:
            entry = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(entry, dict) and set(entry) == set(FIELDS):
            return True
    return False


def _where(first: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    data = first.get("data") if first else None
    if not isinstance(data, dict):
        return None, None, None
    host, target = data.get("host"), data.get("target")
    return (
        str(host) if host is not None else None,
        str(target) if target is not None else None,
        str(data.get("tool_version")) if data.get("tool_version") is not None else None,
    )


def _malformed(entries: list[dict[str, Any]]) -> MalformedEntry | None:
    """The first entry runbook could not have written (a chain can verify and still hold one:
    the hashes cover whatever was written): a field of the wrong type, a `ts` that is not a
    UTC timestamp."""
    for number, entry in enumerate(entries, start=1):
        try:
            check_entry(entry, number)
            check_data(entry, number)
        except MalformedEntry as exc:
            return exc
        if not TS.match(entry["ts"]):
            return MalformedEntry(number, "ts is not a UTC timestamp")
    return None


def _parse(raw: bytes) -> Any:
    """orjson first (much faster); a line it refuses (a lone surrogate) goes to `json`. Where
    orjson reads a value differently (an integer over 64 bits becomes a float) the entry no
    longer encodes back to its line, and `verified_entries` parses it again with `json`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def verified_entries(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """The entries, when every line passes the checks of `journal.verify_lines`; None as soon
    as one does not (then `verify_lines` itself says where and why).

    The same checks, once per line instead of twice: exactly the fields, `seq`, `prev`, the line
    is `canonical` of its entry, and `hash` is the sha256 of the canonical entry without `hash`.
    That last one is cut out of the verified canonical line rather than encoded again: keys are
    sorted, so the line ends `,"hash":H,"prev":P,"seq":S,"ts":T}`.
    """
    entries = []
    prev, fields = GENESIS, set(FIELDS)
    for number, raw in enumerate(lines, start=1):
        try:
            entry = _parse(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or entry.keys() != fields:
            return None
        digest = entry["hash"]
        if entry["seq"] != number or entry["prev"] != prev or not isinstance(digest, str):
            return None
        try:
            if canonical(entry) != raw:
                entry = json.loads(raw)
                if canonical(entry) != raw:
                    return None
        except (TypeError, ValueError):
            return None
        # plain formatting: a value that needs escaping makes the line not end as expected, and
        # the journal goes to `verify_lines` (which then finds nothing wrong, or names the line)
        tail = f'"prev":"{prev}","seq":{entry["seq"]},"ts":"{entry["ts"]}"}}'.encode()
        member = f',"hash":"{digest}"'.encode()
        if not raw.endswith(member + b"," + tail):
            return None
        body = raw[: len(raw) - len(member) - len(tail) - 1] + b"," + tail
        if hashlib.sha256(body).hexdigest() != digest:
            return None
        entries.append(entry)
        prev = digest
    return entries


def load_one(path: Path, shown: str, *, named: bool = True) -> tuple[Run | None, list[Problem]]:
    """Read and verify one journal; the run (None when it cannot be used) and its problems.

    A journal `named` on the command line may be a symlink (as for `audit verify`); one found
    by walking a folder is read only if it is a regular file itself."""
    try:
        raw = read_journal(path) if named else read_regular(path, limit=JOURNAL_LIMIT)
    except OSError as exc:
        return None, [Problem(shown, "unreadable", f"cannot read: {exc.strerror or exc}")]
    if not raw:
        return None, [Problem(shown, "empty", "empty file: no entry was ever written")]
    lines = raw.split(b"\n")
    torn = lines.pop()  # the bytes after the last newline: none, unless a write was torn
    if not lines and torn:
        lines, torn = [torn], b""  # one line without its newline: judged as a line
    first = _first_object(lines)
    host, target, version = _where(first)
    problems: list[Problem] = []
    fast = verified_entries(lines)
    if fast is None and not _looks_like_journal(lines):
        reason = "not a runbook journal (no line is a journal entry)"
        return None, [Problem(shown, "foreign", reason, 1, host, target)]
    result = verify_lines(lines) if fast is None else None
    if result is not None and not result.ok:
        if _newer(version):
            reason = (
                f"written by runbook {version}, newer than this runbook ({__version__}): "
                f"upgrade runbook to read it (here its chain breaks at line {result.bad_line}: "
                f"{result.reason})"
            )
            return None, [Problem(shown, "broken", reason, result.bad_line, host, target)]
        reason = f"chain broken at line {result.bad_line}: {result.reason}"
        if result.entries:
            reason += f" (the {result.entries} entries before it verify)"
        return None, [Problem(shown, "broken", reason, result.bad_line, host, target)]
    entries = fast if fast is not None else [json.loads(line) for line in lines]
    bad = _malformed(entries)
    if bad:
        return None, [Problem(shown, "broken", str(bad), bad.line, host, target)]
    if not any(e["event"] == "run_started" for e in entries):
        reason = "no run_started entry: a journal, but not of a run"
        return None, [Problem(shown, "foreign", reason, 1, host, target)]
    run = Run(shown, entries)
    if torn:
        reason = (
            f"ends in a torn line of {len(torn)} bytes (a crash while writing); the "
            f"{len(entries)} entries before it verify and are used"
        )
        problems.append(Problem(shown, "torn", reason, len(lines) + 1, host, target, run.id))
    if _newer(version):
        run.newer = str(version)
        reason = (
            f"written by runbook {version}, newer than this runbook ({__version__}): events "
            "this version does not know are listed by name only; upgrade runbook to read them"
        )
        problems.append(Problem(shown, "newer", reason, None, host, target, run.id))
    return run, problems


def _signature(run: Run, path: Path) -> tuple[Signature | None, Problem | None]:
    """The signature file beside the journal, parsed (None when there is none)."""
    sig_path = signature_path(path)
    if not os.path.lexists(sig_path):
        return None, None
    shown = run.journal + ".sig"
    try:
        signature = read_signature(sig_path)
    except SigningError as exc:
        problem = Problem(shown, "signature", str(exc), None, run.host, run.target, run.id)
        return None, problem
    run.signature_file = shown
    return signature, None


def _apply_signature(
    run: Run, signature: Signature, allowed_signers: Path | None
) -> Problem | None:
    try:
        result = check_signature(run.hashes, signature, allowed_signers)
    except SigningError as exc:
        return Problem(run.signature_file or run.journal, "signature", str(exc), run=run.id)
    run.signature = result
    if result.ok:
        return None
    reason = result.reason or (
        f"signed head {result.head[:12]} ({result.entries} entries) is not in this journal: "
        "it was cut short or rewritten after signing"
    )
    return Problem(
        run.signature_file or run.journal, "signature", reason, None, run.host, run.target, run.id
    )


def _first_difference(a: Sequence[str], b: Sequence[str]) -> int:
    """The 1-based number of the first entry where two chains differ."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False), start=1) if x != y), 1)


def _merge_copies(
    copies: list[tuple[Run, Signature | None]], allowed_signers: Path | None
) -> tuple[Run | None, list[Problem]]:
    """One run from its copies: the longest, when every other is a prefix of it."""
    copies.sort(key=lambda c: (-len(c[0].entries), c[0].journal))
    main, signature = copies[0]
    hashes = main.hashes
    if any(c[0].hashes != hashes[: len(c[0].entries)] for c in copies[1:]):
        names = ", ".join(c[0].journal for c in copies)
        problems = []
        for run, _ in copies:
            at = None if run is main else _first_difference(run.hashes, hashes)
            reason = f"copies of one run disagree ({names}); none is used"
            if at:
                reason = f"differs from {main.journal} at entry {at}: {reason}"
            problems.append(
                Problem(run.journal, "conflict", reason, at, run.host, run.target, run.id)
            )
        return None, problems
    main.copies = [c[0].journal for c in copies[1:]]
    if signature is None:  # an earlier copy may carry the signature
        for run, sig in copies[1:]:
            if sig is not None:
                signature, main.signature_file = sig, run.signature_file
                break
    if signature is not None:
        problem = _apply_signature(main, signature, allowed_signers)
        if problem:
            return None, [problem]
    return main, []


def load(paths: Sequence[str], allowed_signers: Path | None = None) -> Collection:
    """Find, read and verify every journal the arguments name; merge copies of one run."""
    listed = find_journals(paths)
    by_id: dict[str, list[tuple[Run, Signature | None]]] = {}
    problems: list[Problem] = []
    for path, shown, named in listed:
        run, found = load_one(path, shown, named=named)
        problems += found
        if run is None:
            continue
        signature, problem = _signature(run, path)
        if problem:
            problems.append(problem)
            continue
        by_id.setdefault(run.id, []).append((run, signature))
    runs: list[Run] = []
    for copies in by_id.values():
        run, found = _merge_copies(copies, allowed_signers)
        problems += found
        if run is not None:
            runs.append(run)
    runs.sort(key=lambda r: (r.started, r.journal))
    problems.sort(key=lambda p: (not p.blocking, p.journal))
    return Collection(runs, problems, len(listed))
