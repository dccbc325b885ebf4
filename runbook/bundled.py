"""Where the bundled playbooks and scenarios are, and what a reference names (no validation
here, so the app can find a playbook before it imports the models)."""

from __future__ import annotations

from pathlib import Path


def bundled_dir(kind: str = "playbooks") -> Path:
    """Where the bundled `kind` ("playbooks" or "scenarios") live: inside the wheel, or at the
    top of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    return here / "_bundled" / kind


def bundled_files(kind: str) -> dict[str, Path]:
    """Bundled files of `kind` by id (the file stem)."""
    return {p.stem: p for p in sorted(bundled_dir(kind).glob("*.yaml"))}


def bundled_playbooks() -> dict[str, Path]:
    """Bundled playbooks by id (the file stem)."""
    return bundled_files("playbooks")


def resolve_ref(ref: str, kind: str = "playbooks") -> Path:
    """A reference is a path to a file or the id of a bundled playbook (or scenario)."""
    path = Path(ref)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in ref:
        return path
    bundled = bundled_files(kind)
    if ref in bundled:
        return bundled[ref]
    import difflib

    noun = kind.removesuffix("s")
    close = difflib.get_close_matches(ref, list(bundled), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    known = ", ".join(bundled) or "none"
    raise FileNotFoundError(
        f"no {noun} file or bundled {noun} named '{ref}'{hint}; bundled: {known}"
    )


def resolve_playbook(ref: str) -> Path:
    """A playbook reference is a path to a file or the id of a bundled playbook."""
    return resolve_ref(ref, "playbooks")
