"""The wheelhouse copied to every host: this runbook version's wheel, pip, and (for hosts that
install their dependencies from it) every dependency's wheel, so hosts need no registry.

Without `--wheelhouse`, the runbook wheel is built from the source tree this runbook runs from
(a checkout or an editable install); a runbook installed from a package must be given one
(`runbook fleet wheelhouse DIR` makes a complete one). pip comes from the controller's own
`ensurepip` bundle when the wheelhouse has none.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import runbook

PYPROJECT_NAME = 'name = "runbook"'


class WheelhouseError(Exception):
    """No usable wheelhouse: the message says how to get one."""


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    archive: Path  # the same files as one tar, which Ansible copies in one transfer
    version: str
    wheel: str  # file name of the runbook wheel
    wheel_sha256: str
    pip_wheel: str  # file name of pip's wheel ("" when the hosts' Python must bring pip)
    files: int

    @property
    def complete(self) -> bool:
        """Whether it holds more than runbook and pip (dependencies for `wheelhouse` hosts)."""
        return self.files > (2 if self.pip_wheel else 1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_tree() -> Path | None:
    """The project folder runbook runs from, when it is a source tree (checkout, editable)."""
    root = Path(runbook.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    try:
        if PYPROJECT_NAME in pyproject.read_text(encoding="utf-8"):
            return root
    except OSError:
        return None
    return None


def bundled_pip() -> Path | None:
    """pip's wheel from this Python's `ensurepip` (offline, always a working pip)."""
    try:
        import ensurepip
    except ImportError:
        return None
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    found = sorted(bundled.glob("pip-*.whl"))
    return found[-1] if found else None


def build_wheel(dest: Path) -> Path:
    """Build this runbook's wheel from its source tree into `dest` (no network: the build
    backend must be installed, as it is in a development environment)."""
    root = source_tree()
    if root is None:
        raise WheelhouseError(
            f"runbook {runbook.__version__} is installed from a package, not a source tree: give "
            "--wheelhouse DIR holding its wheel (`runbook fleet wheelhouse DIR` makes one)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    argv += ["--disable-pip-version-check", "-w", str(dest), str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-800:]
        raise WheelhouseError(f"building the runbook wheel failed: {said}")
    return find_wheel(dest)


def find_wheel(folder: Path) -> Path:
    wanted = f"runbook-{runbook.__version__}-"
    found = sorted(p for p in folder.glob("runbook-*.whl") if p.name.startswith(wanted))
    if not found:
        raise WheelhouseError(
            f"{folder} holds no wheel of runbook {runbook.__version__} (runbook-"
            f"{runbook.__version__}-*.whl): the hosts must run the version that drives them"
        )
    return found[-1]


def stage(private: Path, given: Path | None) -> Wheelhouse:
    """The wheelhouse Ansible copies: `given` (linked into a folder of our own, with pip
    added when it has none), or a freshly built runbook wheel with pip."""
    folder = private / "wheelhouse"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    if given is not None:
        if not given.is_dir():
            raise WheelhouseError(f"--wheelhouse {given} is not a directory")
        wheel = find_wheel(given)
        for item in sorted(given.iterdir()):
            if item.is_file() and item.suffix in (".whl", ".gz", ".zip"):
                os.symlink(item.resolve(), folder / item.name)
        wheel = folder / wheel.name
    else:
        wheel = build_wheel(folder)
    pips = sorted(folder.glob("pip-*.whl"))
    if not pips:
        pip = bundled_pip()
        if pip is not None:
            os.symlink(pip, folder / pip.name)
            pips = [folder / pip.name]
    files = sum(1 for _ in folder.iterdir())
    archive = private / "wheelhouse.tar"
    with tarfile.open(archive, "w") as tar:  # wheels are compressed already
        for item in sorted(folder.iterdir()):
            tar.add(item.resolve(), arcname=item.name, recursive=False)
    return Wheelhouse(
        path=folder,
        archive=archive,
        version=runbook.__version__,
        wheel=wheel.name,
        wheel_sha256=sha256_of(wheel),
        pip_wheel=pips[-1].name if pips else "",
        files=files,
    )


def installed_versions() -> list[str]:
    """`name==version` of every distribution runbook needs, as installed here (the versions
    this controller runs, which a development set-up takes from the lock file)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    wanted, seen, pins = ["runbook"], set(), []
    while wanted:
        name = wanted.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key != "runbook":
            pins.append(f"{dist.metadata['Name']}=={dist.version}")
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return sorted(pins)


def download(dest: Path, platform: str | None, python_version: str | None) -> list[str]:
    """`runbook fleet wheelhouse`: this runbook's wheel, its dependencies' wheels at the
    versions installed here (from the package index configured for pip on this controller) and
    pip, for hosts with no registry."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(dest) if source_tree() else find_wheel(dest)
    constraints = dest / ".constraints.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in installed_versions()))
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    argv += ["--only-binary=:all:", "-d", str(dest), "-c", str(constraints)]
    if platform:
        argv += ["--platform", platform]
    if python_version:
        argv += ["--python-version", python_version]
    argv += [str(wheel), "pip"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    constraints.unlink(missing_ok=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-800:]
        raise WheelhouseError(f"pip download failed: {said}")
    return sorted(p.name for p in dest.iterdir() if p.suffix == ".whl")
