"""Helpers for the exercise tests: a small world plugin (a stand-in for `steps.world` when it
is not installed), a fast playbook of test step kinds, and a scenario on it.

The small world builds a real sandbox (HOME, host root, one project) and writes evidence into
it with the same confinement rules the real plugin follows; it has no services to start.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.exercise.worlds import register_world
from tests.conftest import EXAMPLE
from tests.support.kinds import register

register()  # test_find, test_flaky, test_wipe, test_slow

KIND = "test-host"


@dataclass
class SmallWorld:
    sandbox: Path
    home: Path
    root: Path
    targets: list[Path]
    env: dict[str, str]
    run_options: dict[str, Any] = field(default_factory=dict)
    ground_truth: dict[str, Any] = field(default_factory=dict)
    missing_tools: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: int = 0
    stopped: int = 0

    def start_services(self) -> None:
        self.started += 1

    def stop_services(self) -> None:
        self.stopped += 1

    def services_state(self) -> dict[str, Any]:
        return {"services": [], "started": self.started}

    def __enter__(self) -> SmallWorld:
        self.start_services()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_services()

    def write_evidence(self, relpath: str, content: str | bytes, *, where: str = "home") -> Path:
        base = {"home": self.home, "root": self.root, "target": self.targets[0]}[where]
        if os.path.isabs(relpath) or ".." in Path(relpath).parts:
            raise ValueError(f"evidence path {relpath!r} leaves the world")
        path = base / relpath
        real = Path(os.path.realpath(path.parent))
        if not real.is_relative_to(os.path.realpath(self.sandbox)):
            raise ValueError(f"evidence path {relpath!r} leads out of the sandbox")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        return path


class SmallWorldPlugin:
    """`validate`, `schema`, `build`, `from_journal` as the interface says, for tests."""

    kind = KIND
    KEYS = ("project", "loader_ran", "needs")

    def validate(self, spec: dict, variants: dict[str, dict]) -> list[tuple[tuple, str]]:
        problems: list[tuple[tuple, str]] = []
        places = [(("world",), spec), *((("variants", name), v) for name, v in variants.items())]
        for where, mapping in places:
            for key in mapping:
                if key not in self.KEYS:
                    problems.append(((*where, key), f"unknown key '{key}' of a test-host world"))
            if "loader_ran" in mapping and not isinstance(mapping["loader_ran"], bool):
                problems.append(((*where, "loader_ran"), "expected true or false"))
        return problems

    def schema(self) -> dict:
        return {
            "type": "object",
            "properties": {
                "project": {"type": "string"},
                "loader_ran": {"type": "boolean"},
                "needs": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        }

    def build(self, spec: dict, variant: str, overrides: dict, seed: int, sandbox: Path):
        merged = {**spec, **overrides}
        home, root = sandbox / "home", sandbox / "root"
        (home / ".config").mkdir(parents=True)
        root.mkdir()
        target = home / str(merged.get("project", "app"))
        shutil.copytree(EXAMPLE, target, symlinks=True)
        (target / "node_modules" / "left-pad").mkdir(parents=True, exist_ok=True)
        if merged.get("loader_ran"):
            (root / "tmp").mkdir()
            (root / "tmp" / "ld.py").write_text("# inert stand-in of the second stage\n")
        env = {
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RUNBOOK_NO_DNS": "1",
            "RUNBOOK_OPERATOR": "player",
        }
        missing = [tool for tool in merged.get("needs", []) if shutil.which(tool) is None]
        return SmallWorld(
            sandbox=sandbox,
            home=home,
            root=root,
            targets=[target],
            env=env,
            ground_truth={
                "variant": variant,
                "seed": seed,
                "loader_ran": bool(merged.get("loader_ran")),
                "where": "/tmp/ld.py" if merged.get("loader_ran") else "nowhere",
            },
            missing_tools=missing,
        )

    def from_journal(self, entries: list[dict]) -> dict:
        project = "app"
        for entry in entries:
            if entry.get("event") == "run_started":
                project = Path(str(entry["data"].get("target", "app"))).name
        found = any(
            f.get("severity") == "compromised"
            for e in entries
            if e.get("event") == "step_planned"
            for f in e["data"].get("findings", [])
        )
        return {"kind": KIND, "project": project, "loader_ran": found}


PLUGIN = SmallWorldPlugin()


def install_small_world() -> None:
    register_world(KIND, PLUGIN)


PLAYBOOK = """\
id: drill-kinds
title: A fast playbook for drills
version: "1"
incident:
  summary: axios 1.14.1 and 0.30.4 were published with a malicious dependency.
  window: {start: 2026-03-31T00:21:00Z, end: 2026-03-31T03:29:00Z}
  packages:
    - {name: axios, bad_versions: ["1.14.1"], safe_pins: {"1": "1.14.0"}}
