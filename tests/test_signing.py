"""Signed journals: `ssh-keygen -Y sign` over the head, checked against allowed signers.

Real keys (made by ssh-keygen in tmp_path), real journals (the Journal class), real ssh-keygen."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.journal import canonical, entry_hash, read_entries
from runbook.signing import (
    NAMESPACE,
    SigningError,
    check,
    message,
    parse,
    read,
    sign,
    signature_path,
)
from tests.record_support import call, finished, item, ssh_key, started, step, write


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return write(
        tmp_path / "run.jsonl",
        [started(), *step("detect", "succeeded"), item("check", "files", "done"), finished()],
    )


@pytest.fixture
def ana(tmp_path: Path) -> tuple[Path, Path]:
    """ana's key and an allowed_signers file naming her."""
    key, line = ssh_key(tmp_path / "keys", "ana@example.test")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(line)
    return key, allowed


def hashes(path: Path) -> list[str]:
    return [e["hash"] for e in read_entries(path)]


def test_sign_writes_the_head_and_an_sshsig_over_it(journal: Path, ana) -> None:
    key, allowed = ana
    signed = sign(journal, key)
    sig = signature_path(journal)
    assert sig == journal.with_name("run.jsonl.sig") == signed.path
    text = sig.read_text()
    head = read_entries(journal)[-1]["hash"]
    lines = text.splitlines()
    assert lines[:3] == ["runbook journal signature v1", "entries: 5", f"head: {head}"]
    assert (
        lines[3] == "-----BEGIN SSH SIGNATURE-----" and lines[-1] == "-----END SSH SIGNATURE-----"
    )
    assert signed.head == head and signed.entries == 5
    assert signed.key.startswith("ED25519 SHA256:")
    assert "PRIVATE KEY" not in text and key.read_text().splitlines()[1] not in text
    parsed = read(sig)
    assert parsed.message == message(head, 5) == "\n".join(lines[:3]).encode() + b"\n"
    result = check(hashes(journal), parsed, allowed)
    assert (result.status, result.coverage, result.signer) == (
        "verified",
        "whole",
        "ana@example.test",
    )
    assert result.ok and result.key == signed.key


def test_the_signature_is_plain_sshsig(journal: Path, ana, tmp_path: Path) -> None:
    """A person can check it with ssh-keygen alone, as docs/report.md says."""
    import subprocess

    key, allowed = ana
    sign(journal, key)
    sig = read(signature_path(journal))
    armor = tmp_path / "armor.sig"
    armor.write_text(sig.armor)
    proc = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            "ana@example.test",
            "-n",
            NAMESPACE,
            "-s",
            str(armor),
        ],
        input=sig.message,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b'Good "runbook-journal" signature for ana@example.test' in proc.stdout


def test_without_allowed_signers_the_key_is_named_but_not_the_person(journal: Path, ana) -> None:
    key, _ = ana
    sign(journal, key)
    result = check(hashes(journal), read(signature_path(journal)), None)
    assert (result.status, result.signer) == ("valid", "")
    assert "signer not checked" in result.describe()


def test_a_signer_not_allowed_is_refused(journal: Path, ana, tmp_path: Path) -> None:
    key, _ = ana
    _, bob_line = ssh_key(tmp_path / "bob", "bob@example.test")
    only_bob = tmp_path / "only-bob"
    only_bob.write_text(bob_line)
    sign(journal, key)
    result = check(hashes(journal), read(signature_path(journal)), only_bob)
    assert result.status == "invalid" and not result.ok
    assert "not among the allowed signers" in result.reason


def test_a_namespace_restricted_signer_is_refused(journal: Path, ana, tmp_path: Path) -> None:
    key, allowed = ana
    git_only = tmp_path / "git-only"
    principal, rest = allowed.read_text().split(" ", 1)
    git_only.write_text(f'{principal} namespaces="git" {rest}')
    sign(journal, key)
    result = check(hashes(journal), read(signature_path(journal)), git_only)
    assert result.status == "invalid"


def test_a_rewritten_and_rehashed_journal_loses_its_signature(journal: Path, ana) -> None:
    """The chain alone cannot catch a journal rewritten from scratch; the signature does."""
    key, allowed = ana
    sign(journal, key)
    entries = read_entries(journal)
    entries[3]["data"]["answer"] = "declined"
    prev = entries[0]["prev"]
    for entry in entries:
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
    journal.write_bytes(b"".join(canonical(e) + b"\n" for e in entries))
    result = check(hashes(journal), read(signature_path(journal)), allowed)
    assert result.coverage == "missing" and not result.ok
    assert "cut short or rewritten" in result.describe()


def test_a_cut_journal_loses_its_signature(journal: Path, ana) -> None:
    key, allowed = ana
    sign(journal, key)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-2]))
    result = check(hashes(journal), read(signature_path(journal)), allowed)
    assert result.coverage == "missing" and not result.ok


def test_entries_added_after_signing_are_not_covered(journal: Path, ana) -> None:
    key, allowed = ana
    sign(journal, key)
    write(journal, [("note", {"text": "later", "by": "ana"})])
    result = check(hashes(journal), read(signature_path(journal)), allowed)
    assert (result.status, result.coverage, result.entries) == ("verified", "prefix", 5)
    assert result.ok and "later entries are not covered" in result.describe()


