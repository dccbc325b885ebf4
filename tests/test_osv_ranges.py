"""`bad_ranges` in the playbook model and in BadSet, and the standard steps of a generated playbook
kept in step with the bundled playbook's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from runbook.models import Incident
from steps.npm.badset import BadSet
from steps.osv.draft import IncidentDraft, PackageDraft
from steps.osv.generate import playbook_document
from steps.osv.records import Interval
from tests.conftest import BUNDLED


def incident(**package: object) -> Incident:
    return Incident.model_validate(
        {
            "summary": "s",
            "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
            "packages": [{"name": "@ctrl/tinycolor", **package}],
        }
    )


def test_badset_knows_ranges() -> None:
    bad = BadSet(incident(bad_ranges=[">=4.1.1 <=4.1.2", ">=7.0.0 <7.0.3"], bad_versions=["9.9.9"]))
    assert "@ctrl/tinycolor" in bad.names
    for version in ("4.1.1", "4.1.2", "7.0.2", "9.9.9", "4.1.2+build.5"):
        assert bad.is_bad("@ctrl/tinycolor", version), version
    for version in ("4.1.0", "4.1.3", "7.0.3", "4.1.2-rc.1", "not-a-version", ""):
        assert not bad.is_bad("@ctrl/tinycolor", version), version
    assert not bad.is_bad("tinycolor", "4.1.1")
    # a lockfile that resolved a version in a range need not contain any listed version
    lock = b'"node_modules/@ctrl/tinycolor": {"version": "4.1.2"}'
    assert bad.could_resolve(lock)


def test_ranges_only_package_is_valid() -> None:
    package = incident(bad_ranges=[">=1.95.6 <1.95.8"], safe_pins={"1": "1.95.5"}).packages[0]
    assert package.bad_ranges == [">=1.95.6 <1.95.8"] and package.bad_versions == []


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        (["^^1"], "'^^1' is not a node-semver range"),
        (["*"], "'*' matches every version: set any_version: true instead"),
        ([">=0.0.0"], "matches every version"),
        ([], "list bad_versions or bad_ranges, or set any_version: true"),
    ],
)
def test_bad_ranges_are_checked(ranges: list[str], message: str, tmp_path: Path, run_cli) -> None:
    doc = yaml.safe_load(BUNDLED.read_text())
    doc["incident"]["packages"][0].pop("bad_versions")
    doc["incident"]["packages"][0]["bad_ranges"] = ranges
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("validate", path)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "incident.packages[0]" in result.stderr


def _shape(steps: list[dict]) -> list[tuple]:
    """What a runner acts on: ids, kinds, confirmation and conditions (texts may differ)."""
    return [(s["id"], s["uses"], s.get("confirm"), str(s.get("when"))) for s in steps]


def test_standard_steps_follow_the_bundled_playbook() -> None:
    """When the bundled playbook's steps change, steps/osv/template.py must follow: this fails."""
    draft = IncidentDraft(id="x", title="t")
    draft.packages["left-pad"] = PackageDraft("left-pad", bad_versions={"1.3.1"})
    draft.packages["is-odd"] = PackageDraft("is-odd", intervals=[Interval("3.0.1", "3.0.2")])
    draft.starts.append((datetime(2026, 1, 1, tzinfo=UTC), "test"))
    generated = playbook_document(draft)["steps"]
    bundled = yaml.safe_load(BUNDLED.read_text())["steps"]
    assert _shape(generated) == _shape(bundled)
    # `with:` keys of automated kinds match too (manual checklists are the incident's own)
    for mine, theirs in zip(generated, bundled, strict=True):
        if theirs["uses"] not in ("manual", "credential_checklist"):
            assert set(mine.get("with") or {}) == set(theirs.get("with") or {}), theirs["id"]


def test_pin_lines_of_ranges() -> None:
    def lines(*intervals: Interval, versions: set[str] | None = None) -> list[str]:
        return PackageDraft("p", set(versions or ()), list(intervals)).pin_lines()

    assert lines(Interval(None, "3.0.0")) == ["0", "1", "2"]  # <3.0.0
    assert lines(Interval(None, "3.0.0", True)) == ["0", "1", "2", "3"]  # <=3.0.0
    assert lines(Interval("4.1.1", "4.1.2", True)) == ["4"]
    assert lines(Interval("7.2.1")) == ["7"]  # >=7.2.1: its own line; later ones are warned about
    assert lines(Interval("1.0.0", "90.0.0")) == ["1", "89"]  # no 89 pins for a wide range
    assert lines(versions={"10.1.6", "9.1.1", "8.10.1"}) == ["8", "9", "10"]
