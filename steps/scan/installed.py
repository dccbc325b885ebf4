"""Install trees: node_modules at any depth, pnpm's `.pnpm`, yarn berry's cache and unplugged."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISDIR

from runbook.safeio import MANIFEST_LIMIT
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.npm.lockfiles import LockfileError, load_npm_lockfile
from steps.scan.payloads import PayloadFiles
from steps.scan.reading import read_file, why_unreadable

BERRY_ARCHIVE = re.compile(
    r"^(?P<name>.+?)-npm-(?P<version>\d+\.\d+\.\d+[^-]*(?:-[^-]+)*?)-[0-9a-f]{6,}"
)
PNPM_DIR = re.compile(r"^(?P<name>@?[^@]+)@(?P<version>[^_()]+)")
NAME_FIELD = re.compile(rb'"name"\s*:\s*"([^"\\]*)"')


def _read_manifest(package_dir: str) -> dict:
    path = os.path.join(package_dir, "package.json")
    data = json.loads(read_file(path, limit=MANIFEST_LIMIT))
    return data if isinstance(data, dict) else {}


def listing(folder: str | Path, kind: str) -> list[os.DirEntry[str]] | Finding:
    """The entries of `folder`, or an `unknown` finding when it exists but cannot be listed (what
    is under it was not checked). A folder that does not exist is simply empty."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        return Finding(
            kind=kind,
            severity="unknown",
            path=str(folder),
            message=f"cannot list this directory: {exc.strerror or exc}; "
            "nothing under it was checked",
        )


def _installed_finding(
    package_dir: str, name: str, badset: BadSet, kind: str, via: list[str], context: str
) -> Finding | None:
    path = os.path.join(package_dir, "package.json")
    try:
        manifest = _read_manifest(package_dir)
    except FileNotFoundError:
        manifest = {}
    except (OSError, ValueError, RecursionError) as exc:
        if name in badset.any_version:
            manifest = {}
        else:
            return Finding(
                kind=kind,
                severity="unknown",
                path=package_dir,
                package=name,
                message="cannot read package.json: "
                + (
                    why_unreadable(path, exc)
                    if isinstance(exc, OSError)
                    else "nested too deeply"
                    if isinstance(exc, RecursionError)
                    else f"not JSON ({exc})"
                ),
            )
    version = str(manifest.get("version", "")) if isinstance(manifest.get("version"), str) else ""
    real = manifest.get("name") if isinstance(manifest.get("name"), str) else name
    if real in badset.any_version or name in badset.any_version:
        shown = real if real in badset.any_version else name
        claims = (
            f" (its package.json says {version}; every version of {shown} is evidence)"
            if version
            else ""
        )
        return Finding(
            kind=kind,
            severity="compromised",
            path=package_dir,
            package=shown,
            version=version or None,
            via=via or None,
            message=f"{shown} is installed{context}{claims}",
        )
    if badset.is_bad(real, version):
        return Finding(
            kind=kind,
            severity="compromised",
            path=package_dir,
            package=real,
            version=version,
            via=via or None,
            message=f"{real}@{version} is installed{context}",
        )
    return None


def _scan_pnpm_store(
    pnpm_dir: str, badset: BadSet | None, kind: str, context: str, stores: list[str] | None
) -> Iterator[Finding]:
    """`.pnpm/axios@1.14.1/node_modules/axios`; names of scoped packages use `+` for `/`.

    pnpm links packages into `node_modules` from here, so these are real directories; a symlink
    in their place is not followed. With `stores`, the `node_modules` folder of every entry is
    added to it, for the payload files of every package."""
    entries = listing(pnpm_dir, kind)
    if isinstance(entries, Finding):
        yield entries
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if stores is not None and entry.name != "node_modules":
            folder = os.path.join(entry.path, "node_modules")
            if real_dir(folder):
                stores.append(folder)
        if badset is None:
            continue
        match = PNPM_DIR.match(entry.name)
        if not match:
            continue
        name = match.group("name").replace("+", "/")
        if name not in badset.names:
            continue
        package_dir = os.path.join(entry.path, "node_modules", name)
        finding = _installed_finding(package_dir, name, badset, kind, [], context)
        if finding:
            yield finding


