"""The pieces of `runbook fleet` on their own: host states from journals, the archive a host sends
(read as hostile), folder names, the play, the agent's checks (run directly, without Ansible),
and what the status table and exit codes say."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import multiprocessing
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runbook.fleet import hosts as records
from runbook.fleet.bundle import installed_versions
from runbook.fleet.collect import ArchiveRefused, unpack
from runbook.fleet.driver import AGENT, _forget_environment
from runbook.fleet.hostvars import HOST_VARS, agent_config_expression
from runbook.fleet.layout import host_dirname
from runbook.fleet.play import FETCH, PLAYBOOK, VERDICT, build
from runbook.fleet.state import JournalSummary, journal_state, summarize
from runbook.fleet.status import Fleet, exit_code, matches, sort_key, table
from runbook.journal import GENESIS, canonical, entry_hash
from tests.fleet_support import fake_old_python

pytest_plugins = ["tests.fleet_fixtures"]  # the session's wheelhouse and host venv root


def chain(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Journal bytes with a sound hash chain."""
    lines, prev = [], GENESIS
    for seq, (event, data) in enumerate(events, start=1):
        entry = {"seq": seq, "ts": f"2026-03-31T09:00:{seq:02d}.000Z", "event": event}
        entry.update(data=data, prev=prev)
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        lines.append(canonical(entry))
    return b"\n".join(lines) + b"\n"


COMPROMISED = {"severity": "compromised", "kind": "installed", "path": "/p/node_modules/axios"}


def run_events(mode: str, last_scan: dict[str, Any] | None, *, remain: bool = False):
    events = [
        ("run_started", {"target": "/t", "mode": mode, "playbook": {"id": "p"}}),
        ("step_planned", {"step": "detect", "findings": [COMPROMISED]}),
        ("step_started", {"step": "detect"}),
        ("step_finished", {"step": "detect", "outcome": "succeeded", "result": {"affected": True}}),
        ("step_planned", {"step": "wipe", "findings": []}),
        ("step_started", {"step": "wipe"}),
        ("step_finished", {"step": "wipe", "outcome": "succeeded", "findings_remain": remain}),
    ]
    if last_scan is not None:
        events += [
            ("step_planned", {"step": "verify", "findings": []}),
            ("step_started", {"step": "verify"}),
            ("step_finished", {"step": "verify", "outcome": "succeeded", "result": last_scan}),
        ]
    events += [
        ("manual_item", {"step": "review", "item": "ci", "text": "Searched CI", "answer": "done"}),
        ("manual_item", {"step": "review", "item": "dns", "text": "DNS", "answer": "outstanding"}),
        ("step_skipped", {"step": "rotate", "reason": "needs a person: off in a fleet run"}),
        (
            "run_finished",
            {"outcome": "completed", "reason": "", "steps": {"review": "outstanding"}},
        ),
    ]
    return chain(events)


@pytest.mark.parametrize(
    ("mode", "last_scan", "remain", "state"),
    [
        ("live", {"affected": False}, False, "remediated"),
        ("live", {"checks": {"scan": "clean"}}, False, "remediated"),  # a verify step's result
        ("live", None, False, "compromised"),  # nothing looked after the changes
        ("live", {"affected": True}, False, "compromised"),
        ("live", {"affected": False}, True, "compromised"),  # a step said findings remain
        ("live", {"checks": {"scan": "incomplete"}}, False, "compromised"),
        ("dry-run", {"affected": False}, False, "compromised"),  # a dry run changes nothing
    ],
)
def test_remediated_needs_a_live_run_whose_last_scan_found_nothing(mode, last_scan, remain, state):
    summary = summarize(run_events(mode, last_scan, remain=remain))
    assert summary.ok and summary.run_outcome == "completed"
    assert journal_state(summary) == state
    assert summary.findings == {"compromised": 1}
    assert summary.outstanding == ["review: DNS", "rotate: needs a person: off in a fleet run"]


