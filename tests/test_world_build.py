"""The `npm-host` world: its bundled variants built from the real templates, fast, deterministic
and confined to the sandbox; the scanner sees in it what the variant says happened."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest

from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan
from steps.world import templates
from steps.world.build import BuiltWorld, EvidenceRefused, WorldError
from steps.world.plugin import plugin
from tests.conftest import BUNDLED, ROOT

VARIANTS = ("laptop-postinstall", "laptop-ignore-scripts", "ci-runner")
BUDGET = 5.0  # seconds, build and services (the budget for `exercise start`)
MARKER = "plain-crypto-js-postinstall-ran"
URL_PORT = re.compile(r"127\.0\.0\.1:\d+")


def build(
    tmp_path: Path, variant: str, seed: int = 1, spec: dict | None = None, **over
) -> BuiltWorld:
    sandbox = tmp_path / f"sandbox-{variant}-{seed}"
    sandbox.mkdir()
    return plugin.build(spec or {}, variant, over, seed, sandbox)


def incident():
    return load_playbook(BUNDLED).playbook.incident


def host_findings(world: BuiltWorld) -> list:
    """The scanner on the world's target, with the world's HOME and host root."""
    options = ScanOptions(host=True, root=world.root)
    return scan([world.targets[0]], incident(), options, env=world.env).findings


def test_the_entry_point_is_this_plugin():
    (found,) = [e for e in entry_points(group="runbook.worlds") if e.name == "npm-host"]
    assert found.load() is plugin
    assert plugin.kind == "npm-host"


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_bundled_variant_builds_and_serves_within_budget(tmp_path, variant):
    started = time.monotonic()
    world = build(tmp_path, variant)
    with world:
        world.start_services()
        elapsed = time.monotonic() - started
        state = world.services_state()
        assert state["npm_registry"]["running"] and state["aws"]["running"]
        assert state["aws"]["pid"] and state["aws"]["pid"] != os.getpid()
    assert elapsed < BUDGET, f"{variant}: {elapsed:.2f} s ({world.timings})"
    print(f"{variant}: build+services {elapsed:.2f} s {world.timings}")
    assert not world.services_state()["aws"]["running"]
    world.stop_services()  # idempotent


def test_laptop_postinstall_is_compromised(tmp_path):
    world = build(tmp_path, "laptop-postinstall")
    truth = world.ground_truth
    assert truth["verdict"] == "compromised" and truth["host_artifacts"] == ["/tmp/ld.py"]
    project = world.targets[0]
    assert project == world.home / "src" / "invoice-sync"
    assert (world.root / "tmp" / "ld.py").read_bytes().startswith(b"# HARMLESS")
    assert (project / MARKER).is_file()
    # the loader's anti-forensics ran for real when the template was made: it claims 4.2.0
    claimed = json.loads((project / "node_modules/plain-crypto-js/package.json").read_text())
    assert claimed["version"] == "4.2.0" and "scripts" not in claimed
    assert not (project / "node_modules/plain-crypto-js/setup.js").exists()
    lock = json.loads((project / "package-lock.json").read_text())
    assert lock["name"] == "invoice-sync"
    resolved = lock["packages"]["node_modules/axios"]["resolved"]
    assert resolved.startswith(world.registry.url)  # the stand-in serves the reinstall
    findings = host_findings(world)
    kinds = {(f.kind, f.severity) for f in findings}
    assert ("ioc", "compromised") in kinds  # /tmp/ld.py under the simulated root
    assert ("cache", "compromised") in kinds  # the npm cache holds the bad tarballs
    assert ("installed", "compromised") in kinds and ("lockfile", "compromised") in kinds
    assert all(str(world.sandbox) in (f.path or str(world.sandbox)) for f in findings)
    log = subprocess.run(
        ["git", "log", "--format=%ad %s", "--date=iso-strict"],
        cwd=project,
        env=world.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log[0].startswith("2026-03-31T01:14:00") and "axios" in log[0]
    assert log[1].endswith("Initial commit") and len(log) == 2


def test_laptop_ignore_scripts_is_exposed_not_compromised(tmp_path):
    world = build(tmp_path, "laptop-ignore-scripts")
    assert world.ground_truth["verdict"] == "exposed"
    assert world.ground_truth["expected"]["check-host"] == "clean"
    project = world.targets[0]
    assert not (world.root / "tmp" / "ld.py").exists() and not (project / MARKER).exists()
    package = project / "node_modules/plain-crypto-js"
    assert json.loads((package / "package.json").read_text())["version"] == "4.2.1"
    assert (package / "setup.js").is_file()  # installed, but the postinstall never ran
    findings = host_findings(world)
    assert not [f for f in findings if f.kind == "ioc" and f.severity == "compromised"]
    assert [f for f in findings if f.kind == "installed" and f.severity == "compromised"]


def test_ci_runner_keeps_its_secrets_in_the_workspace_and_env(tmp_path):
    world = build(tmp_path, "ci-runner")
    project = world.targets[0]
    assert project == world.home / "work" / "invoice-sync" / "invoice-sync"
    assert world.env["CI"] == "true" and world.env["GITHUB_WORKSPACE"] == str(project)
    assert world.env["GITHUB_TOKEN"].startswith("ghs_")
    dotenv = (project / ".env").read_text()
    assert re.search(r"^AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16}$", dotenv, re.M)
    assert re.search(r"_authToken=npm_\w{36}$", (project / ".npmrc").read_text(), re.M)
    # no desktop: no gh login, no SSH key, no AWS files in HOME
    for rel in (".config/gh/hosts.yml", ".ssh", ".aws/credentials"):
        assert not (world.home / rel).exists()
    truth = world.ground_truth
    assert truth["services"]["aws"]["users"] == ["ci-deploy"]
    assert {c["place"] for c in truth["credentials"]} == {
        "~/work/invoice-sync/invoice-sync/.env AWS_ACCESS_KEY_ID",
        "~/work/invoice-sync/invoice-sync/.npmrc",
        "env GITHUB_TOKEN",
    }
    assert truth["verdict"] == "compromised"  # CI runs install scripts: the loader ran there


def test_every_manager_line_and_path_builds(tmp_path):
    projects = [
        {"name": f"{m}-{line[0]}-{via}", "manager": m, "line": line, "via": via}
        for m in ("npm", "yarn1", "pnpm", "bun")
        for line in ("1.x", "0.x")
        for via in ("direct", "transitive", "nested")
    ]
    projects += [
        {"name": "clean", "affected": False},
        {"name": "no-lock", "lockfile": False},
        {"name": "not-installed", "installed": False},
    ]
    world = build(tmp_path, "laptop-postinstall", spec={"projects": projects, "credentials": []})
    assert world.timings["build"] < BUDGET
    lockfiles = {"npm": "package-lock.json", "yarn1": "yarn.lock", "pnpm": "pnpm-lock.yaml"}
    lockfiles["bun"] = "bun.lock"
    for row in world.ground_truth["projects"]:
        path = Path(row["path"])
        if row["name"] in ("clean", "no-lock", "not-installed"):
            continue
        text = (path / lockfiles[row["manager"]]).read_text()
        assert ("1.14.1" if row["line"] == "1.x" else "0.30.4") in text, row["name"]
        assert "world-template" not in text
        # npm and yarn 1 run the postinstall; pnpm and bun block it by default
        assert row["loader_ran"] == (row["manager"] in ("npm", "yarn1")), row["name"]
    clean = world.home / "src" / "clean"
    assert "plain-crypto-js" not in (clean / "package-lock.json").read_text()
    assert not (world.home / "src/no-lock/package-lock.json").exists()
    assert (world.home / "src/no-lock/node_modules/axios").is_dir()
    assert not (world.home / "src/not-installed/node_modules").exists()
    nested = world.home / "src/npm-1-nested/node_modules/http-wrapper/node_modules/axios"
    assert json.loads((nested / "package.json").read_text())["version"] == "1.14.1"
    store = world.home / "src/pnpm-1-direct/node_modules/.modules.yaml"
    assert str(world.home) in store.read_text()  # pnpm's store path points into the world
    assert sorted(world.ground_truth["caches"]) == ["bun", "npm", "pnpm", "yarn1"]
    assert (world.home / ".cache/yarn/v6").is_dir() and (world.home / ".bun/install/cache").is_dir()


def _paths_in(value: str) -> list[str]:
    if "://" in value:
        return []  # a URL (the stand-ins, the closed proxy port)
    return [p for p in value.split(os.pathsep) if p.startswith("/")]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_environment_points_into_the_sandbox_only(tmp_path, variant):
    world = build(tmp_path, variant)
    env = world.env
    assert env["HOME"] == str(world.home) and env["RUNBOOK_NO_DNS"] == "1"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:9"
    assert env["AWS_ENDPOINT_URL"] == world.aws.url
    assert env["PYTHON_KEYRING_BACKEND"] == "steps.world.keyring_file.WorldKeyring"
    for key, value in env.items():
        if key == "PATH":
            continue
        for path in _paths_in(value):
            assert Path(path).is_relative_to(world.sandbox), (key, path)
    urls = {u for v in env.values() for u in URL_PORT.findall(v)}
    ports = {f"127.0.0.1:{world.registry.port}", f"127.0.0.1:{world.aws.port}", "127.0.0.1:9"}
    assert urls <= ports
    assert world.run_options == {"aws_endpoint_url": world.aws.url, "allow_insecure_keyring": True}


def _digest(sandbox: Path) -> dict[str, str]:
    """Every file under the sandbox: type, mode and content (timestamps and git's stat cache
    left out), with the sandbox's own path written as SANDBOX."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(sandbox):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(sandbox).as_posix()
            if rel.endswith(".git/index"):
                continue
            st = path.lstat()
            if path.is_symlink():
                detail = "link:" + os.readlink(path).replace(str(sandbox), "SANDBOX")
            elif path.is_file():
                data = path.read_bytes().replace(str(sandbox).encode(), b"SANDBOX")
                detail = hashlib.sha256(data).hexdigest()
            else:
                detail = "dir"
            out[rel] = f"{detail}|{st.st_mode:o}"
    return out


