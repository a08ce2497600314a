from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qbo_pipeline.sandbox.seed import seed_from_folder
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES

REALM = "4620816365000000004"


def test_seeds_every_query_response_and_single_read(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "sandbox.sqlite")
    counts = seed_from_folder(store, REALM, SAMPLES)
    invoices = json.loads((SAMPLES / "query_invoice_all.json").read_text())
    assert counts["Invoice"] >= len(invoices["QueryResponse"]["Invoice"])
    assert store.count(REALM, "Account") == 92
    assert store.count(REALM, "Vendor") >= 27
    assert store.get(REALM, "Customer", "2")["DisplayName"] == "Bill's Windsurf Shop"
    # account 5 is read inactive in 2018 and listed active in 2026: the newest version wins
    assert store.get(REALM, "Account", "5")["MetaData"]["LastUpdatedTime"] > "2020"
    # single-entity reads keep their ids
    assert store.get(REALM, "Preferences", "1") is not None
    assert store.get(REALM, "Attachable", "5000000000000503624")["FileName"] == "no_detail.xml"
    assert store.company_name(REALM) == "Larry's Bakery"
    assert "Customer" in counts and "Employee" in counts


def test_ids_and_payloads_are_kept_as_given(tmp_path: Path) -> None:
    store = SandboxStore(":memory:")
    seed_from_folder(store, REALM, SAMPLES)
    wire = json.loads((SAMPLES / "query_bill_all.json").read_text())["QueryResponse"]["Bill"]
    for bill in wire:
        assert store.get(REALM, "Bill", bill["Id"]) == bill


def test_unknown_entities_are_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copy(SAMPLES / "query_item_all.json", tmp_path / "items.json")
    (tmp_path / "odd.json").write_text(
        json.dumps({"QueryResponse": {"Widget": [{"Id": "1"}], "startPosition": 1}})
    )
    (tmp_path / "notes.txt").write_text("not json, not loaded")
    store = SandboxStore(":memory:")
    with caplog.at_level(logging.WARNING):
        counts = seed_from_folder(store, REALM, tmp_path, company_name="Mine")
    assert counts == {"Item": 23}
    assert "Widget" in caplog.text
    assert store.company_name(REALM) == "Mine"


def test_a_malformed_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "query_item_all.json", tmp_path / "a_items.json")
    (tmp_path / "b_broken.json").write_text('{"QueryResponse": {"Item": [')
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Existing", clock_start=datetime.now(UTC))
    with pytest.raises(ValueError, match=r"b_broken\.json"):
        seed_from_folder(store, REALM, tmp_path)
    assert store.count(REALM, "Item") == 0
    with pytest.raises(FileNotFoundError, match="does not exist"):
        seed_from_folder(store, REALM, tmp_path / "missing")
