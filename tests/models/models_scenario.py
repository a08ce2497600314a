"""A three-snapshot lake with known changes, shared by the model tests.

The lake is written once per test session (the real lake writer takes seconds) and each caller
gets its own copy, which it may change freely.
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models_lake_builder import WriterLake, sample

ENTITIES = ("Account", "Customer", "Vendor", "Item", "Invoice", "Payment", "Bill")

T1 = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
T3 = datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
T4 = datetime(2026, 11, 4, 5, 0, tzinfo=UTC)

NEW_CUSTOMER = {
    "Id": "9001",
    "SyncToken": "0",
    "DisplayName": "Zed's Zinnias",
    "Active": True,
    "Balance": 0,
    "MetaData": {"LastUpdatedTime": "2026-11-01T10:00:00-07:00"},
}


@dataclass
class Scenario:
    lake: WriterLake
    snapshots: list[str]
    states: list[dict[str, list[dict[str, Any]]]]
    expected_changes_1_2: set[tuple[str, str, str]]
    expected_fields_1_2: set[tuple[str, str, str, str | None, str | None]]
    orphan: str


def _by_id(records: list[dict[str, Any]], record_id: str) -> dict[str, Any]:
    return next(r for r in records if r["Id"] == record_id)


_TEMPLATE: list[tuple[Path, Scenario]] = []


def build_scenario(root: Path) -> Scenario:
    """A fresh copy of the scenario's lake at ``root`` (written once per session)."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="models-scenario-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _TEMPLATE.append((folder / "lake", _write_scenario(folder / "lake")))
    template, scenario = _TEMPLATE[0]
    shutil.copytree(template, root)
    lake = WriterLake(root, realm=scenario.lake.realm, snapshot_ids=list(scenario.snapshots))
    return replace(
        scenario,
        lake=lake,
        snapshots=list(scenario.snapshots),
        states=copy.deepcopy(scenario.states),
    )


def _write_scenario(root: Path) -> Scenario:
    lake = WriterLake(root)
    s1 = {e: sample(e) for e in ENTITIES}
    lake.commit(T1, s1)

    s2 = copy.deepcopy(s1)
    inv = _by_id(s2["Invoice"], "130")
    inv["Line"][0]["Amount"] = 300
    inv["TotalAmt"] = 387.07
    inv["SyncToken"] = "4"
    inv["MetaData"]["LastUpdatedTime"] = "2026-11-01T09:00:00-07:00"
    cust = _by_id(s2["Customer"], "2")
    cust["Active"] = False
    cust["DisplayName"] = "Bill's Windsurf Shop (deleted)"
    s2["Invoice"] = [r for r in s2["Invoice"] if r["Id"] != "161"]
    s2["Customer"].append(copy.deepcopy(NEW_CUSTOMER))
    _by_id(s2["Vendor"], "30")["PrimaryEmailAddr"]["Address"] = "books@example.com"
    lake.commit(T2, s2)

    s3 = copy.deepcopy(s2)
    s3["Customer"] = [
        copy.deepcopy(_by_id(s1["Customer"], "2")) if r["Id"] == "2" else r for r in s3["Customer"]
    ]
    extra = copy.deepcopy(_by_id(s1["Invoice"], "155"))
    extra["Id"] = "9100"
    extra["DocNumber"] = "9100"
    s3["Invoice"].append(extra)
    lake.commit(T3, s3)

    s4 = copy.deepcopy(s3)
    s4["Invoice"] = []
    orphan = lake.commit(T4, s4, write_commit=False)

    return Scenario(
        lake=lake,
        snapshots=list(lake.snapshot_ids),
        states=[s1, s2, s3],
        expected_changes_1_2={
            ("Customer", "2", "deactivated"),
            ("Customer", "9001", "added"),
            ("Invoice", "130", "changed"),
            ("Invoice", "161", "deleted"),
            ("Vendor", "30", "changed"),
        },
        expected_fields_1_2={
            ("Customer", "2", "Active", "true", "false"),
            (
                "Customer",
                "2",
                "DisplayName",
                "Bill's Windsurf Shop",
                "Bill's Windsurf Shop (deleted)",
            ),
            ("Invoice", "130", "Line[0].Amount", "275", "300"),
            ("Invoice", "130", "TotalAmt", "362.07", "387.07"),
            ("Vendor", "30", "PrimaryEmailAddr.Address", "Books@Intuit.com", "books@example.com"),
        },
        orphan=orphan,
    )
