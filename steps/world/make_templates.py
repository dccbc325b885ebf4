"""Regenerate the world's bundled templates with the real package managers (maintainers only).

    make tools                                        # verdaccio, yarn 1, pnpm 10, bun
    .venv/bin/python -m steps.world.make_templates    # about two minutes

Needs a checkout (it drives the test tools of `tests/npmreg.py`); nothing here runs when a world
is built. It serves the fake packages of `tests/registry/storage/` from verdaccio on the fixed
port 4873 (so every `resolved` URL reads `http://127.0.0.1:4873/`, replaced by the stand-in
registry's address when a world is built) and, for each package manager, installs one project per
(line, dependency path) twice: with install scripts off and with them on (the fake
`plain-crypto-js@4.2.1` postinstall then writes its harmless marker and rewrites its own
package.json, as the real loader does). Results, in `steps/world/templates/`:

- `projects/<id>.tar.gz`: package.json, the lockfile and node_modules as the tool left them
  (symlinks kept), with placeholders for the project's directory, the tool's HOME, the registry
  address and the project's name (`/world-template-project`, `/world-template-home`,
  `127.0.0.1:4873`, `world-template-app`), each file naming one listed in the
  manifest; ids are `<manager>-<line>-<via>-<scripts>` and `<manager>-<line>-clean`;
- `caches/<manager>.tar.gz`: that manager's cache after every install, relative to HOME;
- `registry/<name>/`: the packuments and tarballs the stand-in registry serves;
- `manifest.json`: what each archive holds and which of its files name a placeholder.

Archives are written reproducibly (sorted members, no owners, mtime 0, pnpm's state timestamps
fixed): regenerating gives byte-identical project archives; the caches differ only by the times
the tools record inside them (npm's index, pnpm's store, bun's cache).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
REGISTRY_PORT = 4873
REGISTRY_PLACEHOLDER = f"127.0.0.1:{REGISTRY_PORT}"
HOME_PLACEHOLDER = "/world-template-home"
PROJECT_PLACEHOLDER = "/world-template-project"
NAME_PLACEHOLDER = "world-template-app"
PROJECT_MARKS = (HOME_PLACEHOLDER, PROJECT_PLACEHOLDER, REGISTRY_PLACEHOLDER, NAME_PLACEHOLDER)
MARKER = "plain-crypto-js-postinstall-ran"
MANAGERS = ("npm", "yarn1", "pnpm", "bun")
LINES = {"1.x": "1x", "0.x": "0x"}
VIAS = ("direct", "transitive", "nested")
# what each (line, via) depends on, and the bad axios it must resolve
DEPENDENCIES: dict[tuple[str, str], dict[str, str]] = {
    ("1.x", "direct"): {"axios": "^1.14.0"},  # the `latest` tag (1.14.1) satisfies the range
    ("0.x", "direct"): {"axios": "^0.30.0"},  # the highest 0.30.x: 0.30.4
    ("1.x", "transitive"): {"http-wrapper": "2.0.0"},  # wants axios ^1.14.0
    ("0.x", "transitive"): {"legacy-client": "1.0.0"},  # wants axios ^0.30.0
    ("1.x", "nested"): {"axios": "1.14.0", "http-wrapper": "2.1.0"},  # ^1.14.1 nests 1.14.1
    ("0.x", "nested"): {"axios": "1.14.0", "legacy-client": "1.0.0"},  # nests 0.30.4
    ("1.x", "clean"): {"axios": "1.14.0"},
    ("0.x", "clean"): {"axios": "0.30.3"},
}
BAD_AXIOS = {"1.x": "1.14.1", "0.x": "0.30.4"}
LOCKFILE = {
    "npm": "package-lock.json",
    "yarn1": "yarn.lock",
    "pnpm": "pnpm-lock.yaml",
    "bun": "bun.lock",
}
# where each manager keeps its cache, relative to the HOME of tests.npmreg.tool_env()
CACHE_DIRS = {
    "npm": ".npm/_cacache",
    "yarn1": ".cache/yarn",
    "pnpm": ".local/share/pnpm/store",
    "bun": ".bun/install/cache",
}
NPM_I = ["install", "--no-audit", "--no-fund"]
YARN1_I = ["install", "--non-interactive", "--no-progress"]
INSTALL = {  # (manager, scripts) -> argv after the tool
    ("npm", "off"): [*NPM_I, "--ignore-scripts"],
    ("npm", "ran"): [*NPM_I, "--dangerously-allow-all-scripts"],
    ("yarn1", "off"): [*YARN1_I, "--ignore-scripts"],
    ("yarn1", "ran"): YARN1_I,  # yarn 1 runs install scripts by default
    ("pnpm", "off"): ["install"],  # pnpm 10 blocks dependency builds by default
    # without the side-effects cache, or pnpm reuses the first project's built copy silently
    ("pnpm", "ran"): [
        "install",
        "--config.dangerously-allow-all-builds=true",
        "--config.side-effects-cache=false",
    ],
    ("bun", "off"): ["install", "--save-text-lockfile", "--no-progress"],  # untrusted: no scripts
    ("bun", "ran"): ["install", "--save-text-lockfile", "--no-progress"],  # trustedDependencies
}
JUNK = (".yarn/install-state.gz", "node_modules/.cache")


def log(message: str) -> None:
    print(f"[templates] {message}", flush=True)


def template_id(manager: str, line: str, via: str, scripts: str | None) -> str:
    base = f"{manager}-{LINES[line]}-{via}"
    return base if scripts is None else f"{base}-{scripts}"


def package_json(deps: dict[str, str], manager: str, scripts: str) -> dict:
    doc: dict = {
        "name": NAME_PLACEHOLDER,
        "version": "1.0.0",
        "private": True,
        "dependencies": deps,
    }
    if manager == "bun" and scripts == "ran":
        doc["trustedDependencies"] = ["plain-crypto-js"]  # how bun lets a postinstall run
    return doc


def _members(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            out.append(Path(dirpath) / name)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def write_archive(root: Path, dest: Path, prefix: str = "") -> None:
    """A reproducible .tar.gz of `root` (symlinks kept, no owners, mtime 0)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _members(root):
            rel = (Path(prefix) / path.relative_to(root)).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
            if info.issym():
                info.mode = 0o777
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())


