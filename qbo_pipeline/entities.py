"""The QBO entity catalogue: one source of truth for every layer.

The sandbox, the dlt source, the lake, the SQL models, the exports and restore all read this
module. Each :class:`Entity` says what kind of record it is, how QBO names and addresses it, whether
Change Data Capture covers it, how it is removed (deleted, voided or only deactivated), which fields
must be present on create, and which fields reference other records.

Facts come from ``shared/qbo-reference`` (QBO_API.md, dependency_map.txt and the real wire captures
in samples/); where the reference and a capture disagree the capture wins.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Any

from qbo_pipeline.errors import UsageError
from qbo_pipeline.toposort import priority_order

MINOR_VERSION = 75
"""The QBO API minor version every request sends (versions 1-74 are ignored since 2025-08-01)."""

CDC_LOOKBACK_DAYS = 30
"""How far back Change Data Capture can look."""

CDC_MAX_OBJECTS = 1000
"""The most objects one CDC response returns."""

MAX_PAGE_SIZE = 1000
"""The largest MAXRESULTS a query accepts."""

DEFAULT_PAGE_SIZE = 100
"""The MAXRESULTS a query gets when it does not say."""

BATCH_MAX_ITEMS = 30
"""The most items one batch request may carry."""

RATE_LIMIT_PER_MINUTE = 500
"""Requests per minute per realm."""

MAX_CONCURRENT_REQUESTS = 10
"""Requests in flight at once per realm."""

REPORTS = ("TrialBalance", "ProfitAndLoss", "BalanceSheet")
"""Reports kept raw with every snapshot as evidence of the books' state."""

TAX_SERVICE = "taxservice/taxcode"
"""The resource that creates a tax code with its rates (``POST .../taxservice/taxcode``): a
TaxCode name and ``TaxRateDetails`` in, ``TaxCodeId`` and each ``TaxRateId`` out."""


class Kind(StrEnum):
    """What sort of record an entity is."""

    NAME_LIST = "name-list"
    TRANSACTION = "transaction"
    SINGLETON = "singleton"
    SUPPORTING = "supporting"
    """Attachable, RecurringTransaction and ExchangeRate: neither lists nor postings."""


class Removal(StrEnum):
    """How QBO removes a record of an entity."""

    DELETE = "delete"
    """Hard delete with ``?operation=delete``; CDC reports it with ``status: Deleted``."""
    DEACTIVATE = "deactivate"
    """Never hard-deleted: ``Active=false`` and " (deleted)" appended to the name."""
    NONE = "none"
    """Cannot be removed through the API."""


@dataclass(frozen=True)
class Reference:
    """A field of an entity that points at another record.

    Attributes:
        path: Dotted JSON path to the reference object; ``[]`` marks an array, for example
            ``Line[].SalesItemLineDetail.ItemRef`` or ``LinkedTxn[]``.
        targets: The entities the reference may point to. For a typed reference (``type_key``
            set) these are the types that make the referrer depend on the target for restore;
            other types found in the data are back-links (reported, never ordered on).
        id_key: The key holding the target id inside the reference object.
        type_key: The key naming the target entity when the reference is polymorphic
            (``EntityRef.type``, ``LinkedTxn.TxnType``).
        dependency: Whether the target must exist before the referrer can be created.
    """

    path: str
    targets: tuple[str, ...]
    id_key: str = "value"
    type_key: str | None = None
    dependency: bool = True

    @property
    def is_self(self) -> bool:
        """Whether this is a parent link within one entity (parents first on restore)."""
        return self.path == "ParentRef"


