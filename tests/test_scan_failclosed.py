"""Fail closed: what could not be checked is never "clean", nothing planted blocks or floods the
scanner, no symlink leads it out of the tree, and no escape sequence reaches the terminal.

Every FIFO, sparse-file and symlink case runs the real `runbook` command in a subprocess with a
timeout: a regression hangs that subprocess, not the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import git
import pytest

from runbook.journal import read_entries
from runbook.playbook import load_playbook
from runbook.step import Finding
from steps.npm.badset import BadSet
from steps.scan import ScanOptions, ScanResult, scan, unchecked, verdict
from steps.scan.history import scan_repo
from steps.scan.output import to_json, to_sarif, to_table
from tests.conftest import BUNDLED, RUNBOOK

INCIDENT = load_playbook(BUNDLED).playbook.incident
BAD = BadSet(INCIDENT)
GiB = 1024**3
ESC = "\x1b"
# cursor up + erase line, and an OSC that retitles the window
HOSTILE = f"evil{ESC}[1A{ESC}[2K{ESC}]0;owned\x07"


def cli(env: dict[str, str], *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The installed `runbook`, bytes out (so a raw ESC byte cannot hide in decoding)."""
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def scan_json(env: dict[str, str], *args: str | Path) -> tuple[int, dict]:
    result = cli(env, "scan", *args, "--format", "json")
    assert not result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def bad_lockfile(path: Path) -> Path:
    """A package-lock v3 that resolves axios 1.14.1 directly."""
    return write_json(
        path,
        {
            "name": "app",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {"name": "app", "dependencies": {"axios": "1.14.1"}},
                "node_modules/axios": {"version": "1.14.1"},
            },
        },
    )


def finding(severity: str, path: str = "/p/package.json", message: str = "m") -> Finding:
    return Finding(kind="manifest", severity=severity, path=path, message=message)


# -- the verdict ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ([], False),
        (["info"], False),  # info never changes the verdict
        (["unknown"], None),
        (["unknown", "info"], None),
        (["at-risk", "unknown"], True),
        (["compromised"], True),
    ],
)
def test_verdict_is_tri_state(severities, expected):
    assert verdict([finding(s) for s in severities]) is expected


def test_unchecked_lists_each_place_once_with_its_reasons():
    found = [
        finding("unknown", "/p/package.json", "a"),
        finding("compromised", "/p/package-lock.json"),
        finding("unknown", "/p/package.json", "b"),
        finding("unknown", "/q/yarn.lock", "c"),
        finding("info", "/r/package.json"),
    ]
    assert [(u.path, u.reason) for u in unchecked(found)] == [
        ("/p/package.json", "a; b"),
        ("/q/yarn.lock", "c"),
    ]


def test_outputs_of_an_incomplete_scan(tmp_path):
    broken = tmp_path / "app" / "package.json"
    broken.parent.mkdir()
    broken.write_bytes(b'{"dependencies": {"axios": ')  # cut off: mentions axios, cannot be parsed
    result = scan([tmp_path], INCIDENT, ScanOptions())
    assert result.affected is None
    data = json.loads(to_json(result))
    assert data["affected"] is None
    assert data["unchecked"] == [{"path": str(broken), "reason": data["findings"][0]["message"]}]
    assert "cannot parse package.json" in data["unchecked"][0]["reason"]
    last = to_table(result).rstrip().splitlines()[-1]
    assert last.startswith(f"INCOMPLETE: could not check 1 file ({broken});")
    sarif = json.loads(to_sarif(result))
    [run] = sarif["runs"]
    assert [r["level"] for r in run["results"]] == ["note"]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "warning"
    uri = note["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": "app/package.json", "uriBaseId": "SCANROOT"}


