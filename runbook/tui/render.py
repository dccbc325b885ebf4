"""How journal data looks on screen: plans, findings, log lines. Rich renderables, no widgets.

Everything drawn here comes from journal entries (already redacted) or passes the run's redactor
first, and paths are shown relative to the target (or `~`) so they read at a glance.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from runbook.units import human_size

SEVERITIES = ("compromised", "at-risk", "unknown", "info")
SEVERITY_STYLE = {
    "compromised": "bold red",
    "at-risk": "yellow",
    "unknown": "magenta",
    "info": "dim",
}
ICONS = {
    "pending": ("○", "dim"),
    "running": ("▶", "bold yellow"),
    "succeeded": ("✔", "green"),
    "failed": ("✘", "bold red"),
    "skipped": ("»", "dim"),
    "outstanding": ("◐", "yellow"),
    "interrupted": ("!", "bold yellow"),
}
STATUS_WORDS = {
    "pending": "not run yet",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "FAILED",
    "skipped": "skipped",
    "outstanding": "done, with items left open",
    "interrupted": "interrupted (it runs again from a fresh plan when you press enter)",
}
MODE_BANNER = {
    "live": "LIVE: changes are real",
    "dry-run": "DRY RUN: nothing will be changed",
    "tabletop": "TABLETOP: a rehearsal, nothing is changed",
    "exercise": "EXERCISE: live, inside a simulated world",
}


def duration_text(seconds: float | None) -> str:
    """`<1s`, `4.2s`, `12s`, `3m05s`; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 1:
        return "<1s"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


@dataclass(frozen=True)
class Paths:
    """Shows paths the short way: relative to the target, else under `~`, else as they are."""

    target: Path
    home: Path | None = None

    def show(self, path: str | Path | None) -> str:
        if not path:
            return ""
        text = str(path)
        if not os.path.isabs(text):
            return text
        p = Path(text)
        if p == self.target:
            return "."
        if p.is_relative_to(self.target):
            return str(p.relative_to(self.target))
        if self.home is not None and p.is_relative_to(self.home):
            return "~/" + str(p.relative_to(self.home))
        return text

    def place(self, path: Path) -> str:
        """The target or another directory for a header: `~/invoice-sync`."""
        if self.home is not None and path.is_relative_to(self.home):
            return "~/" + str(path.relative_to(self.home))
        return str(path)


# -- findings -------------------------------------------------------------------------------------
def severity_text(severity: str) -> Text:
    return Text(severity, style=SEVERITY_STYLE.get(severity, ""))


def package_text(finding: dict[str, Any]) -> str:
    package = finding.get("package") or ""
    version = finding.get("version")
    return f"{package}@{version}" if package and version else package


def finding_where(finding: dict[str, Any], paths: Paths) -> str:
    where = paths.show(finding.get("path"))
    return f"{where}:{finding['line']}" if finding.get("line") else where


def sort_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: rank.get(f.get("severity", ""), len(rank)))


def findings_summary(findings: list[dict[str, Any]]) -> str:
    counts = Counter(f.get("severity") for f in findings)
    text = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    return text or "no traces found"


# -- plans ----------------------------------------------------------------------------------------
def _command(detail: dict[str, Any], summary: str) -> str:
    argv = detail.get("argv")
    if isinstance(argv, list) and argv:
        first = str(argv[0])
        return " ".join([os.path.basename(first) if os.path.isabs(first) else first, *argv[1:]])
    return summary


def plan_counts(actions: list[dict[str, Any]]) -> str:
    """One line saying what a plan amounts to: `1 file edited, 1 command, 1 tree (25.9 KiB)`."""
    kinds = Counter(a.get("kind") for a in actions)
    parts = []
    if kinds["edit"]:
        parts.append(f"{kinds['edit']} file(s) edited")
    if kinds["delete"]:
        size = sum(
            int(a.get("detail", {}).get("bytes") or 0) for a in actions if a["kind"] == "delete"
        )
        parts.append(f"{kinds['delete']} path(s) removed ({human_size(size)})")
    if kinds["run"]:
        parts.append(f"{kinds['run']} command(s) run")
    for kind, word in (("call", "call(s)"), ("keyring", "keyring write(s)"), ("git", "commit(s)")):
        if kinds[kind]:
            parts.append(f"{kinds[kind]} {word}")
    if kinds["manual"]:
        parts.append(f"{kinds['manual']} checklist item(s)")
    if kinds["other"]:
        parts.append(f"{kinds['other']} other action(s)")
    destructive = sum(1 for a in actions if a.get("destructive"))
    head = f"{len(actions)} action(s)" + (f", {destructive} destructive" if destructive else "")
    return head + (": " + ", ".join(parts) if parts else "")