def test_unknown_findings_are_never_clean():
    raw = chain(
        [
            ("run_started", {"target": "/t", "mode": "live"}),
            ("step_planned", {"step": "d", "findings": [{"severity": "unknown", "path": "/x"}]}),
            ("step_finished", {"step": "d", "outcome": "succeeded", "result": {"affected": None}}),
            ("run_finished", {"outcome": "completed", "steps": {"d": "succeeded"}}),
        ]
    )
    assert journal_state(summarize(raw)) == "unchecked"


def test_a_broken_chain_says_nothing_but_that_it_is_broken():
    raw = run_events("live", {"affected": False}).replace(b'"wipe"', b'"wIpe"', 1)
    summary = summarize(raw)
    assert not summary.ok and summary.bad_line == 5 and summary.findings == {}


def _archive(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def test_a_hosts_archive_is_read_as_hostile(tmp_path):
    link = tarfile.TarInfo("journals/link.jsonl")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("journals/dev.jsonl")
    device.type = tarfile.CHRTYPE
    journal = run_events("live", {"affected": False})
    archive = tmp_path / "in.tgz"
    archive.write_bytes(
        _archive(
            [
                (_file("summary.json"), b'{"targets": []}'),
                (_file("journals/20260331T000000Z-aaaaaa.jsonl"), journal),
                (_file("../escape.jsonl"), b"x"),
                (_file("/etc/cron.d/evil"), b"x"),
                (_file("journals/../../up.jsonl"), b"x"),
                (_file("journals/.hidden.jsonl"), b"x"),
                (_file("journals/notes.txt"), b"x"),
                (_file("output/x.ndjson"), b"{}\n"),
                (link, b""),
                (device, b""),
            ]
        )
    )
    host_dir = tmp_path / "host"
    unpacked = unpack(archive, host_dir)
    assert sorted(unpacked.files) == [
        "journals/20260331T000000Z-aaaaaa.jsonl",
        "output/x.ndjson",
        "summary.json",
    ]
    assert len(unpacked.ignored) == 7
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "host/journals/20260331T000000Z-aaaaaa.jsonl",
        "host/output/x.ndjson",
        "host/summary.json",
        "in.tgz",
    ]


def test_an_oversized_or_damaged_archive_is_refused(tmp_path):
    big = _file("summary.json")
    archive = tmp_path / "big.tgz"
    archive.write_bytes(_archive([(big, b"x" * (17 * 1024 * 1024))]))
    with pytest.raises(ArchiveRefused, match="over its limit"):
        unpack(archive, tmp_path / "h")
    damaged = tmp_path / "damaged.tgz"
    damaged.write_bytes(_archive([(_file("summary.json"), b"{}")])[:20])
    with pytest.raises(ArchiveRefused):
        unpack(damaged, tmp_path / "h2")


def test_arrival_verifies_journals_and_renders_their_reports(tmp_path):
    host_dir = tmp_path / "h1"
    (host_dir / "journals").mkdir(parents=True)
    good = host_dir / "journals" / "20260331T000000Z-aaaaaa.jsonl"
    good.write_bytes(run_events("live", {"affected": False}))
    record = records.new_record("h1", "f", "run")
    record["ansible"]["status"] = "ok"
    unpacked = records.Unpacked(
        summary={"targets": [{"target": "/t", "journal": f"/remote/{good.name}", "exit": 0}]},
        files=[f"journals/{good.name}"],
    )
    records.arrive(record, host_dir, unpacked)
    row = records.save(host_dir, record, steps_total=4)["row"]
    assert row["state"] == "remediated" and row["head"] == record["journals"][0]["head"]
    assert (host_dir / "reports" / f"{good.stem}.md").read_text().startswith("#")
    # the journal edited afterwards: verified again on the next load, and the host is failed
    good.write_bytes(good.read_bytes().replace(b'"wipe"', b'"wIpe"', 1))
    again = records.load(host_dir)["row"]
    assert again["state"] == "failed" and again["reason"].startswith("journal broken")


