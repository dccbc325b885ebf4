"""Credential discovery on hostile or broken files, through the real `runbook secrets` command.

A FIFO or a symlink to /dev/zero where a credential file belongs must become a problem naming
the file, never a hang; a file partly made of binary bytes, or far bigger than a credential file,
is read as far as it can be and every credential found in it is listed, with a note. Paths with
escape sequences are shown escaped in the table; JSON stays JSON. Rotating a key that lives in a
file with bytes that are not text is refused before anything is created, and the file is left
byte for byte as it was (real moto server). Whenever something could not be read, the command
exits 3, never the clean 0: the list may be incomplete.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.journal import read_entries
from steps.credentials.discover import discover
from tests.conftest import ROOT, RUNBOOK
from tests.fixtures.credentials.plant import aws_key_id, aws_secret, npm_token
from tests.moto_server import MotoServer, start_moto, stop_moto

TIMEOUT = 60  # seconds: far more than discovery needs, far less than forever
MiB = 1024 * 1024


def secrets_cli(home: Path, *args: str | Path, timeout: float = TIMEOUT):
    """`runbook secrets ARGS` with HOME (and nothing else of the caller's) in the test's dir.
    A hang fails the test with TimeoutExpired instead of blocking the suite."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [str(RUNBOOK), "secrets", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def problems_of(stderr: str) -> dict[str, str]:
    """`runbook: WHERE: MESSAGE` lines of stderr, by WHERE."""
    out = {}
    for line in stderr.splitlines():
        assert line.startswith("runbook: "), line
        where, _, message = line[len("runbook: ") :].partition(": ")
        out[where] = message
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    for sub in (".aws", ".ssh", ".docker", ".config/gh", ".config/git"):
        (path / sub).mkdir(parents=True)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


# -- FIFOs, devices, symlinks ---------------------------------------------------------------------
def test_fifos_and_dev_zero_links_are_problems_and_the_command_finishes(
    home: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifos = [
        home / ".aws" / "credentials",
        home / ".git-credentials",
        home / ".npmrc",
        home / ".config" / "gh" / "hosts.yml",
        home / ".ssh" / "id_ed25519",
        project / ".env",
        project / ".npmrc",
        project / ".yarnrc.yml",
    ]
    zeros = [
        home / ".aws" / "config",
        home / ".config" / "git" / "credentials",
        home / ".yarnrc.yml",
        home / ".docker" / "config.json",
        home / ".ssh" / "id_rsa",
    ]
    for path in fifos:
        os.mkfifo(path)
    for path in zeros:
        path.symlink_to("/dev/zero")
    monkeypatch.chdir(home / ".ssh")  # a socket path must be short: bind it relative
    with socket.socket(socket.AF_UNIX) as control_master:
        control_master.bind("cm-socket")  # ssh's ControlMaster: not a key, passed over
    token = npm_token()
    (project / ".env.local").write_text(f"NPM_TOKEN={token}\n")

    result = secrets_cli(home, "--host", project, "--format", "json")

    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    [found] = report["credentials"]  # the one regular file is still read
    assert found["location"]["path"] == str(project / ".env.local")
    problems = problems_of(result.stderr)
    expected = {str(p): "cannot read: is a FIFO, not a regular file" for p in fifos}
    expected |= {str(p): "cannot read: is a character device, not a regular file" for p in zeros}
    assert problems == expected
    assert {p["where"]: p["message"] for p in report["problems"]} == expected
    assert report["summary"].endswith(f"({len(expected)} problems)")
    assert token not in result.stdout + result.stderr


def test_a_symlinked_dotfile_is_followed_to_a_regular_file(home: Path, project: Path) -> None:
    """Dotfile managers link ~/.npmrc into a repository: read through the link; the link is
    what the location names (that is the file a rotation would have to rewrite)."""
    token = npm_token()
    kept = home / "dotfiles" / "npmrc"
    kept.parent.mkdir()
    kept.write_text(f"//registry.npmjs.org/:_authToken={token}\n")
    (home / ".npmrc").symlink_to(kept)

    result = secrets_cli(home, "--host", project, "--format", "json")

    assert result.returncode == 0 and result.stderr == "", result.stderr
    [found] = json.loads(result.stdout)["credentials"]
    assert found["location"]["path"] == str(home / ".npmrc") and found["rotation"] == "npm"


def test_a_symlink_inside_a_target_is_not_followed_but_never_passed_over(
    home: Path, project: Path, tmp_path: Path
) -> None:
    """A repository's `.env` linked to a file elsewhere is not read (a repository could point one
    anywhere), so the list may be incomplete: a problem names the link and the command that
    checks the file, and the exit code is 3. A link to a file read anyway (HOME's own `.npmrc`)
    or to nothing is no problem."""
    shared = tmp_path / "shared"
    shared.mkdir()
    token, other = npm_token(), npm_token()
    (shared / "prod.env").write_text(f"NPM_TOKEN={token}\n")
    (shared / "work.npmrc").write_text(f"//registry.npmjs.org/:_authToken={other}\n")
    (project / ".env.production").symlink_to("../shared/prod.env")
    (project / ".env.gone").symlink_to("nowhere")
    kept = home / "dotfiles" / "npmrc"
    kept.parent.mkdir()
    kept.write_text(f"//registry.npmjs.org/:_authToken={other}\n")
    (home / ".npmrc").symlink_to(kept)
    (project / ".npmrc").symlink_to(kept)

    result = secrets_cli(home, "--host", project, "--format", "json")

    assert result.returncode == 3, result.stderr
    link = project / ".env.production"
    assert problems_of(result.stderr) == {
        str(link): "not read: a symlink (to ../shared/prod.env) inside the target is not "
        f"followed; check the file it points to with `runbook secrets {shared / 'prod.env'}`"
    }
    [found] = json.loads(result.stdout)["credentials"]  # HOME's npmrc, read once
    assert found["location"]["path"] == str(home / ".npmrc")
    assert token not in result.stdout + result.stderr

    # the command the problem names finds what the link hid; an npmrc under another name is
    # read as an npmrc
    named = secrets_cli(home, shared / "prod.env", shared / "work.npmrc", "--format", "json")
    assert named.returncode == 0, named.stderr
    found = json.loads(named.stdout)["credentials"]
    assert sorted((c["type"], c["rotation"]) for c in found) == [
        ("npm-token", "npm"),
        ("npm-token", "npm"),
    ]
    assert {c["location"]["path"] for c in found} == {
        str(shared / "prod.env"),
        str(shared / "work.npmrc"),
    }


def test_a_path_named_on_the_command_line_is_followed_but_must_be_regular(
    home: Path, project: Path
) -> None:
    link = project / "secrets.env"
    link.symlink_to("/dev/zero")
    fifo = project / "pipe.env"
    os.mkfifo(fifo)

    result = secrets_cli(home, link, fifo, "--format", "json")

    assert result.returncode == 3, result.stderr
    assert problems_of(result.stderr) == {
        str(link): "cannot read: is a character device, not a regular file",
        str(fifo): "cannot read: is a FIFO, not a regular file",
    }


# -- bytes that are not text ------------------------------------------------------------------
def binary_credentials(home: Path) -> tuple[Path, str, str]:
    """A ~/.aws/credentials whose [default] key is fine and whose other lines hold binary
    junk (a pasted PNG header, a latin-1 comment); returns (path, key id, secret)."""
    key, secret = aws_key_id(), aws_secret()
    path = home / ".aws" / "credentials"
    path.write_bytes(
        b"# caf\xe9 laptop\n"
        b"[default]\n"
        + f"aws_access_key_id = {key}\n".encode()
        + f"aws_secret_access_key = {secret}\n".encode()
        + b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR\xff\xfe\n"
        + b"[other]\n"
        + b"region = eu-west-1\n"
    )
    path.chmod(0o600)
    return path, key, secret


def test_a_key_in_a_file_with_binary_lines_is_listed_with_a_note(home: Path, project: Path):
    path, key, secret = binary_credentials(home)

    result = secrets_cli(home, "--host", project, "--format", "json")

    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    [aws] = report["credentials"]
    assert aws["type"] == "aws-access-key" and aws["rotation"] == "aws"
    assert aws["where"] == "~/.aws/credentials:3 [default] aws_access_key_id"
    # str.splitlines counts lines, as the rewrite does: "\x00\x00\x00\rIHDR\xff\xfe" is two
    note = "holds bytes that are not UTF-8 text: lines 1, 5, 8 were skipped"
    assert aws["notes"] == [note]
    assert problems_of(result.stderr)[str(path)] == note
    assert key not in result.stdout + result.stderr and secret not in result.stdout

    table = secrets_cli(home, "--host", project)
    lines = table.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("aws-access-key"))
    assert lines[row + 1] == f"    note: the file {note}"


# -- big files --------------------------------------------------------------------------------
def sparse_env(path: Path, size: int, last_line: str) -> None:
    """A file of `size` bytes (a hole, read as NUL bytes: one huge line) and then a real line."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        handle.seek(size)
        handle.write(b"\n" + last_line.encode() + b"\n")


def test_a_secret_on_the_last_line_of_a_100_mib_env_is_found_in_bounded_memory(
    home: Path, project: Path
) -> None:
    token = npm_token()
    sparse_env(project / ".env", 100 * MiB, f"NPM_TOKEN={token}")
    # peak memory of the child alone: a wrapper process waits for it and reports its maxrss
    probe = (
        "import json, resource, subprocess, sys\n"
        "out = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': out.returncode, 'out': out.stdout, 'err': out.stderr, "
        "'kib': peak}))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    wrapped = subprocess.run(
        [sys.executable, "-c", probe, str(RUNBOOK), "secrets", project, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    run = json.loads(wrapped.stdout)
    assert run["rc"] == 3, run["err"]
    [found] = json.loads(run["out"])["credentials"]
    assert found["where"] == f"{project / '.env'}:2 NPM_TOKEN"
    note = "is 100 MiB, read line by line: line 1 was over 64 KiB and skipped"
    assert found["notes"] == [note]
    assert problems_of(run["err"]) == {str(project / ".env"): note}
    assert run["kib"] < 80 * 1024, f"peak {run['kib']} KiB: the file was held in memory"


def test_a_file_over_the_streaming_limit_is_a_problem_only(home: Path, project: Path) -> None:
    sparse_env(project / ".env", 1536 * MiB, f"NPM_TOKEN={npm_token()}")
    result = secrets_cli(home, project, "--format", "json")
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["credentials"] == []
    assert problems_of(result.stderr) == {
        str(project / ".env"): "cannot read: is 1536 MiB, over the 1024 MiB limit"
    }


def test_long_lines_in_a_big_file_are_skipped_and_every_other_line_is_read(tmp_path: Path):
    """A streamed file: lines over 64 KiB are skipped wherever they are, numbering stays right,
    a quoted value that never ends does not swallow the rest."""
    first, last = npm_token(), npm_token()
    path = tmp_path / ".env"
    filler = b"# " + b"x" * (5 * MiB) + b"\n"
    with open(path, "wb") as handle:
        handle.write(f"NPM_TOKEN={first}\n".encode())  # line 1
        handle.write(filler)  # line 2: too long
        handle.write(b'BROKEN="never closed\n')  # line 3
        handle.write(b"PLAIN=1\r\n" * 1000)  # lines 4-1003
        handle.write(b"K=" + b"y" * (70 * 1024) + b"\n")  # line 1004: too long
        handle.write(f"NODE_AUTH_TOKEN={last}".encode())  # line 1005, no final newline
    found = discover(targets=[path])
    assert [(c.location.name, c.location.line) for c in found.credentials] == [
        ("NPM_TOKEN", 1),
        ("NODE_AUTH_TOKEN", 1005),
    ]
    note = "is 5 MiB, read line by line: lines 2, 1004 were over 64 KiB and skipped"
    assert found.credentials[0].notes == [note]
    assert (str(path), note) in found.problems
    assert (f"{path}:3", "unterminated quoted value of BROKEN") in found.problems


def test_a_garbage_file_lists_twenty_problems_and_counts_the_rest(home: Path) -> None:
    """A credentials file full of junk must not flood the output: 20 problems, then a count;
    the key in it is still found."""
    key, secret = aws_key_id(), aws_secret()
    path = home / ".aws" / "credentials"
    junk = "".join(f"junk line {n}\n" for n in range(500))
    path.write_text(
        f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n{junk}"
    )
    found = discover(home=home)
    assert [c.value for c in found.credentials] == [key]
    mine = [(where, message) for where, message in found.problems if where.startswith(str(path))]
    assert len(mine) == 21
    assert mine[0] == (
        f"{path}:4",
        "malformed AWS credentials file: expected `key = value` or a [section]",
    )
    assert mine[-1] == (str(path), "480 more problems not listed")


# -- what the table shows -----------------------------------------------------------------------
def test_escape_sequences_in_paths_are_shown_escaped_and_json_stays_json(
    home: Path, project: Path
) -> None:
    evil = project / "evil\x1b[2K"
    evil.mkdir()
    token = npm_token()
    (evil / ".env").write_text(f"NPM_TOKEN={token}\n")
    os.mkfifo(evil / ".env.local")
    odd = project / os.fsdecode(b"latin\xe9")  # a name that is not UTF-8
    odd.mkdir()
    (odd / ".env").write_text(f"NPM_TOKEN={npm_token()}\n")

    table = secrets_cli(home, project)
    assert table.returncode == 3, table.stderr
    assert "\x1b" not in table.stdout + table.stderr
    assert f"{project}/evil\\x1b[2K/.env:1 NPM_TOKEN" in table.stdout
    assert f"{project}/latin\\udce9/.env:1 NPM_TOKEN" in table.stdout
    assert f"runbook: {project}/evil\\x1b[2K/.env.local: cannot read: is a FIFO" in table.stderr

    raw = secrets_cli(home, project, "--format", "json")
    assert raw.returncode == 3, raw.stderr
    assert "\x1b" not in raw.stdout  # JSON escapes control characters itself
    report = json.loads(raw.stdout)
    paths = {c["location"]["path"] for c in report["credentials"]}
    assert paths == {str(evil / ".env"), str(odd / ".env")}
    assert token not in table.stdout + raw.stdout


# -- rotation never damages such a file -----------------------------------------------------------
@pytest.fixture
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    server.reset()
    yield server
    stop_moto(server)


def test_rotating_a_key_from_a_file_with_binary_lines_is_refused_and_the_file_kept(
    home: Path, project: Path, moto: MotoServer, tmp_path: Path
) -> None:
    """`Effects.write_secret_file` writes text: the bytes that are not UTF-8 would not survive
    an in-place rewrite, so the rotation stops before any key is created."""
    moto.user("alice")
    old = moto.create_key("alice")
    moto.enforce_auth()
    path = home / ".aws" / "credentials"
    junk = b"# caf\xe9\n[default]\n"
    body = f"aws_access_key_id = {old.access_key_id}\n"
    body += f"aws_secret_access_key = {old.secret_access_key}\n"
    path.write_bytes(junk + body.encode() + b"\x89PNG\r\n\x1a\n")
    path.chmod(0o600)
    before = path.read_bytes()
    journal = tmp_path / "run.jsonl"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "RUNBOOK_OPERATOR": "tester",
        "NO_PROXY": "*",
    }
    playbook = ROOT / "tests" / "playbooks" / "aws-rotation.yaml"
    flags = ["--yes", "--allow-insecure-keyring", "--aws-endpoint-url", moto.url]
    result = subprocess.run(
        [str(RUNBOOK), "run", playbook, "--target", project, "--journal", journal, *flags],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    [finished] = [e["data"] for e in read_entries(journal) if e["event"] == "step_finished"]
    assert finished["outcome"] == "failed"
    assert (
        f"nothing was changed: {path}:1: holds bytes that are not UTF-8 text"
        in (finished["summary"])
    )
    assert "rotate this credential by hand" in finished["summary"]
    assert path.read_bytes() == before
    with moto.no_auth():
        assert [k.fingerprint for k in moto.keys("alice")] == [old.fingerprint]
    text = result.stdout + result.stderr + journal.read_text()
    assert old.access_key_id not in text and old.secret_access_key not in text
