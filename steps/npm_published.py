"""`review_npm_publishes`: what was published in your name while your npm token was exposed.

A worm that steals an npm token republishes the victim's own packages with its payload (Shai-Hulud
did it to every package a stolen token could publish). For each npm token found (the target's
`.npmrc` and `.yarnrc.yml`, and with `host` the user's npmrc and the environment), this step asks
the token's registry:

1. who the token is (`GET /-/whoami`);
2. which packages that user can publish: the registry's access list (`GET /-/user/USER/package`,
   what `npm access list packages USER` reads) or, when the registry has none, a search by
   maintainer (`/-/v1/search?text=maintainer:USER`); plus the non-private packages the target
   itself defines and the step's `packages`. A registry that says who maintains a package
   (`maintainers`, each version's `_npmUser`) drops the ones that are not the user's;
3. which versions of those packages were published inside the incident window (the packument's
   `time`).

Each such version is a finding to review (`at-risk`; `compromised` when its install script runs
one of the incident's payload files) and a checklist item with the exact commands to deprecate it.
The step only reads: the registry calls are GETs with the token, which never leaves the process
except to its own registry and is never shown.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field

from runbook.safeio import MANIFEST_LIMIT
from runbook.step import (
    Action,
    Finding,
    Plan,
    StepContext,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.credentials.model import Credential
from steps.credentials.npm_registry import NpmRegistry, NpmRegistryError, TokenRefused
from steps.manual import ask

KIND = "npm-publish"
SEARCH_PAGE = 250
SEARCH_PAGES = 20  # 5,000 packages: more than any one maintainer has
_SCRIPTS = ("preinstall", "install", "postinstall", "prepare")
_NOT_VERSIONS = {"created", "modified", "unpublished"}


class ReviewNpmPublishesParams(StepParams):
    host: bool = Field(
        True, description="Also the user's npmrc, `~/.yarnrc.yml` and the environment's tokens."
    )
    packages: list[str] = Field(
        default_factory=list,
        description="More packages to check (your own, when the registry cannot list them).",
    )
    since: AwareDatetime | None = Field(
        None, description="Start of the window (default: incident.window.start)."
    )
    until: AwareDatetime | None = Field(
        None, description="End of the window (default: incident.window.end)."
    )
    timeout: float = Field(30, gt=0, description="Seconds per registry call.")


class PublishRegistry(NpmRegistry):
    """The read calls this step makes, on top of the token client's transport."""

    def access_list(self, token: str, user: str) -> list[str] | None:
        """Packages `user` can publish (read-write), or None when the registry has no such list."""
        path = f"-/user/{urllib.parse.quote(user, safe='')}/package"
        try:
            answer = self._call("GET", path, token, "list the packages the user can publish")
        except NpmRegistryError as exc:
            if exc.status in (404, 405, 501):
                return None
            raise
        if not isinstance(answer, dict):
            return None
        return sorted(name for name, access in answer.items() if "write" in str(access))

    def maintained(self, token: str, user: str) -> list[str]:
        """Packages a search by maintainer finds (registries that do not support the qualifier
        find none)."""
        names: list[str] = []
        for page in range(SEARCH_PAGES):
            query = urllib.parse.urlencode(
                {"text": f"maintainer:{user}", "size": SEARCH_PAGE, "from": page * SEARCH_PAGE}
            )
            answer = self._call("GET", f"-/v1/search?{query}", token, "search by maintainer")
            objects = answer.get("objects", []) if isinstance(answer, dict) else []
            for obj in objects:
                package = obj.get("package") if isinstance(obj, dict) else None
                if isinstance(package, dict) and _maintained_by(package.get("maintainers"), user):
                    names.append(str(package.get("name")))
            if len(objects) < SEARCH_PAGE:
                break
        return sorted(set(names))

    def packument(self, token: str, name: str) -> dict[str, Any]:
        answer = self._call("GET", urllib.parse.quote(name, safe="@"), token, f"read {name}")
        return answer if isinstance(answer, dict) else {}