@pytest.mark.parametrize(
    ("name", "safe"),
    [("web-01.example.com", "web-01.example.com"), ("10.0.0.7", "10.0.0.7"), ("h:2222", "h:2222")],
)
def test_host_folder_names(name, safe):
    assert host_dirname(name) == safe


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "tab\there", "x" * 300])
def test_odd_host_names_get_a_plain_folder_name(name):
    folder = host_dirname(name)
    assert "/" not in folder and not folder.startswith(".") and folder
    assert len(folder) < 100 and folder != name
    assert host_dirname(name + "x") != folder


def test_the_play():
    [free] = build("run")
    assert free["strategy"] == "free" and "max_fail_percentage" not in free
    names = [t["name"] for t in free["tasks"]]
    assert PLAYBOOK not in names and names[-2:] == [FETCH, VERDICT]
    [linear] = build("run", serial="20%", max_fail_percent=10, playbook_file=True)
    assert "strategy" not in linear and linear["max_fail_percentage"] == 10
    assert linear["serial"] == "20%" and build("scan", serial="5")[0]["serial"] == 5
    assert PLAYBOOK in [t["name"] for t in linear["tasks"]]
    environment = next(t for t in linear["tasks"] if t["name"] == "runbook: environment")
    assert environment["no_log"] is True
    expression = agent_config_expression("runbook_fleet")
    assert all(v.name in expression for v in HOST_VARS)


def _agent(config: dict[str, Any], command: str = "probe") -> tuple[int, dict[str, Any]]:
    blob = base64.b64encode(json.dumps(config).encode()).decode()
    done = subprocess.run(
        [sys.executable, str(AGENT), command, blob], capture_output=True, text=True, timeout=120
    )
    return done.returncode, json.loads(done.stdout)


def _config(home: Path, **extra: Any) -> dict[str, Any]:
    config = {"home": str(home), "version": "0.1.0", "wheel": "w.whl", "wheel_sha256": "0" * 64}
    config.update(venv_root=str(home / "venvs"), python=sys.executable)
    config.update(extra)
    return config


def test_the_agent_probe_names_what_a_host_lacks(tmp_path):
    code, said = _agent(_config(tmp_path))
    assert code == 0 and said["ok"] and said["python_version"].startswith("3.1")
    assert said["installed"] is False and said["staged"] is False
    code, said = _agent(_config(tmp_path, python=str(fake_old_python(tmp_path))))
    assert code == 1 and said["stage"] == "probe"
    assert "is Python 3.9.18" in said["reason"] and "runbook_python" in said["reason"]
    code, said = _agent(_config(tmp_path, min_free_mb=10**12))
    assert code == 1 and "not enough free space" in said["reason"]
    code, said = _agent(_config(tmp_path, targets=[str(tmp_path / "gone")]))
    assert code == 1 and "is not a directory" in said["reason"]
    code, said = _agent(_config(tmp_path, python=str(tmp_path / "nope")))
    assert code == 1 and "not found" in said["reason"]
    done = subprocess.run([sys.executable, str(AGENT), "probe", "%%%"], capture_output=True)
    assert done.returncode == 2 and b"bad configuration" in done.stdout


def test_the_controllers_environment_values_are_not_kept_in_artifacts(tmp_path):
    artifact = tmp_path / "artifacts" / "run1" / "command"
    artifact.parent.mkdir(parents=True)
    artifact.write_text(json.dumps({"command": ["x"], "env": {"RUNBOOK_NPM_PASSWORD": "hunter2"}}))
    _forget_environment(tmp_path / "artifacts")
    kept = json.loads(artifact.read_text())
    assert kept["env"] == ["RUNBOOK_NPM_PASSWORD"] and "hunter2" not in artifact.read_text()


def _row(host: str, state: str, **extra: Any) -> dict[str, Any]:
    row = records.derive(records.new_record(host, "f", "run"))
    row.update(state=state, **extra)
    return row


