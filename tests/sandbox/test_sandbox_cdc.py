"""Change Data Capture: look-back limit, 1000-object cap, Deleted entries, uncovered entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qbo_pipeline.sandbox.cdc import change_data_capture
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore

REALM = "2002"
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def store() -> SandboxStore:
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "CDC Co", clock_start=NOW)
    return store


def _since(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def test_changes_and_deleted_entries(store: SandboxStore) -> None:
    ops = Operations(store, REALM)
    customer = ops.create("Customer", {"DisplayName": "A"})
    estimate = ops.create(
        "Estimate",
        {"CustomerRef": {"value": customer["Id"]}, "Line": [{"Amount": 5, "DetailType": "X"}]},
    )
    ops.delete("Estimate", estimate["Id"], "0")
    body = change_data_capture(store, REALM, "Customer,estimate", _since(1))
    customers, estimates = body["CDCResponse"][0]["QueryResponse"]
    assert customers["Customer"][0]["DisplayName"] == "A"
    deleted = estimates["Estimate"][0]
    assert deleted["status"] == "Deleted" and deleted["Id"] == estimate["Id"]
    assert set(deleted) == {"domain", "status", "Id", "MetaData"}
    assert estimates["maxResults"] == 1


def test_look_back_limit(store: SandboxStore) -> None:
    with pytest.raises(SandboxFault) as info:
        change_data_capture(store, REALM, "Customer", _since(31))
    assert "30 days" in info.value.detail and info.value.fault_type == "ValidationFault"
    assert info.value.code == "500" and "older than fixed days" in info.value.detail
    assert change_data_capture(store, REALM, "Customer", _since(29))


def test_uncovered_and_unknown_entities_refused(store: SandboxStore) -> None:
    with pytest.raises(SandboxFault) as info:
        change_data_capture(store, REALM, "Customer,TaxCode,TimeActivity", _since(1))
    assert "TaxCode" in info.value.detail and "TimeActivity" in info.value.detail
    assert info.value.code == "500" and info.value.message == "Unsupported Operation"
    with pytest.raises(SandboxFault):
        change_data_capture(store, REALM, "Nope", _since(1))
    with pytest.raises(SandboxFault) as missing:
        change_data_capture(store, REALM, "Customer", None)
    assert missing.value.code == "2020"


def test_cap_of_1000_objects_oldest_first(store: SandboxStore) -> None:
    def records(entity_offset: int, count: int) -> list[dict[str, object]]:
        out = []
        for i in range(1, count + 1):
            when = NOW - timedelta(hours=10) + timedelta(seconds=2 * i + entity_offset)
            stamp = when.isoformat()
            out.append(
                {
                    "Id": str(i),
                    "SyncToken": "0",
                    "DisplayName": f"n{i}",
                    "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
                }
            )
        return out

    store.bulk_load(REALM, "Customer", records(0, 700))
    store.bulk_load(REALM, "Vendor", records(1, 700))
    body = change_data_capture(store, REALM, "Customer,Vendor", _since(1))
    customers, vendors = body["CDCResponse"][0]["QueryResponse"]
    assert len(customers["Customer"]) + len(vendors["Vendor"]) == 1000
    assert len(customers["Customer"]) == 500 and len(vendors["Vendor"]) == 500
    assert customers["Customer"][-1]["Id"] == "500"
