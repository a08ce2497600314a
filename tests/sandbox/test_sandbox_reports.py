from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.reports import (
    POSTING_RULES,
    Chart,
    build_report,
    macro_period,
    money,
    postings,
)
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import pinned_company

REALM = "4620816365000000005"


@pytest.fixture(scope="module")
def store() -> SandboxStore:
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42)
    return store


def _summary(section: dict[str, Any]) -> str:
    return section["Summary"]["ColData"][1]["value"]


def _group(report: dict[str, Any], group: str) -> dict[str, Any]:
    def walk(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        for row in rows:
            if row.get("group") == group:
                return row
            found = walk(row.get("Rows", {}).get("Row", []))
            if found:
                return found
        return None

    found = walk(report["Rows"]["Row"])
    assert found is not None, group
    return found


def test_every_ledger_entity_has_exactly_one_rule() -> None:
    posting = {e.name for e in entities.CATALOGUE if e.posts_to_ledger}
    assert set(POSTING_RULES) == posting


def test_every_transaction_posts_balanced(store: SandboxStore) -> None:
    chart = Chart.from_store(store, REALM)
    posted = 0
    for entity in POSTING_RULES:
        for txn in store.iter_records(REALM, entity):
            lines = postings(entity, txn, chart)
            assert sum(amount for _, amount in lines) == 0, (entity, txn["Id"])
            assert all(account in chart.accounts for account, _ in lines), (entity, txn["Id"])
            posted += bool(lines)
    assert posted > 100


def test_invoice_rule_with_tax_discount_and_inventory() -> None:
    chart = Chart.from_records(
        [
            {"Id": "84", "Name": "A/R", "AccountType": "Accounts Receivable"},
            {"Id": "90", "Name": "Board of Equalization Payable", "AccountType": "x"},
        ],
        [{"Id": "11", "Type": "Inventory", "PurchaseCost": 10, "IncomeAccountRef": {"value": "79"},
          "ExpenseAccountRef": {"value": "80"}, "AssetAccountRef": {"value": "81"}}],
        [{"Id": "3", "AgencyRef": {"value": "2"}}],
        [{"Id": "2", "DisplayName": "Board of Equalization"}],
    )  # fmt: skip
    invoice = {
        "Line": [
            {"Amount": 30, "DetailType": "SalesItemLineDetail",
             "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": 2}},
            {"Amount": 30, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
            {"Amount": 3, "DetailType": "DiscountLineDetail",
             "DiscountLineDetail": {"DiscountAccountRef": {"value": "86"}}},
        ],
        "TxnTaxDetail": {"TotalTax": 2.16, "TaxLine": [
            {"Amount": 2.16, "TaxLineDetail": {"TaxRateRef": {"value": "3"}}}]},
    }  # fmt: skip
    assert sorted(postings("Invoice", invoice, chart)) == sorted(
        [("79", -3000), ("80", 2000), ("81", -2000), ("86", 300), ("90", -216), ("84", 2916)]
    )


def test_trial_balance_shape_and_balance(store: SandboxStore) -> None:
    report = build_report(store, REALM, "trialbalance", {"date_macro": "All"})
    header = report["Header"]
    assert header["ReportName"] == "TrialBalance"
    assert header["ReportBasis"] == "Accrual"
    assert header["Currency"] == "USD"
    assert [c["ColTitle"] for c in report["Columns"]["Column"]] == ["", "Debit", "Credit"]
    rows = report["Rows"]["Row"]
    assert rows[-1]["group"] == "GrandTotal"
    debit = credit = 0
    for row in rows[:-1]:
        name, dr, cr = row["ColData"]
        assert name["id"]
        assert (dr["value"] == "") != (cr["value"] == "")
        debit += round(float(dr["value"] or 0) * 100)
        credit += round(float(cr["value"] or 0) * 100)
    total = rows[-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"] == money(debit) == money(credit)


def test_profit_and_loss_sections_add_up(store: SandboxStore) -> None:
    report = build_report(
        store, REALM, "ProfitAndLoss", {"start_date": "2024-01-01", "end_date": "2024-12-31"}
    )
    groups = [row["group"] for row in report["Rows"]["Row"]]
    assert groups == [
        "Income", "COGS", "GrossProfit", "Expenses", "NetOperatingIncome",
        "OtherIncome", "OtherExpenses", "NetOtherIncome", "NetIncome",
    ]  # fmt: skip
    cents = {g: round(float(_summary(_group(report, g))) * 100) for g in groups}
    assert cents["Income"] > 0
    assert cents["GrossProfit"] == cents["Income"] - cents["COGS"]
    assert cents["NetIncome"] == (
        cents["GrossProfit"] - cents["Expenses"] + cents["OtherIncome"] - cents["OtherExpenses"]
    )
    assert report["Header"]["StartPeriod"] == "2024-01-01"


def test_balance_sheet_balances(store: SandboxStore) -> None:
    report = build_report(store, REALM, "BalanceSheet", {"end_date": "2024-12-31"})
    assets = _summary(_group(report, "TotalAssets"))
    claims = _summary(_group(report, "TotalLiabilitiesAndEquity"))
    assert assets == claims != "0.00"
    mid_year = build_report(store, REALM, "BalanceSheet", {"end_date": "2024-06-30"})
    assert _summary(_group(mid_year, "TotalAssets")) == _summary(
        _group(mid_year, "TotalLiabilitiesAndEquity")
    )


def test_a_period_before_the_books_has_no_data(store: SandboxStore) -> None:
    report = build_report(
        store, REALM, "TrialBalance", {"start_date": "2020-01-01", "end_date": "2020-12-31"}
    )
    assert {"Name": "NoReportData", "Value": "true"} in report["Header"]["Option"]
    assert report["Rows"]["Row"][-1]["Summary"]["ColData"][1]["value"] == "0.00"


@pytest.mark.parametrize(
    ("params", "element"),
    [
        ({"date_macro": "Next Millennium"}, "date_macro"),
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"start_date": "2024-05-01", "end_date": "2024-01-01"}, "start_date"),
        ({"accounting_method": "Cashflow"}, "accounting_method"),
        ({"summarize_column_by": "Fortnight"}, "summarize_column_by"),
        ({"summarize_column_by": "Employees"}, "summarize_column_by"),
        ({"summarize_column_by": "Days", "date_macro": "All"}, "summarize_column_by"),
        ({"customer": "Amy"}, "customer"),
        ({"class": "1,,2"}, "class"),
    ],
)
def test_bad_parameters_get_a_clear_fault(
    store: SandboxStore, params: dict[str, str], element: str
) -> None:
    with pytest.raises(SandboxFault) as caught:
        build_report(store, REALM, "ProfitAndLoss", params)
    assert caught.value.status == 400
    assert caught.value.element == element


