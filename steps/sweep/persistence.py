"""Persistence: where a second stage would make itself start again, and what changed there.

LaunchAgents and LaunchDaemons (macOS), systemd units and XDG autostart entries (Linux), crontabs,
shell start-up files, the Startup folders and, on Windows, the Run keys. Every entry is compared
with the playbook's indicators (host file paths, C2 domains, IPs and URLs, process command-line
patterns, known sample hashes): a match is evidence. Entries created or changed since the incident
window began are listed for review (`info`); older ones are left alone. Under a mounted disk image
(`root`) every system's locations are read from the image; its registry hives are not.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runbook.models import HostArtifact, Indicators
from runbook.safeio import SMALL_FILE_LIMIT, read_regular
from runbook.step import Finding
from runbook.termsafe import printable
from steps.scan.host import artifact_paths, current_os
from steps.sweep.evidence import Part, iso, severity_of

UNIX = ("macos", "linux")


@dataclass(frozen=True)
class Location:
    """A place persistence lives: `~/...` in every home, `/...` from the root."""

    systems: tuple[str, ...]
    what: str
    path: str
    kind: str = "dir"  # dir: its files; tree: every file below; file: this one file
    suffixes: tuple[str, ...] = ()


SHELL_FILES = (
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.bash_logout",
    "~/.profile",
    "~/.zshrc",
    "~/.zshenv",
    "~/.zprofile",
    "~/.zlogin",
    "~/.config/fish/config.fish",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zshrc",
    "/etc/zshenv",
    "/etc/zprofile",
    "/etc/zsh/zshrc",
    "/etc/zsh/zshenv",
    "/etc/zsh/zprofile",
)
UNITS = (".service", ".timer", ".path", ".socket", ".conf")
LOCATIONS = (
    Location(("macos",), "LaunchAgent", "~/Library/LaunchAgents", suffixes=(".plist",)),
    Location(("macos",), "LaunchAgent", "/Library/LaunchAgents", suffixes=(".plist",)),
    Location(("macos",), "LaunchDaemon", "/Library/LaunchDaemons", suffixes=(".plist",)),
    Location(("macos",), "crontab", "/usr/lib/cron/tabs"),
    Location(("macos",), "crontab", "/private/var/at/tabs"),
    Location(("linux",), "systemd user unit", "~/.config/systemd/user", "tree"),
    Location(("linux",), "systemd user unit", "~/.local/share/systemd/user", "tree"),
    Location(("linux",), "systemd user unit", "/etc/systemd/user", "tree", UNITS),
    Location(("linux",), "systemd unit", "/etc/systemd/system", "tree", UNITS),
    Location(("linux",), "autostart entry", "~/.config/autostart", suffixes=(".desktop",)),
    Location(("linux",), "autostart entry", "/etc/xdg/autostart", suffixes=(".desktop",)),
    Location(("linux",), "crontab", "/var/spool/cron/crontabs"),
    Location(("linux",), "crontab", "/var/spool/cron"),
    Location(("linux",), "crontab", "/etc/crontab", "file"),
    Location(("linux",), "crontab", "/etc/cron.d"),
    Location(UNIX, "shell start-up file", "/etc/profile.d"),
    *(Location(UNIX, "shell start-up file", path, "file") for path in SHELL_FILES),
    Location(
        ("windows",),
        "Startup folder",
        "~/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup",
    ),
    Location(
        ("windows",), "Startup folder", "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp"
    ),
)
CRONTAB_SPOOLS = ("/var/spool/cron/crontabs", "/var/spool/cron", "/usr/lib/cron/tabs")
RUN_KEYS = (
    ("HKCU", r"Software\Microsoft\Windows\CurrentVersion\Run"),
    ("HKCU", r"Software\Microsoft\Windows\CurrentVersion\RunOnce"),
    ("HKLM", r"Software\Microsoft\Windows\CurrentVersion\Run"),
    ("HKLM", r"Software\Microsoft\Windows\CurrentVersion\RunOnce"),
    ("HKLM", r"Software\WOW6432Node\Microsoft\Windows\CurrentVersion\Run"),
)
HIVE_NAMES = {"HKEY_CURRENT_USER": "HKCU", "HKEY_LOCAL_MACHINE": "HKLM"}


@dataclass
class Entry:
    """One persistence entry: a file (its text), a symlink (its target) or a registry value."""

    what: str
    where: str
    text: str
    changed: float | None  # mtime (a registry key's last write), None when unknown
    path: str | None = None
    digest: str | None = None
    note: str = ""


class Needles:
    """The indicators an entry's text is searched for, with what each one is."""

    def __init__(
        self, indicators: Indicators, root: Path | None, homes: list[Path], env: Mapping[str, str]
    ) -> None:
        self.indicators = indicators
        self.words: dict[str, tuple[str, str]] = {}  # lowercase text -> (label, confidence)
        for os_name in ("macos", "linux", "windows"):
            for artifact in getattr(indicators.host_files, os_name):
                if artifact.type != "file":
                    continue
                label = f"the host indicator {artifact.path}"
                self._word(artifact.path, label, artifact.confidence)
                if "%" not in artifact.path or root is not None:
                    continue  # an image's files name their paths as the image sees them
                for path in artifact_paths(artifact, os_name, root, homes, env):
                    self._word(str(path), label, artifact.confidence)
        network = indicators.network
        for domain in network.domains:
            self._word(domain, f"the C2 domain {domain}", "high")
        for url in network.urls:
            self._word(url, f"the C2 URL {url}", "high")
        self.patterns: list[tuple[re.Pattern[str], str, str]] = [
            (re.compile(rf"(?<![\d.]){re.escape(ip)}(?![\d.])"), f"the C2 IP {ip}", "high")
            for ip in network.ips
        ]
        for process in indicators.processes:
            if process.cmdline:
                label = process.description or f"the process pattern {process.cmdline}"
                self.patterns.append((re.compile(process.cmdline), label, process.confidence))

    def _word(self, text: str, label: str, confidence: str) -> None:
        for form in {text.lower(), text.lower().replace("\\", "/")}:
            if len(form) >= 4:
                self.words.setdefault(form, (label, confidence))

    def search(self, text: str) -> list[tuple[str, str, int]]:
        """(label, confidence, 1-based line) of every indicator in `text`, first line each."""
        found: dict[str, tuple[str, str, int]] = {}
        for number, line in enumerate(text.splitlines() or [text], start=1):
            lower = line.lower()
            for word, (label, confidence) in self.words.items():
                if word in lower:
                    found.setdefault(label, (label, confidence, number))
            for pattern, label, confidence in self.patterns:
                if pattern.search(line):
                    found.setdefault(label, (label, confidence, number))
        return list(found.values())


