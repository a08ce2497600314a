"""Seed a sandbox company from a folder of JSON files, so users can load their own data.

Every ``*.json`` file of the folder is read: query responses (``{"QueryResponse": {"Invoice":
[...]}}``), single-entity reads (``{"Invoice": {...}, "time": ...}``), upload responses
(``AttachableResponse``), batch responses (``BatchItemResponse``) and CDC responses
(``CDCResponse``). Records keep their ids. When one record appears in several files the newest
``MetaData.LastUpdatedTime`` wins. Entities the catalogue does not know are skipped with a warning
naming them; records that cannot be stored (no valid Id) are skipped with a warning too. Records
keep their wire shape: a RecurringTransaction its wrapped transaction (which carries the Id), an
ExchangeRate no Id at all (it is keyed by currency and date), a TaxCode a text id (``TAX``).

Every file is parsed before anything is written: a malformed file is refused with its name and
nothing of the folder lands in the store.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.sandbox import shapes
from qbo_pipeline.sandbox.store import SandboxStore, parse_qbo_time

logger = logging.getLogger(__name__)

_ENVELOPE_KEYS = frozenset({"time", "startPosition", "maxResults", "totalCount", "status"})


def _records(document: Any) -> Iterator[tuple[str, Any]]:
    """``(json key, record)`` for every record a QBO response document holds."""
    if not isinstance(document, dict):
        return
    query = document.get("QueryResponse")
    if isinstance(query, dict):
        for key, value in query.items():
            if key not in _ENVELOPE_KEYS and isinstance(value, list):
                yield from ((key, record) for record in value)
    for key in ("AttachableResponse", "BatchItemResponse"):
        for item in document.get(key) or ():
            yield from _records(item)
    for cdc in document.get("CDCResponse") or ():
        for block in (cdc or {}).get("QueryResponse") or ():
            yield from _records({"QueryResponse": block})
    for key, value in document.items():
        if key in _ENVELOPE_KEYS or key in ("QueryResponse", "Fault", "fault", "bId"):
            continue
        if key in ("AttachableResponse", "BatchItemResponse", "CDCResponse"):
            continue
        if isinstance(value, dict):
            yield key, value


def _storable(entity: entities.Entity, record: dict[str, Any]) -> str | None:
    """The id the store keeps the record under, or None when it cannot be kept."""
    if record.get("status") == "Deleted":
        return None
    raw_id, meta = shapes.identity(entity.name, record)
    try:
        key = shapes.store_key(entity.name, raw_id)
    except ValueError:
        return None
    if not isinstance(meta, dict) or not meta.get("LastUpdatedTime"):
        return None
    return str(key)


def _updated(entity: entities.Entity, record: dict[str, Any]) -> datetime:
    _, meta = shapes.identity(entity.name, record)
    try:
        return parse_qbo_time(str(meta["LastUpdatedTime"]))
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def read_folder(folder: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Parse every JSON file of a folder: ``{entity: {id: record}}``.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If a file is not valid JSON (the message names the file).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"seed folder {str(root)!r} does not exist or is not a folder")
    found: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    unknown: set[str] = set()
    unstorable: dict[str, int] = defaultdict(int)
    for path in sorted(root.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"seed file {path.name!r} is not valid JSON: {exc}") from None
        for key, record in _records(document):
            try:
                entity = entities.get(key)
            except entities.UnknownEntityError:
                unknown.add(key)
                continue
            stored = _storable(entity, record) if isinstance(record, dict) else None
            if stored is None:
                unstorable[entity.name] += 1
                continue
            current = found[entity.name].get(stored)
            if current is None or _updated(entity, record) >= _updated(entity, current):
                found[entity.name][stored] = record
    if unknown:
        logger.warning("seed: ignoring entities the catalogue does not know: %s", sorted(unknown))
    for entity_name, skipped in sorted(unstorable.items()):
        logger.warning(
            "seed: skipped %d %s record(s) without a valid Id or MetaData.LastUpdatedTime",
            skipped,
            entity_name,
        )
    return dict(found)


def seed_from_folder(
    store: SandboxStore, realm_id: str, folder: str | Path, *, company_name: str | None = None
) -> dict[str, int]:
    """Load every record of a folder of QBO JSON files into a realm (created if needed).

    Args:
        store: The sandbox store.
        realm_id: The company to load into.
        folder: The folder of ``*.json`` files.
        company_name: The name of a new realm; defaults to the seeded CompanyInfo's name.

    Returns:
        How many records were loaded per entity.

    Raises:
        FileNotFoundError: If the folder does not exist.
        ValueError: If a file is not valid JSON; nothing is written then.
    """
    found = read_folder(folder)
    if not store.has_realm(realm_id):
        info = next(iter(found.get("CompanyInfo", {}).values()), {})
        name = company_name or str(info.get("CompanyName") or f"Seeded company {realm_id}")
        newest = [
            _updated(entities.get(name), r)
            for name, records in found.items()
            for r in records.values()
        ]
        clock = max(newest, default=datetime.now(UTC)) + timedelta(hours=1)
        store.create_realm(realm_id, name, clock_start=max(clock, datetime.now(UTC)))
    counts: dict[str, int] = {}
    with store.transaction():
        for entity in entities.CATALOGUE:
            records = found.get(entity.name)
            if records:
                ordered = [records[k] for k in sorted(records, key=shapes.sort_key)]
                counts[entity.name] = store.bulk_load(realm_id, entity.name, ordered)
    return counts
