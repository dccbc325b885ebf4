"""Fake packages named like entries of the 2,915-version list, on a test verdaccio.

The big test playbook (`tests/playbooks/shai-hulud-list.yaml`, written by `bench.list_playbook`)
lists 1,630 packages. These fakes carry the names and bad versions of three of them, one scoped,
one unscoped and one with bad versions on two major lines, next to good versions of the same
packages, plus two libraries that pull bad versions in transitively:

- `@ctrl/tinycolor` 4.1.0 (good), 4.1.1 (bad);
- `debug` 4.4.1 (good), 4.4.2 (bad);
- `posthog-node` 4.18.0, 5.13.2 (good), 4.18.1, 5.13.3 (bad);
- `bigset-lib-a` 1.0.0 depends on `debug ^4.4.0`; `bigset-lib-b` 1.0.0 on `posthog-node ^4.18.0`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from runbook.models import Playbook
from runbook.playbook import load_playbook
from tests.npmreg import Registry, publish, tool_env

BIG_SET_PLAYBOOK = Path(__file__).parent / "playbooks" / "shai-hulud-list.yaml"
FAKES: dict[str, list[str]] = {
    "@ctrl/tinycolor": ["4.1.0", "4.1.1"],
    "debug": ["4.4.1", "4.4.2"],
    "posthog-node": ["4.18.0", "4.18.1", "5.13.2", "5.13.3"],
}
LIBRARIES: dict[str, dict[str, str]] = {
    "bigset-lib-a": {"debug": "^4.4.0"},
    "bigset-lib-b": {"posthog-node": "^4.18.0"},
}
SAFE_PINS: dict[str, dict[str, str]] = {
    "@ctrl/tinycolor": {"4": "4.1.0"},
    "debug": {"4": "4.4.1"},
    "posthog-node": {"4": "4.18.0", "5": "5.13.2"},
}


def publish_fakes(registry: Registry, work: Path) -> None:
    """Publish every fake (in version order) to `registry`; `work` holds the package folders."""
    env = tool_env(registry.url, work / "publisher")
    packages: list[tuple[str, str, Mapping[str, str]]] = [
        (name, version, {}) for name, versions in FAKES.items() for version in versions
    ]
    packages += [(name, "1.0.0", deps) for name, deps in LIBRARIES.items()]
    for name, version, deps in packages:
        folder = work / "packages" / f"{name.replace('/', '+')}-{version}"
        folder.mkdir(parents=True)
        manifest = {
            "name": name,
            "version": version,
            "description": "FAKE package for runbook tests (harmless)",
            "main": "index.js",
            "license": "MIT",
            "dependencies": dict(deps),
        }
        (folder / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (folder / "index.js").write_text("module.exports = {};\n")
        publish(folder, env)


def big_set_playbook(*, safe_pins: bool = False) -> Playbook:
    """The 1,630-package test playbook; with `safe_pins`, the fakes' safe pins added (a copy)."""
    playbook = load_playbook(BIG_SET_PLAYBOOK).playbook
    if not safe_pins:
        return playbook
    packages = [
        p.model_copy(update={"safe_pins": SAFE_PINS[p.name]}) if p.name in SAFE_PINS else p
        for p in playbook.incident.packages
    ]
    incident = playbook.incident.model_copy(update={"packages": packages})
    return playbook.model_copy(update={"incident": incident})
