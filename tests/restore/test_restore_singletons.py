"""CompanyInfo and Preferences: sparse reverts of their writable fields, on the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.config import Settings
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.restore import singletons
from qbo_pipeline.restore.apply import apply_plan, approve
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan import PlanRequest, build_plan
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.sources import ClientLive
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.restore.verify import verify_restore
from qbo_pipeline.sandbox.server import SandboxServer
from tests.restore.conftest import DictLake

BEFORE = "20260101T000000.000000Z"
AFTER = "20260101T000100.000000Z"
COMPANY = entities.ENTITIES["CompanyInfo"]
PREFS = entities.ENTITIES["Preferences"]


@pytest.fixture
def client(sandbox: SandboxServer, tmp_path: Path) -> Iterator[QBOClient]:
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.05)
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=retry) as qbo:
        yield qbo


def settings_snapshot(client: QBOClient) -> dict[tuple[str, str], dict[str, Any]]:
    """The two singletons as the lake keys them (by entity name)."""
    return {
        ("CompanyInfo", "CompanyInfo"): client.company_info(),
        ("Preferences", "Preferences"): client.preferences(),
    }


def edit(client: QBOClient, entity: entities.Entity, request: str, **fields: Any) -> None:
    current = client.read(entity, "")
    body = {"Id": current["Id"], "SyncToken": current["SyncToken"], **fields}
    client.update(entity, body, sparse=True, request_id=request)


def test_company_settings_revert_their_writable_fields_and_list_the_rest(client, tmp_path):
    before = settings_snapshot(client)
    company, prefs = before[("CompanyInfo", "CompanyInfo")], before[("Preferences", "Preferences")]
    sales = dict(prefs["SalesFormsPrefs"])
    edit(
        client,
        COMPANY,
        "settings-1",
        CompanyName="Renamed by mistake",
        PrimaryPhone={"FreeFormNumber": "000"},
        Country="CA",
    )
    edit(
        client,
        PREFS,
        "settings-2",
        SalesFormsPrefs={**sales, "DefaultCustomerMessage": "overwritten"},
        CurrencyPrefs={"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "CAD"}},
    )
    lake = DictLake({BEFORE: before, AFTER: settings_snapshot(client)})
    request = PlanRequest(
        realm_id=client.realm_id,
        snapshot_id=BEFORE,
        latest_snapshot_id=AFTER,
        scope=Scope.parse(entity_names=["CompanyInfo", "Preferences"]),
    )
    plan = build_plan(ClientLive(client), lake, request)
    by = {s.entity: s for s in plan.steps}
    info, settings = by["CompanyInfo"], by["Preferences"]
    assert info.action is Action.UPDATE and info.sparse and not info.conflict
    assert set(info.payload) == {"Id", "SyncToken", "CompanyName", "PrimaryPhone"}
    assert info.payload["CompanyName"] == company["CompanyName"]
    assert "Country (fixed when the company was created" in info.reason
    assert settings.action is Action.UPDATE and set(settings.payload) == {
        "Id",
        "SyncToken",
        "SalesFormsPrefs",
    }
    assert "CurrencyPrefs.HomeCurrency.value" in settings.reason

    store = PlanStore(str(tmp_path / "restore"))
    store.save(plan)
    approve(store, plan.plan_id)
    result = apply_plan(client, store, plan.plan_id)
    assert result.complete and result.counts["done"] == 2
    live_company, live_prefs = client.company_info(), client.preferences()
    assert live_company["CompanyName"] == company["CompanyName"]
    assert live_company["PrimaryPhone"] == company["PrimaryPhone"]
    assert live_company["Country"] == "CA"  # not restorable: left as it is, and said so
    assert live_prefs["SalesFormsPrefs"] == prefs["SalesFormsPrefs"]
    assert live_prefs["CurrencyPrefs"]["HomeCurrency"] == {"value": "CAD"}

    check = DictLake({BEFORE: before, "20260101T000200.000000Z": settings_snapshot(client)})
    report = verify_restore(plan, store.status(plan.plan_id), check, "20260101T000200.000000Z")
    assert report["ok"] and report["checked"] == 2, report["differences"]

    # Planned again, only the read-only differences remain, as not restorable.
    again = build_plan(ClientLive(client), check, request)
    again_by = {s.entity: s for s in again.steps}
    assert again_by["CompanyInfo"].action is Action.UNSUPPORTED
    assert "Country" in again_by["CompanyInfo"].reason
    assert again.summary()["writes"] == 0


def test_revert_keeps_read_only_parts_of_a_writable_section_at_their_live_value():
    snapshot = {
        "Id": "1",
        "SyncToken": "3",
        "AccountingInfoPrefs": {"TrackDepartments": True, "BookCloseDate": "2025-12-31"},
        "WhatIsThis": 1,
    }
    live = {
        "Id": "1",
        "SyncToken": "7",
        "AccountingInfoPrefs": {"TrackDepartments": False, "BookCloseDate": "2026-03-31"},
        "WhatIsThis": 2,
    }
    revert = singletons.plan_revert(PREFS, snapshot, live, field_changes(live, snapshot))
    assert revert.payload == {
        "Id": "1",
        "SyncToken": "7",
        "AccountingInfoPrefs": {"TrackDepartments": True, "BookCloseDate": "2026-03-31"},
    }
    blocked = revert.blocked_text()
    assert "AccountingInfoPrefs.BookCloseDate" in blocked and "WhatIsThis (not known" in blocked
    assert singletons.writable_view(PREFS, live) == {
        "AccountingInfoPrefs": {"TrackDepartments": False}
    }
