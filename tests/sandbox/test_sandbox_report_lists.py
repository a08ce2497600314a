from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.report_lists import TRANSACTION_LIST_DEFAULT
from qbo_pipeline.sandbox.reports import Chart, build_report, cents
from qbo_pipeline.sandbox.server import SandboxServer
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import SAMPLES, pinned_company, sandbox_token

REALM = "4620816365000000005"
_YEAR = {"start_date": "2024-01-01", "end_date": "2024-12-31"}
GL_CAPTURE = SAMPLES / "extra" / "report_general_ledger.json"


@pytest.fixture(scope="module")
def store() -> SandboxStore:
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42)
    return store


def _sections(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row.get("type") == "Section":
            yield row
            yield from _sections(row["Rows"]["Row"])


def _data(report: dict[str, Any]) -> list[dict[str, Any]]:
    def walk(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            if row.get("type") == "Data":
                yield row
            elif "Rows" in row:
                yield from walk(row["Rows"]["Row"])

    return list(walk(report["Rows"]["Row"]))


def _shape(node: Any) -> Any:
    """The key structure of a report: cells as their keys, lists reduced to distinct shapes."""
    if isinstance(node, dict):
        return {
            key: [sorted(cell) for cell in value] if key == "ColData" else _shape(value)
            for key, value in node.items()
            if key != "Option"
        }
    if isinstance(node, list):
        shapes = []
        for item in node:
            shape = _shape(item)
            if shape not in shapes:
                shapes.append(shape)
        return shapes
    return type(node).__name__


def test_general_ledger_has_the_captures_shape(store: SandboxStore) -> None:
    capture = json.loads(GL_CAPTURE.read_text())
    report = build_report(store, REALM, "GeneralLedger", {})
    assert report["Columns"] == capture["Columns"]
    assert list(report["Header"]) == list(capture["Header"])
    assert report["Header"]["DateMacro"] == "this month-to-date"
    assert report["Header"]["Option"] == [{"Name": "NoReportData", "Value": "false"}]
    ours, theirs = _shape(report["Rows"]), _shape(capture["Rows"])
    # Every kind of row the capture has (sections with and without ids, beginning-balance
    # rows, transaction rows, blank and filled summaries) is one the sandbox writes, and back.
    assert {json.dumps(s, sort_keys=True) for s in _flatten(ours)} == {
        json.dumps(s, sort_keys=True) for s in _flatten(theirs)
    }


def _flatten(shape: Any) -> Iterator[Any]:
    """Each row shape of a ``_shape`` tree, nested rows replaced by a marker."""
    if isinstance(shape, dict):
        if "Rows" in shape:
            inner = shape["Rows"]["Row"]
            yield {**shape, "Rows": "nested"}
            for row in inner:
                yield from _flatten(row)
        elif "Row" in shape:
            for row in shape["Row"]:
                yield from _flatten(row)
        else:
            yield shape
    elif isinstance(shape, list):
        for item in shape:
            yield from _flatten(item)


def test_general_ledger_rows_run_and_total(store: SandboxStore) -> None:
    report = build_report(store, REALM, "GeneralLedger", _YEAR)
    checked = 0
    for section in _sections(report["Rows"]["Row"]):
        label = section["Header"]["ColData"][0]["value"]
        assert section["Summary"]["ColData"][0]["value"] == f"Total for {label}"
        running = None
        activity = 0
        for row in section["Rows"]["Row"]:
            if row.get("type") != "Data":
                continue
            cols = row["ColData"]
            if cols[0]["value"] == "Beginning Balance":
                running = cents(cols[7]["value"])
                continue
            assert cols[1]["id"] and "id" in cols[3] and "id" in cols[5]
            running = (running or 0) + cents(cols[6]["value"])
            activity += cents(cols[6]["value"])
            assert cents(cols[7]["value"]) == running
            checked += 1
        has_subsections = any(r.get("type") == "Section" for r in section["Rows"]["Row"])
        if activity and not has_subsections:
            assert cents(section["Summary"]["ColData"][6]["value"]) == activity
    assert checked > 100


def test_general_ledger_ties_to_the_trial_balance(store: SandboxStore) -> None:
    """Each account's ending balance in the ledger is its trial balance for the same year."""
    chart = Chart.from_store(store, REALM)
    ledger = build_report(
        store, REALM, "GeneralLedger",
        {**_YEAR, "columns": "tx_date,account_name,subt_nat_amount,rbal_nat_amount"},
    )  # fmt: skip
    trial = build_report(store, REALM, "TrialBalance", _YEAR)
    expected = {
        row["ColData"][0]["id"]: cents(row["ColData"][1]["value"])
        - cents(row["ColData"][2]["value"])
        for row in trial["Rows"]["Row"]
        if "ColData" in row
    }
    ending: dict[str, int] = {}
    for section in _sections(ledger["Rows"]["Row"]):
        own = [r["ColData"] for r in section["Rows"]["Row"] if r.get("type") == "Data"]
        ids = {cols[1]["id"] for cols in own if "id" in cols[1]}
        ids |= {section["Header"]["ColData"][0].get("id")} - {None}
        if not own:
            continue
        assert len(ids) == 1, section["Header"]
        account = ids.pop()
        natural = cents(own[-1][3]["value"])
        credit_normal = chart.accounts[account].classification in ("Liability", "Equity", "Revenue")
        ending[account] = -natural if credit_normal else natural
    assert len(ending) > 20
    assert {a: v for a, v in ending.items() if v} == expected


def test_general_ledger_columns_are_honoured(store: SandboxStore) -> None:
    columns = "tx_date,txn_type,doc_num,name,memo,account_name,subt_nat_amount"
    report = build_report(store, REALM, "GeneralLedger", {**_YEAR, "columns": columns})
    assert [c["ColTitle"] for c in report["Columns"]["Column"]] == [
        "Date", "Transaction Type", "Num", "Name", "Memo/Description", "Account", "Amount",
    ]  # fmt: skip
    assert [c["ColType"] for c in report["Columns"]["Column"]] == columns.split(",")
    rows = _data(report)
    assert rows and all(len(r["ColData"]) == 7 for r in rows)
    assert all(len(s["Summary"]["ColData"]) == 7 for s in _sections(report["Rows"]["Row"]))


def test_transaction_list_defaults_and_columns(store: SandboxStore) -> None:
    report = build_report(store, REALM, "TransactionList", _YEAR)
    keys = [c["ColType"] for c in report["Columns"]["Column"]]
    # The generated company tracks departments, so QBO adds dept_name after name.
    assert keys == [*TRANSACTION_LIST_DEFAULT[:5], "dept_name", *TRANSACTION_LIST_DEFAULT[5:]]
    rows = _data(report)
    assert len(rows) > 100
    assert [r["ColData"][0]["value"] for r in rows] == sorted(
        r["ColData"][0]["value"] for r in rows
    )
    assert {r["ColData"][3]["value"] for r in rows} == {"Yes", "No"}
    assert all(r["ColData"][1]["id"] for r in rows)
    picked = build_report(
        store, REALM, "TransactionList", {**_YEAR, "columns": "subt_nat_amount, txn_type,tx_date"}
    )
    assert [c["ColTitle"] for c in picked["Columns"]["Column"]] == [
        "Amount", "Transaction Type", "Date",
    ]  # fmt: skip
    assert len(_data(picked)) == len(rows)


def test_transaction_list_sorts(store: SandboxStore) -> None:
    params = {**_YEAR, "columns": "tx_date,subt_nat_amount", "sort_by": "subt_nat_amount"}
    down = build_report(store, REALM, "TransactionList", {**params, "sort_order": "descend"})
    amounts = [cents(r["ColData"][1]["value"]) for r in _data(down)]
    assert amounts == sorted(amounts, reverse=True) and amounts[0] > amounts[-1]


def test_filters_narrow_the_rows(store: SandboxStore) -> None:
    everything = _data(build_report(store, REALM, "TransactionList", _YEAR))
    customer = next(
        r["ColData"][4]["id"] for r in everything if r["ColData"][1]["value"] == "Invoice"
    )
    only = build_report(store, REALM, "TransactionList", {**_YEAR, "customer": customer})
    assert only["Header"]["Customer"] == customer
    rows = _data(only)
    assert 0 < len(rows) < len(everything)
    assert {r["ColData"][4]["id"] for r in rows} == {customer}
    ledger = build_report(store, REALM, "GeneralLedger", {**_YEAR, "customer": customer})
    names = {r["ColData"][3]["id"] for r in _data(ledger) if "id" in r["ColData"][3]}
    assert names == {customer}
    checking = build_report(store, REALM, "GeneralLedger", {**_YEAR, "account": "35"})
    tops = [s["Header"]["ColData"][0] for s in checking["Rows"]["Row"]]
    assert tops == [{"value": "Checking", "id": "35"}]


def test_cash_basis_ledger_leaves_unpaid_invoices_out(store: SandboxStore) -> None:
    accrual = build_report(store, REALM, "GeneralLedger", _YEAR)
    cash = build_report(store, REALM, "GeneralLedger", {**_YEAR, "accounting_method": "Cash"})
    assert cash["Header"]["ReportBasis"] == "Cash"

    def invoices(report: dict[str, Any]) -> int:
        return sum(1 for r in _data(report) if r["ColData"][1].get("value") == "Invoice")

    assert invoices(cash) < invoices(accrual)


@pytest.mark.parametrize(
    ("name", "params", "element", "text"),
    [
        ("GeneralLedger", {"columns": "tx_date,no_such_col"}, "columns", "not a column"),
        ("TransactionList", {"columns": "rbal_nat_amount"}, "columns", "not a column"),
        ("TransactionList", {"columns": "create_by"}, "columns", "not computed"),
        ("GeneralLedger", {"columns": " , "}, "columns", "names no column"),
        ("GeneralLedger", {"sort_by": "klass_name"}, "sort_by", "not a column"),
        ("TransactionList", {"sort_order": "sideways"}, "sort_order", "ascend or descend"),
        ("GeneralLedger", {"account": "Checking"}, "account", "Account ids"),
        ("TransactionList", {"accounting_method": "Modified"}, "accounting_method", "Accrual"),
        ("GeneralLedger", {"date_macro": "Someday"}, "date_macro", "not supported"),
        ("TransactionList", {"group_by": "Customer"}, "group_by", "not computed"),
    ],
)
def test_bad_list_parameters_are_refused(
    store: SandboxStore, name: str, params: dict[str, str], element: str, text: str
) -> None:
    with pytest.raises(SandboxFault, match=text) as caught:
        build_report(store, REALM, name, params)
    assert caught.value.status == 400
    assert caught.value.code == "2010"
    assert caught.value.element == element


def test_general_ledger_over_http(sandbox: SandboxServer) -> None:
    realm = sandbox.realm_ids[0]
    headers = {
        "Authorization": f"Bearer {sandbox_token(sandbox, realm)}",
        "Accept": "application/json",
    }
    base = f"{sandbox.base_url}/v3/company/{realm}/reports"
    ok = requests.get(
        f"{base}/GeneralLedger",
        params={"columns": "tx_date,name,subt_nat_amount", "minorversion": "75"},
        headers=headers,
        timeout=60,
    )
    assert ok.status_code == 200, ok.text
    assert [c["ColType"] for c in ok.json()["Columns"]["Column"]] == [
        "tx_date", "name", "subt_nat_amount",
    ]  # fmt: skip
    bad = requests.get(
        f"{base}/TransactionList", params={"columns": "bogus"}, headers=headers, timeout=60
    )
    assert bad.status_code == 400
    error = bad.json()["Fault"]["Error"][0]
    assert error["code"] == "2010" and error["element"] == "columns"
