"""`rotate_aws_keys`: rotate the static AWS access keys this machine holds, in two phases.

For each exposed key (found by credential discovery, grouped by key id so a key that sits in a
credentials profile and in a `.env` line is rotated once and rewritten everywhere): find its
owner, list the user's keys, then create the new key, keep it in the keyring at once, write it
where the old one lived, verify it, deactivate the old key and delete it. See
`steps/credentials/aws_rotation.py` for the phases, the rollback and the resume after a crash.

What runbook cannot rotate becomes a checklist item of this step: temporary `ASIA` keys (revoke
the role's sessions), SSO / role profiles, a user with two active keys (runbook does not guess),
keys AWS no longer accepts (remove them from the file), keys exported in the environment (update
where they are exported), and with `all_users`, other users' keys used since the exposure window
began.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import Field

from runbook.step import (
    Action,
    Finding,
    Plan,
    StalePlanError,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.credentials.aws import AccessKey, AwsClient, AwsError, AwsTarget, Identity, KeyPair
from steps.credentials.aws_rotation import (
    KEY_TYPE,
    Job,
    Place,
    Rotation,
    RotationFailed,
    entry_name,
    pending_rotations,
    secret_of,
    survey,
)
from steps.credentials.discover import discover_for_step
from steps.credentials.model import Credential
from steps.credentials.vault import KeyringRefused, Vault, keyring_preflight, service_for
from steps.manual import ask
from steps.sweep.verdict import compromised_host

ROLES_CONSOLE = (
    "IAM console > Roles > {role} > Revoke sessions > Revoke active sessions "
    "(https://console.aws.amazon.com/iam/home#/roles)"
)
USER_CONSOLE = (
    "IAM console > Users > {user} > Security credentials > Access keys "
    "(https://console.aws.amazon.com/iam/home#/users)"
)


PROFILE_KINDS = {
    "role": "an assumed role",
    "sso": "IAM Identity Center (SSO)",
    "credential_process": "a credential process",
    "web_identity": "a web identity token",
}


class RotateAwsKeysParams(StepParams):
    delete_old: bool = Field(
        default=True,
        description="Delete the old key once it is deactivated (else keep it inactive).",
    )
    verify_timeout: float = Field(
        default=60, gt=0, le=3600, description="Seconds to wait for the new key to authenticate."
    )
    region: str = Field(default="us-east-1", min_length=1, description="Region to sign with.")
    all_users: bool = Field(
        default=False,
        description="Also report other IAM users' keys used since the exposure window began.",
    )


@dataclass(frozen=True)
class Item:
    """A checklist item a person must tick."""

    id: str
    text: str


@dataclass
class Survey:
    """Everything `plan` observed; `apply` works from it (same fingerprint, same world)."""

    jobs: list[Job]
    items: list[Item]
    findings: list[Finding]
    actions: list[Action]
    notes: list[str]
    fingerprint: str
    vault: Vault | None
    target: AwsTarget
    service: str
    extra: dict[str, Any] = field(default_factory=dict)

    def plan(self) -> Plan:
        return Plan(
            findings=self.findings,
            actions=self.actions,
            fingerprint=self.fingerprint,
            notes=self.notes,
        )


class RotateAwsKeys(StepKind):
    """Two-phase rotation of static AWS access keys, resumable, with manual items for the rest."""

    name = "rotate_aws_keys"
    Params = RotateAwsKeysParams
    summary = "Rotate exposed AWS access keys: create, persist, verify, deactivate, delete."
    params: RotateAwsKeysParams

    @classmethod
    def preflight(cls, env: Mapping[str, str], options: Mapping[str, Any]) -> str | None:
        return keyring_preflight(env, options)

    def __init__(self, params: RotateAwsKeysParams) -> None:
        super().__init__(params)
        self._last: Survey | None = None

    # -- plan --------------------------------------------------------------------------------
    def plan(self, ctx: StepContext) -> Plan:
        self._last = self._survey(ctx)
        return self._last.plan()

    def _survey(self, ctx: StepContext) -> Survey:
        target = AwsTarget.resolve(ctx.options, ctx.env, self.params.region)
        service = service_for(ctx.playbook.id)
        discovery = discover_for_step(ctx)
        reader = _reader(ctx)
        pending = pending_rotations(reader, service)
        for p in pending:
            ctx.keep_secret(p.new.access_key_id, p.new.secret_access_key)
        creds = discovery.credentials
        jobs = _jobs(creds, pending)
        vault, refused = None, None
        if jobs:  # a rotation needs a keyring fit for the new secret: checked before AWS is asked
            try:
                vault = Vault.open(
                    ctx.env, allow_insecure=bool(ctx.options.get("allow_insecure_keyring"))
                )
            except KeyringRefused as exc:
                if not ctx.dry_run:
                    raise StepError(str(exc)) from None
                refused = f"a live run would stop here: {exc}"
        held = {e.fingerprint for e in reader.entries()} if reader else set()
        journal = ctx.journal_entries() if ctx.journal_entries else []
        unreachable: list[Job] = []
        for job in jobs:
            try:
                survey(
                    job,
                    target,
                    delete_old=self.params.delete_old,
                    journal=journal,
                    held=held,
                )
            except AwsError as exc:
                if ctx.dry_run and exc.code == "EndpointConnectionError":
                    unreachable.append(job)  # a dry run still shows the rest of the plan
                    continue
                raise StepError(
                    f"cannot check the AWS keys: {exc}; rerun when AWS is reachable, or skip "
                    "this step with a reason and rotate by hand"
                ) from None
            for key in job.keys:
                ctx.keep_secret(key.key_id)
        out = _Builder(ctx, service, target, self.params)
        warning = compromised_host(ctx)
        if warning:
            out.notes.append(warning)
        if refused:
            out.notes.append(refused)
        for job in jobs:
            if job in unreachable:
                out.notes.append(
                    f"AWS is not reachable at {target.shown}: a live run would look up the owner "
                    f"of {job.old_shown} and rotate it (create, persist, verify, deactivate, "
                    "delete)"
                )
                continue
            out.job(job)
        for cred in creds:
            if cred.type == "aws-temporary-key":
                out.temporary(cred, target)
            elif cred.type == "aws-profile":
                out.profile(cred)
        if self.params.all_users or ctx.options.get("all_users"):
            out.all_users(jobs, target, ctx.playbook.incident.window.start)
        for where, problem in discovery.problems:
            out.notes.append(f"could not read {where}: {problem}")
        out.notes.append(
            "Until the old key is deactivated, any failure deletes the new key and puts the old "
            "one back; a rerun after a crash finishes a half-done rotation."
        )
        fp = fingerprint_of(
            self.name,
            ctx.step.id,
            self.params.model_dump(),
            target.endpoint_url,
            target.region,
            [job.public() for job in jobs],
            [[i.id, i.text] for i in out.items],
            out.pinned,
        )
        return Survey(
            jobs,
            out.items,
            out.findings,
            out.actions,
            out.notes,
            fp,
            vault,
            target,
            service,
            extra={"unreachable": len(unreachable)},
        )

    # -- apply -------------------------------------------------------------------------------
    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        state = self._last
        if state is None or state.fingerprint != plan.fingerprint:
            state = self._survey(ctx)
            if state.fingerprint != plan.fingerprint:
                raise StalePlanError("the AWS keys or their places changed since the plan")
        rotated, failed = [], []
        for job in state.jobs:
            if not job.ops:
                continue
            rotation = Rotation(
                ctx,
                job,
                vault=state.vault,
                service=state.service,
                target=state.target,
                delete_old=self.params.delete_old,
                verify_timeout=self.params.verify_timeout,
            )
            try:
                outcome = rotation.run()
            except RotationFailed as exc:
                failed.append(ctx.effects.redactor.text(str(exc)))
                continue
            except Exception as exc:  # a bug or an odd environment: the other keys still rotate
                failed.append(ctx.effects.redactor.text(f"{job.user}: {type(exc).__name__}: {exc}"))
                continue
            if outcome is not None:
                rotated.append(outcome)
        answers = {item.id: ask(ctx, item.id, item.text) for item in state.items}
        open_items = sum(1 for a in answers.values() if a != "done")
        parts = []
        if ctx.dry_run:
            would = sum(1 for j in state.jobs if "verify" in j.ops)
            unchecked = state.extra.get("unreachable", 0)
            parts.append(
                f"would rotate {would + unchecked} key(s)"
                + (f" ({unchecked} not checked: AWS not reachable)" if unchecked else "")
            )
        elif rotated:
            parts.append(
                f"rotated {len(rotated)} key(s): "
                + ", ".join(f"{o.user} {o.old} -> {o.new}" for o in rotated)
            )
        if failed:
            parts.append(f"{len(failed)} failed: " + " | ".join(failed))
        if state.items:
            parts.append(f"{len(state.items) - open_items}/{len(state.items)} manual items done")
        summary = "; ".join(parts) or "no AWS access keys to rotate"
        data = {
            "rotated": [
                {"user": o.user, "old": o.old, "new": o.new, "new_fp": o.new_fp} for o in rotated
            ],
            "failed": len(failed),
            "manual_open": open_items,
        }
        if failed:
            return StepResult("failed", summary, data=data)
        if open_items:
            return StepResult("outstanding", summary, data=data)
        return StepResult("succeeded", summary, data=data)


def _reader(ctx: StepContext) -> Vault | None:
    """The keyring, for reading what earlier runs stored (any backend will do for that)."""
    try:
        return Vault.open(ctx.env, allow_insecure=True)
    except Exception:
        return None


def _jobs(creds: list[Credential], pending: list[Any]) -> list[Job]:
    """One job per exposed key id, plus one per unfinished rotation whose old key is not found."""
    groups: dict[str, list[Credential]] = {}
    for cred in creds:
        if cred.type == KEY_TYPE and cred.rotation == "aws":
            groups.setdefault(cred.value, []).append(cred)
    jobs = []
    by_old = {p.replaces: p for p in pending}
    for key_id, group in groups.items():
        secret = next((s for c in group if (s := secret_of(c)[0])), None)
        if secret is None:
            continue
        old = KeyPair(key_id, secret)
        jobs.append(
            Job(
                old_fp=old.fingerprint,
                old=old,
                places=[Place.of(c) for c in group],
                pending=by_old.pop(old.fingerprint, None),
            )
        )
    for p in by_old.values():
        jobs.append(Job(old_fp=p.replaces, pending=p))
    for job in jobs:
        if job.pending is not None:
            new_fp = job.pending.new.fingerprint
            job.new_places = [
                Place.of(c) for c in creds if c.type == KEY_TYPE and c.fingerprint == new_fp
            ]
    return jobs


class _Builder:
    """Turns surveyed jobs and non-rotatable credentials into findings, actions and items."""

    def __init__(
        self, ctx: StepContext, service: str, target: AwsTarget, params: RotateAwsKeysParams
    ) -> None:
        self.ctx = ctx
        self.home = ctx.home
        self.service = service
        self.target = target
        self.params = params
        self.findings: list[Finding] = []
        self.actions: list[Action] = []
        self.items: list[Item] = []
        self.notes: list[str] = []
        self.pinned: list[Any] = []  # more world state the fingerprint covers

    def _where(self, places: list[Place]) -> str:
        return ", ".join(p.display(self.home) for p in places) or "no file"

    def _finding(self, kind: str, severity: str, message: str, place: Place | None = None) -> None:
        path = line = None
        if place is not None and place.key_at.source == "file" and place.key_at.path:
            path, line = str(place.key_at.path), place.key_at.line
        self.findings.append(
            Finding(kind=kind, severity=severity, path=path, line=line, message=message)  # type: ignore[arg-type]
        )

    def _item(self, item_id: str, text: str) -> None:
        if all(i.id != item_id for i in self.items):
            self.items.append(Item(item_id, text))
            self.actions.append(Action(kind="manual", summary=text, detail={"item": item_id}))

    def _act(self, kind: str, summary: str, destructive: bool = False, **detail: Any) -> None:
        self.actions.append(
            Action(kind=kind, summary=summary, destructive=destructive, detail=detail)  # type: ignore[arg-type]
        )

    # -- rotatable keys ------------------------------------------------------------------------
    def job(self, job: Job) -> None:
        first = job.places[0] if job.places else (job.new_places[0] if job.new_places else None)
        where = self._where(job.places)
        user = job.user
        if job.state == "invalid":
            self._finding(
                "aws-key-invalid",
                "info",
                f"{job.old_shown} at {where} is already invalid: {job.reason}",
                first,
            )
            if job.places:
                self._item(
                    f"aws-invalid-{job.old_fp}",
                    f"Remove the dead AWS key {job.old_shown} from {where}: AWS no longer "
                    f"accepts it ({job.reason}), so there is nothing left to rotate.",
                )
            return
        if job.state == "stale":
            entry = job.stale.entry if job.stale else None
            if entry is not None:
                self._act(
                    "keyring",
                    f"forget the keyring entry {entry.service}/{entry.name}: {job.reason} "
                    "(an earlier attempt was rolled back, or the key was deleted by hand)",
                    service=entry.service,
                    name=entry.name,
                )
            return
        if job.state == "inactive":
            self._finding(
                "aws-key-inactive",
                "info",
                f"{job.old_shown} of {user} at {where} is already inactive",
                first,
            )
            self._item(
                f"aws-inactive-{job.old_fp}",
                f"Delete the inactive AWS key {job.old_shown} of {user} "
                f"({USER_CONSOLE.format(user=user)}) and remove it from {where}.",
            )
            return
        if job.state == "refused":
            self._finding(
                "aws-two-active-keys",
                "at-risk",
                f"not rotating {job.old_shown}: {job.reason}",
                first,
            )
            self._item(
                f"aws-two-active-{job.old_fp}",
                f"{job.reason[0].upper()}{job.reason[1:]}. Deactivate the key that is no longer "
                f"used ({USER_CONSOLE.format(user=user)}), then rerun this step; or rotate "
                f"{job.old_shown} (found at {where}) by hand.",
            )
            return
        if job.state == "blocked":
            self._finding(
                "aws-key-not-rotatable",
                "unknown",
                f"cannot rotate {job.old_shown} at {where}: {job.reason}",
                first,
            )
            self._item(
                f"aws-blocked-{job.old_fp}",
                f"Rotate the AWS key {job.old_shown} at {where} by hand ({job.reason}): "
                "create a new key, put it in place, then deactivate and delete the old one.",
            )
            return
        self._rotation(job, where, first)

    def _rotation(self, job: Job, where: str, first: Place | None) -> None:
        user, arn = job.user, job.identity.arn if job.identity else "?"
        name = (
            job.pending.entry.name
            if job.pending
            else entry_name(job.identity or Identity("", "", None))
        )
        old = job.old_key
        if job.pending is not None:
            self._finding(
                "aws-rotation-unfinished",
                "at-risk",
                f"the rotation of {job.old_shown} ({user}) stopped after phase "
                f"'{job.pending.phase}'; its new key {job.pending.new.redacted} is in the keyring: "
                "this run finishes it",
                first,
            )
        else:
            self._finding(
                "aws-access-key",
                "at-risk",
                f"{job.old_shown} of {arn} at {where}: exposed, will be rotated",
                first,
            )
        if job.stale is not None:
            self.notes.append(
                f"the keyring entry {job.stale.entry.service}/{job.stale.entry.name} names a key "
                "AWS no longer has (an earlier attempt was rolled back): it will be forgotten"
            )
        prefix = "resume: " if job.pending else ""
        orphans = iter(job.orphans)
        for op in job.ops:
            if op == "delete_orphan":
                key = next(orphans)
                self._act(
                    "call",
                    f"delete {key.redacted} of {user}: an interrupted run created it and never "
                    "stored its secret",
                    True,
                    key=key.redacted,
                )
            elif op == "delete_extra" and job.extra is not None:
                self._act(
                    "call",
                    f"delete the inactive key {job.extra.redacted} of {user} first: a user may "
                    f"have only two keys (created {_date(job.extra.created)})",
                    True,
                    key=job.extra.redacted,
                )
            elif op == "create":
                self._act("call", f"create a new access key for {user}", user=user)
            elif op == "store":
                self._act(
                    "keyring",
                    f"store the new key in the keyring as {self.service}/{name}",
                    service=self.service,
                    name=name,
                )
            elif op == "persist":
                files = sorted({str(p.key_at.path) for p in job.places if p.rewritable})
                self._act(
                    "edit",
                    f"{prefix}write the new key in place of {job.old_shown} at "
                    f"{self._where([p for p in job.places if p.rewritable])} (no backup kept)",
                    files=files,
                )
            elif op == "verify":
                self._act(
                    "call",
                    f"{prefix}verify the new key authenticates as {arn} "
                    f"(up to {self.params.verify_timeout:g}s)",
                )
            elif op == "deactivate" and old is not None:
                self._act(
                    "call",
                    f"{prefix}deactivate the old key {old.redacted} of {user}",
                    True,
                    key=old.redacted,
                )
            elif op == "delete_old" and old is not None:
                self._act(
                    "call",
                    f"{prefix}delete the old key {old.redacted} of {user}",
                    True,
                    key=old.redacted,
                )
            elif op == "check":
                self._act("call", f"check that {user} has exactly one active key, the new one")
        if job.env_places:
            names = ", ".join(sorted({p.key_at.name for p in job.env_places}))
            self._item(
                f"aws-env-{job.old_fp}",
                f"Update every place that exports {names} with {job.old_shown} (shell profile, "
                f".envrc, CI secrets): a running environment cannot be rewritten. The new key of "
                f"{user} is in the keyring as {self.service}/{name}.",
            )

    # -- what runbook cannot rotate ------------------------------------------------------------
    def temporary(self, cred: Credential, target: AwsTarget) -> None:
        """An ASIA key: revoke the role's sessions. STS (never IAM) may name the role."""
        secret, _ = secret_of(cred)
        token = next((v for k, v in cred.companions.items() if "token" in k.lower()), None)
        role = None
        if secret and token:
            try:
                role = AwsClient(KeyPair(cred.value, secret, token), target).identity().role
            except AwsError:
                role = None
        where = cred.location.display(self.home)
        how = ROLES_CONSOLE.format(role=role or "the role")
        if not role and cred.revoke_at:
            how = cred.revoke_at
        self._finding(
            "aws-temporary-key",
            "at-risk",
            f"temporary key {cred.redacted} at {where}: not rotatable, revoke its role's sessions",
            Place.of(cred),
        )
        self._item(
            f"aws-temporary-{cred.fingerprint}",
            f"Temporary AWS key {cred.redacted} at {where}"
            + (f" (role {role})" if role else "")
            + f": revoke the role's active sessions: {how}. Then delete it from {where}.",
        )
        self.pinned.append(["temporary", cred.fingerprint, where, role])

    def profile(self, cred: Credential) -> None:
        where = cred.location.display(self.home)
        profile = cred.detail.get("profile") or cred.location.section or "?"
        kind = PROFILE_KINDS.get(cred.detail.get("kind", ""), "SSO, a role or a process")
        self._finding(
            "aws-profile",
            "at-risk",
            f"AWS profile '{profile}' at {where} gets its credentials from {kind}",
            Place.of(cred),
        )
        how = cred.revoke_at or "revoke its sessions"
        if "cache" not in how:
            how += "; delete the cached tokens in ~/.aws/sso/cache and ~/.aws/cli/cache"
        self._item(f"aws-profile-{cred.fingerprint}", f"AWS profile '{profile}' ({where}): {how}.")
        self.pinned.append(["profile", cred.fingerprint, where])

    def all_users(self, jobs: list[Job], target: AwsTarget, start: datetime) -> None:
        """Other IAM users' keys used at or after the window start: their owners must rotate."""
        signer = _signer(jobs)
        if signer is None:
            self.notes.append("all users: no working AWS key to list IAM users with")
            return
        ours = {j.old_fp for j in jobs} | {
            j.pending.new.fingerprint for j in jobs if j.pending is not None
        }
        client = AwsClient(signer, target)
        try:
            users = client.list_users()
            used: list[tuple[str, AccessKey, datetime]] = []
            for user in users:
                for key in client.list_keys(user):
                    self.ctx.keep_secret(key.key_id)
                    if key.fingerprint in ours:
                        continue
                    when = client.last_used(key.key_id)
                    if when is not None and when >= start:
                        used.append((user, key, when))
        except AwsError as exc:
            if exc.code != "AccessDenied":
                raise StepError(f"cannot list IAM users: {exc}") from None
            self._finding(
                "aws-permission-missing",
                "unknown",
                f"--all-users: the key may not list IAM users and their keys ({exc}); "
                "grant iam:ListUsers, iam:ListAccessKeys and iam:GetAccessKeyLastUsed, or ask "
                "an administrator to check which keys were used since the window began",
            )
            self.pinned.append(["all-users", "denied"])
            return
        for user, key, when in used:
            self._finding(
                "aws-key-used-in-window",
                "at-risk",
                f"{key.redacted} of IAM user {user} was last used {_date(when)}, on or after the "
                f"exposure window began ({_date(start)})",
            )
            self._item(
                f"aws-user-key-{key.fingerprint}",
                f"IAM user {user}: access key {key.redacted} was used {_date(when)}, since the "
                "exposure window began; its owner must rotate it "
                f"({USER_CONSOLE.format(user=user)})",
            )
        self.pinned.append(["all-users", sorted([u, k.fingerprint, k.status] for u, k, _ in used)])


def _signer(jobs: list[Job]) -> KeyPair | None:
    for job in jobs:
        if job.identity is None or job.state in ("invalid",):
            continue
        if job.pending is not None:
            return job.pending.new
        if job.old is not None:
            return job.old
    return None


def _date(moment: datetime | None) -> str:
    if moment is None:
        return "unknown"
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()
