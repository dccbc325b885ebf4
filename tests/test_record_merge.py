"""One record from many runs: the summary per host and target, open items consolidated, resumed
runs once, dry runs apart, unusable journals never counted as clean."""

from __future__ import annotations

from pathlib import Path

from runbook.record.load import load
from runbook.record.merge import build
from tests.record_support import ALLOWED, JOURNALS, finished, item, started, step, write


def record_of(*paths: Path, incident: str | None = None):
    return build(load([str(p) for p in paths], ALLOWED), incident)


def finding(severity: str) -> tuple[str, dict]:
    return (
        "step_planned",
        {
            "step": "detect",
            "uses": "detect",
            "findings": [
                {"kind": "installed", "severity": severity, "path": "/srv/app/x", "message": "m"}
            ],
            "actions": [],
        },
    )


def test_the_fixture_incident() -> None:
    record = record_of(JOURNALS, incident="axios 2026-03")
    data = record.data
    assert data["schema"] == "runbook.record/v1" and data["title"] == "axios 2026-03"
    assert data["journals"] == {"read": 6, "runs": 2, "dry_runs": 1, "copies": 1, "unusable": 2}
    rows = {r["host"]: r for r in data["summary"]}
    assert set(rows) == {"laptop-ana", "ci-runner-7", "build-host-2"}
    ana, ci, tampered = rows["laptop-ana"], rows["ci-runner-7"], rows["build-host-2"]
    assert (ana["exposure"], ana["live_runs"], ana["dry_runs"]) == ("compromised", 1, 1)
    assert ana["remediated"] == "partly: checklist items open"
    assert ana["last_run"]["outcome"] == "completed"  # failed, then resumed: one run, completed
    assert ana["outstanding"] == 2
    assert ci["credentials"] == {"found": 1, "rotated": 0, "rotations": 0}
    assert ci["outstanding"] == 4
    # the tampered journal's host is there, unknown, never clean
    assert (tampered["exposure"], tampered["problems"]) == ("unknown", 1)
    assert tampered["remediated"] == "unknown: no usable journal"
    # one timeline, ordered by time, each line naming host, target and operator
    live = record.live_events()
    assert [e["end_ts"] for e in live] == sorted(e["end_ts"] for e in live)
    assert {e["host"] for e in live} == {"laptop-ana", "ci-runner-7"}
    assert all(e["operator"] and e["target"].startswith("/tmp/rb-incident/") for e in live)
    assert {e["operator"] for e in live if e["host"] == "laptop-ana"} == {"ana", "ben"}
    # the dry run is apart
    assert [r["mode"] for r in data["dry_runs"]] == ["dry-run"]
    assert all(e["dry_run"] for e in record.dry_events())
    assert not any(e["dry_run"] for e in live)
    # outstanding items name the run that owns them
    owners = {(o["host"], o["step"], o["item"]): o["run"] for o in data["outstanding"]}
    assert owners[("laptop-ana", "tell-people", "ticket")] == rows["laptop-ana"]["last_run"]["run"]
    assert ("laptop-ana", "check-host", "files") not in owners  # ana ticked it
    notes = [(n["host"], n["by"]) for n in data["notes"]]
    assert notes == [("laptop-ana", "ana")]


def test_an_item_done_in_a_later_run_is_no_longer_outstanding(tmp_path: Path) -> None:
    first = write(
        tmp_path / "1.jsonl",
        [
            started(),
            item("check", "files", "outstanding"),
            item("check", "logs", "outstanding"),
            finished(),
        ],
    )
    second = write(
        tmp_path / "2.jsonl", [started(operator="ben"), item("check", "files", "done"), finished()]
    )
    other = write(
        tmp_path / "3.jsonl",
        [started(host="host-b"), item("check", "files", "outstanding"), finished()],
    )
    data = record_of(first, second, other).data
    left = sorted((o["host"], o["item"], o["by"]) for o in data["outstanding"])
    assert left == [("host-a", "logs", "ana"), ("host-b", "files", "ana")]


def test_dry_runs_never_remediate_and_their_items_are_not_outstanding(tmp_path: Path) -> None:
    dry = write(
        tmp_path / "dry.jsonl",
        [
            started(mode="dry-run"),
            finding("compromised"),
            *step("detect", "succeeded"),
            item("check", "files", "outstanding"),
            finished(),
        ],
    )
    row = record_of(dry).data["summary"][0]
    assert row["exposure"] == "compromised"  # what it saw is real
    assert row["remediated"] == "no: dry run only"
    assert row["outstanding"] == 0 and row["last_run"] is None