def span(text: str, style: str = "") -> Text:
    """Styled text that keeps its style to itself when more text is added after it (a Text made
    with `style=` lends that style to everything appended)."""
    return Text.assemble((text, style))


def _mark(action: dict[str, Any]) -> Text:
    return span("! ", "bold red") if action.get("destructive") else span("  ")


def plan_renderable(
    actions: list[dict[str, Any]], notes: list[str], paths: Paths
) -> RenderableType:
    """The plan preview: diffs of file edits, trees to delete with sizes, commands, the rest."""
    from rich.syntax import Syntax
    from rich.tree import Tree

    parts: list[RenderableType] = []
    edits = [a for a in actions if a.get("kind") == "edit"]
    deletes = [a for a in actions if a.get("kind") == "delete"]
    runs = [a for a in actions if a.get("kind") == "run"]
    rest = [a for a in actions if a.get("kind") not in ("edit", "delete", "run")]
    if edits:
        parts.append(Text("File edits", style="bold underline"))
        for action in edits:
            parts.append(_mark(action) + Text(action.get("summary", "")))
            diff = action.get("detail", {}).get("diff")
            if diff:
                parts.append(
                    Syntax(diff.rstrip("\n"), "diff", theme="ansi_dark", word_wrap=True, padding=0)
                )
        parts.append(Text(""))
    if deletes:
        total = sum(int(a.get("detail", {}).get("bytes") or 0) for a in deletes)
        parts.append(Text(f"To delete ({human_size(total)})", style="bold underline"))
        tree = Tree(Text(paths.place(paths.target), style="bold"), guide_style="dim")
        for action in deletes:
            detail = action.get("detail", {})
            label = _mark(action) + Text(paths.show(detail.get("path")) or action["summary"])
            if detail.get("bytes") is not None:
                label += Text(f"  {human_size(detail['bytes'])}", style="cyan")
            if detail.get("files") is not None:
                label += Text(f", {detail['files']} entries", style="dim")
            tree.add(label)
        parts += [tree, Text("")]
    if runs:
        parts.append(Text("Commands", style="bold underline"))
        for action in runs:
            detail = action.get("detail", {})
            line = (
                _mark(action)
                + Text("$ ", style="dim")
                + Text(_command(detail, action.get("summary", "")), style="bold")
            )
            if detail.get("cwd"):
                line += Text(f"   (in {paths.show(detail['cwd'])})", style="dim")
            parts.append(line)
            parts.append(Text("    " + action.get("summary", ""), style="dim"))
        parts.append(Text(""))
    if rest:
        manual = all(a.get("kind") == "manual" for a in rest)
        parts.append(Text("Checklist" if manual else "Other actions", style="bold underline"))
        for action in rest:
            bullet = "☐ " if action.get("kind") == "manual" else f"{action.get('kind')}: "
            parts.append(_mark(action) + Text(bullet + action.get("summary", "")))
        parts.append(Text(""))
    if not actions:
        parts.append(Text("Nothing to do: this step only observes, or found nothing to change."))
    if notes:
        parts.append(Text("Notes", style="bold underline"))
        parts += [Text(f"• {note}", style="dim") for note in notes]
    return Group(*parts)


