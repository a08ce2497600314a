"""Days of realistic bookkeeping activity in a sandbox company, and the exact log of it.

``simulate_days`` moves a realm's virtual clock forward a day at a time and, each day, makes the
changes a small business makes: new invoices, payments against open invoices, bills and their
payments, card and cash purchases, journal entries and new customers; customer contact changes
and invoice line edits; voids, deletes and deactivations. Every write goes through
:class:`Operations`, so SyncTokens, MetaData times and CDC tombstones are exactly what the API
would produce.

The :class:`ActivityLog` it returns lists every change in order: the entity, the id, the action and
each changed JSON path (``PrimaryPhone.FreeFormNumber``, ``Line[0].Amount``) with its old and new
value (None where the path is absent). Replaying the log over a snapshot taken before gives the
snapshot after, which is what the diff models are tested against.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.store import SandboxStore

ACTIONS = ("created", "updated", "deleted", "voided", "deactivated", "reactivated")
"""What a :class:`Change` can be."""

_HOME = {"value": "USD", "name": "United States Dollar"}

OPERATION_SPACING = timedelta(seconds=30)
"""Simulated time between two changes of one day."""
_EXPENSE_ACCOUNTS = ("7", "8", "13", "15", "17", "20", "22", "24", "29", "56")


# --- the log ----------------------------------------------------------------------------------


def flatten(payload: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON value by dotted path (``Line[0].Amount``); empty containers too."""
    out: dict[str, Any] = {}
    if isinstance(payload, dict) and payload:
        for key, value in payload.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(payload, list) and payload:
        for index, value in enumerate(payload):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix] = payload
    return out


def diff_fields(before: Any, after: Any) -> dict[str, tuple[Any, Any]]:
    """The paths whose value differs between two payloads: ``{path: (old, new)}``.

    A path absent on one side has None there; either payload may be None (created, deleted).
    """
    old = flatten(before) if before is not None else {}
    new = flatten(after) if after is not None else {}
    return {
        path: (old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path) or (path in old) != (path in new)
    }


@dataclass(frozen=True)
class Change:
    """One change to one record.

    Attributes:
        entity: The catalogue entity name.
        id: The record's id.
        action: One of :data:`ACTIONS`.
        fields: Every changed JSON path with its ``(old, new)`` value.
    """

    entity: str
    id: str
    action: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


