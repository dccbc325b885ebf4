"""`Effects`, the single door for side effects: atomic writes with backups, confined tree removal,
commands and calls, all journaled; dry runs touch nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook.effects import CommandResult, EffectError, Effects, tree_size
from runbook.journal import Journal, verify
from runbook.redact import Redactor, redact_value

AWS = "AKIA" + "Q" * 16
NPM = "npm_" + "x7Y8" * 9


class Recorder:
    """The `record` callback: keeps every (event, data) it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        self.calls.append((event, data))

    @property
    def last(self) -> dict[str, Any]:
        event, data = self.calls[-1]
        assert event == "effect"
        return data


@pytest.fixture
def root(tmp_path: Path) -> Path:
    target = tmp_path / "target"
    target.mkdir()
    return target


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the target, with a file that must never be touched."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "precious.txt").write_text("keep me\n")
    return place


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


MakeEffects = Callable[..., Effects]


@pytest.fixture
def make(root: Path, tmp_path: Path, recorder: Recorder) -> MakeEffects:
    def build(dry_run: bool = False, redactor: Redactor | None = None) -> Effects:
        return Effects(
            dry_run=dry_run,
            roots=[root],
            backup_dir=tmp_path / "backups",
            record=recorder,
            redactor=redactor or Redactor(),
        )

    return build


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(path: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under `path` (not following symlinks) with its mode and content."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                content: bytes | str = os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                content = b""
            else:
                content = p.read_bytes()
            out[str(p.relative_to(path))] = (st.st_mode, content)
    return out


# -- write_file -----------------------------------------------------------------------------------
def test_write_new_file(make: MakeEffects, root: Path, recorder: Recorder, tmp_path: Path) -> None:
    path = root / "pkg" / "package.json"
    path.parent.mkdir()
    assert make().write_file(path, '{"a": 1}\n', reason="pin") is None
    assert path.read_bytes() == b'{"a": 1}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert recorder.last == {
        "op": "write_file",
        "dry_run": False,
        "path": str(path),
        "reason": "pin",
        "sha256_before": None,
        "sha256_after": sha(b'{"a": 1}\n'),
        "backup": None,
        "outcome": "ok",
    }
    assert os.listdir(path.parent) == ["package.json"]
    assert not (tmp_path / "backups").exists()


def test_replace_is_atomic_keeps_mode_and_backs_up(
    make: MakeEffects, root: Path, recorder: Recorder, tmp_path: Path
) -> None:
    path = root / "package-lock.json"
    original = b'{"lockfileVersion": 3, "old": true}\n'
    path.write_bytes(original)
    path.chmod(0o640)
    # a second name for the old inode: an in-place write would change it, a rename does not
    (tmp_path / "hardlink").hardlink_to(path)
    old_inode = path.stat().st_ino

    backup = make().write_file(path, b"new content\n", reason="rewrite")

    assert path.read_bytes() == b"new content\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != old_inode, "replaced by rename, not rewritten in place"
    assert (tmp_path / "hardlink").read_bytes() == original
    assert sorted(os.listdir(root)) == ["package-lock.json"], "no temporary file is left"
    assert backup is not None
    backup_path = Path(backup)
    assert backup_path.read_bytes() == original
    assert (tmp_path / "backups") in backup_path.parents
    assert str(backup_path).endswith(str(path).lstrip("/"))
    data = recorder.last
    assert data["sha256_before"] == sha(original)
    assert data["sha256_after"] == sha(b"new content\n")
    assert data["backup"] == backup and data["outcome"] == "ok"


def test_two_backups_of_the_same_file_do_not_collide(make: MakeEffects, root: Path) -> None:
    path = root / "f"
    path.write_text("v1")
    effects = make()
    first = effects.write_file(path, "v2")
    second = effects.write_file(path, "v3")
    assert first != second
    assert Path(first).read_text() == "v1" and Path(second).read_text() == "v2"


