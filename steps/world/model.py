"""The `world` mapping of a scenario (kind `npm-host`) and a variant's overrides.

A world is what one simulated machine holds: its projects (each made from a bundled template:
package manager, 1.x or 0.x line, how the bad axios got in, lockfile or not, installed with
install scripts or not), its caches, its credentials and where they live, and whether the
loader left its host artifacts. Every key has a default, taken from the world's **profile**:

- `laptop-postinstall`: a developer laptop whose install ran the postinstall (compromised);
- `laptop-ignore-scripts`: the same laptop, installed with `--ignore-scripts` (exposed only);
- `ci-runner`: a CI runner's workspace, credentials in the workspace's `.env` and `.npmrc`.

The effective world is the profile's defaults, then the scenario's `world` mapping, then the
variant's overrides (mappings merge key by key; a list replaces the list before it). A variant
named like a profile uses that profile unless its overrides name another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Manager = Literal["npm", "yarn1", "pnpm", "bun"]
Scripts = Literal["ran", "off"]
ProfileName = Literal["laptop-postinstall", "laptop-ignore-scripts", "ci-runner"]
CredentialType = Literal[
    "aws-access-key",
    "aws-profile",
    "npm-token",
    "github-token",
    "private-key",
    "generic-secret",
    "docker-auth",
    "git-credential",
]
Where = Literal["home", "project", "env"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ENV_PATTERN = r"^[A-Z_][A-Z0-9_]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_PATTERN)]
Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

# which places each credential type can live in, and what that place is
PLACES: dict[str, dict[str, str]] = {
    "aws-access-key": {
        "home": "~/.aws/credentials [PROFILE]",
        "project": "the project's .env (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        "env": "the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    },
    "aws-profile": {"home": "~/.aws/config [profile PROFILE] (SSO, no static key)"},
    "npm-token": {
        "home": "~/.npmrc",
        "project": "the project's .npmrc",
        "env": "the environment (NAME, default NPM_TOKEN)",
    },
    "github-token": {
        "home": "~/.config/gh/hosts.yml",
        "env": "the environment (NAME, default GITHUB_TOKEN)",
    },
    "private-key": {"home": "~/.ssh/id_ed25519"},
    "generic-secret": {
        "project": "the project's .env (NAME, default SESSION_SECRET)",
        "env": "the environment (NAME, default SESSION_SECRET)",
    },
    "docker-auth": {"home": "~/.docker/config.json"},
    "git-credential": {"home": "~/.git-credentials"},
}
ENV_DEFAULTS = {"npm-token": "NPM_TOKEN", "github-token": "GITHUB_TOKEN"}
ENV_DEFAULT_SECRET = "SESSION_SECRET"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSpec(Strict):
    """One project on the machine, made from a bundled template."""

    name: Name = Field(description="Directory name (lowercase letters, digits, . _ -).")
    manager: Manager = Field(default="npm", description="The package manager that installed it.")
    line: Literal["1.x", "0.x"] = Field(default="1.x", description="The axios line it uses.")
    via: Literal["direct", "transitive", "nested"] = Field(
        default="direct",
        description="How the bad axios got in: a direct range (^1.14.0 / ^0.30.0), a "
        "dependency's dependency, or a nested copy next to a direct pin of a safe version.",
    )
    affected: bool = Field(
        default=True, description="False: a clean project (axios 1.14.0 / 0.30.3), a decoy."
    )
    lockfile: bool = Field(default=True, description="Whether the lockfile is there.")
    installed: bool = Field(default=True, description="Whether node_modules is there.")
    scripts: Scripts | None = Field(
        default=None,
        description="Whether the install ran install scripts (the loader). Default: the "
        "world's `scripts`, except pnpm and bun, which block dependency scripts by default.",
    )
    git: bool = Field(default=True, description="A git repository with history.")


class CredentialSpec(Strict):
    """One credential and where it lives. Values are made up when the world is built."""

    type: CredentialType
    where: Where = Field(default="home", description="home, project (its .env/.npmrc) or env.")
    project: Name | None = Field(
        default=None, description="The project (where: project); default: the first one."
    )
    profile: Name = Field(
        default="default", description="AWS profile (aws-access-key at home, aws-profile)."
    )
    user: Name | None = Field(
        default=None,
        description="The IAM user owning an AWS key (default: the world's user); at most two "
        "keys per user, as on AWS.",
    )
    name: EnvName | None = Field(
        default=None, description="The variable name (where: env, or a .env secret)."
    )


class WorldSpec(Strict):
    """The effective world: profile defaults, the scenario's mapping, a variant's overrides."""

    kind: Literal["npm-host"] = "npm-host"
    profile: ProfileName = Field(
        default="laptop-postinstall", description="Defaults to start from."
    )
    machine: Literal["laptop", "ci"] = Field(
        default="laptop", description="A developer laptop or a CI runner (layout, variables)."
    )
    os: Literal["linux", "macos"] = Field(
        default="linux", description="Which host artifacts the loader leaves, where HOME is."
    )
    user: Name = Field(default="dev", description="The login name (HOME is /home/USER).")
    scripts: Scripts = Field(
        default="ran", description="Whether installs ran install scripts (the project default)."
    )
    projects: list[ProjectSpec] = Field(min_length=1, max_length=40)
    credentials: list[CredentialSpec] = Field(default_factory=list, max_length=40)
    caches: list[Manager] | None = Field(
        default=None,
        description="Package-manager caches holding what was installed (default: the managers "
        "of the installed projects).",
    )
    host_artifacts: bool | None = Field(
        default=None,
        description="Whether the loader's host artifacts are there (default: when an affected, "
        "installed project ran its install scripts).",
    )


LAPTOP_CREDENTIALS: list[dict[str, Any]] = [
    {"type": "aws-access-key", "where": "home"},
    {"type": "aws-profile", "where": "home", "profile": "admin-sso"},
    {"type": "npm-token", "where": "home"},
    {"type": "github-token", "where": "home"},
    {"type": "private-key", "where": "home"},
    {"type": "generic-secret", "where": "project"},
]
PROFILES: dict[str, dict[str, Any]] = {
    "laptop-postinstall": {
        "machine": "laptop",
        "user": "dev",
        "scripts": "ran",
        "projects": [{"name": "invoice-sync"}],
        "credentials": LAPTOP_CREDENTIALS,
    },
    "laptop-ignore-scripts": {
        "machine": "laptop",
        "user": "dev",
        "scripts": "off",
        "projects": [{"name": "invoice-sync"}],
        "credentials": LAPTOP_CREDENTIALS,
    },
    "ci-runner": {
        "machine": "ci",
        "user": "runner",
        "scripts": "ran",
        "projects": [{"name": "invoice-sync"}],
        "credentials": [
            {"type": "aws-access-key", "where": "project", "user": "ci-deploy"},
            {"type": "npm-token", "where": "project"},
            {"type": "github-token", "where": "env"},
        ],
    },
}


def merge(base: Any, override: Any) -> Any:
    """`override` on top of `base`: mappings key by key, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def profile_of(spec: Mapping[str, Any], variant: str | None, overrides: Mapping[str, Any]) -> str:
    """The overrides' profile, else the variant's name when it is one, else the spec's."""
    if isinstance(overrides.get("profile"), str):
        return overrides["profile"]
    if variant in PROFILES:
        return variant
    chosen = spec.get("profile")
    return chosen if isinstance(chosen, str) else "laptop-postinstall"


