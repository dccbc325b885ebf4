"""`runbook exercise`: tabletop drills of a real playbook, run live in a simulated world.

    runbook exercise start SCENARIO [--seed N]      the players' app (a terminal)
    runbook exercise facilitate RUN                  the facilitator console (another terminal)
    runbook exercise run SCENARIO --auto             the scripted drill, headless (CI)
    runbook exercise report RUN -o aar.md|aar.html   the after-action report
    runbook exercise from-journal JOURNAL            a scenario replaying a real run
    runbook exercise validate FILE...                scenarios (and playbooks)
    runbook exercise schema                          JSON Schema of the scenario format
    runbook exercise join RUN --role ROLE            another player at the table
    runbook exercise observe RUN TEXT                an observation (as the facilitator)
    runbook exercise rate RUN PHASE P|S|M|U --reason a phase's rating (as the facilitator)
    runbook exercise list                            bundled scenarios

RUN is the run's journal, or the exercise directory that holds it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runbook.exitcodes import FAILED, INTERRUPTED, OK, USAGE
from runbook.termsafe import printable

# as runbook.exercise.model.PHASES (not imported here: registering the command stays light)
PHASES = ("detect", "contain", "eradicate", "rotate", "communicate")


def _err(message: object) -> None:
    print(f"runbook: {printable(message)}", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `exercise` subcommand."""
    parser = sub.add_parser(
        "exercise",
        help="tabletop drills: a playbook run live in a simulated world",
        description="Tabletop drills: the real playbook, run live in a throw-away simulated "
        "world, with injects, expectations, a facilitator console and an after-action report.",
    )
    parser.set_defaults(handler=lambda args: (parser.print_help(), USAGE)[1])
    actions = parser.add_subparsers(dest="exercise_command", metavar="ACTION")

    def drill_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("scenario", help="a scenario file, or the id of a bundled scenario")
        p.add_argument("--seed", type=int, help="draws the variant (default: random, journaled)")
        p.add_argument("--variant", help="play this variant instead of drawing one")
        p.add_argument(
            "--dir", type=Path, help="the exercise directory (new or empty; default: a temp dir)"
        )
        p.add_argument("--operator", help="your name in the journal (default: $USER)")

    start = actions.add_parser("start", help="build the world and open the players' app")
    drill_options(start)
    start.add_argument("--role", help="the role you play (default: asked when the app opens)")
    start.add_argument(
        "--speed", type=float, default=1.0, help="exercise minutes per wall minute (default 1)"
    )
    start.set_defaults(handler=cmd_start)

    run = actions.add_parser("run", help="play the scenario headless")
    drill_options(run)
    run.add_argument(
        "--auto",
        action="store_true",
        required=True,
        help="the scenario's scripted team plays; exit 0 only if every `must` expectation is met",
    )
    run.set_defaults(handler=cmd_run)

    facilitate = actions.add_parser("facilitate", help="the facilitator console on a run")
    facilitate.add_argument("run", type=Path, help="the run's journal or exercise directory")
    facilitate.add_argument("--operator", help="your name in the journal (default: $USER)")
    facilitate.set_defaults(handler=cmd_facilitate)

    report = actions.add_parser("report", help="the after-action report (HSEEP AAR/IP)")
    report.add_argument("run", type=Path, help="the run's journal or exercise directory")
    report.add_argument("-o", "--output", type=Path, help="aar.md or aar.html (default: stdout)")
    report.add_argument("--format", choices=("md", "html"), help="default: from -o, else md")
    report.set_defaults(handler=cmd_report)

    replay = actions.add_parser(
        "from-journal", help="write a scenario that replays a real run in a simulated world"
    )
    replay.add_argument("journal", type=Path)
    replay.add_argument("-o", "--output", type=Path, help="scenario file (default: stdout)")
    replay.add_argument("--world", default="npm-host", help="world kind (default npm-host)")
    replay.set_defaults(handler=cmd_from_journal)

    validate = actions.add_parser("validate", help="check scenario (and playbook) files")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(handler=cmd_validate)

    schema = actions.add_parser("schema", help="print the JSON Schema of the scenario format")
    schema.set_defaults(handler=cmd_schema)

    listing = actions.add_parser("list", help="list the bundled scenarios")
    listing.set_defaults(handler=cmd_list)

    join = actions.add_parser("join", help="record another player at the table, and their role")
    join.add_argument("run", type=Path)
    join.add_argument("--role", required=True)
    join.add_argument("--operator", help="the player's name (default: $USER)")
    join.set_defaults(handler=cmd_join)
    observe = actions.add_parser("observe", help="add an observation to a run (facilitator)")
    observe.add_argument("run", type=Path)
    observe.add_argument("text")
    observe.add_argument("--operator", help="your name in the journal (default: $USER)")
    observe.set_defaults(handler=cmd_observe)
    rate = actions.add_parser("rate", help="rate a phase P, S, M or U (facilitator)")
    rate.add_argument("run", type=Path)
    rate.add_argument("phase", choices=PHASES)
    rate.add_argument("rating", choices=("P", "S", "M", "U"))
    rate.add_argument("--reason", required=True, help="why (journaled)")
    rate.add_argument("--operator", help="your name in the journal (default: $USER)")
    rate.set_defaults(handler=cmd_rate)


