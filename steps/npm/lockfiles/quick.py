"""What an npm lockfile resolved, name and version only: no graph, no line numbers.

A home directory holds hundreds of npm lockfiles and almost none of them resolved a bad version;
this pass (one `json.loads` and a loop) decides which ones deserve the full parse.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def npm_resolutions(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(real name, version) of every entry of a package-lock / shrinkwrap / hidden lockfile."""
    packages = doc.get("packages")
    if isinstance(packages, dict):  # v2 and v3: `dependencies` (v2) repeats the same data
        for key, entry in packages.items():
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                name = entry.get("name")
                if not isinstance(name, str):
                    name = key.rpartition("node_modules/")[2]
                yield name, entry["version"]
        return
    stack = [doc.get("dependencies")]  # v1: a nested tree, walked without recursion
    while stack:
        deps = stack.pop()
        if not isinstance(deps, dict):
            continue
        for name, entry in deps.items():
            if not isinstance(entry, dict):
                continue
            version = entry.get("version")
            if isinstance(version, str):
                if version.startswith("npm:"):  # an alias: npm:axios@1.14.1
                    target = version[4:]
                    at = target.rfind("@")
                    name, version = (target[:at], target[at + 1 :]) if at > 0 else (target, "")
                yield name, version
            stack.append(entry.get("dependencies"))