def test_a_signature_of_another_message_is_invalid(journal: Path, ana) -> None:
    key, allowed = ana
    sign(journal, key)
    text = signature_path(journal).read_text().replace("entries: 5", "entries: 6")
    result = check(hashes(journal), parse(text, "x.sig"), allowed)
    assert result.status == "invalid"
    assert "does not match its head" in result.reason


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("", 1, "not a runbook journal signature"),
        ("runbook journal signature v1\nentries: x\n", 2, "entries: N"),
        ("runbook journal signature v1\nentries: 3\nhead: abc\n", 3, "64 hex digits"),
        ("runbook journal signature v1\nentries: 3\nhead: " + "a" * 64 + "\nnope\n", 4, "armored"),
    ],
)
def test_a_malformed_signature_file_is_named_by_line(text: str, line: int, what: str) -> None:
    with pytest.raises(SigningError, match=rf"^J\.sig:{line}: .*{what}"):
        parse(text, "J.sig")


def test_a_fifo_or_huge_signature_file_is_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "j.sig"
    os.mkfifo(fifo)
    with pytest.raises(SigningError, match=r"cannot read .*FIFO"):
        read(fifo)
    big = tmp_path / "big.sig"
    big.write_bytes(b"x" * (65 * 1024))
    with pytest.raises(SigningError, match="limit"):
        read(big)


def test_a_broken_journal_is_not_signed(journal: Path, ana) -> None:
    key, _ = ana
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"succeeded", b"failed")
    journal.write_bytes(b"".join(lines))
    with pytest.raises(SigningError, match="refusing to sign a broken journal: line 3"):
        sign(journal, key)
    assert not signature_path(journal).exists()


def test_signing_needs_a_key(journal: Path, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="no SSH key at"):
        sign(journal, tmp_path / "none")


def test_resigning_replaces_and_reports_the_old_head(journal: Path, ana) -> None:
    key, allowed = ana
    first = sign(journal, key)
    write(journal, [("note", {"text": "after", "by": "ana"})])
    second = sign(journal, key)
    assert second.replaced is not None and second.replaced.head == first.head
    assert check(hashes(journal), read(signature_path(journal)), allowed).coverage == "whole"


# -- the command-line handlers ----------------------------------------------------------------
def test_audit_sign_and_verify_handlers(journal: Path, ana) -> None:
    key, allowed = ana
    signed = call("audit", "sign", journal, "--key", key)
    assert signed.code == 0, signed.err
    head = read_entries(journal)[-1]["hash"]
    assert f"signed {journal}: head {head} (5 entries) with ED25519 SHA256:" in signed.out
    verified = call("audit", "verify", journal, "--allowed-signers", allowed)
    assert verified.code == 0, verified.out + verified.err
    assert verified.out.splitlines() == [
        f"{journal}: ok: 5 entries, head {head}",
        f"{journal}.sig: signed by ana@example.test ({signed.out.split(' with ')[1].split(';')[0]})"
        f", head {head[:12]}, 5 entries",
    ]
    explicit = call(
        "audit", "verify", journal, "--signature", f"{journal}.sig", "--allowed-signers", allowed
    )
    assert explicit.code == 0


def test_audit_verify_fails_on_a_bad_signer_or_a_broken_chain(journal: Path, ana, tmp_path) -> None:
    key, allowed = ana
    call("audit", "sign", journal, "--key", key)
    _, bob_line = ssh_key(tmp_path / "bob", "bob@example.test")
    bob = tmp_path / "bob-only"
    bob.write_text(bob_line)
    refused = call("audit", "verify", journal, "--allowed-signers", bob)
    assert refused.code == 1 and "signature INVALID" in refused.out
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"detect"', b'"detekt"')
    journal.write_bytes(b"".join(lines))
    broken = call("audit", "verify", journal, "--allowed-signers", allowed)
    assert broken.code == 1
    assert broken.out.startswith(f"{journal}:2: chain broken: hash does not match")


def test_audit_usage_errors(journal: Path, ana, tmp_path: Path) -> None:
    key, allowed = ana
    assert call("audit", "verify", journal).code == 2  # who may sign must be said
    assert "give --allowed-signers" in call("audit", "verify", journal).err
    assert call("audit", "verify", journal, "--allowed-signers", tmp_path / "no").code == 2
    missing = call("audit", "sign", tmp_path / "nope.jsonl", "--key", key)
    assert missing.code == 2 and "no journal at" in missing.err
    nokey = call("audit", "sign", journal, "--key", tmp_path / "nokey")
    assert nokey.code == 2 and "no SSH key at" in nokey.err
    unsigned = call("audit", "verify", journal, "--allowed-signers", allowed)
    assert unsigned.code == 1 and "cannot read" in unsigned.out


def test_the_default_key_is_the_users_ed25519(journal: Path, ana, tmp_path, monkeypatch) -> None:
    key, allowed = ana
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for suffix in ("", ".pub"):
        (home / ".ssh" / f"id_ed25519{suffix}").write_bytes(Path(f"{key}{suffix}").read_bytes())
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    assert call("audit", "sign", journal).code == 0
    assert call("audit", "verify", journal, "--allowed-signers", allowed).code == 0
    assert read(signature_path(journal)).head == read_entries(journal)[-1]["hash"]


def test_without_ssh_keygen_the_message_says_so(journal: Path, ana, tmp_path: Path) -> None:
    key, _ = ana
    with pytest.raises(SigningError, match="ssh-keygen is not installed"):
        sign(journal, key, env={"PATH": str(tmp_path / "empty-bin")})
    assert not signature_path(journal).exists()
