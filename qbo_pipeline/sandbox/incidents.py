"""Incidents on demand: the mistakes a backup exists to recover from.

Each incident writes through :class:`Operations` (so SyncTokens, MetaData and CDC tombstones are
right) and returns the :class:`ActivityLog` of exactly what it changed:

- ``bulk_delete_invoices``: the invoices of a TxnDate range deleted together with the payments
  applied to them; what pointed at them is unlinked as QBO does (deposits lose the deleted
  payments' lines, other invoices get back the balance a deleted payment had paid, estimates
  reopen, attachments of the deleted invoices go too), so every remaining reference resolves;
  the derived updates (balances and back-links Operations writes) are in the log too;
- ``bad_import_customers``: a botched import that rewrites many customers' names, addresses,
  emails and phones;
- ``deactivate_item``: an item made inactive (" (deleted)" appended to its name).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from typing import Any

from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.simulate import ActivityLog
from qbo_pipeline.sandbox.store import SandboxStore


def _cents(value: Any) -> int:
    return round(float(value or 0) * 100)


def _money(amount: int) -> int | float:
    return amount // 100 if amount % 100 == 0 else amount / 100


class _Writer:
    """Operations plus the log of what they changed."""

    def __init__(self, store: SandboxStore, realm_id: str) -> None:
        self.store = store
        self.realm_id = realm_id
        self.ops = Operations(store, realm_id, observer=self._side_effect)
        self.log = ActivityLog()

    def _side_effect(self, entity: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.log.record(entity, "updated", before, after)

    def current(self, entity: str, record_id: str) -> dict[str, Any] | None:
        return self.store.get(self.realm_id, entity, record_id)

    def delete(self, entity: str, record_id: str) -> None:
        before = self.current(entity, record_id)
        if before is None:
            return
        self.ops.delete(entity, record_id, before["SyncToken"])
        self.log.record(entity, "deleted", before, None)

    def server_update(self, entity: str, record_id: str, changes: dict[str, Any]) -> None:
        """A change QBO makes itself as a consequence (logged through the observer)."""
        if self.current(entity, record_id) is not None:
            self.ops.server_update(entity, record_id, changes)

    def update(self, entity: str, record_id: str, changes: dict[str, Any]) -> None:
        before = self.current(entity, record_id)
        if before is None:
            return
        payload = {"Id": record_id, "SyncToken": before["SyncToken"], "sparse": True, **changes}
        self.ops.update(entity, payload, sparse=True)
        self.log.record(entity, "updated", before, self.current(entity, record_id))


def bulk_delete_invoices(
    store: SandboxStore, realm_id: str, *, start: date, end: date
) -> ActivityLog:
    """Delete every invoice dated ``start``..``end`` and the payments applied to them.

    Raises:
        ValueError: If ``start`` is after ``end``.
    """
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    low, high = start.isoformat(), end.isoformat()
    writer = _Writer(store, realm_id)
    doomed = {
        str(inv["Id"])
        for inv in store.iter_records(realm_id, "Invoice")
        if low <= str(inv.get("TxnDate", "")) <= high
    }
    if not doomed:
        return writer.log
    payments: set[str] = set()
    for payment in store.iter_records(realm_id, "Payment"):
        if any(
            link.get("TxnType") == "Invoice" and str(link.get("TxnId")) in doomed
            for line in payment.get("Line") or ()
            for link in line.get("LinkedTxn") or ()
        ):
            payments.add(str(payment["Id"]))
    _unlink_deposits(writer, payments)
    # Deleting a payment gives every invoice it paid its balance back and drops the back-link
    # (Operations does it, as QBO does), so the invoices that survive stay consistent.
    for payment_id in sorted(payments, key=int):
        writer.delete("Payment", payment_id)
    _reopen_estimates(writer, doomed)
    _drop_attachments(writer, doomed)
    for invoice_id in sorted(doomed, key=int):
        writer.delete("Invoice", invoice_id)
    return writer.log


def _unlink_deposits(writer: _Writer, payments: set[str]) -> None:
    """Take the deleted payments' lines out of the deposits that held them."""
    for deposit in writer.store.iter_records(writer.realm_id, "Deposit"):
        lines = deposit.get("Line") or []
        kept = [
            line
            for line in lines
            if not any(
                link.get("TxnType") == "Payment" and str(link.get("TxnId")) in payments
                for link in line.get("LinkedTxn") or ()
            )
        ]
        if len(kept) == len(lines):
            continue
        if not kept:
            writer.delete("Deposit", str(deposit["Id"]))
            continue
        total = sum(_cents(line.get("Amount")) for line in kept)
        total -= _cents((deposit.get("CashBack") or {}).get("Amount"))
        changes = {"Line": kept, "TotalAmt": _money(total)}
        writer.server_update("Deposit", str(deposit["Id"]), changes)