# -- journal entries ------------------------------------------------------------------------------
def _effect(data: dict[str, Any], paths: Paths) -> Text:
    op = data.get("op", "")
    outcome = data.get("outcome", "")
    would = outcome == "would"
    verb = {
        "write_file": ("would write", "wrote"),
        "write_secret_file": ("would rewrite credential file", "rewrote credential file"),
        "remove_tree": ("would remove", "removed"),
        "run": ("would run", "ran"),
    }.get(op, (f"would {op}", op))[0 if would else 1]
    if op == "run":
        text = Text(f"{verb} ") + Text(_command({"argv": str(data.get("argv", "")).split()}, ""))
        if data.get("returncode") is not None:
            text += Text(f"  exit {data['returncode']}", style="dim")
        if data.get("duration") is not None:
            text += Text(f" in {duration_text(data['duration'])}", style="dim")
    elif op in ("write_file", "write_secret_file", "remove_tree"):
        text = Text(f"{verb} {paths.show(data.get('path'))}")
        if data.get("bytes"):
            text += Text(f"  {human_size(data['bytes'])}", style="cyan")
    elif op == "call":
        text = Text(f"{'would call' if would else 'called'} {data.get('service')} ")
        text += Text(f"{data.get('operation')}: {data.get('summary', '')}")
    elif op in ("allow_roots", "allow_files"):
        places = data.get("roots") or data.get("files") or []
        text = span("may also change " + ", ".join(paths.show(p) for p in places), "dim")
    else:
        text = Text(verb)
    if outcome in ("error", "timeout"):
        text += Text(f"  {outcome}: {data.get('error', '')}", style="bold red")
    elif outcome == "absent":
        text += Text("  (already gone)", style="dim")
    return text


def entry_text(entry: dict[str, Any], paths: Paths) -> Text:
    """One journal entry in a few words."""
    event, data = entry.get("event", ""), entry.get("data") or {}
    if event in ("run_started", "run_resumed"):
        verb = "run started" if event == "run_started" else "run resumed"
        return Text(f"{verb} ({data.get('mode')}) by {data.get('operator')} on {data.get('host')}")
    if event == "step_planned":
        findings, actions = data.get("findings", []), data.get("actions", [])
        return Text(f"planned: {len(actions)} action(s), {len(findings)} finding(s)")
    if event == "step_confirmed":
        answer = data.get("answer", "")
        style = {"yes": "green", "no": "red"}.get(answer, "yellow")
        typed = " (step id typed)" if data.get("typed") else ""
        text = Text("confirmation: ") + Text(answer, style=f"bold {style}")
        text += Text(f" by {data.get('by')}{typed}")
        return text + (Text(f": {data['reason']}") if data.get("reason") else Text(""))
    if event == "step_started":
        return Text("started", style="bold")
    if event == "effect":
        return _effect(data, paths)
    if event == "manual_item":
        mark = {"done": ("✔", "green"), "declined": ("✘", "red")}.get(
            data.get("answer", ""), ("◐", "yellow")
        )
        return span(f"{mark[0]} ", mark[1]) + Text(f"{data.get('answer')}: {data.get('text')}")
    if event == "step_finished":
        outcome = data.get("outcome", "")
        icon, style = ICONS.get(outcome, ("·", ""))
        text = span(f"{icon} {outcome}", style)
        if data.get("summary"):
            text += Text(f": {data['summary']}")
        return text + Text(f"  {duration_text(data.get('duration'))}", style="dim")
    if event == "step_skipped":
        return Text(f"» skipped: {data.get('reason')} (by {data.get('by')})", style="dim")
    if event == "step_reset":
        return Text(f"reset: {data.get('reason')}", style="dim")
    if event == "note":
        return span(f"note by {data.get('by')}: ", "bold cyan") + Text(data.get("text", ""))
    if event == "run_finished":
        reason = f": {data['reason']}" if data.get("reason") else ""
        return Text(f"run finished: {data.get('outcome')}{reason}")
    return Text(event.replace("_", " "))


def output_tail(entry: dict[str, Any], lines: int = 12) -> str:
    """The last lines a command printed, for the live log."""
    data = entry.get("data") or {}
    if entry.get("event") != "effect" or data.get("op") != "run":
        return ""
    text = (data.get("stdout_tail") or "") + (data.get("stderr_tail") or "")
    return "\n".join(text.strip().splitlines()[-lines:])