def placeholders(
    root: Path, replacements: dict[str, str], work: Path, marks: tuple[str, ...]
) -> list[str]:
    """Put placeholders into every text file under `root`; returns those naming one of `marks`
    (what a world's build replaces). Any other mention of the scratch directory is an error (a
    world could not say where it points)."""
    named = []
    for path in _members(root):
        if path.is_symlink() or not path.is_file() or path.suffix in (".tgz", ".zip"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = text
        for old, placeholder in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
            new = new.replace(old, placeholder)
        if str(work) in new:
            raise SystemExit(f"{path} names the scratch directory {work}")
        if new != text:
            path.write_text(new, encoding="utf-8")
        if any(mark in new for mark in marks):
            named.append(path.relative_to(root).as_posix())
    return named


def relative_links(root: Path, home: Path, staged_home: Path) -> None:
    """Make absolute symlinks into the tool's HOME (bun's cache has them) relative, so the
    archive unpacks anywhere; any other absolute link is an error."""
    for path in _members(root):
        if not path.is_symlink():
            continue
        target = os.readlink(path)
        if not os.path.isabs(target):
            continue
        if not Path(target).is_relative_to(home):
            raise SystemExit(f"{path} links outside the tool's HOME: {target}")
        inside = staged_home / Path(target).relative_to(home)
        path.unlink()
        path.symlink_to(os.path.relpath(inside, path.parent))


def _steady(root: Path) -> None:
    """Fix the timestamps pnpm writes into its state files, so archives are reproducible."""
    modules = root / "node_modules" / ".modules.yaml"
    if modules.is_file():
        doc = json.loads(modules.read_text())  # pnpm writes it as JSON
        doc["prunedAt"] = "Tue, 31 Mar 2026 01:12:00 GMT"
        modules.write_text(json.dumps(doc, indent=2))
    state = root / "node_modules" / ".pnpm-workspace-state-v1.json"
    if state.is_file():
        doc = json.loads(state.read_text())
        doc["lastValidatedTimestamp"] = 1774919520000
        state.write_text(json.dumps(doc, indent=2) + "\n")


def _resolved(project: Path, manager: str) -> str:
    lock = project / LOCKFILE[manager]
    return lock.read_text(encoding="utf-8") if lock.is_file() else ""


def build_project(npmreg, reg, work: Path, manager: str, line: str, via: str, scripts: str | None):
    """Install one template project; returns (id, directory, manifest row)."""
    tid = template_id(manager, line, via, scripts)
    project = work / "projects" / tid
    project.mkdir(parents=True)
    mode = scripts or "off"
    deps = DEPENDENCIES[(line, via)]
    (project / "package.json").write_text(
        json.dumps(package_json(deps, manager, mode), indent=2) + "\n"
    )
    env = npmreg.tool_env(reg.url, work / f"home-{manager}", auth=False)
    env.pop("RUNBOOK_TEST_MARKER_DIR", None)  # the marker lands in the project (INIT_CWD)
    log(f"{tid}: {manager} {' '.join(INSTALL[(manager, mode)])}")
    npmreg.run_tool(manager, INSTALL[(manager, mode)], cwd=project, env=env, timeout=300)
    lock = _resolved(project, manager)
    if not lock:
        raise SystemExit(f"{tid}: {manager} wrote no {LOCKFILE[manager]}")
    if via != "clean" and BAD_AXIOS[line] not in lock:
        raise SystemExit(f"{tid}: the lockfile does not resolve axios {BAD_AXIOS[line]}")
    if via == "clean" and "plain-crypto-js" in lock:
        raise SystemExit(f"{tid}: the clean template resolves plain-crypto-js")
    ran = (project / MARKER).exists()
    if ran != (mode == "ran" and via != "clean"):
        raise SystemExit(f"{tid}: the postinstall {'ran' if ran else 'did not run'} ({mode})")
    for junk in JUNK:
        target = project / junk
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    _steady(project)
    row = {
        "manager": manager,
        "line": line,
        "via": via if via != "clean" else "direct",
        "affected": via != "clean",
        "scripts": mode,
        "lockfile": LOCKFILE[manager],
        "dependencies": deps,
        "archive": f"projects/{tid}.tar.gz",
    }
    return tid, project, row


def tool_versions(npmreg, env: dict[str, str]) -> dict[str, str]:
    versions = {}
    for tool in MANAGERS:
        result = npmreg.run_tool(tool, ["--version"], cwd=Path(env["HOME"]), env=env)
        versions[tool] = result.stdout.strip()
    return versions


def copy_registry(storage: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    for package in sorted(p for p in storage.iterdir() if p.is_dir()):
        target = dest / package.name
        target.mkdir(parents=True)
        for item in sorted(package.iterdir()):
            if item.name == "package.json" or item.suffix == ".tgz":
                shutil.copyfile(item, target / item.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=MANAGERS, help="managers to rebuild")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent.parent))
    from tests import npmreg  # a checkout's test tools: never imported by the world itself

    missing = npmreg.missing_tools("verdaccio", *MANAGERS)
    if missing:
        print(f"missing tools: {', '.join(missing)}; run `make tools` first", file=sys.stderr)
        return 2
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="runbook-templates-")).resolve()
    manifest_path = TEMPLATES / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("templates", {})
    manifest.setdefault("caches", {})
    managers = args.only or list(MANAGERS)
    try:
        with npmreg.start_registry(work / "registry", port=REGISTRY_PORT) as reg:
            versions_env = npmreg.tool_env(reg.url, work / "home-versions", auth=False)
            manifest["generated_by"] = tool_versions(npmreg, versions_env)
            for manager in managers:
                for key in [k for k, v in manifest["templates"].items() if v["manager"] == manager]:
                    del manifest["templates"][key]
                for line in LINES:
                    combos = [(via, s) for via in VIAS for s in ("off", "ran")]
                    for via, scripts in [*combos, ("clean", None)]:
                        tid, project, row = build_project(
                            npmreg, reg, work, manager, line, via, scripts
                        )
                        row["rewrite"] = placeholders(
                            project,
                            {
                                str(project): PROJECT_PLACEHOLDER,
                                str(work / f"home-{manager}"): HOME_PLACEHOLDER,
                                f"127.0.0.1:{reg.port}": REGISTRY_PLACEHOLDER,
                            },
                            work,
                            PROJECT_MARKS,
                        )
                        write_archive(project, TEMPLATES / row["archive"])
                        manifest["templates"][tid] = row
                home = work / f"home-{manager}"
                cache = home / CACHE_DIRS[manager]
                staged = work / "caches" / manager
                shutil.copytree(cache, staged / CACHE_DIRS[manager], symlinks=True)
                relative_links(staged, home, staged)
                # pnpm's store links back to the projects that used it: scratch ones here
                for projects in (staged / CACHE_DIRS[manager]).glob("v*/projects"):
                    shutil.rmtree(projects)
                shutil.rmtree(staged / ".npm" / "_cacache" / "tmp", ignore_errors=True)
                # a cache keeps naming the registry it was filled from, as a real machine's
                # does (npm's index hashes its content: it must stay byte for byte); only
                # yarn 1's metadata names its own folder
                manifest["caches"][manager] = {
                    "archive": f"caches/{manager}.tar.gz",
                    "path": CACHE_DIRS[manager],
                    "rewrite": placeholders(
                        staged, {str(home): HOME_PLACEHOLDER}, work, (HOME_PLACEHOLDER,)
                    ),
                }
                write_archive(staged, TEMPLATES / "caches" / f"{manager}.tar.gz")
                log(f"cache {manager} saved")
        copy_registry(npmreg.STORAGE, TEMPLATES / "registry")
        manifest["registry"] = {"placeholder": REGISTRY_PLACEHOLDER, "dir": "registry"}
        manifest["placeholders"] = {
            "home": HOME_PLACEHOLDER,
            "project": PROJECT_PLACEHOLDER,
            "registry": REGISTRY_PLACEHOLDER,
            "name": NAME_PLACEHOLDER,
        }
        manifest["marker"] = MARKER
        manifest["templates"] = dict(sorted(manifest["templates"].items()))
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    finally:
        if args.keep_work:
            log(f"scratch kept at {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
