"""Running processes matched against the playbook's process indicators (psutil).

An indicator's criteria must all hold: a name glob, an executable path, a command-line regular
expression and, with `same_as`, an executable identical to another file (the host files' rule,
checked by the scanner's own code). A process whose executable is one of the host files (a
`/Library/Caches/com.apple.act.mond` running) is evidence too. Only the processes that match are
recorded, with pid, start time, user and parent.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from runbook.models import HostArtifact, HostArtifacts, Indicators, ProcessIndicator
from runbook.step import Finding
from runbook.termsafe import printable
from steps.scan.host import artifact_paths, current_os, scan_indicators
from steps.sweep.evidence import Part, iso, severity_of

ATTRS = ["pid", "name", "exe", "cmdline", "username", "create_time", "ppid"]
DENIED: Any = object()  # psutil's stand-in for a field the OS would not give
SHOWN_CMDLINE = 400


@dataclass
class Proc:
    """One process as psutil saw it; a field is DENIED when the OS refused it."""

    pid: int
    name: str
    exe: Any
    cmdline: Any
    username: Any
    create_time: Any
    ppid: Any

    @property
    def exe_path(self) -> str | None:
        """The executable's path; None when refused or when there is none (a kernel thread)."""
        if self.exe is DENIED or not self.exe:
            return None
        return str(self.exe).removesuffix(" (deleted)")

    @property
    def exe_denied(self) -> bool:
        return self.exe is DENIED

    @property
    def command(self) -> str | None:
        if self.cmdline is DENIED or self.cmdline is None:
            return None
        return " ".join(self.cmdline)


def list_processes() -> list[Proc]:
    """Every process visible now (vanished ones are skipped)."""
    out = []
    for proc in psutil.process_iter(ATTRS, ad_value=DENIED):
        info = proc.info
        name = info.get("name")
        out.append(
            Proc(
                pid=info["pid"],
                name="" if name is DENIED or name is None else str(name),
                exe=info.get("exe"),
                cmdline=info.get("cmdline"),
                username=info.get("username"),
                create_time=info.get("create_time"),
                ppid=info.get("ppid"),
            )
        )
    return out


def applies(indicator: ProcessIndicator, os_name: str) -> bool:
    return not indicator.os or os_name in indicator.os


class Matcher:
    """Decides, per process, whether an indicator matches: True, False, or None (undecidable:
    the OS would not give a field the indicator needs), with the reason."""

    def __init__(self, indicators: Indicators, homes: list[Path], env: Mapping[str, str]):
        self.os = current_os()
        self.homes = homes
        self.env = env
        self.indicators = [p for p in indicators.processes if applies(p, self.os)]
        self.patterns = {id(p): re.compile(p.cmdline) for p in self.indicators if p.cmdline}
        self.exe_paths = {
            id(p): {_norm(x) for x in self._paths(p.exe)} for p in self.indicators if p.exe
        }
        # a host file running as a program is evidence whatever the process indicators say
        self.host_files: dict[str, HostArtifact] = {}
        for artifact in getattr(indicators.host_files, self.os):
            if artifact.type == "file":
                for path in artifact_paths(artifact, self.os, None, homes, env):
                    self.host_files[_norm(path)] = artifact

    def _paths(self, raw: str) -> list[Path]:
        return artifact_paths(HostArtifact(path=raw), self.os, None, self.homes, self.env)

    def match(self, indicator: ProcessIndicator, proc: Proc) -> tuple[bool | None, str]:
        if indicator.name and not fnmatch.fnmatchcase(proc.name.lower(), indicator.name.lower()):
            return False, ""
        if indicator.cmdline:
            command = proc.command
            if command is None:
                return None, "command line"
            if not self.patterns[id(indicator)].search(command):
                return False, ""
        if indicator.exe or indicator.same_as:
            exe = proc.exe_path
            if exe is None:
                return (None, "executable") if proc.exe_denied else (False, "")
            if indicator.exe and _norm(exe) not in self.exe_paths[id(indicator)]:
                return False, ""
            if indicator.same_as:
                return self.same_as(exe, indicator.same_as)
        return True, ""

    def same_as(self, exe: str, reference: str) -> tuple[bool | None, str]:
        """The host files' `same_as` rule, by the scanner's own check."""
        artifact = HostArtifact(path=exe, same_as=reference)
        found = list(
            scan_indicators(
                Indicators(host_files=HostArtifacts(**{self.os: [artifact]})),
                None,
                self.homes,
                self.env,
            )
        )
        if not found:
            return False, ""  # a different file: a genuine program sharing the name
        if found[0].severity == "unknown":
            return None, found[0].message
        return True, f"a copy of {reference}"

    def host_file(self, proc: Proc) -> HostArtifact | None:
        exe = proc.exe_path
        if exe is None:
            return None
        artifact = self.host_files.get(_norm(exe))
        if artifact is None:
            return None
        if artifact.same_as and self.same_as(exe, artifact.same_as)[0] is not True:
            return None
        return artifact


