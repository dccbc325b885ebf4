"""What the rotation steps need from an earlier `host_sweep`: was this machine found compromised?"""

from __future__ import annotations

from runbook.step import StepContext


def compromised_host(ctx: StepContext) -> str | None:
    """A warning when a `host_sweep` step of this run found this machine (not an image)
    compromised, naming that step; None otherwise. The latest verdict of each step counts."""
    verdicts: dict[str, str] = {}
    for entry in ctx.journal_entries() if ctx.journal_entries else []:
        data = entry.get("data") or {}
        result = data.get("result") or {}
        if (
            entry.get("event") == "step_finished"
            and result.get("kind") == "host_sweep"
            and result.get("root") is None
        ):
            verdicts[str(data.get("step"))] = str(result.get("verdict"))
    found = [step for step, verdict in verdicts.items() if verdict == "compromised"]
    if not found:
        return None
    return (
        f"WARNING: step '{found[-1]}' found this machine compromised. Rotate from another, clean "
        "machine: a new secret created, typed or stored here can be read by the malware. Go on "
        "here only if there is no other machine, and rotate again from a clean one afterwards."
    )
