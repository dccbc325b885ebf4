"""What an npm lockfile resolved, name and version only: no graph, no line numbers.

A home directory holds hundreds of npm lockfiles and almost none of them resolved a bad version;
this pass (one `json.loads` and a loop) decides which ones deserve the full parse. Anything that
could hide an entry from it (a `packages` list, an entry that is not an object, a version that is
a number, a tarball URL naming another version, a file with neither section) raises `Malformed`,
so that the caller runs the full parse and reports it with its line: a lockfile is never called
clean because this pass skipped part of it. Versions are normalised as the full parse does
(`clean_semver`: `v1.14.1` is 1.14.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steps.npm.lockfiles.graph import LockfileError, check_tarball, clean_semver
from steps.npm.lockfiles.npm import unread_sections


class Malformed(LockfileError):
    """The document has a shape npm does not write (the full parse says where)."""


def _entry_fields(where: str, entry: object) -> tuple[object, object]:
    if not isinstance(entry, dict):
        raise Malformed(f"{where} is a {type(entry).__name__}, not an object")
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, (str, type(None))) or not isinstance(version, (str, type(None))):
        raise Malformed(f"{where}: 'name' or 'version' is not a string")
    return name, version


def _tarball_version(name: str, version: str, resolved: str, key: str) -> str:
    """The version the entry installs when its `resolved` URL is not plainly
    `…/<name>/-/<base>-<version>.tgz`; Malformed when the URL names another version."""
    try:
        return check_tarball(name, clean_semver(version), resolved, f"entry {key!r}", None)
    except LockfileError as exc:
        raise Malformed(exc.reason) from None


def _plain_tarball(name: str, version: str, resolved: str) -> bool:
    """Whether `resolved` is plainly the registry tarball of `name` at `version`
    (`…/name/-/name-1.0.0.tgz`, `…/@scope/name/-/name-1.0.0.tgz`): the common case, decided
    without taking the URL apart. An unscoped name needs a URL without `@` or `%`, which could
    make the path's last segments another, scoped, package."""
    if name[:1] == "@":
        return resolved.endswith(f"/{name}/-/{name.rpartition('/')[2]}-{version}.tgz")
    return (
        resolved.endswith(f"/{name}/-/{name}-{version}.tgz")
        and "@" not in resolved
        and "%" not in resolved
    )


def npm_resolutions(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(real name, version) of every entry of a package-lock / shrinkwrap / hidden lockfile.

    Reads the same parts of the document as the full parse (`packages`, and the `dependencies`
    tree npm 6 installs from); raises `Malformed` where they are not what npm writes.
    """
    lockfile_version = doc.get("lockfileVersion")
    packages = doc.get("packages")
    if lockfile_version is not None and (
        type(lockfile_version) is not int or lockfile_version not in (1, 2, 3)
    ):
        raise Malformed(f"unsupported lockfileVersion {lockfile_version!r}")
    unread = unread_sections(doc)
    if unread:
        raise Malformed(unread)
    if packages is not None:
        if not isinstance(packages, dict):
            raise Malformed("'packages' is not an object")
        for key, entry in packages.items():  # the hot loop: most checks inlined
            if type(entry) is not dict:
                raise Malformed(f"entry {key!r} is a {type(entry).__name__}, not an object")
            version = entry.get("version")
            if type(version) is str:
                name = entry.get("name")
                if name is None:
                    name = key.rpartition("node_modules/")[2]
                elif type(name) is not str:
                    raise Malformed(f"entry {key!r}: 'name' is not a string")
                if version[:1] == "v":
                    version = clean_semver(version) or version
                resolved = entry.get("resolved")
                if type(resolved) is str and not _plain_tarball(name, version, resolved):
                    version = _tarball_version(name, version, resolved, key) or version
                yield name, version
            elif version is not None:
                raise Malformed(f"entry {key!r}: 'version' is not a string")
            elif type(resolved := entry.get("resolved")) is str and key:
                name = entry.get("name") or key.rpartition("node_modules/")[2]
                if type(name) is str and (found := _tarball_version(name, "", resolved, key)):
                    yield name, found
    stack = [doc.get("dependencies")]  # the v1 tree, walked without recursion
    while stack:
        deps = stack.pop()
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise Malformed("'dependencies' is not an object")
        for name, entry in deps.items():
            _, version = _entry_fields(f"entry {name!r}", entry)
            resolved = entry.get("resolved")  # type: ignore[union-attr]
            if isinstance(version, str):
                if version.startswith("npm:"):  # an alias: npm:axios@1.14.1
                    target = version[4:]
                    at = target.rfind("@")
                    name, version = (target[:at], target[at + 1 :]) if at > 0 else (target, "")
                if version[:1] == "v":
                    version = clean_semver(version) or version
                if type(resolved) is str and not _plain_tarball(name, version, resolved):
                    version = _tarball_version(name, version, resolved, name) or version
                yield name, version
            elif type(resolved) is str and (found := _tarball_version(name, "", resolved, name)):
                yield name, found
            stack.append(entry.get("dependencies"))  # type: ignore[union-attr]
