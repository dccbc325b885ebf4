"""`harden`: write the package-manager settings that would have stopped this attack.

Per package manager found in the project (or named in `managers`), for the chosen knobs:

- npm `.npmrc`: `ignore-scripts=true`, `save-exact=true`, `min-release-age=DAYS`;
- pnpm `pnpm-workspace.yaml`: `onlyBuiltDependencies` (the allow-list), `saveExact`,
  `minimumReleaseAge` (minutes);
- yarn berry `.yarnrc.yml`: `enableScripts: false`, `defaultSemverRangePrefix: ""`,
  `npmMinimalAgeGate: DAYSd`;
- bun `bunfig.toml` `[install]`: `exact`, `minimumReleaseAge` (seconds).

Before anything is written, the installed manager is asked whether it knows each setting (npm's
`config ls -l`, yarn's `config get`, bun's `install --help`; pnpm by its version); a setting it
does not know, or a manager that is not installed, is reported with the line to add later, never
written blindly. Edits are minimal and backed up (`runbook undo`), shown as diffs. After a live
apply each setting is read back through the manager (`npm config get`, `pnpm config get`,
`yarn config get`; bun loads `bunfig.toml`): one that did not take effect fails the step. What no
file can hold (reviewed dependency updates, frozen installs in CI) stays a checklist.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from runbook.effects import EffectError
from runbook.safeio import SMALL_FILE_LIMIT, read_regular
from runbook.step import (
    Action,
    Plan,
    StalePlanError,
    StepContext,
    StepError,
    StepKind,
    StepParams,
    StepResult,
    fingerprint_of,
)
from steps.harden_settings.catalog import (
    FILES,
    KNOBS,
    HardenManager,
    Knob,
    Setting,
    settings_for,
    supported,
)
from steps.harden_settings.probe import Tool, find_tool, knows, reads
from steps.harden_settings.textedit import (
    EditRefused,
    current_ini,
    current_toml,
    current_yaml,
    set_ini,
    set_toml,
    set_yaml,
)
from steps.manual import ask
from steps.npm.pm import detect_manager

VERIFIED_EVENT = "harden_verified"
#: What no configuration file can hold: it stays with people.
CHECKLIST = (
    (
        "review-updates",
        "Dependency updates arrive as reviewed pull requests (Renovate or Dependabot, with a "
        "cooldown matching the minimum release age), never by a bare `npm install` on CI",
    ),
    (
        "ci-frozen",
        "CI installs from the lockfile with scripts off (`npm ci --ignore-scripts`, `pnpm install "
        "--frozen-lockfile`, `yarn install --immutable`, `bun install --frozen-lockfile`) and runs "
        "`npm audit signatures`",
    ),
)
CREDENTIAL_LINE = re.compile(r"(_authToken|_auth|_password|password|token)\s*[=:]", re.IGNORECASE)


class HardenParams(StepParams):
    path: str = Field(default=".", description="The project, relative to the target.")
    settings: list[Knob] = Field(
        default_factory=lambda: list(KNOBS),
        description="Which settings to write: `scripts` (install scripts off / allow-listed), "
        "`exact` (exact versions saved), `release-age` (a minimum release age).",
    )
    release_age_days: int = Field(
        default=7, ge=1, le=365, description="Minimum age, in days, of a version to install."
    )
    managers: list[HardenManager] | None = Field(
        default=None,
        description="Package managers to harden; default: those the project uses (lockfiles, "
        "`packageManager`, their config files).",
    )
    allow_builds: list[str] = Field(
        default_factory=list,
        description="pnpm: the dependencies still allowed to run build scripts "
        "(`onlyBuiltDependencies`).",
    )
    checklist: bool = Field(
        default=True,
        description="Also ask about what no file can hold (reviewed updates, CI frozen installs).",
    )


@dataclass
class Decision:
    """What happens to one setting: written, already in place, or reported and left."""

    setting: Setting
    state: str  # write | present | unsupported | unknown-tool
    reason: str = ""
    expected: object = None  # what the manager should read once done (None: any value)


@dataclass
class Work:
    """Everything `plan` observed; `apply` works from it."""

    project: Path
    tools: dict[str, Tool] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    edits: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (before, after)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""


def project_managers(project: Path) -> list[tuple[HardenManager, str]]:
    """The managers the project uses: `packageManager` / lockfile first, then the others whose
    lockfile or config file is present; yarn 1 has none of these settings."""
    found: dict[str, str] = {}
    detected = detect_manager(project)
    found[detected.manager] = detected.reason
    markers: list[tuple[str, str]] = [
        ("package-lock.json", "npm"),
        ("npm-shrinkwrap.json", "npm"),
        (".npmrc", "npm"),
        ("pnpm-lock.yaml", "pnpm"),
        ("pnpm-workspace.yaml", "pnpm"),
        (".yarnrc.yml", "berry"),
        ("bun.lock", "bun"),
        ("bun.lockb", "bun"),
        ("bunfig.toml", "bun"),
    ]
    for name, manager in markers:
        if (project / name).is_file():
            found.setdefault(manager, name)
    return [(m, why) for m, why in found.items() if m != "yarn1"]  # type: ignore[misc]


def _read(path: Path) -> str:
    try:
        return read_regular(path, limit=SMALL_FILE_LIMIT).decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise StepError(f"harden: {path} is not UTF-8 text; edit it by hand") from None
    except OSError as exc:
        raise StepError(f"harden: cannot read {path}: {exc.strerror or exc}") from None


def _duration_minutes(text: str) -> int | None:
    """yarn's `npmMinimalAgeGate`: minutes, or a duration such as `7d`, `12h`, `1w`."""
    match = re.fullmatch(r"\s*['\"]?(\d+)\s*([smhdw]?)['\"]?\s*", text)
    if not match:
        return None
    factor = {"": 1, "s": 1 / 60, "m": 1, "h": 60, "d": 1440, "w": 10080}[match.group(2)]
    return int(int(match.group(1)) * factor)