def test_read_only_file_is_replaced_and_stays_read_only(make: MakeEffects, root: Path) -> None:
    path = root / "ro.txt"
    path.write_text("old")
    path.chmod(0o444)
    make().write_file(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_dry_run_write_changes_nothing(
    make: MakeEffects, root: Path, recorder: Recorder, tmp_path: Path
) -> None:
    existing, new = root / "a.txt", root / "b.txt"
    existing.write_text("old")
    before = snapshot(root)
    effects = make(dry_run=True)
    assert effects.write_file(existing, "changed", reason="r") is None
    assert effects.write_file(new, "created") is None
    assert snapshot(root) == before
    assert not (tmp_path / "backups").exists()
    first, second = (data for _, data in recorder.calls)
    assert first == {
        "op": "write_file",
        "dry_run": True,
        "path": str(existing),
        "reason": "r",
        "sha256_before": sha(b"old"),
        "sha256_after": sha(b"changed"),
        "outcome": "would",
    }
    assert second["sha256_before"] is None and second["outcome"] == "would"


def test_write_failure_is_an_effect_error_and_journaled(
    make: MakeEffects, root: Path, recorder: Recorder, tmp_path: Path
) -> None:
    path = root / "f.txt"
    path.write_text("original")
    (tmp_path / "backups").write_text("a file where the backup directory should be")
    with pytest.raises(EffectError, match="cannot write"):
        make().write_file(path, "new")
    assert path.read_text() == "original"
    assert sorted(os.listdir(root)) == ["f.txt"]
    assert recorder.last["outcome"] == "error"


@pytest.mark.parametrize(
    "relative",
    [
        "../outside/precious.txt",
        "sub/../../outside/precious.txt",
        "..",
        "sub/..",
        ".",
    ],
)
def test_write_refuses_escapes(
    make: MakeEffects, root: Path, outside: Path, recorder: Recorder, relative: str
) -> None:
    (root / "sub").mkdir()
    before = snapshot(outside)
    with pytest.raises(EffectError, match="refusing"):
        make().write_file(root / relative, "pwned")
    assert snapshot(outside) == before
    assert recorder.calls == []


def test_write_refuses_outside_and_relative_paths(
    make: MakeEffects, outside: Path, tmp_path: Path
) -> None:
    effects = make()
    with pytest.raises(EffectError, match="outside the target"):
        effects.write_file(outside / "precious.txt", "pwned")
    with pytest.raises(EffectError, match="outside the target"):
        effects.write_file(tmp_path / "target-sibling.txt", "x")
    with pytest.raises(EffectError, match="relative"):
        effects.write_file(Path("target/x.txt"), "x")
    assert (outside / "precious.txt").read_text() == "keep me\n"
    assert not (tmp_path / "target-sibling.txt").exists()


def test_write_through_a_symlinked_directory_is_refused(
    make: MakeEffects, root: Path, outside: Path
) -> None:
    (root / "node_modules").mkdir()
    (root / "node_modules" / "evil").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    for name in ("precious.txt", "new.txt"):
        with pytest.raises(EffectError, match="outside the target"):
            make().write_file(root / "node_modules" / "evil" / name, "pwned")
        with pytest.raises(EffectError, match="outside the target"):
            make(dry_run=True).write_file(root / "node_modules" / "evil" / name, "pwned")
    assert snapshot(outside) == before


def test_root_given_through_a_symlink_is_resolved(
    root: Path, tmp_path: Path, recorder: Recorder
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    effects = Effects(
        dry_run=False,
        roots=[alias],
        backup_dir=tmp_path / "backups",
        record=recorder,
        redactor=Redactor(),
    )
    effects.write_file(root / "f.txt", "ok")
    effects.write_file(alias / "g.txt", "ok")
    assert (root / "f.txt").read_text() == (root / "g.txt").read_text() == "ok"
    assert recorder.last["path"] == str(root / "g.txt")


# -- remove_tree ----------------------------------------------------------------------------------
def build_tree(base: Path) -> None:
    """Nested files and directories, some read-only, one unreadable."""
    (base / "a" / "b" / "c").mkdir(parents=True)
    (base / "z").mkdir()
    (base / "top.txt").write_bytes(b"t" * 100)
    (base / "a" / "one.js").write_bytes(b"1" * 1000)
    (base / "a" / "b" / "two.js").write_bytes(b"2" * 2000)
    (base / "a" / "b" / "c" / "three.js").write_bytes(b"3" * 3000)
    (base / "z" / "hidden").write_bytes(b"z" * 10)
    for file in ("a/one.js", "a/b/two.js", "a/b/c/three.js", "top.txt"):
        (base / file).chmod(0o444)
    for directory in ("a/b/c", "a/b", "a"):
        (base / directory).chmod(0o555)
    (base / "z").chmod(0o000)


def lstat_total(path: Path) -> int:
    total = path.lstat().st_size
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            total += (Path(dirpath) / name).lstat().st_size
    return total


@pytest.fixture(autouse=True)
def _restore_modes(tmp_path: Path) -> Iterator[None]:
    """Leave nothing pytest cannot clean up, whoever runs the tests."""
    yield
    for dirpath, dirnames, _ in os.walk(tmp_path):
        for name in dirnames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(0o755)


def test_remove_nested_read_only_tree(
    make: MakeEffects, root: Path, recorder: Recorder, outside: Path
) -> None:
    tree = root / "node_modules"
    tree.mkdir()
    build_tree(tree)
    (root / "keep.txt").write_text("sibling")
    expected = lstat_total(tree)
    assert expected >= 6110
    assert tree_size(tree) == (expected, 10)

    freed = make().remove_tree(tree, reason="wipe")

    assert freed == expected
    assert not os.path.lexists(tree)
    assert (root / "keep.txt").read_text() == "sibling"
    assert root.is_dir()
    assert recorder.last == {
        "op": "remove_tree",
        "dry_run": False,
        "path": str(tree),
        "reason": "wipe",
        "bytes": expected,
        "files": 10,
        "outcome": "ok",
    }


REMOVE_AS = """
import json, os, sys
from pathlib import Path
from runbook.effects import Effects, EffectError
from runbook.redact import Redactor
# started as root (the interpreter lives where only root may read), then drop to `nobody`
uid = int(sys.argv[2])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
assert os.geteuid() == uid
calls = []
root = Path(sys.argv[1])
effects = Effects(dry_run=False, roots=[root], backup_dir=root.parent / "bk",
                  record=lambda event, data: calls.append(data), redactor=Redactor())
try:
    freed = effects.remove_tree(root / "tree")
except EffectError as exc:
    freed = str(exc)
print(json.dumps({"freed": freed, "calls": calls}))
"""


@pytest.fixture
def unprivileged_base() -> Iterator[Path]:
    """A directory an unprivileged user owns (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="runbook-effects-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for name in dirnames:
                (Path(dirpath) / name).chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_remove_read_only_tree_as_an_unprivileged_user(unprivileged_base: Path) -> None:
    # root ignores permission bits, so the read-only handling only really runs as another user
    nobody = 65534
    root = unprivileged_base / "target"
    (root / "tree").mkdir(parents=True)
    build_tree(root / "tree")
    for dirpath, dirnames, filenames in os.walk(unprivileged_base):
        for name in [".", *dirnames, *filenames]:
            os.lchown(Path(dirpath) / name, nobody, nobody)
    os.lchown(root / "tree" / "z", nobody, nobody)  # unreadable: os.walk could not enter it
    os.lchown(root / "tree" / "z" / "hidden", nobody, nobody)
    expected = tree_size(root / "tree")[0]
    script = unprivileged_base / "remove.py"
    script.write_text(REMOVE_AS)
    proc = subprocess.run(
        [sys.executable, str(script), str(root), str(nobody)],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert not os.path.lexists(root / "tree"), result
    assert result["calls"][-1]["outcome"] == "ok"
    # the unprivileged user could not see inside the 0o000 directory when it measured
    assert 0 < result["freed"] <= expected


def test_symlinks_inside_the_tree_are_not_followed(
    make: MakeEffects, root: Path, outside: Path
) -> None:
    tree = root / "node_modules"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "index.js").write_text("x")
    (tree / "pkg" / "escape").symlink_to(outside, target_is_directory=True)
    (tree / "file-escape").symlink_to(outside / "precious.txt")
    outside.chmod(0o555)  # the hook that makes parents writable must not reach here either
    before = snapshot(outside)
    make().remove_tree(tree)
    assert not os.path.lexists(tree)
    assert snapshot(outside) == before
    assert stat.S_IMODE(outside.stat().st_mode) == 0o555
    assert stat.S_IMODE((outside / "precious.txt").stat().st_mode) == 0o644


def test_a_symlink_to_outside_is_unlinked_not_followed(
    make: MakeEffects, root: Path, outside: Path, recorder: Recorder
) -> None:
    link = root / "cache"
    link.symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    freed = make().remove_tree(link)
    assert not os.path.lexists(link)
    assert snapshot(outside) == before
    assert freed == len(str(outside)), "only the link itself (its lstat size) was freed"
    assert recorder.last["outcome"] == "ok"


def test_remove_a_single_file(make: MakeEffects, root: Path) -> None:
    (root / "f.bin").write_bytes(b"\0" * 1234)
    assert make().remove_tree(root / "f.bin") == 1234
    assert not (root / "f.bin").exists()


@pytest.mark.parametrize("relative", ["", ".", "..", "sub/..", "sub/../..", "../outside"])
def test_remove_refuses_the_root_and_escapes(
    make: MakeEffects, root: Path, outside: Path, recorder: Recorder, relative: str
) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "f").write_text("stays")
    before, before_out = snapshot(root), snapshot(outside)
    for dry_run in (False, True):
        with pytest.raises(EffectError, match="refusing"):
            make(dry_run=dry_run).remove_tree(root / relative if relative else root)
    assert snapshot(root) == before
    assert snapshot(outside) == before_out
    assert recorder.calls == []


def test_remove_refuses_outside_and_through_symlinked_dirs(
    make: MakeEffects, root: Path, outside: Path, tmp_path: Path
) -> None:
    (outside / "sub").mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    effects = make()
    for path in (outside, outside / "sub", root / "link" / "sub", root / "link" / "precious.txt"):
        with pytest.raises(EffectError, match="outside the target"):
            effects.remove_tree(path)
    with pytest.raises(EffectError, match="outside the target"):
        effects.remove_tree(tmp_path)
    assert snapshot(outside) == before


def test_missing_path_is_a_recorded_no_op(
    make: MakeEffects, root: Path, recorder: Recorder
) -> None:
    assert make().remove_tree(root / "gone", reason="rerun") == 0
    assert recorder.last == {
        "op": "remove_tree",
        "dry_run": False,
        "path": str(root / "gone"),
        "reason": "rerun",
        "outcome": "absent",
    }
    assert make(dry_run=True).remove_tree(root / "gone") == 0
    assert recorder.last["outcome"] == "absent"


def test_dry_run_remove_reports_size_and_removes_nothing(
    make: MakeEffects, root: Path, recorder: Recorder
) -> None:
    tree = root / "node_modules"
    tree.mkdir()
    build_tree(tree)
    expected = lstat_total(tree)
    before = snapshot(root)
    assert make(dry_run=True).remove_tree(tree, reason="r") == expected
    assert snapshot(root) == before
    assert recorder.last == {
        "op": "remove_tree",
        "dry_run": True,
        "path": str(tree),
        "reason": "r",
        "bytes": expected,
        "files": 10,
        "outcome": "would",
    }


# -- run ------------------------------------------------------------------------------------------
def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_captures_output_and_returncode(
    make: MakeEffects, root: Path, recorder: Recorder
) -> None:
    code = "import os, sys; print(os.getcwd()); print('oops', file=sys.stderr); sys.exit(3)"
    result = make().run(py(code), cwd=root, reason="check")
    assert isinstance(result, CommandResult)
    assert result.returncode == 3 and not result.ok and not result.timed_out
    assert result.stdout == f"{root}\n"
    assert result.stderr == "oops\n"
    data = recorder.last
    assert data["op"] == "run" and data["outcome"] == "error" and data["returncode"] == 3
    assert data["stdout_tail"] == f"{root}\n" and data["stderr_tail"] == "oops\n"
    assert data["cwd"] == str(root) and data["reason"] == "check"

    ok = make().run(py("print('fine')"), cwd=root, env={"PATH": os.environ["PATH"]})
    assert ok.ok and ok.returncode == 0 and ok.stdout == "fine\n"
    assert recorder.last["outcome"] == "ok"


def test_run_passes_the_environment(make: MakeEffects, root: Path) -> None:
    result = make().run(
        py("import os; print(os.environ.get('ONLY_THIS'), 'HOME' in os.environ)"),
        cwd=root,
        env={"ONLY_THIS": "yes"},
    )
    assert result.stdout == "yes False\n"


def test_run_timeout(make: MakeEffects, root: Path, recorder: Recorder) -> None:
    started = time.monotonic()
    code = "import sys, time; print('partial', file=sys.stderr, flush=True); time.sleep(30)"
    result = make().run(py(code), cwd=root, timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.returncode is None and not result.ok
    assert recorder.last["outcome"] == "timeout" and recorder.last["timeout"] == 1


def test_run_missing_command(make: MakeEffects, root: Path, recorder: Recorder) -> None:
    with pytest.raises(EffectError, match="command not found"):
        make().run([str(root / "no-such-command")], cwd=root)
    assert recorder.last["outcome"] == "error"
    assert recorder.last["error"] == "command not found"


def test_run_refuses_a_cwd_outside(make: MakeEffects, outside: Path) -> None:
    with pytest.raises(EffectError, match="outside the target"):
        make().run(py("open('made-outside', 'w')"), cwd=outside)
    assert not (outside / "made-outside").exists()


def test_dry_run_does_not_execute(make: MakeEffects, root: Path, recorder: Recorder) -> None:
    marker = root / "marker"
    result = make(dry_run=True).run(py(f"open({str(marker)!r}, 'w')"), cwd=root)
    time.sleep(0.2)
    assert not marker.exists()
    assert result.dry_run and result.returncode is None and result.ok
    assert recorder.last["outcome"] == "would"


def test_argv_secrets_are_redacted_in_the_record(
    make: MakeEffects, root: Path, recorder: Recorder
) -> None:
    argv = [*py("print('done')"), "--token", NPM, f"--key={AWS}"]
    for dry_run in (True, False):
        make(dry_run=dry_run).run(argv, cwd=root)
        shown = recorder.last["argv"]
        assert NPM not in shown and AWS not in shown
        assert redact_value(NPM) in shown and redact_value(AWS) in shown


def test_effects_through_a_real_journal_keep_secrets_out(root: Path, tmp_path: Path) -> None:
    redactor = Redactor()
    journal_path = tmp_path / "journal.jsonl"
    with Journal(journal_path, redactor) as journal:
        effects = Effects(
            dry_run=False,
            roots=[root],
            backup_dir=tmp_path / "backups",
            record=journal.append,
            redactor=redactor,
        )
        # the command echoes the secret: its output tail is journaled too
        result = effects.run(py(f"print({NPM!r})"), cwd=root)
        assert result.stdout == f"{NPM}\n", "the caller still gets the real output"
        effects.write_file(root / ".npmrc", f"//registry.npmjs.org/:_authToken={NPM}\n")
        effects.remove_tree(root / ".npmrc")
    raw = journal_path.read_bytes()
    assert NPM.encode() not in raw
    assert verify(journal_path).ok
    ops = [json.loads(line)["data"]["op"] for line in raw.splitlines()]
    assert ops == ["run", "write_file", "remove_tree"]


# -- call -----------------------------------------------------------------------------------------
def test_call_success(make: MakeEffects, recorder: Recorder) -> None:
    result = make().call("aws", "list_access_keys", lambda: {"keys": 2}, summary="list keys")
    assert result == {"keys": 2}
    assert recorder.last == {
        "op": "call",
        "dry_run": False,
        "service": "aws",
        "operation": "list_access_keys",
        "summary": "list keys",
        "outcome": "ok",
    }


def test_call_failure_is_a_redacted_effect_error(make: MakeEffects, recorder: Recorder) -> None:
    def fail() -> None:
        raise RuntimeError(f"InvalidClientTokenId: key {AWS} is not valid")

    with pytest.raises(EffectError) as caught:
        make().call("aws", "delete_access_key", fail, summary="delete old key")
    message = str(caught.value)
    assert message.startswith("aws delete_access_key failed: InvalidClientTokenId")
    assert AWS not in message and redact_value(AWS) in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert recorder.last["outcome"] == "error"
    assert AWS not in recorder.last["error"]


def test_dry_run_call_does_not_call(make: MakeEffects, recorder: Recorder) -> None:
    called: list[bool] = []

    def act() -> str:
        called.append(True)
        return "real"

    effects = make(dry_run=True)
    assert effects.call("keyring", "set", act, summary="store token") is None
    assert effects.call("keyring", "set", act, summary="s", dry_result="pretend") == "pretend"
    assert called == []
    assert recorder.last["outcome"] == "would" and recorder.last["dry_run"] is True


def test_files_a_command_rewrites_are_backed_up_and_journaled(
    make: MakeEffects, root: Path, recorder: Recorder
) -> None:
    lock = root / "package-lock.json"
    lock.write_bytes(b"old lock\n")
    untouched = root / "yarn.lock"
    untouched.write_bytes(b"same\n")
    created = root / "bun.lock"
    script = (
        "import pathlib; pathlib.Path('package-lock.json').write_text('new lock\\n'); "
        "pathlib.Path('bun.lock').write_text('made\\n')"
    )
    result = make().run([sys.executable, "-c", script], cwd=root, writes=[lock, untouched, created])
    assert result.ok
    writes = [d for e, d in recorder.calls if d.get("op") == "write_file"]
    assert [(Path(d["path"]).name, d["sha256_before"], d["sha256_after"]) for d in writes] == [
        ("package-lock.json", sha(b"old lock\n"), sha(b"new lock\n")),
        ("bun.lock", None, sha(b"made\n")),
    ]
    assert Path(writes[0]["backup"]).read_bytes() == b"old lock\n"
    assert writes[1]["backup"] is None
    backups = [p for p in (root.parent / "backups").rglob("*") if p.is_file()]
    assert [p.name for p in backups] == ["package-lock.json"]  # unchanged files keep no backup
