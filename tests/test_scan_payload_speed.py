"""What the payload look (`indicators.package_files`) costs the scan: one listing of each package
directory, in the walk that finds the bad packages; no file opened but those with a payload name;
nothing at all for a playbook without payload files. And a home's install trees walked in a forked
child beside the rest of the scan (`steps.scan.background`).

Counted with Python's audit events (`os.scandir`, `open`) in a child process running the real
`steps.scan.scan` on a generated tree: an audit hook cannot be removed once added.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from runbook.step import Finding
from steps.scan.background import Background
from tests.conftest import ROOT

SHAI_HULUD = ROOT / "playbooks" / "shai-hulud-2025.yaml"
AXIOS = ROOT / "playbooks" / "axios-2026-03.yaml"
HIDDEN = "/node_modules/.package-lock.json"

CHILD = r"""
import json, sys
from pathlib import Path

events = []
recording = False

def hook(event, args):
    if recording and event in ("os.scandir", "os.listdir", "open"):
        events.append([event, str(args[0])])

sys.addaudithook(hook)
from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan

incident = load_playbook(Path(sys.argv[1])).playbook.incident
recording = True
result = scan([Path(sys.argv[2])], incident, ScanOptions())
recording = False
findings = [[f.kind, f.severity, f.path] for f in result.findings]
print(json.dumps({"events": events, "findings": findings}))
"""


def package(folder: Path, name: str, *, lib: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0"}))
    (folder / "index.js").write_text("module.exports = 1\n")
    (folder / "README.md").write_text(f"# {name}\nbundle.js setup_bun.js\n")
    if lib:
        (folder / "lib").mkdir()
        (folder / "lib" / "a.js").write_text("1\n")
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, set[str], set[str], set[str]]:
    """A project whose node_modules holds 160 packages: plain, scoped, nested under others, and
    pnpm's store. Returns it, its package directories, the folders that list packages and, apart,
    pnpm's store entries (their packages are judged by their names, without a listing, when there
    are no payload files to look for)."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app"}')
    nm = project / "node_modules"
    packages: set[str] = set()
    folders = {str(project), str(nm)}
    for i in range(100):
        packages.add(str(package(nm / f"plain-{i}", f"plain-{i}")))
    for scope in range(5):
        folders.add(str(nm / f"@scope{scope}"))
        for i in range(6):
            name = f"@scope{scope}/lib-{i}"
            packages.add(str(package(nm / name, name, lib=False)))
    for i in range(10):
        inner = nm / f"plain-{i}" / "node_modules"
        folders.add(str(inner))
        for j in range(2):
            packages.add(str(package(inner / f"nested-{j}", f"nested-{j}")))
    store = nm / ".pnpm"
    folders.add(str(store))
    stores: set[str] = set()
    for i in range(10):
        store_nm = store / f"stored-{i}@1.0.0" / "node_modules"
        stores.add(str(store_nm))
        packages.add(str(package(store_nm / f"stored-{i}", f"stored-{i}")))
        (store_nm / "plain-0").symlink_to(nm / "plain-0")  # pnpm's links: never followed
    (nm / "linked").symlink_to(nm / "plain-1")
    return project, packages, folders, stores


