"""`runbook fleet`: scan or remediate many machines through Ansible, and look at the result.

    runbook fleet scan -i INVENTORY [--out DIR] [--limit PATTERN] [--forks N]
    runbook fleet run PLAYBOOK -i INVENTORY [--out DIR] [--dry-run] [--yes] [--limit PATTERN]
                      [--serial N|N%] [--max-fail-percent P] [--allow STEP] [--forks N]
    runbook fleet status DIR [--format table|json]
    runbook fleet ssm-document [-o FILE] [--command scan|run] ...
    runbook fleet ssm-collect s3://BUCKET/PREFIX --out DIR
    runbook fleet wheelhouse DIR

Exit codes of scan, run and status: 0 every host clean or remediated; 1 a host is compromised,
exposed, failed, unreachable or not done; 2 usage error; 3 nothing worse than hosts that could
not be checked everything; 130 interrupted (rerun the same command to continue).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import socket
import sys
from pathlib import Path
from typing import Any

from runbook import __version__
from runbook.exitcodes import INTERRUPTED, USAGE
from runbook.termsafe import printable


def _err(message: str) -> None:
    print(f"runbook fleet: {printable(message)}", file=sys.stderr)


def _percent(value: str) -> float:
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {value!r}") from None
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError("a percentage is between 0 and 100")
    return number


def _serial(value: str) -> str:
    text = value.strip()
    number = text[:-1] if text.endswith("%") else text
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"expected N or N%, got {value!r}")
    return text


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return int(value)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--inventory", type=Path, required=True, help="Ansible inventory")
    parser.add_argument("--out", type=Path, help="output folder (DIR/<host>/ per host)")
    parser.add_argument("--limit", metavar="PATTERN", help="Ansible host pattern")
    parser.add_argument("--forks", type=_positive, default=10, help="hosts at once (10)")
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="runbook's wheel and its dependencies' wheels to install on the hosts (default: "
        "build the runbook wheel from this source tree)",
    )
    parser.add_argument(
        "--new", action="store_true", help="start a new fleet run even if one is unfinished"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fleet` subcommand (called through the `runbook.commands` entry point group)."""
    fleet = sub.add_parser(
        "fleet",
        help="run a playbook on many machines through Ansible",
        description=__doc__.split("\n\n", 1)[0],
    )
    commands = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    scan = commands.add_parser(
        "scan",
        help="`runbook scan --host` on every host; results in DIR/<host>/scan.json",
    )
    _common(scan)
    scan.add_argument(
        "--playbook",
        default="axios-2026-03",
        metavar="ID|FILE",
        help="whose incident to look for (default: axios-2026-03)",
    )
    scan.set_defaults(handler=cmd_scan)

    run = commands.add_parser(
        "run", help="run a playbook headless on every host; journals in DIR/<host>/journals/"
    )
    run.add_argument("playbook", help="a playbook file, or the id of a bundled playbook")
    _common(run)
    run.add_argument("--dry-run", action="store_true", help="change nothing on any host")
    run.add_argument(
        "--yes", action="store_true", help="confirm a live run (every host's steps run with --yes)"
    )
    run.add_argument(
        "--serial", type=_serial, metavar="N|N%", help="work on the hosts in batches of this size"
    )
    run.add_argument(
        "--max-fail-percent",
        type=_percent,
        metavar="P",
        help="stop when more than P%% of a batch's hosts failed",
    )
    run.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="STEP_ID",
        help="let a step that needs a person (confirm: always, such as credential rotations) "
        "run on the hosts; its variables go in runbook_environment (repeatable)",
    )
    run.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STEP_ID=REASON",
        help="skip a step on every host, giving the reason (repeatable)",
    )
    run.add_argument("--operator", help="name recorded as the operator (default: $USER)")
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser(
        "status", help="the fleet view (a table without a terminal or with --format)"
    )
    status.add_argument("dir", type=Path, metavar="DIR")
    status.add_argument("--format", choices=("table", "json"), help="print instead of the view")
    status.add_argument("--state", help="only hosts in this state (table and json)")
    status.add_argument(
        "--sort",
        choices=("state", "host", "findings", "steps", "outstanding", "duration"),
        default="state",
    )
    status.set_defaults(handler=cmd_status)

    from runbook.fleet.ssm import register as register_ssm

    register_ssm(commands)

    wheelhouse = commands.add_parser(
        "wheelhouse",
        help="download runbook's and its dependencies' wheels for hosts without a registry",
    )
    wheelhouse.add_argument("dir", type=Path, metavar="DIR")
    wheelhouse.add_argument("--platform", help="pip's --platform, e.g. manylinux2014_x86_64")
    wheelhouse.add_argument("--python-version", help="pip's --python-version, e.g. 3.11")
    wheelhouse.set_defaults(handler=cmd_wheelhouse)


