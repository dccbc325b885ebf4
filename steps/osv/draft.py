"""A playbook being put together by `runbook new`: what is known, what a person must review, and
what is still to be filled in. Filled from OSV records (`merge`) or by questions (`interactive`),
completed from the registry (`pins`), written out by `generate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from steps.osv.records import Interval, major, semver_key

#: What an unknown safe pin is written as; `runbook validate` rejects it, naming package and line.
FILL_IN = "FILL-IN"


def fill_in(name: str, line: str) -> str:
    """The placeholder for the safe pin of `name`'s major line `line`."""
    return f"{FILL_IN} the highest good {name} {line}.x version"


def is_fill_in(value: str) -> bool:
    return value.startswith(FILL_IN)


@dataclass
class PackageDraft:
    """One package: its bad versions, the safe version to pin per major line, and notes."""

    name: str
    bad_versions: set[str] = field(default_factory=set)
    intervals: list[Interval] = field(default_factory=list)  # bounded or `>=X` ranges
    any_version: bool = False
    advisories: list[str] = field(default_factory=list)
    safe_pins: dict[str, str] = field(default_factory=dict)  # major line -> version or FILL-IN
    notes: list[str] = field(default_factory=list)

    def sorted_versions(self) -> list[str]:
        return sorted(self.bad_versions, key=semver_key)

    def bad_ranges(self) -> list[str]:
        return [i.node_range() for i in self.intervals]

    def is_bad(self, version: str) -> bool:
        """Whether a version is bad by this draft's own data (pre-releases in a range count)."""
        if self.any_version or version in self.bad_versions:
            return True
        return any(i.contains(version) for i in self.intervals)

    def pin_lines(self) -> list[str]:
        """The major lines that need a safe pin: those of every bad version and range bound."""
        if self.any_version:
            return []
        lines = {int(major(v)) for v in self.bad_versions}
        for interval in self.intervals:
            low = int(major(interval.introduced)) if interval.introduced else 0
            high = int(major(interval.upper)) if interval.upper else low
            if interval.upper and not interval.upper_included and interval.upper.endswith(".0.0"):
                high = max(low, high - 1)  # `<3.0.0` ends on the 2.x line
            span = range(low, high + 1)
            lines |= set(span) if len(span) <= 10 else {low, high}
        return [str(line) for line in sorted(lines)]

    def describe(self) -> str:
        if self.any_version:
            return "every version"
        return ", ".join([*self.sorted_versions(), *self.bad_ranges()])


@dataclass
class IncidentDraft:
    """Everything `generate` needs to write a playbook."""

    id: str
    title: str = ""
    summary: str = ""
    packages: dict[str, PackageDraft] = field(default_factory=dict)
    references: list[tuple[str, str]] = field(default_factory=list)  # (title, url)
    domains: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    file_hashes: list[dict[str, str]] = field(default_factory=list)
    # when the bad versions could be installed: earliest/latest times the sources give
    starts: list[tuple[datetime, str]] = field(default_factory=list)  # (time, where from)
    ends: list[tuple[datetime, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a person must review these
    notes: list[str] = field(default_factory=list)  # what was done, for the record
    sources: list[str] = field(default_factory=list)  # the records read
    lists: list[str] = field(default_factory=list)  # the version lists read (`--from-list`)
    summary_notes: list[str] = field(default_factory=list)  # paragraphs added to the summary

    def package(self, name: str) -> PackageDraft:
        return self.packages.setdefault(name, PackageDraft(name))

    def fill_ins(self) -> list[tuple[str, str]]:
        """(package, major line) of every safe pin still to be filled in."""
        return [
            (p.name, line)
            for p in self.packages.values()
            for line, value in sorted(p.safe_pins.items())
            if is_fill_in(value)
        ]