# -- helpers --------------------------------------------------------------------------------------
def _load(ref: str):  # -> LoadedScenario | int
    from runbook.exercise.scenario import ScenarioInvalid, load_scenario, resolve_scenario

    try:
        path = resolve_scenario(ref)
        return load_scenario(path, display=ref if Path(ref).exists() else str(path))
    except FileNotFoundError as exc:
        _err(exc)
        return USAGE
    except ScenarioInvalid as exc:
        for problem in exc.problems:
            print(printable(problem), file=sys.stderr)
        return USAGE


def _operator_name(args: argparse.Namespace) -> str:
    from runbook.runner import operator_name

    return args.operator or operator_name(os.environ)


def _terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _prepare(args: argparse.Namespace):  # -> (loaded, variant, seed, directory, world) | int
    from runbook.exercise.session import (
        ExerciseError,
        build_world,
        draw_variant,
        exercise_dir,
        new_seed,
    )

    loaded = _load(args.scenario)
    if isinstance(loaded, int):
        return loaded
    seed = args.seed if args.seed is not None else new_seed()
    try:
        variant = draw_variant(loaded, seed, args.variant)
        directory = exercise_dir(args.dir)
        world = build_world(loaded, variant, seed, directory)
    except ExerciseError as exc:
        _err(exc)
        return USAGE
    for tool in getattr(world, "missing_tools", []) or []:
        _err(
            f"warning: this machine has no {tool}, which the world needs; the drill goes on "
            "with what can run"
        )
    return loaded, variant, seed, directory, world


def _enter_world(world) -> None:
    """This process plays the drill: from now on it sees the world's environment only."""
    from runbook.exercise.session import process_env

    env = process_env(dict(world.env))
    os.environ.clear()
    os.environ.update(env)


# -- commands -------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from runbook.exercise.auto import AutoDrill, ScriptedOperator
    from runbook.exercise.session import ExerciseError, open_exercise, world_password

    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    loaded, variant, seed, directory, world = prepared
    script = loaded.scenario.script(variant.id)
    if args.operator:
        script = script.model_copy(update={"operator": args.operator})
    roles = loaded.scenario.roles
    role = script.role or (roles[0].id if roles else "player")
    _enter_world(world)
    print(
        printable(
            f"exercise {loaded.scenario.id}: variant {variant.id} (seed {seed}) "
            f"[EXERCISE: live, inside {directory}]"
        ),
        flush=True,
    )
    try:
        password = world_password(world)
        exercise = open_exercise(
            loaded,
            ScriptedOperator(script, lambda step, prompt: password),
            seed=seed,
            variant=variant,
            directory=directory,
            world=world,
            scripted=True,
            role=role,
        )
    except ExerciseError as exc:
        _err(exc)
        return FAILED
    for warning in exercise.warnings:
        _err(f"warning: {warning}")
    try:
        result = AutoDrill(exercise, script).play()
    except KeyboardInterrupt:
        head = exercise.close("interrupted", "interrupted (Ctrl-C)")
        print(f"journal: {printable(exercise.journal_path)}")
        print(f"head: {head}", flush=True)
        return INTERRUPTED
    print(f"score: {result.score} of {result.possible}")
    musts = [e for e in loaded.scenario.expectations if e.must]
    missed = [e.id for e in musts if e.id not in result.met]
    if missed:
        print(printable(f"must expectations not met: {', '.join(missed)}"))
    else:
        print(f"every must expectation met ({len(musts)})")
    print(f"journal: {printable(result.journal)}")
    print(f"head: {result.head}", flush=True)
    return OK if result.must_met else FAILED


