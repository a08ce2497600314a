from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox import sample_company, shapes
from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.generator import allocate, generate_company, money
from qbo_pipeline.sandbox.reports import build_report, cents
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import pinned_company

REALM = "4620816365000000001"

# LinkedTxn.TxnType values QBO writes that name a variant of a catalogue entity.
TXN_TYPE_ALIASES = {"BillPaymentCheck": "BillPayment", "BillPaymentCreditCard": "BillPayment"}


@pytest.fixture(scope="module")
def company() -> SandboxStore:
    store = SandboxStore(":memory:")
    pinned_company(store, REALM, seed=42)
    return store


def _all(store: SandboxStore, entity: str) -> list[dict[str, Any]]:
    return list(store.iter_records(REALM, entity))


def _dump(store: SandboxStore, realm: str = REALM) -> dict[str, list[bytes]]:
    return {
        e.name: [orjson.dumps(r) for r in store.iter_records(realm, e.name)]
        for e in entities.CATALOGUE
    }


def test_default_counts_match_the_sample_company(company: SandboxStore) -> None:
    for entity, expected in sample_company.TRANSACTION_COUNTS.items():
        assert company.count(REALM, entity) == expected, entity
    for entity, expected in sample_company.NAME_LIST_COUNTS.items():
        assert company.count(REALM, entity) == expected, entity
    assert company.count(REALM, "Invoice") == 31
    assert company.count(REALM, "Customer") == 29
    inventory = [i for i in _all(company, "Item") if i["Type"] == "Inventory"]
    assert len(inventory) == 4


def test_every_catalogue_entity_is_present(company: SandboxStore) -> None:
    missing = [e.name for e in entities.CATALOGUE if company.count(REALM, e.name) == 0]
    assert missing == []


def test_real_names_and_inactive_records(company: SandboxStore) -> None:
    assert company.get(REALM, "Customer", "1")["DisplayName"] == "Amy's Bird Sanctuary"
    assert company.get(REALM, "Vendor", "30")["DisplayName"] == "Books by Bessie"
    account = company.get(REALM, "Account", "5")
    assert account["Active"] is False
    assert account["Name"] == "Fees Billed (deleted)"
    employee = company.get(REALM, "Employee", "55")
    assert employee["Active"] is False
    assert employee["DisplayName"] == "Emily Platt (deleted)"
    for entity in ("Account", "Vendor", "Employee", "Class", "Department"):
        inactive = company.count(REALM, entity) - company.count(
            REALM, entity, include_inactive=False
        )
        assert inactive >= 1, entity
    job = company.get(REALM, "Customer", "8")
    assert job["Job"] is True
    assert job["ParentRef"] == {"value": "7"}
    assert job["FullyQualifiedName"] == "Freeman Sporting Goods:0969 Ocean View Road"


def test_every_reference_resolves(company: SandboxStore) -> None:
    currencies = {c["Code"] for c in _all(company, "CompanyCurrency")} | {"USD"}
    checked = 0
    for entity in entities.CATALOGUE:
        for record in company.iter_records(REALM, entity.name):
            for ref, target, target_id in entities.iter_reference_values(entity, record):
                target = TXN_TYPE_ALIASES.get(target, target)
                if target == "CompanyCurrency":
                    assert target_id in currencies
                    continue
                found = company.get(REALM, target, target_id)
                rid = shapes.record_id(entity.name, record)
                assert found is not None, f"{entity.name} {rid} {ref.path} -> {target}"
                checked += 1
    assert checked > 500


def test_same_seed_gives_byte_identical_payloads(company: SandboxStore) -> None:
    other = SandboxStore(":memory:")
    pinned_company(other, REALM, seed=42)
    assert _dump(other) == _dump(company)
    attachment = next(iter(company.iter_records(REALM, "Attachable")))
    assert other.get_blob(REALM, attachment["Id"]) == company.get_blob(REALM, attachment["Id"])
    assert company.now(REALM).date() == other.now(REALM).date()


def test_another_seed_differs(company: SandboxStore) -> None:
    other = SandboxStore(":memory:")
    generate_company(other, REALM, seed=7)
    mine, theirs = _dump(company), _dump(other)
    assert mine["Invoice"] != theirs["Invoice"]
    assert len(theirs["Invoice"]) == len(mine["Invoice"])


def test_invoice_totals_equal_their_lines(company: SandboxStore) -> None:
    for kind in ("Invoice", "SalesReceipt", "Estimate", "CreditMemo", "RefundReceipt"):
        for txn in company.iter_records(REALM, kind):
            items = sum(
                cents(line["Amount"])
                for line in txn["Line"]
                if line["DetailType"] == "SalesItemLineDetail"
            )
            subtotal = [line for line in txn["Line"] if line["DetailType"] == "SubTotalLineDetail"]
            assert cents(subtotal[0]["Amount"]) == items
            tax = cents(txn["TxnTaxDetail"].get("TotalTax"))
            assert sum(cents(t["Amount"]) for t in txn["TxnTaxDetail"].get("TaxLine", [])) == tax
            assert cents(txn["TotalAmt"]) == items + tax, (kind, txn["Id"])


def test_payments_never_exceed_what_they_pay(company: SandboxStore) -> None:
    paid: dict[str, int] = defaultdict(int)
    for payment in company.iter_records(REALM, "Payment"):
        applied = 0
        for line in payment["Line"]:
            for link in line["LinkedTxn"]:
                assert link["TxnType"] == "Invoice"
                paid[link["TxnId"]] += cents(line["Amount"])
                applied += cents(line["Amount"])
        assert applied + cents(payment["UnappliedAmt"]) == cents(payment["TotalAmt"])
    assert paid
    for invoice_id, amount in paid.items():
        invoice = company.get(REALM, "Invoice", invoice_id)
        assert 0 < amount <= cents(invoice["TotalAmt"])
        assert cents(invoice["Balance"]) == cents(invoice["TotalAmt"]) - amount
        assert {"Payment"} <= {link["TxnType"] for link in invoice["LinkedTxn"]}
    for invoice in company.iter_records(REALM, "Invoice"):
        if invoice["Id"] not in paid:
            assert invoice["Balance"] == invoice["TotalAmt"]