def test_outputs_of_a_clean_and_of_an_affected_scan(tmp_path):
    clean = ScanResult(targets=[str(tmp_path)])
    assert json.loads(to_json(clean))["affected"] is False
    assert json.loads(to_json(clean))["unchecked"] == []
    both = ScanResult(
        targets=[str(tmp_path)],
        findings=[finding("compromised"), finding("unknown", "/q/yarn.lock")],
    )
    data = json.loads(to_json(both))
    assert data["affected"] is True
    assert data["unchecked"] == [{"path": "/q/yarn.lock", "reason": "m"}]
    assert (
        to_table(both)
        .rstrip()
        .endswith("AFFECTED: 1 compromised, 1 unknown; also could not check 1 file")
    )


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"package.json": b'{"dependencies": {"axios": '}, 3),  # unknown only
        ({"bun.lockb": b"\x00bun-lockfile\x00axios\x001.14.1\x00"}, 3),  # binary: not checked
        (
            {
                "package.json": b'{"dependencies": {"axios": "^1.14.0"}}',
                "sub/package.json": b'{"dependencies": {"axios": ',
            },
            1,  # at risk wins over unknown
        ),
        ({"package.json": b'{"dependencies": {"axios": "1.14.0"}}'}, 0),
        # an installed package.json nested 100,000 deep: unknown, never a RecursionError
        (
            {
                "package.json": b'{"dependencies": {"left-pad": "1.0.0"}}',
                "node_modules/axios/package.json": b"[" * 100_000 + b"]" * 100_000,
            },
            3,
        ),
    ],
)
def test_exit_codes(sandbox_env, tmp_path, files, code):
    for name, data in files.items():
        (tmp_path / "p" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "p" / name).write_bytes(data)
    got, data = scan_json(sandbox_env, tmp_path / "p")
    assert got == code
    assert data["affected"] is {0: False, 1: True, 3: None}[code]


def test_an_output_file_that_cannot_be_written_is_a_usage_error(sandbox_env, tmp_path):
    result = cli(sandbox_env, "scan", tmp_path, "-o", tmp_path / "no-such-dir" / "out.json")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("runbook: cannot write ")
    assert b"Traceback" not in result.stderr


def test_help_documents_exit_code_3(sandbox_env):
    text = cli(sandbox_env, "scan", "--help").stdout.decode()
    assert "3 nothing compromised or at risk" in " ".join(text.split())


# -- FIFOs, devices, huge files, symlinks --------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "yarn.lock",
        "package.json",
        "package-lock.json",
        "node_modules/.package-lock.json",
        "node_modules/axios/package.json",  # an installed package's manifest
    ],
)
def test_a_fifo_never_blocks_the_scan(sandbox_env, tmp_path, name):
    fifo = tmp_path / "app" / name
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    code, data = scan_json(sandbox_env, tmp_path / "app")  # a blocked read times out here
    assert code == 3
    where = fifo.parent if name.endswith("axios/package.json") else fifo
    [entry] = data["unchecked"]
    assert entry["path"] == str(where)
    assert "is a FIFO, not a regular file" in entry["reason"]


def test_a_fifo_manifest_beside_a_bad_lockfile_never_blocks(sandbox_env, tmp_path):
    """The lockfile parser reads the manifest beside it too: that read must not block either."""
    app = tmp_path / "app"
    bad_lockfile(app / "package-lock.json")
    os.mkfifo(app / "package.json")
    code, data = scan_json(sandbox_env, app)
    assert code == 1  # the lockfile's evidence, and the FIFO as unchecked
    assert {f["severity"] for f in data["findings"]} == {"compromised", "unknown"}
    assert [u["path"] for u in data["unchecked"]] == [str(app / "package.json")]


def test_huge_sparse_lockfile_and_dev_zero_are_refused_unread(sandbox_env, tmp_path):
    app = tmp_path / "app"
    (app / "web").mkdir(parents=True)
    with open(app / "package-lock.json", "wb") as handle:
        handle.truncate(GiB)  # sparse: claims 1 GiB, writes nothing
    (app / "web" / "yarn.lock").symlink_to("/dev/zero")
    code, data = scan_json(sandbox_env, app)
    assert code == 3
    reasons = {u["path"]: u["reason"] for u in data["unchecked"]}
    assert reasons == {
        str(app / "package-lock.json"): "cannot read package-lock.json: "
        "is 1024 MiB, over the 256 MiB limit",
        str(app / "web" / "yarn.lock"): "cannot read yarn.lock: "
        "is a symlink; not followed: points to /dev/zero",
    }