@dataclass(frozen=True)
class Entity:
    """One QBO entity and everything the pipeline needs to know about it.

    Attributes:
        name: The entity name used in queries and in this project (``CreditCardPayment``).
        kind: Name-list, transaction, singleton or supporting.
        cdc: Whether Change Data Capture covers it; when not, every snapshot reads it in full.
        removal: How a record is removed.
        json_key: The key of a record in payloads and responses, when it differs from ``name``
            (``CreditCardPaymentTxn``).
        void_operation: The query string that voids a record (``operation=void``), if voidable.
        read_only: Whether the API refuses creates and updates.
        name_field: The field that must be unique among active records (6240), if any.
        required: Fields a create must carry (2020 when missing); ``a|b`` means one of them.
        references: Fields that point at other records.
        multicurrency_only: Present only when the company has multicurrency switched on.
        volatile_fields: Top-level fields that change on every read (presigned URLs) and so are
            kept in the payload but left out of the content hash.
        posts_to_ledger: Whether the transaction moves money in the general ledger.
        amount_field: The field holding the transaction total, if any.
        keyed_by_id: Whether a record carries a top-level ``Id`` that reads by id and
            ``Id IN (...)`` queries address (not an ExchangeRate, keyed by currency and date,
            nor a RecurringTransaction, whose Id sits in the transaction it wraps).
        printable: Whether QBO prints it as a form (``GET .../<entity>/<id>/pdf`` and
            ``.../send``): the sales forms and the purchase order.
        filterable: Every property a query's WHERE may name (QBO answers any other with 4001
            "not queryable"): the ones Intuit's entity reference marks *filterable*, plus those
            every entity takes (``Id``, the ``MetaData`` times), ``Active`` on name-lists,
            ``DocNumber`` and ``TxnDate`` on transactions and the entity's name field.
        names_modifier: Whether QBO names the user who last wrote a record in its
            ``MetaData.LastModifiedByRef`` (every invoice, bill and purchase order of the
            captures carries it, no record of another entity does; none carries CreatedByRef).
        created_through: The resource that creates a read-only entity's records, if one does:
            TaxCode and TaxRate are created together by ``taxservice/taxcode`` (Intuit's
            TaxService; the entities' own resources only read).
    """

    name: str
    kind: Kind
    cdc: bool
    removal: Removal
    json_key: str = ""
    void_operation: str | None = None
    read_only: bool = False
    name_field: str | None = None
    required: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    multicurrency_only: bool = False
    volatile_fields: tuple[str, ...] = ()
    posts_to_ledger: bool = False
    amount_field: str | None = None
    keyed_by_id: bool = True
    printable: bool = False
    filterable: frozenset[str] = frozenset()
    names_modifier: bool = False
    created_through: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        """Default the JSON key to the entity name."""
        if not self.json_key:
            object.__setattr__(self, "json_key", self.name)

    @property
    def resource(self) -> str:
        """The URL path segment for reads and writes (``/v3/company/{realm}/{resource}``)."""
        return self.name.lower()

    @property
    def has_active(self) -> bool:
        """Whether records carry ``Active`` and queries hide inactive ones by default."""
        return self.removal is Removal.DEACTIVATE

    @property
    def deletable(self) -> bool:
        """Whether ``?operation=delete`` is allowed."""
        return self.removal is Removal.DELETE and not self.read_only

    @property
    def voidable(self) -> bool:
        """Whether the entity can be voided."""
        return self.void_operation is not None

    @property
    def is_singleton(self) -> bool:
        """CompanyInfo and Preferences: one record per company, read by GET."""
        return self.kind is Kind.SINGLETON


def _ref(path: str, *targets: str, **kw: Any) -> Reference:
    return Reference(path=path, targets=targets, **kw)


def _linked(path: str, *targets: str) -> Reference:
    """A ``LinkedTxn`` array: ``[{TxnId, TxnType}]``."""
    return Reference(path=path, targets=targets, id_key="TxnId", type_key="TxnType")


_CURRENCY = _ref("CurrencyRef", "CompanyCurrency", id_key="value", dependency=False)
"""CurrencyRef carries an ISO code, not an id; kept for the reference graph, never ordered on."""

