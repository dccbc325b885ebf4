"""`runbook fleet scan` and `runbook fleet run` on 20 local hosts through real Ansible.

Each host has its own HOME and targets: compromised, exposed, clean, remediable and broken
projects, a host whose unfinished journal was edited, one with two targets, one whose only
Python is 3.9, one with less free space than it demands, one where the run fails, and one
Ansible cannot reach. The scan runs first, then a live run (which changes the hosts), then the
same live command again.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from runbook.journal import verify
from runbook.tui.fleet.app import FleetApp
from tests.conftest import RUNBOOK
from tests.fleet_support import (
    Fleet,
    controller_env,
    fake_old_python,
    fleet_cli,
    record,
    rows,
    seed_broken_journal,
    states,
    unreachable,
)

pytest_plugins = ["tests.fleet_fixtures"]  # the session's wheelhouse and host venv root

SCAN_STATES = {
    **dict.fromkeys(["h01", "h02", "h03", "h04"], "compromised"),
    **dict.fromkeys(["h05", "h06", "h07", "h08"], "exposed"),
    **dict.fromkeys(["h09", "h10", "h11", "h12"], "clean"),
    "h13": "compromised",
    "h14": "unchecked",
    "h15": "clean",
    "h16": "compromised",
    "h17": "failed",
    "h18": "failed",
    "h19": "clean",
    "h20": "unreachable",
}
RUN_STATES = {
    **SCAN_STATES,
    "h13": "remediated",
    "h15": "failed",
    "h19": "failed",
}


@pytest.fixture(scope="module")
def fleet20(tmp_path_factory, venv_root, closed_port) -> tuple[Fleet, dict[str, str]]:
    root = tmp_path_factory.mktemp("fleet20")
    fleet = Fleet(root, venv_root)
    for n in range(1, 5):
        fleet.add(f"h{n:02}", "compromised")
    for n in range(5, 9):
        fleet.add(f"h{n:02}", "exposed")
    fleet.add("h09", "clean", default_venv_root=True)
    for n in range(10, 13):
        fleet.add(f"h{n}", "clean")
    fleet.add("h13", "remediable")
    fleet.add("h14", "broken")
    home = fleet.add("h15", "clean")
    seed_broken_journal(home, home / "work")
    fleet.add("h16", "compromised", "clean")
    old = fleet.add("h17", "clean")
    fleet.hosts["h17"]["runbook_python"] = str(fake_old_python(old))
    fleet.add("h18", "clean", runbook_min_free_mb=10**9)
    fleet.add("h19")  # no target: its HOME, which has no app/ for the playbook's steps
    fleet.hosts["h20"] = unreachable(closed_port)
    fleet.write()
    return fleet, controller_env(root)


# the scan on one host of each kind (the run covers all 20)
SCANNED = ["h01", "h05", "h09", "h13", "h14", "h16", "h17", "h18", "h20"]


@pytest.fixture(scope="module")
def scanned(fleet20, wheelhouse) -> tuple[subprocess.CompletedProcess[str], Path]:
    fleet, env = fleet20
    out = fleet.root / "scan-out"
    args = ["scan", "-i", fleet.inventory, "--out", out, "--limit", ":".join(SCANNED)]
    done = fleet_cli(env, *args, "--wheelhouse", wheelhouse, "--forks", 10)
    return done, out


@pytest.fixture(scope="module")
def remediated(fleet20, scanned, wheelhouse) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The live run (after the scan: it changes the hosts)."""
    fleet, env = fleet20
    out = fleet.root / "run-out"
    args = ["run", fleet.playbook, "-i", fleet.inventory, "--out", out, "--yes"]
    done = fleet_cli(env, *args, "--wheelhouse", wheelhouse, "--forks", 10)
    return done, out


def test_scan_names_every_hosts_state(fleet20, scanned):
    _, env = fleet20
    done, out = scanned
    assert done.returncode == 1, done.stdout + done.stderr  # compromised hosts
    assert states(env, out) == {h: SCAN_STATES[h] for h in SCANNED}
    found = rows(env, out)
    assert found["h01"]["findings"]["compromised"] >= 2
    assert found["h05"]["findings"] == {"at-risk": 1}
    assert found["h14"]["findings"].get("unknown")
    assert "Python 3.9.18" in found["h17"]["reason"] and "3.11" in found["h17"]["reason"]
    assert "not enough free space" in found["h18"]["reason"]
    assert "runbook_min_free_mb" in found["h18"]["reason"]
    assert "Connection refused" in found["h20"]["reason"]
    scan = (out / "h01" / "scan.json").read_text()
    assert '"schema": "runbook.scan/v1"' in scan and "host:/" in scan
    for host in ("h17", "h18", "h20"):
        assert not (out / host / "scan.json").exists()