def test_symlinked_lockfile_and_manifest_are_not_followed_out_of_the_tree(sandbox_env, tmp_path):
    outside = tmp_path / "outside"
    bad_lockfile(outside / "package-lock.json")
    write_json(outside / "package.json", {"dependencies": {"axios": "^1.14.0"}})
    (outside / "secret.txt").write_text("root:x:0:0:do-not-quote-me\n")
    app = tmp_path / "app"
    (app / "node_modules").mkdir(parents=True)
    (app / "package-lock.json").symlink_to(outside / "package-lock.json")
    (app / "package.json").symlink_to(outside / "package.json")
    (app / "yarn.lock").symlink_to(outside / "secret.txt")  # as `yarn.lock -> /etc/passwd`
    (app / "node_modules" / ".package-lock.json").symlink_to(outside / "package-lock.json")
    result = cli(sandbox_env, "scan", app, "--format", "json")
    assert result.returncode == 3  # the outside lockfile's axios@1.14.1 is not this project's
    assert b"do-not-quote-me" not in result.stdout
    data = json.loads(result.stdout)
    assert {f["severity"] for f in data["findings"]} == {"unknown"}
    reasons = {Path(u["path"]).relative_to(app).as_posix(): u["reason"] for u in data["unchecked"]}
    assert reasons == {
        "package-lock.json": "cannot read package-lock.json: is a symlink; not followed: "
        f"points to {outside / 'package-lock.json'}",
        "package.json": "cannot read package.json: is a symlink; not followed: "
        f"points to {outside / 'package.json'}",
        "yarn.lock": f"cannot read yarn.lock: is a symlink; not followed: points to "
        f"{outside / 'secret.txt'}",
        "node_modules/.package-lock.json": "cannot read .package-lock.json: is a symlink; "
        f"not followed: points to {outside / 'package-lock.json'}",
    }


def test_pnpm_symlinked_layout_has_no_false_unknowns(tmp_path):
    nm = tmp_path / "app" / "node_modules"
    real = nm / ".pnpm" / "axios@1.14.1" / "node_modules" / "axios"
    write_json(real / "package.json", {"name": "axios", "version": "1.14.1"})
    dep = nm / ".pnpm" / "follow-redirects@1.15.6" / "node_modules" / "follow-redirects"
    write_json(dep / "package.json", {"name": "follow-redirects", "version": "1.15.6"})
    (real.parent / "follow-redirects").symlink_to(dep)
    (nm / "axios").symlink_to(real)
    (nm / ".pnpm" / "node_modules").mkdir()
    (nm / ".pnpm" / "node_modules" / "axios").symlink_to(real)
    write_json(tmp_path / "app" / "package.json", {"dependencies": {"axios": "1.14.1"}})
    result = scan([tmp_path / "app"], INCIDENT, ScanOptions())
    assert [(f.kind, f.severity, f.path) for f in result.findings] == [
        ("installed", "compromised", str(real)),  # once, through .pnpm; the links are skipped
        ("manifest", "at-risk", str(tmp_path / "app" / "package.json")),
    ]


def test_host_cache_files_that_are_fifos_or_npmrc_fifo(sandbox_env, tmp_path):
    home = Path(sandbox_env["HOME"])
    bucket = home / ".npm" / "_cacache" / "index-v5" / "aa" / "bb"
    bucket.mkdir(parents=True)
    os.mkfifo(bucket / "cc")
    store = home / ".local" / "share" / "pnpm" / "store" / "v10" / "index" / "ab"
    store.mkdir(parents=True)
    os.mkfifo(store / "cdef-axios@1.14.1.json")
    os.mkfifo(home / ".npmrc")  # NPM_CONFIG_USERCONFIG in the sandbox
    (tmp_path / "app").mkdir()
    code, data = scan_json(sandbox_env, tmp_path / "app", "--host")
    assert code == 3
    reasons = {u["path"]: u["reason"] for u in data["unchecked"]}
    assert reasons[str(bucket / "cc")] == (
        "cannot read this cache file: is a FIFO, not a regular file"
    )
    assert "is a FIFO" in reasons[str(store / "cdef-axios@1.14.1.json")]
    assert reasons[str(home / ".npmrc")].startswith(
        "cannot read .npmrc: is a FIFO, not a regular file; a cache or prefix it sets"
    )