def scan_node_modules(
    top: Path,
    badset: BadSet | None,
    *,
    kind: str = "installed",
    context: str = "",
    payloads: PayloadFiles | None = None,
) -> Iterator[Finding]:
    """Every bad package under one node_modules directory, nested copies included, and with
    `payloads` the payload files in every package of the tree (`badset` None: those only).

    Only directories named like a bad package have their package.json read. Every other package
    costs one `lstat` (for its own nested node_modules), or with `payloads` one listing of its
    directory, which gives both its nested node_modules and the payload names it holds. Symlinks
    are never followed.
    """
    names = badset.names if badset is not None else frozenset()
    # (folder, dependency path, whether bad packages are judged there: not in pnpm's store
    # entries, which `_scan_pnpm_store` judges by their names)
    stack: list[tuple[str, list[str], bool]] = [(str(top), [], True)]
    while stack:
        nm, via, judged = stack.pop()
        entries = listing(nm, kind)
        if isinstance(entries, Finding):
            yield entries
            continue
        packages: list[tuple[str, os.DirEntry[str]]] = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                if name == ".pnpm" and judged and not entry.is_symlink():
                    stores: list[str] | None = [] if payloads is not None else None
                    yield from _scan_pnpm_store(entry.path, badset, kind, context, stores)
                    stack += [(folder, [], False) for folder in stores or ()]
                continue
            if entry.is_symlink():
                continue
            if name.startswith("@"):
                scoped = listing(entry.path, kind)
                if isinstance(scoped, Finding):
                    yield scoped
                    continue
                packages += [(f"{name}/{e.name}", e) for e in scoped if not e.is_symlink()]
            else:
                packages.append((name, entry))
        if judged and names:
            for package, pentry in packages:
                if package in names:
                    finding = _installed_finding(pentry.path, package, badset, kind, via, context)
                    if finding:
                        yield finding
        if payloads is None:
            yield from _nested_by_lstat(packages, via, judged, kind, stack)
        else:
            yield from _look_inside(packages, via, judged, kind, payloads, stack)


def _nested_by_lstat(
    packages: list[tuple[str, os.DirEntry[str]]],
    via: list[str],
    judged: bool,
    kind: str,
    stack: list[tuple[str, list[str], bool]],
) -> Iterator[Finding]:
    """Each package's own node_modules onto `stack`: one `lstat` per package (a symlinked
    node_modules is not a directory here)."""
    lstat = os.lstat
    for package, pentry in packages:
        nested = pentry.path + "/node_modules"
        try:
            if S_ISDIR(lstat(nested).st_mode):
                stack.append((nested, [*via, package], judged))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            yield _not_looked_into(pentry.path, package, exc, kind)


def _look_inside(
    packages: list[tuple[str, os.DirEntry[str]]],
    via: list[str],
    judged: bool,
    kind: str,
    payloads: PayloadFiles,
    stack: list[tuple[str, list[str], bool]],
) -> Iterator[Finding]:
    """One listing of each package's directory: its own node_modules onto `stack`, and the
    files named like a payload judged. Entry types come from the listing, never a `stat`."""
    files = payloads.names
    wanted = files | {"node_modules"}
    scandir = os.scandir
    for package, pentry in packages:
        try:
            if not pentry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        hits: list[os.DirEntry[str]] = []
        try:
            with scandir(pentry.path) as inside:
                for item in inside:
                    name = item.name
                    if name not in wanted:
                        continue
                    if name in files:
                        hits.append(item)
                    if name == "node_modules" and _is_dir(item):
                        stack.append((item.path, [*via, package], judged))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            yield _not_looked_into(pentry.path, package, exc, kind, payloads=True)
            continue
        for item in hits:
            yield from payloads.judge(item, package)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A directory, not a symlink to one, from the listing's entry type."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _not_looked_into(
    package_dir: str, package: str, exc: OSError, kind: str, *, payloads: bool = False
) -> Finding:
    """An `unknown` finding for a package directory the walk could not look into."""
    unchecked = "the packages installed under it" + (
        " and the payload files it may hold" if payloads else ""
    )
    return Finding(
        kind=kind,
        severity="unknown",
        path=package_dir,
        package=package,
        message=f"cannot look inside this package: {exc.strerror or exc}; {unchecked} "
        "were not checked",
    )


