"""The sandbox's list and detail reports: GeneralLedger and TransactionList.

Both are built from the same postings as the summary reports in
:mod:`qbo_pipeline.sandbox.reports`, so a general ledger's accounts end where the trial
balance of the same period (starting on the first day of a fiscal year) puts them.

GeneralLedger: one section per account with a balance or activity (sub-accounts nested in their
parent's section, as the capture shows them, their header without an id), a ``Beginning Balance``
row when the account had one, one row per transaction that posted to it in the period, and a
``Total for <account>`` summary carrying the period's amount (blank when nothing happened).
Amounts are in the account's natural sign (credit-normal accounts, liabilities, equity and
income, positive when credited); balance-sheet accounts begin with everything before the period,
income and expense accounts with the fiscal year to then (earlier years sit in Retained
Earnings).

TransactionList: one row per transaction dated in the period, posting or not (estimates and
purchase orders say ``No`` under ``Posting``), its amount being what it posted to its main
account (A/R for an invoice, the bank for an expense) in that account's natural sign. The list
is the same on either ``accounting_method``.

Columns follow the capture (``ColTitle`` and ``ColType``, the ColKey being the ``ColType``);
``columns=`` picks and orders them, ``sort_by``/``sort_order`` sort the rows (a ledger's running
balance follows the order shown).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.reports import (
    BALANCE_SHEET_CLASSES,
    Chart,
    ReportOptions,
    _account_sort,
    _header,
    _id_order,
    _lines,
    _ref,
    iter_postings,
    money,
    party_of,
    passes_filters,
    posting_entities,
    postings,
    report_options,
)
from qbo_pipeline.sandbox.store import SandboxStore

LIST_REPORT_NAMES = ("GeneralLedger", "TransactionList")
"""The list and detail reports the sandbox computes."""

GENERAL_LEDGER_COLUMNS = {
    "tx_date": "Date",
    "txn_type": "Transaction Type",
    "doc_num": "Num",
    "name": "Name",
    "memo": "Memo/Description",
    "split_acc": "Split",
    "subt_nat_amount": "Amount",
    "rbal_nat_amount": "Balance",
    "account_name": "Account",
    "debt_amt": "Debit",
    "credit_amt": "Credit",
    "cust_name": "Customer",
    "vend_name": "Vendor",
    "emp_name": "Employee",
    "klass_name": "Class",
    "dept_name": "Department",
}
"""GeneralLedger ColKeys the sandbox computes, with QBO's titles."""

GENERAL_LEDGER_DEFAULT = (
    "tx_date",
    "txn_type",
    "doc_num",
    "name",
    "memo",
    "split_acc",
    "subt_nat_amount",
    "rbal_nat_amount",
)
"""QBO's default GeneralLedger columns, in order (the capture's)."""

TRANSACTION_LIST_COLUMNS = {
    "tx_date": "Date",
    "txn_type": "Transaction Type",
    "doc_num": "Num",
    "is_no_post": "Posting",
    "name": "Name",
    "dept_name": "Department",
    "memo": "Memo/Description",
    "account_name": "Account",
    "other_account": "Split",
    "subt_nat_amount": "Amount",
    "due_date": "Due Date",
}
"""TransactionList ColKeys the sandbox computes, with QBO's titles."""

TRANSACTION_LIST_DEFAULT = (
    "tx_date",
    "txn_type",
    "doc_num",
    "is_no_post",
    "name",
    "memo",
    "account_name",
    "other_account",
    "subt_nat_amount",
)
"""QBO's nine default TransactionList columns (``dept_name`` joins them after ``name`` when the
company tracks departments)."""

_QBO_ONLY = {
    "GeneralLedger": (
        "chk_print_state",
        "create_by",
        "create_date",
        "inv_date",
        "is_adj",
        "is_ap_paid",
        "is_ar_paid",
        "is_cleared",
        "item_name",
        "last_mod_by",
        "last_mod_date",
        "quantity",
        "rate",
        "pmt_mthd",
        "tax_code",
        "tax_amount",
        "net_amount",
        "nat_open_bal",
        "currency",
        "exch_rate",
        "subt_nat_home_amount",
        "rbal_nat_home_amount",
    ),
    "TransactionList": (
        "create_by",
        "create_date",
        "cust_msg",
        "inv_date",
        "is_ap_paid",
        "is_ar_paid",
        "is_adj",
        "is_cleared",
        "last_mod_by",
        "last_mod_date",
        "pmt_mthd",
        "printed",
        "sales_cust1",
        "sales_cust2",
        "sales_cust3",
        "term_name",
        "tracking_num",
        "ship_via",
        "olb_status",
        "extra_doc_num",
        "subt_nat_home_amount",
    ),
}
"""Valid ColKeys in QBO that the sandbox does not compute (refused, naming them)."""

