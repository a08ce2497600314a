from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from models_lake_builder import WriterLake

from qbo_pipeline.models.warehouse import build_warehouse, connect


def _ref(value: str) -> dict[str, str]:
    return {"value": value}


def _account(aid: str, name: str, atype: str, classification: str, sub: str = "") -> dict[str, Any]:
    return {
        "Id": aid,
        "SyncToken": "0",
        "Name": name,
        "AccountType": atype,
        "AccountSubType": sub or atype.replace(" ", ""),
        "Classification": classification,
        "Active": True,
    }


ACCOUNTS = [
    _account("1", "Checking", "Bank", "Asset"),
    _account("2", "Accounts Receivable (A/R)", "Accounts Receivable", "Asset"),
    _account("3", "Undeposited Funds", "Other Current Asset", "Asset", "UndepositedFunds"),
    _account("4", "Accounts Payable (A/P)", "Accounts Payable", "Liability"),
    _account("5", "Sales Tax Payable", "Other Current Liability", "Liability", "GlobalTaxPayable"),
    _account("6", "Services", "Income", "Revenue"),
    _account("7", "Rent", "Expense", "Expense"),
    _account("8", "Retained Earnings", "Equity", "Equity", "RetainedEarnings"),
    _account("9", "Visa", "Credit Card", "Liability"),
    _account("10", "Savings", "Bank", "Asset"),
]
CUSTOMERS = [{"Id": "1", "SyncToken": "0", "DisplayName": "Amy's Bird Sanctuary", "Active": True}]
VENDORS = [{"Id": "1", "SyncToken": "0", "DisplayName": "Books by Bessie", "Active": True}]

TXNS: dict[str, list[dict[str, Any]]] = {
    "Invoice": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-01-10",
            "CustomerRef": _ref("1"),
            "TotalAmt": 108,
            "TxnTaxDetail": {"TotalTax": 8},
            "Line": [
                {
                    "Id": "1",
                    "Amount": 100,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemAccountRef": _ref("6"), "Qty": 1},
                },
                {"Amount": 100, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
            ],
        }
    ],
    "Payment": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-01-20",
            "CustomerRef": _ref("1"),
            "TotalAmt": 108,
            "Line": [{"Amount": 108, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]}],
        }
    ],
    "Deposit": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-01-21",
            "DepositToAccountRef": _ref("1"),
            "TotalAmt": 108,
            "Line": [{"Amount": 108, "LinkedTxn": [{"TxnId": "1", "TxnType": "Payment"}]}],
        }
    ],
    "Bill": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2025-12-15",
            "VendorRef": _ref("1"),
            "TotalAmt": 50,
            "Line": [
                {
                    "Amount": 50,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": _ref("7")},
                }
            ],
        }
    ],
    "BillPayment": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-01-05",
            "VendorRef": _ref("1"),
            "PayType": "Check",
            "TotalAmt": 50,
            "CheckPayment": {"BankAccountRef": _ref("1")},
            "Line": [{"Amount": 50, "LinkedTxn": [{"TxnId": "1", "TxnType": "Bill"}]}],
        }
    ],
    "JournalEntry": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-02-01",
            "Line": [
                {
                    "Amount": 20,
                    "DetailType": "JournalEntryLineDetail",
                    "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": _ref("10")},
                },
                {
                    "Amount": 20,
                    "DetailType": "JournalEntryLineDetail",
                    "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": _ref("1")},
                },
            ],
        }
    ],
    "Transfer": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-02-02",
            "FromAccountRef": _ref("10"),
            "ToAccountRef": _ref("1"),
            "Amount": 5,
        }
    ],
    "Purchase": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-02-03",
            "PaymentType": "CreditCard",
            "AccountRef": _ref("9"),
            "EntityRef": {"value": "1", "type": "Vendor"},
            "TotalAmt": 30,
            "Line": [
                {
                    "Amount": 30,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": _ref("7")},
                }
            ],
        }
    ],
    "CreditCardPayment": [
        {
            "Id": "1",
            "SyncToken": "0",
            "TxnDate": "2026-02-04",
            "CreditCardAccountRef": _ref("9"),
            "BankAccountRef": _ref("1"),
            "Amount": 30,
        }
    ],
}

