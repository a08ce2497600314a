from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qbo_pipeline import entities
from qbo_pipeline.qbo.query import (
    Condition,
    QueryBuildError,
    eq,
    in_,
    like,
    mentions_active,
    quote,
    select,
    with_inactive,
)

HOSTILE = [
    'O\'Brien \\ "Ltd" 🚀',
    "x' OR Id > '0",
    "\\'",
    "trailing backslash \\",
    "''",
    "Café Ünïcødé 中文",
    "semi; DROP",
    "line\nbreak",
]


def unquote(literal: str) -> str:
    """A reference reader of QBO string literals (backslash escapes)."""
    assert literal[0] == "'" and literal[-1] == "'"
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            out.append(body[i + 1])
            i += 2
            continue
        assert ch != "'", f"unescaped quote in {literal!r}"
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_hostile_strings(value: str) -> None:
    literal = quote(value)
    assert unquote(literal) == value


def test_quote_escapes() -> None:
    assert quote("O'Brien") == "'O\\'Brien'"
    assert quote("a\\b") == "'a\\\\b'"
    assert quote("🚀") == "'🚀'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (42, "'42'"),
        (Decimal("300.00"), "'300.00'"),
        (1.5, "'1.5'"),
        (date(2024, 1, 31), "'2024-01-31'"),
        (datetime(2024, 1, 31, 8, 0, tzinfo=UTC), "'2024-01-31T08:00:00+00:00'"),
        (
            datetime(2024, 1, 31, 8, 0, tzinfo=timezone(timedelta(hours=-7))),
            "'2024-01-31T08:00:00-07:00'",
        ),
    ],
)
def test_quote_types(value: object, expected: str) -> None:
    assert quote(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "None"),
        ("a\x00b", "NUL"),
        (datetime(2024, 1, 1), "timezone"),
        (object(), "object"),
        (float("nan"), "not a number"),
    ],
)
def test_quote_refuses(value: object, message: str) -> None:
    with pytest.raises(QueryBuildError, match=message):
        quote(value)


def test_select_full() -> None:
    q = select(
        "customer",
        where=[eq("DisplayName", "O'Brien"), Condition("Balance", ">", 0)],
        order_by="MetaData.LastUpdatedTime desc",
        start=1001,
        max_results=1000,
    )
    assert q == (
        "SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien' AND Balance > '0' "
        "ORDERBY MetaData.LastUpdatedTime DESC STARTPOSITION 1001 MAXRESULTS 1000"
    )


def test_select_count_and_fields() -> None:
    inv = entities.get("Invoice")
    assert select(inv, count=True) == "SELECT COUNT(*) FROM Invoice"
    assert select(inv, fields=["Id", "SyncToken"]) == "SELECT Id, SyncToken FROM Invoice"
    with pytest.raises(QueryBuildError):
        select(inv, count=True, fields=["Id"])


def test_in_and_like() -> None:
    q = select("Vendor", where=[in_("Id", ["1", "2"]), like("DisplayName", "%'s%")])
    assert q == "SELECT * FROM Vendor WHERE Id IN ('1', '2') AND DisplayName LIKE '%\\'s%'"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Condition("Name; DROP", "=", "x"),
        lambda: Condition("Name", "OR", "x"),
        lambda: Condition("Name", "!=", "x"),
        lambda: Condition("Id", ">", "0"),
        lambda: Condition("Id", "IN", "12"),
        lambda: Condition("Id", "IN", []),
        lambda: select("Invoice", start=0),
        lambda: select("Invoice", max_results=1001),
        lambda: select("Invoice", max_results=True),
        lambda: select("Invoice", order_by="Id; DROP"),
        lambda: select("Invoice", fields=["Id", "x y"]),
        lambda: select("Invoice", where=["Id = '1'"]),
    ],
)
def test_malformed_parts_are_refused(build: object) -> None:
    with pytest.raises(QueryBuildError):
        build()  # type: ignore[operator]


def test_unknown_entity_is_named() -> None:
    with pytest.raises(entities.UnknownEntityError, match="Custmoer"):
        select("Custmoer")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_cannot_add_terms(value: str) -> None:
    q = select("Customer", where=[eq("DisplayName", value)])
    # Blank the one literal out: what remains must be exactly the skeleton.
    skeleton = re.sub(r"'(?:\\.|[^'\\])*'", "?", q, count=1)
    assert skeleton == "SELECT * FROM Customer WHERE DisplayName = ?"


def test_with_inactive() -> None:
    customer = entities.get("Customer")
    invoice = entities.get("Invoice")
    assert with_inactive(invoice, None) is None
    assert select(customer, where=with_inactive(customer, None)) == (
        "SELECT * FROM Customer WHERE Active IN (true, false)"
    )
    assert select(customer, where=with_inactive(customer, "Balance > '0'")) == (
        "SELECT * FROM Customer WHERE Active IN (true, false) AND Balance > '0'"
    )
    own = [eq("Active", False)]
    assert with_inactive(customer, own) == own
    assert with_inactive(customer, "active = false") == "active = false"


def test_mentions_active_ignores_literals() -> None:
    assert not mentions_active("DisplayName = 'Active Co'")
    assert mentions_active("Active = true")
    assert not mentions_active("ActiveFlag = true")
    assert not mentions_active(None)
