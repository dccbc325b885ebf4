"""The timeline exports: JSON Lines for scripts that push items into an incident tool, and the
CSV of Dispatch's timeline export.

Each JSON object carries `idempotency_key` = the journal entry's hash: pushing the same record
twice (or two overlapping records) creates no duplicate, in any tool that dedupes on a key
(incident.io and Rootly take one; FireHydrant, Dispatch and TheHive can keep it as an external
id or in the details). Dry-run events are included, marked `details.mode = "dry-run"` and titled
"[dry run] ...".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from runbook.record.merge import Record
from runbook.redact import Redactor
from runbook.termsafe import printable

CSV_HEADER = ("Time (in UTC)", "Description", "Owner")
VISIBILITY = "internal"  # nothing in a remediation journal is meant for a public status page
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def timeline_objects(record: Record) -> Iterator[dict[str, Any]]:
    """One object per event (live and dry runs), in time order, redacted."""
    redact = Redactor()
    for event in record.events:
        dry = event["dry_run"]
        yield redact(
            {
                "ts": event["ts"],
                "end_ts": event["end_ts"],
                "title": ("[dry run] " if dry else "") + event["title"],
                "description": event["description"],
                "actor": event["operator"],
                "source": f"{event['host']}:{event['target']}",
                "type": event["type"],
                "visibility": VISIBILITY,
                "refs": [
                    {"type": "journal", "value": f"{event['journal']}#{event['seq']}"},
                    *event["refs"],
                ],
                "details": {
                    "host": event["host"],
                    "target": event["target"],
                    "run": event["run"],
                    "mode": "dry-run" if dry else "live",
                    "journal": event["journal"],
                    "seq": event["seq"],
                    "event": event["event"],
                    "step": event["step"] or None,
                    "outcome": event["outcome"] or None,
                    "marker": event["marker"] or None,
                    "data": event["data"],
                },
                "idempotency_key": event["hash"],
            }
        )


def to_jsonl(record: Record) -> str:
    return "".join(json.dumps(obj) + "\n" for obj in timeline_objects(record))


def _cell(text: str) -> str:
    """One line, control characters shown escaped; a leading formula character neutralised (a
    spreadsheet would otherwise run `=...` from a journal as a formula)."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(record: Record) -> str:
    """`Time (in UTC),Description,Owner`, as Dispatch exports (and imports) a timeline."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    rows = sorted(timeline_objects(record), key=lambda o: (o["ts"], o["end_ts"]))
    for obj in rows:
        where = obj["details"]
        text = f"[{where['host']} {where['target']}] {obj['title']}"
        if obj["description"]:
            text += f": {obj['description']}"
        writer.writerow([obj["ts"], _cell(text), _cell(obj["actor"])])
    return out.getvalue()
