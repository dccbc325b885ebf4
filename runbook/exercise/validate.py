"""Validating files that may be scenarios or playbooks (`runbook exercise validate`; the same
function serves `runbook validate` for both kinds)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from runbook.exitcodes import FAILED, OK
from runbook.termsafe import printable


def _resolve(ref: str) -> Path:
    """A path, else a bundled scenario id, else a bundled playbook id."""
    from runbook.bundled import resolve_playbook
    from runbook.exercise.scenario import bundled_scenarios

    path = Path(ref)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in ref:
        return path
    scenarios = bundled_scenarios()
    if ref in scenarios:
        return scenarios[ref]
    return resolve_playbook(ref)


def validate_any(ref: str, unreadable: str = "playbook") -> tuple[bool, list[str]]:
    """Validate one scenario or playbook file (or bundled id): (valid, lines to print); a valid
    file gives one `ok` line for stdout, an invalid one its problems for stderr. A file that
    cannot be read is named as `unreadable` says ("cannot read playbook: ..."), as
    `runbook validate` has always named it."""
    from runbook.exercise.scenario import (
        ScenarioInvalid,
        looks_like_scenario,
        validate_scenario_document,
    )
    from runbook.playbook import PlaybookInvalid, validate_document
    from runbook.registry import default_registry
    from runbook.yamlsource import YamlSyntaxError, load_yaml, read_source

    try:
        path = _resolve(ref)
    except FileNotFoundError as exc:
        return False, [f"runbook: {exc}"]
    shown = ref if Path(ref).exists() else str(path)
    try:
        raw, text = read_source(path, shown, what=unreadable)
        doc = load_yaml(text, shown)
    except YamlSyntaxError as exc:
        return False, [str(exc.problem)]
    digest = hashlib.sha256(raw).hexdigest()
    if looks_like_scenario(doc.data):
        try:
            loaded = validate_scenario_document(doc, path, digest)
        except ScenarioInvalid as exc:
            return False, [str(p) for p in exc.problems]
        s = loaded.scenario
        about = (
            f"scenario {s.id} v{s.version} on {loaded.playbook.playbook.id}: "
            f"{len(s.variants)} variants, {len(s.injects)} injects, "
            f"{len(s.expectations)} expectations"
        )
        return True, [f"{ref}: ok ({about})"]
    try:
        playbook = validate_document(doc, default_registry(), digest).playbook
    except PlaybookInvalid as exc:
        return False, [str(p) for p in exc.problems]
    about = f"{playbook.id} v{playbook.version}, {len(playbook.steps)} steps"
    return True, [f"{ref}: ok ({about})"]


def validate_files(refs: list[str], unreadable: str = "playbook") -> int:
    """Validate each file, printing an `ok` line or its problems; 0 when all are valid, else 1."""
    status = OK
    for ref in refs:
        ok, lines = validate_any(ref, unreadable)
        for line in lines:
            print(printable(line), file=sys.stdout if ok else sys.stderr)
        if not ok:
            status = FAILED
    return status