steps:
  - {id: detect, uses: test_find, title: Find traces, confirm: never,
     with: {severities: [compromised]}}
  - {id: wipe, uses: test_wipe, title: Remove node_modules}
  - {id: rotate, uses: test_slow, title: Rotate the npm token}
  - id: review
    uses: manual
    title: Review the logs
    with:
      items:
        - {id: ci, text: Searched CI logs}
        - {id: dns, text: Searched DNS logs}
"""

SCENARIO = """\
id: small-drill
title: A small drill
playbook: playbook.yaml
summary: The on-call developer finds a compromised lockfile.
objectives:
  - {id: find, text: Find the compromise fast}
audience: developers
roles:
  - {id: oncall, name: On-call developer}
  - {id: ic, name: Incident commander}
duration: 60m
world: {kind: test-host, project: app}
variants:
  - {id: laptop, title: The loader ran on a laptop, world: {loader_ran: true}}
  - {id: ci, title: Only CI installed it, world: {loader_ran: false}, weight: 2,
     auto: {steps: {rotate: {answer: skip, reason: not our token}}}}
phases:
  detect: {steps: [detect], questions: ["Who do you tell first?"]}
  contain: {steps: [wipe]}
  rotate: {steps: [rotate], questions: ["Which tokens did the machine hold?"]}
  communicate: {steps: [review], questions: ["What goes in the status page?"]}
injects:
  - id: ci-alert
    title: CI pulled plain-crypto-js
    at: 0m
    to: [oncall]
    text: "**Build 4711** installed `plain-crypto-js@4.2.1`."
    evidence:
      - {path: ci/build-4711.log, where: home, content: "added plain-crypto-js@4.2.1\\n"}
    decision:
      title: Stop the pipelines?
      owner: ic
      options: [stop all, stop affected, keep running]
  - id: dns-log
    title: DNS logs name the C2
    at: 12m
    evidence:
      - {path: var/log/dns.log, where: root, content: "query sfrclak.com A\\n"}
  - id: token-reminder
    title: The npm token is still live
    when:
      all:
        - since: {finding: {severity: compromised}}
          after: 5m
        - not: {step: rotate}
expectations:
  - {id: found, title: The compromise is found, phase: detect, score: 10, deadline: 10m,
     must: true, when: {finding: {step: detect, severity: compromised}}}
  - {id: contained, title: node_modules removed, phase: contain, score: 10, deadline: 20m,
     must: true, when: {step: wipe}}
  - {id: rotated, title: The token is rotated, phase: rotate, score: 10, deadline: 30m,
     when: {step: rotate}}
  - {id: logs, title: DNS logs searched, phase: communicate, score: 5,
     when: {checklist: {step: review, item: dns}}}
  - {id: decided, title: A decision on the pipelines, phase: contain, score: 5,
     when: {decision: ci-alert}}
  - {id: told, title: Security was told, phase: communicate, score: 5, validation: manual}
survey:
  - {id: confidence, question: "How confident are you in the playbook?", kind: scale}
  - {id: missing, question: "What was missing?"}
metrics:
  detection: {finding: {severity: compromised}}
  containment: {step: wipe}
  rotation: {step: rotate}
auto:
  operator: drill-bot
  role: oncall
  step_minutes: 4
  steps:
    review: {checklist: {ci: done, dns: done}}
  decisions:
    ci-alert: {decision: stop all, rationale: we cannot tell which builds ran it}
  discussion: {default: "We page the IC, then security."}
  survey: {confidence: "4", missing: "TODO: a runbook page for CI runners"}
  facilitator: {told: met}
"""


def write_small(tmp_path: Path, scenario: str = SCENARIO, playbook: str = PLAYBOOK) -> Path:
    """The small scenario and its playbook in `tmp_path`; returns the scenario's path."""
    (tmp_path / "playbook.yaml").write_text(playbook)
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario)
    return path