class ActivityLog(list[Change]):
    """The changes of a simulation or an incident, in the order they were made."""

    def record(
        self, entity: str, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> Change:
        """Append the change between two versions of a record and return it."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
        source = after if after is not None else before
        if source is None:
            raise ValueError("a change needs the record before or after it")
        change = Change(entities.get(entity).name, str(source["Id"]), action, {})
        change.fields.update(diff_fields(before, after))
        self.append(change)
        return change

    def counts(self) -> dict[tuple[str, str], int]:
        """How many changes of each ``(entity, action)``."""
        return dict(Counter((c.entity, c.action) for c in self))

    def touched(self) -> set[tuple[str, str]]:
        """Every ``(entity, id)`` the log changed."""
        return {(c.entity, c.id) for c in self}


# --- picking records ----------------------------------------------------------------------------


def pick(
    store: SandboxStore,
    realm_id: str,
    entity: str,
    rng: random.Random,
    accept: Callable[[dict[str, Any]], bool] = lambda _: True,
    *,
    window: int = 200,
) -> dict[str, Any] | None:
    """A pseudo-random record that ``accept`` likes, without reading the whole entity.

    Starts at a random id and scans forward ``window`` records (wrapping around once).
    """
    name = entities.get(entity).name
    rows = store.select(
        "WHERE realm = ? AND entity = ? AND typeof(id_num) = 'integer'",
        (realm_id, name),
        columns="max(id_num)",
    )
    top = rows[0][0] if rows else None
    if top is None:
        return None
    start = rng.randint(0, int(top))
    for low in (start, 0):
        found = store.select(
            "WHERE realm = ? AND entity = ? AND id_num >= ? ORDER BY id_num LIMIT ?",
            (realm_id, name, low, window),
        )
        for _, payload in found:
            record = orjson.loads(payload)
            if accept(record):
                return record
    return None


def _amount(value: Any) -> int:
    return round(float(value or 0) * 100)


def _money(amount: int) -> int | float:
    return amount // 100 if amount % 100 == 0 else amount / 100


# --- the simulation -----------------------------------------------------------------------------


def _open_customer(invoice: dict[str, Any] | None) -> str | None:
    """The customer of an open invoice (balance above zero), or None."""
    if invoice is None or _amount(invoice.get("Balance")) <= 0:
        return None
    value = (invoice.get("CustomerRef") or {}).get("value")
    return str(value) if value not in (None, "") else None


class CustomerTies:
    """What keeps a customer of a realm from being made inactive: open invoices, sub-customers.

    QBO refuses to deactivate a customer with an open balance, and deactivating a parent would
    leave its sub-customers pointing at an inactive one. Both are counted with one scan of the
    realm the first time they are asked (seconds for the 1M company) and then kept up to date
    from every invoice version the simulation writes (it creates no sub-customers), so each
    deactivation checks a count instead of scanning every invoice again.
    """

    def __init__(self, store: SandboxStore, realm_id: str) -> None:
        self.store = store
        self.realm_id = realm_id
        self._open: Counter[str] | None = None
        self._parents: set[str] | None = None

    def _open_counts(self) -> Counter[str]:
        if self._open is None:
            rows = self.store.select(
                "WHERE realm = ? AND entity = 'Invoice'",
                (self.realm_id,),
                columns="json_extract(payload, '$.CustomerRef.value'), "
                "json_extract(payload, '$.Balance')",
            )
            self._open = Counter(
                str(customer)
                for customer, balance in rows
                if customer not in (None, "") and _amount(balance) > 0
            )
        return self._open

    def open_invoices(self) -> dict[str, int]:
        """Open invoices per customer (customers without any left out)."""
        return {customer: n for customer, n in self._open_counts().items() if n > 0}

    def binding(self, customer_id: str) -> bool:
        """Whether the customer has an open invoice or a sub-customer."""
        if self._parents is None:
            rows = self.store.select(
                "WHERE realm = ? AND entity = 'Customer' "
                "AND json_extract(payload, '$.ParentRef.value') IS NOT NULL",
                (self.realm_id,),
                columns="DISTINCT json_extract(payload, '$.ParentRef.value')",
            )
            self._parents = {str(parent) for (parent,) in rows}
        return self._open_counts()[str(customer_id)] > 0 or str(customer_id) in self._parents

    def invoice_written(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Account for an invoice written from ``before`` to ``after`` (None: absent)."""
        if self._open is None:
            return  # not counted yet: the first question scans the written state
        was, now = _open_customer(before), _open_customer(after)
        if was is not None:
            self._open[was] -= 1
        if now is not None:
            self._open[now] += 1


class _Day:
    """The writes of one simulated day."""

    def __init__(
        self,
        store: SandboxStore,
        realm_id: str,
        rng: random.Random,
        log: ActivityLog,
        today: str,
        ties: CustomerTies,
    ) -> None:
        self.store = store
        self.realm_id = realm_id
        self.rng = rng
        self.log = log
        self.ops = Operations(store, realm_id, observer=self._side_effect)
        self.today = today
        self.ties = ties

    def record(
        self, entity: str, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """Log a change (and keep the customers' open invoices counted)."""
        self.log.record(entity, action, before, after)
        if entities.get(entity).name == "Invoice":
            self.ties.invoice_written(before, after)

    def _side_effect(self, entity: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Log what a write changed on another record (the invoice a payment paid)."""
        self.record(entity, "updated", before, after)

    def pick(self, entity: str, accept: Callable[[dict[str, Any]], bool] = lambda _: True) -> Any:
        """A record to act on that ``accept`` likes and QBO would let be saved again.

        One that points at an inactive record (an item made inactive, say) cannot be written
        by a bookkeeper either, so it is passed over.
        """
        return pick(
            self.store,
            self.realm_id,
            entity,
            self.rng,
            lambda record: accept(record) and self.ops.references_usable(entity, record),
        )

    def created(self, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        result = self.ops.create(entity, payload)
        after = self.store.get(self.realm_id, entity, result["Id"])
        self.record(entity, "created", None, after)
        return after or result

    def updated(self, entity: str, before: dict[str, Any], changes: dict[str, Any]) -> dict:
        payload = {"Id": before["Id"], "SyncToken": before["SyncToken"], "sparse": True, **changes}
        self.ops.update(entity, payload, sparse=True)
        after = self.store.get(self.realm_id, entity, before["Id"])
        self.record(entity, "updated", before, after)
        return after or {}

    # creates ------------------------------------------------------------------------------------

    def invoice(self) -> None:
        customer = self.pick("Customer", lambda c: c.get("Active") is not False)
        items = [
            self.pick(
                "Item", lambda i: i.get("Active") is not False and i.get("Type") != "Category"
            )
            for _ in range(self.rng.randint(1, 2))
        ]
        if customer is None or not all(items):
            return
        lines = []
        subtotal = 0
        for n, item in enumerate(items, start=1):
            price = _amount(item.get("UnitPrice")) or self.rng.choice((3500, 5000, 7500))
            qty = self.rng.randint(1, 5)
            lines.append(_sales_line(n, item, price, qty))
            subtotal += price * qty
        lines.append(
            {
                "Amount": _money(subtotal),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }
        )
        self.created(
            "Invoice",
            {
                "TxnDate": self.today,
                "CurrencyRef": dict(_HOME),
                "LinkedTxn": [],
                "Line": lines,
                "TxnTaxDetail": {"TotalTax": 0},
                "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
                "SalesTermRef": {"value": "3", "name": "Net 30"},
                "DueDate": self.today,
                "PrintStatus": "NeedToPrint",
                "EmailStatus": "NotSet",
            },
        )

    def payment(self) -> None:
        invoice = self.pick("Invoice", lambda i: _amount(i.get("Balance")) > 0)
        if invoice is None:
            return
        balance = _amount(invoice["Balance"])
        amount = balance if self.rng.random() < 0.8 else max(1, balance // 2)
        self.created(
            "Payment",
            {
                "CustomerRef": dict(invoice["CustomerRef"]),
                "DepositToAccountRef": {"value": "4"},
                "TotalAmt": _money(amount),
                "UnappliedAmt": 0,
                "ProcessPayment": False,
                "TxnDate": self.today,
                "CurrencyRef": dict(_HOME),
                "Line": [
                    {
                        "Amount": _money(amount),
                        "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    }
                ],
            },
        )  # Operations lowers the invoice's balance and links it back to the payment.

    def bill(self) -> None:
        vendor = self.pick("Vendor", lambda v: v.get("Active") is not False)
        if vendor is None:
            return
        amount = self.rng.randint(2000, 60000)
        self.created(
            "Bill",
            {
                "TxnDate": self.today,
                "DueDate": self.today,
                "CurrencyRef": dict(_HOME),
                "LinkedTxn": [],
                "Line": [_expense_line(self.rng, amount)],
                "VendorRef": {"value": vendor["Id"], "name": vendor["DisplayName"]},
                "APAccountRef": {"value": "33", "name": "Accounts Payable (A/P)"},
            },
        )

    def bill_payment(self) -> None:
        bill = self.pick("Bill", lambda b: _amount(b.get("Balance")) > 0)
        if bill is None:
            return
        amount = _amount(bill["Balance"])
        self.created(
            "BillPayment",
            {
                "VendorRef": dict(bill["VendorRef"]),
                "PayType": "Check",
                "CheckPayment": {
                    "BankAccountRef": {"value": "35", "name": "Checking"},
                    "PrintStatus": "NotSet",
                },
                "TotalAmt": _money(amount),
                "TxnDate": self.today,
                "CurrencyRef": dict(_HOME),
                "Line": [
                    {
                        "Amount": _money(amount),
                        "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}],
                    }
                ],
            },
        )  # Operations closes the bill and links it back to the bill payment.

    def purchase(self) -> None:
        vendor = self.pick("Vendor", lambda v: v.get("Active") is not False)
        if vendor is None:
            return
        card = self.rng.random() < 0.5
        self.created(
            "Purchase",
            {
                "AccountRef": {"value": "41", "name": "Mastercard"}
                if card
                else {"value": "35", "name": "Checking"},
                "PaymentType": "CreditCard" if card else "Cash",
                "EntityRef": {
                    "value": vendor["Id"],
                    "name": vendor["DisplayName"],
                    "type": "Vendor",
                },
                "TxnDate": self.today,
                "CurrencyRef": dict(_HOME),
                "Line": [_expense_line(self.rng, self.rng.randint(500, 30000))],
            },
        )

    def journal_entry(self) -> None:
        amount = _money(self.rng.randint(5000, 50000))
        lines = [
            {
                "Id": str(n),
                "Description": "Monthly depreciation",
                "Amount": amount,
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {"PostingType": side, "AccountRef": {"value": account}},
            }
            for n, (side, account) in enumerate((("Debit", "40"), ("Credit", "39")))
        ]
        self.created(
            "JournalEntry",
            {
                "TxnDate": self.today,
                "CurrencyRef": dict(_HOME),
                "PrivateNote": "Monthly depreciation",
                "Line": lines,
            },
        )

    def customer(self) -> None:
        first = self.rng.choice(("Ana", "Ben", "Chloe", "Dev", "Emma", "Felix", "Grace", "Hugo"))
        last = self.rng.choice(("Ramirez", "Okoye", "Schmidt", "Tanaka", "Walsh", "Young"))
        name = f"{first} {last}"
        for attempt in range(2, 50):
            try:
                self.created(
                    "Customer",
                    {
                        "GivenName": first,
                        "FamilyName": last,
                        "DisplayName": name,
                        "PrimaryEmailAddr": {"Address": f"{first}.{last}@example.com".lower()},
                        "PrimaryPhone": {"FreeFormNumber": self._phone()},
                        "CurrencyRef": dict(_HOME),
                        "Taxable": False,
                    },
                )
                return
            except SandboxFault as fault:
                if fault.code != "6240":
                    raise
                name = f"{first} {last} {attempt}"

    # updates and removals -----------------------------------------------------------------------

    def _phone(self) -> str:
        return f"({self.rng.randint(200, 999)}) 555-{self.rng.randint(0, 9999):04d}"

    def contact_change(self) -> None:
        customer = self.pick("Customer", lambda c: c.get("Active") is not False)
        if customer is None:
            return
        changes: dict[str, Any] = {"PrimaryPhone": {"FreeFormNumber": self._phone()}}
        if self.rng.random() < 0.5:
            user = customer["DisplayName"].split()[0].lower().strip("'\",.")
            changes["PrimaryEmailAddr"] = {
                "Address": f"{user}{self.rng.randint(1, 99)}@example.com"
            }
        self.updated("Customer", customer, changes)

    def line_edit(self) -> None:
        invoice = self.pick(
            "Invoice",
            lambda i: (
                _amount(i.get("Balance")) == _amount(i.get("TotalAmt")) > 0
                and not _amount((i.get("TxnTaxDetail") or {}).get("TotalTax"))
            ),
        )
        if invoice is None:
            return
        lines = orjson.loads(orjson.dumps(invoice["Line"]))
        item_lines = [ln for ln in lines if ln.get("DetailType") == "SalesItemLineDetail"]
        if not item_lines:
            return
        line = item_lines[0]
        detail = line["SalesItemLineDetail"]
        price = _amount(detail.get("UnitPrice")) or _amount(line["Amount"])
        qty = int(detail.get("Qty") or 1) + 1
        detail["Qty"] = qty
        detail["UnitPrice"] = _money(price)
        line["Amount"] = _money(price * qty)
        subtotal = sum(_amount(ln["Amount"]) for ln in item_lines)
        for other in lines:
            if other.get("DetailType") == "SubTotalLineDetail":
                other["Amount"] = _money(subtotal)
        self.updated("Invoice", invoice, {"Line": lines})

    def void(self) -> None:
        invoice = self.pick(
            "Invoice", lambda i: _amount(i.get("Balance")) == _amount(i.get("TotalAmt")) > 0
        )
        if invoice is None:
            return
        self.ops.void("Invoice", invoice["Id"], invoice["SyncToken"])
        after = self.store.get(self.realm_id, "Invoice", invoice["Id"])
        self.record("Invoice", "voided", invoice, after)

    def delete(self) -> None:
        purchase = self.pick("Purchase")
        if purchase is None:
            return
        self.ops.delete("Purchase", purchase["Id"], purchase["SyncToken"])
        self.record("Purchase", "deleted", purchase, None)

    def deactivate(self) -> None:
        customer = self.pick(
            "Customer",
            lambda c: (
                c.get("Active") is not False and not _amount(c.get("Balance")) and not c.get("Job")
            ),
        )
        if customer is None or self.ties.binding(customer["Id"]):
            return
        self.ops.deactivate("Customer", customer["Id"])
        after = self.store.get(self.realm_id, "Customer", customer["Id"])
        self.record("Customer", "deactivated", customer, after)


def _sales_line(n: int, item: dict[str, Any], price: int, qty: int) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "ItemRef": {"value": item["Id"], "name": item["Name"]},
        "UnitPrice": _money(price),
        "Qty": qty,
        "TaxCodeRef": {"value": "NON"},
    }
    if item.get("IncomeAccountRef"):
        detail["ItemAccountRef"] = dict(item["IncomeAccountRef"])
    return {
        "Id": str(n),
        "LineNum": n,
        "Description": item.get("Description") or item["Name"],
        "Amount": _money(price * qty),
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": detail,
    }


def _expense_line(rng: random.Random, amount: int) -> dict[str, Any]:
    return {
        "Id": "1",
        "Amount": _money(amount),
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {
            "AccountRef": {"value": rng.choice(_EXPENSE_ACCOUNTS)},
            "BillableStatus": "NotBillable",
            "TaxCodeRef": {"value": "NON"},
        },
    }


_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("invoice", 20),
    ("payment", 15),
    ("bill", 10),
    ("bill_payment", 8),
    ("purchase", 14),
    ("journal_entry", 3),
    ("customer", 4),
    ("contact_change", 8),
    ("line_edit", 6),
    ("void", 3),
    ("delete", 3),
    ("deactivate", 2),
)
"""How often each kind of change happens."""


def _actions(rng: random.Random, count: int) -> Iterator[str]:
    names = [name for name, _ in _WEIGHTS]
    weights = [weight for _, weight in _WEIGHTS]
    yield from rng.choices(names, weights=weights, k=count)


def simulate_days(
    store: SandboxStore,
    realm_id: str,
    days: int,
    *,
    seed: int = 7,
    changes_per_day: int | None = None,
    start: datetime | None = None,
) -> ActivityLog:
    """Advance a realm's clock ``days`` days, making a day's worth of changes each day.

    The clock is set for every change: day ``d`` (1-based) starts at ``start + d days`` and its
    ``k``-th change is stamped ``OPERATION_SPACING * k`` later, with the clock frozen while the
    change is written, so the same seed, company state and ``start`` give byte-identical
    MetaData. Afterwards the clock reads the last change's time and flows on from there.

    Args:
        store: The sandbox store.
        realm_id: The company.
        days: How many days to simulate (0 makes no change).
        seed: The same seed on the same company state gives the same activity.
        changes_per_day: Changes attempted each day; by default 5 to 15. An attempt that finds
            nothing to act on (no open invoice to pay, say) makes no change.
        start: Where the simulated days start (the realm's clock by default); it may not be
            earlier than the realm's clock, which never runs backward.

    Returns:
        Every change, in order.

    Raises:
        ValueError: If ``days`` or ``changes_per_day`` is negative, or ``start`` is naive or
            earlier than the realm's clock.
    """
    if days < 0:
        raise ValueError(f"days must be zero or more, not {days}")
    if changes_per_day is not None and changes_per_day < 0:
        raise ValueError(f"changes_per_day must be zero or more, not {changes_per_day}")
    now = store.now(realm_id)
    if start is None:
        start = now
    elif start.tzinfo is None or start < now:
        raise ValueError(
            f"start {start.isoformat()} must be time-zone aware and not before the realm's "
            f"clock ({now.isoformat()})"
        )
    start = start.replace(microsecond=0)  # QBO stamps whole seconds
    log = ActivityLog()
    base = start.astimezone(COMPANY_TZ).date().isoformat()
    rng = random.Random(f"{seed}:{realm_id}:{base}")
    ties = CustomerTies(store, realm_id)
    for number in range(1, days + 1):
        day_start = start + timedelta(days=number)
        today = day_start.astimezone(COMPANY_TZ).date().isoformat()
        day = _Day(store, realm_id, rng, log, today, ties)
        count = changes_per_day if changes_per_day is not None else rng.randint(5, 15)
        actions: list[str | None] = [*_actions(rng, count)] or [None]
        for k, action in enumerate(actions):
            with store.frozen_clock(realm_id, day_start + OPERATION_SPACING * k):
                if action is not None:
                    try:
                        getattr(day, action)()
                    except SandboxFault as fault:
                        # Something the change uses was made inactive (an account, a vendor):
                        # QBO refuses it, and the bookkeeper moves on to the next thing.
                        if fault.code != "610":
                            raise
    return log
