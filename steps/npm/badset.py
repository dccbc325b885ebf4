"""What is bad, taken from a playbook's incident section, and npm semver questions about it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import nodesemver

from runbook.models import Incident

DIST_TAGS_THAT_ADMIT = {"latest", "next", "*", "", "x"}
# node-semver's range regexes go quadratic on long runs of spaces (a 40,000-character spec takes
# a minute); real specs are a few dozen characters.
MAX_SPEC_LENGTH = 1024
_NOT_REGISTRY = re.compile(
    r"^(?:git\+|git:|github:|gitlab:|bitbucket:|gist:|file:|link:|portal:|workspace:|exec:|"
    r"https?://|[\w.-]+/[\w.-]+(?:#.*)?$)"
)


@dataclass(frozen=True)
class SpecVerdict:
    """How a dependency spec relates to the bad versions."""

    severity: str  # "at-risk" | "unknown"
    real_name: str
    range: str
    admits: tuple[str, ...] = ()
    reason: str = ""


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
        # byte needles for a cheap "could this file mention a bad package at all?" test
        self.needles: tuple[bytes, ...] = tuple(sorted({n.encode() for n in self.names}))
        # a file that resolved a bad version must contain the version or an any-version name
        versions = {v for vs in self.bad_versions.values() for v in vs}
        self.resolution_needles: tuple[bytes, ...] = tuple(
            sorted(
                {n.encode() for n in self.any_version | set(self.bad_ranges)}
                | {v.encode() for v in versions}
            )
        )  # a version in a range can be any text: the package's name is the needle

    def mentions(self, data: bytes) -> bool:
        """Could this manifest mention a bad package (by name)?"""
        return any(needle in data for needle in self.needles)

    def could_resolve(self, data: bytes) -> bool:
        """Could this lockfile or cache file record a bad resolution (by version or name)?"""
        return self.mentions(data) and any(n in data for n in self.resolution_needles)

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
        """None when the spec cannot resolve to a bad version; else at-risk or unknown."""
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
        if rng in DIST_TAGS_THAT_ADMIT:
            return SpecVerdict(
                "at-risk",
                real,
                rng,
                tuple(bad),
                "a dist-tag or wildcard admits whatever was published",
            )
        if nodesemver.valid_range(rng, loose=True) is None:
            if _is_plain_tag(rng):
                reason = f"dist-tag '{rng}': check what it pointed at during the incident"
            else:
                reason = "not a semver range or a known dist-tag"
            return SpecVerdict("unknown", real, rng, reason=reason)
        admits = tuple(v for v in bad if _satisfies(v, rng))
        return SpecVerdict("at-risk", real, rng, admits) if admits else None


def _satisfies(version: str, rng: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, rng, loose=True))
    except (ValueError, TypeError, AttributeError):  # node-semver raises where npm says "no"
        return False


def _is_plain_tag(rng: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][\w.-]*", rng))
