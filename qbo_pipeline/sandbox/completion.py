"""What QBO adds to a record it saves: the fields a client leaves out and the server fills in.

Create an invoice with only a ``CustomerRef`` and one item line and QBO answers
(``invoice_create_response.json``) with the customer's and item's names in the references, line
``Id`` and ``LineNum``, a ``SubTotalLineDetail`` line, the next ``DocNumber``, a ``DueDate`` from
the terms, the customer's addresses, ``TxnTaxDetail``, ``PrintStatus``, ``EmailStatus`` and a
``Balance``. :class:`Completion` does that for every write of the sandbox, from the captures:

- reference names: every catalogue reference to a named record gets its target's name (an
  account's or item's ``FullyQualifiedName``, a party's ``DisplayName``, a currency's name),
  except the ones the captures show unnamed (:data:`UNNAMED_REFS`);
- lines: numbered (``Id``, and ``LineNum`` where the captures show one), a sales form's
  subtotal line added or recomputed, a sales or expense line's ``TaxCodeRef`` defaulted to NON
  where the company has a NON code (a US company; a Canadian one has none);
- sales forms: ``DocNumber`` (the entity's next number when ``CustomTxnNumbers`` is off),
  ``DueDate`` from the terms (the form's, the customer's or the company's default),
  ``BillAddr``/``ShipAddr`` from the customer (not ``BillEmail``: the capture's customer has an
  e-mail address and the created invoice none), ``TxnTaxDetail``, print and e-mail
  status, ``CustomField`` from the company's sales-form custom fields;
- computed amounts, recalculated on every write whatever the client sent: a payment's
  ``UnappliedAmt``, a customer's and vendor's ``Balance`` (their open documents, which
  :mod:`running_balances` also moves with every transaction), an attachment's ``Size`` and
  ``FileAccessUri`` (its stored file);
- name-list defaults (customer, vendor, account, item) as the create captures show them, and
  the ``CurrencyRef`` of a customer, vendor, account or transaction that names none: the
  company's home currency (``Preferences.CurrencyPrefs.HomeCurrency``, CAD in a Canadian
  company), not USD;
- address ``Id`` for every new address;
- a recurring template's transaction: names, lines, ``Balance`` (its total);
- a foreign-currency transaction's ``ExchangeRate``, ``HomeTotalAmt`` and ``HomeBalance``
  (:meth:`Completion.home_amounts`, also after a payment moves the balance).

Fields are filled only when absent, except the computed ones, which are the server's.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.sandbox import links, shapes
from qbo_pipeline.sandbox.new_company_defaults import COUNTRIES
from qbo_pipeline.sandbox.store import SandboxStore

__all__ = ["OPEN_DOCUMENTS", "SALES_FORMS", "Completion"]

SALES_FORMS = ("Invoice", "SalesReceipt", "Estimate", "CreditMemo", "RefundReceipt")
"""Entities written on QBO's sales form: numbered, addressed and subtotalled alike."""

_EXPENSE_FORMS = ("Bill", "Purchase", "PurchaseOrder", "VendorCredit")

_OPEN_BALANCE = ("Invoice", "Bill", "CreditMemo", "VendorCredit")
"""Transactions with an open ``Balance``; a recurring template's starts and stays at its total."""

OPEN_DOCUMENTS: dict[str, tuple[str, str | None, int]] = {
    "Invoice": ("Customer", "Balance", 1),
    "CreditMemo": ("Customer", "Balance", -1),
    "Payment": ("Customer", "UnappliedAmt", -1),
    "Bill": ("Vendor", "Balance", 1),
    "VendorCredit": ("Vendor", "Balance", -1),
    "BillPayment": ("Vendor", None, -1),
}
"""What makes up a party's ``Balance``: entity -> (party, the document's open amount, sign).

A bill payment has no field for what it does not apply (``query_billpayment_all.json``), so
its open amount is computed (None: :func:`open_amount`): what it paid and no longer applies,
its bill deleted, is a credit with the vendor ("When you delete a bill that you've already
paid, QuickBooks creates a credit with the vendor", QuickBooks' help on voiding or deleting a
bill or payment).
"""


