"""The sandbox's reports, computed from its own transactions with one set of posting rules.

Every transaction that moves money (catalogue ``posts_to_ledger``) becomes a list of postings
``(account id, signed cents)``, debits positive and credits negative, by exactly one rule below.
Each rule is balanced by construction: the balancing side is the sum of the detail side, which
equals the transaction's total for every consistent payload. The trial balance, the profit and
loss and the balance sheet are sums of these postings, so they balance for any company.

| Transaction   | Debit                                   | Credit                                |
|---------------|-----------------------------------------|---------------------------------------|
| Invoice       | A/R (ARAccountRef, else the A/R         | item lines: ItemAccountRef, else the  |
|               | account): total; discount lines:        | item's IncomeAccountRef; tax lines:   |
|               | DiscountAccountRef; inventory lines:    | the liability of the rate's agency;   |
|               | the item's COGS, Qty x PurchaseCost     | inventory: the item's asset account   |
| SalesReceipt  | DepositToAccountRef (Undeposited Funds) | as Invoice                            |
| CreditMemo    | mirror of Invoice: income, tax, asset   | A/R: total                            |
| RefundReceipt | mirror of Invoice: income, tax, asset   | DepositToAccountRef: total            |
| Payment       | DepositToAccountRef (Undeposited Funds) | ARAccountRef (else A/R): TotalAmt     |
| Deposit       | DepositToAccountRef: lines - cash back; | lines linked to a Payment or Sales-   |
|               | CashBack.AccountRef: cash back          | Receipt: Undeposited Funds; others:   |
|               |                                         | DepositLineDetail.AccountRef          |
| Bill          | account lines: AccountRef; item lines:  | APAccountRef (else A/P): total        |
|               | the item's asset (inventory) or expense |                                       |
| VendorCredit  | APAccountRef (else A/P): total          | the lines, as Bill                    |
| Purchase      | the lines, as Bill (``Credit: true``    | AccountRef (bank or card): total      |
|               | swaps the sides)                        |                                       |
| BillPayment   | APAccountRef (else A/P): TotalAmt       | CheckPayment.BankAccountRef or        |
|               |                                         | CreditCardPayment.CCAccountRef        |
| JournalEntry  | lines with PostingType Debit            | lines with PostingType Credit         |
| Transfer      | ToAccountRef: Amount                    | FromAccountRef: Amount                |
| CreditCard-   | CreditCardAccountRef: Amount            | BankAccountRef: Amount                |
| Payment       |                                         |                                       |
| Inventory-    | each item's asset account: QtyDiff x    | AdjustAccountRef (the sides swap when |
| Adjustment    | PurchaseCost                            | QtyDiff is negative)                  |
| TaxPayment    | the sales tax liability: PaymentAmount  | PaymentAccountRef (``Refund`` swaps)  |

Estimates, purchase orders, time activities and reimburse charges post nothing. A voided
transaction has zero amounts and so posts nothing.

Reports follow QBO's JSON shape (``Header`` / ``Columns`` / ``Rows``, amounts as strings with two
decimals) and honour ``start_date``, ``end_date`` and ``date_macro`` against the realm's virtual
clock. Balance-sheet accounts accumulate from the beginning of the books; income and expense
accounts cover the period, and everything they earned before it sits in Retained Earnings.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.sandbox.clock import COMPANY_TZ, qbo_time
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.store import SandboxStore

REPORT_NAMES = ("TrialBalance", "ProfitAndLoss", "BalanceSheet")
"""The reports the sandbox computes."""

Posting = tuple[str, int]
"""``(account id, cents)``: debits positive, credits negative."""

BALANCE_SHEET_CLASSES = frozenset({"Asset", "Liability", "Equity"})
"""Account classifications that accumulate from the beginning of the books."""


# --- the chart the rules need ---------------------------------------------------------------


@dataclass(frozen=True)
class AccountFacts:
    """What a report needs to know about one account."""

    id: str
    name: str
    full_name: str
    account_type: str
    sub_type: str
    classification: str
    parent: str | None = None


@dataclass(frozen=True)
class ItemFacts:
    """What the posting rules need to know about one item."""

    type: str
    cost_cents: int
    income: str | None
    expense: str | None
    asset: str | None


@dataclass
class Chart:
    """The accounts, items and tax rates the posting rules resolve references with."""

    accounts: dict[str, AccountFacts] = field(default_factory=dict)
    items: dict[str, ItemFacts] = field(default_factory=dict)
    tax_rate_accounts: dict[str, str] = field(default_factory=dict)
    sales_tax: str | None = None

    def _first(self, test: Callable[[AccountFacts], bool]) -> str | None:
        return next((a.id for a in self.accounts.values() if test(a)), None)

    @property
    def receivable(self) -> str:
        """The Accounts Receivable account."""
        return self._first(lambda a: a.account_type == "Accounts Receivable") or "A/R"

    @property
    def payable(self) -> str:
        """The Accounts Payable account."""
        return self._first(lambda a: a.account_type == "Accounts Payable") or "A/P"

    @property
    def undeposited(self) -> str:
        """Undeposited Funds, where received payments wait for a deposit."""
        return self._first(lambda a: a.sub_type == "UndepositedFunds") or "Undeposited Funds"

    @property
    def retained_earnings(self) -> str:
        """Retained Earnings, where earlier periods' income lands."""
        return self._first(lambda a: a.sub_type == "RetainedEarnings") or "Retained Earnings"

    @property
    def tax_liability(self) -> str:
        """The sales tax liability a tax payment pays down."""
        return (
            self.sales_tax
            or self._first(lambda a: a.sub_type in ("GlobalTaxPayable", "SalesTaxPayable"))
            or "Sales Tax Payable"
        )

    @classmethod
    def from_records(
        cls,
        accounts: Iterable[Mapping[str, Any]],
        items: Iterable[Mapping[str, Any]] = (),
        tax_rates: Iterable[Mapping[str, Any]] = (),
        tax_agencies: Iterable[Mapping[str, Any]] = (),
        tax_codes: Iterable[Mapping[str, Any]] = (),
        *,
        default_tax_code: str | None = None,
    ) -> Chart:
        """Build the chart from QBO payloads of accounts, items and the tax lists.

        The sales tax liability a tax payment pays down is the one of the agency behind the
        company's default tax code (``Preferences.TaxPrefs.TaxGroupCodeRef``), else the agency
        with the lowest id.
        """
        chart = cls()
        for acc in accounts:
            full = str(acc.get("FullyQualifiedName") or acc.get("Name") or acc["Id"])
            chart.accounts[str(acc["Id"])] = AccountFacts(
                id=str(acc["Id"]),
                name=str(acc.get("Name") or full),
                full_name=full,
                account_type=str(acc.get("AccountType") or ""),
                sub_type=str(acc.get("AccountSubType") or ""),
                classification=str(acc.get("Classification") or ""),
                parent=_ref(acc, "ParentRef"),
            )
        for item in items:
            chart.items[str(item["Id"])] = ItemFacts(
                type=str(item.get("Type") or ""),
                cost_cents=cents(item.get("PurchaseCost")),
                income=_ref(item, "IncomeAccountRef"),
                expense=_ref(item, "ExpenseAccountRef"),
                asset=_ref(item, "AssetAccountRef"),
            )
        by_name = {a.name.casefold(): a.id for a in chart.accounts.values()}
        agency_accounts: dict[str, str] = {}
        for agency in tax_agencies:
            account = by_name.get(f"{agency.get('DisplayName', '')} Payable".casefold())
            if account:
                agency_accounts[str(agency["Id"])] = account
        rate_agency: dict[str, str] = {}
        for rate in tax_rates:
            agency_id = _ref(rate, "AgencyRef") or ""
            rate_agency[str(rate["Id"])] = agency_id
            account = agency_accounts.get(agency_id)
            if account:
                chart.tax_rate_accounts[str(rate["Id"])] = account
        default_agency = None
        for code in tax_codes:
            if str(code.get("Id")) == default_tax_code:
                details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or ()
                rates = [_ref(d, "TaxRateRef") for d in details if isinstance(d, Mapping)]
                default_agency = next((rate_agency.get(r) for r in rates if r), None)
        if default_agency in agency_accounts:
            chart.sales_tax = agency_accounts[default_agency]
        elif agency_accounts:
            chart.sales_tax = agency_accounts[min(agency_accounts, key=_id_order)]
        return chart

    @classmethod
    def from_store(cls, store: SandboxStore, realm_id: str) -> Chart:
        """Build the chart from a realm's accounts, items, tax lists and preferences."""
        preferences = store.get(realm_id, "Preferences", "1") or {}
        return cls.from_records(
            store.iter_records(realm_id, "Account"),
            store.iter_records(realm_id, "Item"),
            store.iter_records(realm_id, "TaxRate"),
            store.iter_records(realm_id, "TaxAgency"),
            store.iter_records(realm_id, "TaxCode"),
            default_tax_code=_ref(preferences.get("TaxPrefs"), "TaxGroupCodeRef"),
        )