_SALES_LINES = (
    _ref("Line[].SalesItemLineDetail.ItemRef", "Item"),
    _ref("Line[].SalesItemLineDetail.ClassRef", "Class"),
    _ref("Line[].SalesItemLineDetail.TaxCodeRef", "TaxCode", dependency=False),
    _ref("Line[].SalesItemLineDetail.ItemAccountRef", "Account"),
    _ref("Line[].GroupLineDetail.GroupItemRef", "Item"),
    _ref("Line[].DiscountLineDetail.DiscountAccountRef", "Account"),
    _ref("TxnTaxDetail.TxnTaxCodeRef", "TaxCode", dependency=False),
    _ref("TxnTaxDetail.TaxLine[].TaxLineDetail.TaxRateRef", "TaxRate", dependency=False),
    _ref("ClassRef", "Class"),
    _ref("DepartmentRef", "Department"),
    _CURRENCY,
)

_EXPENSE_LINES = (
    _ref("Line[].AccountBasedExpenseLineDetail.AccountRef", "Account"),
    _ref("Line[].AccountBasedExpenseLineDetail.CustomerRef", "Customer"),
    _ref("Line[].AccountBasedExpenseLineDetail.ClassRef", "Class"),
    _ref("Line[].AccountBasedExpenseLineDetail.TaxCodeRef", "TaxCode", dependency=False),
    _ref("Line[].ItemBasedExpenseLineDetail.ItemRef", "Item"),
    _ref("Line[].ItemBasedExpenseLineDetail.CustomerRef", "Customer"),
    _ref("Line[].ItemBasedExpenseLineDetail.ClassRef", "Class"),
    _ref("Line[].ItemBasedExpenseLineDetail.TaxCodeRef", "TaxCode", dependency=False),
    _ref("DepartmentRef", "Department"),
    _CURRENCY,
)

_PARTY_TYPES = ("Customer", "Vendor", "Employee")

_PERSON = ("DisplayName", "GivenName", "MiddleName", "FamilyName", "Suffix", "Title")
"""The filterable name parts of a person (customer, vendor, employee)."""

_HIERARCHY = ("Name", "FullyQualifiedName", "ParentRef")
"""The filterable names of a record that may sit under a parent (class, account, item...)."""

_EVERY_FILTERABLE = ("Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime")
"""Properties every entity's queries may filter on."""


def _props(*names: str) -> frozenset[str]:
    """The entity's own filterable properties, as Intuit's entity reference lists them."""
    return frozenset(names)


_NAME_LIST = Kind.NAME_LIST
_TXN = Kind.TRANSACTION

