"""Fixtures of the sandbox's operation tests: an empty company in memory, its side effects seen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore

REALM = "4004"
"""The realm of :func:`ops`'s company."""


class Seen(list[tuple[str, str, str]]):
    """An operations observer: ``(entity, Id, SyncToken)`` of every record a write changed."""

    def __call__(self, entity: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Note a changed record."""
        self.append((entity, str(after["Id"]), after["SyncToken"]))


@pytest.fixture
def seen() -> Seen:
    """The records :func:`ops`'s writes changed, in order (clear it to start over)."""
    return Seen()


@pytest.fixture
def ops(seen: Seen) -> Operations:
    """The sandbox's operations on an empty company in an in-memory store, observed by ``seen``."""
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Ops Co", clock_start=datetime(2024, 3, 1, tzinfo=UTC))
    return Operations(store, REALM, observer=seen)


def stored(ops: Operations, entity: str, record_id: str) -> dict[str, Any]:
    """A record of ``ops``'s company as stored (it must exist)."""
    record = ops.store.get(ops.realm_id, entity, record_id)
    assert record is not None, (entity, record_id)
    return record