def _present(setting: Setting, text: str) -> tuple[str | None, object]:
    """(current raw value, what the manager should read for it) of the setting in `text`."""
    if setting.manager == "npm":
        raw = current_ini(text, setting.key)
    elif setting.manager == "bun":
        raw = current_toml(text, "install", setting.key)
    else:
        raw = current_yaml(text, setting.key)
    if raw is None:
        return None, None
    value = raw.strip().strip("'\"") if setting.key != "defaultSemverRangePrefix" else raw
    if setting.knob == "release-age":
        if setting.manager == "berry":
            return raw, _duration_minutes(raw)
        return raw, int(value) if value.isdigit() else None
    return raw, value


def _good_enough(setting: Setting, raw: str, read_as: object) -> bool:
    """Whether a value already in the file is at least as strict as ours."""
    if setting.knob == "release-age":
        ours = setting.expected if setting.manager != "npm" else int(setting.written)
        return isinstance(read_as, int) and isinstance(ours, int) and read_as >= ours
    if setting.key == "onlyBuiltDependencies":
        return True  # an allow-list the project keeps: never widened or replaced
    if setting.key == "defaultSemverRangePrefix":
        return raw.strip() in ('""', "''")
    return str(read_as).lower() == str(setting.written).lower()


def _diff(project: Path, path: Path, before: str, after: str) -> str:
    """A diff of the edit with no context lines: an npmrc's other lines may hold a token."""
    rel = path.relative_to(project).as_posix()
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"a/{rel}", f"b/{rel}", n=0)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class HardenStep(StepKind):
    """Writes the settings that stop install-time attacks, checked with the real managers."""

    name = "harden"
    Params = HardenParams
    summary = "Write install-scripts-off, exact-pin and minimum-release-age settings per manager."
    params: HardenParams
    _seen: Work | None = None

    # -- observing ---------------------------------------------------------------------------
    def _project(self, ctx: StepContext) -> Path:
        project = (ctx.target / self.params.path).resolve()
        if not (project / "package.json").is_file():
            raise StepError(f"harden: no package.json in {project}")
        return project

    def _work(self, ctx: StepContext) -> Work:
        project = self._project(ctx)
        work = Work(project)
        if self.params.managers:
            managers = [(m, "named in the playbook") for m in self.params.managers]
        else:
            managers = project_managers(project)
            if detect_manager(project).manager == "yarn1":
                work.notes.append(
                    "yarn 1 has no minimum release age and no file setting here: move to yarn "
                    "berry, or install with `yarn install --frozen-lockfile --ignore-scripts`"
                )
        texts: dict[Path, str] = {}
        for manager, why in managers:
            tool = work.tools[manager] = find_tool(manager, project, ctx.env)
            shown = tool.version or "not installed"
            work.notes.append(f"{tool.shown} ({why}): {tool.problem or shown}")
            path = project / FILES[manager]
            if path not in texts:
                texts[path] = _read(path)
            params = self.params
            wanted = settings_for(
                manager, params.settings, params.release_age_days, params.allow_builds
            )
            for setting in wanted:
                work.decisions.append(self._decide(tool, setting, texts[path]))
            if manager == "bun" and "scripts" in self.params.settings:
                work.notes.append(
                    "bun runs dependency install scripts only for `trustedDependencies` in "
                    "package.json: keep that list short (nothing to write)"
                )
        for decision in work.decisions:
            if decision.state != "write":
                continue
            setting = decision.setting
            path = project / setting.file
            before, after = work.edits.get(path, (texts[path], texts[path]))
            try:
                after = self._edit(setting, after)
            except EditRefused as exc:
                decision.state, decision.reason = "unsupported", f"{setting.file}: {exc}"
                continue
            work.edits[path] = (before, after)
        for path, (before, _after) in work.edits.items():
            if CREDENTIAL_LINE.search(before):
                work.notes.append(
                    f"{path.name} holds a credential: it is rewritten in place with no backup (a "
                    "copy would be one more place for the credential to leak from), so `runbook "
                    "undo` cannot restore it: to undo, remove the lines the diff adds"
                )
        work.fingerprint = fingerprint_of(
            self.name,
            ctx.step.id,
            self.params.model_dump(),
            {str(p): hashlib.sha256(t.encode()).hexdigest() for p, t in texts.items()},
            {m: (t.argv, t.version, t.problem) for m, t in work.tools.items()},
            [(d.setting.manager, d.setting.key, d.state, d.reason) for d in work.decisions],
        )
        return work

    def _decide(self, tool: Tool, setting: Setting, text: str) -> Decision:
        raw, read_as = _present(setting, text)
        if raw is not None and _good_enough(setting, raw, read_as):
            return Decision(setting, "present", f"already `{raw}`", read_as)
        if tool.problem or tool.version is None:
            return Decision(setting, "unknown-tool", tool.problem or "no version")
        why = supported(setting, tool.version)
        known = knows(tool, setting)
        if known is False:
            return Decision(
                setting,
                "unsupported",
                f"the installed {tool.shown} {tool.version} does not know `{setting.key}`",
            )
        if why and known is not True:
            return Decision(setting, "unsupported", why)
        return Decision(setting, "write", setting.why, setting.expected)

    @staticmethod
    def _edit(setting: Setting, text: str) -> str:
        if setting.manager == "npm":
            return set_ini(text, setting.key, setting.written)
        if setting.manager == "bun":
            return set_toml(text, "install", setting.key, setting.written)
        return set_yaml(text, setting.key, setting.written)

    def plan(self, ctx: StepContext) -> Plan:
        work = self._work(ctx)
        actions = []
        redact = ctx.effects.redactor.text
        for path, (before, after) in work.edits.items():
            written = [
                d.setting.line
                for d in work.decisions
                if d.state == "write" and work.project / d.setting.file == path
            ]
            actions.append(
                Action(
                    kind="edit",
                    destructive=True,
                    summary=f"edit {path.relative_to(work.project).as_posix() or path.name}: "
                    + "; ".join(written),
                    detail={
                        "path": str(path),
                        "diff": redact(_diff(work.project, path, before, after)),
                        "backup": not CREDENTIAL_LINE.search(before),
                    },
                )
            )
        for item_id, text in self._items(work):
            actions.append(Action(kind="manual", summary=text, detail={"item": item_id}))
        notes = list(work.notes)
        for d in work.decisions:
            s = d.setting
            if d.state == "present":
                notes.append(f"{s.file}: `{s.key}` {d.reason}: kept")
            elif d.state == "write":
                notes.append(f"{s.file}: `{s.line}`: {s.why}")
            else:
                notes.append(f"{s.file}: `{s.line}` not written: {d.reason}")
        if not work.decisions:
            notes.append("no setting to write for these package managers")
        return Plan(actions=actions, fingerprint=work.fingerprint, notes=notes)

    def _items(self, work: Work) -> list[tuple[str, str]]:
        items = []
        for d in work.decisions:
            if d.state in ("unsupported", "unknown-tool"):
                s = d.setting
                items.append(
                    (
                        f"{s.manager}-{s.key}".lower(),
                        f"Add `{s.line}` to {s.file} by hand once {s.manager} can take it "
                        f"({d.reason})",
                    )
                )
        if self.params.checklist:
            items += list(CHECKLIST)
        return items

    def current_fingerprint(self, ctx: StepContext, plan: Plan) -> str:
        self._seen = self._work(ctx)  # what apply then works from: the managers are asked once
        return self._seen.fingerprint

    # -- acting ------------------------------------------------------------------------------
    def apply(self, ctx: StepContext, plan: Plan) -> StepResult:
        work, self._seen = self._seen, None
        if work is None or work.fingerprint != plan.fingerprint:
            work = self._work(ctx)
        if work.fingerprint != plan.fingerprint:
            raise StalePlanError("harden: the settings files changed since the plan")
        for path, (before, after) in work.edits.items():
            keys = [
                d.setting.key
                for d in work.decisions
                if d.state == "write" and work.project / d.setting.file == path
            ]
            reason = f"harden: {', '.join(keys)}"
            try:
                if CREDENTIAL_LINE.search(before):
                    ctx.effects.write_secret_file(path, after, reason=reason)
                else:
                    ctx.effects.write_file(path, after, reason=reason)
            except EffectError as exc:
                raise StepError(str(exc)) from None
        written = [d for d in work.decisions if d.state == "write"]
        results: list[dict] = []
        wrong: list[str] = []
        if not ctx.dry_run:
            for d in work.decisions:
                if d.state not in ("write", "present"):
                    continue
                row = self._verify(work.tools[d.setting.manager], d)
                results.append(row)
                if not row["ok"]:
                    wrong.append(f"{d.setting.file} `{d.setting.key}`: {row['answer']}")
            ctx.record(VERIFIED_EVENT, {"step": ctx.step.id, "settings": results})
        answers = {item_id: ask(ctx, item_id, text) for item_id, text in self._items(work)}
        open_items = [i for i, a in answers.items() if a != "done"]
        if ctx.dry_run:
            summary = f"dry run: would write {len(written)} setting(s) in {len(work.edits)} file(s)"
        else:
            good = sum(1 for r in results if r["ok"])
            summary = (
                f"{len(written)} setting(s) written in {len(work.edits)} file(s); "
                f"{good}/{len(results)} confirmed by the package managers"
            )
        if answers:
            summary += f"; {len(answers) - len(open_items)}/{len(answers)} checklist item(s) done"
        data = {"files": [str(p) for p in work.edits], "verified": results}
        if wrong:
            return StepResult(
                "failed",
                summary + "; not in effect: " + "; ".join(wrong),
                data=data,
            )
        return StepResult("outstanding" if open_items else "succeeded", summary, data=data)

    @staticmethod
    def _verify(tool: Tool, decision: Decision) -> dict:
        setting = decision.setting
        row = {"manager": setting.manager, "file": setting.file, "key": setting.key}
        try:
            value, raw = reads(tool, setting)
        except Exception as exc:  # a manager that hangs or crashes: not confirmed
            return row | {"ok": False, "answer": f"could not ask {tool.shown}: {exc}"}
        expected = decision.expected
        if setting.key == "onlyBuiltDependencies" and decision.state == "present":
            ok = isinstance(value, list)
        elif setting.manager == "npm":
            ok = str(value) == str(expected)
        elif setting.manager == "bun":
            ok = value is not None
        else:
            ok = _same(value, expected)
        answer = raw if ok else f"{tool.shown} reads {raw!r}, expected {expected!r}"
        return row | {"ok": ok, "answer": answer}


def _same(value: object, expected: object) -> bool:
    """A manager's JSON answer against what the file says (`true` and True are the same)."""
    if isinstance(value, list) or isinstance(expected, list):
        return value == expected
    return str(value).lower() == str(expected).lower()
