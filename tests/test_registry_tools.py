"""The real-component npm infrastructure works: verdaccio, fake packages, npm, yarn, pnpm, bun.

These tests prove the infrastructure itself (tests/npmreg.py, tests/registry/); the runbook's own
tests build on it.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import npmreg

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECTS = FIXTURES / "projects"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[npmreg.Registry]:
    npmreg.require_tools("verdaccio", "npm")
    with npmreg.start_registry(tmp_path_factory.mktemp("verdaccio")) as reg:
        yield reg


def make_project(root: Path, deps: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    manifest = {"name": "probe", "version": "1.0.0", "private": True, "dependencies": deps}
    (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return root


def installed_manifest(project: Path, name: str) -> dict:
    return json.loads((project / "node_modules" / name / "package.json").read_text())


def test_verdaccio_serves_the_fake_packages(registry: npmreg.Registry):
    axios = registry.packument("axios")
    assert set(axios["versions"]) == {"0.30.3", "0.30.4", "1.14.0", "1.14.1", "1.14.10"}
    assert axios["dist-tags"]["latest"] == "1.14.1"
    for bad in ("1.14.1", "0.30.4"):
        assert axios["versions"][bad]["dependencies"] == {"plain-crypto-js": "^4.2.1"}
    for good in ("1.14.0", "1.14.10", "0.30.3"):
        assert "dependencies" not in axios["versions"][good]
    # Tarball URLs follow the serving host, so a copied storage works on any port.
    assert axios["versions"]["1.14.1"]["dist"]["tarball"] == (
        f"{registry.url}axios/-/axios-1.14.1.tgz"
    )
    pcj = registry.packument("plain-crypto-js")
    assert pcj["versions"]["4.2.1"]["scripts"] == {"postinstall": "node setup.js"}
    assert "scripts" not in pcj["versions"]["4.2.0"]
    assert registry.packument("axios-retry")["dist-tags"]["latest"] == "1.14.1"
    # Nothing else: no uplinks, an unknown package is a 404, not a trip to the internet.
    with pytest.raises(urllib.error.HTTPError, match="404"):
        registry.packument("left-pad")


def test_npm_install_with_scripts_runs_the_fake_postinstall(registry, tmp_path: Path):
    project = make_project(tmp_path / "p", {"axios": "1.14.1"})
    env = npmreg.tool_env(registry.url, tmp_path / "home", marker_dir=project)
    npmreg.run_tool("npm", ["install", "--dangerously-allow-all-scripts"], cwd=project, env=env)

    assert (project / npmreg.MARKER_NAME).is_file()
    # The fake loader's anti-forensics: setup.js gone, package.json now claims 4.2.0, no scripts.
    pcj = project / "node_modules" / "plain-crypto-js"
    assert not (pcj / "setup.js").exists()
    assert installed_manifest(project, "plain-crypto-js")["version"] == "4.2.0"
    assert "scripts" not in installed_manifest(project, "plain-crypto-js")
    # ...while npm's lockfiles still record what was really installed.
    lock = json.loads((project / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/plain-crypto-js"]
    assert entry["version"] == "4.2.1"
    assert entry["hasInstallScript"] is True
    # The private config is in force: the user's omit-lockfile-registry-resolved is not.
    assert lock["packages"]["node_modules/axios"]["resolved"] == (
        f"{registry.url}axios/-/axios-1.14.1.tgz"
    )
    assert (project / "node_modules" / ".package-lock.json").is_file()
    assert (tmp_path / "home" / ".npm" / "_cacache").is_dir()


def test_npm_install_with_ignore_scripts_leaves_no_marker(registry, tmp_path: Path):
    project = make_project(tmp_path / "p", {"legacy-client": "1.0.0"})
    env = npmreg.tool_env(registry.url, tmp_path / "home", marker_dir=project)
    npmreg.run_tool("npm", ["install", "--ignore-scripts"], cwd=project, env=env)

    assert not (project / npmreg.MARKER_NAME).exists()
    assert installed_manifest(project, "axios")["version"] == "0.30.4"
    assert installed_manifest(project, "plain-crypto-js")["version"] == "4.2.1"
    assert (project / "node_modules" / "plain-crypto-js" / "setup.js").is_file()


def test_yarn1_installs_from_the_registry(registry, tmp_path: Path):
    npmreg.require_tools("yarn1")
    project = make_project(tmp_path / "p", {"axios": "1.14.0", "http-wrapper": "2.0.0"})
    env = npmreg.tool_env(registry.url, tmp_path / "home", marker_dir=project)
    result = npmreg.run_tool("yarn1", ["--version"], cwd=project, env=env)
    assert result.stdout.startswith("1.22.")
    npmreg.run_tool(
        "yarn1", ["install", "--non-interactive", "--ignore-scripts"], cwd=project, env=env
    )

    lock = (project / "yarn.lock").read_text()
    assert "# yarn lockfile v1" in lock
    assert f'resolved "{registry.url}axios/-/axios-1.14.1.tgz#' in lock
    # yarn 1 keeps the direct pin at the top and nests the transitive 1.14.1.
    assert installed_manifest(project, "axios")["version"] == "1.14.0"
    nested = project / "node_modules" / "http-wrapper"
    assert installed_manifest(nested, "axios")["version"] == "1.14.1"
    assert not (project / npmreg.MARKER_NAME).exists()
    assert (tmp_path / "home" / ".cache" / "yarn").is_dir()


def test_pnpm10_installs_from_the_registry_and_blocks_scripts(registry, tmp_path: Path):
    npmreg.require_tools("pnpm")
    project = make_project(tmp_path / "p", {"axios": "1.14.1"})
    env = npmreg.tool_env(registry.url, tmp_path / "home", marker_dir=project)
    result = npmreg.run_tool("pnpm", ["--version"], cwd=project, env=env)
    assert result.stdout.startswith("10.")
    npmreg.run_tool("pnpm", ["install"], cwd=project, env=env)

    lock = (project / "pnpm-lock.yaml").read_text()
    assert "lockfileVersion: '9.0'" in lock
    assert "\n  axios@1.14.1:\n" in lock
    store = project / "node_modules" / ".pnpm" / "plain-crypto-js@4.2.1" / "node_modules"
    assert (store / "plain-crypto-js" / "setup.js").is_file()
    # pnpm 10 does not run dependency install scripts unless allowed.
    assert not (project / npmreg.MARKER_NAME).exists()
    assert (tmp_path / "home" / ".local" / "share" / "pnpm" / "store").is_dir()


def test_yarn_berry_installs_from_the_registry(registry, tmp_path: Path):
    npmreg.require_tools("berry")
    project = make_project(tmp_path / "p", {"axios": "0.30.3"})
    (project / ".yarnrc.yml").write_text(npmreg.berry_rc(registry.url, nodeLinker="node-modules"))
    (project / "yarn.lock").write_text("")
    env = npmreg.tool_env(registry.url, tmp_path / "home")
    npmreg.run_tool("berry", ["install"], cwd=project, env=env)

    lock = (project / "yarn.lock").read_text()
    assert 'resolution: "axios@npm:0.30.3"' in lock
    assert list((project / ".yarn" / "cache").glob("axios-npm-0.30.3-*.zip"))
    assert installed_manifest(project, "axios")["version"] == "0.30.3"


def test_bun_installs_from_the_registry(registry, tmp_path: Path):
    npmreg.require_tools("bun")
    project = make_project(tmp_path / "p", {"axios": "1.14.1"})
    env = npmreg.tool_env(registry.url, tmp_path / "home", marker_dir=project)
    npmreg.run_tool("bun", ["install", "--save-text-lockfile"], cwd=project, env=env)

    lock = (project / "bun.lock").read_text()
    assert '["axios@1.14.1", ' in lock
    assert installed_manifest(project, "plain-crypto-js")["version"] == "4.2.1"
    # bun runs no dependency lifecycle scripts unless the package is in trustedDependencies.
    assert not (project / npmreg.MARKER_NAME).exists()


def test_committed_fixtures_are_complete():
    """Fixtures are committed with their install trees: nothing may be lost to .gitignore."""
    direct = PROJECTS / "npm-v3-direct"
    assert (direct / npmreg.MARKER_NAME).is_file()
    assert (direct / "node_modules" / ".package-lock.json").is_file()
    pcj = json.loads((direct / "node_modules" / "plain-crypto-js" / "package.json").read_text())
    assert pcj["version"] == "4.2.0"
    nested = PROJECTS / "npm-transitive-nested" / "node_modules" / "http-wrapper" / "node_modules"
    assert json.loads((nested / "axios" / "package.json").read_text())["version"] == "1.14.1"
    assert (PROJECTS / "pnpm10" / "node_modules" / ".pnpm" / "axios@1.14.1").is_dir()
    assert list((PROJECTS / "yarn-berry" / ".yarn" / "cache").glob("axios-npm-1.14.1-*.zip"))
    assert (FIXTURES / "npm-cache" / "_cacache" / "index-v5").is_dir()
    for project in ("traps", "clean"):
        assert "plain-crypto-js" not in (PROJECTS / project / "package-lock.json").read_text()
    for path in PROJECTS.rglob("*.json"):
        if path.name in {"package-lock.json", "npm-shrinkwrap.json", ".package-lock.json"}:
            text = path.read_text()
            assert "127.0.0.1:4873" in text or '"resolved"' not in text, path
