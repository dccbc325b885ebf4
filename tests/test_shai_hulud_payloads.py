"""Payload files inside installed packages (`package_files`): the trees npm 11, pnpm 10 and yarn 1
installed from the fake Shai-Hulud packages (tests/fixtures/shai-hulud), traps, and what cannot be
compared."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from runbook.models import PackageFile
from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan
from steps.scan.payloads import scan_payloads

HERE = Path(__file__).parent / "fixtures" / "shai-hulud"
PROJECTS = HERE / "projects"
PLAYBOOK = load_playbook(HERE / "playbook.yaml").playbook
BUNDLED = load_playbook(Path(__file__).parents[1] / "playbooks" / "shai-hulud-2025.yaml").playbook


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECTS / name, tmp_path / name, symlinks=True))


def payloads(findings) -> dict[str, tuple[str, str | None, str | None]]:
    """{file name relative to the tree: (severity, package, version)} of the payload findings."""
    return {
        f.path.split("node_modules/", 1)[1]: (f.severity, f.package, f.version)
        for f in findings
        if f.kind == "payload"
    }


def test_the_test_playbook_lists_the_fake_payloads_hashes() -> None:
    listed = {e.name: e.sha256 for e in PLAYBOOK.incident.indicators.package_files}
    packages = HERE / "packages"
    assert listed == {
        "bundle.js": [sha256(packages / "ctrl-tinycolor-4.1.1" / "bundle.js")],
        "setup_bun.js": [sha256(packages / "zapier-sdk-0.15.5" / "setup_bun.js")],
        "bun_environment.js": [sha256(packages / "zapier-sdk-0.15.5" / "bun_environment.js")],
    }


def test_npm_tree_bundle_js_is_the_known_payload(tmp_path: Path) -> None:
    project = copy("npm-worm-v1", tmp_path)
    assert (project / "shai-hulud-bundle-ran").exists()  # npm ran the fake postinstall
    findings = scan([project], PLAYBOOK.incident, ScanOptions()).findings
    assert payloads(findings) == {
        "@ctrl/tinycolor/bundle.js": ("compromised", "@ctrl/tinycolor", "4.1.1"),
    }
    [finding] = [f for f in findings if f.kind == "payload"]
    assert "is a known payload" in finding.message and "@ctrl/tinycolor@4.1.1" in finding.message


def test_pnpm_store_payloads_of_a_transitive_dependency(tmp_path: Path) -> None:
    project = copy("pnpm-worm-v2", tmp_path)
    found = payloads(scan([project], PLAYBOOK.incident, ScanOptions()).findings)
    store = ".pnpm/@zapier+zapier-sdk@0.15.5/node_modules/@zapier/zapier-sdk"
    assert found == {
        f"{store}/setup_bun.js": ("compromised", "@zapier/zapier-sdk", "0.15.5"),
        f"{store}/bun_environment.js": ("compromised", "@zapier/zapier-sdk", "0.15.5"),
    }


def test_yarn1_tree(tmp_path: Path) -> None:
    project = copy("yarn1-worm-v2", tmp_path)
    found = payloads(scan([project], PLAYBOOK.incident, ScanOptions()).findings)
    assert set(found) == {
        "@zapier/zapier-sdk/setup_bun.js",
        "@zapier/zapier-sdk/bun_environment.js",
    }
    assert {severity for severity, _, _ in found.values()} == {"compromised"}


def test_traps_give_nothing(tmp_path: Path) -> None:
    """A README naming the payloads, a benign bundle.js (legit-bundler), a good version of a
    compromised package and a benign discussion.yaml: no finding at all, with either playbook."""
    project = copy("traps", tmp_path)
    assert "bundle.js" in (project / "README.md").read_text()
    assert (project / "node_modules" / "legit-bundler" / "bundle.js").is_file()
    for playbook in (PLAYBOOK, BUNDLED):
        result = scan([project], playbook.incident, ScanOptions(history=True))
        assert result.findings == [], [f.message for f in result.findings]
        assert result.affected is False


def test_bundled_playbook_ignores_other_bundle_js_but_reviews_other_setup_bun(
    tmp_path: Path,
) -> None:
    """The fake payloads are not the published samples: the bundled playbook ignores a bundle.js
    with another digest (a common name) but reports a setup_bun.js or bun_environment.js with
    another digest as at-risk (only the worm ships files of those names)."""
    v1 = payloads(scan([copy("npm-worm-v1", tmp_path)], BUNDLED.incident, ScanOptions()).findings)
    assert v1 == {}
    v2 = scan([copy("yarn1-worm-v2", tmp_path)], BUNDLED.incident, ScanOptions()).findings
    found = {f.path.rsplit("/", 1)[1]: f for f in v2 if f.kind == "payload"}
    assert set(found) == {"setup_bun.js", "bun_environment.js"}
    assert {f.severity for f in found.values()} == {"at-risk"}
    assert "a new variant" in found["setup_bun.js"].message


def test_published_hash_in_any_package_is_found(tmp_path: Path) -> None:
    """A package that is on no list (a newly infected one) is caught by its payload's hash."""
    nm = tmp_path / "app" / "node_modules"
    package = nm / "some-new-victim"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"name": "some-new-victim", "version": "3.0.1"}')
    payload = b"// a payload sample\n"
    (package / "bundle.js").write_bytes(payload)
    entry = PackageFile(name="bundle.js", sha256=[hashlib.sha256(payload).hexdigest()])
    [finding] = scan_payloads([nm], [entry])
    assert (finding.severity, finding.package, finding.version) == (
        "compromised",
        "some-new-victim",
        "3.0.1",
    )


