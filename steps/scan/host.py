"""`--host`: package-manager caches, global installs, editor extensions and the host indicators."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PureWindowsPath

from runbook.models import HostArtifact, Indicators, Severity
from runbook.safeio import (
    MANIFEST_LIMIT,
    SMALL_FILE_LIMIT,
    MiB,
    is_regular,
    sha256_regular,
    within,
)
from runbook.step import Finding
from runbook.termsafe import printable
from steps.npm.badset import BadSet, parse_name_version
from steps.scan.installed import listing, real_dir, scan_berry_cache, scan_node_modules
from steps.scan.payloads import PayloadFiles
from steps.scan.reading import not_regular, read_file, unreadable, why_unreadable

TARBALL_KEY = re.compile(
    r"/(?P<name>(?:@[^/]+/)?[^/]+)/-/(?:[^/]+)-(?P<version>\d+\.\d+\.\d+[^/]*?)\.tgz"
)
YARN_V1_DIR = re.compile(
    r"^npm-(?P<name>.+)-(?P<version>\d+\.\d+\.\d+[^-]*)-[0-9a-f]{40}(?:-integrity)?$"
)
# `axios@1.14.1@@@1`, or `axios@1.14.1@@registry.host__<hash>@@@1` for another registry
BUN_CACHE_DIR = re.compile(r"^(?P<name>@?[^@]+)@(?P<version>[^@]+)(?:@@[^@]+)?@@@\d+$")
# What the malware drops or copies (a script, a RAT, powershell.exe) is a few MiB at most.
INDICATOR_LIMIT = 256 * MiB
EDITOR_DIRS = (
    ".vscode/extensions",
    ".vscode-server/extensions",
    ".vscode-insiders/extensions",
    ".cursor/extensions",
    ".cursor-server/extensions",
    ".windsurf/extensions",
)


def home_dirs(root: Path | None, env: Mapping[str, str]) -> list[Path]:
    """The home directories to look in: `$HOME`, or every home under a mounted root."""
    if root is None:
        return [Path(env.get("HOME") or Path.home())]
    homes = []
    for parent in ("home", "Users"):
        try:
            homes += sorted(
                p for p in (root / parent).iterdir() if p.is_dir() and not p.is_symlink()
            )
        except OSError:
            continue
    root_home = root / "root"
    if root_home.is_dir():
        homes.append(root_home)
    return homes


def _npmrc_value(path: Path, key: str, *, follow_symlinks: bool = True) -> str | None:
    """`key=` in an npmrc (regular file, bounded; dotfile managers symlink it, so a live scan
    follows that link; a mounted disk's links point into the wrong machine and are not followed)."""
    try:
        text = read_file(path, limit=SMALL_FILE_LIMIT, follow_symlinks=follow_symlinks)
    except OSError:
        return None
    lines = text.decode("utf-8", "replace").splitlines()
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def _npmrc_path(home: Path, env: Mapping[str, str], live: bool) -> Path:
    userconfig = env.get("NPM_CONFIG_USERCONFIG") or env.get("npm_config_userconfig")
    return Path(userconfig) if live and userconfig else home / ".npmrc"


def npm_cache_dirs(home: Path, env: Mapping[str, str], live: bool) -> list[Path]:
    """`$npm_config_cache`, the npmrc `cache=`, or `~/.npm` (the env only counts when `live`)."""
    found = []
    if live:
        for key in ("npm_config_cache", "NPM_CONFIG_CACHE"):
            if env.get(key):
                found.append(Path(env[key]))
    npmrc = _npmrc_path(home, env, live)
    configured = _npmrc_value(npmrc, "cache", follow_symlinks=live)
    if configured:
        found.append(Path(configured.replace("~", str(home), 1)))
    found.append(home / ".npm")
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _files_that_could_resolve(
    root: Path,
    badset: BadSet,
    wanted: Callable[[str, str], bool] = lambda d, f: True,
) -> Iterator[tuple[str, bytes] | Finding]:
    """(path, bytes) of the files under `root` whose bytes could record a bad resolution, and an
    `unknown` finding for each wanted file or folder that could not be read (a FIFO, a symlink,
    a file over the size limit, a folder without permission)."""
    stack = [str(root)]
    while stack:  # os.walk without its `lstat` per folder: the entry types say what is a folder
        dirpath = stack.pop()
        try:
            with os.scandir(dirpath) as listed:
                entries = list(listed)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # no such cache: nothing to check
                yield Finding(
                    kind="cache",
                    severity="unknown",
                    path=dirpath,
                    message=f"cannot list this directory: {exc.strerror or exc}; "
                    "nothing under it was checked",
                )
            continue
        for entry in entries:
            try:
                folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                folder = False
            if folder:
                stack.append(entry.path)
                continue
            if not wanted(dirpath, entry.name):
                continue
            path = entry.path  # a symlink or a FIFO is refused by read_file: `unknown`
            try:
                data = read_file(path, limit=MANIFEST_LIMIT)
            except FileNotFoundError:
                continue  # removed while the cache was read
            except OSError as exc:
                yield unreadable("cache", path, exc, "this cache file")
                continue
            if badset.could_resolve(data):
                yield path, data


def scan_npm_cache(
    cache: Path, badset: BadSet, payloads: PayloadFiles | None = None
) -> Iterator[Finding]:
    """`_cacache/index-v5` entries for bad tarballs (any registry host), and `_npx` installs
    (with `payloads`, also the payload files in them: npx ran their install scripts)."""
    for item in _files_that_could_resolve(cache / "_cacache" / "index-v5", badset):
        if isinstance(item, Finding):
            yield item
        else:
            yield from _index_bucket(*item, badset)
    runs = listing(cache / "_npx", "cache")
    if isinstance(runs, Finding):
        yield runs
        return
    for run in runs:
        nm = Path(run.path) / "node_modules"
        if not run.is_symlink() and real_dir(nm):
            context = " (npx cache)"
            at = payloads.at(context) if payloads is not None else None
            yield from scan_node_modules(nm, badset, kind="cache", context=context, payloads=at)


def _index_bucket(path: str, data: bytes, badset: BadSet) -> Iterator[Finding]:
    latest: dict[str, tuple[int, dict]] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        _, _, body = raw.partition(b"\t")
        try:
            entry = json.loads(body)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            latest[entry["key"]] = (number, entry)
    for key, (number, entry) in latest.items():
        if entry.get("integrity") is None:
            continue  # `npm cache clean <key>` appends a deletion marker
        name, version = _tarball_of(key)
        if name and badset.is_bad(name, version):
            yield Finding(
                kind="cache",
                severity="compromised",
                path=path,
                line=number,
                package=name,
                version=version,
                message=f"npm cache holds {name}@{version} ({key})",
            )


def _tarball_of(key: str) -> tuple[str, str]:
    if key.startswith("pacote:tarball:"):
        spec = key.removeprefix("pacote:tarball:")
        if spec.startswith(("http:", "https:")):
            key = spec
        else:
            return parse_name_version(spec)
    match = TARBALL_KEY.search(key)
    if match:
        return match.group("name"), match.group("version")
    return "", ""


def _scan_named_dirs(
    folder: Path, pattern: re.Pattern[str], badset: BadSet, what: str, scope: str = ""
) -> Iterator[Finding]:
    """Cache folders named `name@version…` (bun) or `npm-name-version-…` (yarn 1). yarn 1 writes a
    scoped name flat (`npm-@scope-name-…`); bun puts scoped packages in a folder of their scope
    (`@scope/name@version@@@1`), listed here as `scope`."""
    entries = listing(folder, "cache")
    if isinstance(entries, Finding):
        yield entries
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            if not scope and _scope_folder(entry):
                yield from _scan_named_dirs(Path(entry.path), pattern, badset, what, entry.name)
            continue
        version = match.group("version")
        found = f"{scope}/{match.group('name')}" if scope else match.group("name")
        for name in badset.flat_names(found):  # `@scope-name`: `@scope/name`
            if badset.is_bad(name, version):
                yield Finding(
                    kind="cache",
                    severity="compromised",
                    path=entry.path,
                    package=name,
                    version=version,
                    message=f"{what} holds {name}@{version}",
                )


def _scope_folder(entry: os.DirEntry[str]) -> bool:
    """`@scope`: a real directory (not a link) named like an npm scope."""
    name = entry.name
    return name.startswith("@") and "@" not in name[1:] and entry.is_dir(follow_symlinks=False)


def _pnpm_stores(home: Path, env: Mapping[str, str], live: bool) -> list[Path]:
    stores = [
        home / ".local/share/pnpm/store",
        home / "Library/pnpm/store",
        home / "AppData/Local/pnpm/store",
        home / ".pnpm-store",
    ]
    if live and env.get("PNPM_HOME"):
        stores.append(Path(env["PNPM_HOME"]) / "store")
    return stores


def scan_pnpm_store(store: Path, badset: BadSet, *, unknown: bool = False) -> Iterator[Finding]:
    """pnpm's content-addressed store keeps one index JSON per package with its name and version.

    Bad packages only, unless `unknown`: then also what could not be read.
    """
    return _only_bad(_pnpm_store(store, badset), unknown)


def _only_bad(findings: Iterable[Finding], unknown: bool) -> Iterator[Finding]:
    return (f for f in findings if unknown or f.severity != "unknown")


def _pnpm_store(store: Path, badset: BadSet) -> Iterator[Finding]:

    def is_index(dirpath: str, filename: str) -> bool:
        return filename.endswith("-index.json") or "index" in dirpath.split(os.sep)[-2:]

    for item in _files_that_could_resolve(store, badset, is_index):
        if isinstance(item, Finding):
            yield item
            continue
        path, data = item
        try:
            meta = json.loads(data)
        except (ValueError, RecursionError) as exc:
            yield Finding(
                kind="cache",
                severity="unknown",
                path=path,
                message=f"cannot parse this pnpm store index (it mentions a bad version): {exc}",
            )
            continue
        if not isinstance(meta, dict):
            continue
        name, version = meta.get("name"), meta.get("version")
        if isinstance(name, str) and isinstance(version, str) and badset.is_bad(name, version):
            yield Finding(
                kind="cache",
                severity="compromised",
                path=path,
                package=name,
                version=version,
                message=f"pnpm store holds {name}@{version}",
            )


def scan_caches(
    home: Path,
    env: Mapping[str, str],
    badset: BadSet,
    live: bool,
    *,
    unknown: bool = False,
    payloads: PayloadFiles | None = None,
) -> Iterator[Finding]:
    """Bad packages in every package-manager cache of `home`; with `unknown`, also an `unknown`
    finding for each cache file or folder that could not be read (the scan's verdict needs them;
    a step that only counts bad packages does not); with `payloads`, payload files in npx's
    installs."""
    return _only_bad(_caches(home, env, badset, live, payloads), unknown)


def _caches(
    home: Path, env: Mapping[str, str], badset: BadSet, live: bool, payloads: PayloadFiles | None
) -> Iterator[Finding]:
    npmrc = _npmrc_path(home, env, live)
    try:
        read_file(npmrc, limit=SMALL_FILE_LIMIT, follow_symlinks=live)
    except FileNotFoundError:
        pass
    except OSError as exc:
        finding = unreadable("cache", npmrc, exc, ".npmrc")
        finding.message += "; a cache or prefix it sets was not looked at"
        yield finding
    for cache in npm_cache_dirs(home, env, live):
        yield from scan_npm_cache(cache, badset, payloads)
    yarn_v1 = [
        home / ".cache/yarn/v6",
        home / "Library/Caches/Yarn/v6",
        home / "AppData/Local/Yarn/Cache/v6",
    ]
    if live and env.get("YARN_CACHE_FOLDER"):  # yarn 1 keeps its v6 layout inside it
        folder = Path(env["YARN_CACHE_FOLDER"])
        yarn_v1[:0] = [folder / "v6", folder]
    for folder in yarn_v1:
        yield from _scan_named_dirs(folder, YARN_V1_DIR, badset, "yarn cache")
    yield from scan_berry_cache(home / ".yarn/berry/cache", badset, kind="cache")
    for store in _pnpm_stores(home, env, live):
        yield from _pnpm_store(store, badset)
    bun = [home / ".bun/install/cache"]
    if live and env.get("BUN_INSTALL_CACHE_DIR"):
        bun.insert(0, Path(env["BUN_INSTALL_CACHE_DIR"]))
    for folder in bun:
        yield from _scan_named_dirs(folder, BUN_CACHE_DIR, badset, "bun cache")


def global_dirs(home: Path, root: Path | None, env: Mapping[str, str]) -> list[Path]:
    """Where global installs live: the npm prefix, nvm, volta and fnm."""
    base = root or Path("/")
    dirs = [
        base / "usr/local/lib/node_modules",
        base / "usr/lib/node_modules",
        base / "opt/homebrew/lib/node_modules",
    ]
    prefix = _npmrc_value(home / ".npmrc", "prefix", follow_symlinks=root is None)
    if root is None and env.get("NPM_CONFIG_PREFIX"):
        prefix = env["NPM_CONFIG_PREFIX"]
    if prefix:
        prefix_path = Path(prefix.replace("~", str(home), 1))
        if root is not None:
            prefix_path = root / prefix_path.relative_to(prefix_path.anchor)
        dirs.append(prefix_path / "lib/node_modules")
    for pattern in (
        ".nvm/versions/node/*/lib/node_modules",
        ".volta/tools/image/packages/*/lib/node_modules",
        ".volta/tools/image/node/*/lib/node_modules",
        ".local/share/fnm/node-versions/*/installation/lib/node_modules",
        ".fnm/node-versions/*/installation/lib/node_modules",
        "AppData/Roaming/npm/node_modules",
    ):
        dirs += sorted(home.glob(pattern))
    return dirs


def scan_globals(
    home: Path,
    root: Path | None,
    env: Mapping[str, str],
    badset: BadSet,
    payloads: PayloadFiles | None = None,
) -> Iterator[Finding]:
    """Bad packages (and with `payloads`, payload files) in the global install folders."""
    at = payloads.at(" (installed globally)") if payloads is not None else None
    for folder in global_dirs(home, root, env):
        # the live prefix may be a link (a version manager's); a mounted disk's must stay on it
        if folder.is_dir() and (root is None or within(folder, root)):
            yield from scan_node_modules(
                folder, badset, kind="global", context=" globally", payloads=at
            )


def scan_editors(
    home: Path, badset: BadSet, payloads: PayloadFiles | None = None
) -> Iterator[Finding]:
    """Bad packages (and with `payloads`, payload files) inside editor extensions."""
    for relative in EDITOR_DIRS:
        extensions = listing(home / relative, "installed")
        if isinstance(extensions, Finding):
            yield extensions
            continue
        for extension in extensions:
            nm = Path(extension.path) / "node_modules"
            if not extension.is_symlink() and real_dir(nm):
                context = f" inside editor extension {extension.name}"
                at = payloads.at(f" ({context.strip()})") if payloads is not None else None
                yield from scan_node_modules(
                    nm, badset, kind="installed", context=context, payloads=at
                )


# -- host indicators -----------------------------------------------------------------------------
WINDOWS_VARS = {
    "PROGRAMDATA": "ProgramData",
    "WINDIR": "Windows",
    "SYSTEMROOT": "Windows",
    "PROGRAMFILES": "Program Files",
}
USER_VARS = {
    "TEMP": "AppData/Local/Temp",
    "TMP": "AppData/Local/Temp",
    "LOCALAPPDATA": "AppData/Local",
    "APPDATA": "AppData/Roaming",
    "USERPROFILE": "",
}


def current_os() -> str:
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")


def artifact_paths(
    artifact: HostArtifact,
    os_name: str,
    root: Path | None,
    homes: list[Path],
    env: Mapping[str, str],
) -> list[Path]:
    """Concrete places an indicator path may be, under `root` when one is given."""
    raw = artifact.path
    if os_name != "windows":
        path = Path(raw.replace("~", "$HOME", 1)) if raw.startswith("~") else Path(raw)
        if "$HOME" in str(path):
            return [Path(str(path).replace("$HOME", str(h))) for h in homes]
        return [root / path.relative_to("/")] if root else [path]
    return _windows_paths(raw, root, homes, env)


def _windows_paths(
    raw: str, root: Path | None, homes: list[Path], env: Mapping[str, str]
) -> list[Path]:
    match = re.match(r"^%(\w+)%(.*)$", raw)
    if not match:
        relative = PureWindowsPath(raw)
        parts = relative.parts[1:] if relative.drive else relative.parts
        return [Path(root or "/", *parts)] if root else [Path(raw)]
    var, rest = match.group(1).upper(), PureWindowsPath(match.group(2).lstrip("\\/")).parts
    if root is None:
        value = env.get(var)
        return [Path(value, *rest)] if value else []
    if var in WINDOWS_VARS:
        return [root.joinpath(WINDOWS_VARS[var], *rest)]
    if var in USER_VARS:
        return [home.joinpath(USER_VARS[var], *rest) for home in homes]
    return []


def scan_indicators(
    indicators: Indicators, root: Path | None, homes: list[Path], env: Mapping[str, str]
) -> Iterator[Finding]:
    """The playbook's host files for the running OS (every OS under a mounted root)."""
    systems = ("macos", "linux", "windows") if root else (current_os(),)
    for os_name in systems:
        for artifact in getattr(indicators.host_files, os_name):
            if artifact.type != "file":
                continue
            for path in artifact_paths(artifact, os_name, root, homes, env):
                finding = _check_artifact(artifact, path, os_name, root, homes, env)
                if finding:
                    yield finding


def _check_artifact(
    artifact: HostArtifact,
    path: Path,
    os_name: str,
    root: Path | None,
    homes: list[Path],
    env: Mapping[str, str],
) -> Finding | None:
    """Whether an indicator is at `path`. Something there that is not a regular file (a FIFO, a
    symlink, a device) is never opened: where only presence matters it is `at-risk` (nothing
    belongs at that path), where a hash decides it is `unknown` (it cannot be compared)."""
    label = f"{artifact.path} ({os_name} indicator)"

    def ioc(severity: Severity, message: str) -> Finding:
        return Finding(kind="ioc", severity=severity, path=str(path), message=message)

    if root is not None and not within(path.parent, root):
        if os.path.lexists(path):
            return ioc(
                "unknown",
                f"cannot check {label}: a folder on its path is a symlink "
                f"that leads out of {printable(root)}; not followed: check it by hand",
            )
        return None
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return ioc("unknown", f"cannot check {label}: {exc.strerror or exc}")
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        what = not_regular(path)
        if artifact.same_as or artifact.sha256:
            return ioc(
                "unknown",
                f"{label}: something is there but {what}, so it cannot be "
                "compared with the known file: check it by hand",
            )
        return ioc("at-risk", f"{label}: something is there but {what}; not read: check it by hand")
    if not (artifact.same_as or artifact.sha256):  # the path alone is the indicator
        severity = "compromised" if artifact.confidence == "high" else "at-risk"
        return ioc(severity, f"{label} is present ({artifact.confidence} confidence)")
    ref = None
    if artifact.same_as:
        refs = artifact_paths(HostArtifact(path=artifact.same_as), os_name, root, homes, env)
        ref = next((r for r in refs if is_regular(r)), None)
        if ref is None:
            return ioc(
                "unknown",
                f"{artifact.path} exists; cannot compare it with "
                f"{artifact.same_as} (not found): check it by hand",
            )
        try:
            if os.lstat(ref).st_size != st.st_size:
                return None  # not a copy, whatever its size (nothing to read)
        except OSError:
            pass  # gone since: hashing it says why
    try:
        digest = sha256_regular(path, limit=INDICATOR_LIMIT)
    except OSError as exc:
        return ioc("unknown", f"{label} exists but cannot be read: {why_unreadable(path, exc)}")
    if ref is not None:
        try:
            same = sha256_regular(ref, limit=INDICATOR_LIMIT) == digest
        except OSError as exc:
            return ioc(
                "unknown",
                f"{artifact.path} exists; cannot compare it with "
                f"{artifact.same_as}: {why_unreadable(ref, exc)}: check it by hand",
            )
        if not same:
            return None  # e.g. a genuine program that happens to share the name
        return ioc("compromised", f"{label} is a copy of {artifact.same_as} (sha256 {digest[:12]})")
    if digest in artifact.sha256:
        return ioc("compromised", f"{label}: sha256 matches the known sample ({digest[:12]})")
    return None  # same name, different file: not the indicator