def test_filter_sort_table_and_exit_codes(tmp_path):
    rows = [
        _row("b", "clean"),
        _row("a", "failed", reason="no Python 3.11 or newer"),
        _row("c", "compromised", findings={"compromised": 3}, findings_text="3 compromised"),
        _row("d\x1b[2Jx", "unchecked"),
    ]
    fleet = Fleet(tmp_path, {"kind": "run", "mode": "live", "playbook": {"id": "p"}}, rows)
    assert [r["host"] for r in sorted(rows, key=sort_key("state"))] == ["a", "c", "d\x1b[2Jx", "b"]
    assert min(rows, key=sort_key("findings"))["host"] == "c"
    assert [r["host"] for r in rows if matches(r, "state:failed")] == ["a"]
    assert [r["host"] for r in rows if matches(r, "python 3.11")] == ["a"]
    text = table(fleet)
    assert "\x1b" not in text and "d\\x1b[2Jx" in text  # a host name cannot drive the terminal
    assert "a: no Python 3.11 or newer" in text
    assert exit_code(fleet) == 1
    assert exit_code(Fleet(tmp_path, {}, [_row("b", "clean"), _row("r", "remediated")])) == 0
    assert exit_code(Fleet(tmp_path, {}, [_row("b", "clean"), _row("u", "unchecked")])) == 3
    assert exit_code(Fleet(tmp_path, {}, [_row("p", "pending")])) == 1


def test_journal_summary_round_trips():
    summary = summarize(run_events("live", {"affected": False}))
    assert JournalSummary.from_dict(summary.as_dict() | {"extra": 1}) == summary


def test_a_wheelhouse_without_the_dependencies_says_so(tmp_path, wheelhouse):
    """`runbook_dependencies: wheelhouse` (the default) with only runbook and pip in it: the
    install fails, naming the missing wheel and the two ways out."""
    stage_parent = tmp_path / "venvs"
    wheel = next(wheelhouse.glob("runbook-*.whl"))
    pip = next(wheelhouse.glob("pip-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    stage = stage_parent / f"stage-0.1.0-{digest[:12]}"
    stage.mkdir(parents=True)
    for item in (wheel, pip):
        shutil.copy2(item, stage / item.name)
    config = _config(tmp_path, wheel=wheel.name, wheel_sha256=digest, pip_wheel=pip.name)
    config.update(playbook="axios-2026-03", playbook_id="axios-2026-03", dry_run=True)
    code, said = _agent(config, "run")
    assert code == 1 and said["stage"] == "install"
    assert "installing runbook failed" in said["reason"]
    assert "the wheelhouse lacks a dependency" in said["reason"]
    assert not (stage_parent / f"runbook-0.1.0-{digest[:12]}" / ".runbook-fleet-installed").exists()


def test_the_wheelhouse_pins_what_this_controller_runs():
    from importlib import metadata

    pins = dict(p.split("==") for p in installed_versions())
    assert pins["textual"] == metadata.version("textual")
    assert "pytest" not in pins and "ansible-core" not in pins  # extras are not runbook's own


def _stage_all(agent_path: str, config: dict[str, Any], playbooks: list[bytes], barrier) -> None:
    spec = importlib.util.spec_from_file_location("fleet_agent", agent_path)
    assert spec and spec.loader
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    host = agent.Host(config)
    for text in playbooks:
        digest = hashlib.sha256(text).hexdigest()
        staged = dict(config, playbook_sha256=digest, playbook_b64=base64.b64encode(text).decode())
        barrier.wait(timeout=20)  # broken at once for the others when one worker dies
        assert Path(agent._playbook_ref(host, staged)).read_bytes() == text


def test_hosts_sharing_a_venv_root_stage_the_same_playbook_at_once(tmp_path):
    """Hosts sharing a venv root stage one playbook file at the same moment: each must end with
    the file staged (a shared temporary name once made one of them fail)."""
    playbooks = [b"# %d\n" % n + b"x" * 200_000 for n in range(25)]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(6)
    workers = [
        context.Process(
            target=_stage_all,
            args=(
                str(AGENT),
                _config(tmp_path / f"h{n}", venv_root=str(tmp_path / "shared")),
                playbooks,
                barrier,
            ),
        )
        for n in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * 6
    assert not list((tmp_path / "shared" / "playbooks").glob("*.tmp"))
    assert len(list((tmp_path / "shared" / "playbooks").glob("*.yaml"))) == 25
