"""Real npm-ecosystem components for tests: a local verdaccio registry and the package managers.

Everything lives in `tests/registry/` and is installed by `make tools`
(`npm ci --ignore-scripts` from `tests/registry/package-lock.json`):

- verdaccio 6.8.0, started from a *copy* of the prebuilt `tests/registry/storage/` (the fake
  packages of `tests/registry/packages/`) on a free 127.0.0.1 port, with no uplinks: fully offline;
- yarn 1 (`yarn`), yarn berry (`@yarnpkg/cli-dist`), pnpm 10 and bun (the binary of the optional
  platform package `@oven/bun-<platform>`, usable without install scripts);
- npm is the one on PATH (npm 11).

Use `tool_env()` for every package-manager command: it builds an environment from a short allow-list
of the caller's variables and points HOME, every config file and every cache into a given directory,
so the machine user's `~/.npmrc` (which sets `omit-lockfile-registry-resolved=true`) and caches are
never read or written.

    with start_registry(tmp_path / "registry") as reg:
        env = tool_env(reg.url, tmp_path / "home")
        run_tool("npm", ["install", "--ignore-scripts", "axios@1.14.1"], cwd=proj, env=env)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REGISTRY_DIR = TESTS / "registry"
NODE_MODULES = REGISTRY_DIR / "node_modules"
CONFIG = REGISTRY_DIR / "config.yaml"
STORAGE = REGISTRY_DIR / "storage"
PACKAGES = REGISTRY_DIR / "packages"

#: The registry URL written into committed fixtures in place of the random test port.
FIXED_REGISTRY = "http://127.0.0.1:4873/"
#: The marker file the fake plain-crypto-js@4.2.1 postinstall writes.
MARKER_NAME = "plain-crypto-js-postinstall-ran"

TOOLS = ("npm", "yarn1", "berry", "pnpm", "bun", "verdaccio")

# Variables copied from the caller's environment; everything else is left out on purpose
# (CI=true would switch yarn berry and pnpm to frozen lockfiles, proxies would swallow loopback
# traffic, npm_config_* / YARN_* from the caller would leak their configuration in).
_PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "COMSPEC", "PATHEXT")


def _bun_binary() -> Path:
    machine = platform.machine().lower()
    cpu = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        machine, machine
    )
    system = {"linux": "linux", "darwin": "darwin", "windows": "windows"}.get(
        platform.system().lower(), platform.system().lower()
    )
    exe = "bun.exe" if system == "windows" else "bun"
    return NODE_MODULES / "@oven" / f"bun-{system}-{cpu}" / "bin" / exe


def tool_paths() -> dict[str, Path]:
    """Where each tool's entry point lives (JavaScript files run with node, bun a native binary)."""
    return {
        "verdaccio": NODE_MODULES / "verdaccio" / "bin" / "verdaccio",
        "yarn1": NODE_MODULES / "yarn" / "bin" / "yarn.js",
        "berry": NODE_MODULES / "@yarnpkg" / "cli-dist" / "bin" / "yarn.js",
        "pnpm": NODE_MODULES / "pnpm" / "bin" / "pnpm.cjs",
        "bun": _bun_binary(),
    }


def node() -> str | None:
    return shutil.which("node")


def tool_command(tool: str) -> list[str]:
    """The argv prefix that runs `tool` (one of TOOLS). Raises FileNotFoundError if missing."""
    if tool == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FileNotFoundError("npm is not on PATH")
        return [npm]
    path = tool_paths()[tool]
    if not path.exists():
        raise FileNotFoundError(f"{tool}: {path} missing; run `make tools`")
    if tool == "bun":
        return [str(path)]
    nodejs = node()
    if nodejs is None:
        raise FileNotFoundError("node is not on PATH")
    return [nodejs, str(path)]