def _where(location: Location, base: Path) -> Path:
    relative = location.path.removeprefix("~/").removeprefix("/")
    return base.joinpath(*relative.split("/"))


def _files(location: Location, folder: Path, errors: list[tuple[Path, str]]) -> Iterator[Path]:
    if location.kind == "file":
        if os.path.lexists(folder):
            yield folder
        return
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue
        except OSError as exc:
            errors.append((current, exc.strerror or str(exc)))
            continue
        for child in children:
            if child.is_dir(follow_symlinks=False):
                if location.kind == "tree":
                    stack.append(Path(child.path))
                continue
            wanted = not location.suffixes or child.name.endswith(location.suffixes)
            if not wanted and not child.is_symlink():
                continue
            yield Path(child.path)


def _entry(location: Location, path: Path) -> Entry | Finding:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return _unknown(path, f"cannot read {location.what} {path}: {exc.strerror or exc}")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError as exc:
            return _unknown(path, f"cannot read the symlink {path}: {exc.strerror or exc}")
        return Entry(location.what, str(path), target, st.st_mtime, str(path), note=f"-> {target}")
    if not stat.S_ISREG(st.st_mode):
        return _unknown(path, f"{location.what} {path} is not a regular file: not read")
    try:
        data = read_regular(path, limit=SMALL_FILE_LIMIT)
    except OSError as exc:
        return _unknown(path, f"cannot read {location.what} {path}: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    return Entry(
        location.what, str(path), data.decode("utf-8", "replace"), st.st_mtime, str(path), digest
    )