# --- the posting rules ------------------------------------------------------------------------


def cents(value: object) -> int:
    """A QBO amount (number or numeric string) in integer cents; anything else is 0."""
    if isinstance(value, bool) or value is None:
        return 0
    try:
        return round(float(value) * 100)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _ref(obj: Mapping[str, Any] | None, key: str) -> str | None:
    if not isinstance(obj, Mapping):
        return None
    ref = obj.get(key)
    if isinstance(ref, Mapping) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


def _lines(txn: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The transaction's lines, group lines flattened into their components."""
    for line in txn.get("Line") or ():
        if not isinstance(line, Mapping):
            continue
        group = line.get("GroupLineDetail")
        if isinstance(group, Mapping):
            yield from (g for g in group.get("Line") or () if isinstance(g, Mapping))
        else:
            yield line


def _sales(txn: Mapping[str, Any], chart: Chart, balancing: str, sign: int) -> list[Posting]:
    """Invoice-like postings; ``sign`` 1 credits income (sale), -1 debits it (refund)."""
    out: list[Posting] = []
    total = 0
    for line in _lines(txn):
        amount = cents(line.get("Amount"))
        detail = line.get("SalesItemLineDetail")
        if isinstance(detail, Mapping):
            item = chart.items.get(_ref(detail, "ItemRef") or "")
            account = _ref(detail, "ItemAccountRef") or (item.income if item else None)
            out.append((account or "Uncategorized Income", -sign * amount))
            total += amount
            if item and item.type == "Inventory" and item.expense and item.asset:
                cost = round(float(detail.get("Qty") or 0) * item.cost_cents)
                if cost:
                    out.append((item.expense, sign * cost))
                    out.append((item.asset, -sign * cost))
            continue
        discount = line.get("DiscountLineDetail")
        if isinstance(discount, Mapping):
            account = _ref(discount, "DiscountAccountRef") or "Discounts given"
            out.append((account, sign * amount))
            total -= amount
    tax_detail = txn.get("TxnTaxDetail") or {}
    total_tax = cents(tax_detail.get("TotalTax"))
    posted_tax = 0
    for tax_line in tax_detail.get("TaxLine") or ():
        detail = tax_line.get("TaxLineDetail") if isinstance(tax_line, Mapping) else None
        amount = cents(tax_line.get("Amount")) if isinstance(tax_line, Mapping) else 0
        if not amount:
            continue
        rate = _ref(detail, "TaxRateRef") or ""
        out.append((chart.tax_rate_accounts.get(rate, chart.tax_liability), -sign * amount))
        posted_tax += amount
    if total_tax != posted_tax:
        out.append((chart.tax_liability, -sign * (total_tax - posted_tax)))
    total += total_tax
    out.append((balancing, sign * total))
    return out


def _expenses(txn: Mapping[str, Any], chart: Chart, balancing: str, sign: int) -> list[Posting]:
    """Bill-like postings; ``sign`` 1 debits the lines (purchase), -1 credits them (credit)."""
    out: list[Posting] = []
    total = 0
    for line in _lines(txn):
        amount = cents(line.get("Amount"))
        account_detail = line.get("AccountBasedExpenseLineDetail")
        item_detail = line.get("ItemBasedExpenseLineDetail")
        if isinstance(account_detail, Mapping):
            account = _ref(account_detail, "AccountRef") or "Uncategorized Expense"
        elif isinstance(item_detail, Mapping):
            item = chart.items.get(_ref(item_detail, "ItemRef") or "")
            if item and item.type == "Inventory" and item.asset:
                account = item.asset
            else:
                account = (item.expense if item else None) or "Uncategorized Expense"
        else:
            continue
        out.append((account, sign * amount))
        total += amount
    out.append((balancing, -sign * total))
    return out


def _invoice(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _sales(txn, chart, _ref(txn, "ARAccountRef") or chart.receivable, 1)


def _sales_receipt(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _sales(txn, chart, _ref(txn, "DepositToAccountRef") or chart.undeposited, 1)


def _credit_memo(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _sales(txn, chart, _ref(txn, "ARAccountRef") or chart.receivable, -1)


def _refund_receipt(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _sales(txn, chart, _ref(txn, "DepositToAccountRef") or chart.undeposited, -1)


def _payment(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    amount = cents(txn.get("TotalAmt"))
    deposit = _ref(txn, "DepositToAccountRef") or chart.undeposited
    return [(deposit, amount), (_ref(txn, "ARAccountRef") or chart.receivable, -amount)]


def _deposit(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    out: list[Posting] = []
    total = 0
    for line in _lines(txn):
        amount = cents(line.get("Amount"))
        linked = line.get("LinkedTxn") or ()
        detail = line.get("DepositLineDetail") or {}
        account = None if linked else _ref(detail, "AccountRef")
        out.append((account or chart.undeposited, -amount))
        total += amount
    cash_back = txn.get("CashBack")
    if isinstance(cash_back, Mapping):
        back = cents(cash_back.get("Amount"))
        if back:
            out.append((_ref(cash_back, "AccountRef") or chart.undeposited, back))
            total -= back
    out.append((_ref(txn, "DepositToAccountRef") or chart.undeposited, total))
    return out


def _bill(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _expenses(txn, chart, _ref(txn, "APAccountRef") or chart.payable, 1)


def _vendor_credit(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    return _expenses(txn, chart, _ref(txn, "APAccountRef") or chart.payable, -1)


def _purchase(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    sign = -1 if txn.get("Credit") is True else 1
    return _expenses(txn, chart, _ref(txn, "AccountRef") or "Uncategorized Asset", sign)


def _bill_payment(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    amount = cents(txn.get("TotalAmt"))
    source = _ref(txn.get("CheckPayment"), "BankAccountRef") or _ref(
        txn.get("CreditCardPayment"), "CCAccountRef"
    )
    return [(_ref(txn, "APAccountRef") or chart.payable, amount), (source or "Checking", -amount)]


def _journal_entry(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    out: list[Posting] = []
    for line in _lines(txn):
        detail = line.get("JournalEntryLineDetail")
        if not isinstance(detail, Mapping):
            continue
        amount = cents(line.get("Amount"))
        account = _ref(detail, "AccountRef") or "Uncategorized Asset"
        if detail.get("PostingType") == "Debit":
            out.append((account, amount))
        elif detail.get("PostingType") == "Credit":
            out.append((account, -amount))
    return out


def _transfer(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    amount = cents(txn.get("Amount"))
    return [
        (_ref(txn, "ToAccountRef") or "Uncategorized Asset", amount),
        (_ref(txn, "FromAccountRef") or "Uncategorized Asset", -amount),
    ]


def _credit_card_payment(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    amount = cents(txn.get("Amount"))
    return [
        (_ref(txn, "CreditCardAccountRef") or "Credit Card", amount),
        (_ref(txn, "BankAccountRef") or "Checking", -amount),
    ]


def _inventory_adjustment(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    out: list[Posting] = []
    total = 0
    for line in _lines(txn):
        detail = line.get("ItemAdjustmentLineDetail")
        if not isinstance(detail, Mapping):
            continue
        item = chart.items.get(_ref(detail, "ItemRef") or "")
        if item is None or not item.asset:
            continue
        value = round(float(detail.get("QtyDiff") or 0) * item.cost_cents)
        out.append((item.asset, value))
        total += value
    out.append((_ref(txn, "AdjustAccountRef") or "Inventory Shrinkage", -total))
    return out


def _tax_payment(txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    amount = cents(txn.get("PaymentAmount"))
    if txn.get("Refund") is True:
        amount = -amount
    return [
        (chart.tax_liability, amount),
        (_ref(txn, "PaymentAccountRef") or "Checking", -amount),
    ]


POSTING_RULES: dict[str, Callable[[Mapping[str, Any], Chart], list[Posting]]] = {
    "Invoice": _invoice,
    "SalesReceipt": _sales_receipt,
    "CreditMemo": _credit_memo,
    "RefundReceipt": _refund_receipt,
    "Payment": _payment,
    "Deposit": _deposit,
    "Bill": _bill,
    "VendorCredit": _vendor_credit,
    "Purchase": _purchase,
    "BillPayment": _bill_payment,
    "JournalEntry": _journal_entry,
    "Transfer": _transfer,
    "CreditCardPayment": _credit_card_payment,
    "InventoryAdjustment": _inventory_adjustment,
    "TaxPayment": _tax_payment,
}
"""One rule per entity the catalogue marks ``posts_to_ledger``."""


def postings(entity: str, txn: Mapping[str, Any], chart: Chart) -> list[Posting]:
    """The postings of one transaction (empty for entities that post nothing).

    Zero postings are dropped; the result always sums to zero.
    """
    rule = POSTING_RULES.get(entities.get(entity).name)
    if rule is None:
        return []
    return [(account, amount) for account, amount in rule(txn, chart) if amount]


def posting_date(txn: Mapping[str, Any]) -> str:
    """The ISO date a transaction posts on (TxnDate; PaymentDate for tax payments)."""
    return str(txn.get("TxnDate") or txn.get("PaymentDate") or "")


# --- periods --------------------------------------------------------------------------------


_MACROS = (
    "today",
    "yesterday",
    "this week",
    "this week-to-date",
    "last week",
    "last week-to-date",
    "next week",
    "next 4 weeks",
    "this month",
    "this month-to-date",
    "last month",
    "last month-to-date",
    "next month",
    "this fiscal quarter",
    "this fiscal quarter-to-date",
    "last fiscal quarter",
    "last fiscal quarter-to-date",
    "next fiscal quarter",
    "this fiscal year",
    "this fiscal year-to-date",
    "last fiscal year",
    "last fiscal year-to-date",
    "next fiscal year",
    "this calendar year",
    "this calendar year-to-date",
    "last calendar year",
    "this year",
    "this year-to-date",
    "last year",
    "last year-to-date",
    "all",
)


def _bad_param(detail: str, element: str) -> SandboxFault:
    return SandboxFault(400, "2010", "Request has invalid or unsupported property", detail, element)


def _parse_date(text: str, element: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _bad_param(
            f"{element} {text!r} is not a date in yyyy-MM-dd format.", element
        ) from None


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _same_day_in(month_start: date, day: int) -> date:
    return month_start.replace(day=min(day, _month_end(month_start).day))


def macro_period(macro: str, today: date, *, first_day: date | None = None) -> tuple[date, date]:
    """The ``(start, end)`` dates of a QBO date macro (fiscal year starting in January).

    Raises:
        SandboxFault: If the macro is not one the sandbox knows.
    """
    key = " ".join(macro.strip().casefold().split())
    to_date = key.endswith("-to-date")
    base = key.removesuffix("-to-date")
    month_start = today.replace(day=1)
    quarter_start = _quarter_start(today)
    week_start = today - timedelta(days=today.weekday())
    if key == "today":
        return today, today
    if key == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if key == "next 4 weeks":
        return today, today + timedelta(days=27)
    if key == "all":
        return first_day or date(1900, 1, 1), today
    spans: dict[str, tuple[date, date, date]] = {
        # base: (start, end, the day in it that corresponds to today)
        "this week": (week_start, week_start + timedelta(days=6), today),
        "last week": (
            week_start - timedelta(days=7),
            week_start - timedelta(days=1),
            today - timedelta(days=7),
        ),
        "next week": (week_start + timedelta(days=7), week_start + timedelta(days=13), today),
        "this month": (month_start, _month_end(today), today),
        "last month": (
            _add_months(today, -1),
            month_start - timedelta(days=1),
            _same_day_in(_add_months(today, -1), today.day),
        ),
        "next month": (_add_months(today, 1), _month_end(_add_months(today, 1)), today),
        "this fiscal quarter": (
            quarter_start,
            _month_end(_add_months(quarter_start, 2)),
            today,
        ),
        "last fiscal quarter": (
            _add_months(quarter_start, -3),
            quarter_start - timedelta(days=1),
            _same_day_in(_add_months(today, -3), today.day),
        ),
        "next fiscal quarter": (
            _add_months(quarter_start, 3),
            _month_end(_add_months(quarter_start, 5)),
            today,
        ),
        "this fiscal year": (date(today.year, 1, 1), date(today.year, 12, 31), today),
        "last fiscal year": (
            date(today.year - 1, 1, 1),
            date(today.year - 1, 12, 31),
            _same_day_in(date(today.year - 1, today.month, 1), today.day),
        ),
        "next fiscal year": (date(today.year + 1, 1, 1), date(today.year + 1, 12, 31), today),
    }
    for alias in ("this", "last"):
        spans[f"{alias} calendar year"] = spans[f"{alias} fiscal year"]
        spans[f"{alias} year"] = spans[f"{alias} fiscal year"]
    if base in spans and (not to_date or not base.startswith("next")):
        start, end, same_day = spans[base]
        return start, same_day if to_date else end
    raise _bad_param(
        f"date_macro {macro!r} is not supported; use one of: {', '.join(_MACROS)}.", "date_macro"
    )


def report_period(params: Mapping[str, str], today: date) -> tuple[date, date, str | None]:
    """The period a report covers: explicit dates win over ``date_macro``.

    The default is this fiscal year to date, as QBO's.

    Raises:
        SandboxFault: For a malformed date, an unknown macro or a start after the end.
    """
    macro = params.get("date_macro")
    start, end = macro_period(macro or "this fiscal year-to-date", today)
    if params.get("start_date"):
        start = _parse_date(params["start_date"], "start_date")
    if params.get("end_date"):
        end = _parse_date(params["end_date"], "end_date")
        if not params.get("start_date") and not macro:
            start = date(end.year, 1, 1)
    if start > end:
        raise _bad_param(
            f"start_date {start.isoformat()} is after end_date {end.isoformat()}.", "start_date"
        )
    return start, end, macro


# --- report parameters ----------------------------------------------------------------------

PERIOD_COLUMNS = ("Days", "Week", "Month", "Quarter", "Year")
"""``summarize_column_by`` values that split the period into columns."""

PARTY_COLUMNS = {
    "Customers": "Customer",
    "Vendors": "Vendor",
    "Classes": "Class",
    "Departments": "Department",
}
"""``summarize_column_by`` values that give one column per customer, vendor, class or department."""

_QBO_ONLY_COLUMNS = ("Employees", "ProductsAndServices")
"""Valid in QBO, not computed by the sandbox (a transaction's postings are not split by line)."""

FILTERS = {"customer": "Customer", "vendor": "Vendor", "class": "Class", "department": "Department"}
"""Report filters (comma-separated ids) and the entity they name; the header echoes them."""

MAX_COLUMNS = 400
"""The most columns a report may have (Days over years would be unreadable anyway)."""


@dataclass(frozen=True)
class ReportOptions:
    """The parameters of one report request, validated."""

    start: date
    end: date
    macro: str | None
    method: str = "Accrual"
    summarize: str = "Total"
    filters: dict[str, frozenset[str]] = field(default_factory=dict)


def _choice(params: Mapping[str, str], name: str, allowed: Iterable[str], default: str) -> str:
    given = params.get(name)
    if given is None or not given.strip():
        return default
    for value in allowed:
        if value.casefold() == given.strip().casefold():
            return value
    raise _bad_param(f"{name} {given!r} is not valid; use one of: {', '.join(allowed)}.", name)


def report_options(name: str, params: Mapping[str, str], today: date) -> ReportOptions:
    """Validate a report's query parameters.

    Raises:
        SandboxFault: 2010 naming the parameter for a value QBO would refuse, or one the
            sandbox does not compute.
    """
    start, end, macro = report_period(params, today)
    method = _choice(params, "accounting_method", ("Accrual", "Cash"), "Accrual")
    kinds = ("Total",) if name == "TrialBalance" else ("Total", *PERIOD_COLUMNS, *PARTY_COLUMNS)
    valid = ("Total", *PERIOD_COLUMNS, *PARTY_COLUMNS, *_QBO_ONLY_COLUMNS)
    summarize = _choice(params, "summarize_column_by", valid, "Total")
    if summarize not in kinds:
        raise _bad_param(
            f"summarize_column_by {summarize!r} is not computed by the sandbox for {name}; "
            f"use one of: {', '.join(kinds)}.",
            "summarize_column_by",
        )
    filters: dict[str, frozenset[str]] = {}
    if name != "TrialBalance":
        for param in FILTERS:
            text = params.get(param)
            if text is None:
                continue
            ids = [part.strip() for part in text.split(",")]
            if not ids or not all(part.isascii() and part.isdigit() for part in ids):
                raise _bad_param(
                    f"{param} {text!r} is not valid; give {FILTERS[param]} ids separated by "
                    "commas, such as 1,2.",
                    param,
                )
            filters[param] = frozenset(ids)
    return ReportOptions(start, end, macro, method, summarize, filters)


# --- the ledger -----------------------------------------------------------------------------


@dataclass
class Ledger:
    """Account sums of one realm for a period: activity before it and within it."""

    chart: Chart
    start: date
    end: date
    before: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    within: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, entity: str, txn: Mapping[str, Any]) -> None:
        """Post one transaction into the sums (ignored when it falls after the period)."""
        self.add_postings(posting_date(txn), postings(entity, txn, self.chart))

    def add_postings(self, when: str, rows: Iterable[Posting]) -> None:
        """Post ``rows`` dated ``when`` (ISO) into the sums (ignored after the period)."""
        if not when or when > self.end.isoformat():
            return
        bucket = self.before if when < self.start.isoformat() else self.within
        for account, amount in rows:
            bucket[account] += amount

    def classification(self, account: str) -> str:
        """The account's classification ("" when the chart does not know it)."""
        facts = self.chart.accounts.get(account)
        return facts.classification if facts else ""

    def balance(self, account: str) -> int:
        """Debit-positive balance: cumulative for balance-sheet accounts, period otherwise."""
        if self.classification(account) in BALANCE_SHEET_CLASSES:
            return self.before.get(account, 0) + self.within.get(account, 0)
        return self.within.get(account, 0)

    def earlier_income(self) -> int:
        """Debit-positive sum of income and expense before the period (into Retained Earnings)."""
        return sum(
            amount
            for account, amount in self.before.items()
            if self.classification(account) not in BALANCE_SHEET_CLASSES
        )

    def balances(self) -> dict[str, int]:
        """Every account's debit-positive balance, earlier income moved into Retained Earnings."""
        accounts = set(self.before) | set(self.within)
        out = {account: self.balance(account) for account in accounts}
        earlier = self.earlier_income()
        if earlier:
            re_account = self.chart.retained_earnings
            out[re_account] = out.get(re_account, 0) + earlier
        return {account: amount for account, amount in out.items() if amount}


def posting_entities() -> tuple[str, ...]:
    """The catalogue entities that move money, in catalogue order."""
    return tuple(e.name for e in entities.CATALOGUE if e.posts_to_ledger)


_CASH_DEFERRED = {"Invoice": ("Payment", "receivable"), "Bill": ("BillPayment", "payable")}
"""Cash basis: these count when, and as far as, the payment entity pays them."""


def party_of(kind: str, txn: Mapping[str, Any]) -> str:
    """The id of the transaction's customer, vendor, class or department ("" if none).

    Customers and vendors come from ``CustomerRef``/``VendorRef`` or a typed ``EntityRef``;
    classes from ``ClassRef`` on the transaction, else on its first line that has one;
    departments from ``DepartmentRef``.
    """
    if kind in ("Customer", "Vendor"):
        found = _ref(txn, f"{kind}Ref")
        if found:
            return found
        entity = txn.get("EntityRef")
        if isinstance(entity, Mapping) and str(entity.get("type", "")) == kind:
            return str(entity.get("value") or "")
        return ""
    if kind == "Class":
        found = _ref(txn, "ClassRef")
        if found:
            return found
        for line in _lines(txn):
            for detail in line.values():
                if isinstance(detail, Mapping) and _ref(detail, "ClassRef"):
                    return str(_ref(detail, "ClassRef"))
        return ""
    return _ref(txn, "DepartmentRef") or ""


def _cash_applications(
    store: SandboxStore, realm_id: str
) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """``(document entity, id) -> [(payment date, cents applied)]`` from payments' lines."""
    applied: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for document, (payer, _) in _CASH_DEFERRED.items():
        for payment in store.iter_records(realm_id, payer):
            when = posting_date(payment)
            for line in _lines(payment):
                for link in line.get("LinkedTxn") or ():
                    if isinstance(link, Mapping) and link.get("TxnType") == document:
                        applied[(document, str(link.get("TxnId")))].append(
                            (when, cents(line.get("Amount")))
                        )
    return applied


def _cash_postings(rows: list[Posting], control: str, total: int, paid: int) -> list[Posting]:
    """A document's postings scaled to the share ``paid`` of ``total``, balanced on ``control``."""
    if not total:
        return []
    scaled = [(a, round(v * paid / total)) for a, v in rows if a != control]
    return [*scaled, (control, -sum(v for _, v in scaled))]


@dataclass
class _Grouped:
    """Ledgers of one report: fixed columns, plus one per party when grouping by party."""

    fixed: list[Ledger]
    parties: dict[str, Ledger] = field(default_factory=dict)


def compute_ledgers(
    store: SandboxStore,
    realm_id: str,
    spans: list[tuple[date, date]],
    options: ReportOptions,
) -> _Grouped:
    """Stream the realm's postings once into one ledger per span (and per party).

    Transactions outside the filters are left out. On the cash basis an invoice or bill posts
    only the share its payments paid, on the payments' dates; other transactions post as on
    the accrual basis.
    """
    chart = Chart.from_store(store, realm_id)
    grouped = _Grouped([Ledger(chart, start, end) for start, end in spans])
    party_kind = PARTY_COLUMNS.get(options.summarize)
    start, end = spans[-1]
    for _, txn, when, rows in iter_postings(store, realm_id, chart, options):
        for ledger in grouped.fixed:
            ledger.add_postings(when, rows)
        if party_kind is not None:
            key = party_of(party_kind, txn)
            party = grouped.parties.get(key)
            if party is None:
                party = grouped.parties[key] = Ledger(chart, start, end)
            party.add_postings(when, rows)
    return grouped


def passes_filters(txn: Mapping[str, Any], filters: Mapping[str, frozenset[str]]) -> bool:
    """Whether the transaction's customer, vendor, class and department pass the filters."""
    return all(party_of(FILTERS[param], txn) in ids for param, ids in filters.items())


def iter_postings(
    store: SandboxStore, realm_id: str, chart: Chart, options: ReportOptions
) -> Iterator[tuple[str, Mapping[str, Any], str, list[Posting]]]:
    """``(entity, transaction, ISO date, postings)`` of every transaction the filters pass.

    On the cash basis an invoice or bill yields once per payment, with the share it paid on
    the payment's date (and not at all while unpaid).
    """
    cash = options.method == "Cash"
    applications = _cash_applications(store, realm_id) if cash else {}
    for entity in posting_entities():
        for txn in store.iter_records(realm_id, entity):
            if not passes_filters(txn, options.filters):
                continue
            rows = postings(entity, txn, chart)
            if cash and entity in _CASH_DEFERRED:
                control = getattr(chart, _CASH_DEFERRED[entity][1])
                total = sum(v for a, v in rows if a == control)
                for when, paid in applications.get((entity, str(txn.get("Id"))), ()):
                    yield entity, txn, when, _cash_postings(rows, control, total, paid)
                continue
            yield entity, txn, posting_date(txn), rows


# --- columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One money column: its title, ColKey and extra MetaData."""

    title: str
    key: str
    meta: tuple[tuple[str, str], ...] = ()


def _period_title(kind: str, start: date, end: date) -> str:
    if kind == "Days":
        return f"{start:%b} {start.day}, {start.year}"
    if kind == "Week":
        return f"{start:%b} {start.day} - {end:%b} {end.day}, {end.year}"
    if kind == "Month":
        return f"{start:%b} {start.year}"
    if kind == "Quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return str(start.year)


def period_spans(kind: str, start: date, end: date) -> list[tuple[date, date]]:
    """The period ``[start, end]`` cut into days, weeks, months, quarters or years.

    Weeks start on Monday; the first and last span are clipped to the period.

    Raises:
        SandboxFault: If that makes more than :data:`MAX_COLUMNS` columns.
    """
    spans: list[tuple[date, date]] = []
    cursor = start
    while cursor <= end:
        if kind == "Days":
            stop = cursor
        elif kind == "Week":
            stop = cursor + timedelta(days=6 - cursor.weekday())
        elif kind == "Month":
            stop = _month_end(cursor)
        elif kind == "Quarter":
            stop = _month_end(_add_months(_quarter_start(cursor), 2))
        else:
            stop = date(cursor.year, 12, 31)
        spans.append((cursor, min(stop, end)))
        if len(spans) > MAX_COLUMNS:
            raise _bad_param(
                f"summarize_column_by {kind} gives more than {MAX_COLUMNS} columns for "
                f"{start.isoformat()} to {end.isoformat()}; choose a shorter period.",
                "summarize_column_by",
            )
        cursor = min(stop, end) + timedelta(days=1)
    return spans


def _party_name(store: SandboxStore, realm_id: str, kind: str, party: str) -> str:
    record = store.get(realm_id, kind, party) if party else None
    if not record:
        return "Not Specified" if not party else party
    return str(
        record.get("FullyQualifiedName") or record.get("DisplayName") or record.get("Name") or party
    )


# --- report shapes --------------------------------------------------------------------------

Amounts = tuple[int, ...]
"""One amount per money column."""


def money(amount: int) -> str:
    """Cents as QBO writes report amounts: ``"1234.50"``, ``"-12.00"``."""
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 100)
    return f"{sign}{whole}.{part:02d}"


def _col(value: str, account: str | None = None) -> dict[str, str]:
    return {"value": value, "id": account} if account else {"value": value}


def _sum(vectors: Iterable[Amounts], width: int) -> Amounts:
    out = [0] * width
    for vector in vectors:
        for i, value in enumerate(vector):
            out[i] += value
    return tuple(out)


def _minus(a: Amounts, b: Amounts) -> Amounts:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _header(
    store: SandboxStore, realm_id: str, name: str, options: ReportOptions
) -> dict[str, Any]:
    header: dict[str, Any] = {"Time": qbo_time(store.now(realm_id)), "ReportName": name}
    if options.macro:
        header["DateMacro"] = options.macro.strip().lower()
    header.update(
        {
            "ReportBasis": options.method,
            "StartPeriod": options.start.isoformat(),
            "EndPeriod": options.end.isoformat(),
        }
    )
    if name != "TrialBalance":
        header["SummarizeColumnsBy"] = options.summarize
    header["Currency"] = "USD"
    for param, ids in options.filters.items():
        header[FILTERS[param]] = ",".join(sorted(ids, key=_id_order))
    return header


def _options(header: dict[str, Any], has_data: bool) -> None:
    header["Option"] = [
        {"Name": "AccountingStandard", "Value": "GAAP"},
        {"Name": "NoReportData", "Value": "false" if has_data else "true"},
    ]


def _money_columns(columns: list[Column]) -> dict[str, Any]:
    out = [{"ColTitle": "", "ColType": "Account", "MetaData": [_key("account")]}]
    for column in columns:
        meta = [{"Name": n, "Value": v} for n, v in column.meta] + [_key(column.key)]
        out.append({"ColTitle": column.title, "ColType": "Money", "MetaData": meta})
    return {"Column": out}


def _key(value: str) -> dict[str, str]:
    return {"Name": "ColKey", "Value": value}


def _account_label(chart: Chart, account: str) -> str:
    facts = chart.accounts.get(account)
    return facts.full_name if facts else account


def trial_balance(ledger: Ledger, header: dict[str, Any]) -> dict[str, Any]:
    """The TrialBalance report of a ledger: one row per account with a balance."""
    balances = ledger.balances()
    rows: list[dict[str, Any]] = []
    debit_total = credit_total = 0
    for account in sorted(balances, key=lambda a: _account_sort(ledger.chart, a)):
        amount = balances[account]
        debit, credit = (money(amount), "") if amount > 0 else ("", money(-amount))
        debit_total += max(amount, 0)
        credit_total += max(-amount, 0)
        rows.append(
            {
                "ColData": [
                    _col(_account_label(ledger.chart, account), account),
                    _col(debit),
                    _col(credit),
                ],
                "type": "Data",
            }
        )
    rows.append(
        {
            "Summary": {
                "ColData": [_col("TOTAL"), _col(money(debit_total)), _col(money(credit_total))]
            },
            "type": "Section",
            "group": "GrandTotal",
        }
    )
    _options(header, bool(balances))
    columns = [Column("Debit", "Debit"), Column("Credit", "Credit")]
    return {"Header": header, "Columns": _money_columns(columns), "Rows": {"Row": rows}}


_TYPE_ORDER = (
    "Bank",
    "Accounts Receivable",
    "Other Current Asset",
    "Fixed Asset",
    "Other Asset",
    "Accounts Payable",
    "Credit Card",
    "Other Current Liability",
    "Long Term Liability",
    "Equity",
    "Income",
    "Cost of Goods Sold",
    "Expense",
    "Other Income",
    "Other Expense",
)


def _account_sort(chart: Chart, account: str) -> tuple[int, str, str]:
    facts = chart.accounts.get(account)
    if facts is None:
        return (len(_TYPE_ORDER), account, account)
    rank = _TYPE_ORDER.index(facts.account_type) if facts.account_type in _TYPE_ORDER else 99
    return (rank, facts.full_name.casefold(), account)


class _Tree:
    """Accounts of one report section nested under their parents, as QBO shows sub-accounts."""

    def __init__(
        self, chart: Chart, amounts: Mapping[str, Amounts], members: list[str], width: int
    ) -> None:
        self.chart = chart
        self.amounts = amounts
        self.width = width
        member_set = set(members)
        self.kids: dict[str | None, list[str]] = defaultdict(list)
        for account in members:
            facts = chart.accounts.get(account)
            parent = facts.parent if facts and facts.parent in member_set else None
            self.kids[parent].append(account)
        for siblings in self.kids.values():
            siblings.sort(key=lambda a: _account_sort(chart, a))

    def own(self, account: str) -> Amounts:
        """The account's own amounts (zeros when it has none)."""
        return self.amounts.get(account) or (0,) * self.width

    def total(self, account: str) -> Amounts:
        """The account's amounts with its sub-accounts'."""
        return _sum([self.own(account), *(self.total(k) for k in self.kids[account])], self.width)

    def rows(self, parent: str | None) -> list[dict[str, Any]]:
        """The rows of the accounts under ``parent`` (None: the top level)."""
        out: list[dict[str, Any]] = []
        for account in self.kids[parent]:
            facts = self.chart.accounts.get(account)
            label = facts.name if facts else account
            inner = self.rows(account)
            own = self.own(account)
            if not inner:
                if any(own):
                    out.append(_data_row(label, account, own))
                continue
            if any(own):
                inner = [_data_row(label, account, own), *inner]
            out.append(
                {
                    "Header": {"ColData": [_col(label, account), *(_col("") for _ in own)]},
                    "Rows": {"Row": inner},
                    "Summary": {
                        "ColData": [
                            _col(f"Total {label}"),
                            *(_col(money(v)) for v in self.total(account)),
                        ]
                    },
                    "type": "Section",
                }
            )
        return out


def _data_row(label: str, account: str, amounts: Amounts) -> dict[str, Any]:
    return {
        "ColData": [_col(label, account), *(_col(money(v)) for v in amounts)],
        "type": "Data",
    }


def _section(
    group: str,
    title: str | None,
    summary_title: str,
    total: Amounts,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if title is not None:
        section["Header"] = {"ColData": [_col(title), *(_col("") for _ in total)]}
    if rows is not None:
        section["Rows"] = {"Row": rows}
    section["Summary"] = {"ColData": [_col(summary_title), *(_col(money(v)) for v in total)]}
    section["type"] = "Section"
    section["group"] = group
    return section


def _accounts_of(chart: Chart, types: tuple[str, ...], amounts: Mapping[str, Amounts]) -> list[str]:
    """Accounts of the given types that have an amount, with their ancestors of those types."""
    chosen: dict[str, None] = {}
    for account in amounts:
        facts = chart.accounts.get(account)
        if facts and facts.account_type in types:
            chosen[account] = None
            parent = facts.parent
            while parent and parent in chart.accounts and parent not in chosen:
                if chart.accounts[parent].account_type not in types:
                    break
                chosen[parent] = None
                parent = chart.accounts[parent].parent
    return list(chosen)


def _block(
    chart: Chart,
    group: str,
    title: str,
    types: tuple[str, ...],
    amounts: Mapping[str, Amounts],
    width: int,
) -> tuple[dict[str, Any], Amounts]:
    members = _accounts_of(chart, types, amounts)
    total = _sum((amounts[a] for a in members if a in amounts), width)
    tree = _Tree(chart, amounts, members, width)
    return _section(group, title, f"Total {title}", total, tree.rows(None)), total


def _vectors(ledgers: list[Ledger], value: Callable[[Ledger, str], int]) -> dict[str, Amounts]:
    """Per account, one amount per ledger (accounts whose amounts are all zero left out)."""
    accounts: set[str] = set()
    for ledger in ledgers:
        accounts |= set(ledger.before) | set(ledger.within)
    out = {a: tuple(value(ledger, a) for ledger in ledgers) for a in accounts}
    return {a: v for a, v in out.items() if any(v)}


def profit_and_loss(
    ledgers: list[Ledger], header: dict[str, Any], columns: list[Column]
) -> dict[str, Any]:
    """The ProfitAndLoss report: income, cost of goods sold, expenses and net income.

    ``ledgers`` holds one ledger per money column, in column order.
    """
    chart, width = ledgers[0].chart, len(ledgers)
    debit_normal = _vectors(ledgers, lambda ledger, a: ledger.within.get(a, 0))
    credit_normal = {a: tuple(-x for x in v) for a, v in debit_normal.items()}
    income, income_total = _block(chart, "Income", "Income", ("Income",), credit_normal, width)
    cogs, cogs_total = _block(
        chart, "COGS", "Cost of Goods Sold", ("Cost of Goods Sold",), debit_normal, width
    )
    expenses, expense_total = _block(
        chart, "Expenses", "Expenses", ("Expense",), debit_normal, width
    )
    other_income, other_income_total = _block(
        chart, "OtherIncome", "Other Income", ("Other Income",), credit_normal, width
    )
    other_expenses, other_expense_total = _block(
        chart, "OtherExpenses", "Other Expenses", ("Other Expense",), debit_normal, width
    )
    gross = _minus(income_total, cogs_total)
    operating = _minus(gross, expense_total)
    other = _minus(other_income_total, other_expense_total)
    rows = [
        income,
        cogs,
        _section("GrossProfit", None, "Gross Profit", gross),
        expenses,
        _section("NetOperatingIncome", None, "Net Operating Income", operating),
        other_income,
        other_expenses,
        _section("NetOtherIncome", None, "Net Other Income", other),
        _section("NetIncome", None, "Net Income", _sum([operating, other], width)),
    ]
    _options(header, bool(debit_normal))
    return {"Header": header, "Columns": _money_columns(columns), "Rows": {"Row": rows}}


def _sheet_balances(ledger: Ledger) -> dict[str, int]:
    balances = {a: ledger.balance(a) for a in set(ledger.before) | set(ledger.within)}
    re_account = ledger.chart.retained_earnings
    balances[re_account] = balances.get(re_account, 0) + ledger.earlier_income()
    return balances


def balance_sheet(
    ledgers: list[Ledger], header: dict[str, Any], columns: list[Column]
) -> dict[str, Any]:
    """The BalanceSheet report as of each column's end; net income is the year's to then.

    ``ledgers`` holds one ledger per money column, in column order.
    """
    chart, width = ledgers[0].chart, len(ledgers)
    sheets = [_sheet_balances(ledger) for ledger in ledgers]
    accounts = set().union(*sheets)
    assets = {a: tuple(s.get(a, 0) for s in sheets) for a in accounts}
    assets = {a: v for a, v in assets.items() if any(v)}
    claims = {a: tuple(-x for x in v) for a, v in assets.items()}

    def block(group: str, title: str, kind: str, amounts: dict[str, Amounts]) -> Any:
        return _block(chart, group, title, (kind,), amounts, width)

    bank, bank_total = block("BankAccounts", "Bank Accounts", "Bank", assets)
    ar, ar_total = block("AR", "Accounts Receivable", "Accounts Receivable", assets)
    oca, oca_total = block(
        "OtherCurrentAssets", "Other Current Assets", "Other Current Asset", assets
    )
    current = _sum([bank_total, ar_total, oca_total], width)
    fixed, fixed_total = block("FixedAssets", "Fixed Assets", "Fixed Asset", assets)
    other_assets, other_total = block("OtherAssets", "Other Assets", "Other Asset", assets)
    total_assets = _sum([current, fixed_total, other_total], width)
    ap, ap_total = block("AP", "Accounts Payable", "Accounts Payable", claims)
    cards, cards_total = block("CreditCards", "Credit Cards", "Credit Card", claims)
    ocl, ocl_total = block(
        "OtherCurrentLiabilities", "Other Current Liabilities", "Other Current Liability", claims
    )
    current_liab = _sum([ap_total, cards_total, ocl_total], width)
    long_term, long_total = block(
        "LongTermLiabilities", "Long-Term Liabilities", "Long Term Liability", claims
    )
    liabilities = _sum([current_liab, long_total], width)
    equity_members = _accounts_of(chart, ("Equity",), claims)
    equity_rows = _Tree(chart, claims, equity_members, width).rows(None)
    net_income = tuple(
        -sum(
            v
            for a, v in ledger.within.items()
            if ledger.classification(a) not in BALANCE_SHEET_CLASSES
        )
        for ledger in ledgers
    )
    equity_rows.append(
        {"ColData": [_col("Net Income"), *(_col(money(v) if v else "") for v in net_income)]}
    )
    equity_total = _sum([*(claims[a] for a in equity_members if a in claims), net_income], width)
    rows = [
        _section(
            "TotalAssets",
            "ASSETS",
            "TOTAL ASSETS",
            total_assets,
            [
                _section(
                    "CurrentAssets",
                    "Current Assets",
                    "Total Current Assets",
                    current,
                    [bank, ar, oca],
                ),
                fixed,
                other_assets,
            ],
        ),
        _section(
            "TotalLiabilitiesAndEquity",
            "LIABILITIES AND EQUITY",
            "TOTAL LIABILITIES AND EQUITY",
            _sum([liabilities, equity_total], width),
            [
                _section(
                    "Liabilities",
                    "Liabilities",
                    "Total Liabilities",
                    liabilities,
                    [
                        _section(
                            "CurrentLiabilities",
                            "Current Liabilities",
                            "Total Current Liabilities",
                            current_liab,
                            [ap, cards, ocl],
                        ),
                        long_term,
                    ],
                ),
                _section("Equity", "Equity", "Total Equity", equity_total, equity_rows),
            ],
        ),
    ]
    _options(header, bool(assets))
    return {"Header": header, "Columns": _money_columns(columns), "Rows": {"Row": rows}}


def _columns_and_ledgers(
    store: SandboxStore, realm_id: str, name: str, options: ReportOptions
) -> tuple[list[Column], list[Ledger]]:
    """The money columns of a ProfitAndLoss or BalanceSheet and one ledger per column."""
    sheet = name == "BalanceSheet"
    start, end = options.start, options.end

    def span(first: date, last: date) -> tuple[date, date]:
        # A balance sheet's column is its balances as of the column's last day, with the
        # year's income to then (earlier years' in Retained Earnings).
        return (date(last.year, 1, 1), last) if sheet else (first, last)

    total_title = "Total"
    if options.summarize in PERIOD_COLUMNS:
        periods = period_spans(options.summarize, start, end)
        columns = [
            Column(
                _period_title(options.summarize, first, last),
                _period_title(options.summarize, first, last),
                (("StartDate", first.isoformat()), ("EndDate", last.isoformat())),
            )
            for first, last in periods
        ]
        spans = [span(first, last) for first, last in periods]
        if sheet:  # a balance sheet's last column already is its total
            grouped = compute_ledgers(store, realm_id, spans, options)
            return columns, grouped.fixed
        columns.append(Column(total_title, "total"))
        grouped = compute_ledgers(store, realm_id, [*spans, span(start, end)], options)
        return columns, grouped.fixed
    grouped = compute_ledgers(store, realm_id, [span(start, end)], options)
    kind = PARTY_COLUMNS.get(options.summarize)
    if kind is None:
        return [Column(total_title if sheet else "", "total")], grouped.fixed
    ledgers = grouped.parties

    def shows(ledger: Ledger) -> bool:
        if sheet:
            return any(_sheet_balances(ledger).values())
        return any(
            v and ledger.classification(a) not in BALANCE_SHEET_CLASSES
            for a, v in ledger.within.items()
        )

    has_amounts = {key: ledger for key, ledger in ledgers.items() if shows(ledger)}
    named = sorted(
        ((_party_name(store, realm_id, kind, key), key) for key in has_amounts if key),
        key=lambda pair: (pair[0].casefold(), _id_order(pair[1])),
    )
    columns = [Column(label, key) for label, key in named]
    chosen = [has_amounts[key] for _, key in named]
    if "" in has_amounts:
        columns.append(Column("Not Specified", "Not Specified"))
        chosen.append(has_amounts[""])
    columns.append(Column("TOTAL", "total"))
    return columns, [*chosen, *grouped.fixed]


def build_report(
    store: SandboxStore, realm_id: str, name: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """Compute one report of a realm from its transactions, in QBO's report JSON shape.

    Args:
        store: The sandbox store.
        realm_id: The company.
        name: ``TrialBalance``, ``ProfitAndLoss`` or ``BalanceSheet`` (case-insensitive).
        params: Query parameters: ``start_date``, ``end_date`` (yyyy-MM-dd), ``date_macro``
            (relative to the realm's clock), ``accounting_method`` (``Accrual`` or ``Cash``);
            for ProfitAndLoss and BalanceSheet also ``summarize_column_by`` (``Total``,
            ``Days``, ``Week``, ``Month``, ``Quarter``, ``Year``, ``Customers``, ``Vendors``,
            ``Classes``, ``Departments``) and the ``customer``, ``vendor``, ``class`` and
            ``department`` filters (comma-separated ids). Others are ignored, as QBO ignores
            them. ``GeneralLedger`` and ``TransactionList`` are computed by
            :func:`qbo_pipeline.sandbox.report_lists.build_list_report` (``columns``, sorting).

    Raises:
        SandboxFault: 400 for a report the sandbox does not compute or a bad parameter.
    """
    from qbo_pipeline.sandbox.report_lists import LIST_REPORT_NAMES, build_list_report

    listed = {n.casefold(): n for n in LIST_REPORT_NAMES}.get(name.strip().casefold())
    if listed is not None:
        return build_list_report(store, realm_id, listed, params)
    canonical = {n.casefold(): n for n in REPORT_NAMES}.get(name.strip().casefold())
    if canonical is None:
        raise SandboxFault(
            400,
            "2010",
            "Request has invalid or unsupported property",
            f"Report {name!r} is not available in the sandbox; it computes "
            f"{', '.join((*REPORT_NAMES, *LIST_REPORT_NAMES))}.",
            "ReportName",
        )
    today = store.now(realm_id).astimezone(COMPANY_TZ).date()
    options = report_options(canonical, params, today)
    header = _header(store, realm_id, canonical, options)
    if canonical == "TrialBalance":
        grouped = compute_ledgers(store, realm_id, [(options.start, options.end)], options)
        return trial_balance(grouped.fixed[0], header)
    columns, ledgers = _columns_and_ledgers(store, realm_id, canonical, options)
    if canonical == "ProfitAndLoss":
        return profit_and_loss(ledgers, header, columns)
    return balance_sheet(ledgers, header, columns)