def test_same_seed_same_world_other_seed_other_secrets(tmp_path):
    first = build(tmp_path, "laptop-postinstall", seed=42)
    first_digest, first_port = _digest(first.sandbox), first.registry.port
    first.stop_services()  # frees the ports the seed chose
    (tmp_path / "again").mkdir()
    second = build(tmp_path / "again", "laptop-postinstall", seed=42)
    assert second.registry.port == first_port
    assert _digest(second.sandbox) == first_digest
    head = ["git", "rev-parse", "HEAD"]
    heads = [
        subprocess.run(head, cwd=w.targets[0], capture_output=True, text=True).stdout
        for w in (first, second)
    ]
    assert heads[0] == heads[1] and len(heads[0].strip()) == 40
    second.stop_services()
    other = build(tmp_path, "laptop-postinstall", seed=43)
    other.stop_services()
    creds = [(w.home / ".aws" / "credentials").read_text() for w in (first, other)]
    assert creds[0] != creds[1]
    secrets = [
        {c["fingerprint"] for c in w.ground_truth["credentials"] if c["type"] != "aws-profile"}
        for w in (first, other)
    ]  # an SSO profile holds a start URL, the same everywhere; everything else is drawn
    assert len(secrets[0]) == 5 and secrets[0].isdisjoint(secrets[1])


