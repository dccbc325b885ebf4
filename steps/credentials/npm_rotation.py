"""The npm token rotation engine behind `rotate_npm_tokens`: one token group at a time.

Phases, each journaled as an `npm_rotation` event (fingerprints only) and, from `created` on,
recorded as the keyring entry's `state` so that a later run knows where this one stopped:

    created -> persisted -> verified -> done          (or rolled-back)

Checkpoints `npm.created`, `npm.persisted` and `npm.verified` (runbook.faults) follow the first
three. Any failure before the old token is revoked rolls back: the old token is written back
wherever it was replaced, then the new token is revoked and the keyring entry deleted. A file
that cannot get the old token back keeps the new one valid (and kept): a rerun finishes the job.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from runbook import faults
from runbook.effects import CommandResult, EffectError
from runbook.redact import fingerprint, redact_value
from runbook.step import StepContext, StepError
from steps.credentials.npm_registry import (
    Auth,
    Basic,
    CreatedToken,
    NpmRegistry,
    NpmRegistryError,
    OtpRequired,
    TokenInfo,
    TokenRefused,
    find_token,
    nerf_dart,
)
from steps.credentials.persist import NotText, Replacement, read_text
from steps.credentials.rewrite import CannotRewrite, FileEdit, apply_edits, preflight, undo_edits
from steps.credentials.vault import StoredEntry, Vault, service_for
from steps.manual import ask

T = TypeVar("T")
PASSWORD_ENV = "RUNBOOK_NPM_PASSWORD"
VERIFY_TOKEN_ENV = "RUNBOOK_NPM_VERIFY_TOKEN"  # the new token, for `npm whoami` only
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
UNFINISHED = ("created", "persisted", "verified")  # keyring `state`s of a rotation cut short
# settings the private userconfig keeps from the user's, so `npm whoami` reaches the registry
NETWORK_SETTINGS = frozenset(
    {"ca", "ca[]", "cafile", "strict-ssl", "proxy", "https-proxy", "noproxy", "local-address"}
)

State = Literal["rotate", "resume", "refused", "unreachable", "no-password", "finish"]


@dataclass(frozen=True)
class Place:
    """One place a token lives: a file line, or an environment variable."""

    source: Literal["file", "env"]
    name: str  # the npmrc or yarnrc key, or the variable
    shown: str
    path: Path | None = None
    line: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "where": self.shown,
            "path": str(self.path) if self.path else None,
            "line": self.line,
        }


@dataclass
class TokenGroup:
    """One token at one registry, every place it lives, and what the step will do about it."""

    registry: str
    old: str = field(repr=False)  # "" when only a keyring entry is left of its rotation
    old_fp: str
    places: list[Place] = field(default_factory=list)
    state: State = "rotate"
    user: str = ""
    problem: str = ""
    entry: StoredEntry | None = None  # the keyring entry of a rotation cut short
    new: str = field(default="", repr=False)  # that entry's token
    new_places: list[Place] = field(default_factory=list)  # files that already hold it
    stale: bool = False  # the registry refuses that token: the entry is forgotten first

    @property
    def files(self) -> list[Place]:
        return [p for p in self.places if p.source == "file"]

    @property
    def env_places(self) -> list[Place]:
        return [p for p in self.places if p.source == "env"]

    @property
    def shown_old(self) -> str:
        return redact_value(self.old) if self.old else f"[sha256:{self.old_fp}]"

    def where(self) -> str:
        return ", ".join(p.shown for p in self.places) or "(no file holds it any more)"

    def entry_name(self) -> str:
        return self.entry.name if self.entry else entry_name(self.user, self.registry, self.old_fp)


def entry_name(user: str, registry: str, old_fp: str) -> str:
    """The keyring entry name of the token that replaces the token `old_fp`."""
    return f"npm:{user}@{nerf_dart(registry)[2:]}:replaces-{old_fp}"


def by_hand(group: TokenGroup) -> str:
    """The commands a person runs to rotate `group` without runbook."""
    reg = group.registry
    return (
        f"`npm token create --registry {reg}`, put the new token in {group.where()}, "
        f"`npm whoami --registry {reg}`, `npm token list --registry {reg}` and "
        f"`npm token revoke ID --registry {reg}` for the old one"
    )


def env_item(place: Place, service: str, name: str) -> str:
    return (
        f"update {place.name} where it is set (CI secret store, shell profile) to the new token "
        f"kept in the keyring as {service}/{name}"
    )


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class NpmRotation:
    """The work of one `apply` (live or dry): `handle` each group, then `ask_checklist`."""

    def __init__(self, ctx: StepContext, vault: Vault | None, *, timeout: float) -> None:
        self.ctx = ctx
        self.vault = vault
        self.timeout = timeout
        self.service = service_for(ctx.playbook.id)
        self.items: list[tuple[str, str]] = []  # (id, text) for the checklist
        self.rotated: list[dict[str, Any]] = []
        self._passwords: dict[tuple[str, str], str | None] = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def item(self, group: TokenGroup, what: str, text: str) -> None:
        item_id = f"npm-{group.old_fp}-{what}"
        if all(i != item_id for i, _ in self.items):
            self.items.append((item_id, text))

    def ask_checklist(self) -> dict[str, str]:
        """Each manual item to the operator; every answer journaled."""
        return {item_id: ask(self.ctx, item_id, text) for item_id, text in self.items}

    def journal(self, phase: str, group: TokenGroup, *, new: str = "", **data: Any) -> None:
        """An `npm_rotation` event: tokens shown redacted and by fingerprint, never in full."""
        token = new or group.new
        shown = {"new": redact_value(token), "new_fp": fingerprint(token)} if token else {}
        self.ctx.record(
            "npm_rotation",
            {
                "phase": phase,
                "registry": group.registry,
                "user": group.user,
                "old": group.shown_old,
                "old_fp": group.old_fp,
                "places": [p.shown for p in group.places],
                **shown,
                **data,
            },
        )

    def password(self, user: str, registry: str) -> str | None:
        """The account password: asked once per account, else RUNBOOK_NPM_PASSWORD."""
        key = (user, registry)
        if key not in self._passwords:
            ctx = self.ctx
            value = ctx.operator.secret(ctx.step, f"npm password for {user} at {registry}")
            value = value or ctx.env.get(PASSWORD_ENV) or None
            ctx.keep_secret(value)
            self._passwords[key] = value
        return self._passwords[key]

    def with_otp(self, group: TokenGroup, call: Callable[[str | None], T], asked: list[str]) -> T:
        """`call(None)`; on an OTP challenge, ask the operator for a one-time password and call
        again with it. `asked` gets a mark when nobody could give one."""
        try:
            return call(None)
        except OtpRequired:
            ctx = self.ctx
            prompt = f"one-time password (2FA) for {group.user} at {group.registry}"
            otp = ctx.operator.secret(ctx.step, prompt)
            if not otp:
                asked.append("otp")
                raise
            ctx.keep_secret(otp)
            return call(otp)

    # -- one group ---------------------------------------------------------------------------
    def handle(self, group: TokenGroup) -> None:
        if group.stale:
            self._forget(group)
        if group.state == "refused":
            self.item(
                group,
                "remove",
                f"remove the npm token {group.shown_old} (refused by {group.registry}) from "
                f"{group.where()}",
            )
        elif group.state in ("unreachable", "no-password"):
            why = group.problem or f"no password: nobody to ask and {PASSWORD_ENV} unset"
            self.item(
                group, "rotate", f"rotate {group.shown_old} by hand ({why}): {by_hand(group)}"
            )
        elif group.state == "finish":
            return
        elif self.ctx.dry_run:
            self._dry(group)
        elif group.state == "resume":
            self._resume(group)
        else:
            self._rotate(group)

    def _forget(self, group: TokenGroup) -> None:
        entry, vault = group.entry, self.vault
        assert entry is not None
        self.ctx.effects.call(
            "keyring",
            "delete",
            lambda: vault.delete(entry.service, entry.name) if vault else None,
            summary=f"forget {entry.service}/{entry.name}: the registry refuses its token",
        )
        if not self.ctx.dry_run:  # a dry run forgot nothing: no phase for the report to show
            self.journal("forgotten", group, keyring=entry.name)
        group.entry, group.new, group.stale, group.new_places = None, "", False, []

    def _dry(self, group: TokenGroup) -> None:
        effects, name = self.ctx.effects, group.entry_name()
        if group.state == "rotate":
            effects.call(
                "npm",
                "token:create",
                lambda: None,
                summary=f"create a new token for {group.user} at {group.registry}",
            )
            effects.call(
                "keyring", "store", lambda: None, summary=f"store it as {self.service}/{name}"
            )
        paths = sorted({p.path for p in group.files if p.path})
        files = effects.with_files(paths, reason="rotate_npm_tokens: the files holding the token")
        for path in paths:
            files.write_secret_file(path, "", reason=f"new npm token for {group.user}")
        effects.run(
            ["npm", "whoami", "--registry", group.registry],
            cwd=self.ctx.target,
            reason="verify the new npm token (private temporary userconfig)",
        )
        effects.call(
            "npm",
            "token:revoke",
            lambda: None,
            summary=f"revoke the old token {group.shown_old} of {group.user}",
        )
        for place in group.env_places:
            self.item(group, f"env-{place.name}", env_item(place, self.service, name))

    def _rotate(self, group: TokenGroup) -> None:
        """A fresh rotation: create, store, persist, verify, revoke."""
        ctx = self.ctx
        try:  # before anything is created: can every file still be rewritten in place?
            preflight(_edits(group.files, group.old, group.old))
        except CannotRewrite as exc:
            raise StepError(
                f"nothing was changed for the npm token {group.shown_old} of {group.user}: {exc}"
            ) from None
        registry = NpmRegistry(group.registry, env=ctx.env)
        password = self.password(group.user, group.registry)
        if not password:
            self.item(
                group,
                "rotate",
                f"rotate {group.shown_old} of {group.user} by hand (no password was given): "
                f"{by_hand(group)}",
            )
            return
        account = Basic(group.user, password)
        try:
            listed = registry.list_tokens(group.old)
        except NpmRegistryError:
            listed = None  # revocation looks again, with the new token
        old_info = find_token(listed, group.old) if listed is not None else None
        if listed is not None:
            listed = self._revoke_orphans(group, registry, account, listed)
            self.journal("intent", group, tokens_before=sorted(t.key for t in listed))
        made = self._create(group, registry, account, old_info)
        if made is None:
            return
        faults.checkpoint("npm.created-unstored", ctx.env)  # a drill: created, never stored
        name, new_fp = group.entry_name(), fingerprint(made.token)
        meta = {
            "replaces": group.old_fp,
            "registry": group.registry,
            "user": group.user,
            "token_id": made.key,
            "old_token_id": old_info.key if old_info else None,
            "readonly": made.readonly,
            "state": "created",
        }
        vault = self.vault
        assert vault is not None
        if made.user and made.user != group.user:  # never expected: never keep such a token
            wrong = StepError(f"the registry issued a token for another user ({made.user})")
            self._roll_back(group, registry, made, account, [], "checking it", wrong)
        try:
            ctx.effects.call(
                "keyring",
                "store",
                lambda: vault.store(
                    self.service, name, made.token, type="npm-token", fingerprint=new_fp, meta=meta
                ),
                summary=f"store the new npm token as {self.service}/{name}",
            )
        except EffectError as exc:
            self._roll_back(group, registry, made, account, [], "storing it", exc)
        group.entry = StoredEntry(self.service, name, "npm-token", new_fp, time.time(), meta)
        group.new = made.token
        self.journal("created", group, token_id=made.key, keyring=name)
        self._finish(group, registry, account, made, fresh=True)

    def _revoke_orphans(
        self, group: TokenGroup, registry: NpmRegistry, account: Basic, listed: list[TokenInfo]
    ) -> list[TokenInfo]:
        """Revoke tokens an interrupted attempt of this run created but never stored: listed
        now, absent from the list its journaled intent saw. Returns the list without them."""
        entries = self.ctx.journal_entries() if self.ctx.journal_entries else []
        intents = [
            e["data"]
            for e in entries
            if e.get("event") == "npm_rotation"
            and e["data"].get("phase") == "intent"
            and e["data"].get("old_fp") == group.old_fp
        ]
        if not intents or "tokens_before" not in intents[-1]:
            return listed
        before = set(intents[-1]["tokens_before"])
        orphans = [t for t in listed if t.key not in before]
        for orphan in orphans:
            self.ctx.effects.call(
                "npm",
                "token:revoke",
                lambda orphan=orphan: registry.revoke_token(account, orphan.key),
                summary=f"revoke {orphan.masked} of {group.user}: an interrupted run created it "
                "and never stored it",
            )
            self.journal("orphan-revoked", group, token_id=orphan.key)
        return [t for t in listed if t.key in before]

    def _resume(self, group: TokenGroup) -> None:
        """Finish a rotation an earlier run started: its new token is in the keyring."""
        entry = group.entry
        assert entry is not None
        registry = NpmRegistry(group.registry, env=self.ctx.env)
        made = CreatedToken(
            token=group.new,
            key=str(entry.meta.get("token_id") or ""),
            user=group.user,
            readonly=bool(entry.meta.get("readonly")),
        )
        account = None
        if made.readonly:  # a read-only token may not revoke: the account may
            password = self.password(group.user, group.registry)
            account = Basic(group.user, password) if password else None
        self.journal(
            "resumed",
            group,
            keyring=entry.name,
            was=entry.meta.get("state"),
            already=[p.shown for p in group.new_places],
        )
        self._finish(group, registry, account, made, fresh=False)

    def _create(
        self,
        group: TokenGroup,
        registry: NpmRegistry,
        account: Basic,
        old_info: TokenInfo | None,
    ) -> CreatedToken | None:
        """A new token like the old one (read-only, CIDR list); None when 2FA stops it."""
        ctx = self.ctx
        readonly = old_info.readonly if old_info else False
        cidr = old_info.cidr if old_info else ()
        asked: list[str] = []

        def with_auth(auth: Auth) -> CreatedToken:
            return self.with_otp(
                group,
                lambda otp: registry.create_token(
                    auth, account.password, readonly=readonly, cidr=cidr, otp=otp
                ),
                asked,
            )

        def create() -> CreatedToken:
            # a read-only token may not create tokens; the account itself may
            try:
                made = with_auth(account if readonly else group.old)
            except TokenRefused as exc:
                if exc.status != 403 or readonly:
                    raise
                made = with_auth(account)
            ctx.keep_secret(made.token)
            return made

        try:
            made = ctx.effects.call(
                "npm",
                "token:create",
                create,
                summary=f"create a new token for {group.user} at {group.registry}",
            )
        except EffectError as exc:
            if asked:
                self.item(
                    group,
                    "rotate",
                    f"rotate {group.shown_old} of {group.user} by hand: the account uses "
                    f"two-factor authentication and no one-time password was given: "
                    f"{by_hand(group)}",
                )
                return None
            raise StepError(
                f"cannot create a new npm token for {group.user} at {group.registry}: {exc}; "
                "nothing was changed, the old token stays in place"
            ) from None
        assert made is not None
        return made

    def _finish(
        self,
        group: TokenGroup,
        registry: NpmRegistry,
        account: Basic | None,
        made: CreatedToken,
        *,
        fresh: bool,
    ) -> None:
        """Persist, verify (rolling back on failure), then revoke the old token."""
        ctx = self.ctx
        rewritten: list[FileEdit] = []
        phase = "writing it to the files"
        try:
            if fresh:
                faults.checkpoint("npm.created", ctx.env)
            if group.old:
                self._persist(group, group.old, made.token, rewritten)
            self._set_state(group, "persisted")
            files = sorted(str(e.path) for e in rewritten)
            self.journal("persisted", group, files=files)
            faults.checkpoint("npm.persisted", ctx.env)
            phase = "verifying it"
            how = self._verify(group, made.token)
            self._set_state(group, "verified")
            self.journal("verified", group, how=how)
            faults.checkpoint("npm.verified", ctx.env)
        except Exception as exc:
            if not group.old:
                # the files hold the new token and the old value is nowhere to put back: keep it
                raise StepError(
                    f"finishing the npm token rotation for {group.user} at {group.registry} "
                    f"failed while {phase}: {_why(exc)}; the new token stays in place; rerun "
                    "this step to try again"
                ) from None
            self._roll_back(group, registry, made, account, rewritten, phase, exc)
        self._revoke_old(group, registry, account, made)

    # -- phases ------------------------------------------------------------------------------
    def _set_state(self, group: TokenGroup, state: str, **meta: Any) -> None:
        entry, vault = group.entry, self.vault
        assert entry is not None and vault is not None
        self.ctx.effects.call(
            "keyring",
            "update",
            lambda: vault.update_meta(entry.service, entry.name, state=state, **meta),
            summary=f"mark {entry.service}/{entry.name} {state}",
        )

    def _persist(self, group: TokenGroup, old: str, new: str, done: list[FileEdit]) -> None:
        """Rewrite every file place in place; `done` grows as files are written (a roll-back
        puts the old token back in those)."""
        edits = _edits(group.files, old, new)
        apply_edits(self.ctx.effects, edits, done, reason=f"new npm token for {group.user}")

    def _verify(self, group: TokenGroup, token: str) -> str:
        """`npm whoami` with nothing but the new token configured; GET /-/whoami without npm."""
        ctx = self.ctx
        npm = shutil.which("npm", path=ctx.env.get("PATH"))
        if npm is None:
            registry = NpmRegistry(group.registry, env=ctx.env)
            user = ctx.effects.call(
                "npm",
                "whoami",
                lambda: registry.whoami(token),
                summary=f"verify the new token: GET {group.registry}-/whoami (npm is not "
                "installed)",
            )
            if user != group.user:
                raise StepError(f"the new token authenticates {user!r}, not {group.user!r}")
            return "GET /-/whoami (npm is not installed)"
        last = ""
        for attempt in range(3):
            if attempt:
                time.sleep(attempt)  # a registry may take a moment to accept a new token
            result = self._npm_whoami(npm, group, token)
            said = result.stdout.strip().splitlines()[-1:]
            if result.returncode == 0 and said == [group.user]:
                return "npm whoami"
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            last = ctx.effects.redactor.text(tail[0] if tail else f"exit {result.returncode}")
        raise StepError(f"`npm whoami` with the new token did not answer {group.user!r}: {last}")

    def _npm_whoami(self, npm: str, group: TokenGroup, token: str) -> CommandResult:
        ctx = self.ctx
        private = Path(tempfile.mkdtemp(prefix="runbook-npm-"))  # mode 0700
        try:
            userconfig = private / "npmrc"
            # the file names the token, npm reads it from the environment: a run killed while
            # npm runs leaves no token behind in the temporary directory
            lines = [
                *network_settings(ctx.env, ctx.home),
                f"{nerf_dart(group.registry)}:_authToken=${{{VERIFY_TOKEN_ENV}}}",
            ]
            fd = os.open(userconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            # `--prefix`: no project .npmrc (the target's, say) can override the private config
            argv = [npm, "whoami", "--registry", group.registry]
            argv += ["--userconfig", str(userconfig), "--prefix", str(private)]
            return ctx.effects.run(
                argv,
                cwd=ctx.target,
                env={**npm_env(ctx.env, private), VERIFY_TOKEN_ENV: token},
                timeout=self.timeout,
                reason="verify the new npm token (private temporary userconfig)",
            )
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _revoke_old(
        self, group: TokenGroup, registry: NpmRegistry, account: Basic | None, made: CreatedToken
    ) -> None:
        ctx, entry = self.ctx, group.entry
        assert entry is not None
        auth: Auth = account if made.readonly and account is not None else made.token
        old_id = entry.meta.get("old_token_id")
        key, asked = "", []
        try:
            rows = registry.list_tokens(auth)
            target = find_token(rows, group.old, exclude=[made.key]) if group.old else None
            if target is None and old_id:
                target = next((r for r in rows if r.key == old_id and r.key != made.key), None)
            if target is not None:
                key = target.key
                ctx.effects.call(
                    "npm",
                    "token:revoke",
                    lambda: self.with_otp(
                        group, lambda otp: registry.revoke_token(auth, key, otp=otp), asked
                    ),
                    summary=f"revoke the old token {group.shown_old} (id {key[:8]})",
                )
            # with only its id known, gone from the list means revoked (now or by an earlier run)
            revoked = registry.refused(group.old) if group.old else bool(old_id)
        except (NpmRegistryError, EffectError) as exc:
            raise StepError(
                f"the new npm token for {group.user} at {group.registry} is in place and works, "
                f"but revoking the old one failed: {_why(exc)}; rerun this step to retry, or "
                f"`npm token revoke ID --registry {group.registry}`"
            ) from None
        self._set_state(group, "done", old_revoked=revoked)
        new_fp = fingerprint(made.token)
        phase = "revoked" if revoked else "not-revoked"
        self.journal(phase, group, token_id=key or None)
        if not revoked:
            why = (
                "the registry still accepts it after revoking it"
                if key
                else f"{group.registry} does not list it (a login session token?)"
            )
            self.item(
                group,
                "revoke",
                f"revoke the old npm token {group.shown_old} of {group.user} by hand: {why}; "
                f"`npm token list --registry {group.registry}` then `npm token revoke ID`, "
                "`npm logout` with it, or change the account password",
            )
        for place in group.env_places:
            self.item(group, f"env-{place.name}", env_item(place, self.service, entry.name))
        self.rotated.append(
            {
                "registry": group.registry,
                "user": group.user,
                "old": group.old_fp,
                "new": new_fp,
                "keyring": f"{entry.service}/{entry.name}",
                "places": [p.shown for p in group.places + group.new_places],
                "old_revoked": revoked,
            }
        )

    def _roll_back(
        self,
        group: TokenGroup,
        registry: NpmRegistry,
        made: CreatedToken,
        account: Basic | None,
        rewritten: list[FileEdit],
        phase: str,
        error: BaseException,
    ) -> None:
        """Undo a rotation that failed before the old token was revoked; always raises.

        The files first: while one of them still holds the new token, that token is kept valid
        (and in the keyring) so nothing that reads the file breaks, and a rerun finishes the
        rotation with it."""
        ctx = self.ctx
        done: list[str] = []
        # the lines this run rewrote, and those an interrupted run had rewritten already
        back = rewritten + _edits(group.new_places, group.old, made.token)
        left = undo_edits(ctx.effects, back, reason="roll back: the old npm token")
        if back and not left:
            done.append(f"old token written back to {len({e.path for e in back})} file(s)")
        if left:
            self.journal(
                "rollback-incomplete", group, new=made.token, failed_while=phase, left=left
            )
            kept = f" (keyring {group.entry.service}/{group.entry.name})" if group.entry else ""
            raise StepError(
                f"npm token rotation for {group.user} at {group.registry} failed while {phase}: "
                f"{_why(error)}, and could not be rolled back fully: {'; '.join(left)}. The old "
                f"token {group.shown_old} still works; the new token {redact_value(made.token)} "
                f"is kept valid{kept}; rerun this step to finish the rotation with it"
            )
        auth: Auth = account if made.readonly and account is not None else made.token
        try:
            if not made.key:
                raise StepError("the registry gave no id for the new token")
            ctx.effects.call(
                "npm",
                "token:revoke",
                lambda: self.with_otp(
                    group, lambda otp: registry.revoke_token(auth, made.key, otp=otp), []
                ),
                summary=f"roll back: revoke the new token of {group.user}",
            )
            done.append("new token revoked")
        except (EffectError, StepError) as exc:
            left.append(
                f"revoke the new token (`npm token revoke {made.key[:8] or 'ID'} --registry "
                f"{group.registry}`): {_why(exc)}"
            )
        entry, vault = group.entry, self.vault
        if entry is not None and vault is not None:
            try:
                ctx.effects.call(
                    "keyring",
                    "delete",
                    lambda: vault.delete(entry.service, entry.name),
                    summary=f"roll back: forget {entry.service}/{entry.name}",
                )
                done.append("keyring entry deleted")
            except EffectError as exc:
                left.append(f"delete the keyring entry {entry.service}/{entry.name}: {_why(exc)}")
        self.journal(
            "rolled-back",
            group,
            new=made.token,
            failed_while=phase,
            error=_why(error),
            undone=done,
            left=left,
        )
        message = (
            f"npm token rotation for {group.user} at {group.registry} failed while {phase}: "
            f"{_why(error)}. Rolled back: {', '.join(done) or 'nothing'}; the old token stays "
            "in place"
        )
        if left:
            message += f". Still to do by hand: {'; '.join(left)}"
        raise StepError(message)


def _edits(places: list[Place], old: str, new: str) -> list[FileEdit]:
    """One edit per file: `old` becomes `new` on each place's line."""
    by_path: dict[Path, list[Replacement]] = {}
    for place in places:
        if place.path is not None:
            by_path.setdefault(place.path, []).append(Replacement(place.line or 0, old, new))
    return [FileEdit(path, tuple(reps)) for path, reps in by_path.items()]


def npm_env(env: Mapping[str, str], private: Path) -> dict[str, str]:
    """The caller's environment without npm settings (one could name another token), with npm's
    cache and logs inside the private directory."""
    keep = {f"npm_config_{s.replace('-', '_')}" for s in NETWORK_SETTINGS}
    out = {
        k: v for k, v in env.items() if not k.lower().startswith("npm_config_") or k.lower() in keep
    }
    out.update(
        npm_config_cache=str(private / "cache"),
        npm_config_logs_max="0",
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
    )
    return out


def network_settings(env: Mapping[str, str], home: Path) -> list[str]:
    """The user npmrc's lines that say how to reach a registry (CA, proxy); never auth."""
    configured = env.get("NPM_CONFIG_USERCONFIG") or env.get("npm_config_userconfig")
    userconfig = Path(configured) if configured else home / ".npmrc"
    try:
        text = read_text(userconfig)
    except (OSError, NotText):
        return []
    lines = []
    for line in text.splitlines():
        key, sep, _ = line.partition("=")
        if sep and key.strip().lower() in NETWORK_SETTINGS:
            lines.append(line.strip())
    return lines
