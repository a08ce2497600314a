from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import samples

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import InvalidRecordError
from tests.conftest import SAMPLES

EXTRA = SAMPLES / "extra"


def capture(name: str) -> dict[str, Any]:
    """A real QBO wire capture of tests/fixtures/samples/extra."""
    return json.loads((EXTRA / name).read_text())


def test_canonical_json_is_stable_across_key_order() -> None:
    a = {"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": "é"}}
    b = {"a": {"x": "é", "y": [1, {"c": 3, "d": 2}]}, "b": 1}
    assert records.canonical_json(a) == records.canonical_json(b)
    assert records.canonical_json(a) == '{"a":{"x":"é","y":[1,{"c":3,"d":2}]},"b":1}'


def test_canonical_json_keeps_numbers_as_parsed() -> None:
    text = '{"i": 275, "f": 12.75, "z": 1.0, "big": 123456789012345678901234567890}'
    value = records.load_json(text)
    assert value["big"] == 123456789012345678901234567890
    assert records.canonical_json(value) == (
        '{"big":123456789012345678901234567890,"f":12.75,"i":275,"z":1.0}'
    )
    assert records.load_json(records.canonical_json(value)) == value


def test_load_json_rejects_garbage() -> None:
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        records.load_json(b"{not json")


def test_content_hash_ignores_volatile_fields_only() -> None:
    ent = entities.get("Attachable")
    (payload,) = samples()["Attachable"]
    other = dict(payload, TempDownloadUri="https://elsewhere.invalid/x")
    assert records.content_hash(ent, payload) == records.content_hash(ent, other)
    assert records.content_hash(ent, payload) != records.content_hash(
        ent, dict(payload, FileName="y.xml")
    )
    assert len(records.content_hash(ent, payload)) == 32


def test_landing_row_of_a_real_invoice() -> None:
    ent = entities.get("Invoice")
    invoice = samples()["Invoice"][0]
    row = records.landing_row(ent, invoice)
    assert row["entity"] == "Invoice"
    assert row["id"] == invoice["Id"]
    assert row["sync_token"] == invoice["SyncToken"]
    assert row["txn_date"] == date.fromisoformat(invoice["TxnDate"])
    assert row["total_amt"] == float(invoice["TotalAmt"])
    assert row["display_name"] == invoice["DocNumber"]
    assert row["last_updated_at"] == datetime.fromisoformat(
        invoice["MetaData"]["LastUpdatedTime"]
    ).astimezone(UTC)
    assert row["status"] is None and row["active"] is None
    assert records.load_json(row["payload"]) == invoice
    assert row["content_hash"] == records.content_hash(ent, invoice)


def test_landing_row_name_list_and_singletons() -> None:
    customer = samples()["Customer"][0]
    row = records.landing_row(entities.get("Customer"), customer)
    assert row["active"] is customer["Active"]
    assert row["display_name"] == customer["DisplayName"]
    prefs = records.landing_row(entities.get("Preferences"), samples()["Preferences"][0])
    assert prefs["id"] == "Preferences"


def test_landing_row_rejects_bad_records() -> None:
    ent = entities.get("Invoice")
    with pytest.raises(InvalidRecordError, match="Invoice record has no usable Id"):
        records.landing_row(ent, {"TxnDate": "2026-01-01"})
    with pytest.raises(InvalidRecordError, match="JSON object"):
        records.landing_row(ent, ["Id", "1"])  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="not representable"):
        records.landing_row(ent, {"Id": "1", "x": object()})


def test_deleted_row_and_batch_schema() -> None:
    ent = entities.get("Estimate")
    row = records.deleted_row(ent, "979", "2015-12-23T12:55:50-08:00")
    assert row["status"] == records.DELETED and row["payload"] is None
    assert row["last_updated_at"] == datetime(2015, 12, 23, 20, 55, 50, tzinfo=UTC)
    live = records.landing_row(ent, {"Id": "34", "TxnDate": "2015-12-01"})
    batch = records.rows_to_batch([live, row])
    assert batch.schema == records.LANDING_SCHEMA
    assert batch.num_rows == 2
    assert batch.column("txn_date").type == pa.date32()