def scan_events(playbook: Path, project: Path) -> tuple[Counter, list[str], list[list[str]]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(playbook), str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    listed = Counter(path for event, path in out["events"] if event != "open")
    # files opened inside the tree, but npm's hidden lockfile, which the scan reads anyway
    opened = [
        path
        for event, path in out["events"]
        if event == "open" and "/node_modules/" in path and not path.endswith(HIDDEN)
    ]
    return listed, opened, out["findings"]


def test_each_package_directory_is_listed_once_and_nothing_else_is_opened(tree) -> None:
    project, packages, folders, stores = tree
    listed, opened, findings = scan_events(SHAI_HULUD, project)
    assert findings == []
    assert set(listed) == packages | folders | stores
    assert max(listed.values()) == 1  # one listing per directory, no second walk
    assert opened == []  # not one file of a package read: no payload name was there


def test_a_playbook_without_payload_files_lists_no_package_directory(tree) -> None:
    project, _, folders, _ = tree
    listed, opened, findings = scan_events(AXIOS, project)
    assert findings == []
    assert set(listed) == folders  # only the folders that hold packages
    assert max(listed.values()) == 1
    assert opened == []


def test_only_a_file_with_a_payload_name_is_read(tree) -> None:
    project, *_ = tree
    payload = project / "node_modules" / "plain-3" / "setup_bun.js"
    payload.write_text("console.log('a new variant')\n")
    benign = project / "node_modules" / "@scope1" / "lib-2" / "bundle.js"
    benign.write_text("/* a bundler's output */\n")
    _, opened, findings = scan_events(SHAI_HULUD, project)
    # both hashed; the package.json only of the one that is a finding (for its version)
    read = [payload, payload.parent / "package.json", benign]
    assert sorted(opened) == sorted(str(p) for p in read)
    assert findings == [["payload", "at-risk", str(payload)]]


# -- the install trees walked in a forked child, beside the rest ----------------------------------
PIDS = r"""
import json, os, sys
from pathlib import Path

log = open(sys.argv[3], "a", buffering=1)
recording = False

def hook(event, args):
    if recording and event == "os.scandir" and "/node_modules/" in str(args[0]):
        log.write(f"{os.getpid()}\n")

sys.addaudithook(hook)
from runbook.playbook import load_playbook
from steps.scan import ScanOptions, scan

incident = load_playbook(Path(sys.argv[1])).playbook.incident
recording = True
found = {}
for background in (True, False):
    result = scan([Path(sys.argv[2])], incident, ScanOptions(background=background))
    found[str(background)] = [f.model_dump() for f in result.findings]
recording = False
print(json.dumps({"pid": os.getpid(), "found": found}))
"""


def test_a_home_of_projects_is_walked_beside_the_rest_with_the_same_findings(
    tmp_path: Path,
) -> None:
    """Nine projects (a home's worth of node_modules trees): the trees are walked in a forked
    child while the parent reads the lockfiles, and the findings are the same as in one
    process."""
    home = tmp_path / "home"
    fake = ROOT / "tests" / "fixtures" / "shai-hulud" / "packages" / "zapier-sdk-0.15.5"
    for k in range(9):
        nm = home / f"app-{k}" / "node_modules"
        package(nm / "left-pad", "left-pad")
        (home / f"app-{k}" / "package.json").write_text('{"name": "app"}')
        if k % 3 == 0:
            shutil.copytree(fake, nm / "@zapier" / "zapier-sdk")
    log = tmp_path / "pids.log"
    done = subprocess.run(
        [sys.executable, "-c", PIDS, str(SHAI_HULUD), str(home), str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["found"]["True"] == out["found"]["False"]
    kinds = Counter(f["kind"] for f in out["found"]["True"])
    assert kinds["payload"] == 6 and kinds["installed"] == 3, kinds  # setup_bun.js, bun_env...
    pids = Counter(log.read_text().split())
    assert len(pids) == 2 and pids[str(out["pid"])] > 0  # one walk each: in a child, then here
    child = next(p for p in pids if p != str(out["pid"]))
    assert pids[child] == pids[str(out["pid"])]


def test_a_child_that_fails_leaves_the_work_to_the_parent() -> None:
    parent = os.getpid()
    finding = Finding(kind="installed", severity="compromised", message="from the work")

    def work() -> list[Finding]:
        if os.getpid() != parent:
            os._exit(3)  # the child dies before handing anything over
        return [finding]

    with Background(work) as job:
        assert job.forked
        assert job.result() == [finding]


def test_no_child_is_forked_beside_another_thread() -> None:
    """The TUI runs steps in worker threads: a fork there could copy a lock another thread
    holds, so the work is done in place."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with Background(lambda: [Finding(kind="installed", severity="info")]) as job:
            assert not job.forked
            assert [f.severity for f in job.result()] == ["info"]
    finally:
        release.set()
        other.join()