CATALOGUE: tuple[Entity, ...] = (
    # --- name-list -------------------------------------------------------------------------
    Entity(
        "CompanyCurrency",
        _NAME_LIST,
        cdc=False,
        removal=Removal.DEACTIVATE,
        name_field="Code",
        required=("Code",),
        multicurrency_only=True,
        filterable=_props("Code", "Name"),
    ),
    Entity(
        "Term",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name",),
        filterable=_props("Name", "Type"),
    ),
    Entity(
        "PaymentMethod",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name",),
        filterable=_props("Name", "Type"),
    ),
    Entity(
        "Class",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name",),
        references=(_ref("ParentRef", "Class"),),
        filterable=_props(*_HIERARCHY, "SubClass"),
    ),
    Entity(
        "Department",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name",),
        references=(_ref("ParentRef", "Department"),),
        filterable=_props(*_HIERARCHY, "SubDepartment"),
    ),
    Entity(
        "CustomerType",
        _NAME_LIST,
        cdc=False,
        removal=Removal.DEACTIVATE,
        read_only=True,
        name_field="Name",
        filterable=_props("Name"),
    ),
    Entity(
        "Employee",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="DisplayName",
        required=("GivenName|FamilyName|DisplayName",),
        filterable=_props(*_PERSON, "PrintOnCheckName", "EmployeeNumber"),
    ),
    Entity(
        "TaxAgency",
        _NAME_LIST,
        cdc=False,
        removal=Removal.DEACTIVATE,
        name_field="DisplayName",
        required=("DisplayName",),
        filterable=_props("DisplayName"),
    ),
    Entity(
        "TaxRate",
        _NAME_LIST,
        cdc=False,
        removal=Removal.DEACTIVATE,
        read_only=True,
        created_through=TAX_SERVICE,
        name_field="Name",
        references=(_ref("AgencyRef", "TaxAgency"),),
        filterable=_props("Name", "Description"),
    ),
    Entity(
        "TaxCode",
        _NAME_LIST,
        cdc=False,
        removal=Removal.DEACTIVATE,
        read_only=True,
        created_through=TAX_SERVICE,
        name_field="Name",
        references=(
            _ref("SalesTaxRateList.TaxRateDetail[].TaxRateRef", "TaxRate"),
            _ref("PurchaseTaxRateList.TaxRateDetail[].TaxRateRef", "TaxRate"),
        ),
        filterable=_props("Name", "Taxable", "TaxGroup"),
    ),
    Entity(
        "Account",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name", "AccountType|AccountSubType"),
        references=(
            _ref("ParentRef", "Account"),
            _CURRENCY,
            _ref("TaxCodeRef", "TaxCode", dependency=False),
        ),
        filterable=_props(
            *_HIERARCHY,
            "SubAccount",
            "Classification",
            "AccountType",
            "AccountSubType",
            "CurrentBalance",
            "CurrentBalanceWithSubAccounts",
            "CurrencyRef",
        ),
    ),
    Entity(
        "Vendor",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="DisplayName",
        required=("DisplayName",),
        references=(
            _ref("TermRef", "Term"),
            _ref("APAccountRef", "Account"),
            _CURRENCY,
            _ref("DefaultTaxCodeRef", "TaxCode", dependency=False),
        ),
        filterable=_props(*_PERSON, "CompanyName", "PrintOnCheckName"),
    ),
    Entity(
        "Customer",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="DisplayName",
        required=("DisplayName",),
        references=(
            _ref("ParentRef", "Customer"),
            _ref("SalesTermRef", "Term"),
            _ref("PaymentMethodRef", "PaymentMethod"),
            _ref("DefaultTaxCodeRef", "TaxCode", dependency=False),
            _ref("CustomerTypeRef", "CustomerType", dependency=False),
            _ref("ARAccountRef", "Account"),
            _CURRENCY,
        ),
        filterable=_props(
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
    ),
    Entity(
        "Item",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name", "Type"),
        references=(
            _ref("IncomeAccountRef", "Account"),
            _ref("ExpenseAccountRef", "Account"),
            _ref("AssetAccountRef", "Account"),
            _ref("ParentRef", "Item"),
            _ref("ItemGroupDetail.ItemGroupLine[].ItemRef", "Item"),
            _ref("PrefVendorRef", "Vendor"),
            _ref("ClassRef", "Class"),
            _ref("SalesTaxCodeRef", "TaxCode", dependency=False),
            _ref("PurchaseTaxCodeRef", "TaxCode", dependency=False),
        ),
        filterable=_props(*_HIERARCHY, "Sku", "Type", "SubItem"),
    ),
    Entity(
        "Budget",
        _NAME_LIST,
        cdc=True,
        removal=Removal.DEACTIVATE,
        name_field="Name",
        required=("Name", "StartDate", "EndDate"),
        references=(
            _ref("BudgetDetail[].AccountRef", "Account"),
            _ref("BudgetDetail[].ClassRef", "Class"),
            _ref("BudgetDetail[].CustomerRef", "Customer"),
            _ref("BudgetDetail[].DepartmentRef", "Department"),
        ),
        filterable=_props("Name", "StartDate", "EndDate", "BudgetType"),
    ),
    # --- transactions ----------------------------------------------------------------------
    Entity(
        "Estimate",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("CustomerRef", "Line"),
        amount_field="TotalAmt",
        references=(
            _ref("CustomerRef", "Customer"),
            _ref("SalesTermRef", "Term"),
            *_SALES_LINES,
            _linked("LinkedTxn[]"),
        ),
        printable=True,
        filterable=_props("CustomerRef", "TotalAmt", "TxnStatus", "ExpirationDate"),
    ),
    Entity(
        "PurchaseOrder",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("VendorRef", "APAccountRef", "Line"),
        amount_field="TotalAmt",
        references=(
            _ref("VendorRef", "Vendor"),
            _ref("APAccountRef", "Account"),
            _ref("SalesTermRef", "Term"),
            *_EXPENSE_LINES,
            _linked("LinkedTxn[]"),
        ),
        printable=True,
        filterable=_props("VendorRef", "TotalAmt", "POStatus"),
        names_modifier=True,
    ),
    Entity(
        "TimeActivity",
        _TXN,
        cdc=False,
        removal=Removal.DELETE,
        required=("NameOf",),
        references=(
            _ref("EmployeeRef", "Employee"),
            _ref("VendorRef", "Vendor"),
            _ref("CustomerRef", "Customer"),
            _ref("ItemRef", "Item"),
            _ref("ClassRef", "Class"),
            _ref("DepartmentRef", "Department"),
        ),
        filterable=_props("NameOf", "EmployeeRef", "VendorRef", "CustomerRef"),
    ),
    Entity(
        "Invoice",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        void_operation="operation=void",
        required=("CustomerRef", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("CustomerRef", "Customer"),
            _ref("SalesTermRef", "Term"),
            _ref("DepositToAccountRef", "Account"),
            *_SALES_LINES,
            _linked("LinkedTxn[]", "Estimate", "TimeActivity"),
            _linked("Line[].LinkedTxn[]", "Estimate", "TimeActivity"),
        ),
        printable=True,
        filterable=_props(
            "CustomerRef", "TotalAmt", "Balance", "DueDate", "EmailStatus", "PrintStatus"
        ),
        names_modifier=True,
    ),
    Entity(
        "SalesReceipt",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        void_operation="operation=update&include=void",
        required=("Line",),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("CustomerRef", "Customer"),
            _ref("PaymentMethodRef", "PaymentMethod"),
            _ref("DepositToAccountRef", "Account"),
            *_SALES_LINES,
            _linked("LinkedTxn[]", "Estimate"),
        ),
        printable=True,
        filterable=_props("CustomerRef", "TotalAmt", "EmailStatus", "PrintStatus"),
    ),
    Entity(
        "CreditMemo",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("CustomerRef", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(_ref("CustomerRef", "Customer"), *_SALES_LINES, _linked("LinkedTxn[]")),
        printable=True,
        filterable=_props("CustomerRef", "TotalAmt", "Balance", "RemainingCredit"),
    ),
    Entity(
        "RefundReceipt",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("Line", "DepositToAccountRef"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("CustomerRef", "Customer"),
            _ref("PaymentMethodRef", "PaymentMethod"),
            _ref("DepositToAccountRef", "Account"),
            *_SALES_LINES,
        ),
        printable=True,
        filterable=_props("CustomerRef", "TotalAmt"),
    ),
    Entity(
        "Bill",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("VendorRef", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("VendorRef", "Vendor"),
            _ref("APAccountRef", "Account"),
            _ref("SalesTermRef", "Term"),
            *_EXPENSE_LINES,
            _linked("LinkedTxn[]", "PurchaseOrder"),
        ),
        filterable=_props("VendorRef", "TotalAmt", "Balance", "DueDate"),
        names_modifier=True,
    ),
    Entity(
        "VendorCredit",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("VendorRef", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("VendorRef", "Vendor"),
            _ref("APAccountRef", "Account"),
            *_EXPENSE_LINES,
        ),
        filterable=_props("VendorRef", "TotalAmt"),
    ),
    Entity(
        "Purchase",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("AccountRef", "PaymentType", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("AccountRef", "Account"),
            _ref("EntityRef", *_PARTY_TYPES, type_key="type"),
            _ref("PaymentMethodRef", "PaymentMethod"),
            *_EXPENSE_LINES,
            _linked("LinkedTxn[]", "PurchaseOrder"),
        ),
        filterable=_props("EntityRef", "PaymentType", "TotalAmt", "Credit"),
    ),
    Entity(
        "JournalEntry",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("Line",),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("Line[].JournalEntryLineDetail.AccountRef", "Account"),
            _ref("Line[].JournalEntryLineDetail.Entity.EntityRef", *_PARTY_TYPES, type_key="type"),
            _ref("Line[].JournalEntryLineDetail.ClassRef", "Class"),
            _ref("Line[].JournalEntryLineDetail.DepartmentRef", "Department"),
            _ref("Line[].JournalEntryLineDetail.TaxCodeRef", "TaxCode", dependency=False),
            _CURRENCY,
        ),
        filterable=_props("TotalAmt", "Adjustment"),
    ),
    Entity(
        "Transfer",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("FromAccountRef", "ToAccountRef", "Amount"),
        posts_to_ledger=True,
        amount_field="Amount",
        references=(
            _ref("FromAccountRef", "Account"),
            _ref("ToAccountRef", "Account"),
            _ref("ClassRef", "Class"),
        ),
        filterable=_props("Amount"),
    ),
    Entity(
        "InventoryAdjustment",
        _TXN,
        cdc=False,
        removal=Removal.DELETE,
        required=("AdjustAccountRef", "Line"),
        posts_to_ledger=True,
        references=(
            _ref("AdjustAccountRef", "Account"),
            _ref("Line[].ItemAdjustmentLineDetail.ItemRef", "Item"),
            _ref("ClassRef", "Class"),
            _ref("DepartmentRef", "Department"),
        ),
    ),
    Entity(
        "CreditCardPayment",
        _TXN,
        cdc=False,
        removal=Removal.DELETE,
        json_key="CreditCardPaymentTxn",
        required=("CreditCardAccountRef", "BankAccountRef", "Amount"),
        posts_to_ledger=True,
        amount_field="Amount",
        references=(
            _ref("CreditCardAccountRef", "Account"),
            _ref("BankAccountRef", "Account"),
            _ref("VendorRef", "Vendor"),
        ),
        filterable=_props("Amount"),
    ),
    Entity(
        "Payment",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        void_operation="operation=update&include=void",
        required=("CustomerRef", "TotalAmt"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("CustomerRef", "Customer"),
            _ref("DepositToAccountRef", "Account"),
            _ref("ARAccountRef", "Account"),
            _ref("PaymentMethodRef", "PaymentMethod"),
            _linked("Line[].LinkedTxn[]", "Invoice", "CreditMemo", "JournalEntry"),
            _linked("LinkedTxn[]"),
            _CURRENCY,
        ),
        filterable=_props("CustomerRef", "TotalAmt", "UnappliedAmt"),
    ),
    Entity(
        "BillPayment",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        void_operation="operation=update&include=void",
        required=("VendorRef", "PayType", "TotalAmt", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("VendorRef", "Vendor"),
            _ref("APAccountRef", "Account"),
            _ref("CheckPayment.BankAccountRef", "Account"),
            _ref("CreditCardPayment.CCAccountRef", "Account"),
            _linked("Line[].LinkedTxn[]", "Bill", "VendorCredit", "JournalEntry"),
            _CURRENCY,
        ),
        filterable=_props("VendorRef", "TotalAmt", "PayType"),
    ),
    Entity(
        "Deposit",
        _TXN,
        cdc=True,
        removal=Removal.DELETE,
        required=("DepositToAccountRef", "Line"),
        posts_to_ledger=True,
        amount_field="TotalAmt",
        references=(
            _ref("DepositToAccountRef", "Account"),
            _ref("Line[].DepositLineDetail.AccountRef", "Account"),
            _ref("Line[].DepositLineDetail.Entity", *_PARTY_TYPES, type_key="type"),
            _ref("Line[].DepositLineDetail.PaymentMethodRef", "PaymentMethod"),
            _ref("Line[].DepositLineDetail.ClassRef", "Class"),
            _ref("CashBack.AccountRef", "Account"),
            _ref("DepartmentRef", "Department"),
            _linked(
                "Line[].LinkedTxn[]", "Payment", "SalesReceipt", "RefundReceipt", "JournalEntry"
            ),
            _CURRENCY,
        ),
        filterable=_props("TotalAmt"),
    ),
    Entity(
        "ReimburseCharge",
        _TXN,
        cdc=False,
        removal=Removal.NONE,
        read_only=True,
        amount_field="Amount",
        references=(_ref("CustomerRef", "Customer"),),
        filterable=_props("CustomerRef", "Amount"),
    ),
    Entity(
        "TaxPayment",
        _TXN,
        cdc=False,
        removal=Removal.NONE,
        read_only=True,
        posts_to_ledger=True,
        amount_field="PaymentAmount",
        references=(_ref("PaymentAccountRef", "Account"),),
        filterable=_props("PaymentDate", "PaymentAmount", "Refund"),
    ),
    # --- supporting --------------------------------------------------------------------------
    Entity(
        "Attachable",
        Kind.SUPPORTING,
        cdc=False,
        removal=Removal.DELETE,
        volatile_fields=("TempDownloadUri",),
        references=(
            # Filled in below: an attachment may hang off any list record or transaction.
            _ref("AttachableRef[].EntityRef", type_key="type"),
        ),
        filterable=_props("FileName", "ContentType", "Category"),
    ),
    Entity(
        "RecurringTransaction",
        Kind.SUPPORTING,
        cdc=False,
        removal=Removal.DELETE,
        keyed_by_id=False,
    ),
    Entity(
        "ExchangeRate",
        Kind.SUPPORTING,
        cdc=False,
        removal=Removal.NONE,
        multicurrency_only=True,
        keyed_by_id=False,
        required=("SourceCurrencyCode", "Rate"),
        references=(_ref("SourceCurrencyCode", "CompanyCurrency", dependency=False),),
        filterable=_props("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"),
    ),
    # --- singletons --------------------------------------------------------------------------
    Entity("CompanyInfo", Kind.SINGLETON, cdc=False, removal=Removal.NONE),
    Entity("Preferences", Kind.SINGLETON, cdc=False, removal=Removal.NONE),
)


