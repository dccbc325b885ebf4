"""`discover_credentials`: placeholder until implemented."""

from __future__ import annotations

from runbook.step import Plan, StepContext, StepError, StepKind, StepParams, StepResult


class DiscoverCredentialsParams(StepParams):
    pass


class DiscoverCredentials(StepKind):
    """Not implemented yet."""

    name = "discover_credentials"
    Params = DiscoverCredentialsParams

    def plan(self, ctx: StepContext) -> Plan:
        raise StepError("discover_credentials is not implemented yet")

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        raise StepError("discover_credentials is not implemented yet")
