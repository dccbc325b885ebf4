"""From advisory to tested playbook: `runbook new --from-osv`, pins filled in, `runbook validate`,
then a dry run on a fixture project whose detect step finds the planted bad versions (an exact
version, a version inside a range, and a package bad in every version)."""

from __future__ import annotations

import json
from pathlib import Path

from runbook.journal import read_entries
from tests.test_osv_corpus import NPM, fill_pins, new
from tests.treehash import tree_digest

LOCK_PACKAGES = {
    "node_modules/debug": "4.4.2",  # an exact bad version
    "node_modules/@ctrl/deluge": "7.2.1",  # inside the range >=7.2.1 <=7.2.2
    "node_modules/@ctrl/tinycolor": "4.1.3",  # just outside its range: not a finding
    "node_modules/shubholic-test": "1.0.0",  # every version is bad (transitive only)
}
DIRECT = ("debug", "@ctrl/deluge", "@ctrl/tinycolor")


def fixture_project(root: Path) -> Path:
    """A small npm project: manifest, v3 lockfile and an installed tree."""
    deps = {name: f"^{LOCK_PACKAGES['node_modules/' + name]}" for name in DIRECT}
    manifest = {"name": "demo", "version": "1.0.0", "dependencies": deps}
    root.mkdir()
    (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    packages: dict[str, dict] = {"": manifest}
    for path, version in LOCK_PACKAGES.items():
        name = path.removeprefix("node_modules/")
        tarball = f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
        packages[path] = {"version": version, "resolved": tarball}
        installed = root / path
        installed.mkdir(parents=True)
        (installed / "package.json").write_text(json.dumps({"name": name, "version": version}))
    lock = {"name": "demo", "version": "1.0.0", "lockfileVersion": 3, "packages": packages}
    (root / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    return root


def test_generated_playbook_validates_and_detects_in_a_dry_run(
    run_cli, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    records = (
        NPM / "debug",  # no network indicators: the host sweep resolves no real C2 domain
        NPM / "@ctrl/deluge",
        NPM / "@ctrl/tinycolor" / "MAL-2025-47141.json",
        NPM / "shubholic-test",
    )
    out = new("--from-osv", *records, "--id", "osv-incident", output=tmp_path / "generated.yaml")
    assert out.code == 1, out.stderr  # pins to fill in: no registry given
    playbook = tmp_path / "osv-incident.yaml"
    playbook.write_text(fill_pins(out.text), encoding="utf-8")
    validated = run_cli("validate", playbook)
    assert validated.returncode == 0, validated.stderr
    assert "osv-incident v1, 15 steps" in validated.stdout

    target = fixture_project(tmp_path / "project")
    home = Path(sandbox_env["HOME"])
    (home / ".npm").mkdir()  # a developer's HOME has an npm cache
    before_target, before_home = tree_digest(target), tree_digest(home)
    env = {**sandbox_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = run_cli(
        "run", playbook, "--target", target, "--dry-run", "--no-input", env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree_digest(target) == before_target
    assert tree_digest(home) == before_home

    journal = Path(result.stdout.split("journal: ")[1].split()[0])
    planned = next(
        e["data"]
        for e in read_entries(journal)
        if e["event"] == "step_planned" and e["data"].get("step") == "detect"
    )
    compromised = {
        (f["kind"], f["package"], f.get("version"))
        for f in planned["findings"]
        if f["severity"] == "compromised"
    }
    for kind in ("lockfile", "installed"):
        assert (kind, "debug", "4.4.2") in compromised
        assert (kind, "@ctrl/deluge", "7.2.1") in compromised
        assert (kind, "shubholic-test", "1.0.0") in compromised
    assert not any(package == "@ctrl/tinycolor" for _, package, _ in compromised)
