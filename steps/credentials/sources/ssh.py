"""SSH private keys in ~/.ssh: any regular file that starts with a `-----BEGIN ... PRIVATE
KEY-----` block, whatever its name. Whether it has a passphrase and the public key's SHA256
fingerprint (what GitHub's key page shows) go into the detail."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
import struct
from pathlib import Path

from runbook.safeio import ReadRefused, open_regular, read_regular
from steps.credentials.model import Credential, Location
from steps.credentials.sources import revoke
from steps.credentials.sources.common import Collector

BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY-----(?P<body>.*?)"
    r"-----END [A-Z0-9 ]*PRIVATE KEY-----",
    re.S,
)
MAX_KEY_BYTES = 256 * 1024


def scan(home: Path, collector: Collector) -> None:
    """Every key-shaped file in ~/.ssh. A symlink is followed (dotfile managers link keys); a
    socket (ssh's ControlMaster) is passed over; a FIFO or device is a problem, never read."""
    folder = home / ".ssh"
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return
    except OSError as exc:
        collector.problem(folder, f"cannot read: {(exc.strerror or str(exc)).lower()}")
        return
    for entry in entries:
        if entry.name.endswith(".pub"):
            continue
        try:
            mode = os.stat(entry.path).st_mode  # the link's target, for a symlink
        except OSError:
            continue  # a symlink to nothing, or gone meanwhile
        if stat.S_ISDIR(mode) or stat.S_ISSOCK(mode):
            continue
        try:
            with open_regular(entry.path, follow_symlinks=True) as handle:
                head = handle.read(64).lstrip()
                size = os.fstat(handle.fileno()).st_size
        except ReadRefused as exc:
            collector.problem(entry.path, f"cannot read: {exc.reason}")
            continue
        except OSError as exc:
            collector.problem(entry.path, f"cannot read: {(exc.strerror or str(exc)).lower()}")
            continue
        if not head.startswith(b"-----BEGIN ") or b"PRIVATE KEY-----" not in head:
            continue
        path = Path(entry.path)
        if size > MAX_KEY_BYTES:
            collector.problem(path, f"a private key file of {size} bytes: too big, not read")
            continue
        if collector.first_visit(path):
            scan_key(path, collector)


def scan_key(path: Path, collector: Collector) -> None:
    text = collector.read(path)
    if text is None:
        return
    match = BLOCK.search(text)
    if match is None:
        collector.problem(path, "a private key that has no END line (truncated?)", 1)
        value = text.strip()
        detail = {"passphrase": "unknown"}
    else:
        value = match.group(0)
        detail = describe(match.group("label").strip(), match.group("body"), path)
    collector.add(
        Credential(
            "private-key",
            Location("file", path.name, path, text[: text.find("-----BEGIN")].count("\n") + 1),
            value,
            "manual",
            revoke.SSH_KEYS,
            detail,
        )
    )


def describe(label: str, body: str, path: Path) -> dict[str, str]:
    """Format, passphrase (yes/no/unknown), and key type and fingerprint when readable."""
    detail: dict[str, str] = {}
    blob = None
    if label == "OPENSSH":
        detail["format"] = "openssh"
        parsed = _openssh(body)
        if parsed is None:
            detail["passphrase"] = "unknown"
        else:
            cipher, blob = parsed
            detail["passphrase"] = "no" if cipher == "none" else "yes"
    elif label == "ENCRYPTED":
        detail["format"], detail["passphrase"] = "pkcs8", "yes"
    else:
        detail["format"] = "pkcs8" if not label else f"pem ({label.lower()})"
        detail["passphrase"] = "yes" if "Proc-Type: 4,ENCRYPTED" in body else "no"
    if blob is None:
        blob = _public_blob(path.with_name(path.name + ".pub"))
    if blob:
        detail["key_type"] = _string(blob, 0)[0].decode("ascii", "replace")
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        detail["public_key"] = f"SHA256:{digest}"
    return detail


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack(">I", data[offset : offset + 4])
    start = offset + 4
    if start + length > len(data):
        raise ValueError("truncated")
    return data[start : start + length], start + length


def _openssh(body: str) -> tuple[str, bytes] | None:
    """(cipher name, public key blob) of an openssh-key-v1 key; both are stored unencrypted."""
    try:
        data = base64.b64decode("".join(body.split()))
        magic = b"openssh-key-v1\0"
        if not data.startswith(magic):
            return None
        cipher, offset = _string(data, len(magic))
        _kdf, offset = _string(data, offset)
        _options, offset = _string(data, offset)
        offset += 4  # number of keys
        public, _ = _string(data, offset)
        return cipher.decode("ascii", "replace"), public
    except (binascii.Error, ValueError, struct.error):
        return None


def _public_blob(path: Path) -> bytes | None:
    try:
        text = read_regular(path, limit=MAX_KEY_BYTES, follow_symlinks=True).decode("utf-8")
        fields = text.split()
        return base64.b64decode(fields[1]) if len(fields) >= 2 else None
    except (OSError, UnicodeDecodeError, binascii.Error, ValueError):
        return None
