"""AWS Systems Manager Run Command as a second transport, for EC2 instances and CI runners that
have no SSH.

`runbook fleet ssm-document` writes a Command document (schema 2.2) that downloads the bundle
(the wheelhouse and the host agent, from S3, with `aws:downloadContent`: no AWS CLI needed), runs
the same agent `runbook fleet` runs over Ansible (`scan` or `run`), and uploads the agent's archive
(journals, reports, scan result) to `<ResultsS3Uri>/<instance id>/results.tgz` with the boto3 of
runbook's own virtual environment. `--publish NAME` also uploads the bundle and registers the
document. `runbook fleet ssm-collect s3://BUCKET/PREFIX --out DIR` brings every instance's archive
into `DIR/<instance id>/`, each journal verified on arrival, as the Ansible transport does, so
`runbook fleet status DIR` and `runbook report DIR` take it the same way.

Document parameters are substituted into the shell script as text by SSM, so each one is held to
a pattern of safe characters (`allowedPattern`).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from runbook.fleet.driver import AGENT

STAGE_ROOT = "/var/lib/runbook-fleet"
SAFE = r"^[A-Za-z0-9_./,@+=-]*$"
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_./=-]*)?$"
RESULTS_NAME = "results.tgz"

SCRIPT = r"""set -u
STAGE='{stage}'
VENV='{venv}'
CONFIG=$(python3 - '{{{{ Home }}}}' '{{{{ Targets }}}}' '{{{{ Playbook }}}}' <<'PY'
import base64, json, sys
config = json.loads(base64.b64decode("{config}"))
home, targets, playbook = sys.argv[1:4]
config["home"] = home
config["targets"] = [t for t in targets.split(",") if t]
if playbook:
    config["playbook"] = playbook
    config["playbook_id"] = playbook
print(base64.b64encode(json.dumps(config).encode()).decode())
PY
)
OUT=$(python3 "$STAGE/agent.py" {command} "$CONFIG")
RC=$?
printf '%s\n' "$OUT"
PACK=$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pack"])' \
  2>/dev/null)
if [ -n "$PACK" ] && [ -x "$VENV/bin/python" ]; then
  "$VENV/bin/python" "$STAGE/agent.py" upload "$PACK" '{{{{ ResultsS3Uri }}}}' \
    "${{AWS_SSM_INSTANCE_ID:-$(hostname)}}" || RC=1
fi
exit $RC
"""


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


def https_url(uri: str) -> str:
    """`s3://bucket/key` as the https form `aws:downloadContent` takes."""
    bucket, key = _split(uri)
    return f"https://{bucket}.s3.amazonaws.com/{key}"


def document(
    command: str,
    *,
    bundle_uri: str,
    version: str,
    wheel: str,
    wheel_sha256: str,
    pip_wheel: str,
    playbook: str = "axios-2026-03",
    dry_run: bool = True,
    skips: dict[str, str] | None = None,
    dependencies: str = "wheelhouse",
    fleet_id: str = "ssm",
    stage_root: str = STAGE_ROOT,
) -> dict[str, Any]:
    """The Command document (schema 2.2) for `scan` or `run`."""
    tag = f"{version}-{wheel_sha256[:12]}"
    stage = f"{stage_root}/stage-{tag}"
    config = {
        "version": version,
        "wheel": wheel,
        "wheel_sha256": wheel_sha256,
        "pip_wheel": pip_wheel,
        "venv_root": stage_root,
        "dependencies": dependencies,
        "fleet_id": fleet_id,
        "playbook": playbook,
        "playbook_id": playbook,
        "playbook_file": False,
        "dry_run": dry_run,
        "yes": not dry_run,
        "skips": skips or {},
        "operator": "runbook fleet (SSM)",
        "min_free_mb": 300,
    }
    b64 = base64.b64encode(json.dumps(config, sort_keys=True).encode()).decode()
    script = SCRIPT.format(
        stage=stage, venv=f"{stage_root}/runbook-{tag}", config=b64, command=command
    )
    what = "scan this instance" if command == "scan" else "run a playbook headless"
    return {
        "schemaVersion": "2.2",
        "description": (
            f"runbook fleet {command} (runbook {version}): install runbook from S3 into its own "
            f"virtual environment, {what}, and upload the journals and results to S3."
        ),
        "parameters": {
            "ResultsS3Uri": {
                "type": "String",
                "description": "s3://BUCKET/PREFIX: each instance uploads "
                "PREFIX/<instance id>/results.tgz",
                "allowedPattern": S3_URI,
            },
            "Home": {
                "type": "String",
                "description": "the HOME to act as (runbook_home); empty: the agent's",
                "default": "",
                "allowedPattern": SAFE,
            },
            "Targets": {
                "type": "String",
                "description": "comma-separated directories (runbook_targets); empty: Home",
                "default": "",
                "allowedPattern": SAFE,
            },
            "Playbook": {
                "type": "String",
                "description": "the id of a bundled playbook",
                "default": playbook,
                "allowedPattern": r"^[a-z0-9][a-z0-9._-]*$",
            },
        },
        "mainSteps": [
            {
                "action": "aws:downloadContent",
                "name": "downloadBundle",
                "inputs": {
                    "sourceType": "S3",
                    "sourceInfo": json.dumps({"path": https_url(bundle_uri.rstrip("/") + "/")}),
                    "destinationPath": stage,
                },
            },
            {
                "action": "aws:runShellScript",
                "name": f"runbook{command.capitalize()}",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {"timeoutSeconds": "7200", "runCommand": script.splitlines()},
            },
        ],
    }


def upload_bundle(s3: Any, bundle_uri: str, wheelhouse: Path) -> list[str]:
    """Put the wheelhouse's files and the agent under the bundle URI; the keys written."""
    bucket, prefix = _split(bundle_uri.rstrip("/") + "/")
    keys = []
    files = sorted(p for p in wheelhouse.iterdir() if p.is_file())
    for path in [*files, AGENT]:
        key = prefix + path.name
        with path.open("rb") as handle:
            s3.put_object(Bucket=bucket, Key=key, Body=handle.read())
        keys.append(key)
    return keys


