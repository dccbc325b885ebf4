"""What an npm lockfile resolved, name and version only: no graph, no line numbers.

A home directory holds hundreds of npm lockfiles and almost none of them resolved a bad version;
this pass (one `json.loads` and a loop) decides which ones deserve the full parse. Anything that
could hide an entry from it (a `packages` list, an entry that is not an object, a version that is
a number) raises `Malformed`, so that the caller runs the full parse and reports it with its line:
a lockfile is never called clean because this pass skipped part of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from steps.npm.lockfiles.graph import LockfileError


class Malformed(LockfileError):
    """The document has a shape npm does not write (the full parse says where)."""


def _entry_fields(where: str, entry: object) -> tuple[object, object]:
    if not isinstance(entry, dict):
        raise Malformed(f"{where} is a {type(entry).__name__}, not an object")
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, (str, type(None))) or not isinstance(version, (str, type(None))):
        raise Malformed(f"{where}: 'name' or 'version' is not a string")
    return name, version


def npm_resolutions(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(real name, version) of every entry of a package-lock / shrinkwrap / hidden lockfile.

    Reads the same part of the document as the full parse (`packages` for v2 and v3, the
    `dependencies` tree for v1); raises `Malformed` where that part is not what npm writes.
    """
    lockfile_version = doc.get("lockfileVersion")
    packages = doc.get("packages")
    if lockfile_version is not None and (
        type(lockfile_version) is not int or lockfile_version not in (1, 2, 3)
    ):
        raise Malformed(f"unsupported lockfileVersion {lockfile_version!r}")
    if packages is not None and lockfile_version != 1:  # v2 and v3 (v2 repeats it as a tree)
        if not isinstance(packages, dict):
            raise Malformed("'packages' is not an object")
        for key, entry in packages.items():  # the hot loop: checks inlined
            if type(entry) is not dict:
                raise Malformed(f"entry {key!r} is a {type(entry).__name__}, not an object")
            version = entry.get("version")
            if type(version) is str:
                name = entry.get("name")
                if name is None:
                    name = key.rpartition("node_modules/")[2]
                elif type(name) is not str:
                    raise Malformed(f"entry {key!r}: 'name' is not a string")
                yield name, version
            elif version is not None:
                raise Malformed(f"entry {key!r}: 'version' is not a string")
        return
    stack = [doc.get("dependencies")]  # v1: a nested tree, walked without recursion
    while stack:
        deps = stack.pop()
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise Malformed("'dependencies' is not an object")
        for name, entry in deps.items():
            _, version = _entry_fields(f"entry {name!r}", entry)
            if isinstance(version, str):
                if version.startswith("npm:"):  # an alias: npm:axios@1.14.1
                    target = version[4:]
                    at = target.rfind("@")
                    name, version = (target[:at], target[at + 1 :]) if at > 0 else (target, "")
                yield name, version
            stack.append(entry.get("dependencies"))
