"""`runbook new --from-osv` on bad and odd input: every file that cannot be used is named with the
reason (file:line:col for bad JSON) and nothing is written; odd but usable records are read with
notes, never silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_osv_corpus import NPM, bad_set, header, new


def record(name: str = "left-pad", **affected: object) -> dict:
    entry = {"package": {"ecosystem": "npm", "name": name}, **affected}
    return {"id": "MAL-2026-0001", "modified": "2026-04-01T00:00:00Z", "affected": [entry]}


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def semver(*events: dict) -> dict:
    return {"type": "SEMVER", "events": list(events)}


def test_bad_json_is_named_with_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{\n  "id": "MAL-2026-1",\n  "affected": [\n    {"package": }\n  ]\n}\n')
    out = new("--from-osv", bad, "--id", "x", output=tmp_path / "x.yaml")
    assert out.code == 2
    assert f"{bad}:4:17: not valid JSON: Expecting value" in out.stderr
    assert "nothing written" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file, not an OSV record"),
        (b'["MAL-2026-1"]', "not an OSV record: expected a JSON object, got a list"),
        (b'{"id": "MAL-2026-1"}', "not an OSV record: no 'affected' key"),
        (b'{"affected": {"package": "x"}}', "not an OSV record: 'affected' is a mapping"),
        (b'{"affected": [{"versions": ["1.0.0"]}]}', "affected[0].package is missing"),
        (b'{"affected": [1]}', "affected[0].package is missing"),
        (b'{\n  "id": "x",\n  "affected": \xff\n}', "3:15: not valid UTF-8 text"),
    ],
)
def test_not_osv_is_named_with_the_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "record.json"
    path.write_bytes(content)
    out = new("--from-osv", path, "--id", "x", output=tmp_path / "x.yaml")
    assert out.code == 2, out.stderr
    assert f"{path}:" in out.stderr and reason in out.stderr, out.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_not_npm_is_refused_and_mixed_records_keep_their_npm_part(tmp_path: Path) -> None:
    pypi = record()
    pypi["affected"][0]["package"]["ecosystem"] = "PyPI"
    pypi["affected"][0]["versions"] = ["1.0"]
    out = new("--from-osv", write(tmp_path / "py.json", pypi), "--id", "x", output=tmp_path / "x")
    assert out.code == 2
    assert f"{tmp_path / 'py.json'}: not an npm advisory: its packages are from PyPI" in out.stderr

    mixed = record(versions=["1.3.1"])
    mixed["affected"].append({"package": {"ecosystem": "PyPI", "name": "leftpad"}})
    out = new("--from-osv", write(tmp_path / "m.json", mixed), "--id", "x", output=tmp_path / "y")
    assert out.code == 1, out.stderr
    assert list(out.packages()) == ["left-pad"]
    assert "left out affected[1] (PyPI package 'leftpad')" in out.stderr
    assert "left out affected[1] (PyPI package 'leftpad')" in header(out.text)


def test_every_problem_of_every_file_is_listed(tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", record(versions=["1.3.1"]))
    bad_version = write(tmp_path / "v.json", record(versions=["1.3.1", "1.2", 7]))
    bad_name = write(tmp_path / "n.json", record("left-pad\n# injected: true", versions=["1.0.0"]))
    bad_event = write(tmp_path / "e.json", record(ranges=[semver({"introduced": "x.y"})]))
    args = ("--from-osv", good, bad_version, bad_name, bad_event, "--id", "x")
    out = new(*args, output=tmp_path / "x.yaml")
    assert out.code == 2
    assert f"{bad_version}: affected[0].versions[1]: '1.2' is not an exact version" in out.stderr
    assert (
        f"{bad_version}: affected[0].versions[2]: expected a version text, got int 7" in out.stderr
    )
    assert f"{bad_name}: affected[0].package.name: 'left-pad\\n# injected" in out.stderr
    assert "ranges[0].events[0].introduced: 'x.y' is not an exact version" in out.stderr
    assert "4 unusable input files or records; nothing written" in out.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_a_record_with_no_versions_and_no_ranges_is_skipped_with_a_note(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.json", record("is-odd"))
    good = write(tmp_path / "good.json", record(versions=["1.3.1"]))
    out = new("--from-osv", empty, good, "--id", "x", output=tmp_path / "x.yaml")
    assert out.code == 1
    assert list(out.packages()) == ["left-pad"]
    assert f"{empty}: skipped affected[0] (is-odd): it lists no versions and no ranges" in (
        out.stderr
    )
    alone = new("--from-osv", empty, "--id", "x", output=tmp_path / "alone.yaml")
    assert alone.code == 2
    assert "no package left to put in a playbook" in alone.stderr
    assert "it lists no versions and no ranges" in alone.stderr
    assert not (tmp_path / "alone.yaml").exists()


@pytest.mark.parametrize(
    ("ranges", "expected", "warned"),
    [
        # fixed is exclusive, last_affected inclusive; events in any order
        (
            [semver({"fixed": "1.95.8"}, {"introduced": "1.95.6"})],
            {"ranges": [">=1.95.6 <1.95.8"]},
            "",
        ),
        (
            [semver({"introduced": "4.1.1"}, {"last_affected": "4.1.1"})],
            {"versions": ["4.1.1"]},
            "",
        ),
        # two intervals in one range
        (
            [
                semver(
                    {"introduced": "1.0.0"},
                    {"fixed": "1.0.2"},
                    {"introduced": "2.0.0"},
                    {"last_affected": "2.0.1"},
                )
            ],
            {"ranges": [">=1.0.0 <1.0.2", ">=2.0.0 <=2.0.1"]},
            "",
        ),
        # "0" with an upper bound is an ordinary range, not the hazard
        ([semver({"introduced": "0"}, {"fixed": "1.2.0"})], {"ranges": ["<1.2.0"]}, ""),
        # no upper bound: kept, and reported
        ([semver({"introduced": "7.2.1"})], {"ranges": [">=7.2.1"]}, "has no upper bound"),
        # a bare "0" alone: every version
        ([semver({"introduced": "0"})], {"any": True}, ""),
        ([semver({"introduced": "0.0.0"})], {"any": True}, ""),
    ],
)
def test_ranges(tmp_path: Path, ranges: list, expected: dict, warned: str) -> None:
    path = write(tmp_path / "r.json", record(ranges=ranges))
    out = new("--from-osv", path, "--id", "r", output=tmp_path / "r.yaml")
    assert out.code in (0, 1), out.stderr
    assert bad_set(out.packages()["left-pad"]) == expected
    assert (warned in out.stderr) if warned else ("review:" not in out.stderr)


def test_odd_but_usable_records_are_read_with_notes(tmp_path: Path) -> None:
    doc = record(
        versions=["v2.0.0", "1.10.0", "1.9.0", "1.10.0"],
        ranges=[{"type": "GIT", "repo": "https://x", "events": [{"introduced": "abc"}]}],
    )
    doc["references"] = [{"type": "WEB"}, {"type": "ADVISORY", "url": "https://ex.test/a"}]
    doc["database_specific"] = {
        "iocs": {"domains": ["evil.test", "not a domain"], "ip_addresses": ["10.0.0.1"]}
    }
    path = tmp_path / "odd.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())  # a BOM, no final newline
    out = new("--from-osv", path, path, tmp_path, "--id", "odd", output=tmp_path / "o.yaml")
    assert out.code == 1, out.stderr
    package = out.packages()["left-pad"]
    assert package["bad_versions"] == ["1.9.0", "1.10.0", "2.0.0"]  # semver order, once each
    assert "read 'v2.0.0' as 2.0.0" in out.stderr
    assert "left out a range of type 'GIT'" in out.stderr
    assert "references[0]: left out (no url)" in out.stderr
    assert "left out the indicator 'not a domain' (domains)" in out.stderr
    network = out.document()["incident"]["indicators"]["network"]
    assert network == {"domains": ["evil.test"], "ips": ["10.0.0.1"]}
    assert out.text.count("Records read:") == 1 and out.text.count(f"- {path}\n") == 1


def test_usage_errors(tmp_path: Path, run_cli) -> None:
    path = write(tmp_path / "r.json", record(versions=["1.3.1"]))
    no_id = new("--from-osv", path, output=tmp_path / "a.yaml")
    assert no_id.code == 2 and "--id ID is needed with --from-osv" in no_id.stderr
    bad_id = new("--from-osv", path, "--id", "Left Pad", output=tmp_path / "a.yaml")
    assert bad_id.code == 2 and "--id Left Pad: use lowercase letters" in bad_id.stderr
    missing = new("--from-osv", tmp_path / "nope.json", "--id", "a", output=tmp_path / "a.yaml")
    assert missing.code == 2 and "nope.json: no such file or directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = new("--from-osv", tmp_path / "empty", "--id", "a", output=tmp_path / "a.yaml")
    assert empty.code == 2 and "no .json files (OSV records) in it" in empty.stderr
    registry = new("--from-osv", path, "--id", "a", "--registry", "ftp://x", output=tmp_path / "a")
    assert registry.code == 2 and "expected an http:// or https:// URL" in registry.stderr
    assert not (tmp_path / "a.yaml").exists()

    # an existing file is never overwritten without --force
    target = tmp_path / "keep.yaml"
    target.write_text("mine\n")
    kept = new("--from-osv", path, "--id", "a", output=target)
    assert kept.code == 2 and "already exists; pass --force" in kept.stderr
    assert target.read_text() == "mine\n"
    forced = new("--from-osv", path, "--id", "a", "--force", output=target)
    assert forced.code == 1 and target.read_text().startswith("# Playbook written by")

    # - writes the playbook to standard output, the messages to standard error
    result = run_cli("new", "--from-osv", path, "--id", "a", "-o", "-")
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("# Playbook written by") and "\nid: a\n" in result.stdout
    assert "<stdout>" not in result.stderr and "safe_pins.1: 'FILL-IN" in result.stderr


def test_headless_without_osv_refuses(run_cli) -> None:
    result = run_cli("new", "--id", "x")
    assert result.returncode == 2
    assert "no terminal to ask the questions on; pass --from-osv FILE|DIR" in result.stderr
    assert result.stdout == ""


def test_title_option_and_default(tmp_path: Path) -> None:
    out = new(
        "--from-osv", NPM / "debug", "--id", "d", "--title", "debug 4.4.2", output=tmp_path / "d"
    )
    assert out.document()["title"] == "debug 4.4.2"
    out = new("--from-osv", NPM / "debug", "--id", "d", output=tmp_path / "e")
    assert out.document()["title"] == "Malicious npm versions: debug"


def test_hostile_text_in_a_record_stays_text(tmp_path: Path, run_cli) -> None:
    """Escape sequences, bidi overrides and newlines from a record cannot reach a terminal or
    turn into YAML keys or comment lines of their own."""
    doc = record(versions=["1.3.1"])
    doc["id"] = "MAL-2026-1\n# injected comment\nevil: true"
    doc["summary"] = "\x1b[2J\x1b]0;owned\x07 cleared \u202eeman"
    doc["details"] = "first line\n# not a comment\nid: other\n\ud800"
    doc["references"] = [{"type": "WEB\u202e", "url": "https://ex.test/\x1b[1A"}]
    path = write(tmp_path / "hostile.json", doc)
    out = new("--from-osv", path, "--id", "safe", output=tmp_path / "h.yaml")
    assert out.code == 1, out.stderr
    raw = out.path.read_text(encoding="utf-8")
    assert "\x1b" not in raw and "\u202e" not in raw and "\x07" not in raw
    assert "\x1b" not in out.stderr and "\u202e" not in out.stderr
    document = out.document()
    assert set(document) == {"id", "title", "version", "incident", "steps"}
    assert document["id"] == "safe"
    summary = document["incident"]["summary"]
    assert "\\x1b[2J" in summary and "\\u202eeman" in summary
    assert "\n# not a comment\nid: other\n" in summary  # text inside the summary, nothing more
    assert all(line.startswith("#") for line in raw.split("\nid: safe\n", 1)[0].splitlines())
    filled = tmp_path / "filled.yaml"
    filled.write_text(raw.replace("FILL-IN the highest good left-pad 1.x version", "1.3.0"))
    validated = run_cli("validate", filled)
    assert validated.returncode == 0, validated.stderr
