"""Asking the operator about one checklist item, the way every credential step does."""

from __future__ import annotations

from typing import Any

from runbook.step import StepContext


def ask(ctx: StepContext, item_id: str, text: str, **extra: Any) -> str:
    """Put one item to the operator (`done`, `declined` or `outstanding`) and journal the answer
    as a `manual_item` event; `extra` goes into the event (already redacted data only)."""
    answer = ctx.operator.checklist(ctx.step, item_id, text)
    ctx.record(
        "manual_item",
        {
            "step": ctx.step.id,
            "item": item_id,
            "text": text,
            "answer": answer,
            "by": ctx.operator.name,
            **extra,
        },
    )
    return answer
