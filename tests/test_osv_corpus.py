"""Every record of the OSV corpus (tests/fixtures/osv) through `runbook new --from-osv`: the exact
bad set of each, the hazards reported, and playbooks that validate once their pins are filled in."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "osv"
CORPUS = FIXTURE / "records" / "osv"
NPM = CORPUS / "malicious" / "npm"
PLACEHOLDER = re.compile(r"FILL-IN the highest good (\S+) (\d+)\.x version")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def document(self) -> dict:
        return yaml.safe_load(self.text)

    def packages(self) -> dict[str, dict]:
        return {p["name"]: p for p in self.document()["incident"]["packages"]}


def new(*args: str | Path, output: Path) -> Outcome:
    """`runbook new ARGS -o OUTPUT`, in this process (the real CLI and its plugin loading)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["new", *map(str, args), "-o", str(output)])
    return Outcome(code, out.getvalue(), err.getvalue(), output)


def header(text: str) -> str:
    """The comment block at the top of a playbook, its wrapped lines joined again."""
    lines: list[str] = []
    for line in text.split("\nid: ", 1)[0].splitlines():
        body = line.removeprefix("#")
        if body.startswith("   ") and lines:  # a wrapped line goes on
            lines[-1] += " " + body.strip()
        else:
            lines.append(body.strip())
    return "\n".join(lines)


def fill_pins(text: str) -> str:
    """What a person does after `runbook new` without a registry: put a version in each pin."""
    return PLACEHOLDER.sub(lambda m: f"{m[2]}.999.0", text)


def bad_set(package: dict) -> dict:
    """The bad set of a generated package entry, in the shape of EXPECTED."""
    if package.get("any_version"):
        return {"any": True}
    out = {}
    if package.get("bad_versions"):
        out["versions"] = package["bad_versions"]
    if package.get("bad_ranges"):
        out["ranges"] = package["bad_ranges"]
    return out


