"""The dlt source's lanes: only a few paged entities hold parsed pages at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from qbo_pipeline.sources.qbo import _in_lane


def _pages(name: str, n: int, log: list[str]) -> Iterator[str]:
    for i in range(n):
        log.append(f"{name}{i}")
        yield f"{name}{i}"


def test_an_entity_waits_for_a_lane_without_blocking_and_frees_it_when_done() -> None:
    lanes = threading.BoundedSemaphore(1)
    log: list[str] = []
    first = _in_lane(lanes, _pages("a", 2, log))
    second = _in_lane(lanes, _pages("b", 2, log))
    assert next(first) == "a0"
    assert next(second) is None  # the lane is taken: dlt gets nothing and moves on
    assert log == ["a0"]
    assert next(first) == "a1"
    assert list(first) == []  # exhausted: the lane is free again
    assert [x for x in second if x is not None] == ["b0", "b1"]
    assert log == ["a0", "a1", "b0", "b1"]
    assert lanes.acquire(blocking=False)  # both released their lane


def test_a_closed_entity_gives_its_lane_back() -> None:
    lanes = threading.BoundedSemaphore(1)
    log: list[str] = []
    first = _in_lane(lanes, _pages("a", 5, log))
    assert next(first) == "a0"
    first.close()  # dlt closes a resource that failed or was cancelled
    assert lanes.acquire(blocking=False)


def test_a_page_landed_in_its_fetch_thread_gives_the_same_batches_and_progress() -> None:
    from qbo_pipeline import entities
    from qbo_pipeline.sources.qbo.helpers import LandedPage, to_batches

    customer = entities.get("Customer")
    page = [
        {
            "Id": str(i),
            "DisplayName": f"Customer {i}",
            "SyncToken": "0",
            "MetaData": {"LastUpdatedTime": "2026-01-02T03:04:05-08:00"},
        }
        for i in range(1, 2_501)
    ] + [{"Id": "9999", "status": "Deleted"}]
    counted: list[tuple[str, int]] = []
    plain = list(to_batches(customer, [page], on_progress=lambda e, n: counted.append((e, n))))
    landed = LandedPage.converter(customer)(page)
    passed = list(to_batches(customer, [landed], on_progress=lambda e, n: counted.append((e, n))))
    assert [b.to_pylist() for b in passed] == [b.to_pylist() for b in plain]
    assert sum(b.num_rows for b in passed) == len(page)
    assert counted == [("Customer", len(page)), ("Customer", len(page))]


def test_records_read_while_planning_leave_the_plan_as_they_are_landed() -> None:
    from qbo_pipeline.sources.qbo import _taken

    plan_rows = [{"Id": "1"}, {"Id": "2"}]
    pages = _taken(plan_rows)
    assert plan_rows == [{"Id": "1"}, {"Id": "2"}]  # nothing taken before the landing starts
    assert next(pages) == [{"Id": "1"}, {"Id": "2"}]
    assert plan_rows == []
    assert next(pages, None) is None