def _reopen_estimates(writer: _Writer, invoices: set[str]) -> None:
    for estimate in writer.store.iter_records(writer.realm_id, "Estimate"):
        links = estimate.get("LinkedTxn") or []
        kept = [
            link
            for link in links
            if not (link.get("TxnType") == "Invoice" and str(link.get("TxnId")) in invoices)
        ]
        if len(kept) != len(links):
            changes: dict[str, Any] = {"LinkedTxn": kept}
            if not kept:
                changes["TxnStatus"] = "Pending"
            writer.server_update("Estimate", str(estimate["Id"]), changes)


def _drop_attachments(writer: _Writer, invoices: set[str]) -> None:
    for attachable in writer.store.iter_records(writer.realm_id, "Attachable"):
        refs = attachable.get("AttachableRef") or []
        if refs and all(
            (r.get("EntityRef") or {}).get("type") == "Invoice"
            and str((r.get("EntityRef") or {}).get("value")) in invoices
            for r in refs
        ):
            writer.delete("Attachable", str(attachable["Id"]))


_BAD_STREET = "1 Import Way"


def bad_import_customers(
    store: SandboxStore, realm_id: str, *, count: int = 10, seed: int = 13
) -> ActivityLog:
    """Rewrite ``count`` active customers the way a botched spreadsheet import does.

    Display names become "FAMILY, GIVEN" in capitals (or just capitals), given and family
    names swap, every address becomes the importer's placeholder, emails and phones are garbled.

    Raises:
        ValueError: If ``count`` is not positive.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    writer = _Writer(store, realm_id)
    candidates = [
        str(c["Id"])
        for c in store.iter_records(realm_id, "Customer", include_inactive=False)
        if not c.get("Job")
    ]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(candidates, min(count, len(candidates))), key=int)
    for n, customer_id in enumerate(chosen, start=1):
        customer = writer.current("Customer", customer_id)
        if customer is None:
            continue
        given, family = customer.get("GivenName"), customer.get("FamilyName")
        display = str(customer.get("DisplayName", ""))
        name = f"{family}, {given}".upper() if given and family else display.upper()
        if writer.ops.name_in_use("Customer", name, customer_id):
            name = f"{name} ({n})"
        address = {
            "Line1": _BAD_STREET,
            "City": "IMPORT",
            "CountrySubDivisionCode": "XX",
            "PostalCode": "00000",
        }
        changes: dict[str, Any] = {
            "DisplayName": name,
            "PrintOnCheckName": name,
            "BillAddr": address,
            "ShipAddr": dict(address),
            "PrimaryEmailAddr": {"Address": f"import{n:03d}@example.invalid"},
            "PrimaryPhone": {"FreeFormNumber": "000-000-0000"},
        }
        if given and family:
            changes["GivenName"], changes["FamilyName"] = family, given
        writer.update("Customer", customer_id, changes)
    return writer.log


def deactivate_item(
    store: SandboxStore, realm_id: str, *, item_id: str | None = None
) -> ActivityLog:
    """Make an item inactive: the one given, or the active item most used on invoices.

    Raises:
        ValueError: If the item does not exist or no active item is left.
    """
    writer = _Writer(store, realm_id)
    if item_id is None:
        usage: dict[str, int] = defaultdict(int)
        for invoice in store.iter_records(realm_id, "Invoice"):
            for line in invoice.get("Line") or ():
                item = (line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
                if item.get("value"):
                    usage[str(item["value"])] += 1
        active = [
            str(i["Id"]) for i in store.iter_records(realm_id, "Item", include_inactive=False)
        ]
        if not active:
            raise ValueError(f"realm {realm_id} has no active item to deactivate")
        item_id = max(active, key=lambda i: (usage.get(i, 0), -int(i)))
    before = writer.current("Item", item_id)
    if before is None:
        raise ValueError(f"item {item_id!r} does not exist in realm {realm_id}")
    writer.ops.deactivate("Item", item_id)
    after = writer.current("Item", item_id)
    if after != before:
        writer.log.record("Item", "deactivated", before, after)
    return writer.log
