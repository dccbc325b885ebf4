"""`rotate_npm_tokens`: a new token for every exposed npm token, put where the old one was.

Per token found in an npmrc, a `.yarnrc.yml` or the environment (grouped by value and registry,
so one token in `~/.npmrc` and a project `.npmrc` is rotated once and rewritten in both):

1. create a new token with the registry's token API (the account password is asked for; headless
   runs read `RUNBOOK_NPM_PASSWORD`), keeping the old token's read-only flag and CIDR list;
2. store it in the keyring at once (its index row says which token it `replaces`);
3. rewrite every file the old token was in, in place: only the token's characters change;
4. verify it with the real `npm whoami --registry R` and a private temporary userconfig (or
   `GET /-/whoami` when npm is not installed);
5. revoke the old token (found in the registry's token list), then check it is refused.

Before 1, every file must still hold the token and be a regular file (never a symlink), or
nothing is created. A failure before 5 rolls back: the files get the old token back, the new one
is revoked and the keyring entry deleted (unless a file could not be restored: then the new token
stays valid for it and a rerun finishes). One token failing does not stop the others; the step
then fails, naming it. A run killed half way is finished by the next one: the keyring entry
(and its `state`) and a `whoami` with its token tell where it stopped, so no second token is
created. A token from `NPM_TOKEN` / `NODE_AUTH_TOKEN` gets its successor in the keyring and a
checklist item to update the variable where it is set. Tokens the registry already refuses, an
unreachable registry, no password and a 2FA account without a one-time password become checklist
items with the exact commands. The engine is `steps.credentials.npm_rotation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from runbook.step import (
    Action,
    Finding,
    Plan,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.credentials.discover import discover_for_step
from steps.credentials.model import Credential
from steps.credentials.npm_registry import (
    NpmRegistry,
    NpmRegistryError,
    TokenRefused,
    normalize_registry,
)
from steps.credentials.npm_rotation import (
    DEFAULT_REGISTRY,
    PASSWORD_ENV,
    UNFINISHED,
    NpmRotation,
    Place,
    TokenGroup,
    by_hand,
    env_item,
)
from steps.credentials.vault import KeyringRefused, Vault, keyring_preflight, service_for
from steps.sweep.verdict import compromised_host


class RotateNpmTokensParams(StepParams):
    host: bool = Field(
        default=True,
        description="Also rotate tokens of the user npmrc, ~/.yarnrc.yml and the environment "
        "(false: only files under the target).",
    )
    timeout: float = Field(default=120, gt=0, description="Seconds allowed for `npm whoami`.")


@dataclass
class _Observed:
    groups: list[TokenGroup]
    vault: Vault | None
    plan: Plan


def _place(cred: Credential, ctx: StepContext) -> Place | None:
    loc = cred.location
    if loc.source == "file" and loc.path is not None and loc.line:
        return Place("file", loc.name, loc.display(ctx.home), loc.path, loc.line)
    if loc.source == "env":
        return Place("env", loc.name, loc.display(ctx.home))
    return None


class RotateNpmTokens(StepKind):
    """Rotates npm tokens found on the machine: create, persist in place, verify, revoke."""

    name = "rotate_npm_tokens"
    Params = RotateNpmTokensParams
    summary = "New npm tokens where the old ones were (and in the keyring); the old revoked."
    params: RotateNpmTokensParams
    _seen: _Observed | None = None

    # -- observation (no side effect) --------------------------------------------------------
    @classmethod
    def preflight(cls, env: Mapping[str, str], options: Mapping[str, Any]) -> str | None:
        return keyring_preflight(env, options)

    def _open_vault(self, ctx: StepContext, *, strict: bool) -> Vault | None:
        """The keyring. `strict` (a live run about to store a token): a refused backend fails."""
        if strict:
            allow = bool(ctx.options.get("allow_insecure_keyring", False))
            try:
                return Vault.open(ctx.env, allow_insecure=allow)
            except KeyringRefused as exc:
                raise StepError(str(exc)) from None
        try:
            return Vault.open(ctx.env, allow_insecure=True)
        except Exception:  # reading only: no keyring, no interrupted rotation to finish
            return None

    def _groups(self, ctx: StepContext, vault: Vault | None) -> list[TokenGroup]:
        discovery = discover_for_step(ctx, host=self.params.host)
        entries = vault.entries() if vault is not None else []
        stored = {e.fingerprint for e in entries}
        groups: dict[tuple[str, str], TokenGroup] = {}
        holding_new: dict[str, list[Place]] = {}  # new token fingerprint -> its file places
        for cred in discovery.credentials:
            if cred.type != "npm-token" or cred.location.source == "keyring":
                continue
            place = _place(cred, ctx)
            if place is None:
                continue
            if cred.fingerprint in stored:  # runbook's own token, whatever discovery said
                if place.source == "file":
                    holding_new.setdefault(cred.fingerprint, []).append(place)
                continue
            if cred.rotation != "npm":
                continue
            ctx.keep_secret(cred.value)
            registry = normalize_registry(cred.detail.get("registry") or DEFAULT_REGISTRY)
            group = groups.setdefault(
                (cred.value, registry), TokenGroup(registry, cred.value, cred.fingerprint)
            )
            if place not in group.places:
                group.places.append(place)
        found = list(groups.values())
        service = service_for(ctx.playbook.id)
        for entry in entries:
            if entry.type != "npm-token" or entry.service != service:
                continue
            if entry.meta.get("state") not in UNFINISHED or vault is None:
                continue
            value = vault.get(entry.service, entry.name)
            if not value:
                continue
            ctx.keep_secret(value)
            registry = normalize_registry(str(entry.meta.get("registry") or DEFAULT_REGISTRY))
            old_fp = str(entry.meta.get("replaces") or "")
            group = next((g for g in found if (g.old_fp, g.registry) == (old_fp, registry)), None)
            if group is None:  # every file already holds the new token
                group = TokenGroup(registry, "", old_fp)
                found.append(group)
            group.entry, group.new = entry, value
            group.new_places = holding_new.get(entry.fingerprint, [])
        return found

    def _check(self, ctx: StepContext, group: TokenGroup, password: bool) -> None:
        """Ask the registry who each token is (a read) and decide what to do with the group."""
        registry = NpmRegistry(group.registry, env=ctx.env)
        if group.entry is not None:
            group.user = str(group.entry.meta.get("user") or "")
            try:
                registry.whoami(group.new)
            except TokenRefused:
                # rolled back (or revoked elsewhere) before its keyring entry was deleted
                group.stale = True
                group.problem = (
                    "the keyring holds the token of an unfinished rotation and the registry "
                    "refuses it: that entry is deleted"
                )
            except NpmRegistryError as exc:
                group.state, group.problem = "unreachable", str(exc)
                return
            else:
                group.state = "resume"
                return
        if not group.old:
            group.state = "finish"
            return
        try:
            group.user = registry.whoami(group.old)
        except TokenRefused as exc:
            group.state, group.problem = "refused", str(exc)
            return
        except NpmRegistryError as exc:
            group.state, group.problem = "unreachable", str(exc)
            return
        group.state = "rotate" if password else "no-password"

    def _observe(self, ctx: StepContext) -> _Observed:
        vault = self._open_vault(ctx, strict=False)
        groups = self._groups(ctx, vault)
        password = bool(ctx.env.get(PASSWORD_ENV)) or getattr(ctx.operator, "interactive", False)
        for group in groups:
            self._check(ctx, group, password)
        refused = None
        if any(g.stale or g.state in ("rotate", "resume") for g in groups):
            if not ctx.dry_run:
                vault = self._open_vault(ctx, strict=True)
            else:  # a dry run says so instead of failing (as rotate_aws_keys does)
                try:
                    self._open_vault(ctx, strict=True)
                except StepError as exc:
                    refused = f"a live run would stop here: {exc}"
        seen = [
            (
                g.registry,
                g.old_fp,
                [p.public() for p in g.places],
                [p.public() for p in g.new_places],
                g.state,
                g.stale,
                g.user,
                g.entry.name if g.entry else None,
                g.entry.meta.get("state") if g.entry else None,
            )
            for g in groups
        ]
        plan = self._describe(ctx, groups, fingerprint_of(self.name, seen))
        if refused:
            plan.notes.insert(0, refused)
        warning = compromised_host(ctx)
        if warning:
            plan.notes.insert(0, warning)
        return _Observed(groups, vault, plan)

    def _describe(self, ctx: StepContext, groups: list[TokenGroup], fingerprint: str) -> Plan:
        findings: list[Finding] = []
        actions: list[Action] = []
        notes: list[str] = []
        service = service_for(ctx.playbook.id)
        for g in groups:
            who = f"{g.user or 'an unknown user'} at {g.registry}"
            detail = {
                "registry": g.registry,
                "old": g.old_fp,
                "places": [p.public() for p in g.places],
            }
            for place in g.places:
                findings.append(
                    Finding(
                        kind="npm-token",
                        severity="at-risk",
                        path=str(place.path) if place.path else None,
                        line=place.line,
                        message=f"npm token {g.shown_old} of {who} in {place.shown}",
                    )
                )
            if g.problem:
                notes.append(f"{g.shown_old}: {g.problem}")
            if g.stale and g.entry is not None:
                actions.append(
                    Action(
                        kind="keyring",
                        summary=f"forget the keyring entry {service}/{g.entry.name} of an "
                        "unfinished rotation whose token the registry refuses",
                        detail={**detail, "entry": g.entry.name},
                    )
                )
            if g.state == "refused":
                findings.append(
                    Finding(
                        kind="npm-token-refused",
                        severity="info",
                        message=f"{g.shown_old}: {g.registry} already refuses this token",
                    )
                )
                summary = f"remove the refused token {g.shown_old} from {g.where()}"
                actions.append(Action(kind="manual", summary=summary, detail=detail))
            elif g.state == "unreachable":
                findings.append(
                    Finding(kind="registry-unreachable", severity="unknown", message=g.problem)
                )
                summary = f"rotate {g.shown_old} ({g.where()}) by hand: {by_hand(g)}"
                actions.append(Action(kind="manual", summary=summary, detail=detail))
            elif g.state == "no-password":
                summary = (
                    f"rotate {g.shown_old} of {who} by hand (no password: nobody to ask and "
                    f"{PASSWORD_ENV} unset): {by_hand(g)}"
                )
                actions.append(Action(kind="manual", summary=summary, detail=detail))
            elif g.state in ("rotate", "resume"):
                actions += self._rotation_actions(g, who, service, detail, notes)
        if not groups:
            notes.append("no npm token found to rotate")
        return Plan(findings=findings, actions=actions, fingerprint=fingerprint, notes=notes)

    def _rotation_actions(
        self, g: TokenGroup, who: str, service: str, detail: dict, notes: list[str]
    ) -> list[Action]:
        name = g.entry_name()
        actions = []
        if g.state == "rotate":
            actions.append(
                Action(
                    kind="call",
                    summary=f"create a new npm token for {who} (asks for the account password; "
                    f"{PASSWORD_ENV} when nobody can be asked)",
                    detail=detail,
                )
            )
            actions.append(
                Action(
                    kind="keyring",
                    summary=f"store it in the keyring as {service}/{name}",
                    detail={**detail, "entry": name},
                )
            )
        else:
            state = g.entry.meta.get("state") if g.entry else "?"
            notes.append(
                f"{g.shown_old}: an earlier run stopped once the new token was {state}; this "
                f"run finishes that rotation with the token kept in {service}/{name}"
            )
        if g.files:
            files = ", ".join(p.shown for p in g.files)
            actions.append(
                Action(
                    kind="edit",
                    summary=f"write the new token to {files} in place of {g.shown_old}",
                    detail={**detail, "paths": sorted({str(p.path) for p in g.files})},
                )
            )
        actions.append(
            Action(
                kind="run",
                summary=f"verify the new token with `npm whoami --registry {g.registry}`",
                detail=detail,
            )
        )
        actions.append(
            Action(
                kind="call",
                summary=f"revoke the old token {g.shown_old} of {who}",
                destructive=True,
                detail=detail,
            )
        )
        for place in g.env_places:
            actions.append(
                Action(
                    kind="manual",
                    summary=env_item(place, service, name),
                    detail={**detail, "variable": place.name},
                )
            )
        return actions

    # -- the protocol ------------------------------------------------------------------------
    def plan(self, ctx: StepContext) -> Plan:
        return self._observe(ctx).plan

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        self._seen = self._observe(ctx)
        return self._seen.plan.fingerprint

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        # what the runner just checked against the plan (observed again if called directly)
        seen, self._seen = self._seen, None
        if seen is None or seen.plan.fingerprint != plan.fingerprint:
            seen = self._observe(ctx)
        if not seen.groups:
            return StepResult("succeeded", "no npm token to rotate")
        rotation = NpmRotation(ctx, seen.vault, timeout=self.params.timeout)
        failed: list[str] = []
        for group in seen.groups:
            try:  # one token failing (and rolled back) does not keep the others from rotating
                rotation.handle(group)
            except StepError as exc:
                failed.append(ctx.effects.redactor.text(str(exc)))
            except Exception as exc:  # a bug or an odd registry: the other tokens still rotate
                failed.append(ctx.effects.redactor.text(f"{type(exc).__name__}: {exc}"))
        answers = rotation.ask_checklist()
        data = {
            "rotated": rotation.rotated,
            "manual": [text for _, text in rotation.items],
            "failed": len(failed),
        }
        if ctx.dry_run:
            count = sum(1 for g in seen.groups if g.state in ("rotate", "resume"))
            summary = f"would rotate {count} npm token(s)"
        else:
            summary = f"{len(rotation.rotated)} npm token(s) rotated"
        open_items = [i for i, answer in answers.items() if answer != "done"]
        if rotation.items:
            done = len(rotation.items) - len(open_items)
            summary += f"; {done}/{len(rotation.items)} checklist item(s) done"
        if failed:
            summary += f"; {len(failed)} failed: " + " | ".join(failed)
            return StepResult("failed", summary, data=data)
        if open_items:  # like every checklist: outstanding in the report, not a failed run
            return StepResult("outstanding", summary, data=data)
        return StepResult("succeeded", summary, data=data)
