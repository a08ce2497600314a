"""Record identity and wire shapes where QBO departs from a plain ``{"Id": "42", ...}``.

Most QBO records carry a numeric ``Id``, a ``SyncToken`` and ``MetaData`` at the top. The real
captures show three departures, which the sandbox serves as QBO does:

- TaxCode: a US company has the pseudo tax codes ``TAX`` and ``NON`` (the ``TaxCodeRef`` values
  of the captures), records whose ids are text. The store keeps a numeric id as an integer and a
  text id as text (SQLite orders integers before text), so ordering by Id gives the numeric ids
  in number order first, then the text ones.
- RecurringTransaction: ``{"Bill": {"Id": "20", "SyncToken": "0", "MetaData": {...}, ...}}``
  (``recurringtransaction_doc.json``): nothing at the top, the identity lives in the transaction
  it wraps.
- ExchangeRate: no ``Id`` at all (``exchangerate_doc.json``); QBO addresses a rate by its
  ``SourceCurrencyCode`` and ``AsOfDate``. The store keys it ``"EUR@2015-07-07"`` (as the lake
  does).

The store keeps every record exactly in its wire shape, so that reads, queries, CDC and batch
serve the stored text unchanged. :func:`flat` gives the write rules (:mod:`operations`) the
record with its identity at the top; :func:`wire` turns such a flat record back into the shape
that is stored and served.
"""

from __future__ import annotations

from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Kind

TEXT_ID_ENTITIES = frozenset({"TaxCode", "ExchangeRate"})
"""Entities whose records may have non-numeric ids (QBO's pseudo tax codes, rate keys)."""

MAX_TEXT_ID = 64
"""The longest text id accepted."""

MAX_NUMERIC_ID = 2**63 - 1
"""The largest numeric id the store can index."""

RECURRING = "RecurringTransaction"
EXCHANGE_RATE = "ExchangeRate"

_IDENTITY = ("Id", "SyncToken", "MetaData")
"""The fields that say which record and which version it is."""

_ENVELOPE = (*_IDENTITY, "domain", "sparse")
"""Server-owned fields a wrapped record carries inside its template, not at the top."""


def store_key(entity: str, record_id: object) -> int | str:
    """The store's key for a record id: an integer when numeric, else the text (where allowed).

    Args:
        entity: The catalogue name of the record's entity.
        record_id: The id as given (``"42"``, ``42``, ``"TAX"``).

    Raises:
        ValueError: If the id is empty, too large, or text for an entity whose ids are numeric.
    """
    text = "" if record_id is None or isinstance(record_id, bool) else str(record_id).strip()
    if text.isascii() and text.isdigit():
        value = int(text)
        if value > MAX_NUMERIC_ID:
            raise ValueError(f"{entity} Id {record_id!r} is too large")
        return value
    if entity in TEXT_ID_ENTITIES and _is_text_id(text):
        return text
    raise ValueError(f"{entity} Id {record_id!r} is not a valid QBO id")


def _is_text_id(text: str) -> bool:
    return 0 < len(text) <= MAX_TEXT_ID and all(c.isprintable() and not c.isspace() for c in text)


def sort_key(record_id: object) -> tuple[int, int, str]:
    """Order ids as the store does: numeric ones by value first, then text ones by text."""
    text = str(record_id)
    if text.isascii() and text.isdigit():
        return (0, int(text), "")
    return (1, 0, text)


def template_key(record: dict[str, Any]) -> str | None:
    """The key of the one transaction a recurring template wraps (``"Bill"``), if exactly one."""
    found = [key for key, value in record.items() if isinstance(value, dict) and _is_txn_key(key)]
    return found[0] if len(found) == 1 else None


def _is_txn_key(key: str) -> bool:
    try:
        ent = entities.get(key)
    except entities.UnknownEntityError:
        return False
    return ent.kind is Kind.TRANSACTION and ent.json_key == key


def rate_key(record: dict[str, Any]) -> str | None:
    """``"<SourceCurrencyCode>@<AsOfDate>"`` of an exchange rate, or None without both."""
    source, as_of = record.get("SourceCurrencyCode"), record.get("AsOfDate")
    if isinstance(source, str) and source.strip() and isinstance(as_of, str) and as_of.strip():
        return f"{source.strip()}@{as_of.strip()}"
    return None


def identity(entity: str, record: dict[str, Any]) -> tuple[Any, Any]:
    """Where a stored record keeps its ``(Id, MetaData)``, whatever its wire shape."""
    if entity == RECURRING and "Id" not in record:
        key = template_key(record)
        if key is not None:
            template = record[key]
            return template.get("Id"), template.get("MetaData")
    if entity == EXCHANGE_RATE and "Id" not in record:
        return rate_key(record), record.get("MetaData")
    return record.get("Id"), record.get("MetaData")


def flat(entity: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``Id``, ``SyncToken`` and ``MetaData`` at the top, for the write rules.

    A wrapped RecurringTransaction gets its template's identity (values already at the top,
    as a client may send them, win); an ExchangeRate gets its rate key as ``Id``. Any other
    record is returned as it is.
    """
    if entity == RECURRING:
        key = template_key(record)
        if key is None:
            return record
        template = record[key]
        lifted = {f: template[f] for f in _IDENTITY if f in template and f not in record}
        return {**record, **lifted} if lifted else record
    if entity == EXCHANGE_RATE and record.get("Id") in (None, ""):
        key = rate_key(record)
        return record if key is None else {**record, "Id": key}
    return record


def wire(entity: str, record: dict[str, Any]) -> dict[str, Any]:
    """The shape QBO serves of a flat record (see :func:`flat`): what the store keeps.

    A RecurringTransaction keeps nothing but its wrapped transaction, which carries the
    record's ``Id``, ``SyncToken`` and ``MetaData``; an ExchangeRate loses its key ``Id``.
    """
    if entity == RECURRING:
        key = template_key(record)
        if key is None:
            return record
        template = {k: v for k, v in record[key].items() if k not in _ENVELOPE}
        template = {
            "domain": record.get("domain", "QBO"),
            "sparse": False,
            **template,
            **{f: record[f] for f in _IDENTITY if f in record},
        }
        outside = {k: v for k, v in record.items() if k not in _ENVELOPE and k != key}
        return {key: template, **outside}
    if entity == EXCHANGE_RATE and "Id" in record and record["Id"] == rate_key(record):
        return {k: v for k, v in record.items() if k != "Id"}
    return record


def record_id(entity: str, record: dict[str, Any]) -> str:
    """The id the store keeps a record under (``"42"``, ``"TAX"``, ``"EUR@2015-07-07"``).

    Raises:
        ValueError: If the record has no valid id where its shape keeps one.
    """
    raw_id, _ = identity(entity, record)
    return str(store_key(entity, raw_id))
