"""`manual`: instructions and a checklist that a person works through; every answer is journaled."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runbook.step import (
    Action,
    Plan,
    StepContext,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)


def ask(ctx: StepContext, item_id: str, text: str, **extra: Any) -> str:
    """Put one checklist item to the operator (`done`, `declined` or `outstanding`) and journal
    the answer as a `manual_item` event; `extra` goes into the event (already redacted data)."""
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


class ManualItem(StepParams):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str = Field(min_length=1)


class ManualParams(StepParams):
    items: list[str | ManualItem] = Field(min_length=1)
    commands: list[str] = Field(
        default_factory=list, description="Commands the operator may run by hand; never run."
    )

    def checklist(self) -> list[tuple[str, str]]:
        out = []
        for index, item in enumerate(self.items, start=1):
            if isinstance(item, ManualItem):
                out.append((item.id, item.text))
            else:
                out.append((f"item-{index}", item))
        return out


class ManualStep(StepKind):
    """Human actions held honestly: ticked, declined, or left outstanding, never assumed done."""

    name = "manual"
    Params = ManualParams
    summary = "Instructions and a checklist the operator ticks or declines."
    params: ManualParams

    def plan(self, ctx: StepContext) -> Plan:
        actions = [
            Action(kind="manual", summary=text, detail={"item": item_id})
            for item_id, text in self.params.checklist()
        ]
        notes = [f"by hand: {command}" for command in self.params.commands]
        return Plan(
            actions=actions, fingerprint=fingerprint_of(self.name, ctx.step.id), notes=notes
        )

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        answers = {}
        for item_id, text in self.params.checklist():
            answers[item_id] = ask(ctx, item_id, text)
        done = sum(1 for a in answers.values() if a == "done")
        if done == len(answers):
            return StepResult("succeeded", f"{done}/{len(answers)} items done")
        open_items = len(answers) - done
        return StepResult("outstanding", f"{done}/{len(answers)} done, {open_items} outstanding")
