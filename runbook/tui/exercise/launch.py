"""`runbook exercise start`: the players' app on a prepared exercise."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from runbook.exercise.model import Variant
from runbook.exercise.scenario import LoadedScenario
from runbook.exercise.session import Prepared, ServicesStarting
from runbook.tui.app import RunbookApp
from runbook.tui.exercise.screen import WELCOME, ExerciseRunScreen
from runbook.tui.launch import report
from runbook.tui.request import Outline, RunRequest


class ExerciseApp(RunbookApp):
    """The runbook app whose run is an exercise."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "app.tcss")

    def __init__(self, request: RunRequest, outline: Outline, prepared: Prepared, **kw: Any):
        super().__init__(request, outline, **kw)
        self.prepared = prepared

    def get_default_screen(self) -> ExerciseRunScreen:
        assert self.request is not None and self.outline is not None
        return ExerciseRunScreen(self.request, self.outline, self.prepared)


def players_app(prepared: Prepared, operator: str, *, blink: bool = True) -> ExerciseApp:
    """The players' app on a prepared exercise (the stand-ins start once it is drawn)."""
    world = prepared.world
    playbook = prepared.loaded.playbook
    outline = Outline(
        playbook.playbook.id,
        f"{prepared.loaded.scenario.title}",
        [(s.id, s.title) for s in playbook.playbook.steps],
    )
    request = RunRequest(
        playbook=playbook.path,
        target=Path(world.targets[0]),
        mode="exercise",
        env=dict(world.env),
        operator=operator,
        display=str(playbook.path),
        options=dict(world.run_options),
        journal=prepared.directory / "run.jsonl",
        new=True,
        welcome=WELCOME,
    )
    return ExerciseApp(request, outline, prepared, blink=blink)


def run_players(
    loaded: LoadedScenario,
    variant: Variant,
    seed: int,
    directory: Path,
    world: Any,
    *,
    operator: str,
    role: str | None = None,
    speed: float = 1.0,
) -> int:
    prepared = Prepared(loaded, variant, seed, directory, world, speed=speed, role=role)
    prepared.services = ServicesStarting(world)  # while the app draws its first screen
    try:
        result = players_app(prepared, operator).run()
    finally:
        with contextlib.suppress(BaseException):  # a failure to start was shown in the app
            prepared.services.wait()
        stop = getattr(world, "stop_services", None)
        if callable(stop):
            stop()
    code = report(result, resumable=False)
    print(f"after-action report: runbook exercise report {directory} -o aar.html")
    return code
