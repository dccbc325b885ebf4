"""OASIS CACAO Security Playbooks v2.0: a playbook exported as CACAO, and what was done as
CACAO execution-status records.

Identifiers are UUIDv5 from the playbook and step ids, so exporting the same playbook twice, or
a record and its playbook, gives the same ids: an execution-status record's `workflow_step` is
the id of the CACAO step the export made for that runbook step.

The playbook (`playbook_types: ["remediation"]`): start -> one step per runbook step -> end.
A checklist step (`manual`) becomes an `action` whose items are `manual` commands (and whose
copy-and-run commands are `bash` commands the operator runs by hand); any other step kind
becomes an `action` with one `bash` command, the `runbook run` that performs it. A step with
`when` is preceded by an `if-condition` over variables its earlier steps set. A failure ends the
workflow unless the step has `continue_on_error`.

Execution status: the shape of github.com/cyentific-rni/workflow-status (as SOARCA reports it),
one record per step attempt, with the journal's hash chain in an extension property.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from runbook import __version__
from runbook.models import Condition, StepSpec
from runbook.playbook import LoadedPlaybook
from runbook.record.merge import Record, RunFacts
from runbook.redact import Redactor
from runbook.registry import Registry, default_registry

#: The playbook's id is a UUIDv5 of runbook's playbook id in this namespace (CACAO allows v5
#: for playbooks; its own namespace is reserved for ids made from the name and types).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:runbook:cacao")
SPEC_VERSION = "cacao-2.0"
STEP_EXTENSION = "runbook step"
JOURNAL_EXTENSION = "runbook journal chain"
DOCS = "docs/report.md (runbook), section 'CACAO'"
#: runbook's step outcomes as workflow-status values (the README's and SOARCA's vocabulary).
STATUS = {
    "succeeded": "successfully_executed",
    "failed": "failed",
    "outstanding": "await_user_input",
    "unfinished": "ongoing",
}


def ident(kind: str, *parts: str) -> str:
    """`kind--<uuid4>`: a CACAO identifier, stable for the same parts.

    CACAO wants UUIDv4 for every object but playbooks (and MUST for steps). The 122 free bits
    are taken from a SHA-256 of the kind and parts instead of a random source, so the same
    playbook exports with the same ids and execution-status records can name its steps.
    """
    digest = hashlib.sha256("/".join(("runbook-cacao", kind, *parts)).encode()).digest()
    return f"{kind}--{uuid.UUID(bytes=digest[:16], version=4)}"


def playbook_ref(playbook_id: str) -> str:
    """A UUIDv5 (allowed for playbooks): the same runbook playbook id, the same CACAO id;
    versions of it differ by `modified`, as CACAO intends."""
    return f"playbook--{uuid.uuid5(NAMESPACE, playbook_id)}"


def step_ref(playbook_id: str, step_id: str) -> str:
    return ident("action", playbook_id, step_id)


CREATED_BY = ident("identity", "runbook")
OPERATOR = ident("individual", "operator")
HOST = ident("security-category", "runbook")
STEP_EXT = ident("extension-definition", STEP_EXTENSION)
JOURNAL_EXT = ident("extension-definition", JOURNAL_EXTENSION)


def timestamp(seconds: float) -> str:
    """A CACAO timestamp: UTC, to the millisecond."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def variable(step_id: str, what: str) -> str:
    return f"__step_{step_id}_{what}__"


def condition_text(condition: Condition) -> str:
    """A `when` condition as a CACAO condition over the variables its step sets."""
    parts = []
    if condition.outcome is not None:
        name = variable(condition.step, "outcome")
        values = ", ".join(f"'{o}'" for o in condition.outcome)
        parts.append(
            f"{name}:value = '{condition.outcome[0]}'"
            if len(condition.outcome) == 1
            else f"{name}:value IN ({values})"
        )
    if condition.findings is not None:
        name = variable(condition.step, "findings")
        if condition.findings == "any":
            parts.append(f"{name}:value != ''")
        elif condition.findings == "none":
            parts.append(f"{name}:value = ''")
        else:
            wanted = "|".join(re.escape(s) for s in condition.findings)
            parts.append(f"{name}:value MATCHES '(^|,)({wanted})(,|$)'")
    return " AND ".join(parts)


def _checklist(loaded: LoadedPlaybook, step: StepSpec) -> list[tuple[str, str]] | None:
    """A checklist step's items as (id, text) (its parameters say so by having a `checklist()`,
    as `manual` has); None for a step kind that acts by itself."""
    checklist = getattr(loaded.params.get(step.id), "checklist", None)
    return list(checklist()) if callable(checklist) else None