def test_unknown_report_is_refused(store: SandboxStore) -> None:
    with pytest.raises(SandboxFault, match="not available in the sandbox") as caught:
        build_report(store, REALM, "CashFlow", {})
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("Today", ("2024-05-15", "2024-05-15")),
        ("This Month-to-date", ("2024-05-01", "2024-05-15")),
        ("Last Month", ("2024-04-01", "2024-04-30")),
        ("This Fiscal Quarter", ("2024-04-01", "2024-06-30")),
        ("Last Fiscal Year", ("2023-01-01", "2023-12-31")),
        ("this fiscal year-to-date", ("2024-01-01", "2024-05-15")),
        ("Last Year", ("2023-01-01", "2023-12-31")),
        ("This Year", ("2024-01-01", "2024-12-31")),
        ("Last Month-to-date", ("2024-04-01", "2024-04-15")),
        ("Next Month", ("2024-06-01", "2024-06-30")),
        ("Next Fiscal Quarter", ("2024-07-01", "2024-09-30")),
        ("Last Fiscal Year-to-date", ("2023-01-01", "2023-05-15")),
        ("Next 4 Weeks", ("2024-05-15", "2024-06-11")),
    ],
)
def test_date_macros(macro: str, expected: tuple[str, str]) -> None:
    start, end = macro_period(macro, date(2024, 5, 15))
    assert (start.isoformat(), end.isoformat()) == expected


