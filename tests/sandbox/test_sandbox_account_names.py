"""Account names are unique among siblings, as in QBO's real chart (6240 otherwise) (#20).

The captured chart (samples/query_account_all.json) has "Depreciation" (Other Expense) beside
"Truck:Depreciation" (Fixed Asset) and "Installation" under two parents; other lists are unique
company-wide.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES

REALM = "5006"


@pytest.fixture
def ops(tmp_path: Path) -> Operations:
    store = SandboxStore(tmp_path / "names.sqlite3")
    store.create_realm(REALM, "Names Co", clock_start=datetime(2030, 1, 1, tzinfo=UTC))
    return Operations(store, REALM)


def test_the_captured_chart_repeats_names_under_other_parents() -> None:
    accounts = json.loads((SAMPLES / "query_account_all.json").read_text())["QueryResponse"]
    names = {(a["Name"], a["FullyQualifiedName"]) for a in accounts["Account"]}
    assert ("Depreciation", "Depreciation") in names
    assert ("Depreciation", "Truck:Depreciation") in names


def test_an_account_name_is_unique_among_its_siblings_only(ops: Operations) -> None:
    truck = ops.create("Account", {"Name": "Truck", "AccountType": "Fixed Asset"})
    expense = {"Name": "Depreciation", "AccountType": "Other Expense"}
    ops.create("Account", expense)
    sub = ops.create(
        "Account",
        {
            "Name": "Depreciation",
            "AccountType": "Fixed Asset",
            "SubAccount": True,
            "ParentRef": {"value": truck["Id"]},
        },
    )
    assert sub["Id"]
    with pytest.raises(SandboxFault) as top:
        ops.create("Account", dict(expense))
    assert top.value.code == "6240"
    with pytest.raises(SandboxFault) as child:
        ops.create(
            "Account",
            {
                "Name": "depreciation",
                "AccountType": "Fixed Asset",
                "ParentRef": {"value": truck["Id"]},
            },
        )
    assert child.value.code == "6240"


def test_other_lists_stay_unique_company_wide(ops: Operations) -> None:
    ops.create("Term", {"Name": "Net 45", "DueDays": 45})
    with pytest.raises(SandboxFault) as dup:
        ops.create("Term", {"Name": "NET 45", "DueDays": 45})
    assert dup.value.code == "6240"