def sweep_processes(
    indicators: Indicators,
    homes: list[Path],
    env: Mapping[str, str],
    processes: list[Proc] | None = None,
) -> Part:
    """Processes matching an indicator become findings (and evidence rows)."""
    part = Part()
    try:
        procs = list_processes() if processes is None else processes
    except (psutil.Error, OSError) as exc:
        part.findings.append(
            _unknown(f"cannot list the running processes: {exc}; look for them by hand (ps)")
        )
        return part
    part.checked = len(procs)
    matcher = Matcher(indicators, homes, env)
    by_pid = {p.pid: p for p in procs}
    me = os.getpid()
    undecided: dict[str, list[int]] = {}
    for proc in procs:
        if proc.pid == me:
            continue
        for indicator in matcher.indicators:
            matched, why = matcher.match(indicator, proc)
            if matched is None:
                undecided.setdefault(why, []).append(proc.pid)
            elif matched:
                label = indicator.description or "matches a process indicator"
                label += f" ({why})" if why else ""
                _record(part, proc, by_pid, label, indicator.confidence)
                break
        else:
            artifact = matcher.host_file(proc)
            if artifact is not None:
                label = f"runs the host indicator {artifact.path}"
                _record(part, proc, by_pid, label, artifact.confidence)
    for field_name, pids in undecided.items():
        shown = ", ".join(str(p) for p in pids[:10]) + (" ..." if len(pids) > 10 else "")
        part.findings.append(
            _unknown(
                f"could not read the {printable(field_name)} of {len(pids)} process(es) "
                f"(pid {shown}): the OS refused it; {_more_rights()}"
            )
        )
    return part


def _record(part: Part, proc: Proc, by_pid: dict[int, Proc], label: str, confidence: str) -> None:
    parent = by_pid.get(proc.ppid) if isinstance(proc.ppid, int) else None
    started = iso(proc.create_time) if isinstance(proc.create_time, float | int) else None
    user = proc.username if isinstance(proc.username, str) else None
    command = (proc.command or "")[:SHOWN_CMDLINE]
    row = {
        "what": "process",
        "pid": proc.pid,
        "name": proc.name,
        "exe": proc.exe_path,
        "cmdline": command,
        "user": user,
        "started": started,
        "ppid": proc.ppid if isinstance(proc.ppid, int) else None,
        "parent": parent.name if parent else None,
        "indicator": label,
        "severity": severity_of(confidence),
    }
    part.evidence.append(row)
    parent_text = f"{row['ppid']} {parent.name}" if parent else str(row["ppid"])
    message = (
        f"process {proc.pid} {proc.name} (user {user or '?'}, started {started or '?'}, "
        f"parent {parent_text}): `{command}`: {label}"
    )
    part.findings.append(
        Finding(
            kind="process",
            severity=severity_of(confidence),
            path=proc.exe_path,
            message=printable(message),
        )
    )


def _more_rights() -> str:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and geteuid() == 0:
        return (
            "even root may not read them (another container's or a protected process): "
            "check them by hand"
        )
    return "sweep again as root (Administrator) to check them"


def _unknown(message: str) -> Finding:
    return Finding(kind="process", severity="unknown", message=message)


def _norm(path: str | Path) -> str:
    return os.path.normcase(os.path.normpath(str(path)))