# -- scan and run -------------------------------------------------------------------------------
def _fleet_dir(args: argparse.Namespace, kind: str, mode: str, root_name: str) -> tuple[Any, bool]:
    """(FleetDir, continuing): `--out`, else the newest unfinished run under fleet/<name>/."""
    from runbook.fleet.layout import FleetDir, default_root, find_unfinished, new_fleet_id

    inventory = str(args.inventory.resolve())
    if args.out is not None:
        fleet = FleetDir(args.out.resolve())
        if fleet.manifest.is_file():
            manifest = fleet.load_manifest()
            if (manifest.get("kind"), manifest.get("mode")) != (kind, mode):
                raise ValueError(
                    f"{args.out} holds a fleet {manifest.get('kind')} ({manifest.get('mode')}); "
                    "choose another --out"
                )
            if args.new:
                raise ValueError(f"{args.out} holds a fleet run: give another --out for a new one")
            return fleet, True
        return fleet, False
    root = default_root(root_name).resolve()
    if not args.new:
        found = find_unfinished(root, kind, mode, Path(inventory))
        if found is not None:
            return found, True
    return FleetDir(root / new_fleet_id()), False


def _echo(row: dict[str, Any]) -> None:
    from runbook.fleet.status import cells

    host, state, findings, steps, outstanding, duration, _, _ = cells(row)
    reason = f"  {printable(row['reason'])}" if row.get("reason") else ""
    line = f"  {host:<24} {state:<12} {findings:<28} steps {steps:<6} open {outstanding:<3}"
    print(f"{line} {duration}{reason}", flush=True)


