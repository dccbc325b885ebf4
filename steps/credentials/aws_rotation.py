"""Rotate one IAM user's access key in two phases, and finish a rotation a crash interrupted.

Phases, each journaled as an `aws_rotation` event: `intent` -> `created` (the new key goes into
the keyring at once) -> `persisted` (every place that held the old key holds the new one) ->
`verified` (the new key authenticates as the same user) -> `deactivated` (the old key, signed with
the new one) -> `deleted` -> `done` (exactly one active key is left: the new one).

Until the old key is deactivated, a failure rolls back: the files get their old values again, the
new key is deleted, the keyring entry forgotten. After that point nothing is rolled back; a rerun
finishes the job. A rerun works out where the last attempt stopped from three sources: the keyring
(a new key with `replaces` = the old key's fingerprint), AWS (`list_access_keys`) and the journal
(an `intent` names the keys that existed before a key was created, so a key created by a run that
died before it could store the secret is recognised and deleted). It never creates a third key
and never deactivates the old key before the new one was verified.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from runbook.effects import EffectError
from runbook.faults import checkpoint
from runbook.redact import fingerprint
from runbook.step import StepContext
from steps.credentials.aws import (
    AccessKey,
    AwsClient,
    AwsError,
    AwsTarget,
    Identity,
    KeyPair,
    wait_until_accepted,
)
from steps.credentials.model import Credential, Location
from steps.credentials.persist import Replacement
from steps.credentials.rewrite import (
    CannotRewrite,
    FileEdit,
    apply_edits,
    preflight,
    undo_edits,
)
from steps.credentials.vault import StoredEntry, Vault

T = TypeVar("T")
EVENT = "aws_rotation"
KEY_TYPE = "aws-access-key"
SECRET_NAME = "aws_secret_access_key"
# a pending rotation is one whose keyring entry has not reached one of these
FINISHED_PHASES = ("done",)
# A key listed by AWS counts as created by an interrupted run of ours when it appeared after a
# journaled intent: no earlier than this many seconds before it (clock skew with AWS) ...
ORPHAN_SKEW = 300.0
# ... and no later than this many seconds after it (create follows the intent at once).
ORPHAN_WINDOW = 900.0

JobState = Literal["rotate", "resume", "refused", "invalid", "inactive", "blocked", "stale"]


class RotationFailed(Exception):
    """A rotation stopped; the message says what is left and what a rerun does (no secret)."""


# -- where a key lives ---------------------------------------------------------------------------
def secret_of(cred: Credential) -> tuple[str | None, Location | None]:
    """The secret access key paired with `cred` and where it lives."""
    for name, value in cred.companions.items():
        if name.lower() == SECRET_NAME or "secret" in name.lower():
            return value, cred.companion_locations.get(name)
    return None, None


@dataclass
class Place:
    """One place holding a key pair: the key id's line and the secret's line, or env variables."""

    key_at: Location
    secret_at: Location | None
    key_id: str = field(repr=False)
    secret: str | None = field(repr=False)

    @classmethod
    def of(cls, cred: Credential) -> Place:
        secret, where = secret_of(cred)
        return cls(cred.location, where, cred.value, secret)

    @property
    def rewritable(self) -> bool:
        """A file line runbook can rewrite in place (env variables are not)."""
        return bool(
            self.secret
            and self.key_at.source == "file"
            and self.key_at.path
            and self.key_at.line
            and self.secret_at is not None
            and self.secret_at.source == "file"
            and self.secret_at.path
            and self.secret_at.line
        )

    def display(self, home: Path | None = None) -> str:
        return self.key_at.display(home)

    def public(self) -> dict[str, Any]:
        return {
            "key": self.key_at.public(),
            "secret": self.secret_at.public() if self.secret_at else None,
            "fingerprint": fingerprint(self.key_id),
        }


def file_edits(places: Iterable[Place], new: KeyPair) -> list[FileEdit]:
    """One edit per file, for every rewritable place."""
    by_path: dict[Path, list[Replacement]] = {}
    for place in places:
        if not place.rewritable:
            continue
        assert place.key_at.path and place.key_at.line and place.secret_at and place.secret
        assert place.secret_at.path and place.secret_at.line
        by_path.setdefault(place.key_at.path, []).append(
            Replacement(place.key_at.line, place.key_id, new.access_key_id)
        )
        by_path.setdefault(place.secret_at.path, []).append(
            Replacement(place.secret_at.line, place.secret, new.secret_access_key)
        )
    return [FileEdit(path, tuple(reps)) for path, reps in by_path.items()]


# -- what the keyring and the journal remember ----------------------------------------------------
def pack(pair: KeyPair) -> str:
    """The keyring value of a new key: both halves, so a person (or a rerun) can use it."""
    return json.dumps(
        {"aws_access_key_id": pair.access_key_id, "aws_secret_access_key": pair.secret_access_key}
    )


def unpack(raw: str | None) -> KeyPair | None:
    try:
        data = json.loads(raw or "")
        return KeyPair(data["aws_access_key_id"], data["aws_secret_access_key"])
    except (ValueError, KeyError, TypeError):
        return None


def entry_name(identity: Identity) -> str:
    """The keyring entry of a user's new key (one per user: a later rotation replaces it)."""
    return f"aws-access-key:{identity.account}:{identity.user}"