def test_money_formats_like_qbo() -> None:
    assert money(123450) == "1234.50"
    assert money(-1200) == "-12.00"
    assert money(5) == "0.05"


# --- issue #17 item 3: QBO's common report parameters -----------------------------------------

_YEAR = {"start_date": "2024-01-01", "end_date": "2024-12-31"}


def _cents(value: str) -> int:
    return round(float(value or 0) * 100)


def _net_income(report: dict[str, Any]) -> list[int]:
    row = _group(report, "NetIncome")
    return [_cents(c["value"]) for c in row["Summary"]["ColData"][1:]]


def _widths(rows: list[dict[str, Any]]) -> set[int]:
    found: set[int] = set()
    for row in rows:
        for part in ("Header", "Summary"):
            if part in row:
                found.add(len(row[part]["ColData"]))
        if "ColData" in row:
            found.add(len(row["ColData"]))
        found |= _widths(row.get("Rows", {}).get("Row", []))
    return found


def test_profit_and_loss_by_month_has_a_column_per_month_that_adds_up(
    store: SandboxStore,
) -> None:
    by_month = build_report(
        store, REALM, "ProfitAndLoss", {**_YEAR, "summarize_column_by": "month"}
    )
    total = build_report(store, REALM, "ProfitAndLoss", _YEAR)
    assert by_month["Header"]["SummarizeColumnsBy"] == "Month"
    columns = by_month["Columns"]["Column"]
    titles = [c["ColTitle"] for c in columns]
    assert titles[1:3] == ["Jan 2024", "Feb 2024"] and titles[-2:] == ["Dec 2024", "Total"]
    assert {"Name": "StartDate", "Value": "2024-02-01"} in columns[2]["MetaData"]
    assert {"Name": "EndDate", "Value": "2024-02-29"} in columns[2]["MetaData"]
    assert _widths(by_month["Rows"]["Row"]) == {len(columns)}
    months = _net_income(by_month)
    assert sum(months[:-1]) == months[-1] == _net_income(total)[0]
    assert len({m for m in months[:-1]}) > 1


def test_balance_sheet_by_quarter_balances_in_every_column(store: SandboxStore) -> None:
    report = build_report(store, REALM, "BalanceSheet", {**_YEAR, "summarize_column_by": "Quarter"})
    titles = [c["ColTitle"] for c in report["Columns"]["Column"]]
    assert titles == ["", "Q1 2024", "Q2 2024", "Q3 2024", "Q4 2024"]
    assets = [_cents(c["value"]) for c in _group(report, "TotalAssets")["Summary"]["ColData"][1:]]
    claims = _group(report, "TotalLiabilitiesAndEquity")["Summary"]["ColData"][1:]
    assert assets == [_cents(c["value"]) for c in claims]
    mid_year = build_report(store, REALM, "BalanceSheet", {"end_date": "2024-06-30"})
    assert assets[1] == _cents(_summary(_group(mid_year, "TotalAssets")))
    year_end = build_report(store, REALM, "BalanceSheet", {"end_date": "2024-12-31"})
    assert assets[3] == _cents(_summary(_group(year_end, "TotalAssets")))