def _with_common_filters(entity: Entity) -> Entity:
    """Add the filterable properties that follow from the entity's kind and name field."""
    names = {*_EVERY_FILTERABLE, *entity.filterable}
    if entity.kind is Kind.NAME_LIST or entity.has_active:
        names.add("Active")
    if entity.kind is Kind.TRANSACTION:
        names |= {"DocNumber", "TxnDate"}
    if entity.name_field:
        names.add(entity.name_field)
    return replace(entity, filterable=frozenset(names))


def _complete(entity: Entity) -> Entity:
    """Give the polymorphic supporting entities their full target lists."""
    entity = _with_common_filters(entity)
    listed = tuple(e.name for e in CATALOGUE if e.kind in (Kind.NAME_LIST, Kind.TRANSACTION))
    if entity.name == "Attachable":
        ref = replace(entity.references[0], targets=listed)
        return replace(entity, references=(ref,))
    if entity.name == "RecurringTransaction":
        # A recurring template wraps a transaction under its type's key ({"Bill": {...}}) and
        # needs what that transaction needs; ordering it after every transaction is enough.
        refs = tuple(
            Reference(path=f"{e.json_key}.__template__", targets=(e.name,), dependency=True)
            for e in CATALOGUE
            if e.kind is Kind.TRANSACTION
        )
        return replace(entity, references=refs)
    return entity


