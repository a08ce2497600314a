"""The snapshot checks fail when they should, on lakes built with each defect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from qbo_pipeline import entities
from qbo_pipeline.defs.ingest import checks
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake, RealmLake, SnapshotInfo

REALM = "4620816365001"
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _record(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "Id": record_id,
        "SyncToken": "0",
        "MetaData": {"LastUpdatedTime": "2026-11-01T10:00:00-08:00"},
        **fields,
    }


def _customer(record_id: str, **fields: Any) -> dict[str, Any]:
    return _record(record_id, DisplayName=f"Customer {record_id}", Active=True, **fields)


def _invoice(record_id: str, customer: str) -> dict[str, Any]:
    return _record(
        record_id,
        CustomerRef={"value": customer},
        TxnDate="2026-11-01",
        TotalAmt=100.0,
        CurrencyRef={"value": "USD"},
        Line=[
            {
                "Amount": 100.0,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "NON"}},
            }
        ],
    )


def _snapshot(
    realm: RealmLake, when: datetime, data: dict[str, list[dict[str, Any]]]
) -> SnapshotInfo:
    with realm.begin(kind="full", server_time=when, company_name="Zoë's Café") as writer:
        for name, payloads in data.items():
            entity = entities.get(name)
            batch = records.rows_to_batch([records.landing_row(entity, p) for p in payloads])
            writer.write_entity(name, [batch], mode="full", qbo_count=len(payloads))
        return writer.commit()


@pytest.fixture
def realm(tmp_path: Path) -> RealmLake:
    return Lake(tmp_path / "lake").realm(REALM)


def _company(invoice_customer: str = "1") -> dict[str, list[dict[str, Any]]]:
    return {
        "Customer": [_customer("1"), _customer("2")],
        "Item": [_record("1", Name="Services", Type="Service", Active=True)],
        "Invoice": [_invoice("10", "1"), _invoice("11", invoice_customer)],
    }


def test_a_sound_snapshot_passes_every_check(realm: RealmLake) -> None:
    info = _snapshot(realm, T0, _company())
    selected = [
        dg.AssetCheckKey(dg.AssetKey(["qbo", name]), check)
        for name in ("Customer", "Item", "Invoice")
        for check in (checks.COUNT_CHECK, checks.REFERENCES_CHECK, checks.DRIFT_CHECK)
    ]
    results = list(checks.snapshot_checks(realm, info, selected))
    assert [r.description for r in results if not r.passed] == []
    by_key = {(r.asset_key.path[-1], r.check_name): r for r in results}
    refs = by_key[("Invoice", checks.REFERENCES_CHECK)].metadata
    # CustomerRef and ItemRef of two invoices; CurrencyRef and the NON tax code are not ids.
    assert refs["references_checked"].value == 4
    assert by_key[("Customer", checks.REFERENCES_CHECK)].metadata["references_checked"].value == 0


def test_a_broken_reference_fails_naming_the_record(realm: RealmLake) -> None:
    info = _snapshot(realm, T0, _company(invoice_customer="99"))
    [result] = checks.reference_results(realm, info, ["Invoice"])
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["dangling"].value == 1
    assert "Invoice 11 CustomerRef -> Customer 99" in (result.description or "")


def test_a_count_mismatch_fails(realm: RealmLake) -> None:
    info = _snapshot(realm, T0, _company())
    assert checks.count_result(realm, info, "Invoice").passed
    # A commit record that no longer agrees with the data it describes (tampered, or a writer
    # bug): the recount over the manifest catches it.
    record = dict(info.record)
    record["entities"] = {**record["entities"], "Invoice": {**record["entities"]["Invoice"]}}
    record["entities"]["Invoice"]["live"] = 3
    record["entities"]["Invoice"]["qbo_count"] = 3
    realm.write_commit(record)
    tampered = realm.info(info.snapshot_id)
    result = checks.count_result(realm, tampered, "Invoice")
    assert not result.passed
    assert "manifest holds 2 records but the commit record says 3" in (result.description or "")
    assert "QBO's COUNT(*) was 3" in (result.description or "")


def test_an_entity_missing_from_the_snapshot_fails_unless_multicurrency_only(
    realm: RealmLake,
) -> None:
    info = _snapshot(realm, T0, _company())
    assert not checks.count_result(realm, info, "Bill").passed
    assert checks.count_result(realm, info, "CompanyCurrency").passed


def test_new_field_paths_are_a_warning_naming_them(realm: RealmLake) -> None:
    _snapshot(realm, T0, _company())
    data = _company()
    data["Customer"][1] = _customer(
        "2", SyncToken="1", FutureField={"nested": [{"x": 1}]}, PrimaryEmailAddr={"Address": "a@b"}
    )
    info = _snapshot(realm, T0 + timedelta(hours=1), data)
    result = checks.drift_result(realm, info, "Customer")
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "FutureField" in (result.description or "")
    assert "PrimaryEmailAddr" in (result.description or "")
    assert "FutureField.nested" not in (result.description or "")  # only the outermost path
    assert checks.drift_result(realm, info, "Invoice").passed


def test_no_drift_is_reported_for_a_first_snapshot(realm: RealmLake) -> None:
    info = _snapshot(realm, T0, _company())
    assert checks.new_field_paths(realm, info, "Customer") == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"A": 1}, ["A"]),
        ({"A": {"B": 1}}, ["A", "A.B"]),
        ({"Line": [{"Amount": 1}, {"Id": "2"}]}, ["Line", "Line[].Amount", "Line[].Id"]),
        ({"A": [[{"B": 1}]]}, ["A", "A[][].B"]),
    ],
)
def test_field_paths(payload: dict[str, Any], expected: list[str]) -> None:
    assert sorted(set(checks.field_paths(payload))) == expected


def test_freshness_names_stale_and_missing_companies(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    info = _snapshot(lake.realm(REALM), T0, _company())
    fresh_now = info.committed_at + timedelta(hours=1)
    assert checks.stale_realms(lake, [REALM], max_age=timedelta(hours=26), now=fresh_now) == {}
    late = info.committed_at + timedelta(hours=30)
    stale = checks.stale_realms(lake, [REALM, "123"], max_age=timedelta(hours=26), now=late)
    assert stale["123"] == "no snapshot yet"
    assert "30.0 hours old" in stale[REALM]


def test_freshness_hours_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_FRESHNESS_HOURS", "-3")
    with pytest.raises(ValueError, match="QBO_FRESHNESS_HOURS"):
        checks.freshness_hours()
    monkeypatch.setenv("QBO_FRESHNESS_HOURS", "12")
    assert checks.freshness_hours() == 12.0
