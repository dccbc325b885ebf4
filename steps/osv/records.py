"""Reading OSV records of malicious npm packages (https://ossf.github.io/osv-schema/).

A record states its bad versions in `affected[]`: an explicit `versions` list and/or `ranges`
whose `events` (`introduced`, `fixed`, `last_affected`) bound intervals of versions. Reading keeps
what each record says, exactly; judging it (stale `introduced: "0"` ranges, disagreements between
copies of one advisory) is `steps.osv.merge`'s job.

Input that is not an OSV record of npm packages is refused with the file and the reason (line and
column for bad JSON); optional parts that are malformed are left out with a note.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nodesemver

from runbook.safeio import MANIFEST_LIMIT, read_regular

# npm package names: lowercase (old packages may have capitals), URL-safe, optionally scoped
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][\w.~-]*/)?[a-z0-9_~][\w.~-]*$", re.IGNORECASE)
CANONICAL_ID = re.compile(r"^MAL-(?!0000-)\d{4}-\d+$")
# "from the very first version": `introduced: "0"` (the OSV convention); 0.0.0 says the same
FIRST_VERSION = ("0", "0.0.0")


@dataclass(frozen=True)
class OsvProblem:
    """Why a file cannot be used, with the line and column when they are known."""

    path: str
    message: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        where = f":{self.line}:{self.col}" if self.line is not None else ""
        return f"{self.path}{where}: {self.message}"


class OsvInputError(Exception):
    """Some input files are not usable OSV records of npm packages; nothing is written."""

    def __init__(self, problems: list[OsvProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True, order=True)
class Interval:
    """One interval of bad versions from a range: `introduced` (None: from the first version)
    up to `upper`, included when it came from `last_affected`, excluded for `fixed`."""

    introduced: str | None
    upper: str | None = None
    upper_included: bool = False

    @property
    def every_version(self) -> bool:
        """A bare `introduced: "0"`: every version, past and future."""
        return self.introduced is None and self.upper is None

    @property
    def exact(self) -> str | None:
        """The one version of an `introduced: X, last_affected: X` range."""
        if self.upper_included and self.introduced is not None and self.introduced == self.upper:
            return self.introduced
        return None

    def node_range(self) -> str:
        """The interval as a node-semver range, e.g. `>=1.95.6 <1.95.8`."""
        parts = [f">={self.introduced}"] if self.introduced else []
        if self.upper:
            parts.append(("<=" if self.upper_included else "<") + self.upper)
        return " ".join(parts) or "*"

    def describe(self) -> str:
        if self.every_version:
            return 'introduced "0" (every version)'
        return self.node_range()

    def contains(self, version: str) -> bool:
        """OSV semantics: ordered by semver precedence, pre-releases inside the bounds count."""
        if self.introduced and compare(version, self.introduced) < 0:
            return False
        if self.upper:
            order = compare(version, self.upper)
            return order <= 0 if self.upper_included else order < 0
        return True


@dataclass
class AffectedEntry:
    """One `affected[]` entry of an npm package."""

    name: str
    where: str  # "affected[0]"
    versions: list[str] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    iocs: dict[str, list[str]] = field(default_factory=dict)
    evidence_files: list[dict[str, Any]] = field(default_factory=list)
    package_integrity: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OsvRecord:
    """What one OSV file says, read as faithfully as its shape allows."""

    path: Path
    shown: str
    id: str = ""
    aliases: list[str] = field(default_factory=list)
    summary: str = ""
    details: str = ""
    published: datetime | None = None
    modified: datetime | None = None
    withdrawn: datetime | str | None = None
    entries: list[AffectedEntry] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)  # (type, url)
    iocs: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The id, or the file name when the record has none (per-source and manual copies)."""
        return self.id or self.path.name

    @property
    def canonical(self) -> bool:
        """A merged `MAL-YYYY-NNNN` record (not a per-source `MAL-0000-...` copy)."""
        return bool(CANONICAL_ID.match(self.id))


def compare(a: str, b: str) -> int:
    """Semver precedence of two exact versions (-1, 0, 1)."""
    return nodesemver.compare(a, b, False)


def exact_version(text: str, loose: bool = False) -> str | None:
    """`text` as an exact version (loose: `v1.2.3` and `=1.2.3` too), or None."""
    try:
        parsed = nodesemver.valid(text, loose)
    except (ValueError, TypeError, AttributeError):
        return None
    return parsed.version if parsed else None


def is_exact(text: str) -> bool:
    """Whether `text` is written as an exact semver version (`1.14.1`, `0.0.1-security`)."""
    return exact_version(text) == text


def semver_key(version: str) -> Any:
    """A sort key in semver order (`1.14.1` before `1.14.10`)."""
    from functools import cmp_to_key

    return cmp_to_key(compare)(version)


def major(version: str) -> str:
    return version.split(".", 1)[0]


def is_npm_name(name: str) -> bool:
    return len(name) <= 214 and bool(_NPM_NAME.match(name))


