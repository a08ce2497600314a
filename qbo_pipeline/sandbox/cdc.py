"""Change Data Capture: ``GET /cdc?entities=A,B&changedSince=<ISO-8601>``.

Per entity, the records whose ``LastUpdatedTime`` is at or after ``changedSince``, and the
hard-deleted ones as ``{"domain": "QBO", "status": "Deleted", "Id", "MetaData"}``; at most 1000
objects in one response, the oldest changes first. ``changedSince`` may look back at most 30 days
on the realm's clock, and entities the catalogue marks ``cdc=False`` are refused, both with the
ValidationFault QBO uses (code 500 "Unsupported Operation", see :mod:`faults`).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import CDC_LOOKBACK_DAYS, CDC_MAX_OBJECTS
from qbo_pipeline.sandbox import faults, shapes
from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.store import SandboxStore


def parse_changed_since(text: str | None) -> datetime:
    """Parse ``changedSince``: an ISO-8601 time (a date alone means company midnight).

    Raises:
        SandboxFault: 2020 when missing, a ValidationFault when malformed.
    """
    if not text:
        raise faults.required_missing("changedSince")
    raw = text.strip()
    try:
        if len(raw) == 10:
            return datetime.fromisoformat(raw).replace(tzinfo=COMPANY_TZ)
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=COMPANY_TZ)
        return when
    except ValueError:
        raise faults.request_error(
            f"changedSince {text!r} is not an ISO-8601 date-time such as 2024-01-31T09:00:00-08:00"
        ) from None


def parse_entities(text: str | None) -> list[entities.Entity]:
    """Parse ``entities=A,B``; every one must exist and be covered by CDC.

    Raises:
        SandboxFault: 2020 when missing, a ValidationFault naming unknown or uncovered ones.
    """
    if not text or not text.strip():
        raise faults.required_missing("entities")
    found: list[entities.Entity] = []
    unknown: list[str] = []
    uncovered: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        try:
            ent = entities.get(name)
        except entities.UnknownEntityError:
            unknown.append(name)
            continue
        if not ent.cdc:
            uncovered.append(ent.name)
        elif ent not in found:
            found.append(ent)
    if unknown:
        raise faults.request_error(f"CDC: unknown entities: {', '.join(unknown)}")
    if uncovered:
        raise faults.cdc_uncovered(uncovered)
    if not found:
        raise faults.required_missing("entities")
    return found


def change_data_capture(
    store: SandboxStore, realm_id: str, entity_list: str | None, changed_since: str | None
) -> dict[str, Any]:
    """Answer a CDC request: the ``CDCResponse`` envelope without ``time``.

    Raises:
        SandboxFault: When a parameter is missing, malformed, too old or names an uncovered
            entity.
    """
    ents = parse_entities(entity_list)
    since = parse_changed_since(changed_since)
    now = store.now(realm_id)
    oldest = now - timedelta(days=CDC_LOOKBACK_DAYS)
    if since < oldest:
        raise faults.cdc_too_old(str(changed_since), CDC_LOOKBACK_DAYS)
    streams = []
    for order, ent in enumerate(ents):
        rows = store.changes_since(realm_id, ent.name, since, CDC_MAX_OBJECTS)
        streams.append(
            [(row[0], order, shapes.sort_key(row[1]), row[1], row[2], bool(row[3])) for row in rows]
        )
    picked: dict[int, list[Any]] = {i: [] for i in range(len(ents))}
    for n, (_, order, id_order, id_num, text, deleted) in enumerate(heapq.merge(*streams)):
        if n >= CDC_MAX_OBJECTS:
            break
        if deleted:
            item = {
                "domain": "QBO",
                "status": "Deleted",
                "Id": str(id_num),
                "MetaData": {"LastUpdatedTime": text},
            }
        else:
            item = orjson.loads(text)
        picked[order].append((id_order, item))
    responses: list[dict[str, Any]] = []
    for order, ent in enumerate(ents):
        items = [item for _, item in sorted(picked[order], key=lambda pair: pair[0])]
        if items:
            responses.append({ent.json_key: items, "startPosition": 1, "maxResults": len(items)})
        else:
            responses.append({})
    return {"CDCResponse": [{"QueryResponse": responses}]}
