from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Secret, Settings
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import InvalidRecordError
from qbo_pipeline.qbo import paging
from qbo_pipeline.qbo import query as q
from qbo_pipeline.qbo.auth import AppCredentials
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.faults import TruncationError
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.qbo.paging import iter_pages
from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import SAMPLES

PASS = Secret("paging passphrase")


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realms = login_embedded(
        settings,
        sandbox.base_url,
        passphrase=PASS,
        credentials=AppCredentials(sandbox.client_id, Secret(sandbox.client_secret)),
    )
    with open_client(settings, realms[0], passphrase=PASS, limiter=RealmLimiter()) as c:
        yield c


def test_pages_come_in_order_with_the_asked_size(client: QBOClient) -> None:
    pages = list(client.iter_pages(entities.get("Account"), page_size=10, parallel=4))
    sizes = [len(p) for p in pages]
    assert all(size == 10 for size in sizes[:-1])
    assert 1 <= sizes[-1] <= 10
    flat = [int(r["Id"]) for p in pages for r in p]
    assert flat == sorted(flat)


def test_pages_can_be_converted_in_the_threads_that_fetch_them(client: QBOClient) -> None:
    seen_in: set[str] = set()

    def convert(page: list[dict]) -> list[str]:
        seen_in.add(threading.current_thread().name)
        return [str(r["Id"]) for r in page]

    account = entities.get("Account")
    plain = [[str(r["Id"]) for r in p] for p in client.iter_pages(account, page_size=10)]
    converted = list(client.iter_pages(account, page_size=10, parallel=4, convert=convert))
    assert converted == plain
    assert seen_in and all(name.startswith("qbo-Account") for name in seen_in)


def test_only_a_few_pages_are_parsed_and_converted_at_once(client: QBOClient) -> None:
    # Pages are fetched several at a time, but parsed and converted in turns, so a backup
    # never holds more parsed pages at once than the client's turns.
    from qbo_pipeline.qbo.http import PAGES_DIGESTED_AT_ONCE

    changed = threading.Condition()
    now = most = 0

    def convert(page: list[dict]) -> int:
        nonlocal now, most
        with changed:
            now += 1
            most = max(most, now)
            changed.notify_all()
            # Stay until one page more than the turns is being converted (never, if they hold).
            changed.wait_for(lambda: now > PAGES_DIGESTED_AT_ONCE, timeout=0.1)
            now -= 1
        return len(page)

    sizes = list(
        client.iter_pages(entities.get("Account"), page_size=5, parallel=6, convert=convert)
    )
    assert len(sizes) >= 6 and sum(sizes) == client.count(entities.get("Account"))
    assert most == PAGES_DIGESTED_AT_ONCE


def test_inactive_name_list_records_are_included(client: QBOClient) -> None:
    customer = entities.get("Customer")
    made = client.create(customer, {"DisplayName": "Soon Inactive"}, request_id=uuid.uuid4().hex)
    client.update(
        customer,
        {"Id": made["Id"], "SyncToken": made["SyncToken"], "Active": False},
        sparse=True,
        request_id=uuid.uuid4().hex,
    )
    everything = [r["Id"] for p in client.iter_pages(customer, page_size=50) for r in p]
    active = [r["Id"] for p in client.iter_pages(customer, include_inactive=False) for r in p]
    assert made["Id"] in everything
    assert made["Id"] not in active
    assert len(everything) == len(active) + 1


def test_where_conditions_page_too(client: QBOClient) -> None:
    invoice = entities.get("Invoice")
    where = [q.Condition("TotalAmt", ">", 0)]
    got = [r for p in client.iter_pages(invoice, where=where, page_size=4) for r in p]
    assert got and all(float(r["TotalAmt"]) > 0 for r in got)
    assert len(got) == client.count(invoice, where)


def test_a_record_deleted_while_paging_fails_loudly(client: QBOClient) -> None:
    invoice = entities.get("Invoice")
    pages = iter_pages(client, invoice, page_size=5, parallel=1)
    first = next(pages)
    victim = first[0]
    client.delete(invoice, victim["Id"], victim["SyncToken"], request_id=uuid.uuid4().hex)
    with pytest.raises(TruncationError) as info:
        for _ in pages:
            pass
    err = info.value
    assert err.entity == "Invoice"
    assert err.got == err.expected - 1
    assert "Invoice" in str(err) and str(err.expected) in str(err)


