"""The entity catalogue: complete, consistent, and ordered for restore."""

import json
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.entities import Kind, Removal
from qbo_pipeline.sandbox import pdf, queryable, shapes
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import PINNED_NOW, SAMPLES

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


def test_printable_entities_are_the_sales_and_purchase_forms() -> None:
    printable = {e.name for e in entities.CATALOGUE if e.printable}
    assert printable == {
        "Invoice",
        "Estimate",
        "SalesReceipt",
        "CreditMemo",
        "RefundReceipt",
        "PurchaseOrder",
    }
    for name in printable:
        ent = entities.get(name)
        paths = {ref.path for ref in ent.references}
        assert ent.kind is Kind.TRANSACTION and "Line" in ent.required, name
        assert {"CustomerRef", "VendorRef"} & paths, f"{name} names no customer or vendor"
    # The PDF writer has a heading for each printable form and for nothing else.
    assert set(pdf.TITLES) == printable
    assert not pdf.is_printable("Payment") and pdf.is_printable("invoice")


DOCUMENTED_UNSEEN = frozenset(
    {
        "EmployeeNumber",
        "MiddleName",
        "Suffix",
        "Title",
        "Sku",
        "SubItem",
        "ExpirationDate",
        "Category",
    }
)
"""Filterable per Intuit's reference but optional, and carried by no generated record and no
capture: the only properties the shapes check below takes on trust."""


def _seen_fields() -> dict[str, set[str]]:
    """Every top-level field (and ``MetaData.*``) of each entity's records: a generated
    company's and the real captures'."""
    seen: dict[str, set[str]] = {e.name: set() for e in entities.CATALOGUE}

    def add(name: str, record: Any) -> None:
        if isinstance(record, dict):
            seen[name].update(record)
            seen[name].update(f"MetaData.{k}" for k in record.get("MetaData") or {})

    store = SandboxStore(":memory:")
    generate_company(store, "1", seed=42, anchor=PINNED_NOW)
    for ent in entities.CATALOGUE:
        for record in store.iter_records("1", ent.name):
            add(ent.name, shapes.flat(ent.name, record))

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                ent = entities.ENTITIES.get(key) or next(
                    (e for e in entities.CATALOGUE if e.json_key == key), None
                )
                if ent is not None:
                    for record in value if isinstance(value, list) else [value]:
                        add(ent.name, record)
                walk(value)

    for path in SAMPLES.rglob("*.json"):
        walk(json.loads(path.read_text()))
    return seen


def test_every_filterable_property_exists_in_the_record_shapes() -> None:
    seen = _seen_fields()
    unseen_documented: set[str] = set()
    for ent in entities.CATALOGUE:
        common = {"Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime", "Active"}
        common |= {"DocNumber", "TxnDate"} | {ent.name_field or ""}
        references = {ref.path.split(".")[0].removesuffix("[]") for ref in ent.references}
        missing = ent.filterable - common - seen[ent.name] - references
        assert missing <= DOCUMENTED_UNSEEN, f"{ent.name} filters on unknown {sorted(missing)}"
        unseen_documented |= missing
        # The sandbox's query validation reads the catalogue, whatever the spelling's case.
        for prop in ent.filterable:
            assert queryable.canonical(ent.name, prop.upper()) == prop
    # Each property taken on trust is really absent somewhere (the list does not rot).
    assert unseen_documented == DOCUMENTED_UNSEEN
    assert "PrimaryEmailAddr" not in entities.get("Vendor").filterable
    assert "PrimaryEmailAddr" in entities.get("Customer").filterable
