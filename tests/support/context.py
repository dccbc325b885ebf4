"""A real `StepContext` for calling a step kind directly (no runner, no journal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runbook.effects import Effects
from runbook.models import Playbook, StepSpec
from runbook.operator import HeadlessOperator
from runbook.redact import Redactor
from runbook.step import StepContext


def step_context(
    playbook: Playbook,
    step: StepSpec,
    target: Path,
    env: dict[str, str],
    *,
    dry_run: bool = False,
    records: list[tuple[str, Any]] | None = None,
) -> StepContext:
    """`step` of `playbook` on `target`, backups beside it, records appended to `records`."""
    sink = records if records is not None else []

    def record(event: str, data: Any) -> None:
        sink.append((event, data))

    effects = Effects(
        dry_run=dry_run,
        roots=[target],
        backup_dir=target.parent / "backups",
        record=record,
        redactor=Redactor(),
    )
    return StepContext(
        playbook=playbook,
        step=step,
        target=target,
        effects=effects,
        operator=HeadlessOperator("test"),
        env=env,
        dry_run=dry_run,
        record=record,
    )
