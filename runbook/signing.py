"""Signed journals: the head hash, signed with the operator's SSH key (`ssh-keygen -Y`).

A head hash proves a journal is whole only if it is kept somewhere else. `JOURNAL.sig` keeps it:
three lines naming the signed head, then an armored SSH signature (the `sshsig` format git uses
for its SSH-signed commits) over exactly those three lines, in the namespace `runbook-journal`:

    runbook journal signature v1
    entries: 57
    head: 3f5c...e1
    -----BEGIN SSH SIGNATURE-----
    ...
    -----END SSH SIGNATURE-----

Entries appended after signing (a note, say) leave the signature valid for the part it covers;
a journal cut short, or rewritten and re-hashed, no longer holds the signed head. Who signed is
decided by an `allowed_signers` file (see ssh-keygen(1), ALLOWED SIGNERS), as for git.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runbook.atomic import replace_atomically
from runbook.journal import verify
from runbook.safeio import read_regular

NAMESPACE = "runbook-journal"
MAGIC = "runbook journal signature v1"
SIGNATURE_LIMIT = 64 * 1024
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
_HEAD = re.compile(r"^head: ([0-9a-f]{64})$")
_ENTRIES = re.compile(r"^entries: ([1-9][0-9]{0,9})$")
_KEY = re.compile(r"with (\S+) key (SHA256:[A-Za-z0-9+/=]+)")
TIMEOUT = 120  # seconds: signing may wait for a passphrase or a hardware key touch


class SigningError(Exception):
    """Signing or checking could not be done (no key, no ssh-keygen, a malformed file)."""


def signature_path(journal: Path) -> Path:
    """Where the signature of `journal` lives: beside it, `JOURNAL.sig`."""
    return journal.with_name(journal.name + ".sig")


def message(head: str, entries: int) -> bytes:
    """The exact bytes that are signed."""
    return f"{MAGIC}\nentries: {entries}\nhead: {head}\n".encode()


@dataclass(frozen=True)
class Signature:
    """A parsed `.sig` file."""

    head: str
    entries: int
    armor: str  # the armored SSH signature, BEGIN to END lines, newline-terminated

    @property
    def message(self) -> bytes:
        return message(self.head, self.entries)

    def text(self) -> str:
        return self.message.decode() + self.armor


def parse(text: str, where: str) -> Signature:
    """Read a `.sig` file's text; `SigningError` naming the line when it is not one."""
    lines = text.split("\n")
    if lines[0] != MAGIC:
        raise SigningError(f"{where}:1: not a runbook journal signature (expected '{MAGIC}')")
    entries = _ENTRIES.match(lines[1]) if len(lines) > 1 else None
    if not entries:
        raise SigningError(f"{where}:2: expected 'entries: N'")
    head = _HEAD.match(lines[2]) if len(lines) > 2 else None
    if not head:
        raise SigningError(f"{where}:3: expected 'head: ' and 64 hex digits")
    armor = [line.rstrip("\r") for line in lines[3:]]
    while armor and not armor[-1]:
        armor.pop()
    if len(armor) < 3 or armor[0] != ARMOR_BEGIN or armor[-1] != ARMOR_END:
        raise SigningError(f"{where}:4: expected an armored SSH signature ({ARMOR_BEGIN})")
    return Signature(head[1], int(entries[1]), "\n".join(armor) + "\n")


def read(path: Path) -> Signature:
    """Parse the signature file at `path` (a regular file of at most 64 KiB)."""
    try:
        raw = read_regular(path, limit=SIGNATURE_LIMIT)
    except OSError as exc:
        raise SigningError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SigningError(f"{path}: not UTF-8 text") from None
    return parse(text, str(path))