EXPECTED = {"1": 13, "2": 0, "3": 0, "4": 0, "5": -8, "6": -100, "7": 80, "9": 0, "10": 15}


def _report(balances: dict[str, Decimal | int]) -> dict[str, Any]:
    names = {a["Id"]: a["Name"] for a in ACCOUNTS}
    rows = [
        {
            "ColData": [
                {"value": names[aid], "id": aid},
                {"value": f"{amount:.2f}" if amount > 0 else ""},
                {"value": f"{-amount:.2f}" if amount < 0 else ""},
            ],
            "type": "Data",
        }
        for aid, amount in balances.items()
        if amount
    ]
    rows.append(
        {
            "Summary": {"ColData": [{"value": "TOTAL"}, {"value": ""}, {"value": ""}]},
            "type": "Section",
        }
    )
    return {
        "Header": {
            "ReportName": "TrialBalance",
            "ReportBasis": "Accrual",
            "StartPeriod": "2026-01-01",
            "EndPeriod": "2026-12-31",
        },
        "Columns": {"Column": [{"ColTitle": ""}, {"ColTitle": "Debit"}, {"ColTitle": "Credit"}]},
        "Rows": {"Row": rows},
    }


def _state(**extra: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    state = {"Account": ACCOUNTS, "Customer": CUSTOMERS, "Vendor": VENDORS, **TXNS}
    state.update(extra)
    return copy.deepcopy(state)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[WriterLake, Path]:
    root = tmp_path_factory.mktemp("ledger")
    lake = WriterLake(root / "lake")
    # The report closes the 2025 rent (50) into retained earnings: fiscal year-to-date.
    closed = dict(EXPECTED, **{"7": 30, "8": 50})
    lake.commit(
        datetime(2026, 3, 1, tzinfo=UTC), _state(), reports={"TrialBalance": _report(closed)}
    )
    wrong = dict(closed, **{"1": 23})
    s2 = _state(Customer=[])  # the customer disappears: the invoice's reference dangles
    lake.commit(datetime(2026, 3, 2, tzinfo=UTC), s2, reports={"TrialBalance": _report(wrong)})
    build_warehouse(root / "lake", root / "w.duckdb")
    return lake, root / "w.duckdb"


def test_models_trial_balance_from_transactions_balances(ledger) -> None:
    lake, path = ledger
    with connect(path, read_only=True) as con:
        for sid in lake.snapshot_ids:
            rows = dict(
                con.execute(
                    "select account_id, balance from marts.trial_balance where snapshot_id = ?",
                    [sid],
                ).fetchall()
            )
            assert rows == {k: Decimal(v) for k, v in EXPECTED.items()}
            debit, credit = con.execute(
                "select sum(debit), sum(credit) from marts.trial_balance where snapshot_id = ?",
                [sid],
            ).fetchone()
            assert debit == credit == Decimal("108")


def test_models_trial_balance_check_matches_report_and_flags_difference(ledger) -> None:
    lake, path = ledger
    s1, s2 = lake.snapshot_ids
    with connect(path, read_only=True) as con:
        first = con.execute(
            "select count(*), count(*) filter (where is_matching) from marts.trial_balance_check "
            "where snapshot_id = ?",
            [s1],
        ).fetchone()
        assert first[0] > 0
        assert first[0] == first[1]
        rows = con.execute(
            "select account_id, difference from marts.trial_balance_check "
            "where snapshot_id = ? and not is_matching",
            [s2],
        ).fetchall()
    assert rows == [("1", Decimal("-10.00"))]


def test_models_reference_graph_flags_dangling_references(ledger) -> None:
    _, path = ledger
    with connect(path, read_only=True) as con:
        dangling = con.execute(
            "select entity, record_id, path, target_entity, target_id from marts.reference_graph "
            "where is_dangling order by all"
        ).fetchall()
        resolved = con.execute(
            "select count(*) from marts.reference_graph where entity = 'Invoice' "
            "and path = 'Line[].SalesItemLineDetail.ItemAccountRef' and is_resolved"
        ).fetchone()[0]
        backlink = con.execute(
            "select is_dependency from marts.reference_graph where entity = 'Deposit' "
            "and path = 'Line[].LinkedTxn[]'"
        ).fetchall()
    assert ("Invoice", "1", "CustomerRef", "Customer", "1") in dangling
    assert ("Payment", "1", "CustomerRef", "Customer", "1") in dangling
    assert all(row[3] == "Customer" for row in dangling)
    assert resolved == 1
    assert backlink == [(True,)]


def _inventory_and_tax_state() -> dict[str, list[dict[str, Any]]]:
    accounts = [
        _account("1", "Checking", "Bank", "Asset"),
        _account("2", "Accounts Receivable (A/R)", "Accounts Receivable", "Asset"),
        _account("11", "Inventory Asset", "Other Current Asset", "Asset", "Inventory"),
        _account("12", "Cost of Goods Sold", "Cost of Goods Sold", "Expense"),
        _account("13", "Sales", "Income", "Revenue"),
        _account(
            "14",
            "Arizona Dept. of Revenue Payable",
            "Other Current Liability",
            "Liability",
            "GlobalTaxPayable",
        ),
        _account(
            "15",
            "Board of Equalization Payable",
            "Other Current Liability",
            "Liability",
            "GlobalTaxPayable",
        ),
        _account("16", "Inventory Shrinkage", "Expense", "Expense"),
    ]
    widget = {
        "Id": "1",
        "SyncToken": "0",
        "Name": "Widget",
        "Type": "Inventory",
        "Active": True,
        "PurchaseCost": 2.5,
        "IncomeAccountRef": _ref("13"),
        "ExpenseAccountRef": _ref("12"),
        "AssetAccountRef": _ref("11"),
    }

    def sale(qty: int) -> dict[str, Any]:
        return {
            "Amount": 10 * qty,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": _ref("1"), "Qty": qty, "UnitPrice": 10},
        }

    def tax_line(rate: str, amount: float) -> dict[str, Any]:
        return {
            "Amount": amount,
            "DetailType": "TaxLineDetail",
            "TaxLineDetail": {"TaxRateRef": _ref(rate), "PercentBased": True},
        }

    def tax_payment(pid: str, amount: float, refund: bool) -> dict[str, Any]:
        return {
            "Id": pid,
            "SyncToken": "0",
            "PaymentDate": "2026-02-10",
            "PaymentAccountRef": _ref("1"),
            "PaymentAmount": amount,
            "Refund": refund,
        }

    return {
        "Account": accounts,
        "Customer": copy.deepcopy(CUSTOMERS),
        "Item": [widget],
        "TaxAgency": [
            {"Id": "1", "SyncToken": "0", "DisplayName": "Arizona Dept. of Revenue"},
            {"Id": "2", "SyncToken": "0", "DisplayName": "Board of Equalization"},
        ],
        "TaxRate": [
            {"Id": "1", "SyncToken": "0", "Name": "AZ", "AgencyRef": _ref("1")},
            {"Id": "2", "SyncToken": "0", "Name": "CA", "AgencyRef": _ref("2")},
        ],
        "TaxCode": [
            {
                "Id": "5",
                "SyncToken": "0",
                "Name": "California",
                "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": _ref("2")}]},
            }
        ],
        "Preferences": [{"Id": "1", "SyncToken": "0", "TaxPrefs": {"TaxGroupCodeRef": _ref("5")}}],
        "Invoice": [
            {
                "Id": "1",
                "SyncToken": "0",
                "TxnDate": "2026-02-01",
                "CustomerRef": _ref("1"),
                "TotalAmt": 44.5,
                # 0.50 of the tax is on no tax line: it goes to the default code's agency.
                "TxnTaxDetail": {"TotalTax": 4.5, "TaxLine": [tax_line("1", 3), tax_line("2", 1)]},
                "Line": [sale(4)],
            },
            {
                "Id": "2",
                "SyncToken": "0",
                "TxnDate": "2026-02-02",
                "CustomerRef": _ref("1"),
                "TotalAmt": 25,
                "Line": [
                    {
                        "Amount": 25,
                        "DetailType": "GroupLineDetail",
                        "GroupLineDetail": {
                            "GroupItemRef": _ref("9"),
                            "Quantity": 1,
                            "Line": [
                                sale(1),
                                {
                                    "Amount": 15,
                                    "DetailType": "SalesItemLineDetail",
                                    "SalesItemLineDetail": {"ItemAccountRef": _ref("13")},
                                },
                            ],
                        },
                    }
                ],
            },
        ],
        "CreditMemo": [
            {
                "Id": "1",
                "SyncToken": "0",
                "TxnDate": "2026-02-03",
                "CustomerRef": _ref("1"),
                "TotalAmt": 10,
                "Line": [sale(1)],
            }
        ],
        "InventoryAdjustment": [
            {
                "Id": "1",
                "SyncToken": "0",
                "TxnDate": "2026-02-05",
                "AdjustAccountRef": _ref("16"),
                "Line": [
                    {
                        "DetailType": "ItemAdjustmentLineDetail",
                        "ItemAdjustmentLineDetail": {"ItemRef": _ref("1"), "QtyDiff": -2},
                    }
                ],
            }
        ],
        "TaxPayment": [tax_payment("1", 1.5, False), tax_payment("2", 0.25, True)],
    }


