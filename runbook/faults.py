"""Named checkpoints where a drill or a test can make a step fail or the process die.

`RUNBOOK_FAULT=<checkpoint>[:fail|:kill]` in the run's environment arms one checkpoint: `fail`
(the default) raises FaultInjected there, `kill` sends the process SIGKILL, as a power cut
would. Used by the test suite and by tabletop facilitators to rehearse a rotation that breaks
half way; unset, a checkpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

ENV = "RUNBOOK_FAULT"


class FaultInjected(Exception):
    """Raised at an armed checkpoint."""


def checkpoint(name: str, env: Mapping[str, str]) -> None:
    """Fail or die here when `RUNBOOK_FAULT` names this checkpoint."""
    armed = env.get(ENV)
    if not armed:
        return
    point, _, action = armed.partition(":")
    if point != name:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FaultInjected(f"fault injected at checkpoint '{name}' ({ENV})")
