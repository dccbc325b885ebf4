"""`pin` when several bad packages of a bad set of thousands meet in one tree (issue 13).

The playbook is the 1,630-package list (`tests/playbooks/shai-hulud-list.yaml`) with safe pins
added for three of its packages, published as fakes to verdaccio (`tests/bigset_registry.py`). The
project resolves all three, each differently:

- `@ctrl/tinycolor` 4.1.1: a direct dependency (`^4.1.0`);
- `debug` 4.4.2: transitive only, under `bigset-lib-a`;
- `posthog-node` on both major lines: 5.13.3 direct (`^5.13.0`), 4.18.1 under `bigset-lib-b`.

The overrides are written by one function for every manager, in three forms: keyed by the exact
bad version (npm `overrides`, pnpm `overrides`, bun), by name or by `**/parent/name` (yarn 1
`resolutions`). The lockfile is regenerated for real with npm, yarn 1 and pnpm (one per form of
override file: package.json `overrides`, package.json `resolutions`, pnpm-workspace.yaml), and
must then hold no bad version of any package of the list.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from runbook.step import StepContext
from steps.npm.badset import BadSet
from steps.npm.lockfiles import parse_lockfile
from steps.pin import PinParams, PinStep
from tests.bigset_registry import big_set_playbook, publish_fakes
from tests.conftest import BUNDLED
from tests.npmreg import require_tools, run_tool, start_registry
from tests.support.context import step_context
from tests.test_pin import make_env

PLAYBOOK = big_set_playbook(safe_pins=True)
BADSET = BadSet(PLAYBOOK.incident)
DEPS = {
    "@ctrl/tinycolor": "^4.1.0",
    "bigset-lib-a": "^1.0.0",
    "bigset-lib-b": "^1.0.0",
    "posthog-node": "^5.13.0",
}
BAD = {"@ctrl/tinycolor@4.1.1", "debug@4.4.2", "posthog-node@4.18.1", "posthog-node@5.13.3"}
SAFE = {"@ctrl/tinycolor@4.1.0", "debug@4.4.1", "posthog-node@4.18.0", "posthog-node@5.13.2"}
LOCKFILE = {"npm": "package-lock.json", "yarn1": "yarn.lock", "pnpm": "pnpm-lock.yaml"}
# keyed by the exact bad version: what the lockfile resolved, and what a pinned range admitted
BY_VERSION = {
    "@ctrl/tinycolor@4.1.1": "4.1.0",
    "@ctrl/tinycolor@4.1.2": "4.1.0",  # admitted by `^4.1.0`, never resolved
    "debug@4.4.2": "4.4.1",
    "posthog-node@4.18.1": "4.18.0",
    "posthog-node@5.13.3": "5.13.2",
}
OVERRIDES = {
    "npm": ("package.json", ("overrides",), BY_VERSION),
    "pnpm": ("pnpm-workspace.yaml", ("overrides",), BY_VERSION),
    # yarn 1 reads no version selectors: a plain name where one major line is in play, and one
    # `**/parent/name` per parent for posthog-node, whose direct copy is pinned in package.json
    "yarn1": (
        "package.json",
        ("resolutions",),
        {
            "@ctrl/tinycolor": "4.1.0",
            "debug": "4.4.1",
            "**/bigset-lib-b/posthog-node": "4.18.0",
        },
    ),
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    require_tools("verdaccio", "npm", "yarn1", "pnpm")
    work = tmp_path_factory.mktemp("pin-multi-registry")
    with start_registry(work / "registry") as reg:
        publish_fakes(reg, work)
        yield reg


def context(target: Path, env: dict) -> StepContext:
    from runbook.playbook import load_playbook

    pin = next(s for s in load_playbook(BUNDLED).playbook.steps if s.id == "pin")
    return step_context(PLAYBOOK, pin, target, env)


def resolved(target: Path, manager: str) -> set[str]:
    path = target / LOCKFILE[manager]
    manifest = json.loads((target / "package.json").read_text())
    graph = parse_lockfile(path, path.read_bytes(), manifest)
    return {f"{n.name}@{n.version}" for n in graph.nodes.values() if n.version}


@pytest.mark.parametrize("manager", sorted(LOCKFILE))
def test_three_bad_packages_in_one_tree_are_all_pinned_away(manager, registry, tmp_path):
    env = make_env(registry, tmp_path)
    target = tmp_path / "app"
    target.mkdir()
    manifest = {"name": "app", "version": "1.0.0", "dependencies": DEPS}
    (target / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    install = {"npm": ["install", "--package-lock-only"], "yarn1": ["install"]}
    install["pnpm"] = ["install", "--lockfile-only"]
    run_tool(manager, [*install[manager], "--ignore-scripts"], cwd=target, env=env)
    assert resolved(target, manager) >= BAD  # the tree the step starts from

    kind = PinStep(PinParams())
    ctx = context(target, env)
    plan = kind.plan(ctx)
    result = kind.apply(ctx, plan)
    assert result.outcome == "succeeded", result.summary

    after = json.loads((target / "package.json").read_text())
    assert after["dependencies"] == {**DEPS, "@ctrl/tinycolor": "4.1.0", "posthog-node": "5.13.2"}
    file, section, expected = OVERRIDES[manager]
    written = (target / file).read_text()
    doc = json.loads(written) if file.endswith(".json") else yaml.safe_load(written)
    for key in section:
        doc = doc[key]
    assert doc == expected

    got = resolved(target, manager)
    still_bad = {x for x in got if BADSET.is_bad(*x.rsplit("@", 1))}
    assert not still_bad, still_bad
    assert got >= SAFE
    # idempotent: nothing left to do
    assert PinStep(PinParams()).plan(context(target, env)).actions == []
