"""`runbook new --from-list FILE`: a flat list of bad versions, as peer scanners publish them
(`Cobenian/shai-hulud-detect`'s `compromised-packages.txt`, turned into one version a line).

One version a line, either `name<TAB>version` or `name@version` (`@scope/pkg@1.2.3`: the version
is after the last `@`). Blank lines and lines starting with `#` are skipped, and so is a first
line `package<TAB>version` (a header). Every line that is not one of these is a problem naming the
file, line and column, and nothing is written: a list is either read whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runbook.safeio import MANIFEST_LIMIT, read_regular
from steps.osv.draft import IncidentDraft
from steps.osv.records import OsvProblem, is_exact, is_npm_name, semver_key

HEADERS = {("package", "version"), ("name", "version")}
PROBLEMS_SHOWN = 20  # a file of another format would otherwise print a problem per line


@dataclass(frozen=True)
class ListedVersion:
    name: str
    version: str
    line: int


@dataclass
class VersionList:
    """One list file: where it came from and what it names."""

    path: Path
    versions: list[ListedVersion]

    @property
    def packages(self) -> set[str]:
        return {v.name for v in self.versions}

    def describe(self) -> str:
        return f"{self.path} ({len(self.versions):,} versions of {len(self.packages):,} packages)"


def read_lists(paths: list[Path]) -> tuple[list[VersionList], list[OsvProblem]]:
    """Every list, and the problems of those that cannot be used (at most `PROBLEMS_SHOWN` per
    file, then a count)."""
    lists, problems = [], []
    for path in paths:
        try:
            data = read_regular(path, limit=MANIFEST_LIMIT, follow_symlinks=True)
        except OSError as exc:
            problems.append(OsvProblem(str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        found, bad = parse_list(data, path)
        if len(bad) > PROBLEMS_SHOWN:
            more = len(bad) - PROBLEMS_SHOWN
            bad = [*bad[:PROBLEMS_SHOWN], OsvProblem(str(path), f"and {more} more such lines")]
        problems += bad
        if not bad:
            if not found.versions:
                problems.append(OsvProblem(str(path), "no versions in it (name<TAB>version lines)"))
            else:
                lists.append(found)
    return lists, problems


def parse_list(data: bytes, path: Path) -> tuple[VersionList, list[OsvProblem]]:
    shown = str(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return VersionList(path, []), [OsvProblem(shown, "not valid UTF-8 text", line, col)]
    versions: list[ListedVersion] = []
    problems: list[OsvProblem] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            name, _, version = (part.strip() for part in line.partition("\t"))
            version_col = raw.index("\t") + 2
        else:
            at = line.rfind("@")
            if at <= 0:
                problems.append(
                    OsvProblem(
                        shown,
                        f"expected name<TAB>version or name@version, got {line[:60]!r}",
                        number,
                        1,
                    )
                )
                continue
            name, version = line[:at], line[at + 1 :]
            version_col = raw.index(line) + at + 2
        if number == 1 and (name.lower(), version.lower()) in HEADERS:
            continue
        if not is_npm_name(name):
            message = f"{name[:60]!r} is not an npm package name"
            problems.append(OsvProblem(shown, message, number, raw.index(line) + 1))
            continue
        if not is_exact(version):
            message = f"{version[:40]!r} is not an exact version (like 1.14.1)"
            problems.append(OsvProblem(shown, message, number, version_col))
            continue
        if (name, version) not in seen:
            seen.add((name, version))
            versions.append(ListedVersion(name, version, number))
    return VersionList(path, versions), problems


def add_lists(draft: IncidentDraft, lists: list[VersionList]) -> None:
    """Every listed version becomes a bad version (the union with the records, as records are
    merged with each other); where a list and the records disagree, the package's note says so."""
    from_records = {name: set(p.bad_versions) for name, p in draft.packages.items()}
    for listed in lists:
        draft.lists.append(listed.describe())
        added: dict[str, list[str]] = {}
        for item in listed.versions:
            package = draft.package(item.name)
            if item.name in from_records and not package.is_bad(item.version):
                added.setdefault(item.name, []).append(item.version)
            package.bad_versions.add(item.version)
        for name, versions in sorted(added.items()):
            shown = ", ".join(sorted(versions, key=semver_key))
            draft.packages[name].notes.append(
                f"The version list {listed.path.name} adds {shown}, which the OSV records do not "
                "name."
            )
        fresh = listed.packages - set(from_records)
        draft.summary_notes.append(
            f"The version list `{listed.path.name}` names {len(listed.versions):,} versions of "
            f"{len(listed.packages):,} packages ({len(fresh):,} of them in no OSV record given)."
        )