def register_document(ssm: Any, name: str, content: dict[str, Any]) -> str:
    """Create the document, or add a new version and make it the default; its version."""
    body = json.dumps(content)
    try:
        made = ssm.create_document(
            Content=body, Name=name, DocumentType="Command", DocumentFormat="JSON"
        )
        return str(made["DocumentDescription"].get("DocumentVersion", "1"))
    except ssm.exceptions.DocumentAlreadyExists:
        updated = ssm.update_document(
            Content=body, Name=name, DocumentVersion="$LATEST", DocumentFormat="JSON"
        )
        version = str(updated["DocumentDescription"]["DocumentVersion"])
        ssm.update_document_default_version(Name=name, DocumentVersion=version)
        return version


def collect(s3: Any, results_uri: str, out: Path) -> list[str]:
    """Every `<instance>/results.tgz` under the results URI into `out/<instance>/`, verified;
    the instances collected."""
    from runbook.fleet import hosts as records
    from runbook.fleet.collect import ArchiveRefused, unpack
    from runbook.fleet.layout import FleetDir, new_fleet_id, utc_now

    bucket, prefix = _split(results_uri.rstrip("/") + "/")
    fleet = FleetDir(out)
    try:
        manifest = fleet.load_manifest()
    except (OSError, ValueError):
        manifest = {"schema": "runbook.fleet/v1", "id": new_fleet_id(), "created": utc_now()}
    names: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    kinds, modes = set(), set()
    for page in pages:
        for item in page.get("Contents") or []:
            key = item["Key"]
            instance, _, name = key[len(prefix) :].partition("/")
            if name != RESULTS_NAME or not instance:
                continue
            with tempfile.TemporaryDirectory() as scratch:
                archive = Path(scratch) / RESULTS_NAME
                s3.download_file(bucket, key, str(archive))
                host_dir = fleet.host_dir(instance)
                record = records.new_record(instance, manifest["id"], "run")
                try:
                    unpacked = unpack(archive, host_dir)
                except ArchiveRefused as exc:
                    record["ansible"].update(status="failed", reason=f"refused: {exc}")
                    records.save(host_dir, record)
                    names.append(instance)
                    continue
            summary = unpacked.summary
            record["kind"] = str(summary.get("command") or "run")
            kinds.add(record["kind"])
            records.arrive(record, host_dir, unpacked)
            ok = bool(summary.get("ok", True)) and not summary.get("failed")
            reason = "" if ok else "; ".join(summary.get("failed") or []) or "the run failed"
            record["ansible"].update(status="ok" if ok else "failed", reason=reason)
            records.note(record, f"collected from {results_uri}")
            records.save(host_dir, record)
            modes.update(j.get("mode", "") for j in record["journals"] if j.get("mode"))
            names.append(instance)
    kind = kinds.pop() if len(kinds) == 1 else "run"
    manifest.update(
        kind=kind,
        mode="scan" if kind == "scan" else (modes.pop() if len(modes) == 1 else "mixed"),
        transport="ssm",
        results=results_uri,
        hosts=sorted(set(manifest.get("hosts") or []) | set(names)),
        status="finished",
        complete=True,
    )
    manifest.setdefault("playbook", {"id": "", "steps": []})
    fleet.save_manifest(manifest)
    return names