def _drive(
    args: argparse.Namespace,
    kind: str,
    mode: str,
    common: dict[str, Any],
    playbook_meta: dict[str, Any],
    root_name: str,
    playbook_bytes: bytes | None = None,
) -> int:
    from runbook.fleet import driver
    from runbook.fleet.bundle import WheelhouseError, stage
    from runbook.fleet.layout import new_fleet_id, utc_now
    from runbook.fleet.status import exit_code as fleet_exit
    from runbook.fleet.status import load, table

    try:
        fleet, continuing = _fleet_dir(args, kind, mode, root_name)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return USAGE
    try:
        selected = driver.select_hosts(args.inventory.resolve(), args.limit)
    except driver.FleetError as exc:
        _err(str(exc))
        return USAGE
    if not selected:
        _err(f"no host of {args.inventory} matches" + (f" {args.limit}" if args.limit else ""))
        return USAGE
    fleet.path.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}
    if continuing and fleet.manifest.is_file():
        manifest = fleet.load_manifest()
    fleet_id = manifest.get("id") or new_fleet_id()
    steps_total = len(playbook_meta.get("steps") or [])
    finished = set()
    if continuing:
        for row in driver.load_rows(fleet, selected, steps_total):
            if row["state"] not in ("failed", "unreachable", "pending", "running"):
                finished.add(row["host"])
    hosts = [h for h in selected if h not in finished]
    known = list(manifest.get("hosts") or [])
    manifest.update(
        schema="runbook.fleet/v1",
        id=fleet_id,
        kind=kind,
        mode=mode,
        inventory=str(args.inventory.resolve()),
        limit=args.limit,
        playbook=playbook_meta,
        hosts=known + [h for h in selected if h not in known],
        tool_version=__version__,
        controller=socket.gethostname(),
        pid=os.getpid(),
        status="running",
        complete=False,
    )
    manifest.setdefault("created", utc_now())
    runs = manifest.setdefault("runs", [])
    print(
        f"fleet {kind} {printable(playbook_meta.get('id', ''))} [{mode}]: {len(selected)} host(s)"
        + (f", {len(finished)} finished before (skipped)" if finished else "")
        + f"\nfolder: {printable(fleet.path)}",
        flush=True,
    )
    if not hosts:
        print("every selected host finished: nothing to do")
        manifest.update(status="finished", complete=True)
        fleet.save_manifest(manifest)
        return fleet_exit(load(fleet.path))
    try:
        wheelhouse = stage(fleet.private, args.wheelhouse)
    except (WheelhouseError, OSError) as exc:
        _err(str(exc))
        return USAGE
    if not wheelhouse.complete:
        print(
            "note: the wheelhouse holds only runbook and pip: hosts install the dependencies "
            "from it unless runbook_dependencies is `system` (see `runbook fleet wheelhouse`)",
            flush=True,
        )
    playbook_file = None
    if playbook_bytes is not None:
        digest = hashlib.sha256(playbook_bytes).hexdigest()
        common = dict(common, playbook_sha256=digest)
        if len(playbook_bytes) <= EMBED_LIMIT:
            common["playbook_b64"] = base64.b64encode(playbook_bytes).decode()
        else:
            playbook_file = fleet.private / f"playbook-{digest}.yaml"
            playbook_file.write_bytes(playbook_bytes)
    common = dict(
        common,
        version=wheelhouse.version,
        wheel=wheelhouse.wheel,
        wheel_sha256=wheelhouse.wheel_sha256,
        pip_wheel=wheelhouse.pip_wheel,
        fleet_id=fleet_id,
    )
    runs.append({"started": utc_now(), "hosts": len(hosts), "pid": os.getpid()})
    fleet.save_manifest(manifest)
    plan = driver.Plan(
        command=kind,
        fleet=fleet,
        fleet_id=fleet_id,
        inventory=args.inventory.resolve(),
        hosts=hosts,
        wheelhouse=wheelhouse,
        forks=args.forks,
        serial=getattr(args, "serial", None),
        max_fail_percent=getattr(args, "max_fail_percent", None),
        steps_total=steps_total,
        common=common,
        playbook_file=playbook_file,
    )
    outcome = driver.run(plan, echo=_echo)
    runs[-1].update(ended=utc_now(), status=outcome.status, rc=outcome.rc)
    if outcome.said:
        _err(f"Ansible reached no host (exit {outcome.rc}):\n{outcome.said}")
    view = load(fleet.path)
    done = all(r["state"] not in ("failed", "unreachable", "pending", "running") for r in view.rows)
    manifest.update(status="interrupted" if outcome.interrupted else "finished", complete=done)
    fleet.save_manifest(manifest)
    print()
    sys.stdout.write(table(load(fleet.path)))
    print(f"\nfolder: {printable(fleet.path)}")
    print(f"merged report: runbook report {printable(fleet.path)}")
    if outcome.interrupted:
        print("interrupted: run the same command again to continue")
        return INTERRUPTED
    if not done:
        print("not every host finished: run the same command again to retry those")
    return fleet_exit(view)


#: A playbook file up to this size travels inside the agent's configuration (on the command line
#: of the agent on the host: well under the 128 KiB a single argument may have); a bigger one is
#: copied by Ansible, once per host (staged by its digest).
EMBED_LIMIT = 48 * 1024