def test_profit_and_loss_by_customer_and_the_customer_filter(store: SandboxStore) -> None:
    report = build_report(
        store, REALM, "ProfitAndLoss", {**_YEAR, "summarize_column_by": "Customers"}
    )
    columns = report["Columns"]["Column"]
    assert [c["ColTitle"] for c in columns][-2:] == ["Not Specified", "TOTAL"]
    assert _widths(report["Rows"]["Row"]) == {len(columns)}
    amounts = _net_income(report)
    assert sum(amounts[:-1]) == amounts[-1]
    column = next(c for c in columns[1:-2] if _net_income(report)[columns.index(c) - 1])
    customer = column["MetaData"][-1]["Value"]
    assert column["ColTitle"] == store.get(REALM, "Customer", customer)["DisplayName"]
    only = build_report(store, REALM, "ProfitAndLoss", {**_YEAR, "customer": customer})
    assert only["Header"]["Customer"] == customer
    assert _net_income(only) == [amounts[columns.index(column) - 1]]
    vendors = build_report(
        store, REALM, "ProfitAndLoss", {**_YEAR, "summarize_column_by": "Vendors"}
    )
    assert sum(_net_income(vendors)[:-1]) == _net_income(vendors)[-1] == amounts[-1]


def test_class_and_department_columns_and_filters() -> None:
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42, transactions=300)
    receipt = next(iter(store.iter_records(REALM, "SalesReceipt")))
    store.bulk_load(REALM, "Class", [{"Id": "900", "Name": "Design", "SyncToken": "0",
                                     "MetaData": receipt["MetaData"]}])  # fmt: skip
    store.bulk_load(REALM, "Department", [{"Id": "901", "Name": "North", "SyncToken": "0",
                                          "MetaData": receipt["MetaData"]}])  # fmt: skip
    tagged = {**receipt, "Id": "99999", "ClassRef": {"value": "900"},
              "DepartmentRef": {"value": "901"}, "TxnDate": "2024-06-01"}  # fmt: skip
    store.bulk_load(REALM, "SalesReceipt", [tagged])
    by_class = build_report(
        store, REALM, "ProfitAndLoss", {**_YEAR, "summarize_column_by": "Classes"}
    )
    assert [c["ColTitle"] for c in by_class["Columns"]["Column"]] == [
        "",
        "Design",
        "Not Specified",
        "TOTAL",
    ]
    design, unspecified, total = _net_income(by_class)
    assert design > 0 and design + unspecified == total
    filtered = build_report(store, REALM, "ProfitAndLoss", {**_YEAR, "department": "901"})
    assert filtered["Header"]["Department"] == "901"
    assert _net_income(filtered) == [design]
    by_department = build_report(
        store, REALM, "BalanceSheet", {**_YEAR, "summarize_column_by": "Departments"}
    )
    titles = [c["ColTitle"] for c in by_department["Columns"]["Column"]]
    assert titles == ["", "North", "Not Specified", "TOTAL"]


def test_cash_basis_counts_invoices_as_they_are_paid(store: SandboxStore) -> None:
    accrual = build_report(store, REALM, "ProfitAndLoss", _YEAR)
    cash = build_report(store, REALM, "ProfitAndLoss", {**_YEAR, "accounting_method": "cash"})
    assert cash["Header"]["ReportBasis"] == "Cash"
    unpaid = sum(
        _cents(str(i["Balance"]))
        for i in store.iter_records(REALM, "Invoice")
        if i["TxnDate"] <= "2024-12-31"
    )
    assert unpaid > 0
    income = _cents(_summary(_group(accrual, "Income")))
    assert 0 < _cents(_summary(_group(cash, "Income"))) < income
    sheet = build_report(store, REALM, "BalanceSheet", {"end_date": "2024-12-31",
                                                        "accounting_method": "Cash"})  # fmt: skip
    assert _summary(_group(sheet, "TotalAssets")) == _summary(
        _group(sheet, "TotalLiabilitiesAndEquity")
    )
    trial = build_report(store, REALM, "TrialBalance", {"accounting_method": "Cash",
                                                        "date_macro": "all"})  # fmt: skip
    total = trial["Rows"]["Row"][-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"]


def test_date_macros_follow_the_realm_clock(store: SandboxStore) -> None:
    # The pinned clock reads 2024-12-31.
    report = build_report(store, REALM, "ProfitAndLoss", {"date_macro": "Last Month"})
    assert (report["Header"]["StartPeriod"], report["Header"]["EndPeriod"]) == (
        "2024-11-01",
        "2024-11-30",
    )
    assert report["Header"]["DateMacro"] == "last month"