@dataclass
class Pending:
    """A rotation an earlier attempt started: its new key is in the keyring."""

    entry: StoredEntry
    new: KeyPair

    @property
    def replaces(self) -> str:
        return str(self.entry.meta.get("replaces", ""))

    @property
    def phase(self) -> str:
        return str(self.entry.meta.get("phase", ""))


def pending_rotations(vault: Vault | None, service: str) -> list[Pending]:
    """Unfinished rotations whose new key runbook stored under `service`."""
    if vault is None:
        return []
    found = []
    for entry in vault.entries():
        meta = entry.meta or {}
        if (
            entry.service != service
            or entry.type != KEY_TYPE
            or not meta.get("replaces")
            or meta.get("phase") in FINISHED_PHASES
        ):
            continue
        pair = unpack(vault.get(service, entry.name))
        if pair is not None and pair.fingerprint == entry.fingerprint:
            found.append(Pending(entry, pair))
    return found


@dataclass(frozen=True)
class Intent:
    """A journaled promise to create a key for `user`, with the keys that existed then."""

    user: str
    at: float
    keys_before: frozenset[str]


def intents(entries: Iterable[Mapping[str, Any]], user: str) -> list[Intent]:
    out = []
    for entry in entries:
        data = entry.get("data") or {}
        if (
            entry.get("event") == EVENT
            and data.get("phase") == "intent"
            and data.get("user") == user
        ):
            out.append(
                Intent(user, float(data.get("at", 0)), frozenset(data.get("keys_before", [])))
            )
    return out


def is_orphan(key: AccessKey, user_intents: Sequence[Intent], held: set[str]) -> bool:
    """A key an interrupted run created but never stored: not in the keyring, absent when an
    intent was journaled, and created right after it."""
    if key.fingerprint in held or key.created is None:
        return False
    created = key.created.timestamp()
    return any(
        key.fingerprint not in intent.keys_before
        and intent.at - ORPHAN_SKEW <= created <= intent.at + ORPHAN_WINDOW
        for intent in user_intents
    )