def _unknown(path: Path | str | None, message: str) -> Finding:
    return Finding(
        kind="persistence",
        severity="unknown",
        path=str(path) if path else None,
        message=printable(message),
    )


def _crontab_l(env: Mapping[str, str]) -> Entry | None:
    """The current user's crontab through `crontab -l` (the spool needs root)."""
    exe = shutil.which("crontab", path=env.get("PATH"))
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "-l"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=5,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None  # "no crontab for USER"
    return Entry(
        "crontab",
        f"crontab -l ({env.get('USER') or env.get('LOGNAME') or 'this user'})",
        done.stdout,
        None,
        note="when it was last changed cannot be read without root",
    )


def _filetime(value: int) -> float | None:
    """A Windows FILETIME (100 ns since 1601) as a POSIX timestamp."""
    return (value - 116444736000000000) / 1e7 if value else None


def run_key_entries() -> Iterator[Entry | Finding]:
    """The Run and RunOnce values of HKCU and HKLM (Windows only; untested off Windows)."""
    import winreg  # type: ignore[import-not-found]  # Windows only

    hives = {"HKCU": winreg.HKEY_CURRENT_USER, "HKLM": winreg.HKEY_LOCAL_MACHINE}
    for hive_name, subkey in RUN_KEYS:
        where = f"{hive_name}\\{subkey}"
        try:
            key = winreg.OpenKey(hives[hive_name], subkey)
        except FileNotFoundError:
            continue
        except OSError as exc:
            yield _unknown(None, f"cannot open the registry key {where}: {exc.strerror or exc}")
            continue
        with key:
            try:
                _subkeys, count, modified = winreg.QueryInfoKey(key)
                values = [winreg.EnumValue(key, i) for i in range(count)]
            except OSError as exc:
                yield _unknown(None, f"cannot read the registry key {where}: {exc.strerror or exc}")
                continue
        for name, data, _kind in values:
            yield Entry(
                "Run key",
                f"{where}\\{name}",
                str(data),
                _filetime(modified),
                note="the time is the key's last write (any of its values)",
            )


def _registry_path(path: str) -> str:
    head, sep, rest = path.partition("\\")
    return (HIVE_NAMES.get(head.upper(), head.upper()) + sep + rest).lower()


