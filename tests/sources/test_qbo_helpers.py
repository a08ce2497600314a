"""The source's planning helpers against the embedded sandbox: CDC within its cap, id scans."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sources.qbo import helpers


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url) as qbo:
        yield qbo


def _covered() -> list[entities.Entity]:
    return [e for e in entities.CATALOGUE if e.cdc and not e.is_singleton]


def test_pack_cdc_groups_reads_heavy_entities_by_time_and_fills_groups_to_the_budget() -> None:
    names = ["Invoice", "Bill", "Payment", "Customer", "Vendor", "Item"]
    wanted = [entities.get(n) for n in names]
    changed = {"Invoice": 4000, "Bill": 500, "Payment": 300, "Customer": 290, "Vendor": 0}
    heavy, groups = helpers._pack_cdc_groups(wanted, changed)
    assert [e.name for e in heavy] == ["Invoice"]
    assert sorted(e.name for g in groups for e in g) == sorted(names[1:])
    for group in groups:
        assert sum(changed.get(e.name, 0) for e in group) <= helpers.CDC_GROUP_BUDGET
    # Item has no count (QBO would not count it by change time): it fills a request of its own
    # but for entities without changes.
    assert sorted(sorted(e.name for e in g) for g in groups) == [
        ["Bill", "Payment"],
        ["Customer"],
        ["Item", "Vendor"],
    ]


def test_fetch_cdc_packs_requests_once_the_first_answer_overflows(
    sandbox: SandboxServer, client: QBOClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = client.company_info() and client.last_server_time
    assert since is not None
    sandbox.simulate(2, realm_id=client.realm_id)
    wanted = _covered()
    everything, overflow, calls = helpers.fetch_cdc(client, wanted, since - timedelta(minutes=1))
    assert (overflow, calls) == ([], 1)
    changed = {name: len(rows) for name, rows in everything.items() if rows}
    assert len(changed) >= 3

    # Pretend the cap is just above the busiest entity's changes: one answer cannot hold them
    # all, each entity alone fits (its count stays under the group budget, even when none of
    # its changes is a deletion, which the count leaves out).
    cap = max(changed.values()) + 2
    assert sum(changed.values()) >= cap
    monkeypatch.setattr(helpers, "CDC_MAX_OBJECTS", cap)
    monkeypatch.setattr(helpers, "CDC_GROUP_BUDGET", cap - 1)
    packed, overflow, calls = helpers.fetch_cdc(client, wanted, since - timedelta(minutes=1))
    assert overflow == []
    assert {n: len(r) for n, r in packed.items() if r} == changed
    count_batches = -(-len(wanted) // helpers.QUERIES_PER_BATCH)
    assert calls <= 1 + count_batches + len(changed)  # never the halving cascade


def test_fetch_cdc_keeps_the_deletions_of_an_entity_that_overflows(
    sandbox: SandboxServer, client: QBOClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.company_info()
    since = client.last_server_time
    assert since is not None and sandbox.store is not None
    ops = Operations(sandbox.store, client.realm_id)
    # Three invoices of one customer: deleting them moves its balance (a change of that one
    # customer, as its own edit below is).
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for invoice in sandbox.store.iter_records(client.realm_id, "Invoice"):
        by_customer.setdefault(invoice["CustomerRef"]["value"], []).append(invoice)
    customer_id, invoices = next((c, i[:3]) for c, i in sorted(by_customer.items()) if len(i) >= 3)
    for invoice in invoices:
        ops.delete("Invoice", invoice["Id"], invoice["SyncToken"])
    ops.update(
        "Customer",
        {**(sandbox.store.get(client.realm_id, "Customer", customer_id) or {}), "Notes": "x"},
        sparse=False,
    )
    monkeypatch.setattr(helpers, "CDC_MAX_OBJECTS", 3)
    monkeypatch.setattr(helpers, "CDC_GROUP_BUDGET", 2)
    wanted = [entities.get("Invoice"), entities.get("Customer")]
    changes, overflow, _calls = helpers.fetch_cdc(client, wanted, since - timedelta(minutes=1))
    assert [e.name for e in overflow] == ["Invoice"]
    assert {r["Id"] for r in changes["Invoice"]} == {i["Id"] for i in invoices}
    assert all(r["status"] == "Deleted" for r in changes["Invoice"])
    assert [r["Notes"] for r in changes["Customer"]] == ["x"]


def test_live_ids_scans_in_batches_of_pages(
    client: QBOClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = entities.get("Invoice")
    expected = client.count(invoice)
    assert expected > 6
    monkeypatch.setattr(helpers, "PAGE_SIZE", 2)
    monkeypatch.setattr(helpers, "QUERIES_PER_BATCH", 2)
    before = client.calls_by_topic()
    ids = helpers.live_ids(client, invoice)
    after = client.calls_by_topic()
    assert len(ids) == expected
    pages = -(-expected // 2)
    assert after.get("batch", 0) - before.get("batch", 0) == -(-pages // 2)


def test_live_ids_that_differ_from_the_count_raise_a_truncation_error(
    client: QBOClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = entities.get("Invoice")
    real = client.count(invoice, include_inactive=False)
    monkeypatch.setattr(client, "count", lambda *_a, **_k: real + 1)  # one more than QBO lists
    with pytest.raises(helpers.TruncationError) as caught:
        helpers.live_ids(client, invoice)
    assert (caught.value.entity, caught.value.expected, caught.value.got) == (
        "Invoice",
        real + 1,
        real,
    )
    assert "id scan found" in str(caught.value)