# -- one job: a user's key, surveyed -------------------------------------------------------------
@dataclass
class Job:
    """One exposed key (or one unfinished rotation) and what AWS says about it."""

    old_fp: str
    old: KeyPair | None = None  # None: known only by fingerprint (the files hold the new key)
    places: list[Place] = field(default_factory=list)  # still holding the old key
    new_places: list[Place] = field(default_factory=list)  # already holding the new key
    pending: Pending | None = None
    stale: Pending | None = None  # a keyring entry whose new key AWS no longer knows
    identity: Identity | None = None
    keys: list[AccessKey] = field(default_factory=list)
    orphans: list[AccessKey] = field(default_factory=list)
    extra: AccessKey | None = None  # an inactive key deleted first (the 2-key limit)
    state: JobState = "rotate"
    reason: str = ""
    ops: list[str] = field(default_factory=list)

    @property
    def user(self) -> str:
        return (self.identity.user if self.identity else None) or "?"

    @property
    def old_shown(self) -> str:
        if self.old is not None:
            return self.old.redacted
        listed = self.old_key
        return listed.redacted if listed is not None else f"[sha256:{self.old_fp}]"

    @property
    def old_key(self) -> AccessKey | None:
        return next((k for k in self.keys if k.fingerprint == self.old_fp), None)

    @property
    def env_places(self) -> list[Place]:
        return [p for p in self.places if p.key_at.source == "env"]

    def public(self) -> dict[str, Any]:
        """What the plan's fingerprint pins: places, key states, the pending rotation."""
        return {
            "old": self.old_fp,
            "places": [p.public() for p in self.places],
            "new_places": [p.public() for p in self.new_places],
            "pending": [self.pending.entry.fingerprint, self.pending.phase]
            if self.pending
            else None,
            "stale": self.stale.entry.fingerprint if self.stale else None,
            "arn": self.identity.arn if self.identity else None,
            "keys": [[k.fingerprint, k.status] for k in self.keys],
            "orphans": [k.fingerprint for k in self.orphans],
            "extra": self.extra.fingerprint if self.extra else None,
            "state": self.state,
            "ops": self.ops,
        }


def survey(
    job: Job,
    target: AwsTarget,
    *,
    delete_old: bool,
    journal: Iterable[Mapping[str, Any]],
    held: set[str],
) -> Job:
    """Ask AWS (read-only) who owns the key and which keys the user has; decide what to do.

    `held` are fingerprints of keys runbook holds in the keyring. Raises AwsError only when AWS
    cannot be reached at all.
    """
    new_identity = None
    if job.pending is not None:
        try:
            new_identity = AwsClient(job.pending.new, target).identity()
        except AwsError as exc:
            if not exc.rejected:
                _fatal_or_block(job, exc)
                return job
            job.stale, job.pending = job.pending, None  # the new key is gone: start over
    old_identity = None
    if job.old is not None:
        try:
            old_identity = AwsClient(job.old, target).identity()
        except AwsError as exc:
            if not exc.rejected:
                _fatal_or_block(job, exc)
                return job
            if job.pending is None:
                job.state, job.reason = "invalid", str(exc)
                return job
    job.identity = new_identity or old_identity
    if job.identity is None:  # only a stale keyring entry was left: forget it
        job.state, job.reason = "stale", "the new key of an earlier attempt is gone from AWS"
        job.ops = ["forget"] if job.stale is not None else []
        return job
    if job.identity.user is None:
        job.state = "blocked"
        job.reason = f"the key belongs to {job.identity.arn}, not to an IAM user"
        return job
    signer = job.pending.new if job.pending else job.old
    assert signer is not None
    try:
        job.keys = AwsClient(signer, target).list_keys(job.identity.user)
    except AwsError as exc:
        _fatal_or_block(job, exc)
        return job
    if job.pending is not None:
        _plan_resume(job, delete_old)
    else:
        _plan_fresh(job, delete_old, journal, held)
    return job


def _fatal_or_block(job: Job, exc: AwsError) -> None:
    """AWS out of reach stops the plan; any other refusal blocks this key only."""
    if exc.code in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        raise exc
    job.state, job.reason = "blocked", str(exc)


def _plan_resume(job: Job, delete_old: bool) -> None:
    assert job.pending is not None
    job.state = "resume"
    old = job.old_key
    ops = []
    if any(p.rewritable for p in job.places):
        ops.append("persist")
    ops.append("verify")
    if old is not None and old.active:
        ops.append("deactivate")
    if old is not None and delete_old:
        ops.append("delete_old")
    job.ops = [*ops, "check"]


