"""`rotate_aws_keys`: placeholder until implemented."""

from __future__ import annotations

from runbook.step import Plan, StepContext, StepError, StepKind, StepParams, StepResult


class RotateAwsKeysParams(StepParams):
    pass


class RotateAwsKeys(StepKind):
    """Not implemented yet."""

    name = "rotate_aws_keys"
    Params = RotateAwsKeysParams

    def plan(self, ctx: StepContext) -> Plan:
        raise StepError("rotate_aws_keys is not implemented yet")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        raise StepError("rotate_aws_keys is not implemented yet")
