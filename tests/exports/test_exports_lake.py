"""Exports read from a real lake: every sample payload round-trips, any snapshot exports."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from qbo_pipeline import entities
from qbo_pipeline.exports import ExportError, export_snapshot
from qbo_pipeline.exports.csv import read_export
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import SnapshotNotFound
from qbo_pipeline.lake.lake import Lake
from tests.conftest import SAMPLES

FIRST = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
SECOND = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
COMPANY = "Zoë's Café 🚀 & Sons"


def sample_payloads() -> dict[str, list[dict[str, Any]]]:
    """Every record of the real captures, by entity, deduplicated by lake key."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(SAMPLES.rglob("*.json")):
        doc = json.loads(path.read_text())
        query = doc.get("QueryResponse")
        if isinstance(query, dict):
            groups = [(k, v) for k, v in query.items() if isinstance(v, list)]
        else:
            groups = [(k, [v]) for k, v in doc.items() if isinstance(v, dict) and "Id" in v]
        for key, items in groups:
            try:
                entity = entities.get(key)
            except entities.UnknownEntityError:
                continue
            for item in items:
                found.setdefault(entity.name, {})[records.record_id(entity, item)] = item
    return {name: list(by_id.values()) for name, by_id in found.items()}


def write_snapshot(realm: Any, when: datetime, data: dict[str, list[dict[str, Any]]]) -> Any:
    with realm.begin(kind="full", server_time=when, company_name=COMPANY) as writer:
        for name, payloads in data.items():
            entity = entities.get(name)
            rows = [records.landing_row(entity, p) for p in payloads]
            batches = [records.rows_to_batch(rows)] if rows else []
            writer.write_entity(name, batches, mode="full", qbo_count=len(payloads))
        return writer.commit()


@pytest.fixture
def realm(tmp_path: Path) -> Any:
    return Lake(tmp_path / "lake").realm("9341453908059321")


def canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_every_leaf_of_a_snapshot_appears_in_the_csv_set(realm: Any, tmp_path: Path) -> None:
    data = sample_payloads()
    info = write_snapshot(realm, FIRST, data)
    result = export_snapshot(realm, "latest", formats=["csv"], out_dir=tmp_path / "exports")
    assert result.snapshot_id == info.snapshot_id
    assert result.folder == tmp_path / "exports" / "Zoë's_Café_🚀_&_Sons" / info.snapshot_id
    assert set(result.records) == set(data)
    rebuilt = read_export(result.folder)
    assert set(rebuilt) == set(data)
    for name in data:
        stored = [canon(p) for p in realm.iter_payloads(info.snapshot_id, name)]
        assert [canon(p) for p in rebuilt[name]] == stored, name
        assert len(stored) == len(data[name])


def test_raw_json_is_byte_identical_to_the_lake(realm: Any, tmp_path: Path) -> None:
    data = {k: v for k, v in sample_payloads().items() if k in ("Invoice", "Preferences")}
    info = write_snapshot(realm, FIRST, data)
    result = export_snapshot(
        realm, info.snapshot_id, formats="json", raw_json=True, out_dir=tmp_path / "x"
    )
    for entry in result.files:
        lines = (result.folder / entry.name).read_text(encoding="utf-8").splitlines()
        stored = [
            text
            for batch in realm.iter_versions(info.snapshot_id, entry.entity, columns=["payload"])
            for text in batch.column(0).to_pylist()
        ]
        assert lines == stored


def test_any_historical_snapshot_can_be_exported(realm: Any, tmp_path: Path) -> None:
    invoices = sample_payloads()["Invoice"]
    first = write_snapshot(realm, FIRST, {"Invoice": invoices})
    changed = copy.deepcopy(invoices[1:])
    changed[0]["PrivateNote"] = '=HYPERLINK("http://evil")'
    changed[0]["SyncToken"] = str(int(changed[0]["SyncToken"]) + 1)
    second = write_snapshot(realm, SECOND, {"Invoice": changed})
    out = tmp_path / "exports"

    old = export_snapshot(realm, first.snapshot_id[:9], formats=["json"], out_dir=out)
    assert old.snapshot_id == first.snapshot_id
    assert old.records == {"Invoice": len(invoices)}
    by_date = export_snapshot(realm, "2026-11-20T23:00:00+00:00", formats=["json"], out_dir=out)
    assert by_date.snapshot_id == first.snapshot_id
    new = export_snapshot(realm, "latest", formats=["json", "csv"], out_dir=out)
    assert new.snapshot_id == second.snapshot_id
    assert new.records == {"Invoice": len(invoices) - 1}
    assert old.folder != new.folder
    (old_json,) = [f for f in old.files if f.format == "json"]
    assert old_json.name.endswith("-Invoice-2026-11-20-050000-1.json")
    assert [p["Id"] for p in json.loads((old.folder / old_json.name).read_text())] == [
        p["Id"] for p in realm.iter_payloads(first.snapshot_id, "Invoice")
    ]
    main = next(f for f in new.files if f.format == "csv" and f.table == "")
    assert "'=HYPERLINK" in (new.folder / main.name).read_text(encoding="utf-8")


def test_entity_selection_and_errors(realm: Any, tmp_path: Path) -> None:
    data = {k: v for k, v in sample_payloads().items() if k in ("Invoice", "Customer")}
    data["Class"] = []
    write_snapshot(realm, FIRST, data)
    out = tmp_path / "exports"
    result = export_snapshot(realm, formats=["xml"], entities=["customer"], out_dir=out)
    assert result.records == {"Customer": len(data["Customer"])}
    everything = export_snapshot(realm, formats=["xml"], out_dir=out)
    assert list(everything.records) == ["Customer", "Invoice"], "catalogue order, empty skipped"
    with pytest.raises(ExportError, match="holds no Bill; it holds: Class, Customer, Invoice"):
        export_snapshot(realm, formats=["csv"], entities=["Bill"], out_dir=out)
    with pytest.raises(ExportError, match="unknown QBO entity"):
        export_snapshot(realm, formats=["csv"], entities=["Nope"], out_dir=out)
    with pytest.raises(SnapshotNotFound):
        export_snapshot(realm, "19990101T000000.000000Z", formats=["csv"], out_dir=out)


def test_a_lake_on_an_fsspec_url_exports_too(tmp_path: Path) -> None:
    realm = Lake(f"memory://exports-test-{tmp_path.name}").realm("42")
    data = {k: v for k, v in sample_payloads().items() if k in ("Invoice", "Preferences")}
    info = write_snapshot(realm, FIRST, data)
    result = export_snapshot(realm, formats=["csv", "xml"], out_dir=tmp_path / "out")
    assert result.snapshot_id == info.snapshot_id
    rebuilt = read_export(result.folder)
    assert {k: [canon(p) for p in v] for k, v in rebuilt.items()} == {
        k: [canon(p) for p in realm.iter_payloads(info.snapshot_id, k)] for k in data
    }
