"""The environment a playbook runs with in a world: the sandbox's HOME, XDG directories, tool
configs and caches, the loopback stand-ins, and a closed proxy port for everything else.

Nothing of the caller's environment comes along but the terminal and locale settings the demo
keeps (`runbook.demo.KEEP`) and PATH, so the real machine's tools run, with the world's config.
"""

from __future__ import annotations

import os
from pathlib import Path

from runbook.demo import CLOSED, KEEP
from steps.world.aws import REGION
from steps.world.keyring_file import ENV as KEYRING_ENV
from steps.world.model import WorldSpec

KEYRING_BACKEND = "steps.world.keyring_file.WorldKeyring"
# proposed for the steps (detect, host_sweep): the host root to check when `root` is not given
HOST_ROOT_ENV = "RUNBOOK_HOST_ROOT"
KEYRING_FILE = "runbook-world-keyring.json"


def world_env(
    world: WorldSpec,
    root: Path,
    home: Path,
    registry_url: str,
    aws_url: str,
    path: str,
    credentials: dict[str, str],
    targets: list[Path],
) -> dict[str, str]:
    """The complete environment for a run in the world (`credentials`: the variables the
    world's credentials put there, such as a CI runner's GITHUB_TOKEN)."""
    kept = {k: v for k, v in os.environ.items() if k in KEEP or k.startswith("LC_")}
    kept.pop("TMPDIR", None)
    share = home / ".local" / "share"
    env = {
        **kept,
        "PATH": path,
        "HOME": str(home),
        "USER": world.user,
        "LOGNAME": world.user,
        "TMPDIR": str(root / "tmp"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(share),
        # every connection off this machine goes to a closed port; the stand-ins are loopback
        "HTTPS_PROXY": CLOSED,
        "HTTP_PROXY": CLOSED,
        "https_proxy": CLOSED,
        "http_proxy": CLOSED,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "RUNBOOK_NO_DNS": "1",
        # npm, yarn 1, pnpm and bun: configs, caches and global installs inside the world
        "NPM_CONFIG_USERCONFIG": str(home / ".npmrc"),
        "NPM_CONFIG_GLOBALCONFIG": str(root / "etc" / "npmrc"),
        "NPM_CONFIG_PREFIX": str(home / ".npm-global"),
        "npm_config_cache": str(home / ".npm"),
        "npm_config_update_notifier": "false",
        "YARN_CACHE_FOLDER": str(home / ".cache" / "yarn"),
        "PNPM_HOME": str(share / "pnpm"),
        "BUN_INSTALL": str(home / ".bun"),
        "BUN_INSTALL_CACHE_DIR": str(home / ".bun" / "install" / "cache"),
        "BUN_CONFIG_REGISTRY": registry_url,
        "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        # AWS: the world's moto only, never the instance metadata service
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        # new secrets go to the world's own keyring file
        "PYTHON_KEYRING_BACKEND": KEYRING_BACKEND,
        KEYRING_ENV: str(share / KEYRING_FILE),
        HOST_ROOT_ENV: str(root),
    }
    if world.machine == "ci":
        temp = home / "work" / "_temp"
        temp.mkdir(parents=True, exist_ok=True)
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            RUNNER_OS="Linux",
            RUNNER_TEMP=str(temp),
            GITHUB_WORKSPACE=str(targets[0]),
        )
    env.update(credentials)
    return env
