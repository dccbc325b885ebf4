"""OSV records -> one incident: each package's bad versions, with the hazards of real data made
visible instead of passed through.

- A withdrawn record is skipped, with a note.
- Every record about one package is merged: the canonical `MAL-YYYY-NNNN` record and its
  per-source `MAL-0000-...` copies, manual submissions, other advisories. The playbook takes what
  they say together (the union); when they do not all say the same, that is a warning listing each.
- A bare `introduced: "0"` (every version, past and future) next to exact versions or a bounded
  range is almost always a stale import: the exact data wins, and the range is reported for a
  person to confirm. A bare `introduced: "0"` alone means every version: `any_version: true`.
- A range with no upper bound (`>=X`) makes every later version bad: reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import ValidationError

from runbook.models import FileHash, Network
from steps.osv.draft import IncidentDraft, PackageDraft
from steps.osv.records import CANONICAL_ID, AffectedEntry, OsvRecord, semver_key

_MARKER = "_-= Per source details. Do not edit below this line.=-_"
_SOURCE_LINE = re.compile(r"^## Source: .*$", re.MULTILINE)
_DETAILS_LIMIT = 4000


def merge(records: list[OsvRecord], playbook_id: str) -> IncidentDraft:
    """The incident the records describe; `warnings` are what a person must review."""
    draft = IncidentDraft(id=playbook_id)
    by_package: dict[str, list[tuple[OsvRecord, AffectedEntry]]] = {}
    for record in records:
        draft.sources.append(record.shown)
        draft.notes += record.notes
        if record.withdrawn is not None:
            when = (
                record.withdrawn
                if isinstance(record.withdrawn, str)
                else record.withdrawn.strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            draft.notes.append(
                f"skipped {record.shown}: {record.label} was withdrawn on {when} "
                "(the advisory was retracted)"
            )
            continue
        for entry in record.entries:
            by_package.setdefault(entry.name, []).append((record, entry))
        _times(draft, record)
        _indicators(draft, record, record.iocs)
    for name in sorted(by_package):
        _package(draft, name, by_package[name])
    used = [r for r in records if r.withdrawn is None and r.entries]
    _references(draft, used)
    draft.summary = _summary(draft, used)
    return draft


def _package(draft: IncidentDraft, name: str, found: list[tuple[OsvRecord, AffectedEntry]]) -> None:
    package = draft.package(name)
    statements = []
    every: list[str] = []
    for record, entry in found:
        precise = [i for i in entry.intervals if not i.every_version]
        if any(i.every_version for i in entry.intervals):
            every.append(record.label)
        for interval in precise:
            if interval.exact:
                package.bad_versions.add(interval.exact)
            elif interval not in package.intervals:
                package.intervals.append(interval)
        package.bad_versions.update(entry.versions)
        statements.append((record.label, _statement(entry)))
        for advisory in _advisories(record):
            if advisory not in package.advisories:
                package.advisories.append(advisory)
        _indicators(draft, record, entry.iocs)
        _evidence(draft, package, record, entry)

    package.advisories.sort(key=lambda a: not CANONICAL_ID.match(a))  # MAL-YYYY-N first
    labels = [label for label, _ in statements]
    if len(found) > 1:
        package.notes.append(f"Merged from {len(found)} records: {', '.join(labels)}.")
        if len({text for _, text in statements}) > 1:
            listed = "; ".join(f"{label}: {text}" for label, text in statements)
            _warn(
                draft,
                package,
                f"the records differ; the playbook takes all their versions and ranges "
                f"together ({listed})",
            )
    if every and (package.bad_versions or package.intervals):
        _warn(
            draft,
            package,
            f'ignored the range introduced "0" (every version) of {", ".join(every)}: the '
            f"records also give exact data ({package.describe()}), which wins. Confirm: if every "
            f"version of {name} really is malicious, set any_version: true",
        )
    elif every:
        package.any_version = True
        note = f'every version of {name} is bad: {", ".join(every)} says introduced "0" with no '
        note += "upper bound (right for a package that was malicious from the start)"
        package.notes.append(note[0].upper() + note[1:] + ".")
        draft.notes.append(note)
    for interval in package.intervals:
        if interval.upper is None:
            _warn(
                draft,
                package,
                f"the range {interval.node_range()} of {name} has no upper bound: every later "
                "version counts as bad, future ones too. Confirm, or add the fixed version",
            )
    package.intervals.sort()


def _statement(entry: AffectedEntry) -> str:
    """What one record says about a package, in a form two records can be compared by."""
    parts = sorted(entry.versions, key=semver_key)
    parts += sorted(i.describe() for i in entry.intervals)
    return ", ".join(parts)


def _warn(draft: IncidentDraft, package: PackageDraft, text: str) -> None:
    package.notes.append(f"REVIEW: {text}.")
    draft.warnings.append(f"{package.name}: {text}.")


def _advisories(record: OsvRecord) -> list[str]:
    ids = [record.id] if record.id else []
    return ids + [a for a in record.aliases if a not in ids]


def _times(draft: IncidentDraft, record: OsvRecord) -> None:
    if record.published:
        draft.starts.append((record.published, f"{record.label} published"))
    for moment in (record.published, record.modified):
        if moment:
            draft.ends.append((moment, f"{record.label} last modified"))


def _indicators(draft: IncidentDraft, record: OsvRecord, iocs: dict[str, list[str]]) -> None:
    """Domains, IPs and URLs, each checked the way the playbook model will check it."""
    for key, target in (("domains", draft.domains), ("ips", draft.ips), ("urls", draft.urls)):
        for value in iocs.get(key, []):
            try:
                clean = getattr(Network.model_validate({key: [value]}), key)[0]
            except ValidationError:
                draft.warnings.append(
                    f"{record.label}: left out the indicator {value!r} ({key}): not valid there"
                )
                continue
            if clean not in target:
                target.append(clean)


def _evidence(
    draft: IncidentDraft, package: PackageDraft, record: OsvRecord, entry: AffectedEntry
) -> None:
    for item in entry.evidence_files:
        candidate = {
            "name": str(item.get("path") or "evidence file"),
            "sha256": str(item.get("sha256", "")).lower(),
            "description": f"A file of a malicious {package.name} version ({record.label}).",
        }
        try:
            FileHash.model_validate(candidate)
        except ValidationError:
            draft.warnings.append(f"{record.label}: left out an evidence file without a SHA-256")
            continue
        if all(h["sha256"] != candidate["sha256"] for h in draft.file_hashes):
            draft.file_hashes.append(candidate)
    for item in entry.package_integrity:
        hashes = item.get("hashes") if isinstance(item.get("hashes"), dict) else {}
        listed = ", ".join(f"{k} {v}" for k, v in sorted(hashes.items()) if isinstance(v, str))
        if listed:
            note = f"Tarball {item.get('filename', '?')}: {listed} ({record.label})."
            if note not in package.notes:
                package.notes.append(note)


def _references(draft: IncidentDraft, records: Iterable[OsvRecord]) -> None:
    seen: set[str] = set()

    def add(title: str, url: str) -> None:
        if url not in seen:
            seen.add(url)
            draft.references.append((title, url))

    for record in records:
        if record.canonical:
            add(f"OSV {record.id}", f"https://osv.dev/vulnerability/{record.id}")
    for record in records:
        for kind, url in record.references:
            host = urlsplit(url).hostname or url
            add(f"{kind.capitalize()} ({host}), cited by {record.label}", url)


def _summary(draft: IncidentDraft, records: list[OsvRecord]) -> str:
    """The packages, then what the records say, each paragraph once (per-source copies repeat
    their canonical record's text)."""
    packages = ", ".join(f"`{p.name}` ({p.describe()})" for p in draft.packages.values())
    parts = [f"Malicious npm package versions, from {len(records)} OSV records: {packages}."]
    seen: set[str] = set()
    for record in sorted(records, key=lambda r: not r.canonical):
        fresh = []
        for block in re.split(r"\n\s*\n", record.details.replace(_MARKER, "")):
            body = _SOURCE_LINE.sub("", block).strip().strip("-").strip()
            if body and body not in seen:
                seen.add(body)
                fresh.append(body)
        title = record.label + (f": {record.summary}" if record.summary else "")
        if fresh or (record.summary and record.summary not in seen):
            seen.add(record.summary)
            parts.append("\n\n".join([f"**{title}**", *fresh]))
    text = "\n\n".join(parts)
    if len(text) > _DETAILS_LIMIT:
        text = text[:_DETAILS_LIMIT].rsplit(" ", 1)[0] + " ... (shortened; see the references)"
    return text
