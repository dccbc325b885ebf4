"""`runbook new --from-list`: a flat list of bad versions (the public Shai-Hulud list, 2,915
versions of 1,630 packages) alone or with OSV records, `--no-pins`, and bad input named by file,
line and column with nothing written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from runbook.playbook import load_playbook
from tests.test_osv_corpus import NPM, new

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "fixtures" / "osv" / "compromised-versions.tsv"
BUNDLED = ROOT / "playbooks" / "shai-hulud-2025.yaml"


def listed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in LIST.read_text().splitlines()[1:]:
        name, version = line.split("\t")
        out.setdefault(name, set()).add(version)
    return out


def test_the_whole_public_list_makes_a_valid_playbook_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    out = new("--from-list", LIST, "--no-pins", "--id", "list", output=tmp_path / "list.yaml")
    assert out.code == 0, out.stderr
    assert time.monotonic() - started < 20
    doc = yaml.safe_load(out.text)
    packages = {p["name"]: set(p["bad_versions"]) for p in doc["incident"]["packages"]}
    assert packages == listed()
    assert not any("safe_pins" in p for p in doc["incident"]["packages"])
    text = out.text
    assert text.startswith("# Playbook written by `runbook new --from-list` from 1 version list")
    assert "2,915 versions of 1,630 packages" in text
    assert "no safe pins (--no-pins)" in text
    # step texts name a few packages and count the rest instead of listing 1,630
    detect = next(s for s in doc["steps"] if s["id"] == "detect")
    assert "and 1,622 more (see incident.packages)" in detect["description"]
    assert len(detect["description"]) < 5000
    load_playbook(out.path)  # and it loads


def test_without_no_pins_every_pin_is_left_to_fill_in(tmp_path: Path) -> None:
    path = tmp_path / "two.tsv"
    path.write_text("package\tversion\nleft-pad\t1.3.1\n@scope/x\t2.0.1\n")
    out = new("--from-list", path, "--id", "two", output=tmp_path / "two.yaml")
    assert out.code == 1  # written, but pins are to fill in
    assert "FILL-IN the highest good left-pad 1.x version" in out.text
    assert "safe_pins.1: 'FILL-IN" in out.stderr


def test_records_and_a_list_together(tmp_path: Path) -> None:
    """The union of both: the list's versions join the records' (a note says which the records
    did not name), and versions inside a record's range are not called new."""
    tinycolor, deluge = NPM / "@ctrl" / "tinycolor", NPM / "@ctrl" / "deluge"
    lst = tmp_path / "list.txt"
    lst.write_text(
        "# from a peer scanner\n"
        "@ctrl/deluge@1.2.0\n@ctrl/deluge@7.2.1\n@ctrl/tinycolor@4.1.1\n\nlonely-pkg@0.0.7\n"
    )
    out = new(
        "--from-osv",
        tinycolor,
        deluge,
        "--from-list",
        lst,
        "--no-pins",
        "--id",
        "both",
        output=tmp_path / "both.yaml",
    )
    assert out.code == 0, out.stderr
    doc = yaml.safe_load(out.text)
    packages = {p["name"]: p for p in doc["incident"]["packages"]}
    assert set(packages["@ctrl/deluge"]["bad_versions"]) == {"1.2.0", "7.2.1"}
    assert packages["@ctrl/deluge"]["bad_ranges"] == [">=7.2.1 <=7.2.2"]
    assert "adds 1.2.0, which the OSV records do not name" in packages["@ctrl/deluge"]["note"]
    assert "adds" not in packages["@ctrl/tinycolor"].get("note", "").split("list")[-1]
    assert packages["lonely-pkg"]["bad_versions"] == ["0.0.7"]
    assert out.text.startswith(
        "# Playbook written by `runbook new --from-osv --from-list` from 5 OSV records and 1 "
        "version list"
    )
    assert (
        "names 4 versions of 3 packages (1 of them in no OSV record given)"
        in doc["incident"]["summary"]
    )


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        ("left-pad\t1.2\n", ":1:10:", "'1.2' is not an exact version (like 1.14.1)"),
        ("left-pad 1.3.1\n", ":1:1:", "expected name<TAB>version or name@version"),
        ("ok@1.0.0\nNot A Name@1.0.0\n", ":2:1:", "'Not A Name' is not an npm package name"),
        ("@scope/pkg@^1.0.0\n", ":1:12:", "'^1.0.0' is not an exact version"),
        ("pypi:requests:2.0.0\n", ":1:1:", "expected name<TAB>version or name@version"),
    ],
)
def test_bad_lines_are_named_and_nothing_is_written(
    tmp_path: Path, content: str, where: str, message: str
) -> None:
    path = tmp_path / "list.tsv"
    path.write_text(content)
    out = new("--from-list", path, "--id", "x", output=tmp_path / "x.yaml")
    assert out.code == 2
    assert f"{path}{where} {message}" in out.stderr, out.stderr
    assert "nothing written" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_a_file_of_another_format_gives_a_bounded_list_of_problems(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("\n".join(f'  "line {n}": true,' for n in range(500)))
    out = new("--from-list", path, "--id", "x", output=tmp_path / "x.yaml")
    assert out.code == 2
    assert out.stderr.count(str(path)) == 21  # 20 problems, then the count of the rest
    assert "and 480 more such lines" in out.stderr


def test_empty_missing_and_binary_lists(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("package\tversion\n# nothing yet\n")
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(b"left-pad\t1.3.1\n\xff\xfe\n")
    out = new(
        "--from-list",
        empty,
        tmp_path / "missing.tsv",
        binary,
        "--id",
        "x",
        output=tmp_path / "x.yaml",
    )
    assert out.code == 2
    assert f"{empty}: no versions in it" in out.stderr
    assert f"{tmp_path / 'missing.tsv'}: cannot read" in out.stderr
    assert f"{binary}:2:1: not valid UTF-8 text" in out.stderr


def test_an_id_is_needed(tmp_path: Path) -> None:
    out = new("--from-list", LIST, output=tmp_path / "x.yaml")
    assert out.code == 2 and "--id ID is needed with --from-list" in out.stderr


def test_the_bundled_playbook_carries_the_list_and_the_records() -> None:
    """Every listed version is a bad version of the bundled playbook, and so is every version of
    the Shai-Hulud and chalk/debug records it was made from."""
    playbook = load_playbook(BUNDLED).playbook
    bad = {p.name: set(p.bad_versions) for p in playbook.incident.packages}
    for name, versions in listed().items():
        assert versions <= bad[name], name
    assert {"8.1.1", "8.1.2"} <= bad["@crowdstrike/commitlint"]
    assert {"2.23.2", "2.23.3", "2.23.4"} <= bad["@postman/aether-icons"]  # 2.23.3: records only
    assert len(playbook.incident.packages) == 1630
