"""Payload files inside installed packages (`indicators.package_files`): the `bundle.js`,
`setup_bun.js` or `bun_environment.js` a worm adds next to a package's `package.json`.

They are looked for during the tree walk that finds bad packages (`scan_node_modules` with a
`PayloadFiles`): each package directory is listed once, and that listing both finds its nested
`node_modules` and says whether a payload name is there, from the directory entries alone (no
`stat`). Only an entry whose name the playbook lists is looked at further: its type comes from the
listing, a regular file is hashed (bounded, never through a symlink) and judged by the playbook's
entry: a listed digest is evidence; a name only the malware uses is evidence on its own or a new
variant to review; a common name with another digest is nothing. What cannot be compared (a FIFO
or a symlink with a payload name, a file that cannot be read) is an `unknown` finding: the scan is
then not clean.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from runbook.models import PackageFile, Severity
from runbook.safeio import MANIFEST_LIMIT, MiB, sha256_regular
from runbook.step import Finding
from steps.scan.reading import not_regular, read_file, why_unreadable

KIND = "payload"
# The payloads seen so far are a few MiB (bundle.js 3.6 MiB, bun_environment.js about 10 MiB).
PAYLOAD_LIMIT = 64 * MiB


@dataclass(frozen=True, eq=False)
class PayloadFiles:
    """An incident's `package_files` by file name, and how the tree they are found in is named in
    messages (`context`, e.g. " (installed globally)")."""

    by_name: dict[str, tuple[PackageFile, ...]]
    context: str = ""
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(self.by_name))

    @classmethod
    def of(cls, package_files: Iterable[PackageFile]) -> PayloadFiles | None:
        """The lookup for these entries; None when there are none (nothing to look for)."""
        by_name: dict[str, list[PackageFile]] = {}
        for entry in package_files:
            by_name.setdefault(entry.name, []).append(entry)
        return cls({k: tuple(v) for k, v in by_name.items()}) if by_name else None

    def at(self, context: str) -> PayloadFiles:
        """The same lookup, its findings saying where the tree is (`context`)."""
        return replace(self, context=context)

    def judge(self, entry: os.DirEntry[str], package: str) -> Iterator[Finding]:
        """Findings for `entry`, a file in the directory of `package` whose name is listed."""
        wanted = [e for e in self.by_name[entry.name] if not e.packages or package in e.packages]
        if not wanted:
            return
        path = entry.path
        try:  # the listing's entry type: no stat (one only where the file system gave none)
            if entry.is_dir(follow_symlinks=False):
                return  # a folder that happens to carry the name is not a payload
            regular = entry.is_file(follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            message = f"cannot check {path}: {exc.strerror or exc}"
            yield _finding("unknown", path, package, None, message)
            return
        # the package's version (its package.json) is read only for a finding
        version = functools.cache(lambda: _version_of(os.path.dirname(path)))

        def finding(severity: Severity, message: str) -> Finding:
            v = version()
            where = f"{entry.name} in {package}{'@' + v if v else ''}{self.context}"
            return _finding(severity, path, package, v, where + message)

        presence = [e for e in wanted if not e.sha256]
        hashed = [e for e in wanted if e.sha256]
        if not regular:
            what = not_regular(path)
            if presence:
                yield finding("at-risk", f": something is there but {what}; not read")
            elif hashed:
                yield finding(
                    "unknown",
                    f": {what}, so it cannot be compared with the known payloads: check it by hand",
                )
            return
        for item in presence:
            yield finding(
                _severity(item),
                f": {item.description or 'a file only the malware ships'} "
                f"({item.confidence} confidence)",
            )
        if not hashed:
            return
        try:
            digest = sha256_regular(path, limit=PAYLOAD_LIMIT)
        except OSError as exc:
            why = why_unreadable(path, exc)
            yield finding("unknown", f" cannot be compared with the known payloads: {why}")
            return
        matched = [e for e in hashed if digest in e.sha256]
        for item in matched:
            about = f": {item.description}" if item.description else ""
            yield finding(
                _severity(item),
                f" is a known payload (sha256 {digest[:12]}){about}",
            )
        if not matched and any(e.other_hashes == "at-risk" for e in hashed):
            yield finding(
                "at-risk",
                f" is not one of the known payload samples (sha256 {digest[:12]}), but "
                "only the malware is known to ship a file of that name: a new variant? Review it",
            )


def scan_payloads(
    trees: Iterable[Path], package_files: list[PackageFile], *, context: str = ""
) -> Iterator[Finding]:
    """Payload files in every package under the `node_modules` trees given, and nothing else
    (the scanner looks for them in the same walk as the bad packages)."""
    from steps.scan.installed import scan_node_modules  # it imports this module

    payloads = PayloadFiles.of(package_files)
    if payloads is None:
        return
    for top in trees:
        yield from scan_node_modules(top, None, kind=KIND, payloads=payloads.at(context))


def _severity(entry: PackageFile) -> Severity:
    return "compromised" if entry.confidence == "high" else "at-risk"


def _finding(
    severity: Severity, path: str, package: str, version: str | None, message: str
) -> Finding:
    return Finding(
        kind=KIND,
        severity=severity,
        path=path,
        package=package,
        version=version,
        message=message,
    )


def _version_of(directory: str) -> str | None:
    try:
        data = json.loads(read_file(os.path.join(directory, "package.json"), limit=MANIFEST_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None