CATALOGUE = tuple(_complete(e) for e in CATALOGUE)

ENTITIES: dict[str, Entity] = {e.name: e for e in CATALOGUE}
"""Every entity by name."""

_BY_KEY: dict[str, Entity] = {e.name.lower(): e for e in CATALOGUE} | {
    e.json_key.lower(): e for e in CATALOGUE
}


TYPE_ALIASES: dict[str, str] = {
    "BillPaymentCheck": "BillPayment",
    "BillPaymentCreditCard": "BillPayment",
    "CreditCardPaymentTxn": "CreditCardPayment",
    "Check": "Purchase",
    "Expense": "Purchase",
    "CashPurchase": "Purchase",
    "CreditCardCredit": "Purchase",
    "CreditCardCharge": "Purchase",
}
"""Type names QBO writes in ``LinkedTxn.TxnType`` and ``EntityRef.type`` for catalogue entities."""


def canonical_type(type_name: str) -> str:
    """The catalogue name for a type named in the data (``BillPaymentCheck`` -> ``BillPayment``)."""
    return TYPE_ALIASES.get(type_name, type_name)


class UnknownEntityError(UsageError, KeyError):
    """Raised for a name that is not a QBO entity in the catalogue (exit code 2)."""

    def __str__(self) -> str:
        """Name the entity and list the known ones."""
        return f"unknown QBO entity {self.args[0]!r}; known: {', '.join(ENTITIES)}"