def _plan_fresh(
    job: Job, delete_old: bool, journal: Iterable[Mapping[str, Any]], held: set[str]
) -> None:
    old = job.old_key
    if old is None:
        job.state = "invalid"
        job.reason = f"AWS does not list the key among {job.user}'s keys"
        return
    if not old.active:
        job.state = "inactive"
        job.reason = "the key is already inactive"
        return
    others = [k for k in job.keys if k.fingerprint != job.old_fp]
    user_intents = intents(journal, job.user)
    job.orphans = [k for k in others if is_orphan(k, user_intents, held)]
    rest = [k for k in others if k not in job.orphans]
    active = [k for k in rest if k.active]
    if active:
        job.state = "refused"
        job.reason = (
            f"user {job.user} has two active keys ({old.redacted} and "
            f"{', '.join(k.redacted for k in active)}); runbook does not guess which one to keep"
        )
        return
    job.extra = rest[0] if rest else None
    ops = ["delete_orphan"] * len(job.orphans)
    if job.extra is not None:
        ops.append("delete_extra")
    ops += ["create", "store"]
    if any(p.rewritable for p in job.places):
        ops.append("persist")
    ops += ["verify", "deactivate"]
    if delete_old:
        ops.append("delete_old")
    job.ops = [*ops, "check"]


# -- doing it ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How one rotation ended (for the step's summary and result data)."""

    user: str
    old: str
    new: str
    new_fp: str
    active_keys: int