def test_bill_payments_pay_their_bills(company: SandboxStore) -> None:
    for payment in company.iter_records(REALM, "BillPayment"):
        (line,) = payment["Line"]
        (link,) = line["LinkedTxn"]
        bill = company.get(REALM, "Bill", link["TxnId"])
        assert cents(line["Amount"]) == cents(bill["TotalAmt"]) == cents(payment["TotalAmt"])
        assert bill["Balance"] == 0
        assert bill["VendorRef"]["value"] == payment["VendorRef"]["value"]


def test_deposits_consume_undeposited_payments_once(company: SandboxStore) -> None:
    deposited: list[str] = []
    for deposit in company.iter_records(REALM, "Deposit"):
        lines = sum(cents(line["Amount"]) for line in deposit["Line"])
        back = cents((deposit.get("CashBack") or {}).get("Amount"))
        assert cents(deposit["TotalAmt"]) == lines - back
        for line in deposit["Line"]:
            for link in line.get("LinkedTxn", []):
                source = company.get(REALM, link["TxnType"], link["TxnId"])
                assert source["DepositToAccountRef"]["value"] == "4"
                assert cents(source["TotalAmt"]) == cents(line["Amount"])
                deposited.append(link["TxnId"])
    assert deposited
    assert len(deposited) == len(set(deposited))


def test_journal_entries_balance(company: SandboxStore) -> None:
    for entry in company.iter_records(REALM, "JournalEntry"):
        sides = defaultdict(int)
        for line in entry["Line"]:
            sides[line["JournalEntryLineDetail"]["PostingType"]] += cents(line["Amount"])
        assert sides["Debit"] == sides["Credit"] > 0


def test_balances_match_open_documents(company: SandboxStore) -> None:
    expected: dict[str, int] = defaultdict(int)
    for invoice in company.iter_records(REALM, "Invoice"):
        expected[invoice["CustomerRef"]["value"]] += cents(invoice["Balance"])
    for memo in company.iter_records(REALM, "CreditMemo"):
        expected[memo["CustomerRef"]["value"]] -= cents(memo["Balance"])
    for payment in company.iter_records(REALM, "Payment"):
        expected[payment["CustomerRef"]["value"]] -= cents(payment["UnappliedAmt"])
    for customer in company.iter_records(REALM, "Customer"):
        assert cents(customer["Balance"]) == expected[customer["Id"]], customer["Id"]
    receivable = company.get(REALM, "Account", "84")
    assert cents(receivable["CurrentBalance"]) == sum(expected.values())


def test_trial_balance_balances_at_default_scale(company: SandboxStore) -> None:
    report = build_report(company, REALM, "TrialBalance", {"date_macro": "all"})
    total = report["Rows"]["Row"][-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"] != "0.00"


def test_larger_scale_grows_lists_and_still_balances() -> None:
    store = SandboxStore(":memory:")
    summary = generate_company(store, REALM, seed=3, transactions=20_000)
    assert summary.transactions == 20_000
    assert store.count(REALM, "Invoice") + store.count(REALM, "Payment") > 6000
    assert store.count(REALM, "Customer") > 29 * 100
    # Three years of books that end the day before the host's today, not in the future.
    today = datetime.now(UTC).astimezone(COMPANY_TZ).date()
    dates = sorted(i["TxnDate"] for i in store.iter_records(REALM, "Invoice"))
    assert date.fromisoformat(dates[0]) >= today - timedelta(days=3 * 365 + 1)
    assert today - timedelta(days=30) <= date.fromisoformat(dates[-1]) < today
    assert summary.clock.astimezone(COMPANY_TZ).date() > date.fromisoformat(dates[-1])
    report = build_report(store, REALM, "TrialBalance", {"date_macro": "all"})
    total = report["Rows"]["Row"][-1]["Summary"]["ColData"]
    assert total[1]["value"] == total[2]["value"]


def test_start_date_moves_the_books_and_the_clock() -> None:
    store = SandboxStore(":memory:")
    summary = generate_company(store, REALM, start=date(2020, 3, 1), company_name="Acme Co")
    dates = [i["TxnDate"] for i in store.iter_records(REALM, "Invoice")]
    assert min(dates) >= "2020-03-01"
    assert max(dates) < summary.clock.date().isoformat() <= "2021-03-02"
    assert store.company_name(REALM) == "Acme Co"
    assert store.get(REALM, "CompanyInfo", "1")["CompanyName"] == "Acme Co"


def test_refuses_a_realm_that_already_holds_a_company(company: SandboxStore) -> None:
    with pytest.raises(ValueError, match="already holds a company"):
        generate_company(company, REALM)


def test_refuses_too_few_transactions() -> None:
    with pytest.raises(ValueError, match="too small"):
        generate_company(SandboxStore(":memory:"), REALM, transactions=5)


@pytest.mark.parametrize("total", [19, 20, 135, 1000, 12345])
def test_allocate_splits_exactly(total: int) -> None:
    split = allocate(total, sample_company.TRANSACTION_COUNTS)
    assert sum(split.values()) == total
    assert min(split.values()) >= 1
    assert split["Bill"] >= split["BillPayment"]


def test_money_writes_whole_amounts_as_integers() -> None:
    assert money(27500) == 275
    assert isinstance(money(27500), int)
    assert money(10355) == 103.55
    assert money(-5) == -0.05
