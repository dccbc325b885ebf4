"""Files a worm writes into repositories (`indicators.repo_files`, `indicators.runner_names`):
GitHub Actions workflows such as Shai-Hulud's `.github/workflows/shai-hulud-workflow.yml` or its
`discussion.yaml` backdoor, looked for in the working tree of every repository scanned and, with
`history`, in every commit of every ref (a worm pushes to a branch of its own).

A file is evidence when its path matches an entry and its SHA-256 is listed, or every one of the
entry's patterns is found in its text, or (an entry with neither) it exists at all; a workflow
whose `runs-on` names one of the malware's runners is evidence too. A same-named file with other
content (a benign `discussion.yaml`) is nothing. Text that mentions the names (a README) is never
read: only the paths the entries name are.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import yaml

from runbook.models import Confidence, Indicators, RepoFile, Severity
from runbook.safeio import MANIFEST_LIMIT
from runbook.step import Finding
from steps.scan.installed import real_dir
from steps.scan.reading import not_regular, read_file, why_unreadable

KIND = "repo-file"
WORKFLOWS = ".github/workflows"
WORKFLOW_GLOBS = (f"{WORKFLOWS}/*.yml", f"{WORKFLOWS}/*.yaml")
REPO_FILE_LIMIT = MANIFEST_LIMIT
YAML_LIMIT = 1024 * 1024  # a workflow is a few KiB; a bigger file is read line by line
MARK = "\x1e"
GIT_SYMLINK = 0o120000
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Match:
    """Why a file is evidence: what it is, and how sure the sources are."""

    what: str
    confidence: Confidence

    @property
    def severity(self) -> Severity:
        return "compromised" if self.confidence == "high" else "at-risk"


def wanted(indicators: Indicators) -> bool:
    return bool(indicators.repo_files or indicators.runner_names)


def globs(indicators: Indicators) -> list[str]:
    """Every path pattern a repository is searched for."""
    out = [entry.path for entry in indicators.repo_files]
    if indicators.runner_names:
        out += [g for g in WORKFLOW_GLOBS if g not in out]
    return out


def path_matches(pattern: str, relative: str) -> bool:
    """`*`, `?` and `[...]` match within one part of a '/'-separated path."""
    parts, names = pattern.split("/"), relative.split("/")
    return len(parts) == len(names) and all(map(fnmatchcase, names, parts))


def judge(relative: str, data: bytes, indicators: Indicators) -> list[Match]:
    """The reasons the content `data` at `relative` is evidence (empty: it is not)."""
    found: list[Match] = []
    entries = [e for e in indicators.repo_files if path_matches(e.path, relative)]
    text = data.decode("utf-8", "replace") if any(e.patterns for e in entries) else ""
    digest = hashlib.sha256(data).hexdigest() if any(e.sha256 for e in entries) else ""
    for entry in entries:
        if _is_evidence(entry, digest, text):
            found.append(
                Match(entry.description or f"{entry.path} (a known indicator)", entry.confidence)
            )
    if indicators.runner_names and any(path_matches(g, relative) for g in WORKFLOW_GLOBS):
        asked = runs_on(data)
        for name in indicators.runner_names:
            if name.lower() not in asked:
                continue
            found.append(
                Match(f"a workflow that runs on the malware's self-hosted runner {name}", "high")
            )
    return found


def strongest(matches: list[Match]) -> Severity:
    return "compromised" if any(m.severity == "compromised" for m in matches) else "at-risk"


def describe(matches: list[Match]) -> str:
    return "; ".join(dict.fromkeys(m.what for m in matches))


def _is_evidence(entry: RepoFile, digest: str, text: str) -> bool:
    if not entry.sha256 and not entry.patterns:
        return True
    if digest and digest in entry.sha256:
        return True
    return bool(entry.patterns) and all(re.search(p, text, re.MULTILINE) for p in entry.patterns)


def runs_on(data: bytes) -> set[str]:
    """The runner labels a workflow's jobs ask for, lower-cased. A workflow that is not YAML is
    read line by line instead (`runs-on:` lines), so a broken file cannot hide a label."""
    root = None
    if len(data) <= YAML_LIMIT:
        try:
            root = yaml.compose(data.decode("utf-8", "replace"), Loader=_Loader)
        except yaml.YAMLError:
            root = None
    if root is None:
        return {
            label.lower()
            for line in re.findall(rb"runs-on\s*:(.*)", data)
            for label in re.findall(r"[\w.-]+", line.decode("utf-8", "replace"))
        }
    labels: set[str] = set()
    for job in _values(_get(root, "jobs")):
        _labels(_get(job, "runs-on"), labels, depth=0)
    return labels


class _Loader(yaml.SafeLoader):
    """Composes nodes only; aliases share nodes, and nothing here expands them."""


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _values(node: yaml.Node | None) -> list[yaml.Node]:
    return [v for _, v in node.value] if isinstance(node, yaml.MappingNode) else []


def _labels(node: yaml.Node | None, out: set[str], depth: int) -> None:
    if node is None or depth > 3:
        return
    if isinstance(node, yaml.ScalarNode):
        out.update(label.lower() for label in re.findall(r"[\w.-]+", str(node.value)))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value[:100]:
            _labels(item, out, depth + 1)
    elif isinstance(node, yaml.MappingNode):  # {group: ..., labels: [...]}
        _labels(_get(node, "labels"), out, depth + 1)


# -- the working tree ----------------------------------------------------------------------------
def candidates(root: Path, patterns: Iterable[str]) -> Iterator[Path | Finding]:
    """Paths under `root` matching the patterns (symlinked folders are not entered); a folder
    on the way that cannot be listed is an `unknown` finding."""
    seen: set[Path] = set()
    for pattern in patterns:
        for found in _expand(root, pattern.split("/")):
            if isinstance(found, Finding) or found not in seen:
                if not isinstance(found, Finding):
                    seen.add(found)
                yield found


def _expand(base: Path, parts: list[str]) -> Iterator[Path | Finding]:
    head, rest = parts[0], parts[1:]
    if _MAGIC.search(head):
        try:
            with os.scandir(base) as entries:
                names = sorted(e.name for e in entries if fnmatchcase(e.name, head))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            yield Finding(
                kind=KIND,
                severity="unknown",
                path=str(base),
                message=f"cannot list this directory: {exc.strerror or exc}; the files the "
                "malware writes there were not checked",
            )
            return
    else:
        names = [head]
    for name in names:
        path = base / name
        if not rest:
            if os.path.lexists(path):
                yield path
        elif real_dir(path):
            yield from _expand(path, rest)


def scan_repo_files(roots: Iterable[Path], indicators: Indicators) -> Iterator[Finding]:
    """The repository files of the indicators in the working tree of each root."""
    patterns = globs(indicators)
    for root in roots:
        for found in candidates(root, patterns):
            if isinstance(found, Finding):
                yield found
                continue
            relative = found.relative_to(root).as_posix()
            yield from _judge_file(root, found, relative, indicators)


def _judge_file(root: Path, path: Path, relative: str, indicators: Indicators) -> Iterator[Finding]:
    entries = [e for e in indicators.repo_files if path_matches(e.path, relative)]
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        return
    if not stat.S_ISREG(mode):
        what = not_regular(path)
        if any(not e.sha256 and not e.patterns for e in entries):
            severity: Severity = "at-risk"
            message = f"{relative} in {root}: something is there but {what}; not read"
        else:
            severity = "unknown"
            message = f"{relative} in {root}: {what}, so it cannot be checked: look at it by hand"
        yield Finding(kind=KIND, severity=severity, path=str(path), message=message)
        return
    try:
        data = read_file(path, limit=REPO_FILE_LIMIT)
    except OSError as exc:
        yield Finding(
            kind=KIND,
            severity="unknown",
            path=str(path),
            message=f"cannot read {relative}: {why_unreadable(path, exc)}",
        )
        return
    runs = (
        "it runs on the next push or event: remove it, and rotate the repository's CI secrets"
        if relative.startswith(WORKFLOWS + "/")
        else "remove it"
    )
    matches = judge(relative, data, indicators)
    if matches:
        yield Finding(
            kind=KIND,
            severity=strongest(matches),
            path=str(path),
            message=f"{relative}: {describe(matches)}; {runs}",
        )


# -- git history ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str

    def __str__(self) -> str:
        return f"{self.sha[:10]} ({self.author}, {self.date})"


def scan_repo_history(repos: Iterable[Path], indicators: Indicators) -> Iterator[Finding]:
    """Every commit of every ref that added or changed a file that is evidence."""
    import git  # GitPython is only imported when history is asked for

    specs = [f":(glob){pattern}" for pattern in globs(indicators)]
    for repo_dir in repos:
        try:
            repo = git.Repo(repo_dir)
            if not any(True for _ in repo.refs):
                continue
            out = repo.git.log(
                "--all",
                "--reverse",
                "--no-renames",
                "--format=" + MARK + "%H%x09%an%x09%aI",
                "--name-status",
                "--",
                *specs,
            )
        except (git.GitError, ValueError, OSError) as exc:
            yield Finding(
                kind="history",
                severity="unknown",
                path=str(repo_dir),
                message=f"cannot read git history: {str(exc).splitlines()[0]}",
            )
            continue
        yield from _history_findings(repo, repo_dir, out, indicators)


def _history_findings(repo, repo_dir: Path, log: str, indicators: Indicators) -> Iterator[Finding]:
    first: dict[str, tuple[Commit, list[Match]]] = {}
    current: Commit | None = None
    for line in log.split("\n"):  # not splitlines(): it splits on the \x1e marker too
        if line.startswith(MARK):
            sha, author, date = line[1:].split("\t", 2)
            current = Commit(sha, author, date)
            continue
        status, _, relative = line.partition("\t")
        if current is None or not relative or status.startswith("D"):
            continue
        if relative.startswith('"'):
            yield _unknown_history(repo_dir, relative, current, "its name needs quoting")
            continue
        try:
            blob = repo.commit(current.sha).tree / relative
        except (KeyError, ValueError):
            continue
        if blob.mode == GIT_SYMLINK:
            yield _unknown_history(repo_dir, relative, current, "it is a symlink in that commit")
            continue
        if blob.size > REPO_FILE_LIMIT:
            yield _unknown_history(
                repo_dir, relative, current, f"it is {blob.size} bytes, over the size limit"
            )
            continue
        data = blob.data_stream.read(REPO_FILE_LIMIT + 1)
        matches = judge(relative, data, indicators)
        if matches:
            seen = first.setdefault(relative, (current, []))[1]
            seen += [m for m in matches if m not in seen]
    for relative, (commit, matches) in sorted(first.items()):
        refs = _refs_containing(repo, commit.sha)
        on = f" (on {', '.join(refs[:5])}{' ...' if len(refs) > 5 else ''})" if refs else ""
        yield Finding(
            kind="history",
            severity="at-risk",
            path=str(repo_dir / PurePosixPath(relative)),
            message=f"{relative} was committed in {commit}{on}: {describe(matches)}. It ran "
            "when that commit was pushed: the repository's CI secrets must be taken as stolen",
        )


def _unknown_history(repo_dir: Path, relative: str, commit: Commit, why: str) -> Finding:
    return Finding(
        kind="history",
        severity="unknown",
        path=str(repo_dir / PurePosixPath(relative.strip('"'))),
        message=f"{relative} at {commit}: {why}; not read: check that commit by hand",
    )


def _refs_containing(repo, sha: str) -> list[str]:
    try:
        out = repo.git.for_each_ref(
            "--contains", sha, "--format=%(refname:short)", "refs/heads", "refs/remotes"
        )
    except Exception:  # an old git without --contains: the commit alone is named
        return []
    return [line for line in out.splitlines() if line.strip()]
