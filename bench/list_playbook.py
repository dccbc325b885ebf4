"""The 2,915-version test playbook, written from the flat list of compromised npm versions.

    .venv/bin/python -m bench.list_playbook          # writes tests/playbooks/shai-hulud-list.yaml
    .venv/bin/python -m bench.list_playbook --check  # exit 1 when the committed file is stale

Input: `tests/fixtures/osv/compromised-versions.tsv` (2,915 `package<TAB>version` rows of 1,630
packages, from Cobenian/shai-hulud-detect; see that folder's README). The playbook lists every
package with its bad versions and has one `detect` step; it has no safe pins (detection only):
tests that pin add the pins they need to a copy. The benchmark (`bench.run`) scans with it beside
the axios playbook, and the scale tests (`tests/test_badset_scale.py`) load it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests/fixtures/osv/compromised-versions.tsv"
PLAYBOOK = REPO / "tests/playbooks/shai-hulud-list.yaml"

HEADER = """\
# Test playbook: every npm version of tests/fixtures/osv/compromised-versions.tsv ({rows:,}
# versions of {packages:,} packages, from Cobenian/shai-hulud-detect: Shai-Hulud 1 and 2, the
# chalk/debug phishing and others). Written by `python -m bench.list_playbook`: do not edit,
# regenerate. No safe pins: it is for detection (`runbook scan --playbook FILE`) and the scale
# tests; a test that pins adds the pins it needs to a copy.
id: shai-hulud-list
title: "{rows:,} compromised npm versions of {packages:,} packages (test list)"
version: "1"
incident:
  summary: |
    A bad set of thousands: every npm version listed as compromised in
    Cobenian/shai-hulud-detect's compromised-packages.txt (June 2026). Used to check that
    detection, pinning and the report hold up with a set this large.
  references:
    - title: "Cobenian/shai-hulud-detect, compromised-packages.txt"
      url: https://github.com/Cobenian/shai-hulud-detect
  window:
    start: 2025-09-08T00:00:00Z
    end: 2026-06-30T00:00:00Z
    note: From the chalk/debug compromise to the list's last update.
  packages:
"""
STEPS = """\
steps:
  - id: detect
    uses: detect
    title: Find every trace of the listed versions
    confirm: never
"""


def read_list(path: Path = SOURCE) -> dict[str, list[str]]:
    """Package -> its bad versions, in the file's order (sorted by package, then version)."""
    rows = path.read_text(encoding="utf-8").splitlines()
    if rows[0] != "package\tversion":
        raise SystemExit(f"{path}:1: expected the header 'package<TAB>version'")
    packages: dict[str, list[str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        name, tab, version = row.partition("\t")
        if not tab or not name or not version:
            raise SystemExit(f"{path}:{number}: expected 'package<TAB>version', got {row!r}")
        packages.setdefault(name, []).append(version)
    return packages


def render(packages: dict[str, list[str]]) -> str:
    rows = sum(len(v) for v in packages.values())
    lines = [HEADER.format(rows=rows, packages=len(packages))]
    for name, versions in packages.items():
        quoted = ", ".join(json.dumps(v) for v in versions)
        lines.append(f"    - {{name: {json.dumps(name)}, bad_versions: [{quoted}]}}\n")
    lines.append(STEPS)
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the file")
    args = parser.parse_args(argv)
    text = render(read_list())
    if args.check:
        current = PLAYBOOK.read_text(encoding="utf-8") if PLAYBOOK.exists() else ""
        if current != text:
            print(f"{PLAYBOOK} is stale: run python -m bench.list_playbook", file=sys.stderr)
            return 1
        return 0
    PLAYBOOK.write_text(text, encoding="utf-8")
    print(f"wrote {PLAYBOOK.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