def test_nested_and_scoped_copies_and_package_scope(tmp_path: Path) -> None:
    nm = tmp_path / "node_modules"
    inner = nm / "outer" / "node_modules" / "@scope" / "inner"
    inner.mkdir(parents=True)
    (nm / "outer" / "package.json").write_text('{"name": "outer", "version": "1.0.0"}')
    (inner / "setup_bun.js").write_text("x")
    (nm / "outer" / "setup_bun.js").write_text("x")
    anywhere = PackageFile(name="setup_bun.js", confidence="medium")
    found = {f.package: f.severity for f in scan_payloads([nm], [anywhere])}
    assert found == {"outer": "at-risk", "@scope/inner": "at-risk"}
    scoped = PackageFile(name="setup_bun.js", packages=["@scope/inner"])
    assert [f.package for f in scan_payloads([nm], [scoped])] == ["@scope/inner"]


def test_what_cannot_be_compared_is_unknown_never_clean(tmp_path: Path) -> None:
    nm = tmp_path / "node_modules"
    fifo_pkg, link_pkg = nm / "fifo-pkg", nm / "link-pkg"
    fifo_pkg.mkdir(parents=True)
    link_pkg.mkdir()
    os.mkfifo(fifo_pkg / "bun_environment.js")
    (tmp_path / "elsewhere.js").write_text("x")
    (link_pkg / "bun_environment.js").symlink_to(tmp_path / "elsewhere.js")
    entry = PackageFile(name="bun_environment.js", sha256=["0" * 64], other_hashes="at-risk")
    found = {f.package: f for f in scan_payloads([nm], [entry])}  # returns: never blocks
    assert {p: f.severity for p, f in found.items()} == {
        "fifo-pkg": "unknown",
        "link-pkg": "unknown",
    }
    assert "FIFO" in found["fifo-pkg"].message
    assert "symlink" in found["link-pkg"].message


