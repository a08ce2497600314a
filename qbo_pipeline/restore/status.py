"""The apply status of a plan as an append-only log, ``status.jsonl``, folded on read.

Apply appends one line per event, fsync'd, so the cost of a step is one short append whatever the
plan's size (rewriting a whole status file after every step made an apply quadratic):

```
{"event": "run", "run": 2, "step_count": 40, "at": ...}
{"event": "step", "number": 7, "state": "done", "attempts": 1, "new_id": "1042", "at": ...,
 "id_map": {"Invoice:130": "1042"}, "records": {"Invoice:1042": {"sync_token": "0", ...}}}
```

A step line carries the step's whole entry and the id-map and record changes that step made, so
the step and what it learned are durable together. A ``batch`` line, written before a batch
request is sent, names the steps it carries and its request id, so a rerun after a kill resends
that same batch and QBO replays its answer instead of creating the records twice. Reading folds
the lines in order into the plan's status (``plan_id``, ``runs``, ``steps`` with every step
from 1 to ``step_count``, ``id_map``, ``records``, ``batches``, ``updated_at``). A crash
mid-line loses only that line; the write it described is replayed by its request id on the
next run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from qbo_pipeline.restore import jsonl

NOT_STARTED = "not_started"


def now() -> str:
    """The UTC time as ISO-8601 text."""
    return datetime.now(UTC).isoformat()


def run_line(run: int, step_count: int) -> dict[str, Any]:
    """The line that opens an apply run."""
    return {"event": "run", "run": run, "step_count": step_count, "at": now()}


def step_line(
    number: int,
    entry: dict[str, Any],
    *,
    id_map: dict[str, str] | None = None,
    records: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The line that records a step's new entry and what it added to the id map and records."""
    line: dict[str, Any] = {"event": "step", "number": number, **entry}
    if id_map:
        line["id_map"] = id_map
    if records:
        line["records"] = records
    return line


def batch_line(request_id: str, numbers: list[int]) -> dict[str, Any]:
    """The line written before a batch request: its request id and the steps it carries."""
    return {"event": "batch", "request_id": request_id, "steps": numbers, "at": now()}


def empty(plan_id: str) -> dict[str, Any]:
    """The status of a plan no apply has touched."""
    return {
        "plan_id": plan_id,
        "runs": 0,
        "steps": {},
        "id_map": {},
        "records": {},
        "batches": {},
    }


def fold(plan_id: str, lines: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The status the lines describe, or None when they describe nothing.

    Steps from 1 to the latest run's ``step_count`` that no line mentions are ``not_started``.
    """
    status: dict[str, Any] | None = None
    step_count = 0
    for line in lines:
        if status is None:
            status = empty(plan_id)
        event = line.get("event")
        if event == "run":
            status["runs"] = max(int(status.get("runs", 0)), int(line.get("run", 0)))
            step_count = max(step_count, int(line.get("step_count", 0)))
        elif event == "step":
            entry = {
                k: v
                for k, v in line.items()
                if k not in ("event", "number", "id_map", "records") and v is not None
            }
            status["steps"][str(line["number"])] = entry
            status["id_map"].update(line.get("id_map") or {})
            status["records"].update(line.get("records") or {})
        elif event == "batch":
            numbers = [int(n) for n in line.get("steps") or []]
            sent = {"request_id": line.get("request_id"), "steps": numbers}
            status.setdefault("batches", {}).update({str(n): sent for n in numbers})
        else:
            continue
        status["updated_at"] = line.get("at")
    if status is None:
        return None
    steps = status.setdefault("steps", {})
    for number in range(1, step_count + 1):
        steps.setdefault(str(number), {"state": NOT_STARTED, "attempts": 0})
    status.setdefault("id_map", {})
    status.setdefault("records", {})
    status.setdefault("batches", {})
    return status


class StatusLog:
    """The ``status.jsonl`` of one plan (a local path or an fsspec URL)."""

    def __init__(self, location: str, *, plan_id: str) -> None:
        self.location = location
        self.plan_id = plan_id

    def append(self, *lines: dict[str, Any]) -> None:
        """Append lines in one durable write."""
        jsonl.append_lines(self.location, list(lines))

    def read(self) -> dict[str, Any] | None:
        """The folded status, or None before any apply."""
        return fold(self.plan_id, jsonl.read_lines(self.location))
