"""Read every record of an entity, several pages in flight, reconciled with COUNT(*).

QBO pages with ``STARTPOSITION`` / ``MAXRESULTS`` (at most 1000). :func:`iter_pages` asks for
``COUNT(*)`` first, fetches the pages that count implies with a few requests in flight (all of
them through the realm's limiter), yields them in page order, and at the end checks that exactly
that many distinct records arrived and that the count did not move meanwhile. Anything else raises
:class:`~qbo_pipeline.qbo.faults.TruncationError`: truncation never passes unnoticed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, overload

from qbo_pipeline.entities import MAX_PAGE_SIZE, Entity
from qbo_pipeline.lake import records
from qbo_pipeline.qbo import query as qbo_query
from qbo_pipeline.qbo.faults import TruncationError
from qbo_pipeline.qbo.redact import get_logger

if TYPE_CHECKING:
    from qbo_pipeline.qbo.http import QBOClient

log = get_logger(__name__)

Page = list[dict[str, Any]]
T = TypeVar("T")


@overload
def iter_pages(
    client: QBOClient,
    entity: Entity,
    *,
    where: Sequence[qbo_query.Condition] | str | None = None,
    include_inactive: bool = True,
    page_size: int = MAX_PAGE_SIZE,
    parallel: int = 4,
    recount: bool = True,
    convert: None = None,
) -> Iterator[Page]: ...


@overload
def iter_pages(
    client: QBOClient,
    entity: Entity,
    *,
    where: Sequence[qbo_query.Condition] | str | None = None,
    include_inactive: bool = True,
    page_size: int = MAX_PAGE_SIZE,
    parallel: int = 4,
    recount: bool = True,
    convert: Callable[[Page], T],
) -> Iterator[T]: ...


def iter_pages(
    client: QBOClient,
    entity: Entity,
    *,
    where: Sequence[qbo_query.Condition] | str | None = None,
    include_inactive: bool = True,
    page_size: int = MAX_PAGE_SIZE,
    parallel: int = 4,
    recount: bool = True,
    convert: Callable[[Page], Any] | None = None,
) -> Iterator[Any]:
    """Yield an entity's records page by page, each record exactly once.

    Args:
        client: The realm's client.
        entity: A queryable entity (singletons yield their one record).
        where: Conditions or a trusted WHERE text.
        include_inactive: Add ``Active IN (true, false)`` for name-lists.
        page_size: MAXRESULTS per page (1 to 1000).
        parallel: Pages in flight at once (capped by the realm's in-flight limit).
        recount: Ask COUNT(*) again at the end to catch records added or removed meanwhile.
        convert: Turns each page into what is yielded instead of the page, in the thread that
            fetched it, as soon as it arrives: pages waiting their turn then hold the converted
            form (a backup's compact Arrow batches) rather than the parsed JSON.

    Raises:
        TruncationError: If the records fetched differ from COUNT(*), a record came twice, or
            the count changed while paging.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}")
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    if entity.is_singleton:
        page = [client.read(entity, "")]
        yield convert(page) if convert is not None else page
        return
    if include_inactive:
        where = qbo_query.with_inactive(entity, where)
    expected = client.count(entity, where, include_inactive=False)
    pages = math.ceil(expected / page_size)
    workers = max(1, min(parallel, client.limiter.max_in_flight, pages or 1))
    log.debug(
        "%s: %d records in %d pages of %d, %d in flight",
        entity.name,
        expected,
        pages,
        page_size,
        workers,
    )

    def fetch(index: int) -> tuple[list[Any], Any]:
        """One page: its records' keys, and the page (converted when asked)."""
        statement = qbo_query.select(
            entity, where=where, start=1 + index * page_size, max_results=page_size
        )

        def digest(found: dict[str, Any]) -> tuple[list[Any], Any]:
            records = found.get(entity.json_key)
            if records is None:
                records = found.get(entity.name, [])
            page = list(records)
            keys = [_seen_key(entity, record) for record in page]
            return keys, (convert(page) if convert is not None else page)

        return client.query(statement, digest=digest)

    seen = _SeenKeys()
    fetched = 0
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"qbo-{entity.name}")
    pending: deque[Future[tuple[list[Any], Any]]] = deque()
    try:
        next_page = 0
        while next_page < pages and len(pending) < workers:
            pending.append(executor.submit(fetch, next_page))
            next_page += 1
        while pending:
            keys, page = pending.popleft().result()
            if next_page < pages:
                pending.append(executor.submit(fetch, next_page))
                next_page += 1
            for key in keys:
                if not seen.add(key):
                    raise TruncationError(
                        entity.name,
                        expected,
                        fetched,
                        f"record Id {key} came twice (the data moved while paging)",
                    )
            fetched += len(keys)
            if fetched > expected:
                raise TruncationError(
                    entity.name, expected, fetched, "more records than COUNT(*) said"
                )
            yield page
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
    if fetched != expected:
        raise TruncationError(entity.name, expected, fetched)
    if recount:
        after = client.count(entity, where, include_inactive=False)
        if after != expected:
            raise TruncationError(
                entity.name,
                after,
                fetched,
                f"COUNT(*) moved from {expected} to {after} while paging; read again",
            )


BITMAP_IDS = 1 << 27
"""Numeric Ids below this are remembered in a bitmap (at most 16 MiB, 1 bit an Id)."""


class _SeenKeys:
    """The record keys one paging has seen, in little memory.

    QBO's Ids are small integers: one bit each in a bitmap that grows with the highest Id,
    instead of a set entry and an int object (about 60 bytes) per record, which at a
    250,000-record entity was 15 MB per entity paged. Other keys go to a set.
    """

    def __init__(self) -> None:
        self._bits = bytearray()
        self._other: set[Any] = set()

    def add(self, key: Any) -> bool:
        """Remember ``key``; False when it was seen before."""
        if type(key) is int and 0 <= key < BITMAP_IDS:
            index, mask = key >> 3, 1 << (key & 7)
            if index >= len(self._bits):
                grown = max(index + 1, 2 * len(self._bits), 4096)
                self._bits.extend(bytes(min(grown, BITMAP_IDS >> 3) - len(self._bits)))
            if self._bits[index] & mask:
                return False
            self._bits[index] |= mask
            return True
        if key in self._other:
            return False
        self._other.add(key)
        return True


def _seen_key(entity: Entity, record: dict[str, Any]) -> int | str:
    """The record's key in the lake (:func:`~qbo_pipeline.lake.records.record_id`).

    A plain decimal Id becomes an int, so that :class:`_SeenKeys` keeps it in its bitmap.
    """
    key = records.record_id(entity, record)
    plain = key.isascii() and key.isdigit() and len(key) < 10 and key == str(int(key))
    return int(key) if plain else key