# What each record says, after the hazards are handled. Versions in semver order.
EXPECTED: dict[str, dict[str, dict] | None] = {
    "@asyncapi/generator/MAL-0000-generator.json": {"@asyncapi/generator": {"versions": ["3.3.1"]}},
    "@asyncapi/generator/MAL-2025-190636.json": {
        "@asyncapi/generator": {"versions": ["2.8.5", "2.8.6"]}  # descending in the record
    },
    "@crowdstrike/commitlint/MAL-0000-0018.json": {
        "@crowdstrike/commitlint": {"versions": ["8.1.1", "8.1.2"]}
    },
    "@ctrl/deluge/MAL-2025-47131.json": {  # stale "0" + bounded range: the range wins
        "@ctrl/deluge": {"ranges": [">=7.2.1 <=7.2.2"]}
    },
    "@ctrl/tinycolor/MAL-0000-ghsa-malware-126ed7dd5bad8a31.json": {
        "@ctrl/tinycolor": {"ranges": [">=4.1.1 <=4.1.2"]}
    },
    "@ctrl/tinycolor/MAL-0000-ghsa-malware-21271c2ac161a78b.json": {  # bare "0" alone
        "@ctrl/tinycolor": {"any": True}
    },
    "@ctrl/tinycolor/MAL-0000-google-open-source-security-324615ccd53bf9d6.json": {
        "@ctrl/tinycolor": {"versions": ["4.1.1", "4.1.2"]}  # unsorted in the record
    },
    "@ctrl/tinycolor/MAL-2025-47141.json": {"@ctrl/tinycolor": {"ranges": [">=4.1.1 <=4.1.2"]}},
    "@ensdomains/cypress-metamask/MAL-0000-ossf-package-analysis-94ba569d22b14d43.json": {
        "@ensdomains/cypress-metamask": {"versions": ["1.2.1"]}
    },
    "@ensdomains/ens-contracts/MAL-0000-ghsa-malware-72f6ea6e4682d9b2.json": {
        "@ensdomains/ens-contracts": {"versions": ["1.6.1"]}  # stale "0" next to the list
    },
    "@ensdomains/ens-contracts/MAL-2025-190931.json": {
        "@ensdomains/ens-contracts": {"versions": ["1.6.1"]}
    },
    "@nx/key/MAL-2025-41440.json": {"@nx/key": {"versions": ["3.2.0"]}},
    "@postman/aether-icons/MAL-0000-reversing-labs-d39513f4f0d604ef.json": {
        "@postman/aether-icons": {"versions": ["2.23.2", "2.23.3", "2.23.4"]}
    },
    "@postman/tunnel-agent/MAL-2025-190647.json": {
        "@postman/tunnel-agent": {"versions": ["0.6.5", "0.6.6", "0.6.7"]}
    },
    "@solana/web3.js/MAL-2024-11183.json": {"@solana/web3.js": {"ranges": [">=1.95.6 <1.95.8"]}},
    "@zapier/zapier-sdk/MAL-0000-google-open-source-security-111a020e4dd6a5cc.json": {
        "@zapier/zapier-sdk": {"versions": ["0.15.5", "0.15.6", "0.15.7"]}
    },
    "@zapier/zapier-sdk/MAL-2025-190648.json": {
        "@zapier/zapier-sdk": {"versions": ["0.15.5", "0.15.6", "0.15.7"]}
    },
    "ansi-styles/MAL-2025-46967.json": {"ansi-styles": {"versions": ["6.2.2"]}},
    "axios/MAL-0000-amazon-inspector-503284900929e333.json": {
        "axios": {"versions": ["0.30.4", "1.14.1"]}
    },
    "axios/MAL-0000-ghsa-malware-bcd851213ecf0f8d.json": {
        "axios": {"versions": ["0.30.4", "1.14.1"]}
    },
    "axios/MAL-0000-google-open-source-security-50bbf7104516d22b.json": {
        "axios": {"versions": ["0.30.4", "1.14.1"]}
    },
    "axios/MAL-2026-2307.json": {"axios": {"versions": ["0.30.4", "1.14.1"]}},
    "chalk/MAL-0000-chalk.json": {"chalk": {"versions": ["5.6.1"]}},
    "chalk/MAL-2025-46969.json": {"chalk": {"versions": ["5.6.1"]}},
    "color-convert/MAL-2025-46971.json": {"color-convert": {"versions": ["3.1.1"]}},
    "debug/MAL-2025-46974.json": {"debug": {"versions": ["4.4.2"]}},
    "eslint-config-prettier/MAL-2025-6022.json": {
        "eslint-config-prettier": {"versions": ["8.10.1", "9.1.1", "10.1.6", "10.1.7"]}
    },
    "node-ipc/MAL-0000-node-ipc.json": {"node-ipc": {"versions": ["9.1.6", "9.2.3", "12.0.1"]}},
    "node-ipc/MAL-2026-3744.json": {"node-ipc": {"versions": ["9.1.6", "9.2.3", "12.0.1"]}},
    "nx/MAL-2025-41443.json": {
        "nx": {
            "versions": [
                *("20.9.0", "20.10.0", "20.11.0", "20.12.0"),
                *("21.5.0", "21.6.0", "21.7.0", "21.8.0"),
            ]
        }
    },
    "plain-crypto-js/MAL-0000-ghsa-malware-4dfdc3dd18fb6fe8.json": {
        "plain-crypto-js": {"versions": ["0.0.1-security"]}  # stale "0" next to the list
    },
    "plain-crypto-js/MAL-0000-google-open-source-security-f29920f3d0ab4a3f.json": {
        "plain-crypto-js": {"versions": ["4.2.0", "4.2.1"]}
    },
    "plain-crypto-js/MAL-2026-2306.json": {"plain-crypto-js": {"versions": ["4.2.1"]}},
    "posthog-node/MAL-2025-190925.json": {
        "posthog-node": {"versions": ["4.18.1", "5.11.3", "5.13.3"]}  # unsorted across majors
    },
    "shubholic-test/MAL-2022-6113.json": {"shubholic-test": {"any": True}},
    "strip-ansi/MAL-2025-46980.json": {"strip-ansi": {"versions": ["7.1.1"]}},
    "supports-color/MAL-0000-supports-color.json": {"supports-color": {"versions": ["10.2.1"]}},
    "wrap-ansi/MAL-2025-46983.json": {"wrap-ansi": {"versions": ["9.0.1"]}},
    # withdrawn: skipped with a note, so nothing is left to write
    "withdrawn:@amber-team/amazon-utils/MAL-2025-7048.json": None,
    "withdrawn:@ctrl/plex/MAL-2026-4377.json": None,
}
# records whose `introduced: "0"` sits next to exact data: dropped, and reported
STALE_ZERO = {
    "@ctrl/deluge/MAL-2025-47131.json",
    "@ctrl/tinycolor/MAL-2025-47141.json",
    "@ensdomains/ens-contracts/MAL-0000-ghsa-malware-72f6ea6e4682d9b2.json",
    "@ensdomains/ens-contracts/MAL-2025-190931.json",
    "plain-crypto-js/MAL-0000-ghsa-malware-4dfdc3dd18fb6fe8.json",
    "plain-crypto-js/MAL-0000-google-open-source-security-f29920f3d0ab4a3f.json",
}


