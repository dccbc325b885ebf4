"""The host side of `runbook fleet`: copied to each host by Ansible's `script` action and run there.

It uses the standard library only and any Python 3.6 or newer (whatever `python3` the host has),
so that a host without Python 3.11 can still say so. Every command prints one JSON object on
stdout (`ok`, `stage`, `reason` and what the stage found) and exits 0 when `ok`, else 1:

    python3 agent.py probe B64JSON     Python >= 3.11, free space, targets; is it installed yet?
    python3 agent.py scan  B64JSON     install if needed, `runbook scan --host --format json`, pack
    python3 agent.py run   B64JSON     install if needed, `runbook run ... --json` per target, pack
    VENV/bin/python agent.py upload ARCHIVE s3://BUCKET/PREFIX NAME    (the SSM transport)

B64JSON is the host's configuration (see `runbook.fleet.hostvars`) as base64 of JSON, so no shell
quoting is involved. Secrets never travel on the command line: `runbook_environment` arrives as a
file written by a `no_log` task, read and removed here.

The install: a virtual environment per runbook version and wheel digest under `venv_root`,
reused by every later run (a lock serialises hosts or runs sharing it), created without pip; the
pip wheel shipped in the wheelhouse installs the runbook wheel, from the wheelhouse only
(`--no-index`). With `dependencies: system` the dependencies come from the site-packages of the
chosen Python instead (a golden image, or the tests), and only runbook itself is installed.
"""

import base64
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

MIN_PYTHON = (3, 11)
CANDIDATES = ("python3.13", "python3.12", "python3.11", "python3")
MARKER = ".runbook-fleet-installed"
PROBE = (
    "import json, site, sys\n"
    "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
    " 'site': site.getsitepackages(), 'venv': sys.prefix != sys.base_prefix}))\n"
)
# where runbook looks for things when HOME moves: these would point at the connecting user's
UNSET = (
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "npm_config_cache",
    "NPM_CONFIG_CACHE",
    "npm_config_userconfig",
    "NPM_CONFIG_USERCONFIG",
    "npm_config_prefix",
    "NPM_CONFIG_PREFIX",
    "YARN_CACHE_FOLDER",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
)
TAIL = 600


class Refused(Exception):
    """This host cannot go on: `stage` and a reason a person can act on."""

    def __init__(self, stage, reason):
        Exception.__init__(self, reason)
        self.stage = stage
        self.reason = reason


# -- small helpers -------------------------------------------------------------------------------
def _run(argv, env=None, cwd=None, timeout=None):
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        universal_newlines=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return 124, out, err + "\n(timed out)"
    return proc.returncode, out, err


def _tail(text, limit=TAIL):
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _which(name):
    found = shutil.which(name)
    return os.path.realpath(found) if found else None


def _existing(path):
    """`path`, or its nearest existing ancestor (for free-space checks before it exists)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _key(target):
    """A file-name-safe key for a target directory: its base name and a short digest."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(target.rstrip("/")) or "root")
    return "{}-{}".format(
        base[:40],
        hashlib.sha256(target.encode("utf-8", "surrogateescape")).hexdigest()[:8],
    )