def _playbook_file(ref: str, path: Path) -> bytes | None:
    """The bytes of the playbook when it is a file (None for a bundled playbook's id)."""
    from runbook.safeio import PLAYBOOK_LIMIT, read_regular

    return read_regular(path, limit=PLAYBOOK_LIMIT) if Path(ref).exists() else None


def cmd_scan(args: argparse.Namespace) -> int:
    from runbook.playbook import load_for_command

    loaded = load_for_command(args.playbook, prog="runbook fleet")
    if loaded is None:
        return USAGE
    path = loaded.path
    common = {"playbook": args.playbook, "playbook_id": loaded.playbook.id}
    meta = {"id": loaded.playbook.id, "title": loaded.playbook.title, "steps": []}
    return _drive(args, "scan", "scan", common, meta, "scan", _playbook_file(args.playbook, path))


def cmd_run(args: argparse.Namespace) -> int:
    from runbook.playbook import load_for_command
    from runbook.runargs import parse_skips
    from runbook.runner import operator_name

    loaded = load_for_command(args.playbook, prog="runbook fleet")
    if loaded is None:
        return USAGE
    path = loaded.path
    try:
        skips = parse_skips(args.skip)
    except ValueError as exc:
        _err(str(exc))
        return USAGE
    playbook = loaded.playbook
    ids = [s.id for s in playbook.steps]
    for step_id in [*args.allow, *skips]:
        if step_id not in ids:
            _err(f"no step '{step_id}' in {playbook.id}; steps: {', '.join(ids)}")
            return USAGE
    if not args.dry_run and not args.yes:
        _err(
            "a live fleet run changes every host it reaches: give --yes to confirm it "
            "(or try --dry-run first)"
        )
        return USAGE
    from runbook.fleet.state import PERSON_SKIP

    for step in playbook.steps:
        if step.confirm == "always" and step.id not in args.allow and step.id not in skips:
            skips[step.id] = (
                f"{PERSON_SKIP}: confirm: always is off in a fleet run (runbook fleet run "
                f"--allow {step.id}, or run it on the host)"
            )
    operator = args.operator or operator_name(dict(os.environ))
    common = {
        "playbook": args.playbook,
        "playbook_id": playbook.id,
        "dry_run": args.dry_run,
        "yes": not args.dry_run,
        "skips": skips,
        "operator": f"{operator} (runbook fleet)",
    }
    meta = {
        "id": playbook.id,
        "title": playbook.title,
        "version": playbook.version,
        "sha256": loaded.sha256,
        "steps": ids,
        "skips": skips,
    }
    mode = "dry-run" if args.dry_run else "live"
    return _drive(args, "run", mode, common, meta, playbook.id, _playbook_file(args.playbook, path))


# -- status ---------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from runbook.fleet.status import as_json, exit_code, load, sort_key, table

    try:
        fleet = load(args.dir)
    except (OSError, ValueError) as exc:
        _err(f"{args.dir}: {getattr(exc, 'strerror', None) or exc}")
        return USAGE
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and args.format is None
    if interactive:
        from runbook.tui.fleet.app import run_fleet_view

        return run_fleet_view(args.dir, state=args.state, sort=args.sort)
    code = exit_code(fleet)  # of the whole fleet, whatever is shown
    rows = sorted(fleet.rows, key=sort_key(args.sort))
    if args.state:
        rows = [r for r in rows if r["state"] == args.state]
    if args.format == "json":
        fleet.rows = rows
        print(as_json(fleet))
    else:
        sys.stdout.write(table(fleet, rows))
    return code


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    from runbook.fleet.bundle import WheelhouseError, download

    try:
        names = download(args.dir, args.platform, args.python_version)
    except WheelhouseError as exc:
        _err(str(exc))
        return 1
    print(f"{len(names)} wheel(s) in {printable(args.dir)}")
    return 0
