"""Live connections to the C2: the indicator IPs, what the indicator domains resolve to now, and
the indicator ports.

Domains are resolved only through the system resolver (`getaddrinfo`), in the background while the
rest of the sweep runs, and never contacted. The lookup itself shows in DNS logs as a query from
this machine: the plan says so, and `resolve_domains: false` turns it off.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psutil

from runbook.models import Network
from runbook.step import Finding
from runbook.termsafe import printable
from steps.sweep.evidence import Part
from steps.sweep.processes import Proc

Resolved = dict[str, list[str] | str]  # domain -> addresses, or why it did not resolve


def _ip(text: str) -> str | None:
    """An address in one canonical form (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass
class Targets:
    """What counts as the C2: addresses, the domains they came from, and ports."""

    ips: dict[str, str] = field(default_factory=dict)  # address -> why it is an indicator
    domains: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, network: Network) -> Targets:
        targets = cls(ports=set(network.ports))
        for ip in network.ips:
            canonical = _ip(ip)
            if canonical:
                targets.ips[canonical] = f"the indicator IP {ip}"
        domains = list(network.domains)
        for url in network.urls:
            parts = urlsplit(url)
            if parts.port:
                targets.ports.add(parts.port)
            host = parts.hostname
            if not host:
                continue
            if _ip(host):
                targets.ips.setdefault(_ip(host) or host, f"the host of {url}")
            elif host.lower() not in domains:
                domains.append(host.lower())
        targets.domains = domains
        return targets

    def add_resolved(self, resolved: Resolved) -> None:
        for domain, addresses in resolved.items():
            if isinstance(addresses, list):
                for address in addresses:
                    self.ips.setdefault(address, f"{domain} resolves to it now")


class Resolver:
    """Resolves the indicator domains in a background thread, through the system resolver."""

    def __init__(self, domains: Iterable[str]) -> None:
        self.domains = list(domains)
        self.result: Resolved = {}
        self._thread = threading.Thread(target=self._run, daemon=True, name="sweep-resolver")

    def start(self) -> Resolver:
        if self.domains:
            self._thread.start()
        return self

    def _run(self) -> None:
        for domain in self.domains:
            try:
                infos = socket.getaddrinfo(domain, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError) as exc:
                self.result[domain] = getattr(exc, "strerror", None) or str(exc)
                continue
            self.result[domain] = sorted({_ip(info[4][0]) or info[4][0] for info in infos})

    def wait(self, timeout: float) -> Resolved:
        """What resolved within `timeout` seconds; the rest is said to have timed out."""
        if self.domains:
            self._thread.join(timeout)
        done = dict(self.result)
        for domain in self.domains:
            done.setdefault(domain, f"no answer within {timeout:g} s")
        return done


@dataclass(frozen=True)
class Conn:
    """One socket: who holds it (pid, when known), protocol, both ends and TCP state."""

    pid: int | None
    type: int
    laddr: tuple[str, int] | None
    raddr: tuple[str, int] | None
    status: str


def _conn(raw: Any, pid: int | None) -> Conn:
    laddr = tuple(raw.laddr) if raw.laddr else None
    raddr = tuple(raw.raddr) if raw.raddr else None
    return Conn(pid, raw.type, laddr, raddr, raw.status or "")  # type: ignore[arg-type]


def connections(procs: list[Proc]) -> tuple[list[Conn], str | None]:
    """Every inet connection, or those of the processes this user may see with the reason the
    rest could not be listed."""
    try:
        return [_conn(c, c.pid) for c in psutil.net_connections(kind="inet")], None
    except psutil.AccessDenied:
        pass
    except (psutil.Error, OSError) as exc:
        return [], f"cannot list the network connections: {exc}"
    found: list[Conn] = []
    refused = 0
    for proc in procs:
        try:
            found += [_conn(c, proc.pid) for c in psutil.Process(proc.pid).net_connections("inet")]
        except psutil.AccessDenied:
            refused += 1
        except (psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
    if refused:
        return found, (
            f"the OS would not list the connections of {refused} process(es) (other users'); "
            "sweep again as root (Administrator) to see every connection"
        )
    return found, None


def sweep_network(
    network: Network,
    procs: list[Proc],
    resolver: Resolver | None,
    resolve_timeout: float,
) -> Part:
    """Connections to the C2's addresses are evidence; to its port elsewhere, worth a look."""
    part = Part()
    targets = Targets.of(network)
    if not (targets.ips or targets.domains or targets.ports):
        part.notes.append("network: the playbook lists no IP, domain, URL or port")
        return part
    conns, problem = connections(procs)
    if resolver is not None:
        started = time.monotonic()
        resolved = resolver.wait(resolve_timeout)
        targets.add_resolved(resolved)
        for domain, answer in resolved.items():
            if isinstance(answer, list):
                part.notes.append(
                    f"{domain} resolves now to {', '.join(answer) or 'nothing'} (system resolver)"
                )
            else:
                part.notes.append(f"{domain} does not resolve now: {answer}")
        waited = round(time.monotonic() - started, 3)
        part.evidence.append({"what": "resolution", "answers": resolved, "waited": waited})
    elif targets.domains:
        part.notes.append(
            f"not resolved (resolve_domains: false): {', '.join(targets.domains)}; connections "
            "are checked against the listed IPs only"
        )
    if problem:
        part.findings.append(Finding(kind="connection", severity="unknown", message=problem))
    by_pid = {p.pid: p for p in procs}
    part.checked = len(conns)
    for conn in conns:
        if not conn.raddr:
            continue
        address, port = _ip(conn.raddr[0]) or conn.raddr[0], conn.raddr[1]
        why = targets.ips.get(address)
        if why is None and (port not in targets.ports or _loopback(address)):
            continue  # a local dev server on the C2's port is not worth a look
        owner = by_pid.get(conn.pid) if conn.pid else None
        who = f"pid {conn.pid}" if conn.pid else "an unknown process"
        if owner:
            who += f" {owner.name}"
        laddr = f"{conn.laddr[0]}:{conn.laddr[1]}" if conn.laddr else "?"
        proto = "TCP" if conn.type == socket.SOCK_STREAM else "UDP"
        status = conn.status if conn.status and conn.status != psutil.CONN_NONE else ""
        where = f"{proto} {laddr} -> {address}:{port}{f' ({status})' if status else ''}"
        row = {
            "what": "connection",
            "pid": conn.pid,
            "process": owner.name if owner else None,
            "local": laddr,
            "remote": f"{address}:{port}",
            "protocol": proto,
            "status": status or None,
        }
        if why is not None:
            port_note = " on the C2's port" if port in targets.ports else ""
            row |= {"severity": "compromised", "indicator": why}
            message = f"{who}: {where}: a live connection to {why}{port_note}"
            part.findings.append(
                Finding(kind="connection", severity="compromised", message=printable(message))
            )
        else:
            row |= {"severity": "info", "indicator": f"port {port}"}
            message = (
                f"{who}: {where}: port {port} is the C2's port, but not at a known C2 address: "
                "check what this is"
            )
            part.findings.append(
                Finding(kind="connection", severity="info", message=printable(message))
            )
        part.evidence.append(row)
    return part
