"""Loading and validating playbooks, with every problem pointing at file:line:col."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from runbook.bundled import bundled_dir, bundled_playbooks, resolve_playbook  # noqa: F401
from runbook.models import SHA1, SHA256, STEP_ID, Playbook
from runbook.registry import Registry, UnknownStepKind, default_registry
from runbook.yamlsource import (
    Loc,
    SourceDocument,
    SourceProblem,
    YamlSyntaxError,
    format_loc,
    load_yaml,
    read_source,
)


class PlaybookInvalid(Exception):
    """A playbook failed validation; `problems` are ordered by position."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.position.line, p.position.col))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class LoadedPlaybook:
    """A valid playbook, where it came from, and each step's validated parameters."""

    playbook: Playbook
    path: Path
    sha256: str
    params: dict[str, BaseModel]


def _known_fields(model: type[BaseModel], loc: Loc, root: type[BaseModel]) -> list[str]:
    """Field names (by alias) of the model found at `loc`, to suggest a fix for a typo."""
    current: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = _field(current, part)
        if field is None:
            return []
        current = _inner_model(field.annotation)
        if current is None:
            return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _field(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field
    return None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# What a `pattern` constraint of the models means, in words.
_PATTERNS = {
    STEP_ID: "use lowercase letters, digits, '-' and '_', starting with a letter or digit",
    SHA256: "a SHA-256 digest is 64 lowercase hexadecimal digits",
    SHA1: "a SHA-1 digest is 40 lowercase hexadecimal digits",
}
_SCALAR_TAGS = {"str", "int", "float", "bool", "none", "decimal"}


def _message(item: Any) -> str:
    """A short message for one pydantic error, phrased for someone editing YAML."""
    kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
    got = f", got {_describe(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false" + got
    if kind == "string_type":
        if isinstance(value, bool):
            return f"expected text, got {str(value).lower()} (write it in quotes)"
        if isinstance(value, int | float):
            return f"expected text, got the number {value!r} (write it in quotes)"
        return "expected text" + got
    if kind == "list_type":
        return "expected a list" + got
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping" + got
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}" + got
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
        return f"{_describe(value)} is not valid: {_PATTERNS[ctx['pattern']]}"
    if kind == "too_short" and isinstance(value, list):
        count = ctx.get("min_length", 1)
        return f"needs at least {count} item{'s' if count != 1 else ''}" + got
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "timezone_aware" and isinstance(value, datetime):
        return "needs a timezone, e.g. 2026-03-31T00:21:00Z (UTC)" + got
    if kind == "timezone_aware":
        return "expected a date and time with a timezone, like 2026-03-31T00:21:00Z" + got
    if kind.startswith(("datetime_", "date_")):
        return "expected a date and time like 2026-03-31T00:21:00Z" + got
    message = item["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    if kind not in ("value_error", "assertion_error") and "input" in item:
        message += got
    return message


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried in the location: 'str', 'ManualItem', 'list[..]'."""
    return isinstance(part, str) and (
        "[" in part or part in _SCALAR_TAGS or (part[:1].isupper() and part.isidentifier())
    )


def _tag_shape(tag: str) -> str:
    """What input a union member takes: 'scalar', 'list' or 'mapping'."""
    while tag.startswith("function-") and "[" in tag:  # 'function-after[f(), str]'
        tag = tag[tag.index("[") + 1 : -1].rsplit(", ", 1)[-1]
    if tag in _SCALAR_TAGS or tag.startswith("literal["):
        return "scalar"
    if tag.startswith(("list[", "tuple[", "set[")):
        return "list"
    return "mapping"


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    return "list" if isinstance(value, list) else "scalar"


def _source_loc(data: Any, loc: Loc) -> tuple[Loc, tuple[Loc, str, Any] | None]:
    """Map a pydantic location onto the YAML document.

    Drops the union member names pydantic inserts and the index it adds where a model took a
    single value as a one-item list (`when: {step: ...}`). Returns the location in the document
    and, for an error inside a union, (where the union is, the member's name, the input there).
    """
    out: list[str | int] = []
    union: tuple[Loc, str, Any] | None = None
    current, known = data, True
    for part in loc:
        if known and isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
        elif known and isinstance(current, list) and isinstance(part, int):
            out.append(part)
            current = current[part] if 0 <= part < len(current) else None
        elif known and isinstance(part, int):
            continue  # a single value that the model took as a one-item list
        elif _is_union_tag(part):
            if union is None:
                union = (tuple(out), str(part), current)
        else:
            out.append(part)
            known = False
    return tuple(out), union


def _problems_from_validation(
    doc: SourceDocument, error: ValidationError, prefix: Loc, model: type[BaseModel]
) -> list[SourceProblem]:
    items = []
    for item in error.errors():
        loc, union = _source_loc(doc.data, (*prefix, *(p for p in item["loc"] if p != "[key]")))
        suggestion = None
        if item["type"] == "extra_forbidden":
            known = _known_fields(model, loc[len(prefix) :], model)
            suggestion = next(iter(difflib.get_close_matches(str(loc[-1]), known, n=1)), None)
        items.append((item, loc, union, suggestion))

    # Of a union's members, report only those that take the kind of input found there.
    fitting = {(u[0], u[1]) for _, _, u, _ in items if u and _tag_shape(u[1]) == _shape(u[2])}
    unions_with_fit = {where for where, _ in fitting}
    # An unknown key that is a typo of a missing one says all there is to say about both.
    typos = {(loc[:-1], suggestion) for _, loc, _, suggestion in items if suggestion}

    problems, seen = [], set()
    for item, loc, union, suggestion in items:
        if union and union[0] in unions_with_fit and (union[0], union[1]) not in fitting:
            continue
        if item["type"] == "missing":
            if (loc[:-1], loc[-1]) in typos:
                continue
            message = f"missing required key '{loc[-1]}'"
            where, position = format_loc(loc[:-1]), doc.position(loc[:-1])
        elif item["type"] == "extra_forbidden":
            hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
            message = f"unknown key '{loc[-1]}'{hint}"
            where, position = format_loc(loc), doc.position(loc, key=True)
        else:
            message = _message(item)
            if "[key]" in item["loc"]:
                message = f"key {_describe(item.get('input'))}: {message}"
            where, position = format_loc(loc), doc.position(loc)
        if (where, message) not in seen:  # one message per place, even from several members
            seen.add((where, message))
            problems.append(SourceProblem(doc.path, position, where, message))
    return problems


def validate_document(doc: SourceDocument, registry: Registry, sha256: str = "") -> LoadedPlaybook:
    """Validate parsed YAML as a playbook, collecting every problem found."""
    problems = []
    for loc, pos in doc.duplicates:
        first = doc.first_keys.get(loc)
        also = f" (already on line {first.line})" if first else ""
        message = f"duplicate key '{loc[-1]}'{also}"
        problems.append(SourceProblem(doc.path, pos, format_loc(loc), message))
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else _describe(doc.data)
        message = f"a playbook is a mapping (id, title, version, incident, steps), got {got}"
        problems.append(SourceProblem(doc.path, doc.position(()), "", message))
        raise PlaybookInvalid(problems)
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        problems += _problems_from_validation(doc, exc, (), Playbook)
        raise PlaybookInvalid(problems) from None

    params: dict[str, BaseModel] = {}
    seen: dict[str, int] = {}
    for index, step in enumerate(playbook.steps):
        here: Loc = ("steps", index)
        if step.id in seen:
            problems.append(
                SourceProblem(
                    doc.path,
                    doc.position((*here, "id")),
                    format_loc((*here, "id")),
                    f"duplicate step id '{step.id}' (first used by steps[{seen[step.id]}])",
                )
            )
        for c_index, condition in enumerate(step.when or []):
            if condition.step not in seen:
                later = condition.step in {s.id for s in playbook.steps}
                reason = "a later step" if later else "an unknown step"
                if condition.step == step.id:
                    reason = "this step itself"
                message = f"'when' names {reason} '{condition.step}'"
                if later:
                    message += "; a condition can only name an earlier step"
                else:
                    close = difflib.get_close_matches(condition.step, list(seen), n=1)
                    if close:
                        message += f" (did you mean '{close[0]}'?)"
                loc_ = _when_loc(doc, here, c_index)
                problems.append(
                    SourceProblem(doc.path, doc.position(loc_), format_loc(loc_), message)
                )
        seen.setdefault(step.id, index)
        try:
            kind = registry.get(step.uses)
        except UnknownStepKind as exc:
            loc_ = (*here, "uses")
            problems.append(SourceProblem(doc.path, doc.position(loc_), format_loc(loc_), str(exc)))
            continue
        try:
            params[step.id] = kind.Params.model_validate(step.with_)
        except ValidationError as exc:
            problems += _problems_from_validation(doc, exc, (*here, "with"), kind.Params)
    if problems:
        raise PlaybookInvalid(problems)
    return LoadedPlaybook(playbook=playbook, path=Path(doc.path), sha256=sha256, params=params)


def _when_loc(doc: SourceDocument, here: Loc, index: int) -> Loc:
    """`when` may be one mapping or a list of them; point at the right `step:` key."""
    as_list = (*here, "when", index, "step")
    if as_list in doc.values:
        return as_list
    return (*here, "when", "step")


def load_playbook(
    path: Path, registry: Registry | None = None, display: str | None = None
) -> LoadedPlaybook:
    """Read (a regular file of at most `PLAYBOOK_LIMIT` bytes), parse and validate a playbook
    file. Raises `PlaybookInvalid`."""
    shown = display or str(path)
    try:
        raw, text = read_source(path, shown, what="playbook")
        doc = load_yaml(text, shown)
    except YamlSyntaxError as exc:
        raise PlaybookInvalid([exc.problem]) from None
    loaded = validate_document(doc, registry or default_registry(), hashlib.sha256(raw).hexdigest())
    return LoadedPlaybook(loaded.playbook, path, loaded.sha256, loaded.params)


def load_for_command(
    ref: str, display: str | None = None, prog: str = "runbook"
) -> LoadedPlaybook | None:
    """The playbook a command names (a path or a bundled id), or None after printing why not to
    stderr (the caller exits with the usage code): a missing file as `prog: reason`, an invalid
    playbook as one line per problem."""
    import sys

    from runbook.termsafe import printable

    try:
        path = resolve_playbook(ref)
        return load_playbook(path, display=display)
    except FileNotFoundError as exc:
        print(f"{prog}: {printable(str(exc))}", file=sys.stderr)
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            print(printable(problem), file=sys.stderr)
    return None
