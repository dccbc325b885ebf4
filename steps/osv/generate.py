"""A draft -> playbook YAML: the incident section from the draft, the standard steps from
`steps.osv.template`, and a comment block at the top with what a person must review and fill in.

The warnings are written twice on purpose: in the comment block, which an editor shows first, and
in `incident.summary` and the packages' `note`, which survive any tool that rewrites the YAML.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

import yaml

from runbook.termsafe import printable
from steps.osv.draft import IncidentDraft, is_fill_in
from steps.osv.template import Facts, standard_steps

_WIDTH = 98


def playbook_document(draft: IncidentDraft) -> dict[str, Any]:
    """The playbook as plain data, in the order the YAML shows it."""
    start, end, window_note = _window(draft)
    packages = []
    for package in draft.packages.values():
        entry: dict[str, Any] = {"name": package.name}
        if package.bad_versions:
            entry["bad_versions"] = package.sorted_versions()
        if package.intervals:
            entry["bad_ranges"] = package.bad_ranges()
        if package.any_version:
            entry["any_version"] = True
        if package.safe_pins:
            entry["safe_pins"] = dict(sorted(package.safe_pins.items(), key=lambda i: -int(i[0])))
        if package.advisories:
            entry["advisories"] = list(package.advisories)
        if package.notes:
            entry["note"] = "\n".join(package.notes)
        packages.append(entry)
    incident: dict[str, Any] = {"summary": _summary(draft)}
    if draft.references:
        incident["references"] = [{"title": t, "url": u} for t, u in draft.references]
    incident["window"] = {"start": _iso(start), "end": _iso(end), "note": window_note}
    incident["packages"] = packages
    indicators = _indicators(draft)
    if indicators:
        incident["indicators"] = indicators
    return {
        "id": draft.id,
        "title": _clean(draft.title or _title(draft)),
        "version": "1",
        "incident": _cleaned(incident),
        "steps": standard_steps(_facts(draft)),
    }


def render(draft: IncidentDraft, command: str = "runbook new") -> str:
    """The playbook file: the comment block, then the YAML."""
    return header(draft, command) + dump(playbook_document(draft))


def header(draft: IncidentDraft, command: str) -> str:
    inputs = [f"{len(draft.sources)} OSV records"] if draft.sources else []
    inputs += [f"{len(draft.lists)} version list{'s' if len(draft.lists) != 1 else ''}"] * bool(
        draft.lists
    )
    lines = [
        f"Playbook written by `{command}` from {' and '.join(inputs)}"
        if inputs
        else f"Playbook written by `{command}` from answers to its questions",
        "Format: docs/playbook.md. Check it with `runbook validate FILE`.",
    ]
    fill = draft.fill_ins()
    if fill:
        lines += [
            "",
            f"TO FILL IN ({len(fill)}; `runbook validate` fails until each is a version):",
            *[
                f"- incident.packages[{_index(draft, name)}].safe_pins.{line}: the highest good "
                f"{name} {line}.x version (`npm view {name} versions`)"
                for name, line in fill
            ],
        ]
    if draft.warnings:
        lines += [
            "",
            f"REVIEW BEFORE USE ({len(draft.warnings)}; also in incident.summary and the "
            "packages' notes):",
            *[f"- {w}" for w in draft.warnings],
        ]
    if draft.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in draft.notes]]
    if draft.sources:
        lines += ["", "Records read:", *[f"- {s}" for s in draft.sources]]
    if draft.lists:
        lines += ["", "Version lists read:", *[f"- {s}" for s in draft.lists]]
    out = []
    for line in lines:
        safe = printable(line)  # one comment line stays one line, whatever a record holds
        wrapped = (
            textwrap.wrap(
                safe,
                _WIDTH - 2,
                subsequent_indent="  ",
                break_on_hyphens=False,
                break_long_words=False,
            )
            if safe
            else [""]
        )
        out += [f"# {w}".rstrip() for w in wrapped]
    return "\n".join(out) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key, multi-line text as `|` blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
        default_flow_style=False,
    )


def _summary(draft: IncidentDraft) -> str:
    listed = shorten([f"`{p.name}` ({p.describe()})" for p in draft.packages.values()])
    parts = [draft.summary.strip() or f"Malicious npm package versions: {listed}."]
    parts += draft.summary_notes
    fill = draft.fill_ins()
    if draft.warnings or fill:
        review = ["## Review before use", ""]
        review += [f"- {w}" for w in draft.warnings]
        review += [f"- Fill in the safe {line}.x pin of {name}." for name, line in fill]
        parts.append("\n".join(review))
    return "\n\n".join(parts)


def shorten(items: list[str], limit: int = 12) -> str:
    """`a, b, c`; past `limit` items, the first ones and how many more (every one of them is in
    `incident.packages`)."""
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit:,} more (see incident.packages)"


def _title(draft: IncidentDraft) -> str:
    names = list(draft.packages)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"Malicious npm versions: {shown}"


def _window(draft: IncidentDraft) -> tuple[datetime, datetime, str]:
    if draft.starts:
        start, start_from = min(draft.starts)
    else:
        start, start_from = datetime.now(UTC).replace(microsecond=0), "when this was written"
    end, end_from = max([*draft.ends, (start, start_from)])
    note = (
        f"Written by runbook new: start is the earliest time the sources give ({start_from}), "
        f"end the latest ({end_from}). Check both: a bad version was on the registry before "
        "its advisory, and mirrors may serve it long after it was removed."
    )
    return start, end, note


def _indicators(draft: IncidentDraft) -> dict[str, Any]:
    network = {
        key: values
        for key, values in (("domains", draft.domains), ("ips", draft.ips), ("urls", draft.urls))
        if values
    }
    out: dict[str, Any] = {}
    if network:
        out["network"] = network
    if draft.file_hashes:
        out["file_hashes"] = draft.file_hashes
    return out


def _facts(draft: IncidentDraft) -> Facts:
    packages = [(p.name, p.describe()) for p in draft.packages.values()]
    pins = []
    for package in draft.packages.values():
        known = [(line, v) for line, v in package.safe_pins.items() if not is_fill_in(v)]
        if known:
            shown = ", ".join(
                f"{v} ({line}.x)" for line, v in sorted(known, key=lambda i: -int(i[0]))
            )
            pins.append((package.name, shown))
    return Facts(draft.id, packages, pins, draft.domains, draft.ips, draft.urls)


def _index(draft: IncidentDraft, name: str) -> int:
    return list(draft.packages).index(name)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cleaned(value: Any) -> Any:
    """Every text in `value` (which came from records or answers) made safe by `_clean`."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {k: _cleaned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    return value


def _clean(text: str) -> str:
    """Text from records made safe to show: control characters escaped, no trailing blanks."""
    safe = printable(text, keep_newlines=True).replace("\t", "    ")
    return "\n".join(line.rstrip() for line in safe.strip().splitlines())
