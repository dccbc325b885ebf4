"""`runbook exercise from-journal JOURNAL`: a scenario that replays a real run, so a team can
drill the incident it just had.

The world comes from the world plugin's `from_journal` (what the run saw: projects, package
managers, credential types and places; never a secret value). The scenario names the same
playbook, opens with the first finding of the real run as an inject, turns the notes the team
took into injects at the same moment of the run, and expects every step to end as well as it
did, no later than it did. The file is a start: edit it, then `runbook exercise validate` it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from runbook.bundled import bundled_playbooks
from runbook.exercise.clock import wall_time
from runbook.exercise.worlds import WorldUnavailable, world_plugin
from runbook.journal import MalformedEntry, numbered_entries, read_journal
from runbook.redact import Redactor
from runbook.termsafe import printable

SLUG = re.compile(r"[^a-z0-9_-]+")
# phases by words in a step kind's name (a guess to edit: the playbook knows better)
PHASE_WORDS = (
    ("detect", ("detect", "scan", "sweep", "find", "check")),
    ("rotate", ("rotate", "credential", "secret", "token", "key")),
    ("contain", ("pin", "wipe", "clear", "cache", "block", "isolate", "quarantine")),
    ("communicate", ("notify", "comms", "communicate", "review", "report")),
)


class ReplayError(Exception):
    """No scenario can be made from this journal; the message says why."""


def _phase(uses: str) -> str:
    for phase, words in PHASE_WORDS:
        if any(word in uses for word in words):
            return phase
    return "eradicate"


def _minutes(seconds: float) -> str:
    return f"{max(5, math.ceil(seconds / 60))}m"


def _playbook_ref(run: dict[str, Any]) -> str:
    """The bundled id when the run used the bundled playbook unchanged, else its path."""
    playbook = run.get("playbook") or {}
    pid, path, sha = playbook.get("id"), playbook.get("path"), playbook.get("sha256")
    bundled = bundled_playbooks().get(str(pid))
    if bundled is not None:
        import hashlib

        try:
            if not sha or hashlib.sha256(bundled.read_bytes()).hexdigest() == sha:
                return str(pid)
        except OSError:
            pass
    if path:
        return str(path)
    raise ReplayError("the journal does not say which playbook the run used")


def scenario_from_journal(path: Path, world_kind: str = "npm-host") -> str:
    """The scenario (YAML text) replaying the run journaled at `path`. Raises ReplayError."""
    try:
        entries = [entry for _, entry in numbered_entries(read_journal(Path(path)))]
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
    except MalformedEntry as exc:
        raise ReplayError(f"{path}: {exc}") from None
    run = next((e["data"] for e in entries if e["event"] == "run_started"), None)
    if run is None:
        raise ReplayError(f"{path} holds no run (no run_started entry)")
    try:
        plugin = world_plugin(world_kind)
        world = dict(plugin.from_journal(entries))
    except WorldUnavailable as exc:
        raise ReplayError(str(exc)) from None
    except Exception as exc:  # the plugin could not read this run
        raise ReplayError(f"the world could not be rebuilt: {type(exc).__name__}: {exc}") from None
    world.setdefault("kind", world_kind)

    start = wall_time(entries[0]["ts"])
    playbook = run.get("playbook") or {}
    pid = str(playbook.get("id") or "playbook")
    day = entries[0]["ts"][:10]
    slug = SLUG.sub("-", f"replay-{pid}-{Path(path).stem}".lower()).strip("-")[:60]

    injects: list[dict[str, Any]] = []
    first = next(
        (
            (e, f)
            for e in entries
            if e["event"] == "step_planned"
            for f in e["data"].get("findings") or []
            if isinstance(f, dict) and f.get("severity") == "compromised"
        ),
        None,
    )
    if first is not None:
        _, finding = first
        what = finding.get("package") or finding.get("kind") or "a trace of the incident"
        if finding.get("version"):
            what = f"{what}@{finding['version']}"
        injects.append(
            {
                "id": "first-finding",
                "title": "Where it started",
                "at": "0m",
                "text": f"On {day}, the run found **{what}** on this machine: "
                f"{finding.get('message') or finding.get('kind', '')}. Work the playbook as the "
                "team did that day.",
            }
        )
    for index, entry in enumerate(e for e in entries if e["event"] == "note"):
        text = str(entry["data"].get("text", "")).strip()
        if not text:
            continue
        injects.append(
            {
                "id": f"note-{index + 1}",
                "title": f"What the team noted then ({entry['data'].get('by', 'someone')})",
                "at": f"{max(0, math.ceil((wall_time(entry['ts']) - start) / 60))}m",
                "text": text,
            }
        )

    expectations: list[dict[str, Any]] = []
    uses = {
        str(e["data"].get("step")): str(e["data"].get("uses", ""))
        for e in entries
        if e["event"] == "step_planned"
    }
    for entry in entries:
        data = entry["data"]
        if entry["event"] != "step_finished" or data.get("outcome") not in (
            "succeeded",
            "outstanding",
        ):
            continue
        step = str(data.get("step"))
        if any(x["id"] == f"{step}-again" for x in expectations):
            continue
        took = wall_time(entry["ts"]) - start
        expectations.append(
            {
                "id": SLUG.sub("-", f"{step}-again".lower()),
                "title": f"'{step}' ends {data['outcome']} again, no later than on {day}",
                "phase": _phase(uses.get(step, step)),
                "score": 10,
                "deadline": _minutes(took * 1.5),
                "when": {"step": step, "outcome": ["succeeded", "outstanding"]},
            }
        )
    if not expectations:
        raise ReplayError(f"{path}: no step of that run ended well; nothing to expect of a drill")
    expectations[0]["must"] = True

    scenario: dict[str, Any] = {
        "id": slug,
        "title": f"Replay: the {pid} run of {day}",
        "version": "1",
        "playbook": _playbook_ref(run),
        "summary": (
            f"A drill of the incident journaled in {Path(path).name} ({day}): the same playbook, "
            "in a simulated copy of the machine the run saw. The world's secrets are made up; "
            "no value from the real run is in this file."
        ),
        "objectives": [
            {"id": "as-well", "text": "Do at least as well as the real response, and faster."}
        ],
        "roles": [
            {"id": "oncall", "name": "On-call developer"},
            {"id": "ic", "name": "Incident commander"},
        ],
        "world": world,
        "variants": [{"id": "as-it-happened", "title": "As it happened"}],
        "injects": injects,
        "expectations": expectations,
        "survey": [
            {"id": "different", "question": "What would you do differently from the real day?"}
        ],
        "auto": {"operator": "drill-bot", "role": "oncall"},
    }
    redactor = Redactor()  # the journal is redacted already; text from it passes once more
    header = (
        f"# Replay of {printable(Path(path).name)}, made by `runbook exercise from-journal`.\n"
        "# Check it with `runbook exercise validate`, then play it with `runbook exercise "
        "start`.\n"
    )
    return header + yaml.safe_dump(
        redactor(scenario), sort_keys=False, allow_unicode=True, width=100
    )
