"""What is bad, taken from a playbook's incident section, and npm semver questions about it.

A playbook may list a handful of bad versions (axios) or thousands (a worm's list: 2,915 versions
of 1,630 packages). The byte filters that decide whether a file deserves a parse (`mentions`,
`could_resolve`) therefore never cost one search per bad name: for more than a few names they
split the bytes once into name-like tokens and look the tokens up in a table, so their cost grows
with the file, not with the bad set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import nodesemver

from runbook.models import Incident
from steps.npm.ranges import Undecidable, overlap, range_majors

DIST_TAGS_THAT_ADMIT = {"latest", "next", "*", "", "x"}
# node-semver's range regexes go quadratic on long runs of spaces (a 40,000-character spec takes
# a minute); real specs are a few dozen characters.
MAX_SPEC_LENGTH = 1024
_NOT_REGISTRY = re.compile(
    r"^(?:git\+|git:|github:|gitlab:|bitbucket:|gist:|file:|link:|portal:|workspace:|exec:|"
    r"https?://|[\w.-]+/[\w.-]+(?:#.*)?$)"
)
# Up to this many byte needles, one substring search per needle beats splitting into tokens.
FEW_NEEDLES = 16
# Characters of a token: what npm names and versions are made of, minus `@`, `/` and `_`, which
# split a scoped name (`@scope/name`), a pnpm v5 peer suffix (`1.0.0_peer@2.0.0`) or an underscore
# name into parts. Everything else (quotes, `:`, `@`, whitespace, `+` build metadata...) separates.
_TOKEN_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.~-"
_TOKENS = bytes(c if c in _TOKEN_CHARS else 0x20 for c in range(256))
_PART_SPLIT = re.compile(r"[@/_]")
# Escapes that can spell a name character in JSON (`\u0061`) or YAML (`\x61`, `\U…`, a line
# continuation): text holding one is never ruled out by a byte filter.
_NAME_ESCAPE = re.compile(rb"\\[uUxX\r\n]")


@dataclass(frozen=True)
class SpecVerdict:
    """How a dependency spec relates to the bad versions."""

    severity: str  # "at-risk" | "unknown"
    real_name: str
    range: str
    admits: tuple[str, ...] = ()  # the listed bad versions the spec admits
    reason: str = ""
    # bad ranges the spec admits versions of, each with one such version
    ranges: tuple[tuple[str, str], ...] = ()
    lines: tuple[int, ...] = ()  # major lines of the bad versions it admits, ascending

    def what(self) -> str:
        """`admits 1.14.1, 0.30.4`, `admits 4.1.1 (bad range >=4.1.1 <=4.1.2)`, or the reason."""
        shown = list(self.admits)
        shown += [f"{example} (bad range {rng})" for rng, example in self.ranges]
        return f"admits {', '.join(shown)}" if shown else self.reason


@dataclass(frozen=True)
class BadSubset:
    """Some of a BadSet's names, judged by the BadSet (`BadSet.subset`)."""

    names: frozenset[str]
    any_version: set[str]
    is_bad: Callable[[str, str], bool]


def split_alias(name: str, spec: str) -> tuple[str, str]:
    """`npm:axios@^1.14.0` under key `http` -> ("axios", "^1.14.0"); otherwise (name, spec)."""
    if spec.startswith("npm:"):
        target = spec[4:]
        at = target.rfind("@")
        if at > 0:
            return target[:at], target[at + 1 :]
        return target, "*"
    return name, spec


def parse_name_version(text: str) -> tuple[str, str]:
    """`@scope/pkg@1.2.3` -> ("@scope/pkg", "1.2.3"), splitting on the last `@`."""
    at = text.rfind("@")
    if at <= 0:
        return text, ""
    return text[:at], text[at + 1 :]


def major_of(version: str) -> int | None:
    """The major line of a version or exact spec (`^1.14.0` -> 1), None when there is none."""
    head = version.lstrip("v=^~ ").split(".")[0]
    return int(head) if head.isdigit() else None