def record_path(key: str) -> Path:
    if key.startswith("withdrawn:"):
        return CORPUS / "withdrawn" / "npm" / key.removeprefix("withdrawn:")
    return NPM / key


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Each record on its own through `runbook new`, once for the whole module."""
    out = tmp_path_factory.mktemp("osv-corpus")
    return {
        key: new("--from-osv", record_path(key), "--id", f"rec-{n}", output=out / f"rec-{n}.yaml")
        for n, key in enumerate(EXPECTED)
    }


def test_the_fixture_is_the_corpus_unchanged() -> None:
    """Every record is byte for byte the copy the manifest describes (provenance intact)."""
    with (FIXTURE / "records-manifest.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 40
    on_disk = sorted(p.relative_to(FIXTURE / "records").as_posix() for p in CORPUS.rglob("*.json"))
    assert on_disk == sorted(row["record"] for row in rows)
    for row in rows:
        data = (FIXTURE / "records" / row["record"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["record"]
    readme = (FIXTURE / "README.md").read_text(encoding="utf-8")
    assert "## Provenance" in readme and "## Licenses" in readme
    assert "CDLA-Permissive-2.0" in readme
    assert len((FIXTURE / "compromised-versions.tsv").read_text().splitlines()) == 2916
    assert set(EXPECTED) == {
        ("withdrawn:" if r["record"].startswith("osv/withdrawn/") else "")
        + r["record"].split("/npm/", 1)[1]
        for r in rows
    }


@pytest.mark.parametrize("key", list(EXPECTED))
def test_each_record_gives_its_exact_bad_set(generated: dict[str, Outcome], key: str) -> None:
    outcome, expected = generated[key], EXPECTED[key]
    if expected is None:
        assert outcome.code == 2, outcome.stderr
        assert "withdrawn on" in outcome.stderr and record_path(key).name in outcome.stderr
        assert "nothing written" in outcome.stderr
        assert not outcome.path.exists()
        return
    # written; safe pins are left to fill in (no registry): exit 1, each one named
    every = all(e.get("any") for e in expected.values())
    assert outcome.code == (0 if every else 1), outcome.stderr
    if every:  # nothing to pin, nothing to fill in: valid as written, and the reason is noted
        assert 'says introduced "0" with no upper bound' in outcome.stderr
    assert "Traceback" not in outcome.stderr
    packages = outcome.packages()
    assert {name: bad_set(p) for name, p in packages.items()} == expected
    for name, package in packages.items():
        lines = {m[2] for m in PLACEHOLDER.finditer(outcome.text) if m[1] == name}
        assert set(package.get("safe_pins", {})) == lines
        for line in lines:
            assert re.search(
                rf"safe_pins\.{line}: 'FILL-IN the highest good {re.escape(name)} {line}\.x",
                outcome.stderr,
            ), outcome.stderr
    stale = 'ignored the range introduced "0"' in outcome.stderr
    assert stale == (key in STALE_ZERO), outcome.stderr
    if stale:  # reported where it survives: header comment, summary, the package's note
        assert 'ignored the range introduced "0"' in header(outcome.text)
        (package,) = packages.values()
        assert 'REVIEW: ignored the range introduced "0"' in package["note"]
        summary = outcome.document()["incident"]["summary"]
        assert "## Review before use" in summary and "set any_version: true" in summary


def test_every_corpus_playbook_validates_once_pins_are_filled(
    generated: dict[str, Outcome], run_cli, tmp_path: Path
) -> None:
    files = []
    for key, outcome in generated.items():
        if EXPECTED[key] is None:
            continue
        filled = tmp_path / outcome.path.name
        filled.write_text(fill_pins(outcome.text), encoding="utf-8")
        files.append(filled)
    result = run_cli("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(files) == 38


def test_missing_and_empty_ids_and_no_final_newline(generated: dict[str, Outcome]) -> None:
    """Manual submissions (no id), per-source copies (id "") and files without a final newline
    are read like the others; they are named by file, and their ids are not made up."""
    no_newline = ("@crowdstrike/commitlint/MAL-0000-0018.json", "chalk/MAL-0000-chalk.json")
    for key in no_newline:
        assert not record_path(key).read_bytes().endswith(b"\n")
    for key in (*no_newline, "axios/MAL-0000-amazon-inspector-503284900929e333.json"):
        outcome = generated[key]
        assert outcome.code == 1
        (package,) = outcome.packages().values()
        assert "" not in package.get("advisories", [])
        assert record_path(key).name in outcome.text  # named by its file
    ghsa = generated["axios/MAL-0000-ghsa-malware-bcd851213ecf0f8d.json"].packages()["axios"]
    assert ghsa["advisories"] == ["GHSA-fw8c-xr5c-95f9"]
    canonical = generated["axios/MAL-2026-2307.json"].packages()["axios"]
    assert canonical["advisories"] == ["MAL-2026-2307", "GHSA-fw8c-xr5c-95f9"]


def test_indicators_references_and_aliases(generated: dict[str, Outcome]) -> None:
    axios = generated["axios/MAL-2026-2307.json"].document()["incident"]
    assert axios["indicators"]["network"] == {
        "domains": ["sfrclak.com"],
        "ips": ["142.11.206.73"],
        "urls": ["http://sfrclak.com:8000/6202033"],
    }
    urls = [r["url"] for r in axios["references"]]
    assert urls[0] == "https://osv.dev/vulnerability/MAL-2026-2307"
    assert "https://github.com/advisories/GHSA-fw8c-xr5c-95f9" in urls
    assert "https://github.com/axios/axios/issues/10604" in urls
    # iocs under affected[].database_specific (a manual record) are read too
    asyncapi = generated["@asyncapi/generator/MAL-0000-generator.json"].document()["incident"]
    assert asyncapi["indicators"]["network"]["ips"] == ["85.137.53.71"]
    assert asyncapi["indicators"]["network"]["urls"][0].startswith("https://ipfs.io/ipfs/")
    # evidence files become file hashes; tarball hashes go into the package's note
    node_ipc = generated["node-ipc/MAL-2026-3744.json"].document()["incident"]
    (evidence,) = node_ipc["indicators"]["file_hashes"]
    assert evidence["name"] == "node-ipc.cjs"
    assert evidence["sha256"].startswith("96097e0612d9575c")
    assert "node-ipc-9.1.6.tgz" in node_ipc["packages"][0]["note"]
    nx = generated["nx/MAL-2025-41443.json"].packages()["nx"]
    assert nx["advisories"] == ["MAL-2025-41443", "GHSA-cxm3-wv7p-598c", "CVE-2025-10894"]


def test_whole_corpus_in_one_playbook(tmp_path: Path, run_cli) -> None:
    outcome = new("--from-osv", CORPUS, "--id", "corpus", output=tmp_path / "corpus.yaml")
    assert outcome.code == 1, outcome.stderr
    packages = outcome.packages()
    assert len(packages) == 25  # 27 packages, 2 of them only in withdrawn records
    assert "@amber-team/amazon-utils" not in packages and "@ctrl/plex" not in packages
    for name in ("MAL-2025-7048", "MAL-2026-4377"):
        assert re.search(rf"note: skipped .*{name}\.json: {name} was withdrawn on", outcome.stderr)
        assert f"{name} was withdrawn on" in header(outcome.text)
    # one package per name, whatever number of records spoke about it
    assert bad_set(packages["@ctrl/tinycolor"]) == {
        "versions": ["4.1.1", "4.1.2"],
        "ranges": [">=4.1.1 <=4.1.2"],
    }
    assert bad_set(packages["@asyncapi/generator"]) == {"versions": ["2.8.5", "2.8.6", "3.3.1"]}
    assert bad_set(packages["plain-crypto-js"]) == {
        "versions": ["0.0.1-security", "4.2.0", "4.2.1"]
    }
    assert bad_set(packages["shubholic-test"]) == {"any": True}
    filled = tmp_path / "filled.yaml"
    filled.write_text(fill_pins(outcome.text), encoding="utf-8")
    result = run_cli("validate", filled)
    assert result.returncode == 0, result.stderr


def test_canonical_and_per_source_copies_merge(tmp_path: Path) -> None:
    # axios: the canonical record and its three per-source copies say the same: no warning
    axios = new("--from-osv", NPM / "axios", "--id", "axios", output=tmp_path / "a.yaml")
    (package,) = axios.packages().values()
    assert package["bad_versions"] == ["0.30.4", "1.14.1"]
    assert "Merged from 4 records: MAL-0000-amazon-inspector" in package["note"]
    assert "MAL-2026-2307" in package["note"]
    assert "review:" not in axios.stderr and "REVIEW" not in axios.text
    assert axios.document()["incident"]["summary"].count("malicious dependency was added") == 1

    # tinycolor: four copies that disagree, every one listed, and the stale "0" reported
    tiny = new("--from-osv", NPM / "@ctrl/tinycolor", "--id", "t", output=tmp_path / "t.yaml")
    warning = next(line for line in tiny.stderr.splitlines() if "records differ" in line)
    for statement in (
        'MAL-2025-47141: >=4.1.1 <=4.1.2, introduced "0" (every version)',
        "MAL-0000-ghsa-malware-126ed7dd5bad8a31.json: >=4.1.1 <=4.1.2",
        'MAL-0000-ghsa-malware-21271c2ac161a78b.json: introduced "0" (every version)',
        "MAL-0000-google-open-source-security-324615ccd53bf9d6.json: 4.1.1, 4.1.2",
    ):
        assert statement in warning
    assert "REVIEW BEFORE USE (2;" in header(tiny.text)
    assert warning.removeprefix("runbook: review: ") in header(tiny.text)
    assert "the records differ" in tiny.document()["incident"]["summary"]
    assert "the records differ" in tiny.packages()["@ctrl/tinycolor"]["note"]

    # plain-crypto-js: the sources disagree (0.0.1-security / 4.2.0 + 4.2.1 / 4.2.1)
    pcj = new("--from-osv", NPM / "plain-crypto-js", "--id", "p", output=tmp_path / "p.yaml")
    assert bad_set(pcj.packages()["plain-crypto-js"]) == {
        "versions": ["0.0.1-security", "4.2.0", "4.2.1"]
    }
    assert "the records differ" in pcj.stderr
    assert "MAL-2026-2306: 4.2.1" in pcj.stderr
