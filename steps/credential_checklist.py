"""`credential_checklist`: placeholder until implemented."""

from __future__ import annotations

from runbook.step import Plan, StepContext, StepError, StepKind, StepParams, StepResult


class CredentialChecklistParams(StepParams):
    pass


class CredentialChecklist(StepKind):
    """Not implemented yet."""

    name = "credential_checklist"
    Params = CredentialChecklistParams

    def plan(self, ctx: StepContext) -> Plan:
        raise StepError("credential_checklist is not implemented yet")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        raise StepError("credential_checklist is not implemented yet")
