"""Opening an exercise: draw the variant, build the world, start its stand-ins, and open a live
run of the playbook inside it, journaled as an `exercise` run. No Textual in here.

Layout of an exercise directory (a new temporary directory unless `--dir` names one):

    run.jsonl              the journal (players, facilitator and drill master append to it)
    run.d/backups/         the run's backups, as for any run
    run.d/ground-truth.json  what the facilitator sees and the players do not (mode 0600)
    world/                 the world's sandbox: HOME, host root, projects, stand-ins' data

Every effect of the run is confined to `world/` (the Effects roots), and the run's environment
is the world's: the real HOME, caches, keyring and network are never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.exercise.drill import Drill
from runbook.exercise.model import Variant, format_duration
from runbook.exercise.scenario import LoadedScenario
from runbook.exercise.worlds import WorldUnavailable, world_plugin
from runbook.journal import Journal, JournalError
from runbook.operator import Operator
from runbook.redact import Redactor
from runbook.runner import Runner

JOURNAL_NAME = "run.jsonl"
GROUND_TRUTH = "ground-truth.json"
# what the players' process keeps of the caller's environment: the terminal and the locale
KEEP = ("TERM", "COLORTERM", "TERM_PROGRAM", "LANG", "TZ", "NO_COLOR", "COLUMNS", "LINES")

JournalFactory = Callable[[Path, Redactor], Journal]


class ExerciseError(Exception):
    """The exercise cannot start; the message says why."""


def draw_variant(loaded: LoadedScenario, seed: int, forced: str | None = None) -> Variant:
    """The variant the seed draws (by weight), or the one asked for by name."""
    scenario = loaded.scenario
    if forced is not None:
        try:
            return scenario.variant(forced)
        except KeyError:
            known = ", ".join(v.id for v in scenario.variants)
            raise ExerciseError(
                f"no variant '{forced}' in {scenario.id}; variants: {known}"
            ) from None
    rng = random.Random(seed)
    return rng.choices(scenario.variants, weights=[v.weight for v in scenario.variants])[0]


def new_seed() -> int:
    return secrets.randbelow(2**31)


def exercise_dir(directory: Path | None) -> Path:
    """A new, empty exercise directory (made), or the one given if it is empty or new."""
    if directory is None:
        return Path(os.path.realpath(tempfile.mkdtemp(prefix="runbook-exercise-")))
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExerciseError(f"{directory} is not an empty directory; give a new one")
    directory.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(directory))


def journal_in(run: Path) -> Path:
    """RUN is the journal, or an exercise directory holding one."""
    run = Path(run)
    if run.is_dir():
        return run / JOURNAL_NAME
    return run


@dataclass
class Prepared:
    """What `exercise start` prepared before the players' app opens: the scenario, the variant
    drawn, the world built (its stand-ins not started yet)."""

    loaded: LoadedScenario
    variant: Variant
    seed: int
    directory: Path
    world: Any
    speed: float = 1.0
    role: str | None = None
    services: ServicesStarting | None = None


class ServicesStarting:
    """The world's stand-ins starting in a thread while the app draws its first screen."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="runbook-stand-ins", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.world.start_services()
        except BaseException as exc:  # handed to whoever waits for them
            self.error = exc

    def wait(self) -> None:
        """Return once they answer; raise what stopped them."""
        self._thread.join()
        if self.error is not None:
            raise self.error


@dataclass
class Exercise:
    """An open exercise: its world, journal, runner and drill master."""

    loaded: LoadedScenario
    variant: Variant
    seed: int
    directory: Path
    world: Any
    journal: Journal
    runner: Runner
    drill: Drill
    redactor: Redactor
    warnings: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def journal_path(self) -> Path:
        return self.journal.path

    def close(self, outcome: str | None = None, reason: str = "") -> str:
        """End the exercise (score journaled), end the run, stop the stand-ins."""
        if self.closed:
            return self.journal.head
        self.closed = True
        try:
            self.drill.finish(self.runner.operator.name)
            if outcome is None:
                states = self.runner.states()
                steps = self.loaded.playbook.playbook.steps
                left = [s.id for s in steps if not states[s.id].finished(s)]
                outcome = "completed" if not left else "stopped"
                if left and not reason:
                    reason = f"the exercise ended with {len(left)} step(s) left"
            return self.runner.finish(outcome, reason)
        finally:
            self.journal.close()
            stop = getattr(self.world, "stop_services", None)
            if callable(stop):
                with contextlib.suppress(Exception):  # the stand-ins die with the sandbox anyway
                    stop()


def build_world(loaded: LoadedScenario, variant: Variant, seed: int, directory: Path) -> Any:
    """Build the world of `variant` in `directory/world` (WORLD's `build`)."""
    scenario = loaded.scenario
    try:
        plugin = world_plugin(scenario.world_kind)
    except WorldUnavailable as exc:
        raise ExerciseError(str(exc)) from None
    sandbox = directory / "world"
    sandbox.mkdir()
    spec = {k: v for k, v in scenario.world.items() if k != "kind"}
    try:
        return plugin.build(spec, variant.id, dict(variant.world), seed, sandbox)
    except Exception as exc:
        raise ExerciseError(f"the world could not be built: {type(exc).__name__}: {exc}") from None


def world_password(world: Any) -> str | None:
    """The password of the world's own (made-up) accounts, for the steps that ask for one:
    the scripted team types it in `--auto`; the facilitator hands it to the players. (The
    npm-host world calls it `npm_password`.)"""
    value = getattr(world, "npm_password", None) or getattr(world, "password", None)
    return str(value) if value else None


