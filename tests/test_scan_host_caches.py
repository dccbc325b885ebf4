"""The host scan finds what real npm, yarn 1, pnpm 10 and bun leave in their caches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.npmreg import require_tools, run_tool, start_registry, tool_env

MANAGERS = {
    "npm": ["install", "--ignore-scripts", "axios@1.14.1", "axios-retry@1.14.1"],
    "yarn1": ["add", "--ignore-scripts", "axios@1.14.1", "axios-retry@1.14.1"],
    "pnpm": ["add", "--ignore-scripts", "axios@1.14.1", "axios-retry@1.14.1"],
    "bun": ["add", "--ignore-scripts", "axios@1.14.1", "axios-retry@1.14.1"],
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tools("verdaccio", *MANAGERS)
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.mark.parametrize("manager", sorted(MANAGERS))
def test_cache_left_by_a_real_install_is_found(manager, registry, tmp_path, run_cli):
    home = tmp_path / "home"
    env = tool_env(registry.url, home)
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "p", "version": "1.0.0"}\n')
    run_tool(manager, MANAGERS[manager], cwd=project, env=env)
    (project / "node_modules").rename(tmp_path / "moved-away")  # only the cache is left

    result = run_cli("scan", "--host", "--format", "json", env=env)
    data = json.loads(result.stdout)
    cached = sorted(
        {
            (f["package"], f["version"])
            for f in data["findings"]
            if f["kind"] == "cache" and Path(f["path"]).is_relative_to(home)
        }
    )
    assert cached == [("axios", "1.14.1"), ("plain-crypto-js", "4.2.1")], data["findings"]
    assert result.returncode == 1