def scan_berry_cache(cache: Path, badset: BadSet, *, kind: str) -> Iterator[Finding]:
    """Yarn berry cache archives: `axios-npm-1.14.1-<hash>.zip`, scopes as `@scope-name`."""
    entries = listing(cache, kind)
    if isinstance(entries, Finding):
        yield entries
        return
    for entry in entries:
        if not entry.name.endswith(".zip"):
            continue
        match = BERRY_ARCHIVE.match(entry.name)
        if not match:
            continue
        version = match.group("version")
        for name in badset.flat_names(match.group("name")):
            if badset.is_bad(name, version):
                yield Finding(
                    kind=kind,
                    severity="compromised",
                    path=entry.path,
                    package=name,
                    version=version,
                    message=f"yarn cache holds {name}@{version}",
                )


def scan_yarn_dir(
    yarn_dir: Path, badset: BadSet, payloads: PayloadFiles | None = None
) -> Iterator[Finding]:
    """A project's `.yarn`: `cache/*.zip` and `unplugged/<archive-name>/node_modules/<pkg>`
    (with `payloads`, also the payload files in the unplugged packages)."""
    yield from scan_berry_cache(yarn_dir / "cache", badset, kind="installed")
    entries = listing(yarn_dir / "unplugged", "installed")
    if isinstance(entries, Finding):
        yield entries
        return
    for entry in entries:
        nested = Path(entry.path) / "node_modules"
        if not entry.is_symlink() and real_dir(nested):
            context = " (yarn unplugged)"
            at = payloads.at(context) if payloads is not None else None
            yield from scan_node_modules(nested, badset, context=context, payloads=at)


def real_dir(path: str | Path) -> bool:
    """Whether `path` is a directory and not a symlink to one (one `lstat`)."""
    try:
        return S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def scan_npm_aliases(nm: Path, hidden_lockfile: bytes, badset: BadSet) -> Iterator[Finding]:
    """Bad packages npm installed under another name (`"http-client": "npm:axios@1.14.1"`).

    Their directory does not carry the bad name, so the tree walk cannot see them; npm's hidden
    lockfile (`node_modules/.package-lock.json`) says where they are.
    """
    # npm gives an entry a "name" only when it differs from its folder: an alias (or a workspace);
    # text with escapes is decoded whatever it seems to say
    named = {m.decode("utf-8", "replace") for m in NAME_FIELD.findall(hidden_lockfile)}
    if named.isdisjoint(badset.names) and b"\\" not in hidden_lockfile:
        return
    try:
        doc = load_npm_lockfile(nm / ".package-lock.json", hidden_lockfile)
    except LockfileError:
        return  # reported by the lockfile scan
    packages = doc.get("packages")
    if not isinstance(packages, dict):
        return
    for key, entry in packages.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        alias = key.rpartition("node_modules/")[2]
        if not isinstance(name, str) or name not in badset.names or alias == name:
            continue
        package_dir = nm.parent / key
        if package_dir.is_dir() and not package_dir.is_symlink():
            context = f" under the alias '{alias}'"
            finding = _installed_finding(str(package_dir), name, badset, "installed", [], context)
            if finding:
                yield finding
