"""`--host`: package-manager caches, global installs, editor extensions and the host indicators."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PureWindowsPath

from runbook.models import HostArtifact, Indicators
from runbook.step import Finding
from steps.npm.badset import BadSet, parse_name_version
from steps.scan.installed import scan_berry_cache, scan_node_modules

TARBALL_KEY = re.compile(
    r"/(?P<name>(?:@[^/]+/)?[^/]+)/-/(?:[^/]+)-(?P<version>\d+\.\d+\.\d+[^/]*?)\.tgz"
)
YARN_V1_DIR = re.compile(
    r"^npm-(?P<name>.+)-(?P<version>\d+\.\d+\.\d+[^-]*)-[0-9a-f]{40}(?:-integrity)?$"
)
# `axios@1.14.1@@@1`, or `axios@1.14.1@@registry.host__<hash>@@@1` for another registry
BUN_CACHE_DIR = re.compile(r"^(?P<name>@?[^@]+)@(?P<version>[^@]+)(?:@@[^@]+)?@@@\d+$")
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


def _npmrc_value(path: Path, key: str) -> str | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def npm_cache_dirs(home: Path, env: Mapping[str, str], live: bool) -> list[Path]:
    """`$npm_config_cache`, the npmrc `cache=`, or `~/.npm` (the env only counts when `live`)."""
    found = []
    if live:
        for key in ("npm_config_cache", "NPM_CONFIG_CACHE"):
            if env.get(key):
                found.append(Path(env[key]))
        userconfig = env.get("NPM_CONFIG_USERCONFIG") or env.get("npm_config_userconfig")
        npmrc = Path(userconfig) if userconfig else home / ".npmrc"
    else:
        npmrc = home / ".npmrc"
    configured = _npmrc_value(npmrc, "cache")
    if configured:
        found.append(Path(configured.replace("~", str(home), 1)))
    found.append(home / ".npm")
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _files_that_could_resolve(
    root: Path, badset: BadSet, wanted: Callable[[str, str], bool] = lambda d, f: True
) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the files under `root` whose bytes could record a bad resolution."""
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            if not wanted(dirpath, filename):
                continue
            path = os.path.join(dirpath, filename)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if badset.could_resolve(data):
                yield path, data


def scan_npm_cache(cache: Path, badset: BadSet) -> Iterator[Finding]:
    """`_cacache/index-v5` entries for bad tarballs (any registry host), and `_npx` installs."""
    for path, data in _files_that_could_resolve(cache / "_cacache" / "index-v5", badset):
        yield from _index_bucket(path, data, badset)
    npx = cache / "_npx"
    try:
        runs = list(os.scandir(npx))
    except OSError:
        runs = []
    for run in runs:
        nm = Path(run.path) / "node_modules"
        if nm.is_dir():
            yield from scan_node_modules(nm, badset, kind="cache", context=" (npx cache)")


def _index_bucket(path: str, data: bytes, badset: BadSet) -> Iterator[Finding]:
    latest: dict[str, tuple[int, dict]] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        _, _, body = raw.partition(b"\t")
        try:
            entry = json.loads(body)
        except ValueError:
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
    folder: Path, pattern: re.Pattern[str], badset: BadSet, what: str
) -> Iterator[Finding]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            continue
        name = match.group("name")
        if name.startswith("@") and "/" not in name:
            name = name.replace("-", "/", 1) if name not in badset.names else name
        version = match.group("version")
        if name in badset.names and badset.is_bad(name, version):
            yield Finding(
                kind="cache",
                severity="compromised",
                path=entry.path,
                package=name,
                version=version,
                message=f"{what} holds {name}@{version}",
            )


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


def scan_pnpm_store(store: Path, badset: BadSet) -> Iterator[Finding]:
    """pnpm's content-addressed store keeps one index JSON per package with its name and version."""

    def is_index(dirpath: str, filename: str) -> bool:
        return filename.endswith("-index.json") or "index" in dirpath.split(os.sep)[-2:]

    for path, data in _files_that_could_resolve(store, badset, is_index):
        try:
            meta = json.loads(data)
        except ValueError:
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
    home: Path, env: Mapping[str, str], badset: BadSet, live: bool
) -> Iterator[Finding]:
    for cache in npm_cache_dirs(home, env, live):
        yield from scan_npm_cache(cache, badset)
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
        yield from scan_pnpm_store(store, badset)
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
    prefix = _npmrc_value(home / ".npmrc", "prefix")
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
    home: Path, root: Path | None, env: Mapping[str, str], badset: BadSet
) -> Iterator[Finding]:
    for folder in global_dirs(home, root, env):
        if folder.is_dir():
            yield from scan_node_modules(folder, badset, kind="global", context=" globally")


def scan_editors(home: Path, badset: BadSet) -> Iterator[Finding]:
    for relative in EDITOR_DIRS:
        folder = home / relative
        try:
            extensions = list(os.scandir(folder))
        except OSError:
            continue
        for extension in extensions:
            nm = Path(extension.path) / "node_modules"
            if nm.is_dir():
                context = f" inside editor extension {extension.name}"
                yield from scan_node_modules(nm, badset, kind="installed", context=context)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    if path.is_symlink() or not path.is_file():
        return None
    try:
        digest = _sha256(path)
    except OSError as exc:
        return Finding(
            kind="ioc",
            severity="unknown",
            path=str(path),
            message=f"{artifact.path} exists but cannot be read: {exc.strerror}",
        )
    label = f"{artifact.path} ({os_name} indicator)"
    if artifact.same_as:
        refs = artifact_paths(HostArtifact(path=artifact.same_as), os_name, root, homes, env)
        ref = next((r for r in refs if r.is_file()), None)
        if ref is None:
            return Finding(
                kind="ioc",
                severity="unknown",
                path=str(path),
                message=f"{artifact.path} exists; cannot compare it with "
                f"{artifact.same_as} (not found): check it by hand",
            )
        if _sha256(ref) != digest:
            return None  # e.g. a genuine program that happens to share the name
        return Finding(
            kind="ioc",
            severity="compromised",
            path=str(path),
            message=f"{label} is a copy of {artifact.same_as} (sha256 {digest[:12]})",
        )
    if artifact.sha256:
        if digest in artifact.sha256:
            return Finding(
                kind="ioc",
                severity="compromised",
                path=str(path),
                message=f"{label}: sha256 matches the known sample ({digest[:12]})",
            )
        return None  # same name, different file: not the indicator
    severity = "compromised" if artifact.confidence == "high" else "at-risk"
    return Finding(
        kind="ioc",
        severity=severity,
        path=str(path),
        message=f"{label} is present ({artifact.confidence} confidence)",
    )