def test_a_record_added_while_paging_fails_loudly(client: QBOClient) -> None:
    customer = entities.get("Customer")
    pages = iter_pages(client, customer, page_size=100, parallel=1)
    next(pages)
    client.create(customer, {"DisplayName": "Late Arrival"}, request_id=uuid.uuid4().hex)
    with pytest.raises(TruncationError, match="moved"):
        next(pages)


def test_stopping_early_leaves_no_threads(client: QBOClient) -> None:
    before = {t.name for t in threading.enumerate()}
    pages = client.iter_pages(entities.get("Account"), page_size=5, parallel=4)
    next(pages)
    pages.close()
    after = {t.name for t in threading.enumerate() if t.name.startswith("qbo-Account")}
    assert not after - before
    assert client.limiter.in_flight == 0


def test_singletons_and_bad_arguments(client: QBOClient) -> None:
    pages = list(client.iter_pages(entities.get("CompanyInfo")))
    assert len(pages) == 1 and pages[0][0]["CompanyName"]
    with pytest.raises(ValueError):
        list(client.iter_pages(entities.get("Invoice"), page_size=1001))
    with pytest.raises(ValueError):
        list(client.iter_pages(entities.get("Invoice"), parallel=0))


def test_seen_keys_tell_repeats_apart_in_every_key_kind() -> None:
    seen = paging._SeenKeys()
    keys = [0, 7, 8, 1_000_003, paging.BITMAP_IDS - 1, paging.BITMAP_IDS, 2**40, "A-1", '{"x":1}']
    assert all(seen.add(key) for key in keys)
    assert not any(seen.add(key) for key in keys)
    assert seen.add(9) and seen.add(1_000_002)
    assert len(seen._bits) <= paging.BITMAP_IDS >> 3


class _OnePageClient:
    """Serves one page of given records for any query (paging's duplicate check, in isolation)."""

    def __init__(self, entity: entities.Entity, found: list[dict[str, Any]]) -> None:
        self.entity, self.found = entity, found
        self.limiter = RealmLimiter()

    def count(self, entity: entities.Entity, where: Any, *, include_inactive: bool) -> int:
        return len(self.found)

    def query(self, statement: str, *, digest: Any) -> Any:
        return digest({self.entity.json_key: self.found})


def test_repeats_are_found_by_the_key_the_lake_gives_records() -> None:
    # Paging tells records apart by records.record_id, as the lake keys them: a recurring
    # template by the Id of the transaction it wraps (a real capture), whatever else differs.
    ent = entities.get("RecurringTransaction")
    capture = json.loads((SAMPLES / "extra" / "recurringtransaction_doc.json").read_text())
    (template,) = capture["QueryResponse"]["RecurringTransaction"]
    edited = {"Bill": dict(template["Bill"], PrivateNote="edited meanwhile")}
    assert records.record_id(ent, edited) == records.record_id(ent, template) == "20"
    client = _OnePageClient(ent, [template, edited])
    with pytest.raises(TruncationError, match="record Id 20 came twice"):
        list(iter_pages(client, ent))  # type: ignore[arg-type]
    other = {"Bill": dict(template["Bill"], Id="21")}
    pages = list(iter_pages(_OnePageClient(ent, [template, other]), ent))  # type: ignore[arg-type]
    assert [records.record_id(ent, r) for r in pages[0]] == ["20", "21"]


def test_a_record_without_a_key_is_named_while_paging() -> None:
    ent = entities.get("Invoice")
    with pytest.raises(InvalidRecordError, match="Invoice record has no usable Id"):
        list(iter_pages(_OnePageClient(ent, [{"DocNumber": "1001"}]), ent))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record_id", "key"),
    [("7", 7), ("007", "007"), ("²", "²"), ("A-1", "A-1"), ("9" * 30, "9" * 30)],
)
def test_seen_keys_hold_plain_ids_as_ints_only(record_id: str, key: int | str) -> None:
    assert paging._seen_key(entities.get("Customer"), {"Id": record_id}) == key