def indicator_root(tmp_path: Path) -> Path:
    root = tmp_path / "disk"
    ps = root / "Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
    ps.parent.mkdir(parents=True)
    ps.write_bytes(b"MZ powershell stand-in")
    (root / "ProgramData").mkdir()
    (root / "home" / "alice").mkdir(parents=True)
    return root


def test_indicator_paths_that_hold_a_fifo_or_a_symlink(sandbox_env, tmp_path):
    root = indicator_root(tmp_path)
    (root / "tmp").mkdir()
    os.mkfifo(root / "tmp" / "ld.py")  # presence is the indicator: at risk, never opened
    os.mkfifo(root / "ProgramData" / "wt.exe")  # only a copy of powershell.exe counts: unknown
    code, data = scan_json(sandbox_env, "--root", root)
    assert code == 1
    got = {
        Path(f["path"]).relative_to(root).as_posix(): (f["severity"], f["message"])
        for f in data["findings"]
    }
    assert got["tmp/ld.py"][0] == "at-risk"
    assert "is a FIFO, not a regular file; not read" in got["tmp/ld.py"][1]
    assert got["ProgramData/wt.exe"][0] == "unknown"
    assert "cannot be compared" in got["ProgramData/wt.exe"][1]


def test_indicator_behind_a_folder_link_out_of_the_root_is_not_read(sandbox_env, tmp_path):
    root = indicator_root(tmp_path)
    elsewhere = tmp_path / "scanning-machine-tmp"
    elsewhere.mkdir()
    (elsewhere / "ld.py").write_text("# the scanning machine's file, not the disk's\n")
    (root / "tmp").symlink_to(elsewhere)  # an absolute link leaves the mounted disk
    big = root / "ProgramData" / "wt.exe"
    with open(big, "wb") as handle:
        handle.truncate(GiB)  # a size powershell.exe does not have: not a copy, never read
    code, data = scan_json(sandbox_env, "--root", root)
    assert code == 3
    [entry] = data["unchecked"]
    assert entry["path"] == str(root / "tmp" / "ld.py")
    assert "a folder on its path is a symlink that leads out of" in entry["reason"]
    assert all(f["severity"] == "unknown" for f in data["findings"])


# -- git history ---------------------------------------------------------------------------------
def test_history_says_when_a_commit_could_not_be_read(tmp_path, sandbox_env):
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    actor = git.Actor("Alice", "alice@example.test")
    stamp = f"{int(datetime.fromisoformat('2026-03-31T01:00:00+00:00').timestamp())} +0000"

    def commit() -> str:
        made = repo.index.commit("c", author=actor, committer=actor, author_date=stamp)
        return made.hexsha

    (root / "package-lock.json").write_text('{"packages": {"node_modules/axios": "1.14.1"')
    repo.index.add(["package-lock.json"])
    broken = commit()
    (root / "web").mkdir()
    (root / "web" / "package-lock.json").symlink_to("../vendor/axios-1.14.1/package-lock.json")
    repo.index.add(["web/package-lock.json"])
    linked = commit()
    findings = sorted(scan_repo(root, BAD), key=lambda f: f.path)
    assert [(f.severity, Path(f.path).relative_to(root).as_posix()) for f in findings] == [
        ("unknown", "package-lock.json"),
        ("unknown", "web/package-lock.json"),
    ]
    assert f"at {broken[:10]} (Alice" in findings[0].message
    assert "cannot be parsed in this commit" in findings[0].message
    assert f"at {linked[:10]} (Alice" in findings[1].message
    assert "is a symlink in this commit; not followed" in findings[1].message