def test_exposure_and_remediation(tmp_path: Path) -> None:
    def one(name: str, *entries) -> dict:
        return record_of(write(tmp_path / f"{name}.jsonl", list(entries))).data["summary"][0]

    clean = one("clean", started(), finding("info"), *step("detect", "succeeded"), finished())
    assert (clean["exposure"], clean["remediated"]) == ("clean", "yes")
    exposed = one("exposed", started(), finding("at-risk"), finished())
    assert exposed["exposure"] == "exposed"
    unknown = one("unknown", started(), finding("unknown"), finished())
    assert unknown["exposure"] == "unknown"
    crashed = one("crashed", started(), *step("detect", "succeeded"))
    assert (crashed["exposure"], crashed["remediated"]) == ("not checked", "no: run unfinished")
    failed = one("failed", started(), *step("pin", "failed"), finished("failed"))
    assert failed["remediated"] == "no: run failed (pin failed)"
    unchecked = one(
        "unchecked",
        started(),
        ("step_started", {"step": "detect"}),
        ("step_finished", {"step": "detect", "outcome": "succeeded", "result": {"unchecked": 2}}),
        finished(),
    )
    assert unchecked["exposure"] == "unknown"


def test_rotations_are_counted_once_each(tmp_path: Path) -> None:
    def phase(name: str) -> tuple[str, dict]:
        return (
            "aws_rotation",
            {
                "step": "rotate",
                "old": "AKIA…AAAA [sha256:1]",
                "old_fp": "1",
                "new": "AKIA…BBBB [sha256:2]",
                "user": "ci",
                "phase": name,
            },
        )

    journal = write(
        tmp_path / "r.jsonl",
        [
            started(),
            phase("intent"),
            phase("created"),
            phase("deleted"),
            phase("done"),
            ("npm_rotation", {"step": "npm", "old": "npm_…x", "phase": "rolled-back"}),
            finished(),
        ],
    )
    data = record_of(journal).data
    assert data["summary"][0]["credentials"] == {"found": 0, "rotated": 1, "rotations": 2}
    phases = sorted(r["phase"] for r in data["credentials"]["rotations"])
    assert phases == ["done", "rolled-back"]


def test_text_from_journals_is_redacted_again_on_the_way_out(tmp_path: Path) -> None:
    """A journal written by something other than runbook's writer (or an older one) may hold a
    secret: the record redacts every text once more."""
    from runbook.journal import Journal

    token = "npm_" + "Zq7" * 12
    path = tmp_path / "raw.jsonl"
    with Journal(path, lambda data: data) as journal:  # no redaction at write time
        journal.append(*started(operator=f"ana token={token}"))
        journal.append("note", {"text": f"used {token}", "by": "ana"})
        journal.append(*finished())
    record = record_of(path)
    assert token not in repr(record.data)
    shown = [{k: v for k, v in e.items() if k != "data"} for e in record.events]
    assert token not in repr(shown)  # `data` stays as journaled: each export redacts it
    assert "npm_…" in record.data["notes"][0]["text"]
    assert "npm_…" in shown[0]["operator"]


def test_an_exercise_is_apart_and_its_injects_and_decisions_are_marked(tmp_path: Path) -> None:
    """The events exercise mode journals (see runbook/exercise): injects, decisions and
    observations show in the timeline; the run itself is listed apart, like a dry run."""
    journal = write(
        tmp_path / "drill.jsonl",
        [
            started(mode="exercise"),
            (
                "inject_fired",
                {
                    "inject": "i1",
                    "title": "A second laptop beacons",
                    "by": "clock",
                    "evidence": ["/sandbox/home/.local/ld.py"],
                },
            ),
            (
                "decision",
                {
                    "title": "Isolate the laptop?",
                    "decision": "isolate",
                    "rationale": "beaconing",
                    "owner": "ana",
                    "role": "lead",
                },
            ),
            ("observation", {"text": "ana found ld.py in 4 minutes", "by": "facilitator"}),
            finished(),
        ],
    )
    record = record_of(journal)
    assert record.data["runs"] == [] and [r["mode"] for r in record.data["dry_runs"]] == [
        "exercise"
    ]
    events = {e["event"]: e for e in record.dry_events()}
    inject = events["inject_fired"]
    assert (inject["marker"], inject["title"], inject["operator"]) == (
        "inject",
        "Inject: A second laptop beacons",
        "clock",
    )
    assert inject["refs"] == [{"type": "file", "value": "/sandbox/home/.local/ld.py"}]
    decision = events["decision"]
    assert (decision["type"], decision["operator"]) == ("decision", "ana")
    assert decision["description"] == "isolate (beaconing)"
    assert events["observation"]["marker"] == "note"
    assert [(n["kind"], n["text"]) for n in record.data["notes"]] == [
        ("inject", "A second laptop beacons"),
        ("note", "ana found ld.py in 4 minutes"),
    ]