def sweep_persistence(
    indicators: Indicators,
    since: datetime,
    root: Path | None,
    homes: list[Path],
    env: Mapping[str, str],
) -> Part:
    """Indicator matches in persistence entries (evidence) and recent entries (for review)."""
    from steps.sweep.files import known_sample

    part = Part()
    needles = Needles(indicators, root, homes, env)
    systems = ("macos", "linux", "windows") if root else (current_os(),)
    base = root or Path("/")
    entries: list[Entry | Finding] = []
    errors: list[tuple[Path, str]] = []
    spool_refused = False
    for location in LOCATIONS:
        if not set(location.systems) & set(systems):
            continue
        folders = (
            [_where(location, home) for home in homes]
            if location.path.startswith("~/")
            else [_where(location, base)]
        )
        for folder in folders:
            before = len(errors)
            for path in _files(location, folder, errors):
                entries.append(_entry(location, path))
            if location.path in CRONTAB_SPOOLS and len(errors) > before and root is None:
                spool_refused = True
                del errors[before:]  # read through `crontab -l` instead
    for path, why in errors:
        entries.append(_unknown(path, f"cannot list {path}: {why}; nothing in it was checked"))
    if spool_refused:
        mine = _crontab_l(env)
        if mine is not None:
            entries.append(mine)
        part.notes.append(
            "crontabs: other users' crontabs need root to read; this user's was read with "
            "`crontab -l`"
        )
    if root is None and sys.platform == "win32":
        entries += list(run_key_entries())
    elif root is not None and _windows_image(root, homes):
        entries.append(
            _unknown(
                root,
                "the image's registry hives (NTUSER.DAT, SOFTWARE) are not read: check the Run "
                "and RunOnce keys with a hive viewer",
            )
        )
    registry = {
        _registry_path(a.path): a
        for a in (indicators.host_files.windows if "windows" in systems else [])
        if a.type == "registry"
    }
    cutoff = since.timestamp()
    for entry in entries:
        if isinstance(entry, Finding):
            part.findings.append(entry)
            continue
        part.checked += 1
        artifact = registry.get(_registry_path(entry.where))
        sample = known_sample(indicators, entry.digest) if entry.digest else None
        _judge(part, entry, needles, artifact, sample, cutoff)
    return part


def _judge(
    part: Part,
    entry: Entry,
    needles: Needles,
    artifact: HostArtifact | None,
    sample: str | None,
    cutoff: float,
) -> None:
    """Evidence when the entry names an indicator; for review when it changed since `cutoff`."""
    hits = needles.search(entry.text)
    if artifact is not None:
        hits.insert(0, (f"the registry indicator {artifact.path}", artifact.confidence, 0))
    if sample:
        hits.insert(0, (f"the known sample '{sample}'", "high", 0))
    changed = iso(entry.changed)
    recent = entry.changed is not None and entry.changed >= cutoff
    row = {
        "what": "persistence",
        "kind": entry.what,
        "where": entry.where,
        "changed": changed,
    }
    shown = printable(entry.where)
    detail = f" ({printable(entry.note)})" if entry.note else ""
    if hits:
        worst = "compromised" if any(c == "high" for _, c, _ in hits) else "at-risk"
        labels = "; ".join(label for label, _, _ in hits)
        line = next((n for _, _, n in hits if n), None)
        row |= {"severity": worst, "indicator": labels}
        part.findings.append(
            Finding(
                kind="persistence",
                severity=severity_of("high" if worst == "compromised" else "low"),
                path=entry.path,
                line=line if entry.path else None,
                message=f"{entry.what} {shown}{detail} names {printable(labels)}"
                + (f" (changed {changed})" if changed else ""),
            )
        )
        part.evidence.append(row)
    elif recent and not _vendor_link(entry):
        row |= {"severity": "info"}
        part.findings.append(
            Finding(
                kind="persistence",
                severity="info",
                path=entry.path,
                message=f"{entry.what} {shown}{detail} was created or changed on {changed}, "
                "after the incident window began: review it",
            )
        )
        part.evidence.append(row)
    elif entry.changed is None and entry.text.strip():
        lines = [
            line
            for line in entry.text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if lines:
            part.findings.append(
                Finding(
                    kind="persistence",
                    severity="info",
                    message=f"{entry.what} {shown}{detail}: {len(lines)} entr"
                    f"{'y' if len(lines) == 1 else 'ies'} to review",
                )
            )


VENDOR_UNITS = ("/lib/systemd/", "/usr/lib/systemd/")


def _vendor_link(entry: Entry) -> bool:
    """A `.wants` link enabling a unit the distribution ships: the unit, not the link, would
    carry a second stage (and its text was searched for indicators all the same)."""
    return entry.note.startswith("-> ") and entry.text.startswith(VENDOR_UNITS)


def _windows_image(root: Path, homes: list[Path]) -> bool:
    return (root / "Windows" / "System32").is_dir() or any(
        (home / "NTUSER.DAT").exists() for home in homes
    )
