"""The QBO source's working parts: extraction plans, CDC chunking, counts, landing batches.

Everything here talks to QBO through :class:`qbo_pipeline.qbo.http.QBOClient` and turns what comes
back into Arrow batches of the lake's landing schema (``qbo_pipeline.lake.records``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.entities import CDC_MAX_OBJECTS, Entity
from qbo_pipeline.lake import records
from qbo_pipeline.qbo import query
from qbo_pipeline.qbo.faults import QBOError, QueryError, TruncationError, fault_from_object
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sources.qbo.settings import (
    ATTACHMENT_DOWNLOADS_IN_FLIGHT,
    CDC_GROUP_BUDGET,
    PAGE_SIZE,
    PAGES_IN_FLIGHT,
    QUERIES_PER_BATCH,
    ROWS_PER_BATCH,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]
"""Called with (entity name, records just fetched)."""

BlobStore = Callable[[bytes], str]
"""Stores attachment bytes content-addressed and returns their SHA-256."""


def table_name(entity: Entity) -> str:
    """The dlt table name of an entity: ``CreditCardPayment`` -> ``credit_card_payment``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", entity.name).lower()


@dataclass
class ExtractionPlan:
    """What one snapshot run reads, and how.

    Attributes:
        full: Entities read in full (every page).
        cdc: Entities read from Change Data Capture, with the changed records CDC returned
            (``status: Deleted`` entries included).
        changed: Entities read by query since a time (``MetaData.LastUpdatedTime >=``): those CDC
            does not cover, and those whose changes overflow CDC's cap. A query cannot see
            deletions, so the backup reconciles these with COUNT(*) and scans their ids when
            the counts disagree.
        since: The time ``changed`` entities are read from.
        complete: Small entities read in full through batched queries while planning (every
            record is here: mode ``full``).

        The records of ``cdc`` and ``complete`` are taken out (their lists emptied, the names
        kept) as the source lands them, so they are not held for the rest of the run.
        reconcile: Entities whose deletions must be found by reconciling with COUNT(*) (those
            read by change time, whether paged or batched).
        known_deletes: Deletions already seen for ``changed`` entities (from a capped CDC answer).
        singletons: CompanyInfo and Preferences as read (by GET) while planning.
        known_blobs: For Attachables of the parent snapshot, ``Id -> (content hash, blob sha256)``,
            so an unchanged attachment is not downloaded again.
        cdc_calls: API calls spent planning (the CDC requests).
    """

    full: list[Entity] = field(default_factory=list)
    cdc: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    changed: list[Entity] = field(default_factory=list)
    since: datetime | None = None
    complete: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reconcile: set[str] = field(default_factory=set)
    known_deletes: dict[str, set[str]] = field(default_factory=dict)
    singletons: dict[str, dict[str, Any]] = field(default_factory=dict)
    known_blobs: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    cdc_calls: int = 0

    def modes(self) -> dict[str, str]:
        """Entity name -> ``full`` or ``cdc`` for every entity the plan reads."""
        out = {e.name: "full" for e in self.full}
        out |= {name: "cdc" for name in self.cdc}
        out |= {e.name: "cdc" for e in self.changed}
        out |= dict.fromkeys(self.complete, "full")
        out |= dict.fromkeys(self.singletons, "full")
        return out