def test_the_hosts_run_the_installed_wheel(fleet20, scanned, venv_root, tmp_path):
    fleet, _ = fleet20
    shared = sorted(venv_root.glob("runbook-0.*"))
    own = sorted((fleet.home("h09") / ".local/share/runbook/fleet").glob("runbook-0.*"))
    assert len(shared) == 1 and len(own) == 1  # one install per root, reused by every host
    for venv in (shared[0], own[0]):
        where = subprocess.run(
            [venv / "bin/python", "-c", "import runbook, steps; print(runbook.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,  # not this checkout's folder, which `python -c` would put first
        ).stdout
        assert where.startswith(str(venv))  # not this checkout
    installs = [record(scanned[1], h)["ansible"].get("installed_now") for h in SCANNED]
    assert installs.count(True) == 2  # the shared root once, h09's own once


def test_run_states_in_the_headless_table(fleet20, remediated):
    _, env = fleet20
    done, out = remediated
    assert done.returncode == 1, done.stdout + done.stderr
    found = rows(env, out)
    reasons = {h: r.get("reason") for h, r in found.items() if r["state"] != RUN_STATES.get(h)}
    assert states(env, out) == RUN_STATES, reasons
    assert found["h13"]["steps_done"] == found["h13"]["steps_total"] == 5
    assert "journal broken" in found["h15"]["reason"] and "line 2" in found["h15"]["reason"]
    assert "detect" in found["h19"]["reason"] and "app is not a directory" in found["h19"]["reason"]
    assert found["h16"]["findings"]["compromised"] >= 2 and len(found["h16"]["heads"]) == 2
    table = fleet_cli(env, "status", out)  # no terminal: the table
    assert table.returncode == 1
    lines = {line.split()[0]: line for line in table.stdout.splitlines() if line.startswith("h")}
    assert lines["h13"].split()[1] == "remediated"
    assert lines["h20"].split()[1] == "unreachable"
    assert "Reasons:" in table.stdout and "h17: no Python 3.11 or newer" in table.stdout


async def test_run_states_in_the_fleet_view(fleet20, remediated):
    _, out = remediated
    app = FleetApp(out, refresh=60)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert {r["host"]: r["state"] for r in app.shown} == RUN_STATES
        assert [r["state"] for r in app.shown][:2] == ["unreachable", "failed"]  # worst first
        await pilot.press("slash", *"state:remediated", "enter")
        await pilot.pause()
        assert [r["host"] for r in app.shown] == ["h13"]
        detail = str(app.query_one("#detail").content)
        assert "remediated" in detail and "wipe: succeeded" in detail
        assert "review: Searched CI logs" in detail


def _journals(out: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(out.glob("h*/journals/*.jsonl")):
        found.setdefault(path.parent.parent.name, []).append(path)
    return found


def test_every_fetched_journal_is_verified_on_arrival(fleet20, remediated):
    _, out = remediated
    journals = _journals(out)
    assert set(journals) == set(RUN_STATES) - {"h17", "h18", "h20"}
    assert len(journals["h16"]) == 2
    for host, paths in journals.items():
        checked = {j["path"]: j for j in record(out, host)["journals"]}
        for path in paths:
            result = verify(path)
            mine = checked[f"journals/{path.name}"]
            assert mine["ok"] == result.ok
            assert mine["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            if host == "h15":
                assert not result.ok and result.bad_line == 2
            else:
                assert result.ok, (host, result)
                assert mine["head"] == result.head
    done = subprocess.run(
        [str(RUNBOOK), "audit", "verify", journals["h01"][0]], capture_output=True, text=True
    )
    assert done.returncode == 0 and "ok:" in done.stdout
    assert (out / "h01" / "reports" / f"{journals['h01'][0].stem}.md").is_file()
    # `runbook report DIR` (the merged report) finds exactly the journals, and nothing else
    from runbook.record.load import find_journals

    found = {Path(item[0]).resolve() for item in find_journals([str(out)])}
    assert found == {p.resolve() for paths in journals.values() for p in paths}


def test_an_edited_journal_is_verified_again_and_marked_broken(fleet20, remediated, tmp_path):
    _, env = fleet20
    _, out = remediated
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(out), str(copy)], check=True)
    journal = sorted((copy / "h09" / "journals").glob("*.jsonl"))[0]
    lines = journal.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"step"', '"Step"', 1)
    journal.write_text("".join(lines))
    row = rows(env, copy)["h09"]
    assert row["state"] == "failed" and "journal broken" in row["reason"]


def test_person_steps_are_off_and_checklists_come_back_outstanding(fleet20, remediated):
    _, env = fleet20
    _, out = remediated
    found = rows(env, out)
    outstanding = found["h01"]["outstanding"]
    assert "review: Searched CI logs" in outstanding and "review: Searched DNS logs" in outstanding
    assert any(item.startswith("rotate: needs a person") for item in outstanding)
    assert found["h13"]["state"] == "remediated" and len(found["h13"]["outstanding"]) == 3
    lines = (out / "h01" / "output").glob("*.ndjson")
    text = "".join(p.read_text() for p in lines)
    assert '"step": "rotate"' in text and '"status": "skipped"' in text


def test_a_rerun_skips_finished_hosts_and_retries_the_others(fleet20, remediated, wheelhouse):
    fleet, env = fleet20
    _, out = remediated
    before = {h: _digests(out / h) for h in RUN_STATES}
    args = ["run", fleet.playbook, "-i", fleet.inventory, "--out", out, "--yes"]
    done = fleet_cli(env, *args, "--wheelhouse", wheelhouse, "--forks", 10)
    assert done.returncode == 1, done.stdout + done.stderr
    retried = {"h15", "h17", "h18", "h19", "h20"}
    assert "15 finished before (skipped)" in done.stdout
    for host in RUN_STATES:
        attempts = record(out, host)["ansible"]["attempts"]
        assert attempts == (2 if host in retried else 1), host
        if host not in retried:
            assert _digests(out / host) == before[host], host
    assert states(env, out) == RUN_STATES


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "host.json"
    }
