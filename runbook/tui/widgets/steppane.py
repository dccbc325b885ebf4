"""The main pane: the selected step's description, findings, plan preview and live log."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import RichLog, Static, TabbedContent, TabPane

from runbook.tui.render import (
    ICONS,
    STATUS_WORDS,
    Paths,
    duration_text,
    entry_text,
    finding_where,
    findings_summary,
    output_tail,
    package_text,
    plan_renderable,
    severity_text,
    sort_findings,
    span,
)
from runbook.tui.view import StepView
from runbook.tui.widgets.table import FittedTable

TABS = ("description", "findings", "plan", "log")
MAX_FINDING_ROWS = 1000  # more rows make moving onto the step slow; the journal keeps them all
NOT_PLANNED = (
    "Not planned yet. Press [b]enter[/b] to plan and run this step: runbook first works out "
    "what the step would do, shows it here, and asks before anything destructive."
)


class StepPane(Vertical):
    """Shows one `StepView`; `log_entry` appends to the live log as the journal grows."""

    def __init__(self, paths: Paths, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.view: StepView | None = None
        self._streamed = False

    def compose(self) -> ComposeResult:
        yield Static(id="step-head")
        with TabbedContent(id="tabs"):
            with TabPane("Description", id="description"), VerticalScroll(id="description-scroll"):
                yield Static("", id="description-text")
            with TabPane("Findings", id="findings"):
                yield Static(id="findings-summary")
                yield FittedTable(
                    [11, 9, 24, 60, 60],
                    3,
                    drop=(4, 1),
                    keep_tail=True,
                    id="findings-table",
                    cursor_type="none",
                )
            with TabPane("Plan", id="plan"), VerticalScroll(id="plan-scroll"):
                yield Static(NOT_PLANNED, id="plan-text")
            with TabPane("Log", id="log"):
                yield RichLog(
                    id="log-text", wrap=True, markup=False, highlight=False, max_lines=5000
                )

    def on_mount(self) -> None:
        for widget in self.query("DataTable, RichLog, VerticalScroll"):
            widget.can_focus = False

    # -- drawing ---------------------------------------------------------------------------------
    def show(self, view: StepView, *, same_step: bool) -> None:
        """Draw a step; when it is the step already shown, the description is left alone."""
        self.view = view
        self._head(view)
        if not same_step:
            description = view.spec.description.strip() or "_This step has no description._"
            self._describe(description)
            self.query_one("#description-scroll", VerticalScroll).scroll_home(animate=False)
        self._findings(view)
        self._plan(view)
        self._log(view)

    def _describe(self, text: str) -> None:
        """The step's Markdown, drawn by Rich in one widget (a Markdown widget mounts one widget
        per block, which made moving through the list slow)."""
        from rich.markdown import Markdown

        markdown = Markdown(text, code_theme="ansi_dark", inline_code_theme="ansi_dark")
        self.query_one("#description-text", Static).update(markdown)

    def _head(self, view: StepView) -> None:
        icon, style = ICONS.get(view.status, ("·", ""))
        status = STATUS_WORDS.get(view.status, view.status)
        head = Text.assemble(
            (f"Step {view.number} of {view.total}  ", "dim"),
            (view.spec.title, "bold"),
            "\n",
            (f"{icon} {status}", style),
        )
        if view.state.duration is not None and view.status != "running":
            head.append(f" in {duration_text(view.state.duration)}", style="dim")
        if view.state.summary:
            head.append(f": {view.state.summary}")
        meta = f"   [{view.spec.id} · uses {view.spec.uses} · confirm {view.spec.confirm}"
        if view.conditions:
            meta += f" · only when {view.conditions}"
        head.append(meta + "]", style="dim")
        self.query_one("#step-head", Static).update(head)

    def _findings(self, view: StepView) -> None:
        tabs = self.query_one(TabbedContent)
        findings = sort_findings(view.findings)
        tabs.get_tab("findings").label = f"Findings ({len(findings)})" if findings else "Findings"
        # a column no finding fills (Package, for credentials) gives its room to the others
        with_package = any(finding.get("package") for finding in findings)
        rows = []
        for finding in findings[:MAX_FINDING_ROWS]:
            kind = str(finding.get("kind", "")).removeprefix("credential:")
            row = [severity_text(finding.get("severity", "")), kind]
            row += [package_text(finding)] if with_package else []
            row += [finding_where(finding, self.paths), finding.get("message", "")]
            rows.append(row)
        headers = ["Severity", "Kind", *(["Package"] if with_package else []), "Where", "What"]
        table = self.query_one("#findings-table", FittedTable)
        if with_package:  # the path is flexible and keeps its tail (the file name)
            table.caps, table.flex, table.drop, table.keep_tail = (
                [11, 9, 24, 60, 60],
                3,
                (4, 1),
                True,
            )
        else:  # credentials: the message (redacted value, key, rotation) reads from its start
            table.caps, table.flex, table.drop, table.keep_tail = [11, 14, 32, 90], 3, (), False
        table.fill(headers, rows)
        if view.plan is None:
            summary = "Findings appear here once the step has been planned (enter)."
        elif findings:
            summary = f"{findings_summary(findings)} (worst first)"
            if len(findings) > MAX_FINDING_ROWS:
                summary += f"; the first {MAX_FINDING_ROWS} are listed, the report has them all"
        else:
            summary = "No findings: nothing of the incident was seen by this step."
        self.query_one("#findings-summary", Static).update(summary)

    def _plan(self, view: StepView) -> None:
        tabs = self.query_one(TabbedContent)
        count = len(view.actions)
        tabs.get_tab("plan").label = f"Plan ({count})" if count else "Plan"
        text = self.query_one("#plan-text", Static)
        if view.plan is None:
            text.update(NOT_PLANNED)
        else:
            text.update(plan_renderable(view.actions, view.notes, self.paths))

    def _log(self, view: StepView) -> None:
        log = self.query_one("#log-text", RichLog)
        log.clear()
        self._streamed = False  # streamed lines belonged to what was shown before
        if not view.entries:
            log.write(Text("Nothing has happened in this step yet.", style="dim"))
        for entry in view.entries:
            self.log_entry(entry)

    def log_entry(self, entry: dict[str, Any]) -> None:
        log = self.query_one("#log-text", RichLog)
        stamp = str(entry.get("ts", ""))[11:19]
        log.write(span(f"{stamp} ", "dim") + entry_text(entry, self.paths))
        tail = "" if self._streamed else output_tail(entry)
        self._streamed = False  # the live lines were the output: no need to repeat its tail
        if tail:
            log.write(Text("\n".join("    " + line for line in tail.splitlines()), style="dim"))

    def log_output(self, line: str) -> None:
        """One line printed by the running command (redacted before it got here)."""
        self._streamed = True
        self.query_one("#log-text", RichLog).write(Text("  │ " + line, style="dim"))

    # -- tabs ------------------------------------------------------------------------------------
    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active

    def choose_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def default_tab(self, view: StepView) -> str:
        """Where to look: the instructions while a checklist is asked, the log while work runs,
        the findings of a step that only observes, the plan of one waiting to be applied."""
        if view.plan is None:
            return "description"
        checklist = bool(view.actions) and all(a.get("kind") == "manual" for a in view.actions)
        status = view.status
        if status == "running":
            return "description" if checklist else "log" if view.actions else "findings"
        if view.findings and not view.actions:
            return "findings"
        if status == "pending":
            return "plan"
        return "log"
