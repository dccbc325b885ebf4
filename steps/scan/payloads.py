"""Payload files inside installed packages (`indicators.package_files`): the `bundle.js`,
`setup_bun.js` or `bun_environment.js` a worm adds next to a package's `package.json`.

Every package directory of a `node_modules` tree is looked at (nested, scoped, pnpm's `.pnpm`,
yarn's unplugged folders): one `lstat` per payload name, so a tree of a thousand packages costs a
few milliseconds. A file with a payload name is hashed (bounded, never through a symlink) and
judged by the playbook's entry: a listed digest is evidence; a name only the malware uses is
evidence on its own or a new variant to review; a common name with another digest is nothing.
What cannot be compared (a FIFO or a symlink with a payload name, a file that cannot be read) is
an `unknown` finding: the scan is then not clean.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from runbook.models import PackageFile, Severity
from runbook.safeio import MANIFEST_LIMIT, MiB, open_regular
from runbook.step import Finding
from steps.scan.installed import listing, real_dir
from steps.scan.reading import not_regular, read_file, why_unreadable

KIND = "payload"
# The payloads seen so far are a few MiB (bundle.js 3.6 MiB, bun_environment.js about 10 MiB).
PAYLOAD_LIMIT = 64 * MiB


def sha256_of(path: str | os.PathLike[str], limit: int = PAYLOAD_LIMIT) -> str:
    """The SHA-256 of a regular file (not through a symlink, at most `limit` bytes); OSError."""
    digest = hashlib.sha256()
    size = 0
    with open_regular(path, limit=limit) as handle:
        while block := handle.read(MiB):
            size += len(block)
            if size > limit:
                raise OSError(errno.EFBIG, "grew past its size limit while read", str(path))
            digest.update(block)
    return digest.hexdigest()


def package_dirs(top: Path) -> Iterator[tuple[str, str] | Finding]:
    """(package name, directory) of every real package directory under one `node_modules`,
    nested copies and pnpm's `.pnpm/<id>/node_modules/<name>` included; symlinks are never
    followed (pnpm and workspaces link packages: each is read once, where it really is). A folder
    that cannot be listed is an `unknown` finding."""
    stack = [str(top)]
    while stack:
        nm = stack.pop()
        entries = listing(nm, KIND)
        if isinstance(entries, Finding):
            yield entries
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                if name == ".pnpm" and _real_dir(entry):
                    stores = listing(entry.path, KIND)
                    if isinstance(stores, Finding):
                        yield stores
                        continue
                    stack += [
                        os.path.join(store.path, "node_modules")
                        for store in stores
                        if _real_dir(store) and store.name != "node_modules"
                    ]
                continue
            if not _real_dir(entry):
                continue
            if name.startswith("@"):
                scoped = listing(entry.path, KIND)
                if isinstance(scoped, Finding):
                    yield scoped
                    continue
                packages = [(f"{name}/{e.name}", e.path) for e in scoped if _real_dir(e)]
            else:
                packages = [(name, entry.path)]
            for package, path in packages:
                yield package, path
                nested = os.path.join(path, "node_modules")
                if real_dir(nested):
                    stack.append(nested)


def scan_payloads(
    trees: Iterable[Path], package_files: list[PackageFile], *, context: str = ""
) -> Iterator[Finding]:
    """Payload files in every package under the `node_modules` trees given."""
    by_name: dict[str, list[PackageFile]] = {}
    for entry in package_files:
        by_name.setdefault(entry.name, []).append(entry)
    if not by_name:
        return
    seen: set[str] = set()
    for top in trees:
        for item in package_dirs(top):
            if isinstance(item, Finding):
                yield item
                continue
            package, directory = item
            for name, entries in by_name.items():
                wanted = [e for e in entries if not e.packages or package in e.packages]
                if not wanted:
                    continue
                path = os.path.join(directory, name)
                if path in seen:
                    continue
                seen.add(path)
                yield from _judge(path, package, wanted, context)


def _judge(path: str, package: str, entries: list[PackageFile], context: str) -> Iterator[Finding]:
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        message = f"cannot check {path}: {exc.strerror or exc}"
        yield _finding("unknown", path, package, None, message)
        return
    if stat.S_ISDIR(st.st_mode):
        return  # a folder that happens to carry the name is not a payload
    version = _version_of(os.path.dirname(path))
    where = f"{os.path.basename(path)} in {package}{'@' + version if version else ''}{context}"

    def finding(severity: Severity, message: str) -> Finding:
        return _finding(severity, path, package, version, message)

    presence = [e for e in entries if not e.sha256]
    hashed = [e for e in entries if e.sha256]
    if not stat.S_ISREG(st.st_mode):
        what = not_regular(path)
        if presence:
            yield finding("at-risk", f"{where}: something is there but {what}; not read")
        elif hashed:
            yield finding(
                "unknown",
                f"{where}: {what}, so it cannot be compared with the known payloads: "
                "check it by hand",
            )
        return
    for entry in presence:
        yield finding(
            _severity(entry),
            f"{where}: {entry.description or 'a file only the malware ships'} "
            f"({entry.confidence} confidence)",
        )
    if not hashed:
        return
    try:
        digest = sha256_of(path)
    except OSError as exc:
        reason = why_unreadable(path, exc)
        yield finding("unknown", f"{where} cannot be compared with the known payloads: {reason}")
        return
    matched = [e for e in hashed if digest in e.sha256]
    for entry in matched:
        about = f": {entry.description}" if entry.description else ""
        yield finding(
            _severity(entry),
            f"{where} is a known payload (sha256 {digest[:12]}){about}",
        )
    if not matched and any(e.other_hashes == "at-risk" for e in hashed):
        yield finding(
            "at-risk",
            f"{where} is not one of the known payload samples (sha256 {digest[:12]}), but only "
            "the malware is known to ship a file of that name: a new variant? Review it",
        )


def _severity(entry: PackageFile) -> Severity:
    return "compromised" if entry.confidence == "high" else "at-risk"


def _finding(
    severity: Severity, path: str, package: str, version: str | None, message: str
) -> Finding:
    return Finding(
        kind=KIND,
        severity=severity,
        path=path,
        package=package,
        version=version,
        message=message,
    )


def _version_of(directory: str) -> str | None:
    try:
        data = json.loads(read_file(os.path.join(directory, "package.json"), limit=MANIFEST_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def _real_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