def effective(
    spec: Mapping[str, Any], variant: str | None, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The mapping a world is built from: profile defaults, `spec`, `overrides`."""
    profile = profile_of(spec, variant, overrides)
    base = PROFILES.get(profile, {})
    merged = merge(merge(base, dict(spec)), dict(overrides))
    merged["profile"] = profile
    return merged


def parse(
    spec: Mapping[str, Any], variant: str | None = None, overrides: Mapping[str, Any] | None = None
) -> tuple[WorldSpec | None, list[Problem]]:
    """The effective world, or the problems with it (locations inside the merged mapping)."""
    mapping = effective(spec, variant, overrides or {})
    try:
        world = WorldSpec.model_validate(mapping)
    except ValidationError as exc:
        return None, [(tuple(e["loc"]), _message(e)) for e in exc.errors()]
    problems = check(world)
    return (None if problems else world), problems


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return f"unknown key {loc[-1]!r}" + (f"; known keys: {', '.join(known)}" if known else "")
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch":
        if error["ctx"].get("pattern") == ENV_PATTERN:
            return "must be an environment variable name (A-Z, 0-9, _; not starting with a digit)"
        return (
            "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    if kind == "too_short":
        return f"give at least {error['ctx']['min_length']}"
    if kind == "too_long":
        return f"at most {error['ctx']['max_length']} (there are {error['ctx']['actual_length']})"
    return error["msg"]


def _known_keys(loc: Loc) -> list[str]:
    model: type[BaseModel] = WorldSpec
    if loc and loc[0] == "projects":
        model = ProjectSpec
    elif loc and loc[0] == "credentials":
        model = CredentialSpec
    return sorted(model.model_fields)


def check(world: WorldSpec) -> list[Problem]:
    """What a valid-looking world still gets wrong: unknown projects, impossible places,
    duplicates, more AWS keys than AWS allows."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for index, project in enumerate(world.projects):
        loc: Loc = ("projects", index)
        if project.name in names:
            problems.append(
                (
                    (*loc, "name"),
                    f"a second project named {project.name!r} (first: projects"
                    f"[{names[project.name]}])",
                )
            )
        names.setdefault(project.name, index)
        if not project.affected and project.via != "direct":
            problems.append(
                (
                    (*loc, "via"),
                    "`via` describes how a bad version got in: a clean "
                    "project (affected: false) takes no `via`",
                )
            )
        if project.scripts == "ran" and not project.installed:
            problems.append(
                (
                    (*loc, "scripts"),
                    "install scripts cannot have run in a project "
                    "that is not installed (installed: false)",
                )
            )
    seen: dict[tuple[Any, ...], int] = {}
    keys_per_user: dict[str, list[int]] = {}
    for index, cred in enumerate(world.credentials):
        loc = ("credentials", index)
        places = PLACES[cred.type]
        if cred.where not in places:
            allowed = ", ".join(places)
            problems.append(
                (
                    (*loc, "where"),
                    f"a {cred.type} cannot live in {cred.where!r}; it can live in: {allowed}",
                )
            )
            continue
        if cred.project is not None and cred.where != "project":
            problems.append(((*loc, "project"), "`project` is only for where: project"))
        elif cred.project is not None and cred.project not in names:
            problems.append(
                (
                    (*loc, "project"),
                    f"no project named {cred.project!r} in this world "
                    f"(projects: {', '.join(names)})",
                )
            )
        if cred.user is not None and cred.type != "aws-access-key":
            problems.append(((*loc, "user"), "`user` (an IAM user) is only for aws-access-key"))
        if cred.name is not None and not (cred.where == "env" or cred.type == "generic-secret"):
            problems.append(((*loc, "name"), "`name` is only for where: env and .env secrets"))
        identity = identity_of(world, cred)
        if identity in seen:
            problems.append(
                (
                    loc,
                    f"the same place as credentials[{seen[identity]}]: "
                    "give it another profile, project or name",
                )
            )
        seen.setdefault(identity, index)
        if cred.type == "aws-access-key":
            keys_per_user.setdefault(cred.user or world.user, []).append(index)
    for user, indexes in keys_per_user.items():
        for extra in indexes[2:]:
            problems.append(
                (
                    ("credentials", extra),
                    f"IAM user {user!r} would hold {len(indexes)} access keys; AWS allows two "
                    "(give this one another `user`)",
                )
            )
    return problems


def identity_of(world: WorldSpec, cred: CredentialSpec) -> tuple[Any, ...]:
    """What makes two credentials the same place (so the second would overwrite the first)."""
    project = cred.project or world.projects[0].name
    if cred.where == "env":
        names = {"aws-access-key": "AWS_ACCESS_KEY_ID"}
        return (
            "env",
            cred.name or names.get(cred.type) or ENV_DEFAULTS.get(cred.type, ENV_DEFAULT_SECRET),
        )
    if cred.where == "project":
        if cred.type == "generic-secret":
            return ("project", project, cred.name or ENV_DEFAULT_SECRET)
        return ("project", project, cred.type)
    if cred.type in ("aws-access-key", "aws-profile"):
        return ("home", "aws", cred.profile)
    return ("home", cred.type)


def scripts_of(world: WorldSpec, project: ProjectSpec) -> Scripts:
    """Whether `project`'s install ran install scripts."""
    if not project.installed or not project.affected:
        return "off"
    if project.scripts is not None:
        return project.scripts
    return "off" if project.manager in ("pnpm", "bun") else world.scripts


def loader_ran(world: WorldSpec) -> bool:
    """Whether the loader ran on this machine (so its host artifacts are there by default)."""
    if world.host_artifacts is not None:
        return world.host_artifacts
    return any(scripts_of(world, p) == "ran" for p in world.projects)


def schema() -> dict[str, Any]:
    """JSON Schema of the `world` mapping; a variant's overrides take the same keys."""
    world = WorldSpec.model_json_schema()
    world["required"] = []  # every key has a default from the profile
    world["title"] = "npm-host world"
    overrides = dict(world, title="npm-host world: a variant's overrides")
    return {"world": world, "variant": overrides}