def get(name: str) -> Entity:
    """Look an entity up by name, JSON key or resource, case-insensitively.

    Args:
        name: ``Invoice``, ``invoice``, ``CreditCardPaymentTxn`` and so on.

    Returns:
        The catalogue entry.

    Raises:
        UnknownEntityError: If no entity has that name.
    """
    try:
        return _BY_KEY[name.lower()]
    except KeyError:
        raise UnknownEntityError(name) from None


def of_kind(*kinds: Kind) -> tuple[Entity, ...]:
    """The entities of the given kinds, in catalogue order."""
    return tuple(e for e in CATALOGUE if e.kind in kinds)


def queryable() -> tuple[Entity, ...]:
    """Entities read with ``SELECT * FROM`` (everything but the singletons)."""
    return tuple(e for e in CATALOGUE if not e.is_singleton)


def cdc_entities() -> tuple[Entity, ...]:
    """Entities Change Data Capture covers."""
    return tuple(e for e in CATALOGUE if e.cdc)


def dependencies(entity: Entity) -> set[str]:
    """The other entities that must exist before a record of ``entity`` can be created."""
    return {
        target
        for ref in entity.references
        if ref.dependency and not ref.is_self
        for target in ref.targets
        if target != entity.name
    }


@cache
def restore_order() -> tuple[str, ...]:
    """Every entity in an order where each comes after the entities it depends on.

    Derived from the reference fields, so it cannot drift from them. Among the entities that are
    ready at once, singletons come first, then name-lists, transactions and supporting records,
    each in catalogue order, which keeps the order stable and readable.

    Raises:
        ValueError: If the references form a cycle (a catalogue bug).
    """
    kind_rank = {Kind.SINGLETON: 0, Kind.NAME_LIST: 1, Kind.TRANSACTION: 2, Kind.SUPPORTING: 3}
    rank = {e.name: (kind_rank[e.kind], i) for i, e in enumerate(CATALOGUE)}
    try:
        ordered = priority_order({e.name: dependencies(e) for e in CATALOGUE}, rank.__getitem__)
    except graphlib.CycleError as exc:
        raise ValueError(
            f"entity references form a cycle among {sorted(set(exc.args[1]))}"
        ) from None
    return tuple(ordered)