def _maintained_by(maintainers: Any, user: str) -> bool:
    if not isinstance(maintainers, list):
        return False
    for person in maintainers:
        name = person.get("name") or person.get("username") if isinstance(person, dict) else person
        if isinstance(name, str) and name == user:
            return True
    return False


class ReviewNpmPublishes(StepKind):
    """Versions of the user's own packages published while the token was exposed."""

    name = "review_npm_publishes"
    Params = ReviewNpmPublishesParams
    summary = "List the versions your npm token published during the incident window."
    params: ReviewNpmPublishesParams

    def plan(self, ctx: StepContext) -> Plan:
        from steps.credentials.discover import discover_for_step

        window = ctx.playbook.incident.window
        since = self.params.since or window.start
        until = self.params.until or window.end
        payloads = {p.name for p in ctx.playbook.incident.indicators.package_files}
        discovery = discover_for_step(ctx, host=self.params.host)
        tokens = _tokens(discovery.credentials)
        own = _own_packages(ctx.target) + list(self.params.packages)
        findings: list[Finding] = []
        actions: list[Action] = []
        notes: list[str] = []
        if not tokens:
            notes.append("no npm token found: no registry to ask what was published in your name")
        for registry_url, token in tokens:
            registry = PublishRegistry(registry_url, env=ctx.env, timeout=self.params.timeout)
            review = _review(registry, token, own, since, until, payloads)
            findings += review.findings
            actions += review.actions
            notes += review.notes
        shown = f"{_iso(since)} to {_iso(until)}"
        notes.insert(0, f"window: versions published from {shown}")
        return Plan(
            findings=findings,
            actions=actions,
            notes=notes,
            fingerprint=fingerprint_of(
                self.name, [f.model_dump() for f in findings], [a.summary for a in actions]
            ),
        )

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        return plan.fingerprint  # a review changes nothing: what it saw cannot go stale

    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        answers = {}
        for action in plan.actions:
            answers[action.detail["item"]] = ask(ctx, action.detail["item"], action.summary)
        unchecked = sum(1 for f in plan.findings if f.severity == "unknown")
        data = {"unchecked": unchecked} if unchecked else {}
        if not answers:
            summary = "nothing was published in your name during the window"
            if unchecked:
                summary = f"could not check {unchecked} package(s): see the notes"
            return StepResult("succeeded", summary, data=data)
        done = sum(1 for a in answers.values() if a == "done")
        summary = f"{done}/{len(answers)} published versions reviewed"
        outcome = "succeeded" if done == len(answers) else "outstanding"
        return StepResult(outcome, summary, data=data)


class _Review:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.actions: list[Action] = []
        self.notes: list[str] = []


def _review(
    registry: PublishRegistry,
    token: str,
    own: list[str],
    since: datetime,
    until: datetime,
    payloads: set[str],
) -> _Review:
    out = _Review()
    url = registry.url
    try:
        user = registry.whoami(token)
    except TokenRefused as exc:
        out.notes.append(
            f"{url}: the token found is refused ({exc.reason}): already revoked? List what was "
            f"published with a working login: `npm access list packages --registry {url}`"
        )
        return out
    except NpmRegistryError as exc:
        out.findings.append(_unknown(url, f"cannot ask {url} who the token is: {exc}"))
        return out
    try:
        listed = registry.access_list(token, user)
        how = "its access list"
        if listed is None:
            listed, how = registry.maintained(token, user), "a search by maintainer"
    except NpmRegistryError as exc:
        listed, how = [], ""
        out.findings.append(_unknown(url, f"cannot list the packages {user} can publish: {exc}"))
    names = sorted(set(listed) | set(own))
    out.notes.append(
        f"{url}: the token is {user}'s; {len(listed)} package(s) from {how or 'the registry'}"
        + (f", {len(set(own) - set(listed))} more from the target and the step" if own else "")
    )
    if not listed and not own:
        out.notes.append(
            f"{url} lists no package {user} can publish; if that is wrong, name them in the "
            f"step's `packages` (see `npm access list packages {user} --registry {url}`)"
        )
    for name in names:
        try:
            doc = registry.packument(token, name)
        except NpmRegistryError as exc:
            if exc.status == 404:
                continue  # a package of the target that was never published here
            out.findings.append(_unknown(url, f"cannot read {name}: {exc}", name))
            continue
        out_of_user = _owners(doc) and user not in _owners(doc)
        if out_of_user and name not in listed:
            out.notes.append(f"{name}: published by others ({', '.join(sorted(_owners(doc)))})")
            continue
        _versions_in_window(out, url, user, name, doc, since, until, payloads)
    return out


