"""The Ansible play runbook fleet runs: built here as data, written beside the artifacts.

Per host: the agent's probe (`script`: no module, no Python needed to start it beyond the one
that runs the agent), the wheelhouse copied (as one tar file: one transfer) only when this version
is neither installed nor staged there yet,
the environment file (`no_log`) when there is one, the playbook file when it is too big to travel
inside the agent's configuration and the host does not have it yet, the agent's work,
the archive fetched, and the verdict: a host whose work failed is failed only after its journals
were fetched, so that `max_fail_percentage` counts it and its journals still come back.

Hosts go through the tasks independently (the `free` strategy), so results arrive as each host
finishes; `--max-fail-percent` needs Ansible's `linear` strategy (every host of a batch does a
task before any does the next), which is used then. When a batch goes over the percentage,
Ansible stops its other hosts where they are and starts no further batch.
"""

from __future__ import annotations

from typing import Any

from runbook.fleet.hostvars import ENVIRONMENT_VAR, agent_config_expression

PROBE, STAGE, ENVIRONMENT, PLAYBOOK, WORK, OUTCOME, FETCH, VERDICT = (
    "runbook: probe",
    "runbook: stage the wheelhouse",
    "runbook: environment",
    "runbook: stage the playbook",
    "runbook: work",
    "runbook: outcome",
    "runbook: fetch",
    "runbook: verdict",
)
AGENT_PYTHON = (
    "{{ 'python3' if (ansible_python_interpreter | default('auto')) is match('auto') "
    "else ansible_python_interpreter }}"
)
PROBED = "(runbook_probe.stdout | from_json)"
NO_ANSWER = (
    "{'ok': False, 'stage': 'agent', 'reason': 'the agent did not answer (exit ' ~ "
    "(runbook_work.rc | default('?') | string) ~ '): ' ~ "
    "((runbook_work.stderr | default('') ~ ' ' ~ runbook_work.stdout | default('')) "
    "| trim | truncate(600))}"
)


def _script(command: str) -> dict[str, Any]:
    return {
        "cmd": "{{ runbook_fleet_agent | quote }} " + command + " "
        "{{ runbook_agent_config | to_json | b64encode }}",
        "executable": AGENT_PYTHON,
    }


def build(
    command: str,
    *,
    serial: str | None = None,
    max_fail_percent: float | None = None,
    playbook_file: bool = False,
) -> list[dict[str, Any]]:
    """The play for `scan` or `run`."""
    tasks: list[dict[str, Any]] = [
        {
            "name": PROBE,
            "ansible.builtin.script": _script("probe"),
            "register": "runbook_probe",
            "changed_when": False,
            "failed_when": "runbook_probe.rc != 0",
        },
        {
            "name": STAGE,
            "ansible.builtin.copy": {
                "src": "{{ runbook_fleet_bundle }}",
                "dest": "{{ " + PROBED + ".stage_dir }}.tar",
                "mode": "0644",
            },
            "when": "not (" + PROBED + ".installed or " + PROBED + ".staged)",
        },
        {
            "name": ENVIRONMENT,
            "ansible.builtin.copy": {
                "content": "{{ " + ENVIRONMENT_VAR + " | to_json }}",
                "dest": "{{ " + PROBED + ".environment_file }}",
                "mode": "0600",
            },
            "no_log": True,
            "when": ENVIRONMENT_VAR + " is defined",
        },
    ]
    if playbook_file:
        tasks.append(
            {
                "name": PLAYBOOK,
                "ansible.builtin.copy": {
                    "src": "{{ runbook_fleet_playbook }}",
                    "dest": "{{ "
                    + PROBED
                    + ".playbooks_dir }}/{{ runbook_fleet.playbook_sha256 }}.yaml",
                    "mode": "0644",
                },
                "when": "not " + PROBED + ".playbook_staged",
            }
        )
    tasks += [
        {
            "name": WORK,
            "ansible.builtin.script": _script(command),
            "register": "runbook_work",
            "changed_when": True,
            "failed_when": False,
        },
        {
            "name": OUTCOME,
            "ansible.builtin.set_fact": {
                "runbook_outcome": "{{ runbook_work.stdout | from_json "
                "if (runbook_work.stdout | default('') | trim).startswith('{') "
                "else " + NO_ANSWER + " }}"
            },
        },
        {
            "name": FETCH,
            "ansible.builtin.fetch": {
                "src": "{{ runbook_outcome.pack }}",
                "dest": "{{ runbook_fleet_incoming }}/{{ inventory_hostname | hash('sha1') }}.tgz",
                "flat": True,
            },
            "when": "runbook_outcome.pack is defined",
        },
        {
            "name": VERDICT,
            "ansible.builtin.fail": {"msg": "{{ runbook_outcome.reason }}"},
            "when": "not runbook_outcome.ok",
        },
    ]
    play: dict[str, Any] = {
        "name": f"runbook fleet {command}",
        "hosts": "all",
        "gather_facts": False,
        "vars": {"runbook_agent_config": agent_config_expression("runbook_fleet")},
        "tasks": tasks,
    }
    if serial:
        play["serial"] = int(serial) if serial.isdigit() else serial
    if max_fail_percent is not None:
        play["max_fail_percentage"] = max_fail_percent  # needs the linear strategy
    else:
        play["strategy"] = "free"  # each host goes on alone: a slow one holds up no other
    return [play]
