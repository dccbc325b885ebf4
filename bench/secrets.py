"""How fast `runbook secrets --host` is on the synthetic home of `bench/make_home.py`.

    .venv/bin/python -m bench.secrets --dir /tmp/rb-bench [--reps 3]

Plants a handful of credentials in the home (a profile in `~/.aws/credentials`, a token in
`~/.npmrc`, `.env` files in a few repositories), then times, warm, median of `--reps`:

- **secrets**: `runbook secrets --host HOME --format json` (HOME = the synthetic home);
- **find .env**: `find HOME -name '.env*' -o -name .npmrc -o -name .yarnrc.yml`, the file-name
  search a person would start with (it only lists candidate files; it reads none);
- **grep**: `grep -rlE 'AKIA|_authToken|npm_' HOME`, the brute-force content search.

Results go to `bench/secrets-results.json`; every planted credential must be found.
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
from pathlib import Path

from bench.run import clean_env, machine_info, measure, run_once

REPO = Path(__file__).resolve().parent.parent
ALNUM = string.ascii_letters + string.digits


def plant(home: Path) -> int:
    """Write the credentials discovery must find; returns how many."""
    key = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    secret = "".join(secrets.choice(ALNUM) for _ in range(40))
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "credentials").write_text(
        f"[bench]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )
    token = "npm_" + "".join(secrets.choice(ALNUM) for _ in range(36))
    (home / ".npmrc").write_text(f"//registry.npmjs.org/:_authToken={token}\n")
    repos = sorted(p.parent for p in home.glob("src/*/*/package.json"))[:5]
    for repo in repos:
        value = "".join(secrets.choice(ALNUM) for _ in range(32))
        (repo / ".env").write_text(f"SERVICE_API_SECRET={value}\n")
    return 2 + len(repos)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="holds home/ from make_home")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runbook", type=Path, default=REPO / ".venv/bin/runbook")
    parser.add_argument("--results", type=Path, default=REPO / "bench/secrets-results.json")
    args = parser.parse_args(argv)
    home = args.dir / "home"
    if not home.is_dir():
        parser.error(f"{home} missing: run `python -m bench.make_home --dir {args.dir}` first")
    planted = plant(home)
    env = clean_env(HOME=str(home))
    out = args.dir / "secrets.json"
    cmd = [str(args.runbook), "secrets", "--host", str(home), "--format", "json"]
    check = run_once(cmd, env=env, stdout=out)
    found = json.loads(out.read_text())["credentials"]
    if check.rc != 0 or len(found) < planted:
        print(f"runbook secrets found {len(found)} of {planted} planted credentials")
        return 1
    names = ["-name", ".env*", "-o", "-name", ".npmrc", "-o", "-name", ".yarnrc.yml"]
    runs = [
        measure("secrets", cmd, args.reps, env=env),
        measure("find .env", ["find", str(home), *names], args.reps),
        measure("grep", ["grep", "-rlE", "AKIA|_authToken|npm_", str(home)], args.reps),
    ]
    base = runs[0].median
    results = {
        "machine": machine_info(),
        "planted": planted,
        "found": len(found),
        "runs": {
            m.name: {
                "command": m.command,
                "median_s": round(m.median, 3),
                "peak_mib": round(m.peak_mb, 1),
                "ratio_to_secrets": round(m.median / base, 1),
            }
            for m in runs
        },
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    for m in runs:
        print(f"{m.name:<12} {m.median:7.2f} s  {m.median / base:6.1f}x  {m.peak_mb:6.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
