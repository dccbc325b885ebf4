"""`host_sweep`: is this machine compromised, or only exposed? Files, processes, connections and
persistence, checked against the playbook's indicators (see `steps/sweep/`).

The step only observes: the sweep runs at plan time and its findings are the plan's. When anything
is found, the plan adds what a person must do (a checklist, never done for them): isolate the
machine, keep it powered on if forensics is wanted, and do the credential steps from another
machine. The verdict (`compromised`, `incomplete`, `clean`) is journaled with the step's result;
the rotation steps read it and warn before rotating from a compromised machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pydantic import AwareDatetime, Field

from runbook.step import (
    Action,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.manual import ask
from steps.sweep import PARTS, SweepOptions, SweepResult, sweep

EVENT = "host_sweep"
KIND = "host_sweep"
SEVERITIES = ("compromised", "at-risk", "unknown", "info")
#: What a person does on a compromised machine; runbook never does any of it.
RESPONSE = (
    (
        "isolate",
        "Isolate this machine now: unplug the network cable and turn off Wi-Fi (or use your "
        "EDR's network containment), and tell the incident lead. runbook does not do this for you.",
    ),
    (
        "forensics",
        "If your security team wants forensics, keep the machine powered on and logged in (the "
        "RAT lives in memory; a reboot or reimage destroys it) until they say otherwise.",
    ),
    (
        "other-machine",
        "Do the credential steps (discover, rotate, revoke) from another, clean machine: anything "
        "typed or stored here can be read by the RAT.",
    ),
)


# set, and not "0": never look the indicator domains up (tests, the demo, drills)
NO_DNS = "RUNBOOK_NO_DNS"


def no_dns(env: Mapping[str, str]) -> bool:
    """Whether the environment forbids DNS lookups of the indicator domains."""
    return env.get(NO_DNS, "") not in ("", "0")


class HostSweepParams(StepParams):
    root: str | None = Field(
        default=None,
        description="Sweep a mounted disk image at this path (files and persistence only).",
    )
    files: bool = Field(default=True, description="Check the host file indicators.")
    processes: bool = Field(default=True, description="Check the running processes.")
    network: bool = Field(default=True, description="Check live network connections.")
    persistence: bool = Field(
        default=True,
        description="Check LaunchAgents/Daemons, systemd units, crontabs, shell start-up files, "
        "Startup folders and Run keys.",
    )
    resolve_domains: bool = Field(
        default=True,
        description="Resolve the indicator domains (system resolver only; the C2 is never "
        "contacted, but the lookup shows in DNS logs).",
    )
    since: AwareDatetime | None = Field(
        default=None,
        description="Persistence changed from this moment on is listed for review; default: the "
        "start of the incident window.",
    )


class HostSweep(StepKind):
    """Sweeps this machine (or a mounted image) for the incident's traces; observes only."""

    name = "host_sweep"
    Params = HostSweepParams
    summary = "Look for the malware on this machine: files, processes, connections, persistence."
    params: HostSweepParams

    def __init__(self, params: HostSweepParams) -> None:
        super().__init__(params)
        self._last: SweepResult | None = None

    def _root(self, ctx: StepContext) -> Path | None:
        root = ctx.host_root(self.params.root)
        if root is None:
            return None
        if not root.is_absolute():
            root = ctx.target / root
        if not root.is_dir():
            raise StepError(f"host_sweep: root {root} is not a directory (a mounted disk image)")
        return root.resolve()

    def _since(self, ctx: StepContext) -> datetime:
        return self.params.since or ctx.playbook.incident.window.start

    def run_sweep(self, ctx: StepContext) -> SweepResult:
        parts = tuple(p for p in PARTS if getattr(self.params, p))
        options = SweepOptions(
            since=self._since(ctx),
            root=self._root(ctx),
            parts=parts,
            resolve_domains=self.params.resolve_domains and not no_dns(ctx.env),
        )
        return sweep(ctx.playbook.incident.indicators, options, ctx.env)

    def plan(self, ctx: StepContext) -> Plan:
        result = self._last = self.run_sweep(ctx)
        root = self._root(ctx)
        notes = [_counts(result, root)]
        if result.verdict == "compromised":
            notes.insert(0, _compromised_note(root))
        elif result.verdict == "incomplete":
            notes.append(
                "some places could not be checked (the `unknown` findings): the machine is not "
                "known to be clean; check them by hand or sweep again with more rights"
            )
        if no_dns(ctx.env) and self.params.resolve_domains:
            notes.append(f"the indicator domains were not resolved ({NO_DNS} is set)")
        elif self.params.resolve_domains and self.params.network and root is None:
            notes.append(
                "the indicator domains were resolved through the system resolver (never "
                "contacted): the lookup shows in DNS logs as a query from this machine"
            )
        notes += result.notes
        actions = []
        if result.verdict == "compromised" and root is None:
            actions = [
                Action(kind="manual", summary=text, detail={"item": item_id})
                for item_id, text in RESPONSE
            ]
        fingerprint = fingerprint_of(
            self.name, ctx.step.id, [f.model_dump() for f in result.findings]
        )
        return Plan(findings=result.findings, actions=actions, fingerprint=fingerprint, notes=notes)

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        return plan.fingerprint  # applying changes nothing: what was seen cannot go stale

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        result = self._last or self.run_sweep(ctx)
        self._last = None
        root = self._root(ctx)
        verdict = result.verdict
        ctx.record(
            EVENT,
            {
                "step": ctx.step.id,
                "verdict": verdict,
                "root": str(root) if root else None,
                "checked": result.checked,
                "seconds": round(result.seconds, 3),
                "evidence": result.evidence[:200],
            },
        )
        answers = {
            a.detail["item"]: ask(ctx, a.detail["item"], a.summary)
            for a in plan.actions
            if a.kind == "manual"
        }
        open_items = [item for item, answer in answers.items() if answer != "done"]
        counts = _severity_counts(plan)
        where = f"the image at {root}" if root else "this machine"
        if verdict == "compromised":
            summary = f"COMPROMISED: {where} shows the malware ({counts})"
            if answers:
                summary += f"; {len(answers) - len(open_items)}/{len(answers)} response items done"
        elif verdict == "incomplete":
            summary = f"nothing found on {where}, but not everything could be checked ({counts})"
        else:
            summary = f"nothing found on {where} ({_checked(result)})"
        data = {"kind": KIND, "verdict": verdict, "root": str(root) if root else None}
        return StepResult(
            "outstanding" if open_items else "succeeded",
            summary,
            findings_remain=verdict == "compromised",
            data=data,
        )


def _severity_counts(plan: Plan) -> str:
    counts = Counter(f.severity for f in plan.findings)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s]) or "no findings"


def _checked(result: SweepResult) -> str:
    names = {
        "files": "host file indicator(s)",
        "processes": "process(es)",
        "network": "connection(s)",
        "persistence": "persistence entr(ies)",
    }
    return ", ".join(f"{n} {names[k]}" for k, n in result.checked.items()) or "nothing checked"


def _counts(result: SweepResult, root: Path | None) -> str:
    where = f"image {root}" if root else "this machine"
    return f"swept {where} in {result.seconds:.2f} s: checked {_checked(result)}"


def _compromised_note(root: Path | None) -> str:
    if root is not None:
        return (
            f"the image at {root} shows the malware: the machine it came from is compromised; "
            "keep the image as evidence, and rotate that machine's credentials from a clean one"
        )
    return (
        "THIS MACHINE IS COMPROMISED: isolate it (runbook never does), keep it powered on if "
        "forensics is wanted, and do the credential steps from another, clean machine"
    )
