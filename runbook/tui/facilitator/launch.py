"""`runbook exercise facilitate RUN` from a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from runbook.exitcodes import OK, USAGE
from runbook.termsafe import printable
from runbook.tui.facilitator.app import FacilitatorApp


def run_facilitator(journal: Path, operator: str) -> int:
    app = FacilitatorApp(journal, operator)
    app.run()
    if app.error:
        print(f"runbook: {printable(app.error)}", file=sys.stderr)
        return USAGE
    print(f"after-action report: runbook exercise report {printable(journal)} -o aar.html")
    return OK