def fetch_cdc(
    client: QBOClient, wanted: Sequence[Entity], since: datetime
) -> tuple[dict[str, list[dict[str, Any]]], list[Entity], int]:
    """Read CDC for ``wanted`` without ever losing a change to the 1000-object cap.

    All entities are asked for at once. When that answer reaches the cap, each entity's changes
    are counted (``COUNT(*)`` since the time, 30 to a batch request); an entity with too many
    changes for one answer is read by change time at once, and the others are packed into as
    few CDC requests as fit under the cap. A request that still reaches it (deletions are not
    counted) is split in halves and asked again, until a single entity alone reaches it, which
    is then read by change time too.

    Returns:
        The changes per entity, the entities that overflowed (to read by query instead; their
        entry holds the ``Deleted`` entries CDC did return for them, which a query cannot see),
        and the calls spent.
    """
    calls_before = client.api_calls
    changes: dict[str, list[dict[str, Any]]] = {}
    overflow: list[Entity] = []
    deleted: dict[str, list[dict[str, Any]]] = {}
    pending: list[list[Entity]] = [list(wanted)] if wanted else []
    packed = False
    while pending:
        group = pending.pop()
        answer = client.cdc(group, since)
        for name, rows in answer.items():
            deleted.setdefault(name, []).extend(r for r in rows if r.get("status") == "Deleted")
        if sum(len(v) for v in answer.values()) < CDC_MAX_OBJECTS:
            for entity in group:
                changes[entity.name] = list(answer.get(entity.name, []))
            continue
        if len(group) == 1:
            log.info(
                "CDC for %s reached the %d-object cap: reading it by change time",
                group[0].name,
                CDC_MAX_OBJECTS,
            )
            overflow.append(group[0])
            continue
        if not packed:
            packed = True
            heavy, groups = _pack_cdc_groups(group, count_records(client, group, since=since))
            for entity in heavy:
                log.info(
                    "%s changed too much for one CDC answer: reading it by change time",
                    entity.name,
                )
            overflow.extend(heavy)
            pending.extend(groups)
            continue
        half = len(group) // 2
        pending.extend([group[:half], group[half:]])
    for entity in overflow:
        changes[entity.name] = _unique_by_id(deleted.get(entity.name, []))
    return changes, overflow, client.api_calls - calls_before


def _pack_cdc_groups(
    wanted: Sequence[Entity], changed: Mapping[str, int]
) -> tuple[list[Entity], list[list[Entity]]]:
    """Split entities into those to read by change time and CDC groups that fit one answer.

    ``changed`` counts each entity's created or changed records; deletions are not counted, so
    groups are filled to :data:`CDC_GROUP_BUDGET` only. An entity without a count is taken to
    fill a whole request.
    """
    heavy = [e for e in wanted if changed.get(e.name, 0) >= CDC_GROUP_BUDGET]
    rest = sorted(
        (e for e in wanted if e not in heavy),
        key=lambda e: changed.get(e.name, CDC_GROUP_BUDGET),
        reverse=True,
    )
    groups: list[list[Entity]] = []
    loads: list[int] = []
    for entity in rest:  # first fit, largest first
        size = changed.get(entity.name, CDC_GROUP_BUDGET)
        for i, load in enumerate(loads):
            if load + size <= CDC_GROUP_BUDGET:
                groups[i].append(entity)
                loads[i] += size
                break
        else:
            groups.append([entity])
            loads.append(size)
    return heavy, groups


