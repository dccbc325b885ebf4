"""The standard steps of a generated playbook: the one place to change when the bundled playbook's
steps change (`tests/test_osv_generate.py` checks that the ids, kinds, `confirm` and `when` here
match `playbooks/axios-2026-03.yaml`).

The texts are the bundled playbook's, made generic: what is specific to an incident (its packages,
versions, pins and network indicators) comes from `Facts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MANY = 8  # past this many packages, step texts name the first ones and count the rest


@dataclass(frozen=True)
class Facts:
    """What the step texts need to know about the incident."""

    playbook_id: str
    packages: list[tuple[str, str]]  # (name, "0.30.4, 1.14.1" or "every version")
    pins: list[tuple[str, str]]  # (name, "1.14.0 (1.x), 0.30.3 (0.x)"), known pins only
    domains: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def standard_steps(facts: Facts) -> list[dict[str, Any]]:
    """detect, host check, pin, wipe, caches, reinstall, verify, credentials, commit, logs,
    reimage, harden: in the bundled playbook's order."""
    names = " ".join(name for name, _ in facts.packages[:MANY])  # a command line stays short
    bad = _some([f"`{name}` {versions}" for name, versions in facts.packages])
    pins = _some([f"`{name}` {versions}" for name, versions in facts.pins]) or (
        "the versions under `incident.packages[].safe_pins`"
    )
    network = [*facts.domains, *facts.ips, *facts.urls]
    seen_on_network = ", ".join(f"`{n}`" for n in network) or "the addresses the write-ups name"
    first = facts.packages[0][0] if facts.packages else "PACKAGE"
    return [
        {
            "id": "detect",
            "uses": "detect",
            "title": "Find every copy of the bad versions",
            "confirm": "never",
            "description": _text(f"""
                **What:** find where a bad version was resolved, installed or cached: {bad}.
                **Why:** each place is either a machine that may have run the malware or a copy
                that will be reinstalled later. Look everywhere, not only in the project at hand.

                runbook scans for you, exactly and read-only: every `package.json`, every lockfile
                (npm, yarn v1 and berry, pnpm, bun), every install tree, this machine's
                package-manager caches, global installs, editor extensions, the host indicators
                and the git history of the lockfiles. The same scan runs on its own as
                `runbook scan --host --history --playbook THIS-FILE PATH`.

                Findings: **compromised** (a bad version was resolved, installed or cached),
                **at-risk** (a spec admits a bad version, or it was in the git history),
                **unknown** (a file that could not be read: check it by hand).

                ---

                To double-check by hand (at the repository root):
                ```sh
                npm ls {names} --all
                yarn why {first}
                pnpm why -r {first}
                git log --all --format='%h %ad %an %s' --date=iso -S {first}
                ```
                """),
            "with": {"paths": ["."], "host": True, "history": True},
        },
        {
            "id": "check-host",
            "uses": "host_sweep",
            "title": "Look for signs that the malware ran on this machine",
            "confirm": "never",
            "description": _text(f"""
                **What:** look for the malware on this machine: its files, its processes, live
                connections and persistence. **Why:** a hit means it ran here: the machine is
                compromised, not merely exposed, and that changes everything after this step.

                runbook does this for you and only reads: the files, processes and network
                indicators of `incident.indicators` (from the advisories: {seen_on_network}),
                and persistence (LaunchAgents and LaunchDaemons, systemd user units, crontabs,
                shell start-up files, Startup folders, Run keys) created or changed since the
                incident window began. Add the files and processes the write-ups name to
                `incident.indicators` (`host_files`, `processes`) before running this.

                If anything is found: **disconnect the machine from the network**, keep it
                powered on if your security team wants memory forensics, tell your incident
                lead, and do the credential steps **from a different, clean machine**.

                ---

                By hand, if you need to:
                ```sh
                ps -eo pid,lstart,user,ppid,command
                lsof -nPi 2>/dev/null
                ls -la ~/Library/LaunchAgents /Library/LaunchAgents ~/.config/systemd/user
                crontab -l
                ```
                """),
            "with": {},
        },
        {
            "id": "pin",
            "uses": "pin",
            "title": "Pin safe versions exactly and force transitive copies",
            "confirm": "destructive",
            "description": _text(f"""
                **What:** make every project resolve a safe version and nothing else, including
                copies pulled in by other packages: {pins}. **Why:** a caret range admits a bad
                version, and a direct pin alone does not reach transitive copies.

                runbook does this for you: every manifest whose spec admits a bad version is
                pinned to the exact safe version of its major line, transitive copies are forced
                with the package manager's own mechanism (npm and bun `overrides`, yarn
                `resolutions`, pnpm `overrides` in `pnpm-workspace.yaml`), and the lockfile is
                regenerated with install scripts off. The preview shows each diff; `runbook undo
                JOURNAL` restores the files.
                """),
            "with": {},
        },
        {
            "id": "wipe-node-modules",
            "uses": "wipe_node_modules",
            "title": "Remove node_modules (and other install trees)",
            "confirm": "destructive",
            "description": _text("""
                **What:** delete every install tree that may hold a bad copy. **Why:**
                reinstalling over an existing tree can keep the old files.

                runbook removes every node_modules under the target (and yarn berry's PnP
                files), never following a symlink out of the target. The preview lists every
                path with its size. Archive a tree first if your security team wants evidence.
                """),
            "with": {},
        },
        {
            "id": "clear-caches",
            "uses": "clear_caches",
            "title": "Clear the npm, yarn, pnpm and bun caches",
            "confirm": "destructive",
            "description": _text(f"""
                **What:** empty every package-manager cache on this machine. **Why:** a cached
                bad tarball can be reinstalled offline or by another project.

                CI: delete dependency caches (GitHub Actions: `gh cache delete --all`). Mirrors:
                ask the owners of Artifactory / Nexus / Verdaccio to purge {bad}.
                """),
            "with": {},
        },
        {
            "id": "reinstall",
            "uses": "reinstall",
            "title": "Reinstall from the fixed lockfile with install scripts off",
            "confirm": "destructive",
            "description": _text("""
                **What:** reinstall exactly what the fixed lockfile says, without running any
                install script. **Why:** install scripts are how such malware runs; a frozen
                install refuses to drift from the lockfile you just checked. The project is
                scanned again afterwards: the step fails if anything compromised remains.
                """),
            "with": {},
        },
        {
            "id": "verify",
            "uses": "verify",
            "title": "Verify the fix",
            "confirm": "never",
            "when": {"step": "reinstall", "outcome": ["succeeded", "outstanding"]},
            "description": _text(f"""
                **What:** prove the reinstalled tree is clean. **Why:** a missed transitive copy
                or a stale cache brings the bad version straight back.

                runbook does this for you: a fresh scan of the project (no bad version in any
                lockfile or install tree, and every file readable), then `npm audit signatures`
                when the registry publishes signing keys. To run the project's own tests as
                well, add `with: {{command: "npm test"}}`.

                ---

                By hand, if you need to:
                ```sh
                npm ls {names} --all
                npm audit signatures
                ```
                """),
            "with": {},
        },
        {
            "id": "discover-credentials",
            "uses": "discover_credentials",
            "title": "Find every credential this machine held",
            "confirm": "never",
            "description": _text("""
                **What:** list every secret reachable from this machine, never printing one.
                **Why:** a machine that installed a bad version with scripts on is compromised;
                the malware could read anything the user could. AWS access keys and npm tokens
                are rotated by the next two steps; everything else becomes a checklist item.
                """),
            "with": {"host": True},
        },
        {
            "id": "rotate-aws-keys",
            "uses": "rotate_aws_keys",
            "title": "Rotate AWS access keys",
            "confirm": "always",
            "when": {"step": "discover-credentials", "outcome": "succeeded"},
            "description": _text("""
                **What:** for each static access key found: create a new key, write it where the
                old one was and into the OS keyring, verify it, then deactivate and delete the
                old key. **Why:** the old key must be assumed stolen. Do this from a clean
                machine if `check-host` found anything.
                """),
        },
        {
            "id": "rotate-npm-tokens",
            "uses": "rotate_npm_tokens",
            "title": "Rotate npm tokens",
            "confirm": "always",
            "when": {"step": "discover-credentials", "outcome": "succeeded"},
            "description": _text("""
                **What:** for each npm token found: create a new one, write it where the old one
                was and into the OS keyring, verify it, then revoke the old token. **Why:** a
                stolen npm token can publish the next compromised release.
                """),
        },
        {
            "id": "rotate-other-credentials",
            "uses": "credential_checklist",
            "title": "Revoke the other credentials (GitHub, SSH, Docker, .env, CI secrets)",
            "confirm": "never",
            "when": {"step": "discover-credentials", "outcome": "succeeded"},
            "description": _text("""
                **What:** every other credential found becomes a checklist item naming it
                (redacted), where it was found and where to revoke it. **Why:** the malware could
                read every file and variable the user could.
                """),
            "with": {
                "items": [
                    {
                        "id": "browser-sessions",
                        "text": "Signed out of every browser session used on this machine "
                        "(GitHub, npm, cloud consoles, email)",
                    },
                    {
                        "id": "cloud-consoles",
                        "text": "Revoked long-lived sessions and API keys of cloud consoles "
                        "used from this machine",
                    },
                ]
            },
        },
        {
            "id": "commit-fix",
            "uses": "git_commit",
            "title": "Commit the fix (do not push)",
            "confirm": "destructive",
            "when": {"step": "pin", "outcome": ["succeeded", "outstanding"]},
            "description": _text(f"""
                **What:** commit the pinned manifests and regenerated lockfiles on the branch
                `{facts.playbook_id}/remediate`. **Why:** the fix must reach every other clone
                and CI through a reviewed pull request. runbook never pushes: push after review,
                from a clean machine.
                """),
            "with": {},
        },
        {
            "id": "review-logs",
            "uses": "manual",
            "title": "Review CI/CD and network logs",
            "confirm": "never",
            "description": _text(f"""
                **What:** find every other machine that installed a bad version or talked to the
                attacker. **Why:** this machine is rarely the only one; CI runners install
                constantly and often hold the most powerful secrets.

                - **CI/CD:** builds in the incident window whose logs mention {bad}.
                - **Network:** DNS, proxy and firewall logs for {seen_on_network}.
                - **Mirrors:** download logs of the bad versions.
                """),
            "with": {
                "items": [
                    {"id": "ci", "text": "Searched CI/CD logs for installs of the bad versions"},
                    {"id": "network", "text": "Searched DNS, proxy and firewall logs"},
                    {"id": "mirrors", "text": "Searched private mirror logs for the bad versions"},
                    {
                        "id": "hosts",
                        "text": "Listed every other affected host and handed each one this runbook",
                    },
                ]
            },
        },
        {
            "id": "reimage",
            "uses": "manual",
            "title": "Reimage compromised machines where possible",
            "confirm": "never",
            "description": _text("""
                **What:** rebuild machines and runners that ran the malware. **Why:** it ran with
                the user's rights and could have installed anything; cleaning known files does
                not prove the machine is clean.
                """),
            "with": {
                "items": [
                    {
                        "id": "machines",
                        "text": "Reimaged compromised machines, or recorded why one cannot be",
                    },
                    {"id": "runners", "text": "Recreated affected self-hosted CI runners"},
                    {
                        "id": "images",
                        "text": "Rebuilt and redeployed container images built in the window",
                    },
                ]
            },
        },
        {
            "id": "harden",
            "uses": "harden",
            "title": "Harden the project against the next one",
            "confirm": "destructive",
            "description": _text("""
                **What:** make the next compromised release much less likely to reach you.
                **Why:** such attacks need a loose range, install scripts on, and an install soon
                after the publish: each of those can be switched off.

                runbook does this for you, for each package manager the project uses, as
                minimal edits with a diff preview, a backup and `runbook undo`: install scripts
                off (with an allow-list), exact versions saved, and a minimum release age (npm
                `.npmrc`, pnpm `pnpm-workspace.yaml`, yarn berry `.yarnrc.yml`, bun
                `bunfig.toml`). A setting the installed manager does not know is reported, never
                written blindly. Dependency updates through reviewed pull requests and frozen
                installs in CI stay a checklist.
                """),
            "with": {},
        },
    ]


def _some(items: list[str]) -> str:
    """`a; b; c`, or the first `MANY` and how many more (a list of thousands of versions)."""
    if len(items) <= MANY:
        return "; ".join(items)
    return f"{'; '.join(items[:MANY])}; and {len(items) - MANY:,} more (see incident.packages)"


def _text(block: str) -> str:
    """A description written indented in this file, as it should read."""
    import textwrap

    return textwrap.dedent(block).strip() + "\n"
