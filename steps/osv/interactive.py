"""`runbook new` without OSV files: the same facts, asked for one by one (plain prompts).

`ask` is `input` and `say` is `print` in the CLI; an answer that cannot be used is explained and
asked again. End of input (Ctrl-D) raises `EOFError`: the caller writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError

from runbook.models import STEP_ID, Network
from steps.osv.draft import IncidentDraft, PackageDraft, is_fill_in
from steps.osv.pins import complete
from steps.osv.records import is_exact, is_npm_name, major, parse_time

Ask = Callable[[str], str]
Say = Callable[[str], None]


def ask_incident(
    ask: Ask, say: Say, playbook_id: str | None = None, registry: str | None = None
) -> IncidentDraft:
    """Ask for the playbook's facts; returns the draft (pins from `registry` offered first)."""
    say("A playbook for a new incident. Answer each question; Ctrl-D stops without writing.")
    while not playbook_id:
        answer = ask("Playbook id (like left-pad-2026-04): ").strip()
        if re.match(STEP_ID, answer):
            playbook_id = answer
        else:
            say("  use lowercase letters, digits, '-' and '_', starting with a letter or digit")
    draft = IncidentDraft(id=playbook_id)
    while not draft.title:
        draft.title = ask("Title (what happened, in a line): ").strip()
    draft.summary = ask("Summary (a few sentences; Enter to skip): ").strip()

    say("Packages: one at a time; an empty name ends the list.")
    while True:
        name = ask("Package name: ").strip()
        if not name:
            if draft.packages:
                break
            say("  a playbook needs at least one package")
            continue
        if not is_npm_name(name):
            say(f"  {name!r} is not an npm package name")
            continue
        _ask_versions(ask, say, draft.package(name))

    complete(draft, registry)  # registry pins become the offered answers
    for package in draft.packages.values():
        for line in package.pin_lines():
            _ask_pin(ask, say, package, line)

    _ask_window(ask, say, draft)
    for key, label in (("domains", "Domains"), ("ips", "IP addresses"), ("urls", "URLs")):
        getattr(draft, key).extend(_ask_indicators(ask, say, key, label))
    for url in _split(ask("Reference URLs (advisories, write-ups; comma-separated): ")):
        draft.references.append((url, url))
    return draft


def _ask_versions(ask: Ask, say: Say, package: PackageDraft) -> None:
    from steps.osv.records import Interval

    while True:
        answer = ask(
            f"Bad versions of {package.name} (comma-separated exact versions or ranges like "
            "'>=4.1.1 <=4.1.2'; * for every version): "
        )
        items = _split(answer)
        if not items:
            say("  give at least one version, range or *")
            continue
        problems = []
        for item in items:
            if item == "*":
                package.any_version = True
            elif is_exact(item):
                package.bad_versions.add(item)
            elif (bounds := _bounds(item)) is not None:
                package.intervals.append(Interval(*bounds))
            else:
                problems.append(
                    f"{item!r} is not an exact version (like 1.14.1) or a range "
                    "('>=A <B', '>=A <=B' or '>=A')"
                )
        if not problems:
            return
        for problem in problems:
            say(f"  {problem}")
        package.bad_versions.clear()
        package.intervals.clear()
        package.any_version = False


def _bounds(text: str) -> tuple[str, str | None, bool] | None:
    """'>=A <B' / '>=A <=B' / '>=A' as (introduced, upper, upper included)."""
    match = re.fullmatch(r">=\s*(\S+)(?:\s+<(=?)\s*(\S+))?", text.strip())
    if not match or not is_exact(match[1]):
        return None
    if match[3] and not is_exact(match[3]):
        return None
    return match[1], match[3], bool(match[2])


def _ask_pin(ask: Ask, say: Say, package: PackageDraft, line: str) -> None:
    offered = package.safe_pins.get(line, "")
    shown = "" if is_fill_in(offered) else offered
    hint = f" [{shown}]" if shown else " (Enter: fill in later)"
    while True:
        answer = ask(f"Safe pin for {package.name} {line}.x{hint}: ").strip() or shown
        if not answer:
            return  # stays a FILL-IN placeholder
        if not is_exact(answer) or major(answer) != line:
            say(f"  give an exact {line}.x version, like {line}.2.3")
        elif package.is_bad(answer):
            say(f"  {answer} is one of the bad versions")
        else:
            package.safe_pins[line] = answer
            return


def _ask_window(ask: Ask, say: Say, draft: IncidentDraft) -> None:
    known = min(draft.starts)[0].strftime("%Y-%m-%dT%H:%M:%SZ") if draft.starts else ""
    hint = f" [{known}]" if known else " (Enter: now)"
    while True:
        answer = ask(f"When was the first bad version published? (UTC){hint}: ").strip()
        if not answer:
            if not known:
                draft.warnings.append("the incident window starts when the playbook was written")
            return
        moment = parse_time(answer.replace(" ", "T"))
        if moment is None:
            say("  write a date and time with a timezone, like 2026-03-31T00:21:00Z")
            continue
        draft.starts = [(moment, "given when the playbook was written")]
        return


def _ask_indicators(ask: Ask, say: Say, key: str, label: str) -> list[str]:
    while True:
        items = _split(ask(f"{label} the malware talks to (comma-separated; Enter: none): "))
        try:
            return list(getattr(Network.model_validate({key: items}), key))
        except ValidationError as exc:
            for error in exc.errors():
                say(f"  {error['msg'].removeprefix('Value error, ')}")


def _split(answer: str) -> list[str]:
    return [item.strip() for item in answer.split(",") if item.strip()]
