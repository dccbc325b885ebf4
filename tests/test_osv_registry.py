"""Safe pins from a real registry (verdaccio, tests/npmreg.py): the highest good version of each
major line; without a registry, or with one that cannot be reached, a placeholder that
`runbook validate` rejects naming the package and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.npmreg import (
    Registry,
    free_port,
    publish,
    require_tools,
    run_tool,
    start_registry,
    tool_env,
)
from tests.test_osv_corpus import NPM, bad_set, header, new

LIB = "osv-fixture-lib"
RANGED = "osv-fixture-range"
# published in this order; the bad ones are named by the OSV records below
LIB_VERSIONS = ["1.2.0", "1.9.0", "1.10.0", "1.11.0", "1.12.0-beta.1", "2.0.0", "2.0.1", "2.1.0"]
LIB_VERSIONS += ["3.0.0", "6.0.0", "6.0.1"]
RANGED_VERSIONS = ["4.1.0", "4.1.1", "4.1.2", "4.1.3", "5.0.0"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """verdaccio with the prebuilt storage (axios, plain-crypto-js with their incident-time
    publish dates) plus two packages published here, one version of them deprecated."""
    require_tools("verdaccio")
    work = tmp_path_factory.mktemp("osv-registry")
    with start_registry(work / "registry") as reg:
        env = tool_env(reg.url, work / "home")
        for name, versions in ((LIB, LIB_VERSIONS), (RANGED, RANGED_VERSIONS)):
            for version in versions:
                package = work / "packages" / f"{name}-{version}"
                package.mkdir(parents=True)
                manifest = {"name": name, "version": version, "main": "index.js"}
                (package / "package.json").write_text(json.dumps(manifest))
                (package / "index.js").write_text("module.exports = 1;\n")
                publish(package, env, tag="beta" if "-" in version else None)
        for version in ("2.1.0", "6.0.1"):
            run_tool("npm", ["deprecate", f"{LIB}@{version}", "do not use"], cwd=work, env=env)
        assert reg.packument(LIB)["versions"]["2.1.0"].get("deprecated") == "do not use"
        yield reg


def osv(name: str, **affected: object) -> dict:
    entry = {"package": {"ecosystem": "npm", "name": name}, **affected}
    return {"id": "MAL-2026-9000", "published": "2026-04-02T00:00:00Z", "affected": [entry]}


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_highest_good_version_of_each_major_is_pinned(
    registry: Registry, tmp_path: Path, run_cli
) -> None:
    lib = write(tmp_path / "lib.json", osv(LIB, versions=["3.0.0", "2.0.1", "1.11.0", "6.0.0"]))
    ranged = osv(
        RANGED,
        ranges=[
            {"type": "SEMVER", "events": [{"introduced": "4.1.1"}, {"last_affected": "4.1.2"}]}
        ],
    )
    rng = write(tmp_path / "range.json", ranged)
    args = ("--from-osv", lib, rng, "--id", "fixture", "--registry", registry.url)
    out = new(*args, output=tmp_path / "p.yaml")
    packages = out.packages()

    # 1.x: 1.10.0 (semver order: 1.10.0 > 1.9.0; the 1.11.0 bad; the 1.12.0 beta a pre-release)
    # 2.x: 2.0.0 (2.0.1 bad; 2.1.0 deprecated); 3.x: no good release at all, left to fill in;
    # 6.x: only a deprecated good release, taken and reported
    assert packages[LIB]["safe_pins"] == {
        "6": "6.0.1",
        "3": f"FILL-IN the highest good {LIB} 3.x version",
        "2": "2.0.0",
        "1": "1.10.0",
    }
    assert f"{LIB}: no safe 3.x version found: the registry lists no 3.x release" in out.stderr
    assert f"Safe pin 1.10.0 (1.x) from {registry.url}" in packages[LIB]["note"]
    assert f"review: {LIB}: the safe pin 6.0.1 (6.x) is deprecated, as is every good" in out.stderr
    # a range becomes the versions the registry knows in it, and stays as a range
    assert bad_set(packages[RANGED]) == {
        "versions": ["4.1.1", "4.1.2"],
        "ranges": [">=4.1.1 <=4.1.2"],
    }
    assert packages[RANGED]["safe_pins"] == {"4": "4.1.3"}

    # the one line left is the only thing `runbook validate` complains about, by package and line
    assert out.code == 1
    result = run_cli("validate", out.path)
    assert result.returncode == 1
    (problem,) = result.stderr.splitlines()
    assert f"safe_pins.3: 'FILL-IN the highest good {LIB} 3.x version'" in problem
    assert problem.startswith(f"{out.path}:")


def test_axios_from_the_registry_gives_a_valid_playbook(
    registry: Registry, tmp_path: Path, run_cli
) -> None:
    args = ("--from-osv", NPM / "axios", NPM / "plain-crypto-js" / "MAL-2026-2306.json")
    out = new(*args, "--id", "axios-osv", "--registry", registry.url, output=tmp_path / "a.yaml")
    assert out.code == 0, out.stderr
    packages = out.packages()
    # the fake registry holds 1.14.10 (a later clean release): the highest good 1.x
    assert packages["axios"]["safe_pins"] == {"1": "1.14.10", "0": "0.30.3"}
    assert packages["plain-crypto-js"]["safe_pins"] == {"4": "4.2.0"}
    window = out.document()["incident"]["window"]
    # the earliest bad publish the registry knows (plain-crypto-js 4.2.1), not the advisory's date
    assert window["start"] == "2026-03-30T23:59:00Z"
    assert "plain-crypto-js@4.2.1 published" in window["note"]
    assert "TO FILL IN" not in out.text
    validated = run_cli("validate", out.path)
    assert validated.returncode == 0, validated.stderr


def test_unreachable_registry_leaves_pins_to_fill_in(tmp_path: Path, run_cli) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    args = ("--from-osv", NPM / "axios" / "MAL-2026-2307.json", "--id", "a", "--registry", closed)
    out = new(*args, output=tmp_path / "a.yaml")
    assert out.code == 1
    assert f"registry not used from here on: {closed}: cannot be reached" in out.stderr
    assert out.packages()["axios"]["safe_pins"] == {
        "1": "FILL-IN the highest good axios 1.x version",
        "0": "FILL-IN the highest good axios 0.x version",
    }
    text = header(out.text)
    assert "TO FILL IN (2; `runbook validate` fails until each is a version):" in text
    assert "incident.packages[0].safe_pins.1: the highest good axios 1.x version" in text
    result = run_cli("validate", out.path)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert len(problems) == 2
    for line in ("0", "1"):
        assert any(
            f"incident.packages[0].safe_pins.{line}: 'FILL-IN the highest good axios {line}.x "
            "version' is not an exact semver version" in p
            for p in problems
        ), problems


def test_a_package_the_registry_does_not_know(registry: Registry, tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", osv("osv-fixture-nowhere", versions=["1.0.0"]))
    out = new("--from-osv", path, "--id", "n", "--registry", registry.url, output=tmp_path / "n")
    assert out.code == 1
    package = out.packages()["osv-fixture-nowhere"]
    assert package["safe_pins"] == {"1": "FILL-IN the highest good osv-fixture-nowhere 1.x version"}
    assert f"The registry {registry.url} does not know osv-fixture-nowhere." in package["note"]
