"""The fleet view (`runbook fleet status DIR`): the Textual app through Pilot and the headless
table, over fleet folders written by the same code a fleet run uses (`bench.fleet`'s synthetic
fleet: real hash-chained journals, verified on arrival)."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
from textual.app import ScreenStackError
from textual.widgets import DataTable

from bench.fleet import synthetic_fleet
from runbook.fleet import hosts as records
from runbook.fleet.layout import FleetDir
from runbook.fleet.state import RANK
from runbook.fleet.status import STOPPED, load
from runbook.tui.fleet.app import FleetApp
from tests.conftest import RUNBOOK
from tests.tui_support import text_of, wait_until


@pytest.fixture(scope="module")
def fleet40(tmp_path_factory):
    return synthetic_fleet(tmp_path_factory.mktemp("view") / "fleet", 40, seed=7)


async def test_rows_filter_sort_and_detail(fleet40):
    app = FleetApp(fleet40, refresh=60)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.query_one("#hosts")
        assert table.row_count == len(app.shown) == 40
        ranks = [RANK[r["state"]] for r in app.shown]
        assert ranks == sorted(ranks)  # worst first
        title = text_of(app.query_one("#fleet-title"))
        assert "40 of 40 hosts" in title and "sorted by state" in title
        await pilot.press("s")  # next sort column: host
        assert app.sort == "host"
        assert [r["host"] for r in app.shown] == sorted(r["host"] for r in app.shown)
        await pilot.press("slash", *"state:remediated")
        await pilot.pause()
        remediated = [r["host"] for r in app.shown]
        assert remediated and all(r["state"] == "remediated" for r in app.shown)
        assert table.row_count == len(remediated)
        await pilot.press("enter")  # back to the table
        detail = text_of(app.query_one("#detail"))
        assert remediated[0] in detail and "Timeline:" in detail
        assert "verify: succeeded" in detail and "fleet:" not in detail.split("Timeline:")[0]
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.shown) == 40 and app.filter_text == ""
        await pilot.press("slash", *"python 3.11", "enter")
        await pilot.pause()
        assert app.shown and all(r["state"] == "failed" for r in app.shown)
        await pilot.press("down")
        if len(app.shown) > 1:
            assert app.shown[1]["host"] in text_of(app.query_one("#detail"))
        await pilot.press("q")
    assert app.return_value == 1  # compromised hosts: as the headless command


async def test_a_narrow_terminal_keeps_the_essential_columns(fleet40):
    app = FleetApp(fleet40, refresh=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one("#hosts")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:3] == ["Host", "State", "Findings"] and "Journal head" not in labels
        assert table.row_count == 40


def _running(fleet) -> None:
    """Mark the fleet as being run by this (live) process."""
    manifest = FleetDir(fleet).load_manifest()
    manifest.update(status="running", controller=socket.gethostname(), pid=os.getpid())
    FleetDir(fleet).save_manifest(manifest)


async def test_the_view_refreshes_while_a_fleet_run_is_in_progress(tmp_path):
    fleet = synthetic_fleet(tmp_path / "fleet", 6, seed=3)
    _running(fleet)
    host = "host-0002"
    host_dir = FleetDir(fleet).host_dir(host)
    record = records.load(host_dir)
    record["ansible"].update(status="running", stage="work")
    records.save(host_dir, record)
    app = FleetApp(fleet, refresh=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        state = {r["host"]: r["state"] for r in app.watcher.fleet.rows}
        assert state[host] == "running"
        assert "running" in text_of(app.query_one("#fleet-title"))
        record["ansible"].update(status="unreachable", reason="ssh: connection timed out")
        records.save(host_dir, record)
        await wait_until(
            pilot,
            lambda: {r["host"]: r["state"] for r in app.shown}[host] == "unreachable",
            timeout=10,
        )
        assert app.shown[0]["host"] == host  # worst first, after the refresh too


def test_a_run_that_died_leaves_no_host_running(tmp_path):
    fleet = synthetic_fleet(tmp_path / "fleet", 3, seed=5)
    dead = subprocess.Popen(["true"])
    dead.wait()
    manifest = FleetDir(fleet).load_manifest()
    manifest.update(status="running", controller=socket.gethostname(), pid=dead.pid)
    FleetDir(fleet).save_manifest(manifest)
    host_dir = FleetDir(fleet).host_dir("host-0001")
    record = records.load(host_dir)
    record["ansible"].update(status="running")
    records.save(host_dir, record)
    rows = {r["host"]: r for r in load(fleet).rows}
    assert rows["host-0001"]["state"] == "failed" and rows["host-0001"]["reason"] == STOPPED
    assert not load(fleet).running


def test_the_headless_table_and_json(fleet40, sandbox_env):
    def status(*args):
        return subprocess.run(
            [str(RUNBOOK), "fleet", "status", str(fleet40), *args],
            env=sandbox_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )

    table = status()
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert lines[0].startswith("fleet run axios-2026-03 [live] finished: 40 hosts (")
    assert lines[2].split() == [
        *("HOST", "STATE", "FINDINGS", "STEPS", "OUTSTANDING", "DURATION", "JOURNAL", "HEAD")
    ]
    body = [line for line in lines[3:] if line.startswith("host-")]
    assert len(body) == 40
    failed = status("--state", "failed", "--sort", "host")
    listed = [line for line in failed.stdout.splitlines() if line.startswith("host-")]
    hosts = [line.split()[0] for line in listed]
    assert hosts and hosts == sorted(hosts) and all(line.split()[1] == "failed" for line in listed)
    data = json.loads(status("--format", "json").stdout)
    assert data["schema"] == "runbook.fleet.status/v1" and len(data["hosts"]) == 40
    assert sum(data["counts"].values()) == 40
    row = next(r for r in data["hosts"] if r["state"] == "remediated")
    assert row["steps_done"] == row["steps_total"] == 10 and len(row["head"]) == 64
    gone = subprocess.run(
        [str(RUNBOOK), "fleet", "status", str(fleet40 / "nope")],
        env=sandbox_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert gone.returncode == 2 and "Traceback" not in gone.stderr and "nope" in gone.stderr


async def test_a_refresh_or_highlight_arriving_as_the_view_closes_is_ignored(tmp_path):
    """The table's messages and the refresh timer can still arrive once the last screen is gone
    (quitting during a fleet run): they must not end the app with a traceback."""
    fleet = synthetic_fleet(tmp_path / "fleet", 3, seed=7)
    app = FleetApp(fleet, refresh=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.query_one("#hosts", DataTable)
    with pytest.raises(ScreenStackError):
        app.screen  # noqa: B018 (the state the handlers meet)
    app.poll()
    row = table.coordinate_to_cell_key((0, 0)).row_key
    app.on_data_table_row_highlighted(DataTable.RowHighlighted(table, 0, row))