def test_key_digest_is_order_independent() -> None:
    ids, hashes = ["1", "2", "3"], ["a" * 32, "b" * 32, "c" * 32]
    forward = records.key_digest(ids, hashes)
    assert forward == records.key_digest(ids[::-1], hashes[::-1])
    assert forward != records.key_digest(ids[:2], hashes[:2])
    assert records.key_digest([], []) == "0" * 16


def test_record_id_of_a_captured_recurring_transaction_is_its_wrapped_id() -> None:
    ent = entities.get("RecurringTransaction")
    (payload,) = capture("recurringtransaction_doc.json")["QueryResponse"]["RecurringTransaction"]
    assert "Id" not in payload and payload["Bill"]["Id"] == "20"
    assert records.record_id(ent, payload) == "20"
    row = records.landing_row(ent, payload)
    assert row["id"] == "20"
    assert records.load_json(row["payload"]) == payload, "the wire shape is kept as it came"
    # A top-level Id (the shape restore writes) wins over the wrapped one, as in version_of.
    assert records.record_id(ent, {"Id": "7", "Invoice": {"Id": "20"}}) == "7"


def test_record_id_of_a_captured_exchange_rate_is_currency_at_date() -> None:
    ent = entities.get("ExchangeRate")
    payload = capture("exchangerate_doc.json")["ExchangeRate"]
    assert "Id" not in payload
    assert records.record_id(ent, payload) == "EUR@2015-07-07"
    assert records.landing_row(ent, payload)["id"] == "EUR@2015-07-07"
    assert records.record_id(ent, dict(payload, Id="12")) == "12", "a real Id is kept"
    other_day = dict(payload, AsOfDate="2015-07-08")
    assert records.record_id(ent, other_day) != records.record_id(ent, payload)


@pytest.mark.parametrize(
    ("entity", "payload", "message"),
    [
        ("RecurringTransaction", {"Bill": {"SyncToken": "0"}}, "no usable Id: None"),
        ("RecurringTransaction", {"Bill": {"Id": "1"}, "Invoice": {"Id": "2"}}, "exactly one"),
        ("RecurringTransaction", {"Customer": {"Id": "1"}}, "exactly one"),
        ("ExchangeRate", {"SourceCurrencyCode": "EUR"}, "AsOfDate"),
        ("ExchangeRate", {"SourceCurrencyCode": " ", "AsOfDate": "2015-07-07"}, "AsOfDate"),
        ("Invoice", {"Bill": {"Id": "1"}}, "no usable Id"),
        ("Invoice", {"SourceCurrencyCode": "EUR", "AsOfDate": "2015-07-07"}, "no usable Id"),
    ],
)
def test_record_id_without_a_key_names_the_problem(
    entity: str, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        records.record_id(entities.get(entity), payload)


def test_record_id_keeps_non_numeric_ids() -> None:
    ent = entities.get("TaxCode")
    assert records.record_id(ent, {"Id": "TAX", "Name": "TAX"}) == "TAX"
    assert records.landing_row(ent, {"Id": "NON", "Name": "NON"})["id"] == "NON"


def test_a_wrapped_recurring_transaction_lands_with_its_version() -> None:
    from qbo_pipeline import entities as catalogue

    payload = {
        "Bill": {
            "Id": "20",
            "SyncToken": "3",
            "MetaData": {"LastUpdatedTime": "2020-07-01T10:00:00-07:00"},
            "RecurringInfo": {"Name": "Telephone Bill", "Active": True},
            "TotalAmt": 74.36,
        }
    }
    row = records.landing_row(catalogue.get("RecurringTransaction"), payload)
    assert (row["id"], row["sync_token"]) == ("20", "3")
    assert row["last_updated_at"] is not None and row["active"] is True
    assert row["display_name"] == "Telephone Bill"
