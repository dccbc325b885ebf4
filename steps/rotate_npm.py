"""`rotate_npm_tokens`: placeholder until implemented."""

from __future__ import annotations

from runbook.step import Plan, StepContext, StepError, StepKind, StepParams, StepResult


class RotateNpmTokensParams(StepParams):
    pass


class RotateNpmTokens(StepKind):
    """Not implemented yet."""

    name = "rotate_npm_tokens"
    Params = RotateNpmTokensParams

    def plan(self, ctx: StepContext) -> Plan:
        raise StepError("rotate_npm_tokens is not implemented yet")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        raise StepError("rotate_npm_tokens is not implemented yet")
