"""The entity catalogue: complete, consistent, and ordered for restore."""

import json

import pytest

from qbo_pipeline import entities
from qbo_pipeline.entities import Kind, Removal
from tests.conftest import SAMPLES

QBO_API_ENTITIES = {
    # Name-list
    "Account",
    "Class",
    "Customer",
    "Department",
    "Employee",
    "Item",
    "PaymentMethod",
    "Term",
    "Vendor",
    "TaxAgency",
    "TaxCode",
    "TaxRate",
    "CustomerType",
    "CompanyCurrency",
    "Budget",
    # Transactions
    "Invoice",
    "SalesReceipt",
    "Estimate",
    "CreditMemo",
    "RefundReceipt",
    "Payment",
    "Deposit",
    "Bill",
    "BillPayment",
    "VendorCredit",
    "Purchase",
    "PurchaseOrder",
    "JournalEntry",
    "Transfer",
    "TimeActivity",
    "CreditCardPayment",
    "InventoryAdjustment",
    "ReimburseCharge",
    "TaxPayment",
    # Others
    "Attachable",
    "RecurringTransaction",
    "ExchangeRate",
    "CompanyInfo",
    "Preferences",
}


def test_catalogue_has_every_entity_of_the_reference() -> None:
    assert set(entities.ENTITIES) == QBO_API_ENTITIES


def test_every_reference_target_is_in_the_catalogue() -> None:
    for entity in entities.CATALOGUE:
        for ref in entity.references:
            for target in ref.targets:
                assert target in entities.ENTITIES, (entity.name, ref.path, target)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Account", "Vendor"),
        ("Term", "Customer"),
        ("Account", "Item"),
        ("Customer", "Invoice"),
        ("Item", "Invoice"),
        ("Invoice", "Payment"),
        ("Bill", "BillPayment"),
        ("Payment", "Deposit"),
        ("SalesReceipt", "Deposit"),
        ("TaxAgency", "TaxRate"),
        ("TaxRate", "TaxCode"),
        ("Estimate", "Invoice"),
        ("PurchaseOrder", "Bill"),
        ("Invoice", "Attachable"),
        ("Bill", "RecurringTransaction"),
    ],
)
def test_restore_order_puts_dependencies_first(before: str, after: str) -> None:
    order = entities.restore_order()
    assert order.index(before) < order.index(after)


def test_restore_order_is_complete_and_name_lists_precede_transactions() -> None:
    order = entities.restore_order()
    assert sorted(order) == sorted(entities.ENTITIES)
    last_name_list = max(order.index(e.name) for e in entities.of_kind(Kind.NAME_LIST))
    first_txn = min(order.index(e.name) for e in entities.of_kind(Kind.TRANSACTION))
    assert last_name_list < first_txn


def test_removal_rules() -> None:
    assert entities.get("Customer").removal is Removal.DEACTIVATE
    assert entities.get("Customer").has_active
    assert entities.get("Invoice").deletable
    assert entities.get("Invoice").void_operation == "operation=void"
    assert entities.get("Payment").void_operation == "operation=update&include=void"
    assert entities.get("TaxCode").read_only, "restore cannot write a tax code back"
    assert not entities.get("CompanyInfo").deletable


@pytest.mark.parametrize("name", ["TaxAgency", "TimeActivity", "TaxCode", "TaxRate"])
def test_cdc_excludes_what_qbo_excludes(name: str) -> None:
    assert not entities.get(name).cdc
    assert name not in {e.name for e in entities.cdc_entities()}


def test_journal_code_which_cdc_also_excludes_is_not_in_the_catalogue() -> None:
    """QBO's CDC excludes JournalCode too; the catalogue has no such entity (France only)."""
    with pytest.raises(entities.UnknownEntityError, match="JournalCode"):
        entities.get("JournalCode")
    assert "JournalCode" not in {e.name for e in entities.cdc_entities()}


def test_lookup_by_json_key_and_case() -> None:
    assert entities.get("creditcardpaymenttxn").name == "CreditCardPayment"
    assert entities.get("INVOICE").name == "Invoice"
    with pytest.raises(entities.UnknownEntityError, match="Invoce"):
        entities.get("Invoce")


def test_reference_values_found_in_a_real_payment() -> None:
    payload = json.loads((SAMPLES / "query_payment_all.json").read_text())["QueryResponse"][
        "Payment"
    ][0]
    refs = {(t, i) for _, t, i in entities.iter_reference_values(entities.get("Payment"), payload)}
    assert ("Customer", "8") in refs
    assert ("Invoice", "96") in refs
    assert ("Account", "4") in refs


def test_reference_values_follow_typed_refs() -> None:
    payload = {
        "EntityRef": {"value": "7", "type": "Vendor"},
        "AccountRef": {"value": "41"},
        "Line": [{"AccountBasedExpenseLineDetail": {"AccountRef": {"value": "55"}}}],
    }
    refs = {(t, i) for _, t, i in entities.iter_reference_values(entities.get("Purchase"), payload)}
    assert refs == {("Vendor", "7"), ("Account", "41"), ("Account", "55")}


def test_reference_values_map_qbo_type_aliases() -> None:
    payload = {"LinkedTxn": [{"TxnId": "12", "TxnType": "BillPaymentCheck"}]}
    refs = {(t, i) for _, t, i in entities.iter_reference_values(entities.get("Bill"), payload)}
    assert refs == {("BillPayment", "12")}
    assert entities.canonical_type("Invoice") == "Invoice"


def test_invoice_line_links_are_references() -> None:
    payload = {"Line": [{"LinkedTxn": [{"TxnId": "7", "TxnType": "Estimate"}]}]}
    refs = {(t, i) for _, t, i in entities.iter_reference_values(entities.get("Invoice"), payload)}
    assert refs == {("Estimate", "7")}
