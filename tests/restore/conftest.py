"""In-memory stand-ins for the live company and the lake, for the planner's pure tests, and the
sandbox companies and clients of the drills.

The drills (test_restore_drills.py) run the real client, lake and sandbox; these fakes only let the
ordering, classification and conflict rules be tested record by record.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline.config import Settings
from qbo_pipeline.entities import Entity
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.server import SandboxServer, realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import PINNED_NOW
from tests.restore.into_drill import RETRY


class DictLive:
    """A live company held in a dict: {(entity, id): payload}."""

    def __init__(self, records: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.records = copy.deepcopy(records or {})
        self.preferences: dict[str, Any] = {"AccountingInfoPrefs": {}}
        self.reads = 0

    def read(self, entity: Entity, record_id: str) -> dict[str, Any] | None:
        self.reads += 1
        found = self.records.get((entity.name, record_id))
        return copy.deepcopy(found) if found is not None else None

    def iter_records(self, entity: Entity) -> Iterator[dict[str, Any]]:
        for (name, _), payload in sorted(self.records.items()):
            if name == entity.name:
                yield copy.deepcopy(payload)

    def find_by_name(self, entity: Entity, name: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(p)
            for (e, _), p in self.records.items()
            if e == entity.name
            and p.get(entity.name_field or "") == name
            and p.get("Active") is not False
        ]

    def singleton(self, entity: Entity) -> dict[str, Any]:
        if entity.name == "Preferences":
            return copy.deepcopy(self.preferences)
        return {"Id": "1", "CompanyName": "Test"}

    def server_time(self) -> datetime:
        return datetime(2026, 5, 5, 12, 0, tzinfo=UTC)


class DictLake:
    """Snapshots held in dicts: {snapshot_id: {(entity, id): payload}}."""

    def __init__(self, snapshots: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> None:
        self.snapshots = copy.deepcopy(snapshots)

    def get(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        found = self.snapshots[snapshot_id].get((entity, record_id))
        return copy.deepcopy(found) if found is not None else None

    def iter(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        for (name, _), payload in sorted(self.snapshots[snapshot_id].items()):
            if name == entity:
                yield copy.deepcopy(payload)

    def manifest(self, snapshot_id: str, names: Iterable[str]) -> dict[tuple[str, str], str]:
        wanted = set(names)
        return {
            key: repr(sorted(p.items()))
            for key, p in self.snapshots[snapshot_id].items()
            if key[0] in wanted
        }

    def entities(self, snapshot_id: str) -> set[str]:
        return {name for name, _ in self.snapshots[snapshot_id]}

    def has_blob(self, sha256: str) -> bool:
        return False

    def blob_of(self, snapshot_id: str, record_id: str) -> str | None:
        return None


def _meta(updated: str = "2026-04-01T10:00:00-07:00") -> dict[str, str]:
    return {"CreateTime": "2026-01-01T10:00:00-07:00", "LastUpdatedTime": updated}


def company() -> dict[tuple[str, str], dict[str, Any]]:
    """A small company: parent/child customers, items, invoices, a payment and its deposit."""
    recs: list[tuple[str, dict[str, Any]]] = [
        ("Account", {"Id": "4", "Name": "Checking", "AccountType": "Bank", "Active": True}),
        ("Account", {"Id": "79", "Name": "Sales", "AccountType": "Income", "Active": True}),
        (
            "Customer",
            {"Id": "1", "DisplayName": "Amy's Bird Sanctuary", "Active": True, "Balance": 100},
        ),
        (
            "Customer",
            {
                "Id": "2",
                "DisplayName": "Amy's Job",
                "Active": True,
                "Job": True,
                "ParentRef": {"value": "1"},
                "FullyQualifiedName": "Amy's Bird Sanctuary:Amy's Job",
            },
        ),
        (
            "Item",
            {
                "Id": "5",
                "Name": "Rock Fountain",
                "Type": "Service",
                "Active": True,
                "IncomeAccountRef": {"value": "79"},
            },
        ),
        (
            "Item",
            {
                "Id": "6",
                "Name": "Pump",
                "Type": "Service",
                "Active": True,
                "IncomeAccountRef": {"value": "79"},
            },
        ),
        (
            "Invoice",
            {
                "Id": "130",
                "DocNumber": "1037",
                "TxnDate": "2026-04-08",
                "TotalAmt": 275,
                "Balance": 0,
                "CustomerRef": {"value": "1"},
                "LinkedTxn": [{"TxnId": "180", "TxnType": "Payment"}],
                "Line": [
                    {
                        "Id": "1",
                        "Amount": 275,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "5"}},
                    }
                ],
            },
        ),
        (
            "Invoice",
            {
                "Id": "131",
                "DocNumber": "1038",
                "TxnDate": "2026-04-09",
                "TotalAmt": 12,
                "Balance": 0,
                "CustomerRef": {"value": "2"},
                "LinkedTxn": [{"TxnId": "180", "TxnType": "Payment"}],
                "Line": [
                    {
                        "Id": "1",
                        "Amount": 12,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "6"}},
                    }
                ],
            },
        ),
        (
            "Payment",
            {
                "Id": "180",
                "TxnDate": "2026-04-10",
                "TotalAmt": 287,
                "CustomerRef": {"value": "1"},
                "DepositToAccountRef": {"value": "4"},
                "LinkedTxn": [{"TxnId": "200", "TxnType": "Deposit"}],
                "Line": [
                    {"Amount": 275, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
                    {"Amount": 12, "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
                ],
            },
        ),
        (
            "Deposit",
            {
                "Id": "200",
                "TxnDate": "2026-04-11",
                "TotalAmt": 287,
                "DepositToAccountRef": {"value": "4"},
                "Line": [
                    {
                        "Amount": 287,
                        "LinkedTxn": [{"TxnId": "180", "TxnType": "Payment", "TxnLineId": "0"}],
                    }
                ],
            },
        ),
    ]
    out = {}
    for entity, payload in recs:
        payload = {
            **payload,
            "SyncToken": "0",
            "MetaData": _meta(),
            "domain": "QBO",
            "sparse": False,
        }
        out[(entity, payload["Id"])] = payload
    return out


@pytest.fixture
def small_company() -> dict[tuple[str, str], dict[str, Any]]:
    return company()


@pytest.fixture(scope="session")
def larger_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated company of 600 transactions (over 60 invoices), built once per session,
    pinned in time like the shared template (the same records whatever the day)."""
    path = tmp_path_factory.mktemp("restore-larger") / "sandbox.sqlite3"
    store = SandboxStore(path)
    try:
        generate_company(store, realm_id_for(0), seed=42, transactions=600, anchor=PINNED_NOW)
    finally:
        store.close()
    return path


@pytest.fixture
def larger_sandbox(larger_template: Path, tmp_path: Path) -> Iterator[SandboxServer]:
    """A started SandboxServer on a copy of the larger company, stopped after the test."""
    state = tmp_path / "larger.sqlite3"
    shutil.copyfile(larger_template, state)
    server = SandboxServer(state, realms=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded environment's settings, with the data (lake, tokens) in ``tmp_path``."""
    return Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )


@pytest.fixture
def source(sandbox: SandboxServer, settings: Settings) -> Iterator[QBOClient]:
    """A logged-in client of the sandbox's first company (the pinned generated one)."""
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url, retry=RETRY) as qbo:
        yield qbo