def iter_reference_values(
    entity: Entity, payload: dict[str, Any]
) -> Iterator[tuple[Reference, str, str]]:
    """Yield ``(reference, target entity, target id)`` for every reference in a payload.

    Typed references (``EntityRef.type``, ``LinkedTxn.TxnType``) yield the type named in the
    data, with QBO's aliases mapped to catalogue names (:data:`TYPE_ALIASES`); plain references
    yield their single target (the first one listed).
    """
    for ref in entity.references:
        for obj in _walk(payload, ref.path.split(".")):
            if not isinstance(obj, dict):
                continue
            target_id = obj.get(ref.id_key)
            if target_id in (None, ""):
                continue
            if ref.type_key:
                target = obj.get(ref.type_key)
                if not target:
                    continue
                target = canonical_type(str(target))
            elif ref.targets:
                target = ref.targets[0]
            else:
                continue
            yield ref, str(target), str(target_id)


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        if isinstance(node, list):
            yield from node
        else:
            yield node
        return
    head, rest = parts[0], parts[1:]
    is_array = head.endswith("[]")
    key = head[:-2] if is_array else head
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
        return
    if not isinstance(node, dict) or key not in node:
        return
    child = node[key]
    if is_array and isinstance(child, list):
        for item in child:
            yield from _walk(item, rest)
    else:
        yield from _walk(child, rest)