def open_amount(entity: str, record: dict[str, Any]) -> Decimal:
    """A document's open amount, unsigned: its field, or a bill payment's unapplied amount."""
    field = OPEN_DOCUMENTS[entity][1]
    if field is None:
        return links.unapplied(record)
    return decimal_amount(record.get(field))


_LINE_NUMBERED = (*SALES_FORMS, "Bill", "PurchaseOrder", "Deposit")
"""Entities whose detail lines carry ``LineNum`` as well as ``Id`` (the others only ``Id``)."""

_LINE_IDS_FROM = {"JournalEntry": 0}
"""Where line ids start: a journal entry's first line is ``"0"`` in every capture, others 1."""

_SUMMARY_DETAILS = ("SubTotalLineDetail", "DiscountLineDetail", "TaxLineDetail")

_ITEM_DETAILS = ("SalesItemLineDetail", "GroupLineDetail")
"""Lines a sales form's subtotal adds up."""

_TAXED_DETAILS = (
    "SalesItemLineDetail",
    "AccountBasedExpenseLineDetail",
    "ItemBasedExpenseLineDetail",
)

ADDRESS_FIELDS = (
    "BillAddr",
    "ShipAddr",
    "PrimaryAddr",
    "OtherAddr",
    "VendorAddr",
    "CompanyAddr",
    "LegalAddr",
    "CustomerCommunicationAddr",
)
"""Top-level physical addresses: each gets an ``Id`` of its own when saved."""

_ADDRESS_COUNTER = "PhysicalAddress"
_ADDRESS_IDS_FROM = 1000
"""New address ids start above every id the generated companies use."""

_NAME_LIST_DEFAULTS: dict[str, dict[str, Any]] = {
    "Customer": {
        "Taxable": True,
        "BillWithParent": False,
        "PreferredDeliveryMethod": "Print",
        "IsProject": False,
    },
    "Vendor": {"Vendor1099": False},
    "Employee": {"BillableTime": False},
    "Item": {"Taxable": False, "UnitPrice": 0, "PurchaseCost": 0, "TrackQtyOnHand": False},
}
"""What a create capture shows for fields the client did not send."""

_CLASSIFICATION = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Expense": "Expense",
    "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense",
}
"""An account's ``Classification``, which QBO derives from its ``AccountType``."""

_DEFAULT_SUB_TYPE = {"Bank": "CashOnHand"}
"""The ``AccountSubType`` QBO picks when a create leaves it out (only what a capture shows)."""

_USD = {"value": "USD", "name": "United States Dollar"}

_CURRENCY_NAMES = {spec.currency[0]: spec.currency[1] for spec in COUNTRIES.values()}
"""Home currencies' names (a company without multicurrency has no CompanyCurrency list)."""

UNNAMED_REFS = frozenset(
    {
        ("Payment", "DepositToAccountRef"),
        ("Payment", "PaymentMethodRef"),
        ("Deposit", "Line[].DepositLineDetail.PaymentMethodRef"),
        ("Bill", "SalesTermRef"),
        ("PurchaseOrder", "SalesTermRef"),
        ("Vendor", "TermRef"),
        ("Attachable", "AttachableRef[].EntityRef"),
    }
)
"""Catalogue references QBO answers without a ``name`` although their target has one
(``payment_create_response.json``, ``query_payment_all.json``, ``query_deposit_all.json``,
``query_bill_all.json``, ``query_vendor_*``, the attachable captures). Every other reference
to a named record (not a tax code or rate, not a parent link) carries its target's name."""


def _walk(node: Any, parts: list[str]) -> list[Any]:
    """The objects at a catalogue reference path (``Line[].SalesItemLineDetail.ItemRef``)."""
    if not parts:
        return node if isinstance(node, list) else [node]
    if isinstance(node, list):
        return [found for item in node for found in _walk(item, parts)]
    key = parts[0].removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return []
    return _walk(node[key], parts[1:])


