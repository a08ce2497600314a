"""Record-level building blocks of the lake: canonical JSON, content hashes, rows, Arrow schemas.

Everything here is pure and fast (orjson), so that the dlt source can build landing rows in its
extraction threads. FORMAT.md ("Record versions") is the contract for every column.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.lake.errors import InvalidRecordError

DELETED = "Deleted"
"""The ``status`` of a landing row that records a hard delete (as CDC reports it)."""

LANDING_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string()),
        pa.field("id", pa.string()),
        pa.field("sync_token", pa.string()),
        pa.field("last_updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("content_hash", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("active", pa.bool_()),
        pa.field("txn_date", pa.date32()),
        pa.field("total_amt", pa.float64()),
        pa.field("display_name", pa.string()),
        pa.field("blob_sha256", pa.string()),
        pa.field("status", pa.string()),
    ]
)
"""One fetched record (or one CDC deletion, ``status = 'Deleted'``) as the source hands it over."""

VERSION_SCHEMA = pa.schema(
    [pa.field("realm_id", pa.string()), pa.field("snapshot_id", pa.string())]
    + [f for f in LANDING_SCHEMA if f.name != "status"]
)
"""``versions/snapshot=<sid>/<Entity>.parquet``: one row per new or changed record version."""

VERSION_STATISTICS = [name for name in VERSION_SCHEMA.names if name != "payload"]
"""Columns whose min/max a version file keeps. Not ``payload``: its min/max would be two whole
JSON documents (up to 4 KB each) in every file's footer, which no reader can prune on."""

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string()),
        pa.field("id", pa.string()),
        pa.field("op", pa.string()),
        pa.field("content_hash", pa.string()),
    ]
)
"""``manifests/snapshot=<sid>/<Entity>.parquet``: a snapshot's manifest delta against its parent."""

LIVE_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("entity", pa.string()),
        pa.field("id", pa.string()),
        pa.field("content_hash", pa.string()),
    ]
)
"""A rebuilt manifest: every live ``(entity, id, content_hash)`` of a snapshot."""

UPSERT = "upsert"
DELETE = "delete"

_DISPLAY_FIELDS = ("DisplayName", "Name", "FullyQualifiedName", "DocNumber")
_BIG_INT = re.compile(rb"\d{20}")
"""orjson turns integers beyond 64 bits into floats; such input takes the exact stdlib path."""


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def canonical_bytes(obj: Any) -> bytes:
    """The canonical JSON encoding of ``obj`` as UTF-8 bytes (see :func:`canonical_json`).

    Raises:
        InvalidRecordError: If ``obj`` holds something JSON cannot represent.
    """
    try:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise InvalidRecordError(f"record is not representable as JSON: {exc}") from None
    try:  # integers beyond 64 bits: the stdlib keeps them exact
        text = json.dumps(
            obj,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"record is not representable as JSON: {exc}") from None
    return text.encode()


def canonical_json(obj: Any) -> str:
    r"""Encode ``obj`` as canonical JSON text: the same value always gives the same text.

    Object keys sorted at every level, no insignificant whitespace, non-ASCII kept as UTF-8
    (no ``\u`` escapes), integers as integers and decimals in their shortest round-trip form.

    Raises:
        InvalidRecordError: If ``obj`` holds something JSON cannot represent.
    """
    return canonical_bytes(obj).decode()


