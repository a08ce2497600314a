"""Shared helpers of the lake tests: real QBO payload shapes and snapshot shortcuts."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import RealmLake, SnapshotInfo

SAMPLES = Path(__file__).with_name("lake_samples.json")
"""Payloads cut from tests/fixtures/samples (real QBO sandbox wire captures)."""

T0 = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def samples() -> dict[str, list[dict[str, Any]]]:
    """A fresh deep copy of the sample payloads by entity."""
    return copy.deepcopy(json.loads(SAMPLES.read_text()))


def batch(entity: str, payloads: Iterable[dict[str, Any]]) -> pa.RecordBatch:
    """Landing rows of payloads as one batch."""
    ent = entities.get(entity)
    return records.rows_to_batch([records.landing_row(ent, p) for p in payloads])


def day(n: int) -> datetime:
    """The server time of the n-th daily snapshot."""
    return T0 + timedelta(days=n)


def take(
    realm: RealmLake,
    data: Mapping[str, list[dict[str, Any]]],
    *,
    when: datetime,
    mode: str = "full",
    deleted: Mapping[str, list[str]] | None = None,
    carry: Iterable[str] = (),
    counts: Mapping[str, int | None] | None = None,
) -> SnapshotInfo:
    """Write and commit one snapshot; counts default to the records given (full mode)."""
    kind = "full" if mode == "full" else "incremental"
    with realm.begin(kind=kind, server_time=when, company_name="Craig's") as writer:
        for name, payloads in data.items():
            batches = [batch(name, payloads)]
            gone = (deleted or {}).get(name)
            if gone:
                ent = entities.get(name)
                rows = [records.deleted_row(ent, rid, None) for rid in gone]
                batches.append(records.rows_to_batch(rows))
            if counts is not None and name in counts:
                qbo_count = counts[name]
            else:
                qbo_count = len(payloads) if mode == "full" else None
            writer.write_entity(name, batches, mode=mode, qbo_count=qbo_count)
        for name in carry:
            writer.write_entity(name, [], mode="cdc", qbo_count=None)
        return writer.commit(api_calls=3)


def canon(payloads: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Payloads keyed by Id (or entity name for singletons) as canonical JSON."""
    out = {}
    for p in payloads:
        out[str(p.get("Id"))] = records.canonical_json(p)
    return out


def rebuilt(realm: RealmLake, snapshot_id: str, entity: str) -> dict[str, str]:
    """A snapshot's payloads of an entity, keyed like :func:`canon`."""
    return canon(realm.iter_payloads(snapshot_id, entity))


@contextmanager
def requests_sent(realm: RealmLake) -> Iterator[list[tuple[str, str]]]:
    """The (method, URL) of every request the realm's S3 client sends in the block."""
    client = realm.fs.fs.s3
    sent: list[tuple[str, str]] = []

    def note(request: object, **_: object) -> None:
        sent.append((str(getattr(request, "method", "")), str(getattr(request, "url", ""))))

    client.meta.events.register("before-send.s3", note)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-send.s3", note)


def visible_files(root: Path) -> list[str]:
    """Every file under a lake folder, relative, sorted (ignoring the lock guard)."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "guard" not in p.name
    )