NON_POSTING_LISTED = ("Estimate", "PurchaseOrder")
"""Transactions a TransactionList shows although they post nothing."""

TXN_TYPE_LABELS = {
    "Invoice": "Invoice",
    "SalesReceipt": "Sales Receipt",
    "CreditMemo": "Credit Memo",
    "RefundReceipt": "Refund",
    "Payment": "Payment",
    "Deposit": "Deposit",
    "Bill": "Bill",
    "VendorCredit": "Vendor Credit",
    "BillPayment": "Bill Payment (Check)",
    "JournalEntry": "Journal Entry",
    "Transfer": "Transfer",
    "CreditCardPayment": "Credit Card Payment",
    "InventoryAdjustment": "Inventory Qty Adjust",
    "TaxPayment": "Sales Tax Payment",
    "Estimate": "Estimate",
    "PurchaseOrder": "Purchase Order",
}
"""How a report names each transaction type (Purchase and BillPayment depend on the payment)."""

_PURCHASE_LABELS = {"Cash": "Expense", "Check": "Check", "CreditCard": "Credit Card Expense"}

_MONEY_KEYS = frozenset({"subt_nat_amount", "rbal_nat_amount", "debt_amt", "credit_amt"})
_CREDIT_NORMAL = frozenset({"Liability", "Equity", "Revenue"})


def _bad(detail: str, element: str) -> SandboxFault:
    return SandboxFault(400, "2010", "Request has invalid or unsupported property", detail, element)


def txn_type_label(entity: str, txn: Mapping[str, Any]) -> str:
    """The ``Transaction Type`` a report shows for one transaction."""
    if entity == "Purchase":
        if txn.get("Credit") is True:
            return "Credit Card Credit"
        return _PURCHASE_LABELS.get(str(txn.get("PaymentType") or ""), "Expense")
    if entity == "BillPayment" and txn.get("PayType") == "CreditCard":
        return "Bill Payment (Credit Card)"
    return TXN_TYPE_LABELS.get(entity, entity)


# --- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    """The validated parameters of a list report."""

    base: ReportOptions
    columns: tuple[str, ...]
    sort_by: str | None = None
    descending: bool = False
    accounts: frozenset[str] = field(default_factory=frozenset)


def _default_columns(name: str, store: SandboxStore, realm_id: str) -> tuple[str, ...]:
    if name == "GeneralLedger":
        return GENERAL_LEDGER_DEFAULT
    preferences = store.get(realm_id, "Preferences", "1") or {}
    tracks = (preferences.get("AccountingInfoPrefs") or {}).get("TrackDepartments") is True
    if not tracks:
        return TRANSACTION_LIST_DEFAULT
    at = TRANSACTION_LIST_DEFAULT.index("name") + 1
    return (*TRANSACTION_LIST_DEFAULT[:at], "dept_name", *TRANSACTION_LIST_DEFAULT[at:])