def load_json(raw: bytes | str) -> Any:
    """Parse JSON text exactly (integers beyond 64 bits stay integers).

    Raises:
        InvalidRecordError: If ``raw`` is not valid JSON.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        if _BIG_INT.search(data):
            return json.loads(data)
        return orjson.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None


def _hash_hex(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _hashable(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    if entity.volatile_fields and any(f in payload for f in entity.volatile_fields):
        return {k: v for k, v in payload.items() if k not in entity.volatile_fields}
    return payload


def content_hash(entity: Entity, payload: dict[str, Any]) -> str:
    """BLAKE2b-128 (32 hex chars) of the canonical JSON without the entity's volatile fields.

    Raises:
        InvalidRecordError: If the payload is not a JSON object.
    """
    if not isinstance(payload, dict):
        raise InvalidRecordError(
            f"{entity.name} record must be a JSON object, got {type(payload).__name__}"
        )
    return _hash_hex(canonical_bytes(_hashable(entity, payload)))


def record_id(entity: Entity, payload: dict[str, Any]) -> str:
    """The lake's key of a record: QBO's ``Id``, or a stable key where QBO's shape has none.

    - A singleton (CompanyInfo, Preferences) is keyed by its entity name.
    - A RecurringTransaction is ``{"Bill": {..., "Id": "20"}}``: the Id of the transaction it
      wraps (a top-level ``Id``, when present, wins, as in restore's ``version_of``).
    - An ExchangeRate has no ``Id`` on the wire (QBO keys it by currency and date):
      ``"<SourceCurrencyCode>@<AsOfDate>"`` (``EUR@2015-07-07``); a real ``Id`` is kept.

    Raises:
        InvalidRecordError: If a non-singleton record has no usable ``Id`` (nor key fields).
    """
    if entity.is_singleton:
        return entity.name
    raw = payload.get("Id")
    if raw is None and entity.name == "RecurringTransaction":
        raw = _wrapped_id(payload)
    if raw is None and entity.name == "ExchangeRate":
        return _exchange_rate_key(payload)
    if not _usable_id(raw):
        raise InvalidRecordError(f"{entity.name} record has no usable Id: {raw!r}")
    return str(raw)


def _version_source(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """The object holding a record's SyncToken and MetaData.

    That is the payload itself, except for a RecurringTransaction shaped as QBO sends it
    (``{"Bill": {...}}``), whose version lives in the transaction it wraps.
    """
    if entity.name != "RecurringTransaction" or "SyncToken" in payload:
        return payload
    for key, value in payload.items():
        if isinstance(value, dict) and _is_transaction_key(key):
            return value
    return payload


def _usable_id(raw: Any) -> bool:
    return not isinstance(raw, bool) and isinstance(raw, str | int) and str(raw).strip() != ""


def _wrapped_id(payload: dict[str, Any]) -> Any:
    """The Id of the one transaction a recurring template wraps (None when it has none)."""
    found = [
        value.get("Id")
        for key, value in payload.items()
        if isinstance(value, dict) and _is_transaction_key(key)
    ]
    if len(found) != 1:
        raise InvalidRecordError(
            "RecurringTransaction record must wrap exactly one transaction "
            f'({{"Bill": {{...}}}}), found {len(found)}'
        )
    return found[0]


def _is_transaction_key(key: str) -> bool:
    try:
        wrapped = entities.get(key)
    except entities.UnknownEntityError:
        return False
    return wrapped.kind is entities.Kind.TRANSACTION and wrapped.json_key == key


def _exchange_rate_key(payload: dict[str, Any]) -> str:
    """``"<SourceCurrencyCode>@<AsOfDate>"``: how QBO addresses an exchange rate."""
    parts = [payload.get("SourceCurrencyCode"), payload.get("AsOfDate")]
    if not all(isinstance(p, str) and p.strip() for p in parts):
        raise InvalidRecordError(
            "ExchangeRate record has no Id and no SourceCurrencyCode and AsOfDate to key it: "
            f"{parts[0]!r}, {parts[1]!r}"
        )
    return f"{parts[0]}@{parts[1]}"


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime (naive ones are taken as UTC), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _display_name(payload: dict[str, Any]) -> str | None:
    for key in _DISPLAY_FIELDS:
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def landing_row(
    entity: Entity, payload: dict[str, Any], *, blob_sha256: str | None = None
) -> dict[str, Any]:
    """Build the landing row (``LANDING_SCHEMA``) of one fetched record.

    The payload is kept whole as canonical JSON; the typed columns are conveniences extracted
    from it (null when the field is absent or not of the expected shape).

    Args:
        entity: The record's catalogue entry.
        payload: The record exactly as QBO returned it (one element of the response list).
        blob_sha256: For an Attachable, the SHA-256 of its downloaded file in the lake.

    Raises:
        InvalidRecordError: If the payload is not an object, has no ``Id``, or is not JSON.
    """
    if not isinstance(payload, dict):
        raise InvalidRecordError(
            f"{entity.name} record must be a JSON object, got {type(payload).__name__}"
        )
    key = record_id(entity, payload)
    body = canonical_bytes(payload)
    hashable = _hashable(entity, payload)
    digest = _hash_hex(body if hashable is payload else canonical_bytes(hashable))
    source = _version_source(entity, payload)
    meta = source.get("MetaData")
    sync_token = source.get("SyncToken")
    active = source.get("Active")
    if active is None and isinstance(source.get("RecurringInfo"), dict):
        active = source["RecurringInfo"].get("Active")
    return {
        "entity": entity.name,
        "id": key,
        "sync_token": None if sync_token is None else str(sync_token),
        "last_updated_at": parse_timestamp(meta.get("LastUpdatedTime"))
        if isinstance(meta, dict)
        else None,
        "content_hash": digest,
        "payload": body.decode(),
        "active": active if isinstance(active, bool) else None,
        "txn_date": _date(source.get("TxnDate")),
        "total_amt": _amount(source.get(entity.amount_field)) if entity.amount_field else None,
        "display_name": _display_name(source) or _display_name(source.get("RecurringInfo") or {}),
        "blob_sha256": blob_sha256,
        "status": None,
    }


def deleted_row(entity: Entity, record_id: str, last_updated_at: str | None) -> dict[str, Any]:
    """Build the landing row of a hard delete (CDC's ``status: Deleted`` entry).

    Args:
        entity: The deleted record's catalogue entry.
        record_id: Its QBO ``Id``.
        last_updated_at: The deletion's ``MetaData.LastUpdatedTime``, if given.

    Raises:
        InvalidRecordError: If the id is empty.
    """
    if record_id is None or str(record_id).strip() == "":
        raise InvalidRecordError(f"{entity.name} deletion has no Id")
    row = dict.fromkeys(LANDING_SCHEMA.names)
    row.update(
        entity=entity.name,
        id=str(record_id),
        last_updated_at=parse_timestamp(last_updated_at),
        status=DELETED,
    )
    return row


def rows_to_batch(rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Turn landing rows (from :func:`landing_row` / :func:`deleted_row`) into a record batch."""
    return pa.RecordBatch.from_pylist(list(rows), schema=LANDING_SCHEMA)


def key_digest(ids: Iterable[str], hashes: Iterable[str]) -> str:
    r"""The order-independent checksum of a manifest (FORMAT.md ``digest``), 16 hex chars.

    The sum modulo 2**64 of BLAKE2b-64 (big-endian) over ``id + "\x1f" + content_hash``.
    """
    total = 0
    blake = hashlib.blake2b
    for key, digest in zip(ids, hashes, strict=True):
        total += int.from_bytes(blake(f"{key}\x1f{digest}".encode(), digest_size=8).digest())
    return f"{total % (1 << 64):016x}"


def table_digest(ids: pa.Array | pa.ChunkedArray, hashes: pa.Array | pa.ChunkedArray) -> str:
    """:func:`key_digest` over Arrow columns, converting a slice at a time (bounded memory)."""
    total = 0
    step = 65_536
    for start in range(0, len(ids), step):
        part = key_digest(ids.slice(start, step).to_pylist(), hashes.slice(start, step).to_pylist())
        total += int(part, 16)
    return f"{total % (1 << 64):016x}"