def test_a_missing_package_manager_is_named_and_the_rest_builds(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("node", "npm", "git"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed on PATH for this test"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))  # no bun, no yarn, no pnpm
    spec = {"projects": [{"name": "api", "manager": "bun"}, {"name": "web", "manager": "npm"}]}
    world = build(tmp_path, "laptop-postinstall", spec=spec)
    assert world.missing_tools == ["bun"]
    assert world.targets == [world.home / "src" / "web"]
    assert (world.home / "src" / "api" / "bun.lock").is_file()  # still in the world
    assert any("bun is not installed" in note for note in world.notes)
    assert world.ground_truth["missing_tools"] == ["bun"]
    (bin_dir / "git").unlink()
    (tmp_path / "again").mkdir()
    without_git = build(tmp_path / "again", "laptop-postinstall", spec=spec)
    assert without_git.missing_tools == ["bun", "git"]
    assert not (without_git.targets[0] / ".git").exists()
    assert (without_git.targets[0] / "package-lock.json").is_file()


def test_the_sandbox_must_be_fresh(tmp_path):
    sandbox = tmp_path / "used"
    (sandbox / "root").mkdir(parents=True)
    with pytest.raises(WorldError, match="already holds root"):
        plugin.build({}, "ci-runner", {}, 1, sandbox)
    with pytest.raises(WorldError, match="is not valid: projects"):
        plugin.build({"projects": []}, "ci-runner", {}, 1, tmp_path)


# -- write_evidence ------------------------------------------------------------------------------
def test_evidence_lands_where_asked(tmp_path):
    world = build(tmp_path, "laptop-postinstall")
    path = world.write_evidence("Downloads/alert.eml", "From: soc@example.test\n")
    assert path == world.home / "Downloads" / "alert.eml"
    assert path.read_text() == "From: soc@example.test\n"
    assert world.write_evidence("var/log/syslog", b"\x00bin", where="root").read_bytes() == (
        b"\x00bin"
    )
    assert world.write_evidence("NOTES.md", "x", where="target").parent == world.targets[0]
    named = world.write_evidence("./a/./b.txt", "y", where="target:invoice-sync")
    assert named == world.targets[0] / "a" / "b.txt"


@pytest.mark.parametrize(
    "relpath",
    ["/etc/passwd", "../escape.txt", "Downloads/../../escape.txt", "", ".", "a\x00b", "a\\..\\b"],
)
def test_evidence_never_leaves_the_world_by_path(tmp_path, relpath):
    world = build(tmp_path, "laptop-postinstall")
    with pytest.raises(EvidenceRefused):
        world.write_evidence(relpath, "x")
    assert not (world.sandbox.parent / "escape.txt").exists()
    assert not (world.home.parent / "escape.txt").exists()


def test_evidence_never_follows_a_symlink_out(tmp_path):
    world = build(tmp_path, "laptop-postinstall")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("untouched")
    (world.home / "link-dir").symlink_to(outside)
    (world.home / "link-file").symlink_to(outside / "victim.txt")
    os.mkfifo(world.home / "fifo")
    for relpath in ("link-dir/victim.txt", "link-dir/new.txt", "link-file", "fifo"):
        with pytest.raises(EvidenceRefused):
            world.write_evidence(relpath, "pwned")
    assert (outside / "victim.txt").read_text() == "untouched"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    with pytest.raises(EvidenceRefused, match="where"):
        world.write_evidence("x", "y", where="/tmp")
    with pytest.raises(EvidenceRefused, match="no target"):
        world.write_evidence("x", "y", where="target:nope")


# -- validate and schema -------------------------------------------------------------------------
def test_validate_names_each_problem_by_its_place():
    spec = {
        "projects": [{"name": "api", "manager": "pip"}, {"name": "Web App"}],
        "credentials": [{"type": "npm-token", "where": "project"}],
        "colour": "blue",
    }
    problems = dict(plugin.validate(spec, {"laptop-postinstall": {}}))
    assert "'npm', 'yarn1', 'pnpm' or 'bun'" in problems[("world", "projects", 0, "manager")]
    assert "lowercase" in problems[("world", "projects", 1, "name")]
    assert problems[("world", "colour")].startswith("unknown key 'colour'; known keys: caches")
    assert len(problems) == 3  # the variant adds nothing new: no duplicates


def test_validate_a_variants_overrides():
    spec = {"projects": [{"name": "api"}], "credentials": [{"type": "npm-token", "where": "env"}]}
    assert plugin.validate(spec, {v: {} for v in VARIANTS}) == []
    variants = {
        "ci-runner": {"credentials": [{"type": "private-key", "where": "env"}]},
        "bad": {"profile": "server"},
        "odd": ["not", "a", "mapping"],
        "typo": {"projects": [{"name": "api", "instaled": False}]},
    }
    problems = dict(plugin.validate(spec, variants))
    where = problems[("variants", "ci-runner", "credentials", 0, "where")]
    assert where == "a private-key cannot live in 'env'; it can live in: home"
    assert (
        "'laptop-postinstall', 'laptop-ignore-scripts' or 'ci-runner'"
        in problems[("variants", "bad", "profile")]
    )
    assert ("variants", "bad", "projects") not in problems  # no noise after a bad profile
    assert problems[("variants", "odd")] == "must be a mapping of world overrides"
    assert problems[("variants", "typo", "projects", 0, "instaled")].startswith(
        "unknown key 'instaled'; known keys: affected, git, installed"
    )
    assert len(problems) == 4


def test_validate_what_only_the_whole_world_shows():
    spec = {
        "projects": [
            {"name": "api"},
            {"name": "api"},
            {"name": "web", "affected": False, "via": "nested"},
        ],
        "credentials": [
            {"type": "npm-token", "where": "project", "project": "nope"},
            {"type": "aws-access-key"},
            {"type": "aws-access-key", "profile": "b"},
            {"type": "aws-access-key", "profile": "c"},
            {"type": "github-token"},
            {"type": "github-token"},
        ],
    }
    problems = dict(plugin.validate(spec, {}))
    assert "a second project named 'api'" in problems[("world", "projects", 1, "name")]
    assert "clean project" in problems[("world", "projects", 2, "via")]
    assert "no project named 'nope'" in problems[("world", "credentials", 0, "project")]
    assert "AWS allows two" in problems[("world", "credentials", 3)]
    assert "the same place as credentials[4]" in problems[("world", "credentials", 5)]


def test_the_schema_accepts_the_bundled_profiles_and_rejects_typos():
    schemas = plugin.schema()
    from steps.world.model import PROFILES

    for profile in PROFILES.values():
        jsonschema.validate(profile, schemas["world"])
    jsonschema.validate({"profile": "ci-runner"}, schemas["variant"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"projects": [{"name": "a", "manger": "npm"}]}, schemas["world"])


def test_the_wheel_carries_the_templates(tmp_path):
    """hatch packs every file under steps/ (nothing in .gitignore covers the templates)."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("runbook-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = templates.manifest()
    wanted = {f"steps/world/templates/{row['archive']}" for row in manifest["templates"].values()}
    wanted |= {f"steps/world/templates/{row['archive']}" for row in manifest["caches"].values()}
    wanted |= {"steps/world/templates/manifest.json", "steps/world/aws_child.py"}
    wanted |= {"steps/world/templates/registry/axios/axios-1.14.0.tgz"}
    assert wanted <= names, sorted(wanted - names)