def missing_tools(*tools: str) -> list[str]:
    """The subset of `tools` (default: all) that cannot be run here."""
    out = []
    for tool in tools or TOOLS:
        try:
            tool_command(tool)
        except FileNotFoundError:
            out.append(tool)
    return out


def require_tools(*tools: str) -> None:
    """Fail the calling test when a tool is missing: `make test` installs them (`make tools`)."""
    missing = missing_tools(*tools)
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (run `make tools`)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Registry:
    """A running verdaccio. Stop it with `stop()` or use it as a context manager."""

    url: str
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def packument(self, name: str) -> dict:
        """GET the registry document of package `name`."""
        quoted = name.replace("/", "%2f")
        with _open(self.url + quoted, timeout=10) as resp:
            return json.load(resp)

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _open(url: str, timeout: float):
    # No proxies: the registry is on loopback and the caller's proxy settings must not matter.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(url, timeout=timeout)


def start_registry(
    workdir: Path,
    *,
    storage: Path | None = STORAGE,
    port: int | None = None,
    timeout: float = 30,
) -> Registry:
    """Start verdaccio in `workdir` (created) from a copy of `storage` (None: empty storage).

    Returns once `GET /-/ping` answers. The prebuilt storage itself is never written to.
    """
    cmd = tool_command("verdaccio")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    shutil.copyfile(CONFIG, config)
    if storage is not None and storage.exists():
        shutil.copytree(storage, workdir / "storage")
    else:
        (workdir / "storage").mkdir()
    for attempt in range(3):
        chosen = port or free_port()
        url = f"http://127.0.0.1:{chosen}/"
        log = workdir / "verdaccio.log"
        log_file = log.open("ab")
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(HOME=str(workdir), NO_PROXY="*", no_proxy="*")
        proc = subprocess.Popen(
            [*cmd, "--config", str(config), "--listen", f"127.0.0.1:{chosen}"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        reg = Registry(url, chosen, workdir, proc, log, log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with _open(url + "-/ping", timeout=2) as resp:
                    if resp.status == 200:
                        return reg
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        reg.stop()
        if port is not None or attempt == 2:
            break  # a fixed port or repeated failure: report it
    raise RuntimeError(f"verdaccio did not start; log:\n{log.read_text(errors='replace')[-4000:]}")


def tool_env(
    registry_url: str,
    home: Path,
    *,
    marker_dir: Path | None = None,
    auth: bool = True,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for npm, yarn 1, yarn berry, pnpm and bun against `registry_url`.

    HOME, XDG dirs, the npm user/global config, the npm cache, the yarn 1 cache, yarn berry's global
    folder, the pnpm store and the bun cache all live in `home` (created). With `marker_dir`, the
    fake plain-crypto-js postinstall writes its marker there. `auth` adds an `_authToken` line for
    the registry to the private npmrc (verdaccio needs one for `npm publish`).
    """
    home.mkdir(parents=True, exist_ok=True)
    url = registry_url if registry_url.endswith("/") else registry_url + "/"
    hostpath = url.split("://", 1)[1]
    npmrc = home / ".npmrc"
    lines = [
        f"registry={url}",
        "fund=false",
        "audit=false",
        "update-notifier=false",
        "progress=false",
    ]
    if auth:
        lines.append(f"//{hostpath}:_authToken=runbook-test-token")
    npmrc.write_text("\n".join(lines) + "\n")
    globalrc = home / ".npmrc-global"
    globalrc.write_text("")
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        TMPDIR=str(_mk(home / "tmp")),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        NO_PROXY="*",
        no_proxy="*",
        # npm (and pnpm, bun, yarn 1, which read npm's config too)
        NPM_CONFIG_USERCONFIG=str(npmrc),
        NPM_CONFIG_GLOBALCONFIG=str(globalrc),
        NPM_CONFIG_REGISTRY=url,
        npm_config_cache=str(home / ".npm"),
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        # yarn 1
        YARN_CACHE_FOLDER=str(home / ".cache" / "yarn"),
        YARN_REGISTRY=url,
        YARN_DISABLE_SELF_UPDATE_CHECK="true",
        YARN_IGNORE_PATH="1",
        # yarn berry: the project's .yarnrc.yml carries npmRegistryServer / unsafeHttpWhitelist
        YARN_GLOBAL_FOLDER=str(home / ".yarn" / "berry"),
        YARN_ENABLE_TELEMETRY="0",
        YARN_ENABLE_INLINE_BUILDS="1",
        # pnpm
        PNPM_HOME=str(home / ".local" / "share" / "pnpm"),
        npm_config_store_dir=str(home / ".local" / "share" / "pnpm" / "store"),
        # bun
        BUN_INSTALL=str(home / ".bun"),
        BUN_INSTALL_CACHE_DIR=str(home / ".bun" / "install" / "cache"),
        BUN_CONFIG_REGISTRY=url,
        DO_NOT_TRACK="1",
        # never let corepack step in
        COREPACK_ENABLE_STRICT="0",
        COREPACK_ENABLE_AUTO_PIN="0",
        COREPACK_ENABLE_DOWNLOAD_PROMPT="0",
    )
    if marker_dir is not None:
        env["RUNBOOK_TEST_MARKER_DIR"] = str(marker_dir)
    if extra:
        env.update(extra)
    return env


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def berry_rc(registry_url: str, **settings: str) -> str:
    """The text of a `.yarnrc.yml` for yarn berry against the plain-HTTP loopback registry."""
    lines = [
        f'npmRegistryServer: "{registry_url.rstrip("/")}"',
        "unsafeHttpWhitelist:",
        '  - "127.0.0.1"',
        "enableTelemetry: false",
        "enableGlobalCache: false",
    ]
    lines += [f"{key}: {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def run_tool(
    tool: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `tool` (npm, yarn1, berry, pnpm, bun) with `args`; raise with its output if it fails."""
    run_env = dict(env)
    if tool == "berry":
        # YARN_CACHE_FOLDER / YARN_REGISTRY are yarn 1 settings; berry would take the first as its
        # cacheFolder and reject the second as an unknown setting.
        run_env.pop("YARN_CACHE_FOLDER", None)
        run_env.pop("YARN_REGISTRY", None)
        run_env.pop("YARN_DISABLE_SELF_UPDATE_CHECK", None)
        run_env.pop("YARN_IGNORE_PATH", None)
    else:
        for key in ("YARN_GLOBAL_FOLDER", "YARN_ENABLE_TELEMETRY", "YARN_ENABLE_INLINE_BUILDS"):
            run_env.pop(key, None)
    result = subprocess.run(
        [*tool_command(tool), *map(str, args)],
        cwd=cwd,
        env=run_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{tool} {' '.join(map(str, args))} failed ({result.returncode}) in {cwd}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def publish(package_dir: Path, env: Mapping[str, str], *, tag: str | None = None) -> None:
    """`npm publish` one package directory to the registry configured in `env`."""
    args = ["publish", "--ignore-scripts", "--access", "public"]
    args += ["--tag", tag] if tag else []
    run_tool("npm", args, cwd=package_dir, env=env)


def copy_project(source: Path, target: Path) -> Path:
    """Copy a committed fixture project (node_modules and symlinks included) to `target`."""
    shutil.copytree(source, target, symlinks=True)
    return target


YARN1_ONLY = (
    "YARN_CACHE_FOLDER",
    "YARN_REGISTRY",
    "YARN_DISABLE_SELF_UPDATE_CHECK",
    "YARN_IGNORE_PATH",
)
BERRY_ONLY = ("YARN_GLOBAL_FOLDER", "YARN_ENABLE_TELEMETRY", "YARN_ENABLE_INLINE_BUILDS")


def bin_dir(where: Path, *tools: str) -> Path:
    """A directory with `yarn` / `pnpm` / `npm` launchers for the test installs of the tools."""
    where.mkdir(parents=True, exist_ok=True)
    names = {"yarn1": "yarn", "berry": "yarn", "pnpm": "pnpm", "npm": "npm", "bun": "bun"}
    for tool in tools:
        script = where / names[tool]
        argv = " ".join(f'"{a}"' for a in tool_command(tool))
        script.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return where


def manager_env(
    tmp_path: Path, reg: Registry, tool: str, *, path_tools: tuple[str, ...] = ()
) -> dict:
    """The package-manager environment plus runbook's state dir; PATH has `tool`'s launcher."""
    env = tool_env(reg.url, tmp_path / "home", marker_dir=tmp_path / "markers")
    (tmp_path / "markers").mkdir(exist_ok=True)
    for key in YARN1_ONLY if tool == "berry" else BERRY_ONLY:
        env.pop(key, None)
    tools = path_tools or ((tool,) if tool != "npm" else ())
    if tools:
        env["PATH"] = f"{bin_dir(tmp_path / 'bin', *tools)}{os.pathsep}{env['PATH']}"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["RUNBOOK_OPERATOR"] = "test-operator"
    return env


def prepare_fixture(
    tmp_path: Path, fixture: str, reg: Registry, *, keep_tree: bool = False
) -> Path:
    """A copy of a committed fixture, pointed at this registry, its marker and tree removed."""
    project = copy_project(TESTS / "fixtures" / "projects" / fixture, tmp_path / "project")
    (project / MARKER_NAME).unlink(missing_ok=True)
    if not keep_tree:
        shutil.rmtree(project / "node_modules", ignore_errors=True)
    port = FIXED_REGISTRY.rstrip("/").rsplit(":", 1)[1]
    for name in ("package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", ".yarnrc.yml"):
        path = project / name
        if path.is_file():
            text = path.read_text()
            path.write_text(text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{reg.port}"))
    return project


# -- accounts and tokens (the registry's htpasswd auth: any name may sign up) -------------------
def _json_call(
    url: str, method: str, body: dict | None = None, token: str | None = None
) -> tuple[int, dict]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.strip() else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw.strip() else {}
        except ValueError:
            return exc.code, {}


def add_user(reg: Registry, name: str, password: str) -> str:
    """Create an account (`npm adduser`'s request); returns its login token."""
    status, answer = _json_call(
        f"{reg.url}-/user/org.couchdb.user:{name}",
        "PUT",
        {"name": name, "password": password, "email": f"{name}@example.test", "type": "user"},
    )
    if status != 201 or "token" not in answer:
        raise RuntimeError(f"cannot add user {name}: HTTP {status} {answer.get('error', '')}")
    return answer["token"]


def create_token(reg: Registry, auth_token: str, password: str, *, readonly: bool = False) -> dict:
    """`npm token create`'s request: returns the registry's answer (`token`, `key`, `user`...)."""
    status, answer = _json_call(
        f"{reg.url}-/npm/v1/tokens",
        "POST",
        {"password": password, "readonly": readonly, "cidr_whitelist": []},
        auth_token,
    )
    if status != 200 or "token" not in answer:
        raise RuntimeError(f"cannot create a token: HTTP {status} {answer.get('error', '')}")
    return answer


def whoami(reg: Registry, token: str) -> str | None:
    """The user a token authenticates as, or None when the registry refuses it."""
    status, answer = _json_call(f"{reg.url}-/whoami", "GET", token=token)
    return answer.get("username") if status == 200 else None


def token_keys(reg: Registry, token: str) -> list[str]:
    """The ids of every token of the account `token` belongs to."""
    status, answer = _json_call(f"{reg.url}-/npm/v1/tokens", "GET", token=token)
    if status != 200:
        raise RuntimeError(f"cannot list tokens: HTTP {status}")
    return [row["key"] for row in answer.get("objects", [])]
