"""Where the bundled playbooks are, and what a playbook reference names (no validation here,
so the app can find a playbook before it imports the models)."""

from __future__ import annotations

from pathlib import Path


def bundled_dir() -> Path:
    """Where the bundled playbooks live: inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / "playbooks", here.parent / "playbooks"):
        if candidate.is_dir():
            return candidate
    return here / "_bundled" / "playbooks"


def bundled_playbooks() -> dict[str, Path]:
    """Bundled playbooks by id (the file stem)."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.yaml"))}


def resolve_playbook(ref: str) -> Path:
    """A playbook reference is a path to a file or the id of a bundled playbook."""
    path = Path(ref)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in ref:
        return path
    bundled = bundled_playbooks()
    if ref in bundled:
        return bundled[ref]
    import difflib

    close = difflib.get_close_matches(ref, list(bundled), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    known = ", ".join(bundled) or "none"
    raise FileNotFoundError(
        f"no playbook file or bundled playbook named '{ref}'{hint}; bundled: {known}"
    )