def _columns(name: str, text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None or not text.strip():
        return default
    available = GENERAL_LEDGER_COLUMNS if name == "GeneralLedger" else TRANSACTION_LIST_COLUMNS
    chosen: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key in _QBO_ONLY[name]:
            raise _bad(
                f"columns {key!r} is not computed by the sandbox for {name}; use any of: "
                f"{', '.join(available)}.",
                "columns",
            )
        if key not in available:
            raise _bad(
                f"columns {key!r} is not a column of {name}; use any of: {', '.join(available)}.",
                "columns",
            )
        if key not in chosen:
            chosen.append(key)
    if not chosen:
        raise _bad(f"columns {text!r} names no column.", "columns")
    return tuple(chosen)


def list_options(
    name: str, params: Mapping[str, str], store: SandboxStore, realm_id: str, today: date
) -> ListOptions:
    """Validate a list report's parameters (the period defaults to this month to date).

    Raises:
        SandboxFault: 2010 naming the parameter for a value QBO would refuse or the sandbox
            does not compute.
    """
    given = {k: v for k, v in params.items() if k != "summarize_column_by"}
    if not any(given.get(k) for k in ("start_date", "end_date", "date_macro")):
        given["date_macro"] = "This Month-to-date"
    base = report_options(name, given, today)
    columns = _columns(name, params.get("columns"), _default_columns(name, store, realm_id))
    sort_by = (params.get("sort_by") or "").strip().lower() or None
    if sort_by is not None and sort_by not in columns:
        raise _bad(
            f"sort_by {params['sort_by']!r} is not a column of this report; use one of: "
            f"{', '.join(columns)}.",
            "sort_by",
        )
    order = (params.get("sort_order") or "ascend").strip().lower()
    if order not in ("ascend", "descend"):
        raise _bad(
            f"sort_order {params['sort_order']!r} is not valid; use ascend or descend.",
            "sort_order",
        )
    group_by = (params.get("group_by") or "").strip()
    if name == "TransactionList" and group_by and group_by.casefold() != "none":
        raise _bad(
            f"group_by {group_by!r} is not computed by the sandbox for TransactionList; "
            "leave it out or use None.",
            "group_by",
        )
    accounts: frozenset[str] = frozenset()
    if name == "GeneralLedger" and params.get("account") is not None:
        ids = [part.strip() for part in params["account"].split(",")]
        if not all(part.isascii() and part.isdigit() for part in ids):
            raise _bad(
                f"account {params['account']!r} is not valid; give Account ids separated by "
                "commas, such as 35,36.",
                "account",
            )
        accounts = frozenset(ids)
    return ListOptions(base, columns, sort_by, order == "descend", accounts)


# --- cells ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One report row: what one transaction posted to one account (or, listed, in all)."""

    entity: str
    txn: Mapping[str, Any]
    when: str
    account: str
    amount: int
    """Debit-positive cents."""
    others: list[str]


class _Cells:
    """Renders the cells of a row, resolving names once per report."""

    def __init__(self, store: SandboxStore, realm_id: str, chart: Chart) -> None:
        self.store = store
        self.realm_id = realm_id
        self.chart = chart
        self._names: dict[tuple[str, str], str] = {}

    def name_of(self, kind: str, record_id: str) -> str:
        key = (kind, record_id)
        if key not in self._names:
            record = self.store.get(self.realm_id, kind, record_id) or {}
            self._names[key] = str(
                record.get("FullyQualifiedName")
                or record.get("DisplayName")
                or record.get("Name")
                or record_id
            )
        return self._names[key]

    def account_cell(self, account: str, *, full: bool = True) -> dict[str, str]:
        facts = self.chart.accounts.get(account)
        label = (facts.full_name if full else facts.name) if facts else account
        return {"value": label, "id": account if facts else ""}

    def natural(self, account: str, amount: int) -> int:
        facts = self.chart.accounts.get(account)
        return -amount if facts and facts.classification in _CREDIT_NORMAL else amount

    def party(self, txn: Mapping[str, Any], kinds: tuple[str, ...]) -> dict[str, str]:
        for kind in kinds:
            found = _ref(txn, f"{kind}Ref")
            if found:
                return {"value": self.name_of(kind, found), "id": found}
        entity = txn.get("EntityRef")
        if isinstance(entity, Mapping) and entity.get("value"):
            kind = str(entity.get("type") or "")
            if kind in kinds:
                value = str(entity["value"])
                return {"value": str(entity.get("name") or self.name_of(kind, value)), "id": value}
        return {"value": "", "id": ""}

    def memo(self, entry: _Entry) -> str:
        for line in _lines(entry.txn):
            if line.get("Description") and entry.account in _line_accounts(line, self.chart):
                return str(line["Description"])
        return str(entry.txn.get("PrivateNote") or entry.txn.get("Memo") or "")

    def split(self, entry: _Entry) -> dict[str, str]:
        if len(entry.others) == 1:
            return self.account_cell(entry.others[0])
        return {"value": "-Split-" if entry.others else "", "id": ""}

    def cell(self, key: str, entry: _Entry, balance: int) -> dict[str, str]:
        txn = entry.txn
        amount = self.natural(entry.account, entry.amount) if entry.account else entry.amount
        if key == "tx_date":
            return {"value": entry.when}
        if key == "txn_type":
            return {"value": txn_type_label(entry.entity, txn), "id": str(txn.get("Id") or "")}
        if key == "doc_num":
            return {"value": str(txn.get("DocNumber") or "")}
        if key == "name":
            return self.party(txn, ("Customer", "Vendor", "Employee"))
        if key == "memo":
            return {"value": self.memo(entry)}
        if key in ("split_acc", "other_account"):
            return self.split(entry)
        if key == "subt_nat_amount":
            return {"value": money(amount)}
        if key == "rbal_nat_amount":
            return {"value": money(balance)}
        if key == "account_name":
            return self.account_cell(entry.account) if entry.account else {"value": ""}
        if key == "debt_amt":
            return {"value": money(entry.amount) if entry.amount > 0 else ""}
        if key == "credit_amt":
            return {"value": money(-entry.amount) if entry.amount < 0 else ""}
        if key == "cust_name":
            return self.party(txn, ("Customer",))
        if key == "vend_name":
            return self.party(txn, ("Vendor",))
        if key == "emp_name":
            return self.party(txn, ("Employee",))
        if key in ("klass_name", "dept_name"):
            kind = "Class" if key == "klass_name" else "Department"
            found = party_of(kind, txn)
            return {"value": self.name_of(kind, found) if found else "", "id": found}
        if key == "is_no_post":
            return {"value": "No" if entry.entity in NON_POSTING_LISTED else "Yes"}
        if key == "due_date":
            return {"value": str(txn.get("DueDate") or "")}
        raise AssertionError(key)  # pragma: no cover - keys are validated up front


def _line_accounts(line: Mapping[str, Any], chart: Chart) -> set[str]:
    """The accounts a line names directly or through its item."""
    found: set[str] = set()
    for detail in line.values():
        if not isinstance(detail, Mapping):
            continue
        for key in ("AccountRef", "ItemAccountRef", "DiscountAccountRef"):
            ref = _ref(detail, key)
            if ref:
                found.add(ref)
        item = chart.items.get(_ref(detail, "ItemRef") or "")
        if item:
            found.update(a for a in (item.income, item.expense, item.asset) if a)
    return found


def _sort_key(key: str | None, cells: _Cells) -> Callable[[_Entry], tuple[Any, ...]]:
    def default(entry: _Entry) -> tuple[Any, ...]:
        return (entry.when, _id_order(str(entry.txn.get("Id") or "")))

    if key is None or key == "rbal_nat_amount":
        return default

    def by_column(entry: _Entry) -> tuple[Any, ...]:
        value = cells.cell(key, entry, 0)["value"]
        first: Any = float(value or 0) if key in _MONEY_KEYS else value.casefold()
        return (first, *default(entry))

    return by_column


# --- GeneralLedger ----------------------------------------------------------------------------


@dataclass
class _Account:
    begin: int = 0
    entries: list[_Entry] = field(default_factory=list)


def _ledger_accounts(
    store: SandboxStore, realm_id: str, chart: Chart, options: ListOptions
) -> dict[str, _Account]:
    """Beginning balances (debit-positive) and the period's entries, per account."""
    start, end = options.base.start.isoformat(), options.base.end.isoformat()
    year_start = date(options.base.start.year, 1, 1).isoformat()
    accounts: dict[str, _Account] = defaultdict(_Account)
    for entity, txn, when, rows in iter_postings(store, realm_id, chart, options.base):
        if not when or when > end:
            continue
        sums: dict[str, int] = defaultdict(int)
        for account, amount in rows:
            sums[account] += amount
        sums = {a: v for a, v in sums.items() if v}
        for account, amount in sums.items():
            if when >= start:
                others = [a for a in sums if a != account]
                accounts[account].entries.append(_Entry(entity, txn, when, account, amount, others))
                continue
            facts = chart.accounts.get(account)
            sheet = facts is not None and facts.classification in BALANCE_SHEET_CLASSES
            target = account if sheet or when >= year_start else chart.retained_earnings
            accounts[target].begin += amount
    return {a: v for a, v in accounts.items() if v.begin or v.entries}


def general_ledger(
    store: SandboxStore, realm_id: str, options: ListOptions, header: dict[str, Any]
) -> dict[str, Any]:
    """The GeneralLedger report in QBO's shape (see the module docstring)."""
    chart = Chart.from_store(store, realm_id)
    cells = _Cells(store, realm_id, chart)
    accounts = _ledger_accounts(store, realm_id, chart, options)
    if options.accounts:
        accounts = {a: v for a, v in accounts.items() if a in options.accounts}
    shown: set[str] = set(accounts)
    for account in list(accounts):
        parent = chart.accounts[account].parent if account in chart.accounts else None
        while parent and parent in chart.accounts and parent not in shown:
            shown.add(parent)
            parent = chart.accounts[parent].parent
    kids: dict[str | None, list[str]] = defaultdict(list)
    for account in shown:
        parent = chart.accounts[account].parent if account in chart.accounts else None
        kids[parent if parent in shown else None].append(account)
    for siblings in kids.values():
        siblings.sort(key=lambda a: _account_sort(chart, a))
    columns = options.columns
    width = len(columns)
    sort_key = _sort_key(options.sort_by, cells)

    def blank_row(label: str, account: str | None = None) -> list[dict[str, str]]:
        first = {"value": label, "id": account} if account else {"value": label}
        return [first, *({"value": ""} for _ in range(width - 1))]

    def section(account: str, top: bool) -> tuple[dict[str, Any], list[_Entry]]:
        own = accounts.get(account, _Account())
        facts = chart.accounts.get(account)
        label = facts.name if facts else account
        rows: list[dict[str, Any]] = []
        balance = cells.natural(account, own.begin)
        if own.begin:
            begin = blank_row("Beginning Balance")
            if "rbal_nat_amount" in columns and columns.index("rbal_nat_amount"):
                begin[columns.index("rbal_nat_amount")] = {"value": money(balance)}
            rows.append({"ColData": begin, "type": "Data"})
        ordered = sorted(own.entries, key=sort_key, reverse=options.descending)
        for entry in ordered:
            balance += cells.natural(account, entry.amount)
            data = [cells.cell(key, entry, balance) for key in columns]
            rows.append({"ColData": data, "type": "Data"})
        activity = list(ordered)
        for kid in kids[account]:
            kid_section, kid_activity = section(kid, False)
            rows.append(kid_section)
            activity.extend(kid_activity)
        summary = blank_row(f"Total for {label}")
        if activity:
            total = sum(cells.natural(e.account, e.amount) for e in activity)
            debit = sum(e.amount for e in activity if e.amount > 0)
            credit = -sum(e.amount for e in activity if e.amount < 0)
            for index, key in enumerate(columns):
                if index and key == "subt_nat_amount":
                    summary[index] = {"value": money(total)}
                elif index and key == "debt_amt":
                    summary[index] = {"value": money(debit)}
                elif index and key == "credit_amt":
                    summary[index] = {"value": money(credit)}
        built = {
            "Header": {"ColData": blank_row(label, account if top and facts else None)},
            "Rows": {"Row": rows},
            "Summary": {"ColData": summary},
            "type": "Section",
        }
        return built, activity

    rows = [section(account, True)[0] for account in kids[None]]
    header["Option"] = [{"Name": "NoReportData", "Value": "false" if rows else "true"}]
    return {
        "Header": header,
        "Columns": _columns_block("GeneralLedger", columns),
        "Rows": {"Row": rows},
    }


# --- TransactionList --------------------------------------------------------------------------

_MAIN_ACCOUNT: dict[str, Callable[[Mapping[str, Any], Chart], str | None]] = {
    "Invoice": lambda t, c: _ref(t, "ARAccountRef") or c.receivable,
    "CreditMemo": lambda t, c: _ref(t, "ARAccountRef") or c.receivable,
    "SalesReceipt": lambda t, c: _ref(t, "DepositToAccountRef") or c.undeposited,
    "RefundReceipt": lambda t, c: _ref(t, "DepositToAccountRef") or c.undeposited,
    "Payment": lambda t, c: _ref(t, "DepositToAccountRef") or c.undeposited,
    "Deposit": lambda t, c: _ref(t, "DepositToAccountRef"),
    "Bill": lambda t, c: _ref(t, "APAccountRef") or c.payable,
    "VendorCredit": lambda t, c: _ref(t, "APAccountRef") or c.payable,
    "BillPayment": lambda t, c: (
        _ref(t.get("CheckPayment"), "BankAccountRef")
        or _ref(t.get("CreditCardPayment"), "CCAccountRef")
    ),
    "Purchase": lambda t, c: _ref(t, "AccountRef"),
    "Transfer": lambda t, c: _ref(t, "FromAccountRef"),
    "CreditCardPayment": lambda t, c: _ref(t, "BankAccountRef"),
    "InventoryAdjustment": lambda t, c: _ref(t, "AdjustAccountRef"),
    "TaxPayment": lambda t, c: _ref(t, "PaymentAccountRef"),
}
"""The account a TransactionList shows a transaction under (its bank, A/R or A/P side)."""


def _listed(entity: str, txn: Mapping[str, Any], chart: Chart) -> _Entry:
    rows = postings(entity, txn, chart) if entity not in NON_POSTING_LISTED else []
    when = str(txn.get("TxnDate") or txn.get("PaymentDate") or "")
    if entity in NON_POSTING_LISTED:
        total = round(float(txn.get("TotalAmt") or 0) * 100)
        return _Entry(entity, txn, when, "", total, [])
    pick = _MAIN_ACCOUNT.get(entity)
    main = pick(txn, chart) if pick else None
    if main is None or (rows and main not in {a for a, _ in rows}):
        main = rows[0][0] if rows else ""
    amount = sum(v for a, v in rows if a == main)
    others = list(dict.fromkeys(a for a, _ in rows if a != main))
    return _Entry(entity, txn, when, main, amount, others)


def transaction_list(
    store: SandboxStore, realm_id: str, options: ListOptions, header: dict[str, Any]
) -> dict[str, Any]:
    """The TransactionList report in QBO's shape (see the module docstring)."""
    chart = Chart.from_store(store, realm_id)
    cells = _Cells(store, realm_id, chart)
    start, end = options.base.start.isoformat(), options.base.end.isoformat()
    entries: list[_Entry] = []
    for entity in (*posting_entities(), *NON_POSTING_LISTED):
        for txn in store.iter_records(realm_id, entity):
            when = str(txn.get("TxnDate") or txn.get("PaymentDate") or "")
            if not (start <= when <= end) or not passes_filters(txn, options.base.filters):
                continue
            entries.append(_listed(entity, txn, chart))
    entries.sort(key=_sort_key(options.sort_by, cells), reverse=options.descending)
    rows = [
        {"ColData": [cells.cell(key, entry, 0) for key in options.columns], "type": "Data"}
        for entry in entries
    ]
    header["Option"] = [{"Name": "NoReportData", "Value": "false" if rows else "true"}]
    return {
        "Header": header,
        "Columns": _columns_block("TransactionList", options.columns),
        "Rows": {"Row": rows},
    }


def _columns_block(name: str, columns: tuple[str, ...]) -> dict[str, Any]:
    titles = GENERAL_LEDGER_COLUMNS if name == "GeneralLedger" else TRANSACTION_LIST_COLUMNS
    return {"Column": [{"ColTitle": titles[key], "ColType": key} for key in columns]}


def build_list_report(
    store: SandboxStore, realm_id: str, name: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """Compute a GeneralLedger or TransactionList of a realm, in QBO's report JSON shape.

    Args:
        store: The sandbox store.
        realm_id: The company.
        name: ``GeneralLedger`` or ``TransactionList`` (canonical spelling).
        params: ``start_date``, ``end_date``, ``date_macro`` (default this month to date),
            ``accounting_method``, ``columns`` (comma-separated ColKeys), ``sort_by`` (one of the
            chosen columns), ``sort_order`` (``ascend``/``descend``), the ``customer``,
            ``vendor``, ``class`` and ``department`` filters and, for GeneralLedger, ``account``.
            A TransactionList's ``group_by`` (sections per name, account, ...) is refused.

    Raises:
        SandboxFault: 400 (2010 naming the parameter) for a bad parameter.
    """
    today = store.now(realm_id).astimezone(COMPANY_TZ).date()
    options = list_options(name, params, store, realm_id, today)
    header = _header(store, realm_id, name, options.base)
    header.pop("SummarizeColumnsBy", None)
    if name == "GeneralLedger":
        return general_ledger(store, realm_id, options, header)
    return transaction_list(store, realm_id, options, header)