# -- files -----------------------------------------------------------------------------------------


def record_files(paths: list[Path]) -> tuple[list[Path], list[OsvProblem]]:
    """The `.json` files named or found under the directories given (sorted, each once)."""
    files: list[Path] = []
    problems: list[OsvProblem] = []
    for path in paths:
        if path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / n for n in names if n.endswith(".json")]
            if not found:
                problems.append(OsvProblem(str(path), "no .json files (OSV records) in it"))
            files += sorted(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(OsvProblem(str(path), "no such file or directory"))
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique, problems


def read_records(paths: list[Path]) -> tuple[list[OsvRecord], list[OsvProblem]]:
    """Every record under `paths`, and the problems of the files that are not usable."""
    files, problems = record_files(paths)
    records = []
    for file in files:
        try:
            data = read_regular(file, limit=MANIFEST_LIMIT, follow_symlinks=True)
        except OSError as exc:
            problems.append(OsvProblem(str(file), f"cannot read: {exc.strerror or exc}"))
            continue
        try:
            records.append(parse_record(data, file))
        except OsvInputError as exc:
            problems += exc.problems
    return records, problems


# -- one record ------------------------------------------------------------------------------------


def parse_record(data: bytes, path: Path, shown: str | None = None) -> OsvRecord:
    """Read one OSV record; raises `OsvInputError` when it is not an OSV record of npm packages."""
    shown = shown or str(path)
    doc = _json(data, shown)
    if not isinstance(doc, dict):
        raise _refuse(shown, f"not an OSV record: expected a JSON object, got {_kind(doc)}")
    affected = doc.get("affected")
    if not isinstance(affected, list):
        got = "no 'affected' key" if affected is None else f"'affected' is {_kind(affected)}"
        raise _refuse(shown, f"not an OSV record: {got} (OSV lists the affected packages there)")
    record = OsvRecord(path=path, shown=shown)
    record.id = _text(doc, "id", record)
    record.summary = _text(doc, "summary", record)
    record.details = _text(doc, "details", record)
    record.published = _time(doc, "published", record)
    record.modified = _time(doc, "modified", record)
    if doc.get("withdrawn"):
        record.withdrawn = _time(doc, "withdrawn", record) or str(doc["withdrawn"])
    record.aliases = _strings(doc.get("aliases"), "aliases", record)
    record.references = _references(doc.get("references"), record)
    specific = doc.get("database_specific")
    if isinstance(specific, dict):
        record.iocs = _iocs(specific.get("iocs"), "database_specific.iocs", record)

    problems: list[OsvProblem] = []
    ecosystems = []
    for index, item in enumerate(affected):
        where = f"affected[{index}]"
        package = item.get("package") if isinstance(item, dict) else None
        if not isinstance(package, dict):
            problems.append(OsvProblem(shown, f"not an OSV record: {where}.package is missing"))
            continue
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            message = f"not an OSV record: {where}.package needs 'ecosystem' and 'name' texts"
            problems.append(OsvProblem(shown, message))
            continue
        ecosystems.append(ecosystem)
        if ecosystem.lower() != "npm":
            record.notes.append(f"{shown}: left out {where} ({ecosystem} package {name!r})")
            continue
        if not is_npm_name(name):
            message = f"{where}.package.name: {name!r} is not an npm package name"
            problems.append(OsvProblem(shown, message))
            continue
        try:
            entry = _entry(item, name, where, record)
        except OsvInputError as exc:
            problems += exc.problems
            continue
        if not entry.versions and not entry.intervals:
            record.notes.append(
                f"{shown}: skipped {where} ({name}): it lists no versions and no ranges"
            )
            continue
        record.entries.append(entry)
    if problems:
        raise OsvInputError(problems)
    if ecosystems and all(e.lower() != "npm" for e in ecosystems):
        listed = ", ".join(sorted(set(ecosystems)))
        raise _refuse(shown, f"not an npm advisory: its packages are from {listed}")
    if not affected:
        record.notes.append(f"{shown}: skipped: 'affected' is empty (no package, no versions)")
    return record


def _json(data: bytes, shown: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _refuse(shown, "not valid UTF-8 text", line, col) from None
    if not text.strip():
        raise _refuse(shown, "empty file, not an OSV record")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refuse(shown, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise _refuse(shown, "not usable JSON: nested too deeply") from None


def _entry(item: dict[str, Any], name: str, where: str, record: OsvRecord) -> AffectedEntry:
    entry = AffectedEntry(name=name, where=where)
    problems = []
    versions = item.get("versions")
    if versions is not None and not isinstance(versions, list):
        problems.append(f"{where}.versions: expected a list, got {_kind(versions)}")
        versions = []
    for index, raw in enumerate(versions or []):
        version = _version(raw, f"{where}.versions[{index}]", record, problems)
        if version and version not in entry.versions:
            entry.versions.append(version)
    ranges = item.get("ranges")
    if ranges is not None and not isinstance(ranges, list):
        problems.append(f"{where}.ranges: expected a list, got {_kind(ranges)}")
        ranges = []
    for index, rng in enumerate(ranges or []):
        for interval in _intervals(rng, f"{where}.ranges[{index}]", record, problems):
            if interval not in entry.intervals:
                entry.intervals.append(interval)
    specific = item.get("database_specific")
    if isinstance(specific, dict):
        entry.iocs = _iocs(specific.get("iocs"), f"{where}.database_specific.iocs", record)
        indicators = specific.get("indicators")
        if isinstance(indicators, dict):
            entry.evidence_files = _dicts(indicators.get("evidence_files"))
            entry.package_integrity = _dicts(indicators.get("package_integrity"))
    if problems:
        raise OsvInputError([OsvProblem(record.shown, p) for p in problems])
    return entry


def _version(raw: Any, where: str, record: OsvRecord, problems: list[str]) -> str | None:
    if not isinstance(raw, str):
        problems.append(f"{where}: expected a version text, got {_kind(raw)}")
        return None
    if is_exact(raw):
        return raw
    loose = exact_version(raw.strip(), loose=True)
    if loose:
        record.notes.append(f"{record.shown}: {where}: read {raw!r} as {loose}")
        return loose
    problems.append(f"{where}: {raw!r} is not an exact version (like 1.14.1)")
    return None


def _intervals(rng: Any, where: str, record: OsvRecord, problems: list[str]) -> list[Interval]:
    """The intervals of one `ranges[]` item, walking its events in version order."""
    if not isinstance(rng, dict) or not isinstance(rng.get("events"), list):
        problems.append(f"{where}: expected a range with a list of 'events'")
        return []
    kind = rng.get("type")
    if kind not in ("SEMVER", "ECOSYSTEM"):
        record.notes.append(
            f"{record.shown}: {where}: left out a range of type {kind!r} "
            "(only SEMVER and npm ECOSYSTEM ranges name package versions)"
        )
        return []
    events: list[tuple[str, str | None]] = []
    for index, event in enumerate(rng["events"]):
        if not isinstance(event, dict) or len(event) != 1:
            problems.append(f"{where}.events[{index}]: expected one of introduced, fixed, ...")
            continue
        ((what, value),) = event.items()
        if what == "limit":
            record.notes.append(f"{record.shown}: {where}: ignored a 'limit' event")
            continue
        if what not in ("introduced", "fixed", "last_affected"):
            problems.append(f"{where}.events[{index}]: unknown event {what!r}")
            continue
        if what == "introduced" and value in FIRST_VERSION:
            events.append((what, None))
            continue
        version = _version(value, f"{where}.events[{index}].{what}", record, problems)
        if version:
            events.append((what, version))
    # OSV orders events by version; "introduced 0" comes first
    events.sort(
        key=lambda e: (e[1] is not None, semver_key(e[1]) if e[1] else 0, e[0] != "introduced")
    )
    out: list[Interval] = []
    start: str | None = None
    is_open = False
    for what, version in events:
        if what == "introduced":
            if not is_open:
                start, is_open = version, True
        elif is_open:
            out.append(Interval(start, version, what == "last_affected"))
            is_open = False
    if is_open:
        out.append(Interval(start))
    if not out:
        record.notes.append(f"{record.shown}: {where}: left out a range with no 'introduced'")
    return out


def _iocs(value: Any, where: str, record: OsvRecord) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        record.notes.append(f"{record.shown}: {where}: left out ({_kind(value)}, not a mapping)")
        return {}
    out = {}
    for key in ("domains", "ips", "ip_addresses", "urls"):
        items = _strings(value.get(key), f"{where}.{key}", record)
        if items:
            out.setdefault("ips" if key == "ip_addresses" else key, []).extend(items)
    return out


def _references(value: Any, record: OsvRecord) -> list[tuple[str, str]]:
    out = []
    for index, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"].strip():
            out.append((str(item.get("type") or "WEB"), item["url"].strip()))
        else:
            record.notes.append(f"{record.shown}: references[{index}]: left out (no url)")
    return out


def _strings(value: Any, where: str, record: OsvRecord) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        record.notes.append(f"{record.shown}: {where}: left out (expected a list of texts)")
        return []
    return [v for v in value if v.strip()]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(doc: dict[str, Any], key: str, record: OsvRecord) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        record.notes.append(f"{record.shown}: {key}: left out ({_kind(value)}, not text)")
        return ""
    return value


def _time(doc: dict[str, Any], key: str, record: OsvRecord) -> datetime | None:
    value = doc.get(key)
    if value is None:
        return None
    moment = parse_time(value)
    if moment is None:
        record.notes.append(f"{record.shown}: {key}: {value!r} is not a date and time")
    return moment


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (OSV writes up to nanoseconds) in UTC, or None."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # Python reads microseconds at most
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _refuse(shown: str, message: str, line: int | None = None, col: int | None = None):
    return OsvInputError([OsvProblem(shown, message, line, col)])
