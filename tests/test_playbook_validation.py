"""Playbook validation: each malformed playbook gets exact messages at the right file:line:col,
and the bundled axios playbook is valid and carries the incident's facts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from runbook.models import Playbook
from runbook.playbook import PlaybookInvalid, bundled_playbooks, load_playbook
from runbook.schema import playbook_schema

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "playbooks" / "bad"
AXIOS = ROOT / "playbooks" / "axios-2026-03.yaml"

# file name -> every problem the loader must report, in order, exactly.
EXPECTED: dict[str, list[str]] = {
    "unclosed_quote.yaml": [
        "2:8: YAML syntax error: quoted text is never closed (no closing quote after this one)",
    ],
    "bad_indentation.yaml": [
        "12:12: YAML syntax error: unexpected ':' (check this line's indentation,"
        " or put a value that contains ': ' in quotes)",
    ],
    "unclosed_list.yaml": [
        "8:50: YAML syntax error: expected ',' or ']', got '}'"
        " (in the [...] list that starts at line 8, column 35)",
    ],
    "tab_indent.yaml": [
        "5:1: YAML syntax error: tab character; YAML indents with spaces, never tabs",
    ],
    "empty.yaml": [
        "1:1: a playbook is a mapping (id, title, version, incident, steps), got an empty file",
    ],
    "top_level_list.yaml": [
        "1:1: a playbook is a mapping (id, title, version, incident, steps), got a list",
    ],
    "duplicate_yaml_key.yaml": [
        "15:5: steps[0].confirm: duplicate key 'confirm' (already on line 13)",
    ],
    "continue_on_error_maybe.yaml": [
        "13:24: steps[0].continue_on_error: expected true or false, got 'maybe'",
    ],
    "steps_not_a_list.yaml": [
        "9:8: steps: expected a list, got 5",
    ],
    "step_without_title.yaml": [
        "14:5: steps[1]: missing required key 'title'",
    ],
    "missing_incident.yaml": [
        "1:1: missing required key 'incident'",
    ],
    "unknown_top_level_key.yaml": [
        "2:1: titel: unknown key 'titel' (did you mean 'title'?)",
    ],
    "unknown_kind.yaml": [
        "13:11: steps[3].uses: unknown step kind 'manul' (did you mean 'manual'?)",
    ],
    "duplicate_step_id.yaml": [
        "14:9: steps[1].id: duplicate step id 'detect' (first used by steps[0])",
    ],
    "when_unknown_step.yaml": [
        "17:18: steps[1].when.step: 'when' names an unknown step 'detetc' (did you mean 'detect'?)",
    ],
    "when_later_step.yaml": [
        "20:15: steps[1].when[1].step: 'when' names a later step 'verify';"
        " a condition can only name an earlier step",
    ],
    "when_bad_findings.yaml": [
        "17:36: steps[1].when.findings: expected 'any', 'none' or a list of severities"
        " (compromised, at-risk, unknown, info), got 'some'",
    ],
    "manual_unknown_param.yaml": [
        "15:7: steps[0].with.command: unknown key 'command' (did you mean 'commands'?)",
    ],
    "manual_missing_items.yaml": [
        "14:7: steps[0].with: missing required key 'items'",
    ],
    "manual_item_bad_id.yaml": [
        "16:16: steps[0].with.items[1].id: 'Caches' is not valid:"
        " use lowercase letters, digits, '-' and '_', starting with a letter or digit",
    ],
    "bad_step_id.yaml": [
        "10:9: steps[0].id: 'Check Host' is not valid:"
        " use lowercase letters, digits, '-' and '_', starting with a letter or digit",
    ],
    "bad_semver.yaml": [
        "9:30: incident.packages[0].bad_versions[1]:"
        " '^0.30.4' is not an exact semver version (like 1.14.0)",
    ],
    "version_as_number.yaml": [
        "9:22: incident.packages[0].bad_versions[0]:"
        " expected text, got the number 4.2 (write it in quotes)",
    ],
    "safe_pin_wrong_major.yaml": [
        "12:14: incident.packages[0].safe_pins.0: safe pin '1.13.6' is not on major line '0'",
    ],
    "bad_sha256.yaml": [
        "12:17: incident.indicators.file_hashes[0].sha256:"
        " '5BB67E88846096F1F8D42A0F0350C9C4' is not valid:"
        " a SHA-256 digest is 64 lowercase hexadecimal digits",
    ],
    "window_end_before_start.yaml": [
        "8:10: incident.window.end: end 2026-03-31T00:21:00Z is before start 2026-03-31T03:29:00Z",
    ],
    "window_without_timezone.yaml": [
        "6:46: incident.window.end: needs a timezone, e.g. 2026-03-31T00:21:00Z (UTC),"
        " got 2026-03-31 03:29:00",
    ],
    "confirm_sometimes.yaml": [
        "13:14: steps[0].confirm: expected 'never', 'destructive' or 'always', got 'sometimes'",
    ],
    "several_problems.yaml": [
        "13:14: steps[0].confirm: expected 'never', 'destructive' or 'always', got 'sometimes'",
        "18:24: steps[1].continue_on_error: expected true or false, got 'maybe'",
    ],
    # aliases are refused before anything is expanded (nested ones are a "billion laughs")
    "alias_reused_step.yaml": [
        "11:5: YAML alias '*check' is not allowed (aliases can expand without limit);"
        " write the value out in full",
    ],
    "alias_self_reference.yaml": [
        "7:20: YAML alias '*loop' is not allowed (aliases can expand without limit);"
        " write the value out in full",
    ],
    # values PyYAML parses but cannot build (a ValueError inside PyYAML before)
    "integer_too_long.yaml": [
        "3:10: version: number with 5000 digits is too long (at most 4300; quote it for text)",
    ],
    "date_year_zero.yaml": [
        "6:19: incident.window.start: invalid date '0000-01-01': year 0 is out of range",
    ],
    "paths_outside_target.yaml": [
        "14:32: steps[0].with.paths[2]: '../..' goes up with '..'; a path must stay inside"
        " the target",
        "14:39: steps[0].with.paths[3]: '/etc' is an absolute path; give a path relative to"
        " the target",
        "14:45: steps[0].with.paths[4]: '~/.ssh' starts with '~'; give a path relative to"
        " the target",
        "14:53: steps[0].with.paths[5]: 'packages/../../x' goes up with '..'; a path must stay"
        " inside the target",
        "18:20: steps[1].with.paths[0]: '/root' is an absolute path; give a path relative to"
        " the target",
    ],
}


def problems(name: str) -> list[str]:
    shown = f"tests/playbooks/bad/{name}"
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(BAD / name, display=shown)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_playbook_is_reported_exactly(name: str) -> None:
    expected = [f"tests/playbooks/bad/{name}:{message}" for message in EXPECTED[name]]
    assert problems(name) == expected


def test_every_malformed_fixture_has_its_expected_messages() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 12


def test_unreadable_file_is_reported_against_its_path(tmp_path: Path) -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(tmp_path / "missing.yaml", display="missing.yaml")
    assert str(caught.value).startswith("missing.yaml:1:1: cannot read playbook: ")


def test_major_lines_may_be_written_as_numbers(tmp_path: Path) -> None:
    text = (BAD / "safe_pin_wrong_major.yaml").read_text()
    text = text.replace('"1": 1.14.0', "1: 1.14.0").replace('"0": 1.13.6', "0: 0.30.3")
    path = tmp_path / "pins.yaml"
    path.write_text(text)
    package = load_playbook(path).playbook.incident.packages[0]
    assert package.safe_pins == {"1": "1.14.0", "0": "0.30.3"}


# --- the bundled playbook -------------------------------------------------------------------


@pytest.fixture(scope="module")
def axios() -> Playbook:
    return load_playbook(AXIOS, display="playbooks/axios-2026-03.yaml").playbook


def test_bundled_playbook_loads_and_is_found_by_id(axios: Playbook) -> None:
    assert axios.id == "axios-2026-03"
    assert bundled_playbooks()["axios-2026-03"].resolve() == AXIOS.resolve()


def test_bundled_steps_are_the_remediation_sequence(axios: Playbook) -> None:
    ids = [step.id for step in axios.steps]
    assert ids == [
        "detect",
        "check-host",
        "pin",
        "wipe-node-modules",
        "clear-caches",
        "reinstall",
        "verify",
        "discover-credentials",
        "rotate-aws-keys",
        "rotate-npm-tokens",
        "rotate-other-credentials",
        "commit-fix",
        "review-logs",
        "reimage",
        "harden",
    ]
    automated = {
        "detect": "detect",
        "pin": "pin",
        "wipe-node-modules": "wipe_node_modules",
        "clear-caches": "clear_caches",
        "reinstall": "reinstall",
        "discover-credentials": "discover_credentials",
        "rotate-aws-keys": "rotate_aws_keys",
        "rotate-npm-tokens": "rotate_npm_tokens",
        "rotate-other-credentials": "credential_checklist",
        "commit-fix": "git_commit",
        "check-host": "host_sweep",
        "verify": "verify",
        "harden": "harden",
    }
    # deleting cloud keys and revoking tokens cannot be undone: the step id is typed to agree
    typed = {"rotate-aws-keys", "rotate-npm-tokens"}
    for step in axios.steps:
        assert step.uses == automated.get(step.id, "manual"), step.id
        assert len(step.description) > 200, step.id
        if step.uses == "manual":
            assert step.with_["items"], step.id
        assert (step.confirm == "always") == (step.id in typed), step.id


def test_bundled_when_conditions_name_earlier_steps(axios: Playbook) -> None:
    earlier: set[str] = set()
    conditions = 0
    for step in axios.steps:
        for condition in step.when or []:
            assert condition.step in earlier, f"{step.id} -> {condition.step}"
            conditions += 1
        earlier.add(step.id)
    assert conditions >= 1


def test_bundled_playbook_carries_the_incident_facts(axios: Playbook) -> None:
    incident = axios.incident
    packages = {p.name: p for p in incident.packages}
    assert packages["axios"].bad_versions == ["1.14.1", "0.30.4"]
    assert packages["axios"].safe_pins == {"1": "1.14.0", "0": "0.30.3"}
    assert {"GHSA-fw8c-xr5c-95f9", "MAL-2026-2307"} <= set(packages["axios"].advisories)
    assert "GHSA-3p68-rc4w-qgx5" not in packages["axios"].advisories
    assert packages["plain-crypto-js"].any_version is True
    assert packages["plain-crypto-js"].advisories == ["MAL-2026-2306"]

    assert incident.window.start.isoformat() == "2026-03-31T00:21:00+00:00"
    assert incident.window.end.isoformat() == "2026-03-31T03:29:00+00:00"
    assert "03:20" in incident.window.note and "mirror" in incident.window.note

    urls = {ref.url for ref in incident.references}
    assert "https://github.com/axios/axios/issues/10636" in urls
    assert "https://github.com/axios/axios/issues/10604" in urls

    indicators = incident.indicators
    assert indicators.dependencies == ["plain-crypto-js"]
    assert indicators.network.domains == ["sfrclak.com"]
    assert indicators.network.ips == ["142.11.206.73"]
    assert indicators.network.urls == ["http://sfrclak.com:8000/6202033"]
    assert indicators.network.user_agents == [
        "mozilla/4.0 (compatible; msie 8.0; windows nt 5.1; trident/4.0)"
    ]

    hashes = {h.name: h for h in indicators.file_hashes}
    tarballs = {
        "axios-1.14.1.tgz": "5bb67e88846096f1f8d42a0f0350c9c46260591567612ff9af46f98d1b7571cd",
        "axios-0.30.4.tgz": "59336a964f110c25c112bcc5adca7090296b54ab33fa95c0744b94f8a0d80c0f",
        "plain-crypto-js-4.2.1.tgz": (
            "58401c195fe0a6204b42f5f90995ece5fab74ce7c69c67a24c61a057325af668"
        ),
    }
    for name, sha256 in tarballs.items():
        assert hashes[name].sha256 == sha256
        assert hashes[name].sha1
    assert len(hashes) == 7

    windows = {a.path: a for a in indicators.host_files.windows}
    assert windows[r"%PROGRAMDATA%\wt.exe"].same_as.lower().endswith(r"\powershell.exe")
    run_key = windows[r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\MicrosoftUpdate"]
    assert (run_key.type, run_key.confidence) == ("registry", "low")
    assert [a.path for a in indicators.host_files.macos] == ["/Library/Caches/com.apple.act.mond"]
    assert [a.path for a in indicators.host_files.linux] == ["/tmp/ld.py"]


def test_bundled_playbook_embeds_nothing_that_looks_like_a_secret() -> None:
    text = AXIOS.read_text()
    patterns = [
        r"(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}",
        r"npm_[A-Za-z0-9]{36}",
        r"gh[pousr]_[A-Za-z0-9]{36}",
        r"github_pat_\w{82}",
        r"glpat-[\w-]{20}",
        r"xox[abpr]-",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    ]
    for pattern in patterns:
        assert not re.search(pattern, text), pattern


def test_bundled_playbook_matches_the_published_json_schema() -> None:
    import jsonschema

    data = yaml.safe_load(AXIOS.read_text())
    data = json.loads(json.dumps(data, default=lambda value: value.isoformat()))
    jsonschema.validate(data, playbook_schema())  # e.g. `when:` as one mapping is allowed
