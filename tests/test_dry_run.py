"""A dry run of the full bundled playbook changes no byte of the target or of HOME."""

from __future__ import annotations

from pathlib import Path

from runbook.journal import read_entries, verify
from tests.conftest import BUNDLED
from tests.treehash import tree_digest


def populate_home(home: Path) -> None:
    """A believable developer HOME: npm config and cache, AWS and gh credentials, an SSH key."""
    token = "npm_" + "A1b2C3d4" * 4 + "WXYZ"
    # registries and AWS on a closed loopback port: a test never reaches the internet
    (home / ".npmrc").write_text(
        f"registry=http://127.0.0.1:9/\n//127.0.0.1:9/:_authToken={token}\n"
    )
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = "
        + "AKIA"
        + "Z" * 16
        + "\naws_secret_access_key = "
        + "s" * 40
        + "\n"
    )
    index = home / ".npm" / "_cacache" / "index-v5" / "ab" / "cd"
    index.mkdir(parents=True)
    entry = '{"key":"pacote:tarball:axios@1.14.1","integrity":"sha512-x","time":1}'
    (index / "ef0123").write_text(f"deadbeef\t{entry}\n")
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    (home / ".config" / "gh").mkdir(parents=True)
    (home / ".config" / "gh" / "hosts.yml").write_text("github.com:\n    oauth_token: x\n")


def test_dry_run_of_the_bundled_playbook_touches_nothing(run_cli, sandbox_env, project):
    home = Path(sandbox_env["HOME"])
    populate_home(home)
    before_target, before_home = tree_digest(project), tree_digest(home)

    env = {**sandbox_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = run_cli("run", "axios-2026-03", "--target", project, "--dry-run", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert tree_digest(project) == before_target
    assert tree_digest(home) == before_home
    journal = Path(result.stdout.split("journal: ")[1].split()[0])
    assert journal.is_relative_to(sandbox_env["XDG_STATE_HOME"])
    head = result.stdout.split("head: ")[1].split()[0]
    assert verify(journal, head).ok
    assert "ok       detect                        7 compromised, 1 at-risk" in result.stdout
    planned = next(e["data"] for e in read_entries(journal) if e["event"] == "step_planned")
    found = sorted(
        (f["kind"], f["package"], f.get("version"))
        for f in planned["findings"]
        if f["severity"] == "compromised"
    )
    assert ("lockfile", "axios", "1.14.1") in found
    assert ("installed", "plain-crypto-js", "4.2.0") in found
    assert ("cache", "axios", "1.14.1") in found  # the step scans the (sandbox) host too
    report = run_cli("report", journal)
    assert report.returncode == 0
    assert "| Mode | dry-run |" in report.stdout
    assert BUNDLED.exists()
