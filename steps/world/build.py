"""Building a world under a sandbox directory, and the `BuiltWorld` a drill runs in.

Layout (everything inside the sandbox):

    root/                      the simulated host root (host_sweep's and detect's `root`)
      home/USER/               HOME (Users/USER on macOS): credentials, caches, ~/.gitconfig
        src/PROJECT/           a laptop's projects   (CI: work/PROJECT/PROJECT)
      tmp/                     the host's /tmp (TMPDIR; the Linux loader's ld.py)
      etc/npmrc                npm's global config (empty)
    services/                  the stand-ins' state and logs (outside the players' machine)

Projects come from bundled templates (see `templates.py`), copied and adjusted, never
installed; git histories are two commits with fixed authors and dates, so the same (world,
variant, seed) gives the same tree, commit ids included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps.world import templates
from steps.world.aws import ACCOUNT, MotoService, initial_state
from steps.world.creds import Draw, Placed, place_all
from steps.world.environment import HOST_ROOT_ENV, world_env
from steps.world.errors import EvidenceRefused, WorldError
from steps.world.evidence import write_confined
from steps.world.model import ProjectSpec, WorldSpec, loader_ran, scripts_of
from steps.world.registry import StandInRegistry, account, token_key, token_row

__all__ = ["BuiltWorld", "EvidenceRefused", "WorldError", "build_world"]

INSTALL_TIME = datetime(2026, 3, 31, 1, 12, tzinfo=UTC).timestamp()  # inside the window
CREDENTIALS_TIME = datetime(2026, 1, 15, 9, 0, tzinfo=UTC).timestamp()
FIRST_COMMIT = "2026-02-10T09:30:00+00:00"
INSTALL_COMMIT = "2026-03-31T01:14:00+00:00"
TOKENS_CREATED = "2026-01-15T09:00:00.000Z"
OURS = ("root", "services")
PORTS = (21000, 29000)  # below Linux's ephemeral range, where outgoing connections take theirs
PORT_TRIES = 20
MARKER = "plain-crypto-js-postinstall-ran"  # what the fake loader writes into the project
LOADER_TEXT = {
    "linux": (
        "tmp/ld.py",
        b"# HARMLESS runbook exercise stand-in for the Linux second stage /tmp/ld.py.\n"
        b"# Its presence (not its content) is the indicator; it does nothing.\n",
    ),
    "macos": (
        "Library/Caches/com.apple.act.mond",
        b"\xcf\xfa\xed\xfe"  # Mach-O magic, then text: not executable
        b" HARMLESS runbook exercise stand-in for the macOS RAT; it does nothing.\n",
    ),
}


@dataclass
class BuiltWorld:
    """A built world; start its services before running a playbook in it."""

    sandbox: Path
    home: Path
    root: Path
    targets: list[Path]
    env: dict[str, str]
    run_options: dict[str, Any]
    ground_truth: dict[str, Any]
    missing_tools: list[str]
    notes: list[str]
    npm_password: str = field(default="", repr=False)  # the world's npm account (the players')
    registry: StandInRegistry | None = field(default=None, repr=False)
    aws: MotoService | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    # -- services ----------------------------------------------------------------------------
    def start_services(self) -> None:
        """The npm registry stand-in (in this process) and moto (its own process), on the
        ports the build reserved; returns once both answer."""
        started = time.monotonic()
        try:
            if self.registry is not None:
                self.registry.start()
            if self.aws is not None:
                self.aws.start()
        except (OSError, RuntimeError) as exc:
            self.stop_services()
            raise WorldError(f"the world's services did not start: {exc}") from exc
        self.timings["services"] = time.monotonic() - started

    def stop_services(self) -> None:
        """Stop both (moto writes its state back first); idempotent."""
        if self.aws is not None:
            self.aws.stop()
        if self.registry is not None:
            self.registry.stop()

    def __enter__(self) -> BuiltWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_services()

    def services_state(self) -> dict[str, Any]:
        """URLs, ports and processes of the stand-ins (for the journal)."""
        out: dict[str, Any] = {}
        if self.registry is not None:
            out["npm_registry"] = {
                "url": self.registry.url,
                "port": self.registry.port,
                "pid": os.getpid(),
                "in_process": True,
                "running": self.registry.running,
                "log": str(self.registry.log_path),
            }
        if self.aws is not None:
            out["aws"] = {
                "url": self.aws.url,
                "port": self.aws.port,
                "pid": self.aws.pid,
                "in_process": False,
                "running": self.aws.running,
                "services": ["iam", "sts"],
                "log": str(self.aws.log),
            }
        return out

    # -- injects -----------------------------------------------------------------------------
    def write_evidence(self, relpath: str, content: str | bytes, *, where: str = "home") -> Path:
        """Put an inject's evidence at `relpath` under HOME, the host root or a target
        (`target`, the first, or `target:NAME`). Refuses absolute paths, `..`, and any
        symlink on the way or at the end: nothing is written outside the world."""
        return write_confined(self._evidence_base(where), relpath, content)

    def _evidence_base(self, where: str) -> Path:
        if where == "home":
            return self.home
        if where == "root":
            return self.root
        if where == "target":
            return self.targets[0]
        if where.startswith("target:"):
            name = where.split(":", 1)[1]
            for target in self.targets:
                if target.name == name:
                    return target
            raise EvidenceRefused(f"evidence: no target named {name!r}")
        raise EvidenceRefused(
            f"evidence: `where` is home, root, target or target:NAME, not {where!r}"
        )


# -- building -----------------------------------------------------------------------------------
def derive_rng(world: WorldSpec, variant: str, seed: int) -> random.Random:
    text = json.dumps([seed, variant, world.model_dump(mode="json")], sort_keys=True)
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest(), "big"))


def build_world(world: WorldSpec, variant: str, seed: int, sandbox: Path) -> BuiltWorld:
    """Create `world` under `sandbox` (an existing directory without `root/` or `services/`)."""
    started = time.monotonic()
    sandbox = Path(os.path.realpath(sandbox))
    if not sandbox.is_dir():
        raise WorldError(f"the sandbox {sandbox} is not a directory")
    taken = [name for name in OURS if os.path.lexists(sandbox / name)]
    if taken:
        raise WorldError(
            f"the sandbox {sandbox} already holds {', '.join(taken)}: give an empty one"
        )
    draw = Draw(derive_rng(world, variant, seed))
    root = sandbox / "root"
    home = root / ("Users" if world.os == "macos" else "home") / world.user
    services = sandbox / "services"
    for path in (
        home / ".config",
        home / ".local" / "state",
        home / ".local" / "share",
        home / ".cache",
        root / "tmp",
        root / "etc",
        services,
    ):
        path.mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    registry, aws = _services(services, draw)
    try:
        built = _build(world, variant, seed, sandbox, root, home, services, draw, registry, aws)
    except BaseException:
        registry.stop()
        aws.stop()
        raise
    built.timings["build"] = time.monotonic() - started
    return built


def _services(services: Path, draw: Draw) -> tuple[StandInRegistry, MotoService]:
    """The stand-ins, their ports bound now. The ports come from the seed (the registry's is
    written into lockfiles and git history, so the same seed gives the same commits); when
    those are taken, others nearby, and at last any free ones."""
    base = PORTS[0] + 2 * draw.rng.randrange((PORTS[1] - PORTS[0]) // 2)
    candidates = [base + 2 * i for i in range(PORT_TRIES)] + [0]
    for port in candidates:
        try:
            registry = StandInRegistry(
                templates.registry_dir(),
                services / "registry.json",
                services / "registry.log",
                port=port,
            )
        except OSError:
            continue
        try:
            return registry, MotoService(services / "aws.json", services, port and port + 1)
        except OSError:
            registry.stop()
    raise WorldError("no free port on 127.0.0.1 for the world's stand-in services")


def _project_dir(world: WorldSpec, home: Path, project: ProjectSpec) -> Path:
    if world.machine == "ci":
        return home / "work" / project.name / project.name
    return home / "src" / project.name


def _build(
    world: WorldSpec,
    variant: str,
    seed: int,
    sandbox: Path,
    root: Path,
    home: Path,
    services: Path,
    draw: Draw,
    registry: StandInRegistry,
    aws: MotoService,
) -> BuiltWorld:
    hostport = registry.url.split("://", 1)[1].rstrip("/")
    path_env = os.environ.get("PATH", os.defpath)
    missing, runnable = _tools(world, path_env)
    notes: list[str] = []
    identity = _identity(world)
    _write(
        home / ".gitconfig",
        f"[user]\n\tname = {identity[0]}\n\temail = {identity[1]}\n"
        "[init]\n\tdefaultBranch = main\n",
        mtime=CREDENTIALS_TIME,
    )
    _write(root / "etc" / "npmrc", "", mtime=CREDENTIALS_TIME)
    dirs = {p.name: _project_dir(world, home, p) for p in world.projects}
    git_env: dict[str, str] | None = _git_env(home, path_env)
    if any(p.git for p in world.projects) and not shutil.which("git", path=path_env):
        missing.append("git")
        notes.append("git is not installed here: the projects have no history")
        git_env = None
    truths = []
    for project in world.projects:
        truths.append(
            _project(world, project, dirs[project.name], home, hostport, services, git_env)
        )
    caches = world.caches
    if caches is None:
        caches = sorted({p.manager for p in world.projects if p.installed})
    for manager in caches:
        row = templates.manifest()["caches"][manager]
        templates.unpack(row["archive"], home, mtime=INSTALL_TIME)
        templates.rewrite(home, row["rewrite"], {templates.placeholders()["home"]: str(home)})
    artifacts = []
    if loader_ran(world):
        rel, data = LOADER_TEXT[world.os]
        _write(root / rel, data, mtime=INSTALL_TIME + 4)
        artifacts.append("/" + rel)
    placed = place_all(world, draw, home, dirs, registry.url)
    for path, text in placed.files.items():
        _write(path, text, mtime=CREDENTIALS_TIME, mode=0o600)
    if (home / ".ssh").is_dir():
        (home / ".ssh").chmod(0o700)
    password = _npm_account(world, draw, registry, placed)
    (services / "aws.json").write_text(
        json.dumps(initial_state(placed.iam_keys), indent=2, sort_keys=True) + "\n"
    )
    (services / "aws.json").chmod(0o600)
    targets = [dirs[p.name] for p in world.projects if p.name in runnable] or list(dirs.values())
    for tool in (t for t in missing if t != "git"):
        notes.append(
            f"{tool} is not installed here: the projects that need it are in the world "
            "(host scans find them) but are not offered as targets"
        )
    env = world_env(world, root, home, registry.url, aws.url, path_env, placed.env, targets)
    truth = _truth(world, variant, seed, root, home, truths, placed, caches, artifacts, missing)
    truth["services"] = {
        "npm_registry": {"user": world.user, "tokens": len(placed.npm_tokens)},
        "aws": {"account": ACCOUNT, "users": sorted(placed.iam_keys)},
    }
    notes.append(
        f"host checks must look at the simulated root {root} (host_sweep and detect `root`): "
        f"the bundled playbook sweeps the real machine unless told ({HOST_ROOT_ENV} is set for "
        "when the steps read it)"
    )
    return BuiltWorld(
        sandbox=sandbox,
        home=home,
        root=root,
        targets=targets,
        env=env,
        run_options={"aws_endpoint_url": aws.url, "allow_insecure_keyring": True},
        ground_truth=truth,
        missing_tools=missing,
        notes=notes,
        npm_password=password,
        registry=registry,
        aws=aws,
    )


def _tools(world: WorldSpec, path: str) -> tuple[list[str], set[str]]:
    """(missing tools, names of the projects whose tools are all here)."""
    missing: list[str] = []
    runnable = set()
    node = shutil.which("node", path=path)
    for project in world.projects:
        need = [templates.BINARY[project.manager]]
        if project.manager in templates.NEEDS_NODE:
            need.append("node")
        absent = [
            t for t in need if (node is None if t == "node" else not shutil.which(t, path=path))
        ]
        for tool in absent:
            name = project.manager if tool != "node" else "node"
            if name not in missing:
                missing.append(name)
        if not absent:
            runnable.add(project.name)
    return missing, runnable


def _identity(world: WorldSpec) -> tuple[str, str]:
    if world.machine == "ci":
        return ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
    return (world.user.capitalize(), f"{world.user}@example.test")


def _git_env(home: Path, path: str) -> dict[str, str]:
    author = ("Sam Developer", "sam@example.test")  # who made the projects' history
    return {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
    }


def _git(args: list[str], cwd: Path, env: dict[str, str], when: str) -> None:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**env, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise WorldError(f"git {' '.join(args)} in {cwd} failed: {result.stderr.strip()[-500:]}")


def _project(
    world: WorldSpec,
    project: ProjectSpec,
    dest: Path,
    home: Path,
    hostport: str,
    services: Path,
    git_env: dict[str, str] | None,
) -> dict[str, Any]:
    scripts = scripts_of(world, project)
    tid = templates.template_id(
        project.manager, project.line, project.via, project.affected, scripts
    )
    template = templates.project_template(tid)
    marks = templates.placeholders()
    replace = {
        marks["home"]: str(home),
        marks["project"]: str(dest),
        marks["registry"]: hostport,
        marks["name"]: project.name,
    }
    dest.mkdir(parents=True)
    templates.unpack(template.row["archive"], dest, mtime=INSTALL_TIME)
    templates.rewrite(dest, template.row["rewrite"], replace)
    if not project.lockfile:
        (dest / template.lockfile).unlink()
    if not project.installed:
        shutil.rmtree(dest / "node_modules", ignore_errors=True)
    if project.git and git_env is not None:
        _history(project, template, dest, services, git_env, replace)
    return {
        "name": project.name,
        "path": str(dest),
        "template": tid,
        "manager": project.manager,
        "line": project.line,
        "via": project.via if project.affected else None,
        "affected": project.affected,
        "lockfile": template.lockfile if project.lockfile else None,
        "installed": project.installed,
        "scripts": scripts,
        "loader_ran": (dest / MARKER).exists(),
        "git": project.git and git_env is not None,
    }


def _history(
    project: ProjectSpec,
    template: templates.Template,
    dest: Path,
    services: Path,
    env: dict[str, str],
    replace: dict[str, str],
) -> None:
    """Two commits: the project before the window (a clean template), then as installed in it
    (the loader's marker left untracked, as nobody would commit it knowingly)."""
    _write(dest / ".gitignore", "node_modules/\n.env\n", mtime=INSTALL_TIME)
    _git(["-c", "init.defaultBranch=main", "init", "-q"], dest, env, FIRST_COMMIT)
    if project.affected:
        stage = services / "git-stage" / project.name
        stage.mkdir(parents=True)
        clean = templates.project_template(
            templates.template_id(project.manager, project.line, "direct", False, "off")
        )
        names = ["package.json"] + ([clean.lockfile] if project.lockfile else [])
        for name in names:
            data = templates.read_member(clean.row["archive"], name)
            if data is None:
                raise WorldError(f"template {clean.id} has no {name}")
            text = data.decode("utf-8")
            for old, new in sorted(replace.items(), key=lambda kv: -len(kv[0])):
                text = text.replace(old, new)
            (stage / name).write_text(text, encoding="utf-8")
        shutil.copyfile(dest / ".gitignore", stage / ".gitignore")
        tree = ["--git-dir", str(dest / ".git"), "--work-tree", str(stage)]
        _git([*tree, "add", "-A"], dest, env, FIRST_COMMIT)
        _git([*tree, "commit", "-q", "-m", "Initial commit"], dest, env, FIRST_COMMIT)
        shutil.rmtree(stage)
        with contextlib.suppress(OSError):
            stage.parent.rmdir()  # the last project's: leave no trace of the staging
        added = ", ".join(template.dependencies)
        message = f"chore(deps): update dependencies ({added})"
        _git(["add", "-A", "--", ".", f":!{MARKER}"], dest, env, INSTALL_COMMIT)
        _git(["commit", "-q", "-m", message], dest, env, INSTALL_COMMIT)
    else:
        _git(["add", "-A"], dest, env, FIRST_COMMIT)
        _git(["commit", "-q", "-m", "Initial commit"], dest, env, FIRST_COMMIT)


def _npm_account(world: WorldSpec, draw: Draw, registry: StandInRegistry, placed: Placed) -> str:
    """The world's account on the registry stand-in, holding every npm token of the world."""
    password = draw.chars(20)
    state = registry.state
    state.users[world.user] = account(world.user, password, draw.chars(16))
    for index, token in enumerate(placed.npm_tokens):
        created = TOKENS_CREATED.replace("09:00:00", f"09:{index:02d}:00")
        state.tokens[token_key(token)] = token_row(token, world.user, created)
    state.save()
    return password


def _truth(
    world: WorldSpec,
    variant: str,
    seed: int,
    root: Path,
    home: Path,
    projects: list[dict[str, Any]],
    placed: Placed,
    caches: list[str],
    artifacts: list[str],
    missing: list[str],
) -> dict[str, Any]:
    ran = bool(artifacts) or any(p["loader_ran"] for p in projects)
    exposed = any(p["affected"] for p in projects)
    verdict = "compromised" if ran else "exposed" if exposed else "clean"
    rotations = [m.rotation for m in placed.made]
    return {
        "variant": variant,
        "profile": world.profile,
        "seed": seed,
        "machine": world.machine,
        "os": world.os,
        "user": world.user,
        "home": str(home),
        "root": str(root),
        "verdict": verdict,
        "loader_ran": ran,
        "host_artifacts": artifacts,
        "projects": projects,
        "caches": caches,
        "credentials": [m.truth() for m in placed.made],
        "missing_tools": missing,
        "expected": {
            "detect": "compromised" if exposed else "clean",
            "check-host": "compromised" if artifacts else "clean",
            "aws_keys_to_rotate": rotations.count("aws"),
            "npm_tokens_to_rotate": rotations.count("npm"),
            "manual_credentials": rotations.count("manual"),
        },
    }


def _write(path: Path, data: str | bytes, *, mtime: float, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(raw)
    path.chmod(mode)
    os.utime(path, (mtime, mtime))
