"""The QBO dlt source: one resource per entity of the catalogue.

Like dlt's verified sources: this module holds the ``@dlt.source`` and its resources,
``helpers.py`` the API work (paging, CDC chunking, counts, landing rows) and ``settings.py`` the
constants. Each resource yields Arrow batches in the lake's landing schema (the record exactly as
QBO returned it, as canonical JSON, with its content hash and a few typed columns), which dlt stages
as Parquet; :mod:`qbo_pipeline.backup` then commits the staged run into the lake as one snapshot.

The incremental cursor is the lake, not dlt state: an incremental run asks CDC for what changed
since the parent snapshot's start on QBO's clock. A run that fails before its commit therefore
leaves no cursor ahead of the data, and the next run reads the same changes again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import dlt
import pyarrow as pa
from dlt.extract.resource import DltResource

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.lake import records
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sources.qbo.helpers import (
    ExtractionPlan,
    ProgressCallback,
    changed_records,
    page_records,
    table_name,
    to_batches,
)
from qbo_pipeline.sources.qbo.settings import PAGED_ENTITIES_AT_ONCE

BlobFor = Callable[[dict[str, Any]], str | None]
"""Given an Attachable payload, store its file and return the blob's SHA-256 (or None)."""


@dlt.source(name="qbo", max_table_nesting=0)
def qbo_source(
    client: QBOClient,
    plan: ExtractionPlan,
    attachment_blob: BlobFor | None = None,
    on_progress: ProgressCallback | None = None,
) -> Iterator[DltResource]:
    """A dlt source with one resource per entity the plan reads.

    Args:
        client: An authorised client for one realm.
        plan: Which entities to read in full, which from CDC (see ``helpers.ExtractionPlan``).
        attachment_blob: Stores an Attachable's file and returns its SHA-256
            (``helpers.AttachmentFetcher``); without it Attachables land without their files.
        on_progress: Called with (entity name, records fetched) after every page.

    Yields:
        One resource per entity, named after its table (``credit_card_payment``).
    """

    def blob_for(entity: Entity) -> BlobFor | None:
        return attachment_blob if entity.name == "Attachable" else None

    lanes = threading.BoundedSemaphore(PAGED_ENTITIES_AT_ONCE)

    def paged(entity: Entity, since: datetime | None) -> DltResource:
        # Pages become landing batches in the threads that fetch them, except Attachables,
        # whose files are downloaded a page at a time as they are landed.
        landed = blob_for(entity) is None
        if since is None:
            pages = page_records(client, entity, landed=landed)
        else:
            pages = changed_records(client, entity, since, landed=landed)
        batches = to_batches(entity, pages, on_progress=on_progress, blob_for=blob_for(entity))
        return _resource(entity, _in_lane(lanes, batches))

    for entity in plan.full:
        yield paged(entity, None)
    for entity in plan.changed:
        if plan.since is None:
            raise ValueError("an extraction plan with changed entities needs its since time")
        yield paged(entity, plan.since)
    for name, changed in (plan.cdc | plan.complete).items():
        if not changed:
            continue  # nothing to land: no resource (the entity carries over or is empty)
        entity = entities.get(name)
        yield _resource(
            entity,
            to_batches(entity, _taken(changed), on_progress=on_progress, blob_for=blob_for(entity)),
        )
    for name, payload in plan.singletons.items():
        entity = entities.get(name)
        yield _resource(entity, to_batches(entity, [[payload]], on_progress=on_progress))


def _taken(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The records the plan read while planning, as one page, taken out of the plan.

    The plan's list is emptied as the page is handed over, so the parsed records are freed
    once landed instead of staying with the plan for the rest of the run (a small company
    is mostly read this way). The plan keeps the entity's name, for its modes.
    """
    page = list(records)
    records.clear()
    yield page


def _in_lane(
    lanes: threading.BoundedSemaphore, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch | None]:
    """Page an entity only while it holds one of the run's lanes.

    dlt starts every resource at once (round robin), and each paged entity keeps its own pages
    in flight: without lanes, every paged entity of the company holds parsed pages at the same
    time. A resource waiting for a lane yields None (dlt skips it), so it never blocks one of
    dlt's workers.
    """
    while not lanes.acquire(timeout=0.05):
        yield None
    try:
        yield from batches
    finally:
        batches.close()  # type: ignore[attr-defined]
        lanes.release()


def _resource(entity: Entity, data: Iterator[pa.RecordBatch]) -> DltResource:
    return dlt.resource(
        data,
        name=table_name(entity),
        primary_key="id",
        write_disposition="append",
        file_format="parquet",
        parallelized=True,
        columns={f.name: {"nullable": f.nullable} for f in records.LANDING_SCHEMA},
    )
