"""Completing a draft from the registry's package metadata (the packument): the safe version to
pin per major line, the published versions each bad range covers, and when the bad versions were
published. Without a registry, or when it cannot be reached, each missing pin stays a FILL-IN
placeholder that `runbook validate` rejects, naming the package and the major line.

The safe pin of a line is the highest version of that major that is not bad: not listed, not in a
bad range, not a pre-release, and not deprecated unless nothing else is left.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import nodesemver

from steps.osv.draft import IncidentDraft, PackageDraft, fill_in
from steps.osv.records import is_exact, major, parse_time, semver_key

PACKUMENT_LIMIT = 128 * 1024 * 1024
TIMEOUT = 30
_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
_NOT_VERSIONS = {"created", "modified", "unpublished"}


class RegistryError(Exception):
    """The registry could not be asked (or its answer could not be read)."""


@dataclass
class Packument:
    """What the registry knows about one package."""

    name: str
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # installable ones
    times: dict[str, datetime] = field(default_factory=dict)  # unpublished versions too

    def known(self) -> set[str]:
        """Every version the registry has heard of, including unpublished ones."""
        return {v for v in (*self.versions, *self.times) if is_exact(v)}


def fetch_packument(registry: str, name: str, timeout: float = TIMEOUT) -> Packument | None:
    """GET the package's metadata; None when the registry does not have it (404)."""
    url = registry.rstrip("/") + "/" + quote(name, safe="@")
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    try:
        with _opener(registry).open(request, timeout=timeout) as response:
            raw = response.read(PACKUMENT_LIMIT + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RegistryError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RegistryError(f"{registry}: cannot be reached ({reason})") from None
    if len(raw) > PACKUMENT_LIMIT:
        raise RegistryError(f"{url}: the answer is over {PACKUMENT_LIMIT // 2**20} MiB")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise RegistryError(f"{url}: the answer is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{url}: the answer is not package metadata")
    versions = doc.get("versions") if isinstance(doc.get("versions"), dict) else {}
    times = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    packument = Packument(name, {k: v if isinstance(v, dict) else {} for k, v in versions.items()})
    for key, value in times.items():
        moment = parse_time(value)
        if key not in _NOT_VERSIONS and moment is not None:
            packument.times[key] = moment
    return packument


def _opener(registry: str) -> urllib.request.OpenerDirector:
    """The environment's proxy settings, except for a registry on this machine."""
    host = urlsplit(registry).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if local else []))


def complete(draft: IncidentDraft, registry: str | None, *, pins: bool = True) -> None:
    """Fill in pins (from the registry when given), expand ranges, learn publish times.
    Without `pins`, no safe pin is looked up or left to fill in."""
    reachable = registry is not None
    for package in draft.packages.values():
        if package.any_version:
            continue
        packument = None
        if reachable and registry is not None:
            try:
                packument = fetch_packument(registry, package.name)
            except RegistryError as exc:
                draft.notes.append(f"registry not used from here on: {exc}")
                reachable = False
            else:
                if packument is None:
                    package.notes.append(f"The registry {registry} does not know {package.name}.")
        if packument is not None:
            _from_registry(draft, package, packument, registry or "", pins=pins)
        for line in package.pin_lines() if pins else ():
            package.safe_pins.setdefault(line, fill_in(package.name, line))


def _from_registry(
    draft: IncidentDraft,
    package: PackageDraft,
    packument: Packument,
    registry: str,
    *,
    pins: bool = True,
) -> None:
    known = packument.known()
    if package.intervals:
        covered = {v for v in known if any(i.contains(v) for i in package.intervals)}
        added = sorted(covered - package.bad_versions, key=semver_key)
        if added:
            package.bad_versions |= covered
            package.notes.append(
                f"Versions in the ranges {', '.join(package.bad_ranges())} that {registry} "
                f"knows of: {', '.join(added)} (the ranges stay, for versions it no longer lists)."
            )
    for version in package.sorted_versions():
        if version in packument.times:
            draft.starts.append((packument.times[version], f"{package.name}@{version} published"))
    for line in package.pin_lines() if pins else ():
        if line in package.safe_pins:
            continue
        chosen, why = pick_safe(package, packument, line)
        if chosen is None:
            package.notes.append(f"No safe pin for {line}.x from {registry}: {why}.")
            draft.warnings.append(f"{package.name}: no safe {line}.x version found: {why}.")
            continue
        package.safe_pins[line] = chosen
        when = packument.times.get(chosen)
        published = f", published {when:%Y-%m-%d}" if when else ""
        package.notes.append(
            f"Safe pin {chosen} ({line}.x) from {registry}: the highest {line}.x version not "
            f"listed as bad{published}. Check it was not published during the incident."
        )
        if why:
            draft.warnings.append(f"{package.name}: the safe pin {chosen} ({line}.x) {why}.")


def pick_safe(package: PackageDraft, packument: Packument, line: str) -> tuple[str | None, str]:
    """The highest good version of major `line`, and a remark (why none, or a caveat)."""
    candidates = [
        v
        for v in packument.versions
        if is_exact(v)
        and major(v) == line
        and not nodesemver.parse(v, False).prerelease
        and not package.is_bad(v)
    ]
    if not candidates:
        return None, f"the registry lists no {line}.x release that is not bad"
    current = [v for v in candidates if not packument.versions[v].get("deprecated")]
    if current:
        return max(current, key=semver_key), ""
    return max(candidates, key=semver_key), f"is deprecated, as is every good {line}.x version"