def _unique_by_id(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({str(r.get("Id")): r for r in rows}.values())


def count_query(entity: Entity, since: datetime | None = None) -> str:
    """The COUNT(*) that reconciles a snapshot: inactive name-list records included.

    With ``since``, only the records created or changed since then are counted.
    """
    return query.select(entity, count=True, where=_every_record(entity, since))


def singleton_counts(wanted: Sequence[Entity]) -> dict[str, int]:
    """CompanyInfo and Preferences count one each, without asking QBO."""
    return {e.name: 1 for e in wanted if e.is_singleton}


def count_records(
    client: QBOClient, wanted: Sequence[Entity], *, since: datetime | None = None
) -> dict[str, int]:
    """QBO's COUNT(*) for each entity, 30 queries to a batch request.

    Singletons count one. A batch item that faults raises that fault; with ``since`` (counting
    changes, a planning hint) an entity QBO cannot count that way is left out instead.
    """
    counts = singleton_counts(wanted)
    queryable = [e for e in wanted if not e.is_singleton]
    uncountable: list[str] = []
    statements = {e.name: count_query(e, since) for e in queryable}
    for name, answer in _batched_queries(client, statements, refusable=since is not None):
        if answer is None:
            uncountable.append(name)
        else:
            counts[name] = int(answer.get("totalCount", 0))
    missing = [e.name for e in wanted if e.name not in counts and e.name not in uncountable]
    if missing:
        raise QBOError(f"the batch answer had no count for {', '.join(missing)}")
    return counts


def _every_record(entity: Entity, since: datetime | None) -> Sequence[query.Condition] | str | None:
    """Every record of an entity, inactive name-list records included (changed since ``since``)."""
    return query.with_inactive(entity, since_condition(since) if since else None)


def _batched_queries(
    client: QBOClient, statements: Mapping[str, str], *, refusable: bool = False
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Send queries 30 to a batch request; yield each one's key and ``QueryResponse``.

    A faulted query raises its fault, except that with ``refusable`` a query QBO refuses
    (:class:`QueryError`: it cannot filter or count that way) yields None instead.
    """
    keys = list(statements)
    for first in range(0, len(keys), QUERIES_PER_BATCH):
        items = [
            {"bId": k, "Query": statements[k]} for k in keys[first : first + QUERIES_PER_BATCH]
        ]
        for item in client.batch(items):
            key = str(item.get("bId", "?"))
            if "Fault" in item:
                error = fault_from_object(item["Fault"])
                if not refusable or not isinstance(error, QueryError):
                    raise error
                yield key, None
                continue
            yield key, item.get("QueryResponse") or {}


def batched_reads(
    client: QBOClient,
    wanted: Sequence[Entity],
    *,
    since: datetime | None = None,
    budget: int = 5 * PAGE_SIZE,
    sizes: Mapping[str, int] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[Entity]]:
    """Read several entities with one batch request per 30 queries (one page each).

    Small entities cost one request per batch instead of two or three each (count, page,
    recount). An entity whose page comes back full may have more records: it is returned as
    spilled, to be paged instead.

    Args:
        client: The realm's client.
        wanted: The entities to read (inactive name-list records included).
        since: Read only records created or changed since then (``LastUpdatedTime >=``).
        budget: The most records one batch request is expected to carry (by ``sizes``).
        sizes: Expected records per entity, to keep each batch answer a sensible size.

    Returns:
        The records per entity read completely, and the entities that spilled over a page.
    """
    sizes = sizes or {}
    read: dict[str, list[dict[str, Any]]] = {}
    spilled: list[Entity] = []
    for chunk in _chunks(wanted, sizes, budget):
        statements = {
            e.name: query.select(e, where=_every_record(e, since), start=1, max_results=PAGE_SIZE)
            for e in chunk
        }
        by_name = {e.name: e for e in chunk}
        for name, answer in _batched_queries(client, statements, refusable=since is not None):
            entity = by_name[name]
            if answer is None:
                spilled.append(entity)  # cannot filter by change time: paged, then in full
                continue
            rows = answer.get(entity.json_key) or []
            if len(rows) >= PAGE_SIZE:
                spilled.append(entity)
            else:
                read[entity.name] = rows
    return read, spilled


def _chunks(
    wanted: Sequence[Entity], sizes: Mapping[str, int], budget: int
) -> Iterator[list[Entity]]:
    chunk: list[Entity] = []
    load = 0
    for entity in wanted:
        size = min(sizes.get(entity.name, 0), PAGE_SIZE)
        if chunk and (len(chunk) == QUERIES_PER_BATCH or load + size > budget):
            yield chunk
            chunk, load = [], 0
        chunk.append(entity)
        load += size
    if chunk:
        yield chunk


def page_records(
    client: QBOClient, entity: Entity, *, landed: bool = False
) -> Iterator[list[dict[str, Any]] | LandedPage]:
    """Every record of an entity, page by page, inactive ones included, checked by COUNT(*).

    With ``landed``, each page arrives already as landing batches (:class:`LandedPage`), built
    in the thread that fetched it: the pages waiting their turn hold compact Arrow batches
    instead of parsed JSON (several times their size).
    """
    yield from client.iter_pages(
        entity,
        include_inactive=True,
        page_size=PAGE_SIZE,
        parallel=PAGES_IN_FLIGHT,
        convert=LandedPage.converter(entity) if landed else None,
    )


def since_condition(since: datetime) -> list[query.Condition]:
    """``MetaData.LastUpdatedTime >= since``: every record created or changed since then."""
    return [query.Condition("MetaData.LastUpdatedTime", ">=", since)]


def changed_records(
    client: QBOClient, entity: Entity, since: datetime, *, landed: bool = False
) -> Iterator[list[dict[str, Any]] | LandedPage]:
    """Records of an entity created or changed since a time, inactive ones included.

    Should QBO refuse to filter this entity on ``MetaData.LastUpdatedTime`` (a query fault before
    any page arrived), the entity is read in full instead: unchanged records cost no new version,
    and deletions are reconciled with COUNT(*) either way. ``landed`` as for
    :func:`page_records`.
    """
    pages: Iterator[list[dict[str, Any]] | LandedPage] = client.iter_pages(
        entity,
        where=since_condition(since),
        include_inactive=True,
        page_size=PAGE_SIZE,
        parallel=PAGES_IN_FLIGHT,
        convert=LandedPage.converter(entity) if landed else None,
    )
    try:
        first = next(pages, None)
    except QueryError as exc:
        log.warning("%s cannot be read by change time (%s): reading it in full", entity.name, exc)
        yield from page_records(client, entity, landed=landed)
        return
    if first is not None:
        yield first
        yield from pages


def live_ids(client: QBOClient, entity: Entity) -> set[str]:
    """Every live id of an entity (``SELECT Id``), to find deletions a query cannot show.

    The pages are asked for 30 to a batch request: a 250,000-record entity costs 9 requests
    instead of 250.

    Raises:
        TruncationError: If the ids found differ from COUNT(*).
    """
    where = _every_record(entity, None)
    expected = client.count(entity, where, include_inactive=False)
    fields = _key_fields(entity)
    statements = {
        str(start): query.select(
            entity, where=where, fields=fields, start=start, max_results=PAGE_SIZE
        )
        for start in range(1, expected + 1, PAGE_SIZE)
    }
    found: set[str] = set()
    for _start, answer in _batched_queries(client, statements):  # every fault raises
        page = (answer or {}).get(entity.json_key) or []
        found.update(records.record_id(entity, r) for r in page)
    if len(found) != expected:
        raise TruncationError(
            entity.name, expected, len(found), f"the id scan found {len(found)} ids"
        )
    return found


def _key_fields(entity: Entity) -> list[str] | None:
    """The fields an id scan selects.

    ``Id``, or every field for the entities whose records carry no top-level Id (catalogue
    ``keyed_by_id``), which ``lake.records.record_id`` keys from the whole record.
    """
    return ["Id"] if entity.keyed_by_id else None


@dataclass(frozen=True)
class LandedPage:
    """A page already turned into landing batches (``records``: how many records it held)."""

    batches: list[pa.RecordBatch]
    records: int

    @staticmethod
    def converter(entity: Entity) -> Callable[[list[dict[str, Any]]], LandedPage]:
        """Turns a page of ``entity`` into a :class:`LandedPage` (no attachment files)."""

        def convert(page: list[dict[str, Any]]) -> LandedPage:
            return LandedPage(list(_page_batches(entity, page, None)), len(page))

        return convert


def to_batches(
    entity: Entity,
    pages: Iterable[list[dict[str, Any]] | LandedPage],
    *,
    on_progress: ProgressCallback | None = None,
    blob_for: Callable[[dict[str, Any]], str | None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Turn pages of QBO payloads (and CDC ``Deleted`` entries) into landing batches.

    A :class:`LandedPage` is already converted (without attachment files: ``blob_for`` must then
    be None) and passes through.
    """
    for page in pages:
        if isinstance(page, LandedPage):
            if blob_for is not None:
                raise ValueError(f"{entity.name}: a landed page cannot fetch attachment files")
            yield from page.batches
            count = page.records
        else:
            if isinstance(blob_for, AttachmentFetcher):
                blob_for.prefetch(page)
            yield from _page_batches(entity, page, blob_for)
            count = len(page)
        if on_progress is not None and count:
            on_progress(entity.name, count)


def _page_batches(
    entity: Entity,
    page: Sequence[dict[str, Any]],
    blob_for: Callable[[dict[str, Any]], str | None] | None,
) -> Iterator[pa.RecordBatch]:
    for start in range(0, len(page), ROWS_PER_BATCH):
        chunk = page[start : start + ROWS_PER_BATCH]
        rows = [_landing(entity, payload, blob_for) for payload in chunk]
        if rows:
            yield records.rows_to_batch(rows)


def _landing(
    entity: Entity,
    payload: dict[str, Any],
    blob_for: Callable[[dict[str, Any]], str | None] | None,
) -> dict[str, Any]:
    if payload.get("status") == "Deleted":
        meta = payload.get("MetaData") or {}
        return records.deleted_row(entity, str(payload["Id"]), meta.get("LastUpdatedTime"))
    blob = blob_for(payload) if blob_for is not None else None
    return records.landing_row(entity, payload, blob_sha256=blob)


class AttachmentFetcher:
    """Downloads an Attachable's file only when the Attachable is new or changed.

    The bytes go to the lake's content-addressed store; an unchanged Attachable reuses the blob
    its parent snapshot recorded. The files of a page are downloaded concurrently
    (:meth:`prefetch`), within the realm's limiter, so a company with many attachments is not
    read one round trip at a time.
    """

    def __init__(
        self,
        client: QBOClient,
        store: BlobStore,
        known: Mapping[str, tuple[str, str | None]],
        *,
        workers: int = ATTACHMENT_DOWNLOADS_IN_FLIGHT,
    ) -> None:
        self._client = client
        self._store = store
        self._known = known
        self._entity = entities.get("Attachable")
        self._workers = workers
        self._ready: dict[str, str] = {}
        self._lock = threading.Lock()
        self.downloaded = 0
        self.bytes = 0

    def prefetch(self, page: Sequence[dict[str, Any]]) -> None:
        """Download, concurrently, the files of a page's new or changed Attachables."""
        wanted = [p for p in page if self._needs_download(p)]
        if len(wanted) < 2:
            return
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="qbo-files") as pool:
            for record_id, sha in pool.map(self._download, wanted):
                self._ready[record_id] = sha

    def __call__(self, payload: dict[str, Any]) -> str | None:
        """The blob SHA-256 for this Attachable (None when it carries no file)."""
        if not payload.get("FileName"):
            return None
        record_id = str(payload.get("Id"))
        if record_id in self._ready:
            return self._ready.pop(record_id)
        known = self._known.get(record_id)
        if not self._needs_download(payload) and known is not None and known[1]:
            return known[1]
        return self._download(payload)[1]

    def _needs_download(self, payload: dict[str, Any]) -> bool:
        if not payload.get("FileName"):
            return False
        known = self._known.get(str(payload.get("Id")))
        return not (known and known[1] and known[0] == records.content_hash(self._entity, payload))

    def _download(self, payload: dict[str, Any]) -> tuple[str, str]:
        data = self._client.download(payload)
        sha = self._store(data)
        with self._lock:
            self.downloaded += 1
            self.bytes += len(data)
        return str(payload.get("Id")), sha