# -- command line -----------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    doc = commands.add_parser(
        "ssm-document",
        help="write an AWS Systems Manager Run Command document for hosts without SSH",
    )
    doc.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    doc.add_argument("--command", choices=("scan", "run"), default="scan")
    doc.add_argument("--playbook", default="axios-2026-03", help="id of a bundled playbook")
    doc.add_argument("--live", action="store_true", help="`run` changes the instances (--yes)")
    doc.add_argument(
        "--bundle",
        required=True,
        metavar="S3URI",
        help="s3://BUCKET/PREFIX where the wheelhouse and the agent are (or go, with --publish)",
    )
    doc.add_argument("--wheelhouse", type=Path, metavar="DIR", help="as for `fleet run`")
    doc.add_argument(
        "--dependencies",
        choices=("wheelhouse", "system"),
        default="wheelhouse",
        help="where the instances take runbook's dependencies from",
    )
    doc.add_argument(
        "--stage-root",
        default=STAGE_ROOT,
        metavar="DIR",
        help=f"where the instances keep the bundle and runbook's venv ({STAGE_ROOT})",
    )
    doc.add_argument("--publish", metavar="NAME", help="upload the bundle, register the document")
    doc.add_argument("--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    doc.set_defaults(handler=cmd_document)

    get = commands.add_parser(
        "ssm-collect", help="bring every instance's results from S3 into DIR/<instance>/"
    )
    get.add_argument("results", metavar="S3URI", help="the document's ResultsS3Uri")
    get.add_argument("--out", type=Path, required=True)
    get.add_argument("--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    get.set_defaults(handler=cmd_collect)


def _client(service: str, endpoint: str | None) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint) if endpoint else boto3.client(service)


def _err(message: str) -> None:
    from runbook.termsafe import printable

    print(f"runbook fleet: {printable(message)}", file=sys.stderr)


def cmd_document(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from runbook.bundled import resolve_playbook
    from runbook.fleet.bundle import WheelhouseError, stage

    try:
        resolve_playbook(args.playbook)
        _split(args.bundle)
        if not re.match(SAFE, args.stage_root) or not args.stage_root.startswith("/"):
            raise ValueError(f"--stage-root {args.stage_root}: give an absolute, plain path")
        with tempfile.TemporaryDirectory() as scratch:
            wheelhouse = stage(Path(scratch), args.wheelhouse)
            content = document(
                args.command,
                bundle_uri=args.bundle,
                version=wheelhouse.version,
                wheel=wheelhouse.wheel,
                wheel_sha256=wheelhouse.wheel_sha256,
                pip_wheel=wheelhouse.pip_wheel,
                playbook=args.playbook,
                dry_run=not args.live,
                dependencies=args.dependencies,
                stage_root=args.stage_root,
            )
            if args.publish:
                upload_bundle(_client("s3", args.endpoint_url), args.bundle, wheelhouse.path)
                version = register_document(
                    _client("ssm", args.endpoint_url), args.publish, content
                )
                print(f"document {args.publish} version {version}; bundle in {args.bundle}")
    except (FileNotFoundError, ValueError, WheelhouseError) as exc:
        _err(str(exc))
        return 2
    except (BotoCoreError, ClientError) as exc:
        _err(f"AWS: {exc}")
        return 1
    text = json.dumps(content, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    elif not args.publish:
        sys.stdout.write(text)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from runbook.fleet.status import exit_code, load, table

    try:
        names = collect(_client("s3", args.endpoint_url), args.results, args.out.resolve())
    except ValueError as exc:
        _err(str(exc))
        return 2
    except (BotoCoreError, ClientError) as exc:
        _err(f"AWS: {exc}")
        return 1
    print(f"{len(names)} instance(s) collected into {args.out}")
    fleet = load(args.out.resolve())
    sys.stdout.write(table(fleet))
    return exit_code(fleet)