class BadSet:
    """The bad packages and versions of one incident. Nothing here is specific to axios."""

    def __init__(self, incident: Incident) -> None:
        self.bad_versions: dict[str, frozenset[str]] = {}
        self.any_version: set[str] = set(incident.indicators.dependencies)
        self.safe_pins: dict[str, dict[str, str]] = {}
        self.bad_ranges: dict[str, tuple[str, ...]] = {}  # node-semver ranges
        for package in incident.packages:
            if package.any_version:
                self.any_version.add(package.name)
            if package.bad_versions:
                self.bad_versions[package.name] = frozenset(package.bad_versions)
            if package.bad_ranges:
                self.bad_ranges[package.name] = tuple(package.bad_ranges)
            if package.safe_pins:
                self.safe_pins[package.name] = dict(package.safe_pins)
        self.names: frozenset[str] = (
            frozenset(self.bad_versions) | frozenset(self.any_version) | frozenset(self.bad_ranges)
        )
        # a file that resolved a bad version holds the version, or the name of a package whose
        # every version (or a range of versions) is bad
        self._name_only = frozenset(self.any_version) | frozenset(self.bad_ranges)
        self.needles: tuple[bytes, ...] = tuple(sorted({n.encode() for n in self.names}))
        versions = {v for vs in self.bad_versions.values() for v in vs}
        # True: the byte filters are a few substring searches, cheaper than decoding a JSON
        # lockfile; False: they split the bytes into tokens, which costs about what decoding does
        self.substring_filters = len(self.needles) + len(versions) <= FEW_NEEDLES
        self._index_names()

    def _index_names(self) -> None:
        """Token tables: each name under its last part (`@ctrl/tinycolor` under `tinycolor`)."""
        self._by_part: dict[bytes, list[tuple[str, tuple[bytes, ...]]]] = {}
        self._odd: list[str] = []  # names with characters a token never holds: searched as is
        for name in sorted(self.names):
            parts = tuple(p.encode() for p in _PART_SPLIT.split(name) if p)
            if not parts or any(p.translate(_TOKENS) != p for p in parts):
                self._odd.append(name)
                continue
            self._by_part.setdefault(parts[-1], []).append((name, parts))
        self._parts = frozenset(self._by_part)
        # a version is a token of its own in lockfiles (`"version": "1.14.1"`, `axios@1.14.1`),
        # but inside a tarball's file name in cache keys and URLs (`axios-1.14.1.tgz`)
        self._version_tokens: dict[str, frozenset[bytes]] = {}
        for name, versions in self.bad_versions.items():
            last = _PART_SPLIT.split(name)[-1]
            plain = {v.split("+", 1)[0] for v in versions}
            self._version_tokens[name] = frozenset(
                token.encode() for v in plain for token in (v, f"{last}-{v}.tgz", f"3A{v}")
            )  # the last: yarn berry's `name@npm%3A1.14.1`
        # yarn caches flatten a scope: `@scope/name` is stored as `@scope-name`
        self._flat: dict[str, list[str]] = {}
        for name in self.names:
            if name.startswith("@"):
                self._flat.setdefault(name.replace("/", "-", 1), []).append(name)

    # -- byte filters: False only when the bytes cannot name (or resolve) a bad package ------
    def mentions(self, data: bytes) -> bool:
        """Could these bytes (a manifest, a lockfile) name a bad package?

        Text with an escape that could spell a name (`\\u0061`) always could."""
        if _NAME_ESCAPE.search(data):
            return bool(self.names)
        if self.substring_filters:
            return any(needle in data for needle in self.needles)
        return bool(self._named(data, set(data.translate(_TOKENS).split())))

    def could_resolve(self, data: bytes) -> bool:
        """Could this lockfile or cache file record a bad resolution (by version or name)?"""
        return bool(self.resolvable(data))

    def resolvable(self, data: bytes) -> frozenset[str]:
        """The bad packages whose bad resolution these bytes could record: the name is there,
        and one of its bad versions too (for a package whose every version or a range of
        versions is bad, the name is enough). Every bad name for text with a name escape."""
        if _NAME_ESCAPE.search(data):
            return self.names
        if self.substring_filters:
            return frozenset(
                name
                for name in self.names
                if name.encode() in data
                and (
                    name in self._name_only
                    or any(v.encode() in data for v in self.bad_versions.get(name, ()))
                )
            )
        tokens = set(data.translate(_TOKENS).split())
        return frozenset(
            name
            for name in self._named(data, tokens)
            if name in self._name_only or not self._version_tokens[name].isdisjoint(tokens)
        )

    def contains_name(self, data: bytes) -> bool:
        """Does any bad name occur anywhere in these bytes, even inside other text (a binary
        file such as bun.lockb keeps its strings end to end)?"""
        if self.substring_filters:
            return any(needle in data for needle in self.needles)
        return self._anywhere().search(data) is not None

    def _anywhere(self) -> re.Pattern[bytes]:
        pattern = getattr(self, "_anywhere_pattern", None)
        if pattern is None:
            words = sorted(self.needles, key=len, reverse=True)
            pattern = re.compile(b"|".join(re.escape(w) for w in words))
            self._anywhere_pattern = pattern
        return pattern

    def _named(self, data: bytes, tokens: set[bytes]) -> list[str]:
        """The bad names the text holds as whole tokens (a scoped or underscore name: all its
        parts are tokens and the whole name is in the bytes)."""
        found = [name for name in self._odd if name.encode() in data]
        for part in tokens & self._parts:
            for name, parts in self._by_part[part]:
                if len(parts) == 1 or (all(p in tokens for p in parts) and name.encode() in data):
                    found.append(name)
        return found

    def subset(self, names: frozenset[str]) -> BadSubset:
        """The same judgement restricted to `names` (those `resolvable` found in a file): what a
        text search per bad name (`steps.npm.lockfiles.evidence`) needs, at the cost of a few."""
        return BadSubset(names & self.names, self.any_version & names, self.is_bad)

    # -- judging names and versions -------------------------------------------------------
    def flat_names(self, flat: str) -> list[str]:
        """Bad names a yarn cache entry may stand for: `@scope-name` -> [`@scope/name`]."""
        if flat in self.names:
            return [flat]
        return list(self._flat.get(flat, ()))

    def is_bad(self, name: str, version: str) -> bool:
        if name in self.any_version:
            return True
        version = version.split("+")[0]
        if version in self.bad_versions.get(name, ()):
            return True
        return any(_satisfies(version, rng) for rng in self.bad_ranges.get(name, ()))

    def safe_pin(self, name: str, version: str) -> str | None:
        """The safe exact version on the same major line as `version`."""
        major = version.lstrip("v=^~ ").split(".")[0]
        return self.safe_pins.get(name, {}).get(major)

    def judge_spec(self, name: str, spec: str) -> SpecVerdict | None:
        """None when the spec cannot resolve to a bad version; else at-risk or unknown.

        A spec is at risk when it admits a listed bad version, or when some version lies in both
        the spec and a bad range (`steps.npm.ranges`); when that cannot be told, it is unknown.
        """
        real, rng = split_alias(name, spec.strip())
        if real not in self.names:
            return None
        if real in self.any_version:
            return SpecVerdict("at-risk", real, rng, reason=f"{real} only exists to run malware")
        if len(rng) > MAX_SPEC_LENGTH:
            return SpecVerdict(
                "unknown",
                real,
                rng,
                reason=f"spec too long to evaluate ({len(rng)} characters; "
                f"at most {MAX_SPEC_LENGTH} are read)",
            )
        if _NOT_REGISTRY.match(rng) and rng not in DIST_TAGS_THAT_ADMIT:
            return SpecVerdict(
                "unknown",
                real,
                rng,
                reason="not a registry range (git, file, "
                "link or tarball): check what it resolves to",
            )
        bad = sorted(self.bad_versions.get(real, ()))
        bad_ranges = self.bad_ranges.get(real, ())
        if rng in DIST_TAGS_THAT_ADMIT:
            lines = {m for v in bad if (m := major_of(v)) is not None}
            for bad_range in bad_ranges:
                try:
                    low, high = range_majors(bad_range)
                except Undecidable:
                    continue
                lines |= self._lines(real, low, high)
            return SpecVerdict(
                "at-risk",
                real,
                rng,
                tuple(bad),
                "a dist-tag or wildcard admits whatever was published",
                lines=tuple(sorted(lines)),
            )
        if nodesemver.valid_range(rng, loose=True) is None:
            if _is_plain_tag(rng):
                reason = f"dist-tag '{rng}': check what it pointed at during the incident"
            else:
                reason = "not a semver range or a known dist-tag"
            return SpecVerdict("unknown", real, rng, reason=reason)
        admits = tuple(v for v in bad if _satisfies(v, rng))
        lines = {m for v in admits if (m := major_of(v)) is not None}
        ranges: list[tuple[str, str]] = []
        undecided: list[str] = []
        for bad_range in bad_ranges:
            try:
                found = overlap(rng, bad_range)
            except Undecidable:
                undecided.append(bad_range)
                continue
            if found is not None:
                ranges.append((bad_range, found.example))
                lines |= self._lines(real, found.low_major, found.high_major)
        if admits or ranges:
            return SpecVerdict(
                "at-risk", real, rng, admits, ranges=tuple(ranges), lines=tuple(sorted(lines))
            )
        if undecided:
            return SpecVerdict(
                "unknown",
                real,
                rng,
                reason=f"cannot tell whether it admits a version in the bad range "
                f"{', '.join(undecided)}: check what it resolves to",
            )
        return None

    def _lines(self, name: str, low: int, high: int | None) -> set[int]:
        """The major lines from `low` to `high`; with no upper bound, up to the highest line
        with a safe pin (a pin above that is in the range too)."""
        if high is None:
            pinned = [int(line) for line in self.safe_pins.get(name, {}) if line.isdigit()]
            high = max([low, *pinned])
        return set(range(low, high + 1))


def _satisfies(version: str, rng: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, rng, loose=True))
    except (ValueError, TypeError, AttributeError):  # node-semver raises where npm says "no"
        return False


def _is_plain_tag(rng: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][\w.-]*", rng))
