"""The host variables an inventory can set for runbook fleet (documented in docs/fleet.md).

These names are fixed: inventories rely on them. Each one reaches the host agent as a key of its
configuration; an unset variable means the agent's default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostVar:
    name: str  # the inventory variable
    key: str  # the agent configuration key
    default: str  # as Jinja, when the inventory leaves it unset
    doc: str


HOST_VARS = (
    HostVar(
        "runbook_home",
        "home",
        "''",
        "the HOME to act as (default: the connecting user's)",
    ),
    HostVar(
        "runbook_targets",
        "targets",
        "[]",
        "a list of directories to scan or remediate (default: [runbook_home])",
    ),
    HostVar(
        "runbook_python",
        "python",
        "''",
        "the Python >= 3.11 runbook is installed with (default: the first of python3.13, "
        "python3.12, python3.11, python3 on PATH that is 3.11 or newer)",
    ),
    HostVar(
        "runbook_venv_root",
        "venv_root",
        "''",
        "where the versioned virtual environments live (default: "
        "<runbook_home>/.local/share/runbook/fleet); one per runbook version and wheel digest, "
        "reused by every later run",
    ),
    HostVar(
        "runbook_dependencies",
        "dependencies",
        "'wheelhouse'",
        "`wheelhouse`: install runbook's dependencies from the wheelhouse copied with the wheel "
        "(no registry needed); `system`: take them from runbook_python's site-packages and "
        "install runbook alone",
    ),
    HostVar(
        "runbook_min_free_mb",
        "min_free_mb",
        "300",
        "refuse the host when less than this many MB are free where runbook installs and works",
    ),
)
#: Not passed in the configuration: written to a 0600 file by a `no_log` task, read and removed
#: by the agent, and added to runbook's environment on the host (secrets such as
#: RUNBOOK_NPM_PASSWORD belong in Ansible Vault).
ENVIRONMENT_VAR = "runbook_environment"


def agent_config_expression(common: str) -> str:
    """Jinja that builds a host's agent configuration: the fleet-wide `common` dict combined
    with the host variables (or their defaults)."""
    pairs = ", ".join(f"'{v.key}': {v.name} | default({v.default})" for v in HOST_VARS)
    pairs += ", 'host_id': inventory_hostname | hash('sha1')"
    return "{{ " + common + " | combine({" + pairs + "}) }}"