def test_models_trial_balance_values_inventory_groups_and_sales_tax(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    lake.commit(datetime(2026, 3, 1, tzinfo=UTC), _inventory_and_tax_state())
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb", select=["trial_balance"])
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        balances = dict(
            con.execute("select account_id, balance from marts.trial_balance").fetchall()
        )
        unassigned = con.execute(
            "select count(*) from intermediate.int_ledger_postings where account_id is null"
        ).fetchone()[0]
        tax_payment_dates = con.execute(
            "select distinct txn_date from intermediate.int_ledger_postings "
            "where entity = 'TaxPayment'"
        ).fetchall()
    expected = {
        "1": "-1.25",  # tax paid 1.50, refunded 0.25
        "2": "59.50",  # invoices 44.50 and 25 (a group of a widget and a service) less 10 credited
        "11": "-15.00",  # 5 sold and 2 written off leave the asset, 1 returned: 6 x 2.50
        "12": "10.00",  # cost of 5 sold (one in the group) less 1 returned
        "13": "-55.00",
        "14": "-3.00",  # the AZ rate's tax line
        "15": "-0.25",  # CA line 1.00 + untagged 0.50, less 1.50 paid, plus the 0.25 refund
        "16": "5.00",  # 2 written off at 2.50
    }
    assert balances == {k: Decimal(v) for k, v in expected.items()}
    assert unassigned == 0
    assert tax_payment_dates == [(datetime(2026, 2, 10).date(),)]


def test_models_trial_balance_of_a_snapshot_ignores_later_item_changes(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    state = _inventory_and_tax_state()
    state = {k: state[k] for k in ("Account", "Customer", "Item")}
    state["Invoice"] = [_inventory_and_tax_state()["Invoice"][0]]
    state["Invoice"][0].pop("TxnTaxDetail")
    state["Invoice"][0]["TotalAmt"] = 40
    lake.commit(datetime(2026, 3, 1, tzinfo=UTC), state)
    # The widget's cost doubles and its income moves to another account; a new sale follows.
    later = copy.deepcopy(state)
    later["Item"][0].update({"PurchaseCost": 5, "IncomeAccountRef": _ref("1"), "SyncToken": "1"})
    second = copy.deepcopy(state["Invoice"][0])
    second.update({"Id": "2", "TotalAmt": 10})
    second["Line"][0].update({"Amount": 10})
    second["Line"][0]["SalesItemLineDetail"]["Qty"] = 1
    later["Invoice"].append(second)
    lake.commit(datetime(2026, 3, 2, tzinfo=UTC), later)
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb", select=["trial_balance"])
    s1, s2 = lake.snapshot_ids
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        rows = con.execute(
            "select snapshot_id, account_id, balance from marts.trial_balance order by all"
        ).fetchall()
    balances = {(sid, aid): amount for sid, aid, amount in rows if amount}
    first = {"2": "40", "11": "-10", "12": "10", "13": "-40"}
    # The first invoice keeps the cost (2.50) and income account it was captured with.
    second_expected = {"1": "-10", "2": "50", "11": "-15", "12": "15", "13": "-40"}
    assert balances == {(s1, a): Decimal(v) for a, v in first.items()} | {
        (s2, a): Decimal(v) for a, v in second_expected.items()
    }
