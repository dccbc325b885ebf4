"""`git_commit`: commit exactly the manifests and lockfiles this run changed, on a new branch.

It refuses a working tree with changes this run did not make (unless allowed), never pushes, and
the write goes through `ctx.effects.call("git", "commit", ...)`, so a dry run commits nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import git
from pydantic import Field

from runbook.models import AffectedPackage
from runbook.step import (
    Action,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)

DEFAULT_PATHS = [
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "pnpm-workspace.yaml",
    "bun.lock",
    "bun.lockb",
    ".yarnrc.yml",
]
#: Variables from the run's environment that shape what git reads (config, identity).
GIT_ENV = ("HOME", "XDG_CONFIG_HOME", "PATH", "LANG", "LC_ALL")


class GitCommitParams(StepParams):
    branch: str | None = Field(
        default=None, description="Branch to create; default `<playbook-id>/remediate`."
    )
    paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PATHS),
        description="Glob filter on the changed files (file name or path inside the repository).",
    )
    allow_dirty: bool = Field(
        default=False,
        description="Commit even when the working tree has changes this run did not make "
        "(only the run's files are committed either way).",
    )
    repo: str = Field(
        default=".", description="A directory inside the repository, from the target."
    )
    author_name: str | None = None
    author_email: str | None = None
    committer_name: str | None = None
    committer_email: str | None = None


@dataclass
class Observed:
    root: Path
    head: str
    branch: str | None  # None: detached
    ours: list[str]  # repo-relative paths to commit
    others: list[str]  # repo-relative paths dirty but not changed by this run
    status: str


def _status(repo: git.Repo) -> list[tuple[str, str]]:
    """(XY code, repo-relative path) of every tracked change and untracked file."""
    raw = repo.git.status("--porcelain=v1", "-z", "--untracked-files=all")
    fields = raw.split("\0")
    out, i = [], 0
    while i < len(fields):
        item = fields[i]
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        out.append((code, path))
        if "R" in code or "C" in code:
            i += 1  # the rename's source follows
    return out


def _head_sha256(repo: git.Repo, path: str) -> str | None:
    """sha256 of the file's content at HEAD (None when HEAD does not have it)."""
    try:
        blob = repo.head.commit.tree / path
    except KeyError:
        return None
    return hashlib.sha256(blob.data_stream.read()).hexdigest()


def _git_env(env: Mapping[str, str]) -> dict[str, str]:
    out = {k: env[k] for k in GIT_ENV if k in env}
    out.update({k: v for k, v in env.items() if k.startswith("GIT_")})
    return out


def _split_identity(value: str) -> tuple[str, str]:
    """`Name <email>` (already checked by `--git-author`) as (name, email)."""
    name, _, rest = value.rpartition("<")
    return name.strip(), rest.rstrip().rstrip(">").strip()


def identity_problem(repo: git.Repo, env: Mapping[str, str]) -> str | None:
    """Why git cannot name the author or committer of a commit here (git's own answer, from
    `git var GIT_AUTHOR_IDENT` / `GIT_COMMITTER_IDENT`), or None when it can."""
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        try:
            repo.git.var(var, env=dict(env))
        except git.GitCommandError as exc:
            said = str(exc.stderr or exc)
            fatal = re.search(r"fatal: (.*?)'?\s*$", said, re.MULTILINE)
            return fatal.group(1).strip() if fatal else said.strip()[-200:] or "no identity"
    return None


IDENTITY_HELP = (
    'set one with `git config --global user.name "Your Name"` and `git config --global '
    'user.email you@example.com`, or rerun with `--git-author "Your Name <you@example.com>"`'
)


def _inside_a_repository(where: Path) -> bool:
    try:
        git.Repo(where, search_parent_directories=True).close()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False
    return True


