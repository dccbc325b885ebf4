"""The leak test for exercises: a whole drill (`exercise run --auto`, live, credentials rotated
against the stand-ins), its after-action reports in both formats and a replay scenario made
from its journal, searched for every secret: the world's own (read from a twin world built
from the same seed, and the new ones the rotations wrote) and the caller's (canaries in the
environment and in the real HOME). And nothing outside the exercise directory changes: the
real HOME and a canary tree (the current directory of the drill) hash the same before and
after."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path

from runbook.redact import fingerprint
from tests.conftest import EXAMPLE

SEED, VARIANT = 19, "laptop-postinstall"
VALUE_PATTERNS = [
    re.compile(r"aws_(?:access_key_id|secret_access_key)\s*=\s*(\S+)"),
    re.compile(r":_authToken=(\S+)"),
    re.compile(r"oauth_token:\s*(\S+)"),
    re.compile(r"^[A-Z_]*(?:SECRET|TOKEN|KEY|PASSWORD)[A-Z_]*=(\S+)$", re.M),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.+?)\n-----END", re.S),
    re.compile(r'"auth"\s*:\s*"([^"]+)"'),
    re.compile(r"https://[^:/\s]+:([^@\s]+)@"),
]
CALLER = {
    "GITHUB_TOKEN": "ghp_" + "CallerCanary" * 3,
    "NPM_TOKEN": "npm_" + "CallerCanary0" * 2 + "abcdefghij",
    "AWS_SECRET_ACCESS_KEY": "callerCanarySecret/" + "Q" * 21,
}


def secret_values(root: Path) -> dict[str, str]:
    """Every credential value written under `root` (the world's files), by a label."""
    found: dict[str, str] = {}
    for path in root.rglob("*"):
        parts = set(path.parts)
        if not path.is_file() or path.is_symlink() or parts & {"node_modules", ".git", "_cacache"}:
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for pattern in VALUE_PATTERNS:
            for match in pattern.finditer(text):
                for piece in match.group(1).splitlines():
                    value = piece.strip().strip("'\"")
                    if len(value) >= 12 and not value.startswith("${"):
                        found[f"{path.name}:{fingerprint(value)}"] = value
    return found


def leaks(canaries: dict[str, str], outputs: dict[str, str]) -> list[str]:
    """(canary fingerprint, output) for each canary, or a long middle piece of one, found."""
    out = []
    for label, value in canaries.items():
        pieces = [value] + ([value[4:-4]] if len(value) >= 20 else [])
        for name, text in outputs.items():
            if any(piece in text for piece in pieces):
                out.append(f"{label} sha256:{fingerprint(value)} in {name}")
    return out


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: type, mode, size, content hash and mtime."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path.relative_to(root))] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, digest,
                st.st_mtime_ns,
            )  # fmt: skip
    return state


def test_no_secret_leaves_the_world_and_nothing_outside_it_changes(
    tmp_path: Path, sandbox_env: dict[str, str], run_cli
) -> None:
    from steps.world.plugin import plugin

    # the caller's machine: canaries in the environment and in the real HOME
    home = Path(sandbox_env["HOME"])
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIA{'CALLERCANARY2345'}\n"
        f"aws_secret_access_key = {CALLER['AWS_SECRET_ACCESS_KEY']}\n"
    )
    (home / ".npmrc").write_text(f"//registry.npmjs.org/:_authToken={CALLER['NPM_TOKEN']}\n")
    canary_tree = tmp_path / "canary"
    shutil.copytree(EXAMPLE, canary_tree, symlinks=True)  # the drill's current directory
    env = {**sandbox_env, **CALLER, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    before = (tree_state(home), tree_state(canary_tree))
    real_loader = Path("/tmp/ld.py").exists()

    # the world's own secrets: a twin built from the same seed holds the same ones
    twin_dir = tmp_path / "twin"
    twin_dir.mkdir()
    twin = plugin.build({"os": "linux"}, VARIANT, {}, SEED, twin_dir)
    twin.stop_services()
    world_secrets = secret_values(twin.root)
    assert len(world_secrets) >= 6, sorted(world_secrets)  # aws x2, npm, gh, ssh, .env
    password = twin.npm_password

    directory = tmp_path / "drill"
    drill = run_cli(
        "exercise", "run", "axios-2026-03-drill", "--auto", "--variant", VARIANT,
        "--seed", str(SEED), "--dir", directory, env=env, cwd=canary_tree, timeout=240,
    )  # fmt: skip
    assert drill.returncode == 0, drill.stdout + drill.stderr
    rotated = secret_values(directory / "world" / "root")  # the new key and token are in it
    assert set(rotated.values()) - set(world_secrets.values()), "the rotations wrote new secrets"
    kept = set(rotated.values()) & set(world_secrets.values())
    assert kept, "the twin holds the drill world's secrets (those not rotated are still there)"
    journal = (directory / "run.jsonl").read_text()
    gho = next(v for v in world_secrets.values() if v.startswith("gho_"))
    assert f"gho_…{gho[-4:]}" in journal, "the drill found it and journaled its redacted form"
    md = run_cli("exercise", "report", directory, "-o", tmp_path / "aar.md", env=env)
    html = run_cli("exercise", "report", directory, "-o", tmp_path / "aar.html", env=env)
    replay = run_cli("exercise", "from-journal", directory / "run.jsonl", env=env)
    for result in (md, html, replay):
        assert result.returncode == 0, result.stderr

    outputs = {
        "drill stdout": drill.stdout,
        "drill stderr": drill.stderr,
        "aar.md": (tmp_path / "aar.md").read_text(),
        "aar.html": (tmp_path / "aar.html").read_text(),
        "replay scenario": replay.stdout,
        "report stderr": md.stderr + html.stderr + replay.stderr,
    }
    for path in directory.rglob("*"):  # the journal, the run's backups, the ground truth
        if path.is_file() and "world" not in path.relative_to(directory).parts:
            outputs[str(path.relative_to(directory))] = path.read_text(errors="replace")
    canaries = {**world_secrets, **rotated, **{f"caller {k}": v for k, v in CALLER.items()}}
    assert leaks(canaries, outputs) == []
    # the world's made-up account password is for the facilitator only (the ground truth)
    truth = "run.d/ground-truth.json"
    assert password and password in outputs[truth]
    assert (
        leaks({"world password": password}, {k: v for k, v in outputs.items() if k != truth}) == []
    )
    # the caller's secrets never entered the world either
    inside = {
        str(p): p.read_text(errors="replace")
        for p in (directory / "world").rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 1 << 20
    }
    assert leaks({f"caller {k}": v for k, v in CALLER.items()}, inside) == []

    # nothing outside the exercise directory changed
    assert (tree_state(home), tree_state(canary_tree)) == before
    assert Path("/tmp/ld.py").exists() == real_loader
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [], "TMPDIR untouched"