def _versions_in_window(
    out: _Review,
    url: str,
    user: str,
    name: str,
    doc: dict[str, Any],
    since: datetime,
    until: datetime,
    payloads: set[str],
) -> None:
    times = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    versions = doc.get("versions") if isinstance(doc.get("versions"), dict) else {}
    for version, stamp in sorted(times.items(), key=lambda kv: str(kv[1])):
        if version in _NOT_VERSIONS:
            continue
        moment = _parse(stamp)
        if moment is None or not since <= moment <= until:
            continue
        manifest = versions.get(version) if isinstance(versions.get(version), dict) else {}
        publisher = manifest.get("_npmUser") if isinstance(manifest.get("_npmUser"), dict) else {}
        by = publisher.get("name") if isinstance(publisher.get("name"), str) else None
        if by and by != user:
            continue  # another maintainer's release: not this token's doing
        runs = _payload_scripts(manifest, payloads)
        gone = "" if version in versions else " (since unpublished)"
        if runs:
            severity, why = "compromised", f"its {runs} runs the incident's payload file"
        else:
            severity, why = "at-risk", "published while the token was exposed"
        out.findings.append(
            Finding(
                kind=KIND,
                severity=severity,
                path=url + urllib.parse.quote(name, safe="@"),
                package=name,
                version=version,
                message=f"{name}@{version} was published to {url} at {_iso(moment)}{gone}: "
                f"{why}. Check that it is a release you made",
            )
        )
        item = f"{_slug(name)}-{_slug(version)}"
        out.actions.append(
            Action(
                kind="manual",
                summary=f"Check {name}@{version} ({_iso(moment)}): if you did not release it, "
                f'`npm deprecate {name}@{version} "compromised release, do not use" '
                f"--registry {url}`, ask the registry to remove it (npm: "
                "https://www.npmjs.com/support), and publish a clean version",
                detail={"item": item, "package": name, "version": version},
            )
        )


def _payload_scripts(manifest: dict[str, Any], payloads: set[str]) -> str:
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    for hook in _SCRIPTS:
        command = scripts.get(hook)
        if isinstance(command, str) and any(p in command for p in payloads):
            return f"{hook} script (`{command[:80]}`)"
    return ""


def _owners(doc: dict[str, Any]) -> set[str]:
    """Who the registry says maintains a package (empty: it does not say)."""
    owners = set()
    for person in doc.get("maintainers") or []:
        name = person.get("name") if isinstance(person, dict) else person
        if isinstance(name, str) and name:
            owners.add(name)
    return owners


def _tokens(credentials: list[Credential]) -> list[tuple[str, str]]:
    """(registry, token) once each: the same token found in two files is asked about once."""
    seen: dict[tuple[str, str], None] = {}
    for cred in credentials:
        if cred.type != "npm-token" or cred.detail.get("auth") == "basic":
            continue
        registry = cred.detail.get("registry") or "https://registry.npmjs.org/"
        seen.setdefault((registry, cred.value), None)
    return list(seen)


def _own_packages(target: Path) -> list[str]:
    """The names of the non-private packages the target defines (its root and workspaces)."""
    from steps.scan.reading import read_file
    from steps.scan.walk import walk

    names = []
    for path in walk([target]).manifests:
        try:
            doc = json.loads(read_file(path, limit=MANIFEST_LIMIT))
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("name"), str) and not doc.get("private"):
            names.append(doc["name"])
    return names


def _unknown(url: str, message: str, package: str | None = None) -> Finding:
    return Finding(kind=KIND, severity="unknown", path=url, package=package, message=message)


def _parse(value: Any) -> datetime | None:
    from steps.osv.records import parse_time

    return parse_time(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "x"
