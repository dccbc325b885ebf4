"""`--history`: when a bad version entered and left each lockfile in git: commit, author, date."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import git

from runbook.safeio import LOCKFILE_LIMIT
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LockfileError, parse_lockfile
from steps.npm.lockfiles.graph import utf8_bytes
from steps.npm.ranges import Undecidable, version_prefixes
from steps.scan.repo_files import Commit  # light: imported by every scan, unlike this module
from steps.scan.walk import LOCKFILE_NAMES

MARK = "\x1e"
ANY_VERSION = "[0-9]+\\.[0-9]+\\.[0-9]+"
GIT_SYMLINK = 0o120000


def _pattern(badset: BadSet) -> str:
    """A regex for `git log -G`: any line naming a bad version, a package whose every version
    is bad, or a package with bad ranges, or holding a version of one of its ranges.

    A range's versions cannot be listed, and the line a version changes on (`"version": "4.4.3"`)
    need not name the package, so a range adds the text its versions start with (`4.4.` for
    `>=4.4.2 <4.5.0`), or any version at all when it has no upper bound. The versions of each
    candidate commit are judged afterwards (`_bad_at`)."""
    names = set(badset.any_version) | set(badset.bad_ranges)
    versions = {v for vs in badset.bad_versions.values() for v in vs}
    parts = [_ere_escape(text) for text in sorted(names | versions)]
    prefixes: set[str] = set()
    for ranges in badset.bad_ranges.values():
        for bad_range in ranges:
            try:
                found = version_prefixes(bad_range)
            except Undecidable:
                found = None
            if found is None:
                parts.append(ANY_VERSION)
                break
            prefixes.update(found)
    parts += [f"(^|[^0-9]){_ere_escape(p)}[0-9]" for p in sorted(prefixes)]
    return "|".join(dict.fromkeys(parts))


def _ere_escape(text: str) -> str:
    """Escape for POSIX extended regex (what `git log -G` uses): `re.escape` is not that."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _candidates(repo: git.Repo, badset: BadSet) -> dict[str, list[Commit]]:
    """Per lockfile path, oldest first, the commits whose diff touched a line that may matter."""
    specs = [f":(glob)**/{name}" for name in sorted(LOCKFILE_NAMES) if name != "bun.lockb"]
    out = repo.git.log(
        "--reverse",
        "--format=" + MARK + "%H%x09%an%x09%aI",
        "--name-only",
        "-G",
        _pattern(badset),
        "--",
        *specs,
    )
    by_path: dict[str, list[Commit]] = {}
    current: Commit | None = None
    for line in out.split("\n"):  # not splitlines(): it splits on the \x1e marker too
        if line.startswith(MARK):
            sha, author, date = line[1:].split("\t", 2)
            current = Commit(sha, author, date)
        elif line.strip() and current is not None and "node_modules/" not in line:
            by_path.setdefault(line.strip(), []).append(current)
    return by_path


def _bad_at(
    repo: git.Repo, commit: Commit, path: str, badset: BadSet
) -> set[tuple[str, str]] | str:
    """The bad (name, version) pairs in `path` at `commit`, or why that could not be told."""
    try:
        blob = repo.commit(commit.sha).tree / path
    except (KeyError, ValueError):
        return set()  # the lockfile does not exist in this commit
    if blob.mode == GIT_SYMLINK:
        return "it is a symlink in this commit; not followed"
    if blob.size > LOCKFILE_LIMIT:
        return f"it is {blob.size} bytes in this commit, over the size limit"
    data = blob.data_stream.read(LOCKFILE_LIMIT + 1)
    if not badset.could_resolve(utf8_bytes(data)):
        return set()
    try:
        graph = parse_lockfile(Path(PurePosixPath(path).name), data, None)
    except LockfileError as exc:
        return f"it cannot be parsed in this commit: {exc.reason}"
    return {
        (n.name, n.version)
        for n in graph.nodes.values()
        if n.name in badset.names and badset.is_bad(n.name, n.version)
    }


def scan_repo(repo_dir: Path, badset: BadSet) -> Iterator[Finding]:
    try:
        repo = git.Repo(repo_dir)
        if not repo.head.is_valid():
            return
        candidates = _candidates(repo, badset)
    except (git.GitError, ValueError) as exc:
        yield Finding(
            kind="history",
            severity="unknown",
            path=str(repo_dir),
            message=f"cannot read git history: {str(exc).splitlines()[0]}",
        )
        return
    for path, commits in sorted(candidates.items()):
        entered: dict[tuple[str, str], Commit] = {}
        for commit in commits:
            present = _bad_at(repo, commit, path, badset)
            if isinstance(present, str):  # what was there is not known: keep what was seen
                yield Finding(
                    kind="history",
                    severity="unknown",
                    path=str(repo_dir / path),
                    message=f"{path} at {commit}: {present}; a bad version may have been "
                    "there: check that commit by hand",
                )
                continue
            for key in present - entered.keys():
                entered[key] = commit
            for key in set(entered) - present:
                yield _finding(repo_dir, path, key, entered.pop(key), commit)
        for key, since in entered.items():
            yield _finding(repo_dir, path, key, since, None)


def _finding(
    repo_dir: Path, path: str, key: tuple[str, str], since: Commit, until: Commit | None
) -> Finding:
    name, version = key
    window = f"from {since} until {until}" if until else f"since {since}, still at HEAD"
    return Finding(
        kind="history",
        severity="at-risk",
        path=str(repo_dir / path),
        package=name,
        version=version,
        message=f"{name}@{version} was in {path} {window}: anything "
        "that installed from it then (CI, laptops) may have run the malware",
    )


def scan_history(repos: list[Path], badset: BadSet) -> list[Finding]:
    findings: list[Finding] = []
    for repo_dir in repos:
        findings += scan_repo(repo_dir, badset)
    return findings
