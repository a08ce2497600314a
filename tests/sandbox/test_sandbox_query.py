"""The QBO query language: parsing, evaluation and deep paging over the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.query import QueryEngine, parse
from qbo_pipeline.sandbox.store import SandboxStore

REALM = "1001"
NAMES = [
    "Amy's Bird Sanctuary",
    "back\\slash",
    "Café Ünïcödé 東京",
    "under_score",
    "100% Legit",
    "Plain",
]


@pytest.fixture
def engine() -> QueryEngine:
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Query Co", clock_start=datetime(2024, 3, 1, tzinfo=UTC))
    ops = Operations(store, REALM)
    for i, name in enumerate(NAMES):
        created = ops.create("Customer", {"DisplayName": name, "Taxable": i % 2 == 0})
        # QBO computes a balance from open documents; stored as the generator stores it.
        store.put(REALM, "Customer", {**created, "Balance": i * 10})
    ops.deactivate("Customer", "6")
    return QueryEngine(store)


def _ids(engine: QueryEngine, text: str) -> list[str]:
    result = engine.run_text(REALM, text).query_response()
    return [r["Id"] for r in result.get("Customer", [])]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM Customer", ["1", "2", "3", "4", "5"]),
        ("select * from customer", ["1", "2", "3", "4", "5"]),
        ("SeLeCt * FrOm CUSTOMER WHERE Active IN (true, false)", ["1", "2", "3", "4", "5", "6"]),
        ("SELECT * FROM Customer WHERE Active = false", ["6"]),
        ("SELECT * FROM Customer WHERE DisplayName = 'Amy\\'s Bird Sanctuary'", ["1"]),
        ("SELECT * FROM Customer WHERE DisplayName = 'back\\\\slash'", ["2"]),
        ("SELECT * FROM Customer WHERE DisplayName = 'Café Ünïcödé 東京'", ["3"]),
        ("SELECT * FROM Customer WHERE DisplayName LIKE 'under_score'", ["4"]),
        ("SELECT * FROM Customer WHERE DisplayName LIKE 'under%'", ["4"]),
        ("SELECT * FROM Customer WHERE DisplayName LIKE 'underXscore'", []),
        ("SELECT * FROM Customer WHERE DisplayName LIKE '100\\%%'", ["5"]),
        ("SELECT * FROM Customer WHERE DisplayName LIKE '%Legit'", ["5"]),
        ("SELECT * FROM Customer WHERE Balance > '15'", ["3", "4", "5"]),
        ("SELECT * FROM Customer WHERE Balance >= 20 AND Balance < 40", ["3", "4"]),
        ("SELECT * FROM Customer WHERE Taxable = true", ["1", "3", "5"]),
        ("SELECT * FROM Customer WHERE Id IN ('2', '4', '99')", ["2", "4"]),
        ("SELECT * FROM Customer WHERE Id = '3'", ["3"]),
        ("SELECT * FROM Customer ORDERBY Balance DESC", ["5", "4", "3", "2", "1"]),
        ("SELECT * FROM Customer ORDERBY Id DESC MAXRESULTS 2", ["5", "4"]),
        ("SELECT * FROM Customer MAXRESULTS 2 STARTPOSITION 2", ["2", "3"]),
        ("SELECT * FROM Customer STARTPOSITION 6", []),
        (
            "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime >= '2024-02-29T00:00:00-08:00'"
            " ORDERBY MetaData.LastUpdatedTime",
            ["1", "2", "3", "4", "5"],
        ),
        ("SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2030-01-01T00:00:00Z'", []),
    ],
)
def test_query_cases(engine: QueryEngine, query: str, expected: list[str]) -> None:
    assert _ids(engine, query) == expected


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ("SELECT * FROM Custmoer", "4001", "invalid context declaration: Custmoer"),
        ("SELECT * FROM Customer MAXRESULTS 1500", "4001", "value 1500 is too large"),
        ("SELECT * FROM Customer WHERE Id > '1'", "4001", "Id"),
        ("SELECT * FROM Customer WHERE Balance = 1 OR Balance = 2", "4000", "OR"),
        ("SELECT * FROM Customer WHERE DisplayName = 'open", "4000", "Unterminated"),
        ("SELECT FROM Customer", "4000", "Was expecting"),
        ("SELECT * FROM Customer WHERE", "4000", "<EOF>"),
        ("DROP TABLE records", "4000", "DROP"),
        ("SELECT * FROM Customer WHERE DisplayName = 'x'; DROP TABLE records", "4000", ";"),
        ("", "4000", "EOF"),
    ],
)
def test_query_errors(engine: QueryEngine, query: str, code: str, fragment: str) -> None:
    with pytest.raises(SandboxFault) as info:
        engine.run_text(REALM, query)
    assert info.value.code == code
    assert fragment in info.value.detail
    assert engine.store.count(REALM, "Customer") == 6


def test_count_and_field_list(engine: QueryEngine) -> None:
    assert engine.run_text(REALM, "SELECT COUNT(*) FROM Customer").query_response() == {
        "totalCount": 5
    }
    rows = engine.run_text(REALM, "SELECT Id, DisplayName FROM Customer MAXRESULTS 1")
    record = rows.query_response()["Customer"][0]
    assert set(record) == {"Id", "DisplayName", "domain", "sparse"}


def test_parse_defaults() -> None:
    query = parse("select * from invoice")
    assert (query.start, query.max_results, query.entity.name) == (1, 100, "Invoice")


def test_paging_to_the_end_without_loss_or_duplicates() -> None:
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Big", clock_start=datetime(2024, 1, 1, tzinfo=UTC))
    stamp = "2024-01-01T00:00:00-08:00"
    store.bulk_load(
        REALM,
        "Invoice",
        (
            {"Id": str(i), "SyncToken": "0", "MetaData": {"LastUpdatedTime": stamp}}
            for i in range(1, 2_538)
            if i % 7
        ),
    )
    engine = QueryEngine(store)
    expected = store.count(REALM, "Invoice")
    seen: list[str] = []
    start = 1
    while True:
        page = engine.run_text(
            REALM, f"SELECT * FROM Invoice STARTPOSITION {start} MAXRESULTS 1000"
        ).query_response()
        if not page:
            break
        seen.extend(r["Id"] for r in page["Invoice"])
        start += page["maxResults"]
    assert len(seen) == expected == len(set(seen))
    assert [int(i) for i in seen] == sorted(int(i) for i in seen)
    # The second and third pages continued from a remembered keyset, not an OFFSET.
    assert len(engine._cursors) >= 3


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        # Issue #17 item 7: these answered 200 with no rows (or compared dates as text).
        ("SELECT * FROM Customer WHERE Nickname = 'x'", "property 'Nickname' is not queryable"),
        ("SELECT * FROM Vendor WHERE PrimaryEmailAddr = 'a@b.c'", "'PrimaryEmailAddr' is not"),
        ("SELECT * FROM Vendor WHERE AcctNum = '7'", "property 'AcctNum' is not queryable"),
        ("SELECT * FROM Invoice WHERE Line.Amount > '5'", "'Line.Amount' is not queryable"),
        ("SELECT * FROM Invoice WHERE TxnDate >= '06/01/2024'", "'06/01/2024' is not a valid date"),
        ("SELECT * FROM Invoice WHERE TxnDate < '2024-13-45'", "'2024-13-45' is not a valid date"),
        ("SELECT * FROM Bill WHERE DueDate IN ('2024-02-30')", "'2024-02-30' is not a valid"),
        (
            "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2024-13-45'",
            "'2024-13-45' is not a valid date",
        ),
        (
            "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2024-06-01 00:00'",
            "is not a valid date-time",
        ),
        (
            "SELECT * FROM Customer WHERE MetaData.CreateTime < '2024-06-01T25:00:00Z'",
            "is not a valid date-time",
        ),
    ],
)
def test_unqueryable_properties_and_bad_dates_are_4001(
    engine: QueryEngine, query: str, fragment: str
) -> None:
    with pytest.raises(SandboxFault) as info:
        engine.run_text(REALM, query)
    assert (info.value.code, info.value.message) == ("4001", "Invalid query")
    assert info.value.detail.startswith("QueryValidationError: ")
    assert fragment in info.value.detail


def test_dates_compare_as_dates_and_property_names_ignore_case(engine: QueryEngine) -> None:
    stamp = {"CreateTime": "2024-03-01T00:00:00Z", "LastUpdatedTime": "2024-03-01T00:00:00Z"}
    engine.store.bulk_load(
        REALM,
        "Invoice",
        [
            {"Id": str(i), "SyncToken": "0", "MetaData": stamp, "TxnDate": day}
            for i, day in enumerate(("2024-05-31", "2024-06-01", "2024-06-15"), start=1)
        ],
    )
    rows = engine.run_text(REALM, "SELECT * FROM Invoice WHERE txndate >= '2024-06-01'")
    assert [r["TxnDate"] for r in rows.query_response()["Invoice"]] == ["2024-06-01", "2024-06-15"]
    stamp = "SELECT COUNT(*) FROM Customer WHERE metadata.lastupdatedtime >= '2024-03-01'"
    assert engine.run_text(REALM, stamp).query_response() == {"totalCount": 5}
    offset = "SELECT * FROM Customer WHERE displayname LIKE 'Plain%' AND active IN (true, false)"
    assert [r["Id"] for r in engine.run_text(REALM, offset).query_response()["Customer"]] == ["6"]