def decimal_amount(value: object) -> Decimal:
    """An amount as a Decimal; a missing or malformed one counts as 0."""
    if isinstance(value, bool) or value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def json_number(value: Decimal) -> int | float:
    """A JSON number as QBO writes it: integral amounts without a fraction."""
    return int(value) if value == value.to_integral_value() else float(value)


def _doc_counter(ent: Entity) -> str:
    return f"DocNumber.{ent.name}"


def _has(record: dict[str, Any], field: str) -> bool:
    value = record.get(field)
    return value is not None and value != "" and value != {}


class Completion:
    """Fills in what QBO adds to a record of one realm when it saves it."""

    def __init__(self, store: SandboxStore, realm_id: str) -> None:
        """Bind to a realm of a store."""
        self.store = store
        self.realm_id = realm_id

    # --- lookups ----------------------------------------------------------------------------

    def _get(self, entity: str, record_id: object) -> dict[str, Any] | None:
        if record_id in (None, ""):
            return None
        return self.store.get(self.realm_id, entity, str(record_id))

    def _preferences(self) -> dict[str, Any]:
        for record in self.store.iter_records(self.realm_id, "Preferences"):
            return record
        return {}

    def home_currency(self) -> dict[str, str]:
        """The company's home currency as a ``CurrencyRef`` (``{"value": "CAD", "name": ...}``).

        From ``Preferences.CurrencyPrefs.HomeCurrency``; USD when the preferences do not say.
        """
        prefs = self._preferences().get("CurrencyPrefs") or {}
        code = str((prefs.get("HomeCurrency") or {}).get("value") or _USD["value"])
        name = self._currency_name(code)
        return {"value": code, "name": name} if name else {"value": code}

    def _has_tax_code(self, code: str) -> bool:
        return self._get("TaxCode", code) is not None

    def _select(self, entity: str, where: str, params: tuple[Any, ...], columns: str) -> list:
        return self.store.select(
            f"WHERE realm = ? AND entity = ? {where}",
            (self.realm_id, entities.get(entity).name, *params),
            columns=columns,
        )

    # --- the entry point --------------------------------------------------------------------

    def complete(self, ent: Entity, record: dict[str, Any], current: dict[str, Any] | None) -> None:
        """Fill in ``record`` (flat, about to be saved) as QBO would.

        Args:
            ent: Its entity.
            record: The record being saved: the client's fields plus what the write kept.
            current: The stored version an update replaces; None on create.
        """
        self._name_references(ent, record)
        self._address_ids(record)
        if ent.kind is Kind.TRANSACTION:
            self._lines(ent, record)
            if ent.name in SALES_FORMS:
                self._sales_form(ent, record, current)
            elif ent.name in _EXPENSE_FORMS:
                self._expense_form(ent, record)
            elif ent.name == "Payment":
                self._payment(record)
            elif ent.name == "JournalEntry":
                record.setdefault("Adjustment", False)
                record.setdefault("TxnTaxDetail", {})
        elif ent.name in ("Customer", "Vendor", "Employee", "Item", "Account"):
            self._name_list(ent, record, current)
        elif ent.name == "Attachable" and current is not None:
            self._attachable(record, current)
        elif ent.name == shapes.RECURRING:
            self._template(record)

    # --- references and addresses -----------------------------------------------------------

    def _name_references(self, ent: Entity, record: dict[str, Any]) -> None:
        for ref in ent.references:
            if ref.is_self or ref.id_key != "value" or (ent.name, ref.path) in UNNAMED_REFS:
                continue
            for obj in _walk(record, ref.path.split(".")):
                if not isinstance(obj, dict) or _has(obj, "name") or not _has(obj, "value"):
                    continue
                target = obj.get(ref.type_key) if ref.type_key else ref.targets[0]
                if not target:
                    continue
                name = self._display_name(entities.canonical_type(str(target)), obj["value"])
                if name is not None:
                    obj["name"] = name

    def _display_name(self, entity: str, record_id: object) -> str | None:
        """The name QBO writes in a reference: a party's DisplayName, else the full name."""
        if entity == "CompanyCurrency":
            return self._currency_name(str(record_id))
        if entity in ("TaxCode", "TaxRate", "CustomerType"):
            return None
        try:
            target = entities.get(entity)
        except entities.UnknownEntityError:
            return None
        if target.is_singleton or not target.name_field:
            return None
        found = self._get(target.name, record_id)
        if found is None:
            return None
        name = found.get("FullyQualifiedName") if target.name in ("Account", "Item") else None
        name = name or found.get(target.name_field)
        return name if isinstance(name, str) else None

    def _currency_name(self, code: str) -> str | None:
        """A currency's name (``Euro``): a home currency's, else the company currency's."""
        if code in _CURRENCY_NAMES:
            return _CURRENCY_NAMES[code]
        found = self.store.find_active_by_name(self.realm_id, "CompanyCurrency", code)
        record = self._get("CompanyCurrency", found) if found is not None else None
        name = (record or {}).get("Name")
        return name if isinstance(name, str) else None

    def home_amounts(self, ent: Entity, record: dict[str, Any]) -> None:
        """A foreign-currency transaction's ``ExchangeRate`` and home-currency amounts.

        The rate defaults to the company's latest rate for the currency on or before the
        transaction date (its earliest when none is that old, 1 when it has none);
        ``HomeTotalAmt`` and ``HomeBalance`` are the total and the open balance at that rate,
        recalculated on every write. A home-currency transaction carries none of them.
        """
        if ent.kind is not Kind.TRANSACTION:
            return
        currency = (record.get("CurrencyRef") or {}).get("value")
        home = self.home_currency()["value"]
        if not currency or currency == home:
            return
        if not _has(record, "ExchangeRate"):
            record["ExchangeRate"] = self._rate(str(currency), str(record.get("TxnDate") or ""))
        rate = decimal_amount(record["ExchangeRate"])
        for field, home_field in (("TotalAmt", "HomeTotalAmt"), ("Balance", "HomeBalance")):
            if field in record:
                home_value = (decimal_amount(record[field]) * rate).quantize(Decimal("0.01"))
                record[home_field] = json_number(home_value)

    def _rate(self, currency: str, txn_date: str) -> int | float:
        rates = sorted(
            (str(r.get("AsOfDate")), r.get("Rate"))
            for r in self.store.iter_records(self.realm_id, shapes.EXCHANGE_RATE)
            if r.get("SourceCurrencyCode") == currency and r.get("Rate") is not None
        )
        if not rates:
            return 1
        older = [rate for as_of, rate in rates if as_of <= txn_date]
        return json_number(decimal_amount(older[-1] if older else rates[0][1]))

    def _address_ids(self, record: dict[str, Any]) -> None:
        for field in ADDRESS_FIELDS:
            address = record.get(field)
            if isinstance(address, dict) and address and not _has(address, "Id"):
                address["Id"] = self.store.next_counter(
                    self.realm_id, _ADDRESS_COUNTER, floor=_ADDRESS_IDS_FROM
                )

    # --- transactions -----------------------------------------------------------------------

    def _lines(self, ent: Entity, record: dict[str, Any]) -> None:
        """Number the detail lines, default their tax code, and subtotal a sales form."""
        lines = record.get("Line")
        if not isinstance(lines, list):
            if ent.name in ("Payment", "BillPayment"):
                record["Line"] = []
            return
        details = [
            line
            for line in lines
            if isinstance(line, dict)
            and isinstance(line.get("DetailType"), str)
            and line["DetailType"] not in _SUMMARY_DETAILS
        ]
        non_code = self._has_tax_code("NON")
        first = _LINE_IDS_FROM.get(ent.name, 1)
        taken = {str(line["Id"]) for line in details if _has(line, "Id")}
        next_id = first
        for position, line in enumerate(details, start=1):
            if not _has(line, "Id"):
                while str(next_id) in taken:
                    next_id += 1
                line["Id"] = str(next_id)
                taken.add(line["Id"])
            if ent.name in _LINE_NUMBERED:
                line.setdefault("LineNum", position)
            detail = line.get(line["DetailType"])
            if line["DetailType"] in _TAXED_DETAILS and isinstance(detail, dict) and non_code:
                detail.setdefault("TaxCodeRef", {"value": "NON"})
        if ent.name in SALES_FORMS:
            self._subtotal(lines)

    @staticmethod
    def _subtotal(lines: list[Any]) -> None:
        """A sales form carries one subtotal line: the sum of its item lines, computed."""
        total = sum(
            (
                decimal_amount(line.get("Amount"))
                for line in lines
                if isinstance(line, dict) and line.get("DetailType") in _ITEM_DETAILS
            ),
            Decimal(0),
        )
        for line in lines:
            if isinstance(line, dict) and line.get("DetailType") == "SubTotalLineDetail":
                line["Amount"] = json_number(total)
                if not isinstance(line.get("SubTotalLineDetail"), dict):
                    line["SubTotalLineDetail"] = {}
                return
        lines.append(
            {
                "Amount": json_number(total),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }
        )

    def _sales_form(
        self, ent: Entity, record: dict[str, Any], current: dict[str, Any] | None
    ) -> None:
        prefs = self._preferences()
        sales_prefs = prefs.get("SalesFormsPrefs") or {}
        if not _has(record, "DocNumber"):
            kept = (current or {}).get("DocNumber")
            if kept:
                record["DocNumber"] = kept
            elif sales_prefs.get("CustomTxnNumbers") is not True:
                record["DocNumber"] = self._next_doc_number(ent)
        else:
            self.note_doc_number(ent, record)
        record.setdefault("CustomField", self._custom_fields(sales_prefs))
        if ent.name in ("Invoice", "Estimate"):
            record.setdefault("LinkedTxn", [])
        customer = self._get("Customer", (record.get("CustomerRef") or {}).get("value"))
        if customer is not None:
            for field, source in (("BillAddr", "BillAddr"), ("ShipAddr", "ShipAddr")):
                address = customer.get(source) or customer.get("BillAddr")
                if not _has(record, field) and isinstance(address, dict) and address:
                    record[field] = dict(address)
        if ent.name == "Invoice" and not _has(record, "DueDate"):
            days = self._due_days(record.get("SalesTermRef"), customer, prefs)
            record["DueDate"] = self._due(record, days)
        if ent.name == "Invoice":
            for flag in (
                "AllowIPNPayment",
                "AllowOnlinePayment",
                "AllowOnlineCreditCardPayment",
                "AllowOnlineACHPayment",
            ):
                record.setdefault(flag, False)
        if ent.name == "Estimate":
            record.setdefault("TxnStatus", "Pending")
        if ent.name in ("SalesReceipt", "RefundReceipt"):
            record["Balance"] = 0
        record.setdefault("TxnTaxDetail", {"TotalTax": 0})
        if isinstance(record["TxnTaxDetail"], dict):
            record["TxnTaxDetail"].setdefault("TotalTax", 0)
        record.setdefault("ApplyTaxAfterDiscount", False)
        record.setdefault("PrintStatus", "NeedToPrint")
        record.setdefault("EmailStatus", "NotSet")

    def _expense_form(self, ent: Entity, record: dict[str, Any]) -> None:
        if ent.name in ("Bill", "PurchaseOrder"):
            record.setdefault("LinkedTxn", [])
        if ent.name == "Bill" and not _has(record, "DueDate"):
            vendor = self._get("Vendor", (record.get("VendorRef") or {}).get("value"))
            term = record.get("SalesTermRef") or (vendor or {}).get("TermRef")
            record["DueDate"] = self._due(record, self._term_days(term))

    def _payment(self, record: dict[str, Any]) -> None:
        """Default the deposit account; ``UnappliedAmt`` is the total less the applied lines."""
        if not _has(record, "DepositToAccountRef"):
            undeposited = self._select(
                "Account",
                "AND active = 1 AND json_extract(payload, '$.AccountSubType') = ?",
                ("UndepositedFunds",),
                "id_num",
            )
            if undeposited:
                record["DepositToAccountRef"] = {"value": str(undeposited[0][0])}
        record.setdefault("ProcessPayment", False)
        applied = links.net_applied(record)  # a credit memo's line counts against the rest
        record["UnappliedAmt"] = json_number(decimal_amount(record.get("TotalAmt")) - applied)

    def _next_doc_number(self, ent: Entity) -> str:
        """One more than the entity's highest numeric DocNumber, as QBO auto-numbers forms.

        The highest is read from the records once, then kept in a counter of the realm that
        every numeric DocNumber saved raises (:meth:`note_doc_number`).
        """
        name = _doc_counter(ent)
        last = self.store.counter(self.realm_id, name)
        if last is None:
            rows = self._select(
                ent.name,
                "AND json_extract(payload, '$.DocNumber') GLOB '[0-9]*'",
                (),
                "max(CAST(json_extract(payload, '$.DocNumber') AS INTEGER))",
            )
            last = int(rows[0][0]) if rows and rows[0][0] is not None else 1000
        return self.store.next_counter(self.realm_id, name, floor=last)

    def note_doc_number(self, ent: Entity, record: dict[str, Any]) -> None:
        """Raise the entity's number counter past a numeric DocNumber a client chose."""
        number = record.get("DocNumber")
        if ent.name not in SALES_FORMS or not isinstance(number, str) or not number.isdigit():
            return
        if len(number) <= 18 and self.store.counter(self.realm_id, _doc_counter(ent)) is not None:
            self.store.raise_counter(self.realm_id, _doc_counter(ent), int(number))

    @staticmethod
    def _custom_fields(sales_prefs: dict[str, Any]) -> list[dict[str, Any]]:
        """The sales-form custom fields the company switched on, empty, as QBO adds them."""
        flags: dict[str, bool] = {}
        names: dict[str, str] = {}
        for group in sales_prefs.get("CustomField") or []:
            for item in (group or {}).get("CustomField") or []:
                name = str(item.get("Name") or "")
                if name.startswith("SalesFormsPrefs.UseSalesCustom"):
                    flags[name[-1]] = item.get("BooleanValue") is True
                elif name.startswith("SalesFormsPrefs.SalesCustomName"):
                    names[name[-1]] = str(item.get("StringValue") or "")
        return [
            {"DefinitionId": n, "Name": names[n], "Type": "StringType"}
            for n in sorted(flags)
            if flags[n] and names.get(n)
        ]

    def _due_days(
        self, term_ref: object, customer: dict[str, Any] | None, prefs: dict[str, Any]
    ) -> int:
        for ref in (
            term_ref,
            (customer or {}).get("SalesTermRef"),
            (prefs.get("SalesFormsPrefs") or {}).get("DefaultTerms"),
        ):
            if isinstance(ref, dict) and ref.get("value"):
                return self._term_days(ref)
        return 0

    def _term_days(self, term_ref: object) -> int:
        term = self._get(
            "Term", (term_ref or {}).get("value") if isinstance(term_ref, dict) else None
        )
        days = (term or {}).get("DueDays")
        return days if isinstance(days, int) else 0

    @staticmethod
    def _due(record: dict[str, Any], days: int) -> str:
        try:
            txn_date = date.fromisoformat(str(record.get("TxnDate")))
        except ValueError:
            return str(record.get("TxnDate"))
        return (txn_date + timedelta(days=days)).isoformat()

    def _template(self, record: dict[str, Any]) -> None:
        """A recurring template's transaction: names, lines, and an open balance of its total.

        The template is never paid: its ``Balance`` is its total, as the capture shows.
        """
        key = shapes.template_key(record)
        template = record.get(key) if key else None
        if key is None or not isinstance(template, dict):
            return
        wrapped = entities.get(key)
        self._name_references(wrapped, template)
        self._lines(wrapped, template)
        if wrapped.name in _OPEN_BALANCE and "TotalAmt" in template:
            template["Balance"] = template["TotalAmt"]

    # --- name-lists and attachments ---------------------------------------------------------

    def _name_list(
        self, ent: Entity, record: dict[str, Any], current: dict[str, Any] | None
    ) -> None:
        for field, value in _NAME_LIST_DEFAULTS.get(ent.name, {}).items():
            record.setdefault(field, value)
        if ent.name in ("Customer", "Vendor", "Account"):
            record.setdefault("CurrencyRef", self.home_currency())
        if ent.name == "Customer":
            parent = record.get("ParentRef")
            record["Job"] = isinstance(parent, dict) and bool(parent.get("value"))
            if record.get("Taxable") is True and not _has(record, "DefaultTaxCodeRef"):
                code = ((self._preferences().get("TaxPrefs") or {}).get("TaxGroupCodeRef")) or {}
                if code.get("value"):
                    record["DefaultTaxCodeRef"] = {"value": str(code["value"])}
            record_id = (current or {}).get("Id")
            own = self.open_balance("Customer", record_id)
            record["Balance"] = json_number(own)
            jobs = Decimal(0)
            if record_id is not None:
                for (payload,) in self._select(
                    "Customer",
                    "AND json_extract(payload, '$.ParentRef.value') = ?",
                    (str(record_id),),
                    "payload",
                ):
                    jobs += decimal_amount(json.loads(payload).get("BalanceWithJobs"))
            record["BalanceWithJobs"] = json_number(own + jobs)
        elif ent.name == "Vendor":
            record["Balance"] = json_number(self.open_balance("Vendor", (current or {}).get("Id")))
        elif ent.name == "Item" and record.get("Type") == "Inventory":
            record["TrackQtyOnHand"] = True
        elif ent.name == "Account":
            parent = record.get("ParentRef")
            record["SubAccount"] = isinstance(parent, dict) and bool(parent.get("value"))
            account_type = record.get("AccountType")
            if isinstance(account_type, str):
                if account_type in _CLASSIFICATION:
                    record.setdefault("Classification", _CLASSIFICATION[account_type])
                if account_type in _DEFAULT_SUB_TYPE:
                    record.setdefault("AccountSubType", _DEFAULT_SUB_TYPE[account_type])
            if current is None:
                record.setdefault("CurrentBalance", 0)
                record.setdefault("CurrentBalanceWithSubAccounts", 0)

    def open_balance(self, party: str, record_id: object) -> Decimal:
        """What a customer owes (or the company owes a vendor): its open documents.

        A customer's open invoices less its unapplied credit memos and payments; a vendor's
        open bills less its unapplied vendor credits and bill payments (:data:`OPEN_DOCUMENTS`).
        A new record
        has none.
        """
        if record_id in (None, ""):
            return Decimal(0)
        total = Decimal(0)
        for entity, (owner, field, sign) in OPEN_DOCUMENTS.items():
            if owner != party:
                continue
            where = f"AND json_extract(payload, '$.{party}Ref.value') = ?"
            if field is None:
                rows = self._select(entity, where, (str(record_id),), "payload")
                amounts = (open_amount(entity, json.loads(payload)) for (payload,) in rows)
            else:
                rows = self._select(
                    entity, where, (str(record_id),), f"json_extract(payload, '$.{field}')"
                )
                amounts = (decimal_amount(value) for (value,) in rows)
            total += sign * sum(amounts, Decimal(0))
        return total

    def _attachable(self, record: dict[str, Any], current: dict[str, Any]) -> None:
        """An attachment's file is the server's: its size and download path are recomputed."""
        blob = self.store.get_blob(self.realm_id, str(current["Id"]))
        if blob is None:
            for field in ("Size", "FileAccessUri", "TempDownloadUri", "ThumbnailFileAccessUri"):
                if field in current:
                    record[field] = current[field]
            return
        content = blob[1] if isinstance(blob, tuple) else blob
        record["Size"] = len(content)
        record["FileAccessUri"] = f"/v3/company/{self.realm_id}/download/{current['Id']}"
        for field in ("TempDownloadUri", "ThumbnailFileAccessUri", "ThumbnailTempDownloadUri"):
            if field in current and field not in record:
                record[field] = current[field]