def cmd_start(args: argparse.Namespace) -> int:
    if not _terminal():
        _err(
            "exercise start opens the players' app and needs a terminal; for a headless drill "
            "use: runbook exercise run SCENARIO --auto"
        )
        return USAGE
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    loaded, variant, seed, directory, world = prepared
    operator = _operator_name(args)
    _enter_world(world)
    from runbook.tui.exercise.launch import run_players

    return run_players(
        loaded,
        variant,
        seed,
        directory,
        world,
        operator=operator,
        role=args.role,
        speed=args.speed,
    )


def cmd_facilitate(args: argparse.Namespace) -> int:
    from runbook.exercise.session import journal_in

    journal = journal_in(args.run)
    if not journal.is_file():
        _err(f"no exercise journal at {args.run}")
        return USAGE
    if not _terminal():
        _err("the facilitator console needs a terminal; see `runbook exercise report` instead")
        return USAGE
    from runbook.tui.facilitator.launch import run_facilitator

    return run_facilitator(journal, _operator_name(args))


def cmd_report(args: argparse.Namespace) -> int:
    from runbook.exercise.aar import AarError, render_aar
    from runbook.exercise.session import journal_in

    fmt = args.format or (
        "html" if args.output and args.output.suffix.lower() in (".html", ".htm") else "md"
    )
    try:
        text = render_aar(journal_in(args.run), fmt)
    except AarError as exc:
        _err(exc)
        return USAGE
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(printable(f"after-action report: {args.output}"))
    else:
        sys.stdout.write(text)
    return OK


def cmd_from_journal(args: argparse.Namespace) -> int:
    from runbook.exercise.replay import ReplayError, scenario_from_journal

    try:
        text = scenario_from_journal(args.journal, args.world)
    except ReplayError as exc:
        _err(exc)
        return USAGE
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(
            printable(
                f"scenario: {args.output} (check it: runbook exercise validate {args.output})"
            )
        )
    else:
        sys.stdout.write(text)
    return OK


def cmd_validate(args: argparse.Namespace) -> int:
    from runbook.exercise.validate import validate_files

    return validate_files(args.files, unreadable="scenario")


def cmd_schema(_: argparse.Namespace) -> int:
    from runbook.exercise.schema import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return OK


def cmd_list(_: argparse.Namespace) -> int:
    from runbook.exercise.scenario import ScenarioInvalid, bundled_scenarios, load_scenario

    for sid, path in bundled_scenarios().items():
        try:
            title = load_scenario(path, check_world=False).scenario.title
        except ScenarioInvalid:
            title = "(invalid)"
        print(f"{printable(sid)}\t{printable(title)}")
    return OK


def _facilitate(args: argparse.Namespace, act) -> int:  # act: Callable[[Facilitation], dict]
    from runbook.exercise.facilitation import Facilitation, FacilitationError
    from runbook.exercise.session import journal_in

    journal = journal_in(args.run)
    if not journal.is_file():
        _err(f"no exercise journal at {args.run}")
        return USAGE
    try:
        facilitation = Facilitation(journal, _operator_name(args))
    except FacilitationError as exc:
        _err(exc)
        return USAGE
    try:
        entry = act(facilitation)
    except FacilitationError as exc:
        _err(exc)
        return FAILED
    finally:
        facilitation.close()
    print(f"{entry['event']} added (seq {entry['seq']}); head: {entry['hash']}")
    return OK


def cmd_join(args: argparse.Namespace) -> int:
    return _facilitate(args, lambda f: f.join(_operator_name(args), args.role))


def cmd_observe(args: argparse.Namespace) -> int:
    return _facilitate(args, lambda f: f.observe(args.text))


def cmd_rate(args: argparse.Namespace) -> int:
    return _facilitate(args, lambda f: f.rate(args.phase, args.rating, args.reason))