# -- terminal injection --------------------------------------------------------------------------
def test_no_escape_sequence_reaches_the_terminal(sandbox_env, tmp_path):
    app = tmp_path / HOSTILE
    key = f"{ESC}[1A{ESC}[2Khttp"
    write_json(app / "package.json", {"dependencies": {key: "npm:axios@^1.14.0"}})
    bad_lockfile(app / "sub" / "package-lock.json")
    text = cli(sandbox_env, "scan", app)
    assert text.returncode == 1
    assert b"\x1b" not in text.stdout + text.stderr
    out = text.stdout.decode()
    assert "evil\\x1b[1A\\x1b[2K\\x1b]0;owned\\x07" in out
    assert "(alias '\\x1b[1A\\x1b[2Khttp')" in out
    data = json.loads(cli(sandbox_env, "scan", app, "--format", "json").stdout)
    assert data["targets"] == [str(app)]  # JSON escapes them itself: the real names come back
    manifest = next(f for f in data["findings"] if f["kind"] == "manifest")
    assert manifest["path"] == str(app / "package.json")
    assert f"(alias '{key}')" in manifest["message"]


def test_a_lone_surrogate_in_a_lockfile_prints_escaped(sandbox_env, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "package-lock.json").write_text(
        '{"name": "app\\ud800", "lockfileVersion": 3, "packages": {'
        '"": {"name": "app\\ud800", "dependencies": {"axios": "1.14.1"}},'
        '"node_modules/axios": {"version": "1.14.1"}}}'
    )
    result = cli(sandbox_env, "scan", app)
    assert result.returncode == 1, result.stderr
    assert b"Traceback" not in result.stderr
    assert "direct dependency of app\\ud800" in result.stdout.decode()


def test_validate_output_is_escaped(sandbox_env, tmp_path):
    good = tmp_path / HOSTILE / "pb.yaml"
    good.parent.mkdir()
    good.write_text(BUNDLED.read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(BUNDLED.read_text().replace("uses: manual", 'uses: "man\\e[2Kual"', 1))
    result = cli(sandbox_env, "validate", good, bad)
    assert result.returncode == 1
    assert b"\x1b" not in result.stdout + result.stderr
    assert "evil\\x1b[1A" in result.stdout.decode()
    assert "unknown step kind 'man\\x1b[2Kual'" in result.stderr.decode()
    listed = cli(sandbox_env, "list")
    assert listed.returncode == 0 and listed.stdout.startswith(b"axios-2026-03\t")


# -- a headless run whose detection could not check everything ------------------------------------
PLAYBOOK = """\
id: failclosed-pb
title: Fail-closed detection
version: "1"
incident:
  summary: test incident
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
  - {id: detect, uses: detect, title: Detect, confirm: never}
"""


def headless(env: dict[str, str], tmp_path: Path, target: Path, *extra: str):
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(PLAYBOOK)
    return cli(env, "run", playbook, "--target", target, "--new", *extra)


def test_headless_run_ends_with_3_when_detection_could_not_check(sandbox_env, tmp_path):
    target = tmp_path / HOSTILE
    target.mkdir()
    os.mkfifo(target / "yarn.lock")
    result = headless(sandbox_env, tmp_path, target, "--json")
    assert result.returncode == 3, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["event"] == "end"
    assert (lines[-1]["outcome"], lines[-1]["unchecked"]) == ("completed", 1)
    [step] = [line for line in lines if line["event"] == "step"]
    assert "could not check 1 file" in step["summary"]
    finished = [
        e["data"] for e in read_entries(Path(lines[0]["journal"])) if e["event"] == "step_finished"
    ]
    assert finished[-1]["result"] == {"affected": None, "unchecked": 1}

    text = headless(sandbox_env, tmp_path, target)
    assert text.returncode == 3
    assert b"\x1b" not in text.stdout + text.stderr  # the target's name and the summary
    assert "run completed: 1 thing could not be checked" in text.stdout.decode().splitlines()


def test_headless_run_of_a_checked_clean_target_ends_with_0(sandbox_env, tmp_path):
    target = tmp_path / "clean"
    write_json(target / "package.json", {"dependencies": {"axios": "1.14.0"}})
    result = headless(sandbox_env, tmp_path, target, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["unchecked"] == 0
