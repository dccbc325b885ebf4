"""Every credential a developer machine or a repository holds, in one pass.

`discover()` reads project directories (`targets`), the files under a HOME (`home`), a process
environment (`env`) and the entries runbook stored in the keyring (`vault`); each is optional.
Nothing here raises on a bad file: unreadable or malformed files become `Discovery.problems`.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from runbook.redact import fingerprint
from steps.credentials.model import Credential, CredentialType, Discovery, Location
from steps.credentials.patterns import token_type
from steps.credentials.sources import azure, docker, gcp, git, github, revoke, ssh
from steps.credentials.sources.assignments import from_env
from steps.credentials.sources.aws import aws_files, scan_aws_file
from steps.credentials.sources.common import Collector
from steps.credentials.sources.dotenv import is_dotenv, scan_dotenv
from steps.credentials.sources.npm import (
    NpmContext,
    read_user_registries,
    scan_npmrc,
    scan_yarnrc,
    user_npmrc,
)
from steps.scan.walk import HOST_DIRS

if TYPE_CHECKING:
    from runbook.step import StepContext
    from steps.credentials.vault import StoredEntry, Vault

# never descended: dependencies, git internals, virtualenvs, tool caches and HOME's tool folders
PRUNE = frozenset(
    {
        "node_modules",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".yarn",
        *HOST_DIRS,
    }
)
CREDENTIAL_TYPES = frozenset(get_args(CredentialType))


@dataclass
class ProjectFiles:
    """Credential files found under the targets."""

    npmrc: list[Path] = field(default_factory=list)
    yarnrc: list[Path] = field(default_factory=list)
    dotenv: list[Path] = field(default_factory=list)
    links: list[Path] = field(default_factory=list)  # symlinks named like one: not followed


def _sort(path: Path, files: ProjectFiles) -> bool:
    name = path.name
    if name == ".npmrc":
        files.npmrc.append(path)
    elif name == ".yarnrc.yml":
        files.yarnrc.append(path)
    elif is_dotenv(name):
        files.dotenv.append(path)
    else:
        return False
    return True


def _named(path: Path, files: ProjectFiles) -> None:
    """A file named on the command line under another name (`npmrc`, `work.npmrc`, a copy of a
    `.yarnrc.yml`): read by the format its name suggests, else as a `.env` file."""
    name = path.name.lower()
    if name.endswith("npmrc"):
        files.npmrc.append(path)
    elif name.endswith("yarnrc.yml"):
        files.yarnrc.append(path)
    else:
        files.dotenv.append(path)


def _irregular(entry: os.DirEntry[str]) -> str:
    """What a directory entry that is neither a directory, a regular file nor a symlink is."""
    mode = entry.stat(follow_symlinks=False).st_mode
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"))
    kind = next((name for test, name in kinds if test(mode)), "a device")
    return f"is {kind}, not a regular file"


def walk_targets(targets: Sequence[Path], collector: Collector) -> ProjectFiles:
    """`.env*`, `.npmrc` and `.yarnrc.yml` under each target. A symlink inside a target is never
    followed (a repository could point one anywhere); one named on the command line is. A FIFO or
    device with such a name is a problem, never opened."""
    files = ProjectFiles()
    stack = [str(t) for t in reversed(targets)]
    seen: set[tuple[int, int]] = set()
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current, follow_symlinks=False)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if not os.path.isdir(current):
                if not _sort(Path(current), files):
                    _named(Path(current), files)
                continue
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            collector.problem(current, f"cannot read: {(exc.strerror or str(exc)).lower()}")
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in PRUNE:
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    _sort(Path(entry.path), files)
                elif entry.is_symlink():
                    if _sort(Path(entry.path), ProjectFiles()):
                        files.links.append(Path(entry.path))
                elif not entry.is_symlink() and _sort(Path(entry.path), ProjectFiles()):
                    # a FIFO or device named like a credential file: never opened, but said
                    collector.problem(entry.path, f"cannot read: {_irregular(entry)}")
            except OSError:
                continue
        stack.extend(reversed(subdirs))
    return files


def discover(
    *,
    targets: Sequence[Path] = (),
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    vault: Vault | None = None,
) -> Discovery:
    """Credentials in project directories, HOME's files, the environment and runbook's keyring.

    `home` set means host sources (npmrc, yarnrc, AWS, gh, git, docker, SSH); `env` set means the
    environment is judged too (and its `NPM_CONFIG_USERCONFIG`, `AWS_*_FILE`... locate the files).
    """
    collector = Collector(home)
    npm = NpmContext()
    settings = dict(env or {})
    files = walk_targets([Path(t) for t in targets], collector)
    if home is not None:
        path = user_npmrc(home, settings)
        ini = read_user_registries(path, collector, npm)
        if ini is not None and collector.first_visit(path):
            scan_npmrc(path, collector, npm, ini)
    for path in files.npmrc:
        if collector.first_visit(path):
            scan_npmrc(path, collector, npm)
    yarnrcs = ([home / ".yarnrc.yml"] if home is not None else []) + files.yarnrc
    for path in yarnrcs:
        if collector.first_visit(path):
            scan_yarnrc(path, collector, npm)
    if home is not None:
        for path, kind in aws_files(home, settings):
            if collector.first_visit(path):
                scan_aws_file(path, kind, collector, home)
        _host_tools(home, settings, collector)
    for path in files.dotenv:
        if collector.first_visit(path):
            scan_dotenv(path, collector, npm)
    for link in files.links:
        _unfollowed(link, collector)
    if env is not None:
        from_env(env, collector, npm)
    if vault is not None:
        _from_vault(vault, collector)
    return collector.result()


def _unfollowed(link: Path, collector: Collector) -> None:
    """A credential-named symlink inside a target is not followed, but never passed over in
    silence: unless the file it points to was read anyway (HOME's `~/.npmrc`, say) or there is
    nothing there, it is a problem naming where it points."""
    try:
        pointed = os.readlink(link)
        st = os.stat(link)
    except OSError:
        return  # a link to nothing holds no credential
    if collector.was_read(st):
        return
    collector.problem(
        link,
        f"not read: a symlink (to {pointed}) inside the target is not followed; check the file "
        f"it points to with `runbook secrets {os.path.realpath(link)}`",
    )


def _host_tools(home: Path, env: dict[str, str], collector: Collector) -> None:
    """gh, git, docker, SSH, Google Cloud and Azure."""
    github.scan(home, env, collector)
    git.scan(home, env, collector)
    docker.scan(home, env, collector)
    ssh.scan(home, collector)
    gcp.scan(home, env, collector)
    azure.scan(home, env, collector)


# -- the keyring ---------------------------------------------------------------------------------
def _from_vault(vault: Vault, collector: Collector) -> None:
    """Entries runbook stored report as `rotated`, and so does the same value found elsewhere."""
    try:
        entries = vault.entries()
    except Exception as exc:  # a keyring that fails on read: the index is just unavailable
        collector.problem("keyring", f"cannot read runbook's index: {type(exc).__name__}")
        return
    fingerprints: dict[str, StoredEntry] = {}
    stored_values: dict[str, StoredEntry] = {}
    found: list[Credential] = []
    for entry in entries:
        fingerprints[entry.fingerprint] = entry
        try:
            value = vault.get(entry.service, entry.name)
        except Exception:
            value = None
        if not value:
            collector.problem(
                f"keyring {entry.service} {entry.name}",
                "listed in runbook's index but not in the keyring (deleted by hand?)",
            )
            continue
        credential = _stored_credential(entry, value)
        for secret in credential.secret_values():
            stored_values[secret] = entry
        found.append(credential)
    for credential in collector.discovery.credentials:
        entry = _match(credential, fingerprints, stored_values)
        if entry is not None:
            credential.rotation = "rotated"
            credential.detail["rotated_by"] = f"runbook (keyring {entry.service} {entry.name})"
    collector.discovery.credentials.extend(found)


def _match(
    credential: Credential,
    fingerprints: dict[str, StoredEntry],
    stored_values: dict[str, StoredEntry],
) -> StoredEntry | None:
    """The stored entry whose fingerprint (or value) is this credential's value or a companion's:
    the new key runbook put there."""
    for secret in credential.secret_values():
        entry = fingerprints.get(fingerprint(secret)) or stored_values.get(secret)
        if entry is not None:
            return entry
    return None


def _stored_credential(entry: StoredEntry, raw: str) -> Credential:
    """A keyring entry as a credential. A JSON object value is split: its token-shaped (or
    first) string is the value, the other strings its companions."""
    value, companions = raw, {}
    try:
        blob = json.loads(raw)
    except ValueError:
        blob = None
    if isinstance(blob, dict):
        strings = {k: v for k, v in blob.items() if isinstance(v, str) and v}
        if strings:
            key = next((k for k, v in strings.items() if token_type(v)), next(iter(strings)))
            value = strings.pop(key)
            companions = strings
    kind = entry.type if entry.type in CREDENTIAL_TYPES else None
    if kind is None:
        shaped = token_type(value)
        kind = shaped[0] if shaped else "generic-secret"
        if entry.type.startswith("aws"):
            kind = "aws-access-key"
        elif entry.type.startswith("npm"):
            kind = "npm-token"
    meta = {k: str(v) for k, v in entry.meta.items() if isinstance(v, str | int | float | bool)}
    detail = {
        **meta,
        "service": entry.service,
        "stored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.created)),
    }
    return Credential(
        kind,  # type: ignore[arg-type]
        Location("keyring", entry.name, section=entry.service),
        value,
        "rotated",
        revoke.for_type(kind, value, registry=meta.get("registry", ""), name=entry.name),
        detail,
        companions,
    )


def discover_for_step(
    ctx: StepContext, *, host: bool = True, paths: Sequence[str] = ()
) -> Discovery:
    """Discovery for a step: the target (plus `paths` relative to it), and with `host` HOME, the
    environment and runbook's keyring. Every value found is registered with the redactor."""
    from steps.credentials.vault import Vault

    targets = [ctx.target, *(ctx.under_target(p, "paths") for p in paths)]
    vault = None
    if host:
        try:
            vault = Vault.open(ctx.env, allow_insecure=True)
        except Exception:  # no usable keyring: nothing stored there to report
            vault = None
    missing = [t for t in targets if not t.exists()]
    found = discover(
        targets=[t for t in targets if t.exists()],
        home=ctx.home if host else None,
        env=ctx.env if host else None,
        vault=vault,
    )
    for path in missing:
        found.problems.append((str(path), "no such file or directory"))
    ctx.keep_secret(*found.secret_values())
    return found
