"""Which properties a query may filter on, per entity, as Intuit's entity references say.

QBO answers a WHERE condition on any other property, known or not, with 4001
``QueryValidationError: property 'PrimaryEmailAddr' is not queryable`` (quoted in
ruckus/quickbooks-ruby#403 and intuit/QuickBooks-V3-DotNET-SDK#163), never with an empty page.
The sets below are the properties Intuit's API reference marks *filterable* for each entity, plus
the ones every entity takes: ``Id`` and the ``MetaData`` times, and ``Active`` on name lists.
Names compare case-insensitively, as QBO's do; :func:`canonical` gives the catalogue spelling.
"""

from __future__ import annotations

from functools import cache

from qbo_pipeline import entities
from qbo_pipeline.entities import Kind

_EVERY = ("Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime")
_NAME_LIST = ("Active",)
_TRANSACTION = ("DocNumber", "TxnDate")
_PERSON = ("DisplayName", "GivenName", "MiddleName", "FamilyName", "Suffix", "Title")
_HIERARCHY = ("Name", "FullyQualifiedName", "ParentRef")

_FILTERABLE: dict[str, tuple[str, ...]] = {
    "CompanyCurrency": ("Code", "Name"),
    "Term": ("Name", "Type"),
    "PaymentMethod": ("Name", "Type"),
    "Class": (*_HIERARCHY, "SubClass"),
    "Department": (*_HIERARCHY, "SubDepartment"),
    "CustomerType": ("Name",),
    "Employee": (*_PERSON, "PrintOnCheckName", "EmployeeNumber"),
    "TaxAgency": ("DisplayName",),
    "TaxRate": ("Name", "Description"),
    "TaxCode": ("Name", "Taxable", "TaxGroup"),
    "Account": (
        *_HIERARCHY,
        "SubAccount",
        "Classification",
        "AccountType",
        "AccountSubType",
        "CurrentBalance",
        "CurrentBalanceWithSubAccounts",
        "CurrencyRef",
    ),
    "Vendor": (*_PERSON, "CompanyName", "PrintOnCheckName"),
    "Customer": (
        *_PERSON,
        "CompanyName",
        "PrintOnCheckName",
        "FullyQualifiedName",
        "PrimaryEmailAddr",
        "Balance",
        "Job",
        "ParentRef",
        "Taxable",
    ),
    "Item": (*_HIERARCHY, "Sku", "Type", "SubItem"),
    "Budget": ("Name", "StartDate", "EndDate", "BudgetType"),
    "Estimate": ("CustomerRef", "TotalAmt", "TxnStatus", "ExpirationDate"),
    "PurchaseOrder": ("VendorRef", "TotalAmt", "POStatus"),
    "TimeActivity": ("NameOf", "EmployeeRef", "VendorRef", "CustomerRef"),
    "Invoice": ("CustomerRef", "TotalAmt", "Balance", "DueDate", "EmailStatus", "PrintStatus"),
    "SalesReceipt": ("CustomerRef", "TotalAmt", "EmailStatus", "PrintStatus"),
    "CreditMemo": ("CustomerRef", "TotalAmt", "Balance", "RemainingCredit"),
    "RefundReceipt": ("CustomerRef", "TotalAmt"),
    "Bill": ("VendorRef", "TotalAmt", "Balance", "DueDate"),
    "VendorCredit": ("VendorRef", "TotalAmt"),
    "Purchase": ("EntityRef", "PaymentType", "TotalAmt", "Credit"),
    "JournalEntry": ("TotalAmt", "Adjustment"),
    "Transfer": ("Amount",),
    "InventoryAdjustment": (),
    "CreditCardPayment": ("Amount",),
    "Payment": ("CustomerRef", "TotalAmt", "UnappliedAmt"),
    "BillPayment": ("VendorRef", "TotalAmt", "PayType"),
    "Deposit": ("TotalAmt",),
    "ReimburseCharge": ("CustomerRef", "Amount"),
    "TaxPayment": ("PaymentDate", "PaymentAmount", "Refund"),
    "Attachable": ("FileName", "ContentType", "Category"),
    "RecurringTransaction": (),
    "ExchangeRate": ("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"),
    "CompanyInfo": (),
    "Preferences": (),
}


DATE_PROPERTIES = frozenset(
    {"TxnDate", "DueDate", "ExpirationDate", "AsOfDate", "StartDate", "EndDate", "PaymentDate"}
)
"""Filterable properties holding a date: their literals must be real ``YYYY-MM-DD`` dates."""


@cache
def _lookup(entity: str) -> dict[str, str]:
    ent = entities.get(entity)
    names = [*_EVERY, *_FILTERABLE.get(ent.name, ())]
    if ent.kind is Kind.NAME_LIST or ent.has_active:
        names += _NAME_LIST
    if ent.kind is Kind.TRANSACTION:
        names += _TRANSACTION
    if ent.name_field:
        names.append(ent.name_field)
    return {name.lower(): name for name in names}


def canonical(entity: str, prop: str) -> str | None:
    """The catalogue spelling of a filterable property of ``entity``, or None if it is not one."""
    return _lookup(entity).get(prop.lower())


def filterable(entity: str) -> frozenset[str]:
    """Every property a WHERE condition on ``entity`` may name."""
    return frozenset(_lookup(entity).values())
