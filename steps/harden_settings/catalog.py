"""The settings that would have stopped the axios attack, per package manager.

Three knobs: `scripts` (install scripts off, or an explicit allow-list), `exact` (exact versions
saved, no caret) and `release-age` (a version must have been public for some days before it is
installed). Minimum versions come from the managers' release notes; where the manager can be asked
whether it knows a setting (npm, yarn berry, bun), that answer wins over the table.

- npm `min-release-age` (days): npm 11.10.0.
- pnpm: settings in `pnpm-workspace.yaml` from 10.5.0 (`packages` optional since then);
  `minimumReleaseAge` (minutes) from 10.16.0; pnpm 11 replaced `onlyBuiltDependencies` with an
  `allowBuilds` map (and blocks dependency builds by default, as pnpm 10 does).
- yarn berry `npmMinimalAgeGate` (a duration, `7d`, or minutes): yarn 4.10.0 (default 1d since
  4.15); `enableScripts` and `defaultSemverRangePrefix` are older than yarn 4.
- bun `[install] minimumReleaseAge` (seconds): bun 1.3.0; `[install] exact` is older. bun runs
  dependency scripts only for `trustedDependencies`, so it needs no scripts setting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Knob = Literal["scripts", "exact", "release-age"]
HardenManager = Literal["npm", "pnpm", "berry", "bun"]
KNOBS: tuple[Knob, ...] = ("scripts", "exact", "release-age")
FILES: dict[HardenManager, str] = {
    "npm": ".npmrc",
    "pnpm": "pnpm-workspace.yaml",
    "berry": ".yarnrc.yml",
    "bun": "bunfig.toml",
}


@dataclass(frozen=True)
class Setting:
    """One setting: where it is written, as what, and what the manager should answer for it."""

    manager: HardenManager
    knob: Knob
    key: str
    written: str  # the value as written in the file
    expected: object  # what `config get` answers once it took effect (JSON-decoded)
    since: str | None = None  # first version that knows it
    until: str | None = None  # first version that no longer reads it
    why: str = ""

    @property
    def file(self) -> str:
        return FILES[self.manager]

    @property
    def line(self) -> str:
        """The setting as a line of its file."""
        if self.manager == "npm":
            return f"{self.key}={self.written}"
        if self.manager == "bun":
            return f"[install] {self.key} = {self.written}"
        return f"{self.key}: {self.written}"


def _flow_list(names: list[str]) -> str:
    return "[" + ", ".join(json.dumps(n) for n in names) + "]"


def settings_for(
    manager: HardenManager, knobs: list[Knob], days: int, allow_builds: list[str]
) -> list[Setting]:
    """The settings of `manager` for the chosen knobs (a knob it has no setting for gives none)."""
    out: list[Setting] = []
    if manager == "npm":
        table = {
            "scripts": Setting(
                "npm",
                "scripts",
                "ignore-scripts",
                "true",
                "true",
                why="no install script runs (rebuild a package that needs one by name)",
            ),
            "exact": Setting("npm", "exact", "save-exact", "true", "true", why="exact versions"),
            "release-age": Setting(
                "npm",
                "release-age",
                "min-release-age",
                str(days),
                str(days),
                "11.10.0",
                why=f"versions younger than {days} days are not installed",
            ),
        }
    elif manager == "pnpm":
        table = {
            "scripts": Setting(
                "pnpm",
                "scripts",
                "onlyBuiltDependencies",
                _flow_list(allow_builds),
                allow_builds,
                "10.5.0",
                "11.0.0",
                why="only these dependencies may run build scripts",
            ),
            "exact": Setting("pnpm", "exact", "saveExact", "true", True, "10.5.0", why="exact"),
            "release-age": Setting(
                "pnpm",
                "release-age",
                "minimumReleaseAge",
                str(days * 1440),
                days * 1440,
                "10.16.0",
                why=f"versions younger than {days} days are not installed",
            ),
        }
    elif manager == "berry":
        table = {
            "scripts": Setting(
                "berry",
                "scripts",
                "enableScripts",
                "false",
                False,
                why="no dependency build script runs",
            ),
            "exact": Setting(
                "berry", "exact", "defaultSemverRangePrefix", '""', "", why="exact versions"
            ),
            "release-age": Setting(
                "berry",
                "release-age",
                "npmMinimalAgeGate",
                f"{days}d",
                days * 1440,
                "4.10.0",
                why=f"versions younger than {days} days are not installed",
            ),
        }
    else:
        table = {
            "exact": Setting("bun", "exact", "exact", "true", True, why="exact versions"),
            "release-age": Setting(
                "bun",
                "release-age",
                "minimumReleaseAge",
                str(days * 86400),
                days * 86400,
                "1.3.0",
                why=f"versions younger than {days} days are not installed",
            ),
        }
    for knob in knobs:
        if knob in table:
            out.append(table[knob])
    return out


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def supported(setting: Setting, version: str) -> str | None:
    """Why `version` of the manager cannot take `setting` (by the table), or None."""
    have = version_tuple(version)
    if setting.since and have < version_tuple(setting.since):
        return f"needs {setting.manager} {setting.since} or later (this is {version})"
    if setting.until and have >= version_tuple(setting.until):
        return f"{setting.manager} {setting.until} and later no longer read it (this is {version})"
    return None