def process_env(world_env: dict[str, str]) -> dict[str, str]:
    """The environment of a process that plays a drill: the world's, plus the terminal."""
    kept = {k: v for k, v in os.environ.items() if k in KEEP or k.startswith("LC_")}
    return {**kept, **world_env}


def open_exercise(
    loaded: LoadedScenario,
    operator: Operator,
    *,
    seed: int,
    variant: Variant,
    directory: Path,
    world: Any,
    speed: float = 1.0,
    scripted: bool = False,
    role: str | None = None,
    redactor: Redactor | None = None,
    journal_factory: JournalFactory | None = None,
    output: Callable[[str, str], None] | None = None,
    on_fired: Callable[..., None] | None = None,
    services: ServicesStarting | None = None,
) -> Exercise:
    """Start the world's stand-ins and open the run; journals run_started, exercise_started,
    the participant and the clock's start. Raises ExerciseError."""
    scenario = loaded.scenario
    redactor = redactor or Redactor()
    factory = journal_factory or (lambda path, redact: Journal(path, redact, shared=True))
    try:
        if services is not None:
            services.wait()
        else:
            world.start_services()
    except Exception as exc:
        raise ExerciseError(
            f"the world's stand-ins did not start: {type(exc).__name__}: {exc}"
        ) from None
    try:
        journal = factory(directory / JOURNAL_NAME, redactor)
    except (JournalError, OSError) as exc:
        world.stop_services()
        raise ExerciseError(str(exc)) from None
    targets = [Path(t) for t in world.targets]
    if not targets:
        journal.close()
        world.stop_services()
        raise ExerciseError("the world has no project to run the playbook on")
    sandbox = Path(world.sandbox)
    runner = Runner(
        loaded.playbook,
        targets[0],
        journal,
        operator,
        dry_run=False,
        redactor=redactor,
        env=dict(world.env),
        options=dict(world.run_options),
        output=output,
        mode="exercise",
        roots=[sandbox],
        protected=[Path(world.home), Path(world.root), *targets],
    )
    runner.begin()
    warnings = runner.preflight(record=True)
    truth = _write_ground_truth(directory, variant, seed, world, redactor)
    missing = list(getattr(world, "missing_tools", []) or [])
    try:
        services = world.services_state()
    except Exception as exc:  # shown, not fatal: the run itself says what works
        services = {"error": f"{type(exc).__name__}: {exc}"}
    journal.append(
        "exercise_started",
        {
            "scenario": scenario.id,
            "title": scenario.title,
            "scenario_path": str(loaded.path),
            "scenario_sha256": loaded.sha256,
            "variant": variant.id,
            "variant_title": variant.title,
            "seed": seed,
            "world_kind": scenario.world_kind,
            "services": services,
            "sandbox": str(sandbox),
            "targets": [str(t) for t in targets],
            "missing_tools": missing,
            "notes": list(getattr(world, "notes", []) or []),
            "ground_truth_sha256": truth,
            "speed": speed,
            "scripted": scripted,
            "playbook": loaded.playbook.playbook.id,
            "steps": {st.id: st.title for st in loaded.playbook.playbook.steps},
            # the whole scenario, so the facilitator and the report need nothing but the journal
            "scenario_data": scenario.model_dump(mode="json", by_alias=True, exclude_none=True),
        },
    )
    for tool in missing:
        warnings.append(
            f"this machine has no {tool}: the world needs it; the drill goes on with what can run"
        )
    drill = Drill(scenario, loaded.playbook.playbook.steps, journal, world, on_fired=on_fired)
    exercise = Exercise(loaded, variant, seed, directory, world, journal, runner, drill, redactor)
    exercise.warnings = warnings
    if role is not None:
        join(journal, operator.name, role, scenario)
    drill.clock("start", operator.name, speed=speed, scripted=scripted)
    return exercise


def join(journal: Journal, name: str, role: str, scenario: Any) -> dict[str, Any]:
    """Journal a participant and the role they play."""
    names = {r.id: r.name for r in scenario.roles}
    return journal.append(
        "participant", {"name": name, "role": role, "role_name": names.get(role, role)}
    )


def _write_ground_truth(
    directory: Path, variant: Variant, seed: int, world: Any, redactor: Redactor
) -> str:
    """The facilitator's ground truth, beside the journal (0600); returns its sha256."""
    truth = {
        "variant": variant.id,
        "variant_title": variant.title,
        "variant_description": variant.description,
        "seed": seed,
        "world": getattr(world, "ground_truth", {}) or {},
        "missing_tools": list(getattr(world, "missing_tools", []) or []),
        "notes": list(getattr(world, "notes", []) or []),
    }
    password = world_password(world)
    if password:  # made up for this world; only in this 0600 file, never in the journal
        truth["players_password"] = password
    raw = json.dumps(redactor(truth), indent=2, sort_keys=True, default=str).encode()
    folder = directory / (JOURNAL_NAME.removesuffix(".jsonl") + ".d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / GROUND_TRUTH
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    return hashlib.sha256(raw).hexdigest()


def read_ground_truth(journal: Path) -> dict[str, Any] | None:
    """The ground truth written beside a journal, if it is there and readable."""
    from runbook.runs import run_dir
    from runbook.safeio import read_regular

    try:
        raw = read_regular(run_dir(journal) / GROUND_TRUTH, limit=4 << 20)
        data = json.loads(raw)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_time(seconds: float) -> str:
    return format_duration(seconds)
