"""The leak test for the incident record: journals made by the real runner on a machine planted
with canary secrets of every kind, merged into every format, signed; every output searched for
every canary.

Journals: the bundled playbook run dry by the real `runbook run` on the planted machine (its
discovery and checklist steps name every credential, redacted), a live run of the credential
steps alone, `runbook note`s quoting secrets, and one journal written without any redaction at
all (as an old or foreign writer might have) holding the token-shaped canaries: the record must
redact those on the way out. Outputs: every record format through the report handler, its
stderr, the single-journal report, the CACAO playbook export, `runbook audit sign`'s output and
the `.sig` files.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runbook.journal import Journal
from runbook.record.cli import FORMATS
from runbook.redact import TOKEN_PATTERNS
from tests.conftest import EXAMPLE, RUNBOOK
from tests.fixtures.credentials import plant
from tests.record_support import call, ssh_key
from tests.test_credentials_leak import leaks, merge_tree

CLOSED = "http://127.0.0.1:9"
CREDENTIAL_STEPS = """\
id: credential-steps
title: Credential steps only
version: "1"
incident:
  summary: The credential part of the axios playbook.
  window: {start: "2026-03-31T00:21:00Z", end: "2026-03-31T03:29:00Z"}
  packages: [{name: axios, bad_versions: ["1.14.1"]}]
steps:
  - {id: discover-credentials, uses: discover_credentials, title: Find credentials}
  - id: rotate-other-credentials
    uses: credential_checklist
    title: Revoke the other credentials
    when: {step: discover-credentials, outcome: succeeded}
"""


def runbook(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def test_no_canary_reaches_any_record_output(tmp_path: Path) -> None:
    world = plant.build(tmp_path / "world")
    merge_tree(EXAMPLE, world.target)
    journals = tmp_path / "journals"
    env = {
        **world.env,
        "PATH": os.environ["PATH"],
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "RUNBOOK_OPERATOR": "leak-test",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "AWS_ENDPOINT_URL": CLOSED,
        **{name: CLOSED for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
    }
    canaries = {f"planted-{i}": v for i, v in enumerate(world.all_secrets()) if len(v) >= 8}
    assert len(canaries) > 20

    # -- the journals: real runs on the planted machine ---------------------------------------
    dry = journals / "laptop" / "dry-run.jsonl"
    proc = runbook(
        env,
        "run",
        "axios-2026-03",
        "--target",
        world.target,
        "--dry-run",
        "--yes",
        "--journal",
        dry,
    )
    assert proc.returncode in (0, 1, 3), proc.stdout[-3000:] + proc.stderr[-3000:]
    playbook = tmp_path / "credential-steps.yaml"
    playbook.write_text(CREDENTIAL_STEPS)
    live = journals / "laptop" / "live.jsonl"
    proc = runbook(env, "run", playbook, "--target", world.target, "--yes", "--journal", live)
    assert proc.returncode in (0, 1, 3), proc.stdout[-3000:] + proc.stderr[-3000:]
    secrets = list(canaries.values())
    shaped = [v for v in secrets if any(p.search(v) for _, p in TOKEN_PATTERNS)]
    assert len(shaped) >= 5
    # notes quote secrets the redactor can know: token-shaped, or after `password=`/`token=`
    # (a bare secret of no known shape in a note is journaled as typed: nothing can know it)
    plain = [v for v in secrets if v not in shaped and not any(c in v for c in " \"',;")]
    for journal, text in (
        (dry, f"old token {shaped[0]} revoked"),
        (live, f"rotated: password={plain[0]} token={plain[1]}"),
        (live, f"{shaped[1]} and {shaped[2]} are dead"),
    ):
        noted = runbook(env, "note", journal, text)
        assert noted.returncode == 0, noted.stderr
    # a journal from a writer that redacted nothing, holding the token-shaped canaries
    raw = journals / "old-writer" / "run.jsonl"
    with Journal(raw, lambda data: data) as handle:
        handle.append(
            "run_started",
            {
                "host": "old",
                "target": str(world.target),
                "mode": "live",
                "operator": f"op {shaped[0]}",
                "tool_version": "0.1.0",
                "playbook": {"id": "axios-2026-03", "title": shaped[1]},
            },
        )
        handle.append(
            "step_planned",
            {
                "step": "detect",
                "findings": [
                    {
                        "severity": "at-risk",
                        "kind": "credential",
                        "path": f"/x/{shaped[2]}",
                        "message": f"token {shaped[3]}",
                    }
                ],
            },
        )
        handle.append("step_started", {"step": "detect"})
        handle.append(
            "effect",
            {"step": "detect", "op": "run", "argv": f"curl -H {shaped[4]}", "outcome": "ok"},
        )
        handle.append(
            "step_finished", {"step": "detect", "outcome": "succeeded", "summary": " ".join(shaped)}
        )
        handle.append("run_finished", {"outcome": "completed", "reason": ""})
    assert any(v in raw.read_text() for v in shaped)  # the canaries really are in there

    # -- sign, merge, render every format ------------------------------------------------------
    key, line = ssh_key(tmp_path / "keys", "leak@example.test")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(line)
    outputs: dict[str, str] = {}
    for journal in (dry, live):
        signed = call("audit", "sign", journal, "--key", key)
        assert signed.code == 0, signed.err
        outputs[f"sign {journal.name}"] = signed.out + signed.err
        outputs[f"{journal.name}.sig"] = Path(f"{journal}.sig").read_text()
        verified = call("audit", "verify", journal, "--allowed-signers", allowed)
        assert verified.code == 0, verified.out
        outputs[f"verify {journal.name}"] = verified.out + verified.err
    for fmt in FORMATS:
        out = tmp_path / f"record.{fmt}"
        result = call(
            "report",
            journals,
            "--format",
            fmt,
            "--incident",
            "leak",
            "--allowed-signers",
            allowed,
            "-o",
            out,
        )
        assert result.code == 0, result.err
        outputs[f"record {fmt}"] = out.read_text() + result.out + result.err
        assert out.stat().st_size > 1000
    for fmt in ("md", "json"):
        single = call("report", dry, "--format", fmt, "--allowed-signers", allowed)
        outputs[f"single {fmt}"] = single.out + single.err
    exported = call("export", "cacao", "axios-2026-03")
    outputs["cacao playbook"] = exported.out + exported.err

    # the search can fail, and the outputs are about the credentials (an empty search proves
    # nothing)
    sample = secrets[0]
    assert leaks({"control": sample}, {"control": f"x{sample}x"}) != []
    found = leaks(canaries, outputs)
    assert found == [], "\n".join(found)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["credentials"]["found"], "the record lists the planted credentials (redacted)"
    assert any("…" in c.get("redacted", "") for c in record["credentials"]["found"])
    assert "leak@example.test" in outputs["record md"]  # the signer is named
    assert all("BEGIN SSH SIGNATURE" in outputs[f"{j.name}.sig"] for j in (dry, live))
    assert "PRIVATE KEY" not in "".join(outputs.values())