class GitCommitStep(StepKind):
    """Creates a branch and commits the run's manifest and lockfile changes; never pushes."""

    name = "git_commit"
    Params = GitCommitParams
    summary = "Commit the manifests and lockfiles this run changed on a new branch (no push)."
    params: GitCommitParams

    def _branch(self, ctx: StepContext) -> str:
        return self.params.branch or f"{ctx.playbook.id}/remediate"

    def _repo(self, ctx: StepContext) -> git.Repo:
        where = (ctx.target / self.params.repo).resolve()
        try:
            repo = git.Repo(where, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise StepError(f"git_commit: {where} is not inside a git repository") from None
        if repo.bare or repo.working_tree_dir is None:
            raise StepError(f"git_commit: {where} is a bare repository")
        return repo

    def _run_files(self, ctx: StepContext) -> list[Path]:
        if not ctx.dry_run:
            return ctx.changed_files()
        # a dry run changed nothing: preview with what the earlier steps would have written
        seen: dict[str, None] = {}
        for entry in ctx.journal_entries() if ctx.journal_entries else []:
            data = entry.get("data") or {}
            if (
                entry.get("event") == "effect"
                and data.get("op") == "write_file"
                and data.get("outcome") in ("ok", "would")
            ):
                seen.setdefault(data["path"], None)
        return [Path(p) for p in seen]

    @staticmethod
    def _first_before(ctx: StepContext, root: Path) -> dict[str, str | None]:
        """Each file's sha256 before this run first wrote it, by repo-relative path."""
        out: dict[str, str | None] = {}
        for entry in ctx.journal_entries() if ctx.journal_entries else []:
            data = entry.get("data") or {}
            if (
                entry.get("event") == "effect"
                and data.get("op") == "write_file"
                and data.get("outcome") == "ok"
            ):
                real = Path(data["path"])
                if root in real.parents:
                    out.setdefault(real.relative_to(root).as_posix(), data.get("sha256_before"))
        return out

    def _wanted(self, relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(relative, g) or fnmatch.fnmatchcase(name, g)
            for g in self.params.paths
        )

    def _observe(self, ctx: StepContext, repo: git.Repo) -> Observed:
        root = Path(os.path.realpath(repo.working_tree_dir))
        if not repo.head.is_valid():
            raise StepError(f"git_commit: {root} has no commit yet; commit something first")
        status = _status(repo)
        run_files: set[str] = set()
        for path in self._run_files(ctx):
            real = Path(os.path.realpath(path))
            if real == root or root in real.parents:
                run_files.add(real.relative_to(root).as_posix())
        dirty = {path for _, path in status}
        ours = sorted(p for p in run_files if self._wanted(p) and p in dirty)
        if ctx.dry_run:
            ours = sorted(p for p in run_files if self._wanted(p))
        tracked_dirty = {path for code, path in status if code != "??"}
        others = sorted(tracked_dirty - run_files)
        # a file the run changed must have been clean before the run, else the commit would
        # carry someone's uncommitted edits along with the run's
        before = self._first_before(ctx, root)
        for path in ours:
            if path in before and before[path] != _head_sha256(repo, path):
                others.append(f"{path} (already changed before the run)")
        branch = None if repo.head.is_detached else repo.active_branch.name
        text = "\n".join(f"{code} {path}" for code, path in status)
        return Observed(root, repo.head.commit.hexsha, branch, ours, others, text)

    def plan(self, ctx: StepContext) -> Plan:
        if ctx.options.get("no_commit"):
            note = "--no-commit: the commit is left to the caller; the changes stay in the tree"
            return Plan(fingerprint=fingerprint_of("no-commit"), notes=[note])
        where = (ctx.target / self.params.repo).resolve()
        if not _inside_a_repository(where):
            note = f"{where} is not inside a git repository: nothing to commit"
            return Plan(fingerprint=fingerprint_of(str(where), "no repository"), notes=[note])
        with self._repo(ctx) as repo:
            if ctx.dry_run and not repo.head.is_valid():
                note = (
                    f"{where} has no commit yet: a live run stops here (nothing to branch "
                    "from); commit the project first"
                )
                return Plan(fingerprint=fingerprint_of(str(where), "no commit"), notes=[note])
            seen = self._observe(ctx, repo)
        branch = self._branch(ctx)
        notes = [f"repository {seen.root}, on {seen.branch or 'a detached HEAD'}"]
        if seen.others:
            listed = ", ".join(seen.others[:10]) + (" ..." if len(seen.others) > 10 else "")
            if not self.params.allow_dirty:
                raise StepError(
                    f"git_commit: the working tree of {seen.root} has changes this run did not "
                    f"make: {listed}; commit or stash them first, or set `allow_dirty: true` "
                    "(only the run's own files are committed)"
                )
            notes.append(f"allow_dirty: left out of the commit: {listed}")
        actions = []
        if seen.ours:
            actions.append(
                Action(
                    kind="git",
                    summary=f"commit {len(seen.ours)} file(s) on branch {branch} (no push): "
                    + ", ".join(seen.ours),
                    detail={"branch": branch, "paths": seen.ours, "repo": str(seen.root)},
                )
            )
        else:
            notes.append("nothing to commit: this run changed no manifest or lockfile here")
        identity = self._identity(ctx)
        if seen.ours:
            with self._repo(ctx) as repo:
                problem = identity_problem(repo, {**_git_env(ctx.env), **identity})
            if problem:
                message = f"git has no user identity on this machine ({problem}): {IDENTITY_HELP}"
                if not ctx.dry_run:
                    raise StepError(f"git_commit: {message}")
                notes.append(f"a live run would stop here: {message}")
            elif ctx.options.get("git_author"):
                notes.append(f"author and committer: {ctx.options['git_author']} (--git-author)")
        fingerprint = fingerprint_of(
            str(seen.root), seen.head, seen.branch, seen.status, branch, sorted(identity.items())
        )
        return Plan(actions=actions, fingerprint=fingerprint, notes=notes)

    def _identity(self, ctx: StepContext) -> dict[str, str]:
        """GIT_AUTHOR_* / GIT_COMMITTER_* from the playbook; `--git-author` sets both and wins."""
        params = self.params
        out = {}
        for key, value in (
            ("GIT_AUTHOR_NAME", params.author_name),
            ("GIT_AUTHOR_EMAIL", params.author_email),
            ("GIT_COMMITTER_NAME", params.committer_name or params.author_name),
            ("GIT_COMMITTER_EMAIL", params.committer_email or params.author_email),
        ):
            if value:
                out[key] = value
        option = ctx.options.get("git_author")
        if option:
            name, email = _split_identity(str(option))
            out.update(
                GIT_AUTHOR_NAME=name,
                GIT_AUTHOR_EMAIL=email,
                GIT_COMMITTER_NAME=name,
                GIT_COMMITTER_EMAIL=email,
            )
        return out

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        if not plan.actions:
            return StepResult("succeeded", plan.notes[-1] if plan.notes else "nothing to commit")
        detail = plan.actions[0].detail
        branch, paths = detail["branch"], list(detail["paths"])
        repo = self._repo(ctx)
        message = self.message(ctx, paths)
        env = {**_git_env(ctx.env), **self._identity(ctx)}

        def commit() -> str:
            self._switch(repo, branch, env)
            repo.git.add("--", *paths, env=env)
            repo.git.commit("--only", "--no-verify", "-m", message, "--", *paths, env=env)
            return repo.head.commit.hexsha

        with repo:
            sha = ctx.effects.call(
                "git",
                "commit",
                commit,
                summary=f"commit {', '.join(paths)} on branch {branch} in {detail['repo']}",
            )
        if sha is None:
            return StepResult(
                "succeeded", f"dry run: would commit {', '.join(paths)} on branch {branch}"
            )
        return StepResult(
            "succeeded",
            f"committed {len(paths)} file(s) on branch {branch} as {sha[:12]} (not pushed)",
            data={"branch": branch, "commit": sha, "paths": paths},
        )

    @staticmethod
    def _switch(repo: git.Repo, branch: str, env: dict[str, str]) -> None:
        """Create `branch` at HEAD and switch to it (the working tree's changes come along)."""
        if not repo.head.is_detached and repo.active_branch.name == branch:
            return
        existing = next((h for h in repo.heads if h.name == branch), None)
        if existing is not None:
            if existing.commit != repo.head.commit:
                raise StepError(
                    f"git_commit: branch {branch} already exists at {existing.commit.hexsha[:12]}, "
                    "not at HEAD; delete it or choose another `branch:`"
                )
            repo.git.checkout(branch, env=env)
            return
        repo.git.checkout("-b", branch, env=env)

    @staticmethod
    def message(ctx: StepContext, paths: list[str]) -> str:
        """The commit message: the incident, the packages this run found, the files, and the
        journal head. A playbook of thousands of packages (a worm's list) gets a line only for
        those the run found, and a count of the rest."""
        pb = ctx.playbook
        lines = [
            f"Remediate {pb.id}: {pb.title}"[:72],
            "",
            f"Incident: {pb.title} (playbook {pb.id} v{pb.version})",
        ]
        packages = pb.incident.packages
        found = _found_packages(ctx)
        if found:
            listed = [p for p in packages if p.name in found]
            rest = len(packages) - len(listed)
            others = _count(rest, "other package")
            tail = f"and {others} of the incident {_were(rest)} not found here"
        elif len(packages) <= FEW_PACKAGES:
            listed, rest, tail = list(packages), 0, ""
        else:
            listed, rest = [], len(packages)
            tail = f"{_count(rest, 'package')} in the incident; this run recorded no finding of one"
        lines += [_package_line(package) for package in listed]
        if rest:
            lines.append(tail)
        lines += ["", "Files changed by the run:", *(f"  {p}" for p in paths), ""]
        head = ctx.journal_head() if ctx.journal_head else "unknown"
        lines.append(f"Runbook-Journal-Head: {head}")
        return "\n".join(lines) + "\n"


#: Up to this many packages, an incident is listed whole when the run recorded no finding.
FEW_PACKAGES = 10
#: Bad versions shown per package line; the rest are counted.
SHOWN_VERSIONS = 10


def _found_packages(ctx: StepContext) -> set[str]:
    """Packages named by the compromised or at-risk findings the steps of this run planned with
    (`detect`, `verify`, ...), from the journal."""
    found: set[str] = set()
    for entry in ctx.journal_entries() if ctx.journal_entries else []:
        if entry.get("event") != "step_planned":
            continue
        for finding in (entry.get("data") or {}).get("findings") or []:
            if finding.get("severity") in ("compromised", "at-risk") and finding.get("package"):
                found.add(finding["package"])
    return found


def _package_line(package: AffectedPackage) -> str:
    bad = [*package.bad_versions, *package.bad_ranges]
    shown = ", ".join(bad[:SHOWN_VERSIONS])
    if len(bad) > SHOWN_VERSIONS:
        shown += f" (and {len(bad) - SHOWN_VERSIONS} more)"
    if package.any_version or not bad:
        shown = "every version"
    text = f"{package.name}: bad {shown}"
    if package.safe_pins:
        safe = ", ".join(f"{v} ({line}.x)" for line, v in sorted(package.safe_pins.items()))
        text += f"; safe {safe}"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"