def _ssh_keygen(
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    interactive: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run `ssh-keygen ARGS`; interactive runs leave stdin to the terminal (a passphrase)."""
    try:
        return subprocess.run(
            ["ssh-keygen", *args],
            input=stdin,
            stdin=None if stdin is not None or interactive else subprocess.DEVNULL,
            capture_output=True,
            env=dict(os.environ if env is None else env),
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise SigningError(
            "ssh-keygen is not installed: journals are signed with OpenSSH's `ssh-keygen -Y`"
        ) from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"ssh-keygen did not finish within {TIMEOUT} s") from None


def _reason(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if not line.startswith("Signing file")]
    return "; ".join(lines) or f"ssh-keygen exited with {proc.returncode}"


def default_key(env: Mapping[str, str]) -> Path:
    """`~/.ssh/id_ed25519` of the user (HOME from `env`)."""
    return Path(env.get("HOME") or Path.home()) / ".ssh" / "id_ed25519"


@dataclass(frozen=True)
class Signed:
    path: Path
    head: str
    entries: int
    key: str  # "ED25519 SHA256:..." of the signing key
    replaced: Signature | None  # the signature that was there before, if any


def sign(journal: Path, key: Path, *, env: Mapping[str, str] | None = None) -> Signed:
    """Sign the head of `journal` with `key`, writing `JOURNAL.sig` atomically.

    A broken chain is refused (a signature would vouch for it). `key` may be a private key, or a
    public key whose private half is in ssh-agent (as for git's `user.signingKey`).
    """
    result = verify(journal)
    if not result.ok:
        raise SigningError(f"{journal}: refusing to sign a broken journal: {result}")
    if result.entries == 0:
        raise SigningError(f"{journal}: the journal is empty: nothing to sign")
    if not key.is_file():
        raise SigningError(f"no SSH key at {key}; give one with --key")
    target = signature_path(journal)
    previous = None
    if target.exists():
        try:
            previous = read(target)
        except SigningError:
            previous = None
    payload = message(result.head, result.entries)
    with tempfile.TemporaryDirectory(prefix="runbook-sign-") as scratch:
        msg = Path(scratch) / "head"
        msg.write_bytes(payload)
        proc = _ssh_keygen(["-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(msg)], env=env)
        sig = msg.with_name("head.sig")
        if proc.returncode != 0 or not sig.is_file():
            raise SigningError(f"ssh-keygen could not sign with {key}: {_reason(proc)}")
        armor = sig.read_text(encoding="ascii")
    signature = parse(payload.decode() + armor, str(target))
    replace_atomically(target, lambda tmp: Path(tmp).write_text(signature.text(), "utf-8"))
    fingerprint = key_of(signature, env=env)
    return Signed(target, result.head, result.entries, fingerprint, previous)


def key_of(signature: Signature, *, env: Mapping[str, str] | None = None) -> str:
    """`TYPE SHA256:...` of the key that made `signature`, checked against its message (not
    against any list of signers); `SigningError` when the signature does not hold."""
    with tempfile.TemporaryDirectory(prefix="runbook-sig-") as scratch:
        sig = Path(scratch) / "sig"
        sig.write_text(signature.armor, encoding="ascii")
        proc = _ssh_keygen(
            ["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)],
            stdin=signature.message,
            env=env,
        )
    found = _KEY.search((proc.stdout + proc.stderr).decode("utf-8", "replace"))
    if proc.returncode != 0 or not found:
        raise SigningError(f"the signature does not match its head: {_reason(proc)}")
    return f"{found[1]} {found[2]}"


Status = Literal["verified", "valid", "invalid"]
Coverage = Literal["whole", "prefix", "missing"]


@dataclass(frozen=True)
class Check:
    """What a signature says about one journal.

    `status`: `verified` (a good signature by a principal of the allowed signers), `valid` (a
    good signature, but no allowed signers were given to say whose), `invalid` (anything else).
    `coverage`: the signed head is the journal's head (`whole`), an earlier entry (`prefix`:
    entries were added after signing), or nowhere in it (`missing`: cut short or rewritten).
    """

    status: Status
    coverage: Coverage
    head: str
    entries: int
    signer: str = ""  # the principal(s) from the allowed signers file
    key: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "valid") and self.coverage != "missing"

    def describe(self) -> str:
        """One line for people."""
        if self.status == "invalid":
            return f"signature INVALID: {self.reason}"
        who = f"by {self.signer}" if self.signer else "signer not checked (no allowed signers)"
        text = f"signed {who} ({self.key}), head {self.head[:12]}, {self.entries} entries"
        if self.coverage == "prefix":
            text += "; later entries are not covered"
        elif self.coverage == "missing":
            text += "; the journal no longer holds this head (cut short or rewritten)"
        return text


def coverage(hashes: Sequence[str], signature: Signature) -> Coverage:
    """Where the signed head sits in a chain given as its entry hashes."""
    at = signature.entries - 1
    if 0 <= at < len(hashes) and hashes[at] == signature.head:
        return "whole" if at == len(hashes) - 1 else "prefix"
    return "missing"


def check(
    hashes: Sequence[str],
    signature: Signature,
    allowed_signers: Path | None,
    *,
    env: Mapping[str, str] | None = None,
) -> Check:
    """Check `signature` against a verified chain (its entry hashes, in order) and, given an
    allowed signers file, against who may sign."""
    where = coverage(hashes, signature)
    base = {"coverage": where, "head": signature.head, "entries": signature.entries}
    try:
        key = key_of(signature, env=env)
    except SigningError as exc:
        return Check("invalid", **base, reason=str(exc))
    if allowed_signers is None:
        return Check("valid", **base, key=key)
    with tempfile.TemporaryDirectory(prefix="runbook-sig-") as scratch:
        sig = Path(scratch) / "sig"
        sig.write_text(signature.armor, encoding="ascii")
        found = _ssh_keygen(
            ["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], env=env
        )
        principals = found.stdout.decode("utf-8", "replace").split()
        if found.returncode != 0 or not principals:
            reason = f"{key} is not among the allowed signers in {allowed_signers}"
            return Check("invalid", **base, key=key, reason=reason)
        good = []
        for principal in principals:
            args = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal]
            proc = _ssh_keygen(
                [*args, "-n", NAMESPACE, "-s", str(sig)],
                stdin=signature.message,
                env=env,
            )
            if proc.returncode == 0:
                good.append(principal)
        if not good:
            reason = f"not valid for {', '.join(principals)} in {allowed_signers}: {_reason(proc)}"
            return Check("invalid", **base, key=key, reason=reason)
    return Check("verified", **base, signer=", ".join(good), key=key)