# -- configuration -------------------------------------------------------------------------------
class Host:
    """The configuration of this host, with the defaults of the documented host variables."""

    def __init__(self, config):
        self.config = config
        self.home = os.path.abspath(os.path.expanduser(config.get("home") or "~"))
        targets = config.get("targets") or [self.home]
        if isinstance(targets, str):
            targets = [targets]
        self.targets = [os.path.abspath(os.path.expanduser(str(t))) for t in targets]
        self.python = config.get("python") or ""
        root = config.get("venv_root") or os.path.join(self.home, ".local/share/runbook/fleet")
        self.venv_root = os.path.abspath(os.path.expanduser(root))
        self.dependencies = config.get("dependencies") or "wheelhouse"
        self.min_free_mb = float(config.get("min_free_mb") or 0)
        self.version = config["version"]
        self.wheel = config["wheel"]
        self.wheel_sha256 = config["wheel_sha256"]
        self.pip_wheel = config.get("pip_wheel") or ""
        self.fleet_id = config.get("fleet_id") or "fleet"
        tag = f"{self.version}-{self.wheel_sha256[:12]}"
        self.venv = os.path.join(self.venv_root, "runbook-" + tag)
        self.stage = os.path.join(self.venv_root, "stage-" + tag)
        self.out = os.path.join(self.home, ".local/state/runbook-fleet", self.fleet_id)
        self.private = os.path.join(self.venv_root, "private")  # 0700: the environment file
        # per inventory host: hosts sharing a venv root never read each other's
        self.environment_file = f"environment-{config.get('host_id') or 'host'}.json"

    @property
    def runbook(self):
        return os.path.join(self.venv, "bin", "runbook")

    def installed(self):
        return os.path.isfile(os.path.join(self.venv, MARKER)) and os.access(self.runbook, os.X_OK)

    def staged(self):
        """Whether the wheelhouse is here already (another host sharing the root, an earlier
        install that failed, or the SSM download)."""
        wheel = os.path.join(self.stage, self.wheel)
        return os.path.isfile(wheel) and _sha256(wheel) == self.wheel_sha256

    def playbook_path(self, digest):
        return os.path.join(self.venv_root, "playbooks", digest + ".yaml")

    def playbook_staged(self, digest):
        path = self.playbook_path(digest)
        return os.path.isfile(path) and _sha256(path) == digest

    def unstage(self):
        """Unpack `<stage>.tar`, the wheelhouse as Ansible copied it (one file: one transfer),
        into the stage folder."""
        archive = self.stage + ".tar"
        if not os.path.isfile(archive):
            return
        os.makedirs(self.stage, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar:
                name = os.path.basename(member.name)
                if not member.isreg() or not name or name.startswith("."):
                    continue
                source = tar.extractfile(member)
                with open(os.path.join(self.stage, name), "wb") as handle:
                    shutil.copyfileobj(source, handle)
        os.unlink(archive)


def _python_facts(python):
    code, out, err = _run([python, "-c", PROBE], timeout=60)
    if code != 0:
        return None, _tail(err or out) or f"exit {code}"
    try:
        facts = json.loads(out.strip().splitlines()[-1])
        tuple(int(p) for p in facts["version"].split(".")[:3])
    except (ValueError, KeyError, IndexError):
        # an interpreter that does not answer like CPython does: report what it said
        said = _tail(out or err, 80) or "nothing"
        match = re.search(r"(\d+\.\d+(\.\d+)?)", out or "")
        if match:
            return {"version": match.group(1), "site": [], "venv": False}, ""
        return None, f"did not answer the version probe (said: {said})"
    return facts, ""


def _version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def find_python(host):
    """(path, facts) of a Python >= 3.11; `Refused` naming what was found otherwise."""
    candidates = [host.python] if host.python else [c for c in CANDIDATES if _which(c)]
    seen, said = set(), []
    for name in candidates:
        path = _which(name) if os.sep not in name else os.path.abspath(name)
        if not path or not os.path.exists(path):
            said.append(f"{name}: not found")
            continue
        if path in seen:
            continue
        seen.add(path)
        facts, problem = _python_facts(path)
        if facts is None:
            said.append(f"{name}: {problem}")
            continue
        if _version_tuple(facts["version"]) >= MIN_PYTHON:
            return path, facts
        said.append("{} is Python {}".format(name, facts["version"]))
    where = "; ".join(said) if said else "no python3 on PATH"
    raise Refused(
        "probe",
        f"no Python 3.11 or newer ({where}): install one, or point runbook_python at it",
    )


def check_space(host):
    if host.min_free_mb <= 0:
        return None
    for place in (host.venv_root, host.home):
        usage = shutil.disk_usage(_existing(place))
        free = usage.free / (1024 * 1024)
        if free < host.min_free_mb:
            raise Refused(
                "probe",
                f"not enough free space: {free:.0f} MB free on {_existing(place)}, "
                f"runbook_min_free_mb is {host.min_free_mb:.0f}",
            )
    return shutil.disk_usage(_existing(host.venv_root)).free // (1024 * 1024)


def check_places(host):
    if not os.path.isdir(host.home):
        raise Refused("probe", f"runbook_home {host.home} is not a directory")
    for target in host.targets:
        if not os.path.isdir(target):
            raise Refused("probe", f"target {target} is not a directory")


def probe(host):
    check_places(host)
    digest = host.config.get("playbook_sha256")
    os.makedirs(os.path.dirname(host.playbook_path("x")), exist_ok=True)
    os.makedirs(host.private, mode=0o700, exist_ok=True)
    os.chmod(host.private, 0o700)
    python, facts = find_python(host)
    free = check_space(host)
    return {
        "python": python,
        "python_version": facts["version"],
        "python_site": facts.get("site") or [],
        "free_mb": free,
        "installed": host.installed(),
        "staged": host.staged(),
        "playbook_staged": bool(digest) and host.playbook_staged(digest),
        "playbooks_dir": os.path.dirname(host.playbook_path("x")),
        "environment_file": os.path.join(host.private, host.environment_file),
        "venv": host.venv,
        "stage_dir": host.stage,
    }


# -- install ------------------------------------------------------------------------------------
def _drop_copy(host):
    """The wheelhouse copied for an install another host sharing the root already made."""
    with contextlib.suppress(OSError):
        os.unlink(host.stage + ".tar")


def install(host, python, site):
    """Create the version's virtual environment once; later runs reuse it."""
    if host.installed():
        _drop_copy(host)
        return False
    os.makedirs(host.venv_root, exist_ok=True)
    with open(os.path.join(host.venv_root, ".install.lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if host.installed():  # another host or run sharing this root finished it meanwhile
            _drop_copy(host)
            return False
        host.unstage()
        wheel = os.path.join(host.stage, host.wheel)
        if not os.path.isfile(wheel):
            raise Refused("install", f"the runbook wheel was not staged at {wheel}")
        if _sha256(wheel) != host.wheel_sha256:
            raise Refused("install", f"the staged wheel {wheel} does not match its digest")
        if os.path.exists(host.venv):
            shutil.rmtree(host.venv)  # a half-made one from an interrupted install
        code, out, err = _run([python, "-m", "venv", "--without-pip", host.venv], timeout=300)
        if code != 0:
            raise Refused("install", f"python -m venv failed: {_tail(err or out)}")
        venv_python = os.path.join(host.venv, "bin", "python")
        argv = [venv_python]
        if host.pip_wheel:
            argv.append(os.path.join(host.stage, host.pip_wheel, "pip"))
        else:
            argv += ["-m", "pip"]
        argv += [
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            host.stage,
            "--disable-pip-version-check",
            "--no-warn-script-location",
        ]
        if host.dependencies == "system":
            _link_site(venv_python, site)
            argv.append("--no-deps")
        argv.append(wheel)
        env = dict(os.environ, PIP_NO_INPUT="1", PIP_CONFIG_FILE=os.devnull)
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
        code, out, err = _run(argv, env=env, timeout=1800)
        if code != 0:
            said = _tail(err or out)
            hint = ""
            if "No matching distribution" in said or "Could not find a version" in said:
                hint = (
                    " (the wheelhouse lacks a dependency for this host's platform: build one "
                    "for it, or set runbook_dependencies: system on a Python that has them)"
                )
            raise Refused("install", f"installing runbook failed: {said}{hint}")
        code, out, err = _run([host.runbook, "--version"], env=_clean_env(host), timeout=120)
        if code != 0 or host.version not in out:
            raise Refused("install", f"the installed runbook does not start: {_tail(err or out)}")
        with open(os.path.join(host.venv, MARKER), "w") as handle:
            json.dump({"version": host.version, "wheel_sha256": host.wheel_sha256}, handle)
        return True


def _link_site(venv_python, site):
    """`dependencies: system`: the chosen Python's site-packages, after the venv's own."""
    code, out, err = _run(
        [venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    )
    if code != 0:
        raise Refused("install", f"the new virtual environment does not start: {_tail(err)}")
    purelib = out.strip()
    with open(os.path.join(purelib, "runbook-fleet-system-site.pth"), "w") as handle:
        for place in site:
            handle.write(place + "\n")


# -- running runbook -----------------------------------------------------------------------------
def _clean_env(host):
    env = dict(os.environ)
    for name in UNSET:
        env.pop(name, None)
    env["HOME"] = host.home
    return env


def _runbook_env(host):
    env = _clean_env(host)
    extra = os.path.join(host.private, host.environment_file)
    if os.path.isfile(extra):
        try:
            with open(extra) as handle:
                values = json.load(handle)
        finally:
            os.unlink(extra)
        if isinstance(values, dict):
            env.update({str(k): str(v) for k, v in values.items()})
    return env


def _fresh_out(host):
    if os.path.isdir(host.out):
        for name in ("output", "reports", "journals"):
            shutil.rmtree(os.path.join(host.out, name), ignore_errors=True)
    for name in ("output", "reports", "journals"):
        os.makedirs(os.path.join(host.out, name), exist_ok=True)


def do_scan(host, config):
    env = _runbook_env(host)
    _fresh_out(host)
    result = os.path.join(host.out, "scan.json")
    argv = [host.runbook, "scan", *host.targets, "--host", "--format", "json", "-o", result]
    if config.get("playbook"):
        argv += ["--playbook", _playbook_ref(host, config)]
    started = time.time()
    code, out, err = _run(argv, env=env, cwd=host.home, timeout=config.get("timeout") or 3600)
    summary = {"exit": code, "duration": round(time.time() - started, 3)}
    if code not in (0, 1, 3) or not os.path.isfile(result):
        raise Refused("scan", f"runbook scan failed (exit {code}): {_tail(err or out)}")
    return summary


def _playbook_ref(host, config):
    """A bundled playbook's id, or the path of the playbook file staged on this host (sent
    inside the configuration when small, else copied by Ansible), checked against its digest."""
    digest = config.get("playbook_sha256")
    if not digest:
        return config["playbook"]
    path = host.playbook_path(digest)
    if not host.playbook_staged(digest) and config.get("playbook_b64"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # hosts sharing a venv root stage the same file at once: each writes its own temporary
        # file (a shared name would let one replace it while another still writes it)
        tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(base64.b64decode(config["playbook_b64"]))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    if not host.playbook_staged(digest):
        raise Refused("run", f"the playbook staged at {path} does not match its digest")
    return path


def _run_target(host, config, env, target):
    key = _key(target)
    argv = [host.runbook, "run", _playbook_ref(host, config), "--target", target, "--json"]
    argv.append("--no-input")
    if config.get("dry_run"):
        argv.append("--dry-run")
    if config.get("yes"):
        argv.append("--yes")
    if config.get("operator"):
        argv += ["--operator", config["operator"]]
    for step, reason in sorted((config.get("skips") or {}).items()):
        argv += ["--skip", f"{step}={reason}"]
    lines_path = os.path.join(host.out, "output", key + ".ndjson")
    started = time.time()
    record = {"target": target, "key": key, "journal": None, "outcome": None}
    with open(lines_path, "w") as lines:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=target,
            universal_newlines=True,
        )
        # stderr is small (warnings, a usage error); read it after stdout ends
        for line in proc.stdout:
            lines.write(line)
            lines.flush()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "run":
                record["journal"] = event.get("journal")
                record["resumed"] = bool(event.get("resumed"))
            elif event.get("event") == "end":
                for name in ("outcome", "reason", "head", "outstanding", "unchecked"):
                    record[name] = event.get(name)
        err = proc.stderr.read()
        proc.wait()
    record["exit"] = proc.returncode
    record["duration"] = round(time.time() - started, 3)
    record["stderr"] = _tail(err)
    return record


def _journals(host, config, records):
    """Every journal of this playbook whose run is on one of the host's targets (this run's and
    earlier ones: all of them are the host's record), by path."""
    found = {r["journal"] for r in records if r.get("journal")}
    state = os.path.join(host.home, ".local/state/runbook", config.get("playbook_id") or "")
    targets = set(host.targets)
    for path in glob.glob(os.path.join(glob.escape(state), "*.jsonl")):
        if path in found or not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            with open(path, "rb") as handle:
                first = json.loads(handle.readline().decode("utf-8", "replace"))
            if os.path.realpath(first["data"]["target"]) in targets:
                found.add(path)
        except (ValueError, KeyError, TypeError, OSError):
            continue
    return sorted(found)


def do_run(host, config):
    env = _runbook_env(host)
    _fresh_out(host)
    records = [_run_target(host, config, env, t) for t in host.targets]
    for path in _journals(host, config, records):
        shutil.copy2(path, os.path.join(host.out, "journals", os.path.basename(path)))
    failed = []
    for record in records:
        code = record["exit"]
        if record.get("outcome") != "completed" or code not in (0, 1, 3):
            said = record.get("reason") or record.get("stderr") or f"exit {code}"
            failed.append(f"{record['target']}: {said}")
    return {"targets": records, "failed": failed}


def pack(host, summary):
    with open(os.path.join(host.out, "summary.json"), "w") as handle:
        json.dump(summary, handle, sort_keys=True)
    archive = host.out + ".tar.gz"
    with tarfile.open(archive + ".tmp", "w:gz") as tar:
        for folder, dirs, files in os.walk(host.out):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                tar.add(path, arcname=os.path.relpath(path, host.out), recursive=False)
    os.replace(archive + ".tmp", archive)
    return archive


def work(command, config):
    host = Host(config)
    facts = probe(host)
    if command == "probe":
        return facts
    started = time.time()
    try:
        facts["installed_now"] = install(host, facts["python"], facts["python_site"])
    except OSError as exc:
        raise Refused("install", f"installing runbook failed: {exc}") from None
    facts["install_seconds"] = round(time.time() - started, 3)
    summary = dict(facts, command=command, version=host.version, targets=host.targets)
    if command == "scan":
        summary["scan"] = do_scan(host, config)
    else:
        summary.update(do_run(host, config))
    summary["pack"] = pack(host, summary)
    return summary


def upload(pack, uri, name):
    """SSM transport: put the archive at <uri>/<name>/results.tgz (run with the Python of
    runbook's virtual environment, which has boto3)."""
    import boto3

    if not uri.startswith("s3://"):
        raise Refused("upload", f"not an s3:// URI: {uri}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "host"
    key = "/".join(p for p in (prefix.strip("/"), safe, "results.tgz") if p)
    boto3.client("s3").upload_file(pack, bucket, key)
    return {"uploaded": f"s3://{bucket}/{key}"}


def main(argv):
    if len(argv) == 5 and argv[1] == "upload":
        try:
            result = upload(argv[2], argv[3], argv[4])
        except Exception as exc:
            print(json.dumps({"ok": False, "stage": "upload", "reason": str(exc)}))
            return 1
        print(json.dumps(dict(result, ok=True, stage="upload")))
        return 0
    if len(argv) != 3 or argv[1] not in ("probe", "scan", "run"):
        print(
            json.dumps(
                {"ok": False, "stage": "usage", "reason": "usage: agent.py probe|scan|run B64JSON"}
            )
        )
        return 2
    try:
        config = json.loads(base64.b64decode(argv[2]).decode("utf-8"))
    except (ValueError, TypeError) as exc:
        print(json.dumps({"ok": False, "stage": "usage", "reason": f"bad configuration: {exc}"}))
        return 2
    try:
        result = work(argv[1], config)
    except Refused as exc:
        print(json.dumps({"ok": False, "stage": exc.stage, "reason": exc.reason}))
        return 1
    except Exception as exc:  # the host must say what went wrong, never just die
        reason = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"ok": False, "stage": argv[1], "reason": reason}))
        return 1
    failed = result.get("failed") or []
    result.update(ok=not failed, stage=argv[1])
    if failed:
        result["reason"] = "the run failed on " + "; ".join(failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
