"""The start screen (`runbook` alone): a bundled playbook, the target, the mode, and any
unfinished run of that playbook on that target, which is resumed unless a new run is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    OptionList,
    RadioButton,
    RadioSet,
    Static,
)
from textual.widgets.option_list import Option

from runbook.tui.render import Paths
from runbook.tui.request import MODES, Mode, Outline, RunRequest, StartSettings, outline_of

MODE_LABELS = {
    "dry-run": "Dry run: change nothing, see what each step would do (start here)",
    "live": "Live: make the changes (each destructive step asks first)",
    "tabletop": "Tabletop: rehearse the response as a team (a dry run)",
}


def unfinished_text(journal: Path, outline: Outline, paths: Paths) -> str:
    """One line about an unfinished run: when it started, by whom, how far it got."""
    from runbook.journal import read_entries
    from runbook.models import StepSpec
    from runbook.runstate import derive

    entries = read_entries(journal)
    first = entries[0] if entries else {}
    steps = [StepSpec.model_construct(id=step_id) for step_id, _ in outline.steps]
    states = derive(entries, steps)
    done = sum(1 for s in states.values() if s.status in ("succeeded", "skipped", "outstanding"))
    started = str(first.get("ts", ""))[:16].replace("T", " ")
    who = (first.get("data") or {}).get("operator", "someone")
    return (
        f"Unfinished run found: started {started} UTC by {who}, {done} of {len(steps)} steps "
        f"done ({paths.place(journal)}). Start resumes it."
    )


class StartScreen(Screen[None]):
    """Choose what to run; enter starts (or resumes) it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start"),
        Binding("escape", "app.quit_request", "Quit"),
    ]

    def __init__(self, settings: StartSettings) -> None:
        super().__init__()
        from runbook.playbook import bundled_playbooks

        self.settings = settings
        self.playbooks: dict[str, tuple[Path, Outline]] = {}
        for pid, path in bundled_playbooks().items():
            outline = outline_of(path, settings.env)
            if outline is not None:
                self.playbooks[pid] = (path, outline)
        self.unfinished: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="start"):
            yield Static(
                Text.assemble(
                    ("runbook", "bold"),
                    "  walks you through the response to a software supply-chain incident, "
                    "one step at a time, and keeps a tamper-evident journal of it.",
                ),
                id="start-intro",
            )
            yield Static("Playbook", classes="start-label")
            yield OptionList(
                *[
                    Option(Text.assemble((pid, "bold"), "  ", outline.title), id=pid)
                    for pid, (_, outline) in self.playbooks.items()
                ],
                id="playbooks",
                compact=True,
            )
            yield Static(
                "Target directory (the project to check and repair)", classes="start-label"
            )
            yield Input(self._shown_target(), id="target", compact=True)
            yield Static("Mode", classes="start-label")
            with RadioSet(id="mode", compact=True):
                for mode in MODES:
                    yield RadioButton(MODE_LABELS[mode], value=mode == "dry-run", compact=True)
            yield Static(id="unfinished")
            yield Checkbox("Start a new run instead of resuming", id="new", compact=True)
            with Horizontal(id="start-buttons"):
                yield Button("Start", id="start-button", variant="primary", compact=True)
            yield Static("tab: next field   enter: start   ctrl+c: quit", classes="dialog-keys")
        yield Footer()

    def _shown_target(self) -> str:
        home = self.settings.env.get("HOME")
        target = self.settings.target
        if home and target.is_relative_to(home):
            return str(Path("~") / target.relative_to(home))
        return str(target)

    def on_mount(self) -> None:
        target = self.query_one("#target", Input)
        target.cursor_blink = getattr(self.app, "blink", True)
        playbooks = self.query_one("#playbooks", OptionList)
        if self.playbooks:
            playbooks.highlighted = 0
        playbooks.focus()
        self._look_for_unfinished()

    # -- what is chosen --------------------------------------------------------------------------
    def _playbook(self) -> tuple[Path, Outline] | None:
        option = self.query_one("#playbooks", OptionList).highlighted_option
        return self.playbooks.get(option.id) if option and option.id else None

    def _mode(self) -> Mode:
        return MODES[max(self.query_one("#mode", RadioSet).pressed_index, 0)]

    def _target(self) -> Path | None:
        text = self.query_one("#target", Input).value.strip()
        home = self.settings.env.get("HOME")
        if home and (text == "~" or text.startswith("~/")):
            text = home + text[1:]
        path = Path(text or ".").resolve()
        return path if path.is_dir() else None

    @on(OptionList.OptionHighlighted)
    @on(RadioSet.Changed)
    @on(Input.Changed)
    def _look_for_unfinished(self) -> None:
        from runbook.runs import find_unfinished

        chosen, target = self._playbook(), self._target()
        label = self.query_one("#unfinished", Static)
        new = self.query_one("#new", Checkbox)
        self.unfinished = None
        if chosen is None or target is None:
            label.update(Text("The target must be an existing directory.", style="yellow"))
            new.display = False
            return
        _path, outline = chosen
        mode = "live" if self._mode() == "live" else "dry-run"
        env = self.settings.env
        self.unfinished = find_unfinished(env, outline.id, target, mode)
        home = env.get("HOME")
        paths = Paths(target, Path(home) if home else None)
        if self.unfinished is None:
            kind = "dry run" if mode == "dry-run" else "live run"
            label.update(
                Text(f"No unfinished {kind} of this playbook on this target.", style="dim")
            )
            new.display = False
        else:
            label.update(Text(unfinished_text(self.unfinished, outline, paths), style="yellow"))
            new.display = True

    # -- starting --------------------------------------------------------------------------------
    @on(OptionList.OptionSelected)
    @on(Input.Submitted)
    @on(Button.Pressed, "#start-button")
    def action_start(self) -> None:
        chosen, target = self._playbook(), self._target()
        if chosen is None:
            self.notify("Choose a playbook first.", severity="warning")
            return
        if target is None:
            self.notify("The target must be an existing directory.", severity="error")
            return
        path, outline = chosen
        settings = self.settings
        request = RunRequest(
            playbook=path,
            target=target,
            mode=self._mode(),
            env=settings.env,
            operator=settings.operator,
            options=dict(settings.options),
            new=self.query_one("#new", Checkbox).value,
        )
        self.app.open_run(request, outline)
