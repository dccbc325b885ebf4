"""`credential_checklist`: every credential no step can rotate becomes a checklist item.

Each item names the credential (redacted), where it was found and the exact place to revoke it.
The operator ticks or declines each one; every answer is journaled, and unticked items show as
outstanding in the report.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runbook.step import Action, Plan, StepContext, StepKind, StepParams, StepResult, fingerprint_of
from steps.credentials.model import Credential
from steps.manual import ManualItem, ask

# Handled (as rotations or as their own manual items) by rotate_aws_keys and rotate_npm_tokens.
DEFAULT_EXCLUDED = ["aws-temporary-key", "aws-profile"]


class CredentialChecklistParams(StepParams):
    host: bool = Field(True, description="include HOME, the environment and the keyring")
    exclude_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED),
        description="credential types another step asks about",
    )
    items: list[ManualItem] = Field(
        default_factory=list, description="extra items that discovery cannot see (CI secrets...)"
    )
    ci_secrets: bool = Field(
        True, description="add an item for the CI secrets of the target's git remote"
    )


class CredentialChecklist(StepKind):
    """Credentials rotated by hand, held honestly: ticked, declined or outstanding."""

    name = "credential_checklist"
    Params = CredentialChecklistParams
    summary = "A checklist item per credential that must be revoked by hand."
    params: CredentialChecklistParams

    def _items(self, ctx: StepContext) -> list[tuple[str, str, dict[str, object]]]:
        from steps.credentials.discover import discover_for_step

        discovery = discover_for_step(ctx, host=self.params.host)
        items: list[tuple[str, str, dict[str, object]]] = []
        seen: set[str] = set()
        for cred in discovery.credentials:
            if cred.rotation != "manual" or cred.type in self.params.exclude_types:
                continue
            item_id = f"{cred.type}-{cred.fingerprint}-{_where_id(cred)}"
            if item_id in seen:
                continue
            seen.add(item_id)
            items.append((item_id, _text(cred, ctx.home), {"credential": cred.public(ctx.home)}))
        if self.params.ci_secrets:
            url = ci_secrets_url(ctx.target)
            if url:
                text = f"Rotate the CI secrets exposed to jobs that installed dependencies: {url}"
                items.append(("ci-secrets", text, {}))
        items += [(item.id, item.text, {}) for item in self.params.items]
        return items

    def plan(self, ctx: StepContext) -> Plan:
        items = self._items(ctx)
        actions = [
            Action(kind="manual", summary=text, detail={"item": item_id, **extra})
            for item_id, text, extra in items
        ]
        notes = [] if items else ["no credential needs revoking by hand"]
        return Plan(
            actions=actions,
            fingerprint=fingerprint_of(self.name, [item_id for item_id, _, _ in items]),
            notes=notes,
        )

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        answers: dict[str, str] = {}
        for action in plan.actions:
            item_id = action.detail["item"]
            extra = {k: v for k, v in action.detail.items() if k == "credential"}
            answers[item_id] = ask(ctx, item_id, action.summary, **extra)
        if not answers:
            return StepResult("succeeded", "no credential needs revoking by hand")
        done = sum(1 for a in answers.values() if a == "done")
        declined = sum(1 for a in answers.values() if a == "declined")
        if done == len(answers):
            return StepResult("succeeded", f"{done}/{len(answers)} revoked")
        summary = f"{done}/{len(answers)} revoked, {len(answers) - done} outstanding"
        if declined:
            summary += f" ({declined} declined)"
        return StepResult("outstanding", summary)


def _where_id(cred: Credential) -> str:
    """A short stable id of the place, so the same value in two files is two items."""
    return fingerprint_of(cred.location.public())[:6]


def _text(cred: Credential, home: Path) -> str:
    where = cred.location.display(home)
    return f"Revoke {cred.type} {cred.redacted} ({where}): {cred.revoke_at}"


def ci_secrets_url(target: Path) -> str | None:
    """The GitHub/GitLab page listing the CI secrets of the target's `origin`, if it has one."""
    import git

    try:
        repo = git.Repo(target, search_parent_directories=True)
        url = repo.remotes.origin.url
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, AttributeError, ValueError):
        return None
    host, path = _host_and_path(url)
    if not host or not path:
        return None
    if host == "github.com" or host.startswith("github."):
        return f"https://{host}/{path}/settings/secrets/actions"
    if "gitlab" in host:
        return f"https://{host}/{path}/-/settings/ci_cd#js-cicd-variables-settings"
    return None


def _host_and_path(url: str) -> tuple[str, str]:
    url = url.strip()
    if "://" in url:
        rest = url.split("://", 1)[1]
        rest = rest.split("@", 1)[-1]
        host, _, path = rest.partition("/")
        host = host.split(":", 1)[0]
    elif ":" in url:  # scp-like: git@github.com:org/repo.git
        host, _, path = url.split("@", 1)[-1].partition(":")
    else:
        return "", ""
    path = path.strip("/").removesuffix(".git")
    return host.lower(), path