def test_symlinked_packages_are_not_followed(tmp_path: Path) -> None:
    """pnpm and workspaces link packages into node_modules: a link is not read twice, and a link
    out of the tree is not read at all."""
    outside = tmp_path / "outside" / "evil"
    outside.mkdir(parents=True)
    (outside / "bundle.js").write_text("x")
    nm = tmp_path / "project" / "node_modules"
    nm.mkdir(parents=True)
    (nm / "evil").symlink_to(outside, target_is_directory=True)
    entry = PackageFile(name="bundle.js")
    assert list(scan_payloads([nm], [entry])) == []


def test_host_scan_finds_payloads_in_global_installs_and_editor_extensions(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    prefix = tmp_path / "prefix"
    global_pkg = prefix / "lib" / "node_modules" / "@zapier" / "zapier-sdk"
    extension = home / ".vscode" / "extensions" / "acme.tool-1.0.0" / "node_modules" / "@zapier"
    fake = HERE / "packages" / "zapier-sdk-0.15.5"
    for where in (global_pkg, extension / "zapier-sdk"):
        shutil.copytree(fake, where)
    env = {"HOME": str(home), "NPM_CONFIG_PREFIX": str(prefix)}
    findings = scan([], PLAYBOOK.incident, ScanOptions(host=True), env=env).findings
    found = sorted((f.path, f.message) for f in findings if f.kind == "payload")
    assert len(found) == 4, found
    assert any("installed globally" in m for _, m in found)
    assert any("inside editor extension acme.tool-1.0.0" in m for _, m in found)


def test_a_package_json_that_is_no_json_does_not_hide_the_payload(tmp_path: Path) -> None:
    nm = tmp_path / "node_modules"
    package = nm / "broken"
    package.mkdir(parents=True)
    (package / "package.json").write_text("{ not json")
    data = b"payload"
    (package / "setup_bun.js").write_bytes(data)
    entry = PackageFile(name="setup_bun.js", sha256=[hashlib.sha256(data).hexdigest()])
    [finding] = scan_payloads([nm], [entry])
    assert (finding.severity, finding.package, finding.version) == ("compromised", "broken", None)


@pytest.mark.parametrize("name", ["bundle.js", "setup_bun.js"])
def test_a_folder_named_like_a_payload_is_nothing(tmp_path: Path, name: str) -> None:
    nm = tmp_path / "node_modules"
    (nm / "pkg" / name).mkdir(parents=True)
    assert list(scan_payloads([nm], [PackageFile(name=name)])) == []


def test_json_output_names_the_payload(tmp_path: Path, run_cli) -> None:
    project = copy("npm-worm-v1", tmp_path)
    out = run_cli("scan", "--playbook", HERE / "playbook.yaml", "--format", "json", project)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"payload", "repo-file", "lockfile", "installed"} <= kinds


def test_payloads_in_yarn_unplugged_folders_and_npx_installs(tmp_path: Path) -> None:
    """yarn berry's unplugged packages and the packages npx installed (their install scripts
    ran) are looked into too, in the same walk that looks for bad versions there."""
    home = tmp_path / "home"
    project = home / "app"
    unplugged = project / ".yarn" / "unplugged" / "@zapier-zapier-sdk-npm-0.15.5-0a1b2c3d4e"
    npx = home / ".npm" / "_npx" / "0123abcd4567ef89"
    fake = HERE / "packages" / "zapier-sdk-0.15.5"
    for where in (unplugged, npx):
        shutil.copytree(fake, where / "node_modules" / "@zapier" / "zapier-sdk")
    (project / "package.json").write_text('{"name": "app"}')
    result = scan([project], PLAYBOOK.incident, ScanOptions(host=True), env={"HOME": str(home)})
    found = [f for f in result.findings if f.kind == "payload"]
    assert {(f.severity, f.package, f.version) for f in found} == {
        ("compromised", "@zapier/zapier-sdk", "0.15.5")
    }
    assert sorted(Path(f.path).name for f in found) == sorted(
        ["setup_bun.js", "bun_environment.js"] * 2
    )
    assert sum("(yarn unplugged)" in f.message for f in found) == 2
    assert sum("(npx cache)" in f.message for f in found) == 2
