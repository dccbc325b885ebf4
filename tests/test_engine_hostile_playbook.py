"""Playbooks built to hurt: YAML bombs, values PyYAML cannot build, files that are not files,
and paths that lead out of the target. Each is a `file:line:col` problem (validate exits 1, run
exits 2), never a traceback, a hang or gigabytes of memory.

The commands run in subprocesses with a timeout and an address-space cap, so without the fixes
these tests fail (MemoryError, timeout) instead of taking the machine down.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from runbook.models import TargetRelativePath
from tests.conftest import RUNBOOK
from tests.test_report import PLAYBOOK

BAD = Path(__file__).resolve().parent / "playbooks" / "bad"
MEMORY_CAP = 2 << 30  # 2 GiB of address space: the bomb needed 5-7 GB before the fix


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def runbook(env: dict[str, str], *args: str | Path, timeout: float = 30):
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_capped,
    )


def billion_laughs(path: Path) -> None:
    """Ten levels of ten aliases each: 10^10 strings once expanded."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 11):
        refs = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    body = PLAYBOOK.replace("  summary: A test incident for the report.\n", "  summary: lol\n")
    path.write_text("\n".join(lines) + "\n" + body)


def _expect(result: subprocess.CompletedProcess[str], code: int, pattern: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bomb.yaml", r"bomb\.yaml:2:14: YAML alias '\*lol0' is not allowed"),
        ("alias_self_reference.yaml", r":7:20: YAML alias '\*loop' is not allowed"),
        ("integer_too_long.yaml", r":3:10: version: number with 5000 digits is too long"),
        ("date_year_zero.yaml", r":6:19: incident\.window\.start: invalid date '0000-01-01'"),
    ],
)
def test_yaml_that_cannot_be_loaded_is_a_located_problem(
    sandbox_env, project: Path, tmp_path: Path, name: str, problem: str
) -> None:
    path = tmp_path / name
    if name == "bomb.yaml":
        billion_laughs(path)
    else:
        path.write_bytes((BAD / name).read_bytes())
    _expect(runbook(sandbox_env, "validate", path), 1, problem)
    _expect(runbook(sandbox_env, "run", path, "--dry-run", "--target", project), 2, problem)


@pytest.fixture
def not_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    sparse = tmp_path / "sparse.yaml"
    with sparse.open("wb") as handle:
        handle.truncate(64 << 20)  # claims 64 MiB, over the 8 MiB a playbook may have
    return {"not a regular file": fifo, "a character device": zero, "over the 8 MiB": sparse}


def test_a_playbook_that_is_not_a_file_is_refused_at_once(
    sandbox_env, project: Path, not_files: dict[str, Path]
) -> None:
    for reason, path in not_files.items():
        message = rf"{re.escape(str(path))}:1:1: cannot read playbook: .*{reason}"
        _expect(runbook(sandbox_env, "validate", path), 1, message)
        run = runbook(sandbox_env, "run", path, "--dry-run", "--target", project)
        _expect(run, 2, message)


def test_a_symlink_to_a_playbook_is_followed(sandbox_env, tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text(PLAYBOOK)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    result = runbook(sandbox_env, "validate", link)
    assert result.returncode == 0, result.stderr


def test_paths_out_of_the_target_are_refused_before_anything_is_read(
    sandbox_env, project: Path, tmp_path: Path
) -> None:
    """A dry run used to scan `../..`, `/etc` and `/root` (354 credentials found outside)."""
    path = tmp_path / "paths.yaml"
    path.write_bytes((BAD / "paths_outside_target.yaml").read_bytes())
    journal = tmp_path / "journal.jsonl"
    validate = runbook(sandbox_env, "validate", path)
    _expect(validate, 1, r":14:32: steps\[0\]\.with\.paths\[2\]: '\.\./\.\.' goes up with '\.\.'")
    assert validate.stderr.count(f"{path}:") == 5
    run = runbook(sandbox_env, "run", path, "--dry-run", "--target", project, "--journal", journal)
    _expect(run, 2, r":18:20: steps\[1\]\.with\.paths\[0\]: '/root' is an absolute path")
    assert not journal.exists(), "the run never started"


@pytest.mark.parametrize("good", [".", "packages/web", "a/b/c", "dir..name", "...", ".hidden"])
def test_relative_paths_inside_the_target_are_accepted(good: str) -> None:
    assert TypeAdapter(TargetRelativePath).validate_python(good) == good
