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