def _commands(step: StepSpec, loaded: LoadedPlaybook, summary: str) -> list[dict[str, Any]]:
    items = _checklist(loaded, step)
    if items is not None:
        commands: list[dict[str, Any]] = [
            {"type": "manual", "command": text, "description": f"checklist item {item_id}"}
            for item_id, text in items
        ]
        commands += [
            {
                "type": "bash",
                "command": str(command),
                "description": "shown to the operator to run by hand; runbook never runs it",
            }
            for command in getattr(loaded.params.get(step.id), "commands", None) or []
        ]
        return commands
    playbook_id = loaded.playbook.id
    return [
        {
            "type": "bash",
            "command": f"runbook run {playbook_id} --target __target__:value --from {step.id}",
            "description": (
                f"runbook performs this step with its `{step.uses}` step kind"
                + (f": {summary.rstrip('.')}" if summary else "")
                + ". `--from` starts the run at this step; runbook then goes on with the "
                "later steps"
            ),
        }
    ]


def export_playbook(
    loaded: LoadedPlaybook, *, registry: Registry | None = None, when: float | None = None
) -> dict[str, Any]:
    """The playbook as a CACAO 2.0 playbook. `when` (epoch seconds) dates it; default:
    `SOURCE_DATE_EPOCH` when set (reproducible builds), else the file's modification time."""
    registry = registry or default_registry()
    pb = loaded.playbook
    if when is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        when = float(epoch) if epoch.isdigit() else loaded.path.stat().st_mtime
    stamp = timestamp(when)
    start, end = ident("start", pb.id), ident("end", pb.id)
    referenced = {c.step for step in pb.steps for c in (step.when or [])}
    # the first workflow node of each runbook step, then the end
    entries = [
        ident("if-condition", pb.id, step.id) if step.when else step_ref(pb.id, step.id)
        for step in pb.steps
    ]
    entries.append(end)
    workflow: dict[str, Any] = {
        start: {"type": "start", "name": "Start", "on_completion": entries[0]},
    }
    variables: dict[str, Any] = {
        "__target__": {
            "type": "string",
            "description": "the directory runbook acts on (runbook run --target)",
            "external": True,
        }
    }
    for index, step in enumerate(pb.steps):
        after = entries[index + 1]
        kind = registry.get(step.uses)
        summary = getattr(kind, "summary", "") or ""
        action: dict[str, Any] = {
            "type": "action",
            "name": step.title,
            "description": step.description.strip() or summary or step.title,
            "commands": _commands(step, loaded, summary),
            "agent": OPERATOR if _checklist(loaded, step) is not None else HOST,
        }
        if step.continue_on_error:
            action["on_completion"] = after
        else:
            action |= {"on_success": after, "on_failure": end}
        if step.id in referenced:
            action["out_args"] = [variable(step.id, "outcome"), variable(step.id, "findings")]
            variables[variable(step.id, "outcome")] = {
                "type": "string",
                "description": f"how step {step.id} ended: succeeded, failed, skipped, outstanding",
            }
            variables[variable(step.id, "findings")] = {
                "type": "string",
                "description": f"severities of step {step.id}'s findings, comma-separated",
            }
        action["step_extensions"] = {
            STEP_EXT: {
                "step_id": step.id,
                "uses": step.uses,
                "confirm": step.confirm,
                "continue_on_error": step.continue_on_error,
                "with": step.with_,
            }
        }
        workflow[step_ref(pb.id, step.id)] = action
        if step.when:
            workflow[ident("if-condition", pb.id, step.id)] = {
                "type": "if-condition",
                "name": f"Run '{step.id}' only if its conditions hold",
                "condition": " AND ".join(f"({condition_text(c)})" for c in step.when),
                "on_true": step_ref(pb.id, step.id),
                "on_false": after,
                "on_completion": after,
            }
    workflow[end] = {"type": "end", "name": "End"}
    incident = pb.incident
    document: dict[str, Any] = {
        "type": "playbook",
        "spec_version": SPEC_VERSION,
        "id": playbook_ref(pb.id),
        "name": pb.title,
        "description": incident.summary.strip(),
        "playbook_types": ["remediation"],
        "playbook_activities": ["eliminate-risk"],
        "created_by": CREATED_BY,
        "created": stamp,
        "modified": stamp,
        "labels": sorted({p.name for p in incident.packages}) or [pb.id],
        "valid_from": timestamp(incident.window.start.timestamp()),
        "playbook_variables": variables,
        "workflow_start": start,
        "workflow": workflow,
        "agent_definitions": {
            OPERATOR: {
                "type": "individual",
                "name": "Operator",
                "description": "the on-call engineer running runbook, who answers the checklist",
            },
            HOST: {
                "type": "security-category",
                "name": "runbook",
                "description": "runbook on the machine being remediated; it runs the step kinds",
                "category": ["endpoint"],
            },
        },
        "extension_definitions": _extension_definitions(),
        "playbook_extensions": {
            STEP_EXT: {
                "playbook_id": pb.id,
                "version": pb.version,
                "sha256": loaded.sha256,
                "exported_by": f"runbook {__version__}",
            }
        },
    }
    if incident.references:
        document["external_references"] = [
            {"name": ref.title, "url": ref.url} for ref in incident.references
        ]
    return document


