"""`.env` files: `KEY=VALUE` lines with `export`, quotes (double quotes may span lines) and
comments, read the way dotenv libraries read them.

A file is read line by line (`Collector.lines`), so a huge `.env` costs bounded memory: a quoted
value may span at most `MAX_QUOTED_BYTES`, and only assignments that can matter are kept.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from steps.credentials.model import Location
from steps.credentials.sources.assignments import Assignment, judge, relevant
from steps.credentials.sources.common import MAX_LINE_BYTES, Collector
from steps.credentials.sources.npm import NpmContext

LINE = re.compile(r"^\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?P<rest>.*)$")
COMMENT = re.compile(r"\s+#.*$")
MAX_QUOTED_BYTES = MAX_LINE_BYTES  # a quoted value running longer is taken as unterminated


def is_dotenv(name: str) -> bool:
    return name == ".env" or name.startswith(".env.") or name == ".envrc"


def parse(
    lines: Iterable[str], on_problem: Callable[[int, str], None]
) -> Iterator[tuple[str, str, int]]:
    """(name, value, line) triples, as the lines are read; problems go to `on_problem`."""
    source = enumerate(lines, start=1)
    again: deque[tuple[int, str]] = deque()  # lines to read once more, on their own

    def next_line() -> tuple[int, str] | None:
        return again.popleft() if again else next(source, None)

    while (item := next_line()) is not None:
        number, line = item
        match = LINE.match(line)
        if not match:
            continue
        name, rest = match.group("name"), match.group("rest")
        quote = rest[:1]
        if quote not in ("'", '"'):
            yield name, COMMENT.sub("", rest).strip(), number
            continue
        parts = [rest[1:]]
        end = parts[0].find(quote)
        taken: list[tuple[int, str]] = []
        size = len(parts[0])
        while end < 0 and quote == '"' and size <= MAX_QUOTED_BYTES:
            following = next_line()
            if following is None:
                break
            taken.append(following)
            parts.append(following[1])
            size += len(following[1]) + 1
            end = following[1].find(quote)
        if end < 0:
            on_problem(number, f"unterminated quoted value of {name}")
            again.extendleft(reversed(taken))  # the lines after it are read on their own
            continue
        parts[-1] = parts[-1][:end]
        yield name, "\n".join(parts), number


def scan_dotenv(path: Path, collector: Collector, npm: NpmContext) -> None:
    lines = collector.lines(path)
    if lines is None:
        return
    assignments = []
    for name, value, line in parse(lines, lambda n, m: collector.problem(path, m, n)):
        assignment = Assignment(name, value, Location("file", name, path, line))
        if relevant(assignment, npm):  # a huge file keeps only what can be a credential
            assignments.append(assignment)
    judge(assignments, collector, npm, origin=".env")