class Rotation:
    """Carries out one surveyed job through `ctx.effects`, journaling every phase."""

    def __init__(
        self,
        ctx: StepContext,
        job: Job,
        *,
        vault: Vault | None,
        service: str,
        target: AwsTarget,
        delete_old: bool,
        verify_timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.vault = vault
        self.service = service
        self.target = target
        self.delete_old = delete_old
        self.verify_timeout = verify_timeout
        self.sleep = sleep
        self.identity: Identity = job.identity or Identity("", "", None)
        self.user = job.user
        self.new: KeyPair | None = job.pending.new if job.pending else None
        self.name = job.pending.entry.name if job.pending else entry_name(self.identity)

    # -- small helpers -----------------------------------------------------------------------
    def _record(self, phase: str, **extra: Any) -> None:
        data = {
            "user": self.user,
            "arn": self.identity.arn,
            "phase": phase,
            "old": self.job.old_shown,
            "old_fp": self.job.old_fp,
        }
        if self.new is not None:
            data |= {"new": self.new.redacted, "new_fp": self.new.fingerprint}
        self.ctx.record(EVENT, data | extra)

    def _aws(self, operation: str, fn: Callable[[], T], summary: str) -> T:
        return self.ctx.effects.call("aws", operation, fn, summary=summary)  # type: ignore[return-value]

    def _checkpoint(self, phase: str) -> None:
        checkpoint(f"aws.{phase}", self.ctx.env)

    def _vault_phase(self, phase: str) -> None:
        """Note the phase on the keyring entry; a failure is journaled and otherwise harmless
        (a rerun works the phase out from AWS again)."""
        if self.vault is None:
            return
        vault = self.vault
        with contextlib.suppress(EffectError):
            self.ctx.effects.call(
                "keyring",
                "update",
                lambda: vault.update_meta(self.service, self.name, phase=phase),
                summary=f"note phase '{phase}' on {self.service}/{self.name}",
            )

    def _client(self, pair: KeyPair) -> AwsClient:
        return AwsClient(pair, self.target)

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Outcome | None:
        """Rotate (or finish rotating). Raises RotationFailed; None in a dry run."""
        if self.ctx.dry_run:
            self._would()
            return None
        if self.job.stale is not None:
            self._forget_stale()
        if self.job.ops == ["forget"]:
            return None
        if self.job.pending is None:
            self._start()
        else:
            self._record("resumed", from_phase=self.job.pending.phase, ops=self.job.ops)
            self._continue()
        return self._finish()

    def _forget_stale(self) -> None:
        stale, vault = self.job.stale, self.vault
        assert stale is not None
        if vault is None:
            return
        with contextlib.suppress(EffectError):  # harmless: a rerun finds it stale again
            self.ctx.effects.call(
                "keyring",
                "delete",
                lambda: vault.delete(stale.entry.service, stale.entry.name),
                summary=f"forget {stale.entry.service}/{stale.entry.name}: AWS no longer has "
                "that key (an earlier attempt was rolled back)",
            )

    def _start(self) -> None:
        """Phase one: create, store, persist, verify; roll everything back on failure."""
        job, old = self.job, self.job.old
        assert old is not None
        signer = self._client(old)
        try:  # old -> old: is every file rewritable, does every line still hold the key?
            preflight(file_edits(job.places, old))
        except CannotRewrite as exc:
            raise RotationFailed(f"nothing was changed: {self._text(exc)}") from None
        try:
            self._make_room(signer)
        except EffectError as exc:
            raise RotationFailed(
                f"no new key was created for {self.user}: {self._text(exc)}; the old key "
                f"{job.old_shown} is untouched"
            ) from None
        gone = {k.fingerprint for k in job.orphans} | (
            {job.extra.fingerprint} if job.extra else set()
        )
        before = [k.fingerprint for k in job.keys if k.fingerprint not in gone]
        self._record("intent", at=time.time(), keys_before=before)
        stored = False
        rewritten: list[FileEdit] = []
        try:
            self.new = self._aws(
                "iam:CreateAccessKey",
                lambda: self._create(signer),
                f"create a new access key for {self.user}",
            )
            self._checkpoint("created-unstored")  # a drill of the orphan: created, not kept
            self._store()
            stored = True
            self._record("created")
            self._checkpoint("created")
            self._persist(file_edits(job.places, self.new), rewritten)
            self._record("persisted", places=[p.display(self.ctx.home) for p in job.places])
            self._vault_phase("persisted")
            self._checkpoint("persisted")
            self._verify()
            self._deactivate()
        except Exception as exc:  # every failure before deactivation rolls back
            if not self._old_is_inactive():
                raise RotationFailed(self._rollback(signer, rewritten, stored, exc)) from None
            self._record("deactivated")  # the call failed, but AWS had done it: go on
        self._retire()

    def _make_room(self, signer: AwsClient) -> None:
        """Delete keys left by an interrupted run, then an inactive key (the 2-key limit)."""
        for key in self.job.orphans:
            self._aws(
                "iam:DeleteAccessKey",
                lambda key=key: signer.delete_key(self.user, key.key_id),
                f"delete {key.redacted} of {self.user}: an interrupted run created it and never "
                "stored its secret",
            )
        extra = self.job.extra
        if extra is not None:
            self._aws(
                "iam:DeleteAccessKey",
                lambda: signer.delete_key(self.user, extra.key_id),
                f"delete inactive key {extra.redacted} of {self.user} to make room (2-key limit)",
            )

    def _continue(self) -> None:
        """Finish a rotation an earlier attempt began; nothing is rolled back now."""
        job, new = self.job, self.new
        assert new is not None
        try:
            if "persist" in job.ops:
                self._persist(file_edits(job.places, new), [])
                self._record("persisted", places=[p.display(self.ctx.home) for p in job.places])
                self._vault_phase("persisted")
                self._checkpoint("persisted")
            self._verify()
            self._deactivate()
        except Exception as exc:
            raise RotationFailed(
                f"finishing the rotation of {self.user}'s key failed: {self._text(exc)}. The new "
                f"key {new.redacted} is kept (keyring {self.service}/{self.name}) and the old key "
                f"{job.old_shown} is left as it was; rerun to finish"
            ) from None
        self._retire()

    def _deactivate(self) -> None:
        """Deactivate the old key, signed with the new one (only once the new one verified)."""
        job, new = self.job, self.new
        assert new is not None
        client, old = self._client(new), job.old_key
        if old is None or "deactivate" not in job.ops:
            return
        self._aws(
            "iam:UpdateAccessKey",
            lambda: self._retry(lambda: client.set_status(self.user, old.key_id, "Inactive")),
            f"deactivate the old key {old.redacted} of {self.user}",
        )
        self._record("deactivated")
        self._vault_phase("deactivated")

    def _old_is_inactive(self) -> bool:
        """Whether AWS shows the old key inactive (a deactivation whose answer was lost)."""
        old, new = self.job.old_key, self.new
        if old is None or new is None:
            return False
        try:
            keys = self._client(new).list_keys(self.user)
        except Exception:
            return False
        return any(k.key_id == old.key_id and not k.active for k in keys)

    def _retire(self) -> None:
        """Phase two, after the deactivation: delete the old key. Nothing is rolled back now
        (the old key no longer works): a failure says to rerun, which finishes the job."""
        job, new = self.job, self.new
        assert new is not None
        client, old = self._client(new), job.old_key
        try:
            if old is not None and "deactivate" in job.ops:
                self._checkpoint("deactivated")
            if old is not None and "delete_old" in job.ops:
                self._aws(
                    "iam:DeleteAccessKey",
                    lambda: self._retry(lambda: client.delete_key(self.user, old.key_id)),
                    f"delete the old key {old.redacted} of {self.user}",
                )
                self._record("deleted")
                self._vault_phase("deleted")
        except Exception as exc:
            raise RotationFailed(
                f"the new key {new.redacted} of {self.user} works and is in place, but "
                f"{self._text(exc)}; the old key {job.old_shown} is not fully retired yet. "
                "Rerun to finish"
            ) from None

    def _finish(self) -> Outcome:
        new = self.new
        assert new is not None
        try:
            keys = self._client(new).list_keys(self.user)
        except AwsError as exc:
            raise RotationFailed(f"cannot list {self.user}'s keys afterwards: {exc}") from None
        active = [k for k in keys if k.active]
        only_new = len(active) == 1 and active[0].key_id == new.access_key_id
        self._record("done" if only_new else "check-failed", active_keys=len(active))
        self._vault_phase("done")
        if not only_new:
            raise RotationFailed(
                f"after rotating, {self.user} has {len(active)} active key(s); expected exactly "
                f"one, the new {new.redacted}"
            )
        return Outcome(self.user, self.job.old_shown, new.redacted, new.fingerprint, len(active))

    # -- phases --------------------------------------------------------------------------------
    def _create(self, signer: AwsClient) -> KeyPair:
        pair = signer.create_key(self.user)
        self.ctx.keep_secret(pair.access_key_id, pair.secret_access_key)
        return pair

    def _store(self) -> None:
        vault, new = self.vault, self.new
        if vault is None:
            raise RotationFailed("no keyring to keep the new key in")
        assert new is not None
        meta = {
            "replaces": self.job.old_fp,
            "user": self.user,
            "arn": self.identity.arn,
            "key_id_fp": new.fingerprint,
            "key": new.redacted,
            "phase": "created",
            "places": [p.display(self.ctx.home) for p in self.job.places],
            "created": time.time(),
        }
        self.ctx.effects.call(
            "keyring",
            "store",
            lambda: vault.store(
                self.service,
                self.name,
                pack(new),
                type=KEY_TYPE,
                fingerprint=new.fingerprint,
                meta=meta,
            ),
            summary=f"store the new key {new.redacted} as {self.service}/{self.name}",
        )

    def _persist(self, edits: list[FileEdit], rewritten: list[FileEdit]) -> None:
        """Rewrite every file in place; `rewritten` grows as files are done (for a rollback)."""
        reason = f"new access key of {self.user} in place of the old one"
        apply_edits(self.ctx.effects, edits, rewritten, reason=reason)

    def _verify(self) -> None:
        new = self.new
        assert new is not None
        self._aws(
            "sts:GetCallerIdentity",
            lambda: wait_until_accepted(
                self._client(new), self.identity.arn, timeout=self.verify_timeout, sleep=self.sleep
            ),
            f"verify that the new key {new.redacted} authenticates as {self.identity.arn}",
        )
        self._record("verified")
        self._vault_phase("verified")
        self._checkpoint("verified")

    def _retry(self, fn: Callable[[], None]) -> None:
        """IAM may not accept a brand-new key everywhere at once: retry while it is rejected."""
        deadline, delay = time.monotonic() + self.verify_timeout, 0.5
        while True:
            try:
                fn()
                return
            except AwsError as exc:
                if not exc.rejected or time.monotonic() + delay > deadline:
                    raise
            self.sleep(delay)
            delay = min(delay * 2, 8.0)

    # -- rollback ------------------------------------------------------------------------------
    def _rollback(
        self, signer: AwsClient, rewritten: list[FileEdit], stored: bool, exc: BaseException
    ) -> str:
        cause = self._text(exc)
        new = self.new
        if new is None:
            self._record("rolled-back", cause=cause, left=[])
            return f"rotation of {self.user}'s key failed, nothing changed: {cause}"
        problems = undo_edits(
            self.ctx.effects, rewritten, reason="rollback: the old key back in place"
        )
        left = [self._text(p) for p in problems]
        if left:  # a file holds the new key: keep that key and its keyring entry usable
            self._record("rollback-incomplete", cause=cause, left=left)
            return (
                f"rotation of {self.user}'s key failed ({cause}) and could not be rolled back "
                f"fully: {'; '.join(left)}. The old key {self.job.old_shown} is still active; "
                f"the new key {new.redacted} stays in AWS and in the keyring "
                f"({self.service}/{self.name}). A rerun finishes the rotation with that new key"
            )
        places = ", ".join(p.display(self.ctx.home) for p in self.job.places)
        message = (
            f"rotation of {self.user}'s key failed and was rolled back: {cause}. The old key "
            f"{self.job.old_shown} is active and in place ({places})"
        )
        try:
            self._aws(
                "iam:DeleteAccessKey",
                lambda: signer.delete_key(self.user, new.access_key_id),
                f"rollback: delete the new key {new.redacted}",
            )
        except EffectError as err:
            left.append(f"the new key {new.redacted} is still in AWS ({self._text(err)})")
            self._record("rolled-back", cause=cause, left=left)
            then = (
                "A rerun finds the new key in the keyring and finishes the rotation with it"
                if stored
                else f"Delete it in the IAM console (Users > {self.user} > Security credentials)"
            )
            return f"{message}; left over: {left[0]}. {then}"
        if stored and self.vault is not None:
            vault = self.vault
            try:
                self.ctx.effects.call(
                    "keyring",
                    "delete",
                    lambda: vault.delete(self.service, self.name),
                    summary=f"rollback: forget {self.service}/{self.name}",
                )
            except EffectError as err:
                left.append(f"the keyring entry {self.service}/{self.name} ({self._text(err)})")
        self._record("rolled-back", cause=cause, left=left)
        if left:  # AWS no longer has that key: a rerun sees the entry is stale and forgets it
            message += f"; left over: {left[0]}, which a rerun forgets"
        return message

    def _text(self, exc: BaseException) -> str:
        return self.ctx.effects.redactor.text(str(exc))

    # -- a dry run -------------------------------------------------------------------------------
    def _would(self) -> None:
        """Journal every call and write this rotation would make; call and write nothing."""
        job = self.job
        effects = self.ctx.effects
        summaries = {
            "delete_orphan": ("aws", "iam:DeleteAccessKey", "delete a key an interrupted run left"),
            "delete_extra": ("aws", "iam:DeleteAccessKey", "delete the inactive extra key"),
            "create": ("aws", "iam:CreateAccessKey", f"create a new access key for {self.user}"),
            "store": ("keyring", "store", f"store the new key as {self.service}/{self.name}"),
            "verify": ("aws", "sts:GetCallerIdentity", "verify the new key"),
            "deactivate": ("aws", "iam:UpdateAccessKey", f"deactivate {job.old_shown}"),
            "delete_old": ("aws", "iam:DeleteAccessKey", f"delete {job.old_shown}"),
            "check": ("aws", "iam:ListAccessKeys", f"check {self.user} has one active key"),
            "forget": ("keyring", "delete", "forget a keyring entry whose key AWS no longer has"),
        }
        for op in job.ops:
            if op == "persist":
                for path in dict.fromkeys(e.path for e in file_edits(job.places, KeyPair("", ""))):
                    effects.with_files([path], reason="a credential file").write_secret_file(
                        path, "", reason=f"new access key of {self.user} in place of the old one"
                    )
                continue
            service, operation, summary = summaries[op]
            effects.call(service, operation, lambda: None, summary=summary)