def _extension_definitions() -> dict[str, Any]:
    return {
        STEP_EXT: {
            "type": "extension-definition",
            "name": STEP_EXTENSION,
            "description": "The runbook step a CACAO step was made from: its id, step kind "
            "(uses), confirmation policy and parameters; on the playbook, the runbook "
            "playbook's id, version and sha256.",
            "created_by": CREATED_BY,
            "schema": DOCS,
            "version": "1.0.0",
        },
        JOURNAL_EXT: {
            "type": "extension-definition",
            "name": JOURNAL_EXTENSION,
            "description": "Where an execution-status record comes from in runbook's "
            "hash-chained journal: the entries (seq and hash) that opened and closed the step "
            "attempt, the journal's head, and whether the chain verified and is signed.",
            "created_by": CREATED_BY,
            "schema": DOCS,
            "version": "1.0.0",
        },
    }


# -- execution status ---------------------------------------------------------------------------
def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _ms_between(start: str, end: str) -> int:
    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return max(int((b - a).total_seconds() * 1000), 0)


def _attempts(rf: RunFacts) -> list[dict[str, Any]]:
    """Each step attempt of a run: its entries and what it did, in journal order."""
    attempts: list[dict[str, Any]] = []
    open_by_step: dict[str, dict[str, Any]] = {}
    operator = str(rf.run.start.get("operator") or "")
    for entry in rf.run.entries:
        name, data = entry["event"], entry["data"]
        if name in ("run_started", "run_resumed"):
            operator = str(data.get("operator") or operator)
            continue
        step = data.get("step")
        if not isinstance(step, str) or not step:
            continue
        if name == "step_started":
            attempt = {
                "step": step,
                "started": entry,
                "finished": None,
                "commands": [],
                "manual": False,
                "operator": operator,
            }
            attempts.append(attempt)
            open_by_step[step] = attempt
            continue
        attempt = open_by_step.get(step)
        if attempt is None:
            continue
        if name == "step_finished":
            attempt["finished"] = entry
            open_by_step.pop(step, None)
        elif name == "manual_item":
            attempt["manual"] = True
            attempt["commands"].append(f"{data.get('text')} [{data.get('answer')}]")
        elif name == "effect":
            op = data.get("op")
            if op == "run":
                attempt["commands"].append(str(data.get("argv")))
            elif op == "call":
                attempt["commands"].append(
                    f"{data.get('service')} {data.get('operation')}: {data.get('summary')}"
                )
            else:
                where = data.get("path") or ", ".join(map(str, data.get("files") or []))
                attempt["commands"].append(f"{op} {where}".strip())
    return attempts


def status_records(record: Record) -> list[dict[str, Any]]:
    """One execution-status record per step attempt: live runs first, then dry runs."""
    redact = Redactor()
    out = []
    ordered = sorted(record.facts, key=lambda rf: (rf.run.dry_run, rf.run.started, rf.run.journal))
    for rf in ordered:
        run = rf.run
        pb_id = str(run.playbook.get("id") or "unknown")
        uses = {
            e["data"].get("step"): e["data"].get("uses")
            for e in run.entries
            if e["event"] == "step_planned"
        }
        for attempt in _attempts(rf):
            started, finished = attempt["started"], attempt["finished"]
            data = finished["data"] if finished else {}
            outcome = str(data.get("outcome") or "unfinished")
            summary = str(data.get("summary") or "")
            status = STATUS.get(outcome, "failed")
            if outcome == "failed" and "timed out" in summary:
                status = "timeout_error"
            kind = uses.get(attempt["step"]) or "unknown kind"
            commands = attempt["commands"] or [f"runbook step {attempt['step']} ({kind})"]
            text = ("dry run: " if run.dry_run else "") + outcome
            text += f": {summary}" if summary else ""
            notes = f"{run.host}:{run.target}; operator {attempt['operator']}; {run.mode} run"
            record_ = {
                "type": "execution-status",
                "id": ident("execution-status", started["hash"]),
                "workflow_id": playbook_ref(pb_id),
                "workflow_step": step_ref(pb_id, attempt["step"]),
                "start_time": started["ts"],
                "status": status,
                "status_text": text,
                "executed_by": ident("individual", "operator", attempt["operator"]),
                "command_b64": [_b64(redact.text(c)) for c in commands],
                "notes": notes,
                "automated_execution": not attempt["manual"],
                "extensions": {
                    JOURNAL_EXT: {
                        "journal": run.journal,
                        "run": run.id,
                        "host": run.host,
                        "target": run.target,
                        "mode": run.mode,
                        "operator": attempt["operator"],
                        "step": attempt["step"],
                        "outcome": outcome,
                        "started": {"seq": started["seq"], "hash": started["hash"]},
                        "finished": (
                            {"seq": finished["seq"], "hash": finished["hash"]} if finished else None
                        ),
                        "head": run.head,
                        "chain_verified": True,
                        "signed_by": (run.signature.signer or None) if run.signature else None,
                    }
                },
            }
            if finished:
                record_["duration"] = _ms_between(started["ts"], finished["ts"])
            out.append(redact(record_))
    return out
