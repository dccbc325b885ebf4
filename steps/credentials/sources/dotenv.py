"""`.env` files: `KEY=VALUE` lines with `export`, quotes (double quotes may span lines) and
comments, read the way dotenv libraries read them."""

from __future__ import annotations

import re
from pathlib import Path

from steps.credentials.model import Location
from steps.credentials.sources.assignments import Assignment, judge
from steps.credentials.sources.common import Collector
from steps.credentials.sources.npm import NpmContext

LINE = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?P<rest>.*)$")


def is_dotenv(name: str) -> bool:
    return name == ".env" or name.startswith(".env.") or name == ".envrc"


def parse(text: str) -> tuple[list[tuple[str, str, int]], list[tuple[int, str]]]:
    """(name, value, line) triples and (line, problem) pairs."""
    out: list[tuple[str, str, int]] = []
    problems: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        match = LINE.match(lines[index])
        index += 1
        if not match:
            continue
        name, rest = match.group("name"), match.group("rest")
        quote = rest[:1]
        if quote in ("'", '"'):
            body = rest[1:]
            end = body.find(quote)
            while end < 0 and quote == '"' and index < len(lines):
                body += "\n" + lines[index]
                index += 1
                end = body.find(quote)
            if end < 0:
                problems.append((number, f"unterminated quoted value of {name}"))
                index = number  # the lines after it are read on their own, as dotenv does
                continue
            value = body[:end]
        else:
            value = re.sub(r"\s+#.*$", "", rest).strip()
        out.append((name, value, number))
    return out, problems


def scan_dotenv(path: Path, collector: Collector, npm: NpmContext) -> None:
    text = collector.read(path)
    if text is None:
        return
    pairs, problems = parse(text)
    for line, message in problems:
        collector.problem(path, message, line)
    assignments = [
        Assignment(name, value, Location("file", name, path, line)) for name, value, line in pairs
    ]
    judge(assignments, collector, npm, origin=".env")
