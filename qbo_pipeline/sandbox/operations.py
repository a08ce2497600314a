"""The business rules of QBO writes, shared by the HTTP API and the activity simulation.

Every write goes through :class:`Operations`: it assigns ids and SyncTokens, stamps ``MetaData``
from the realm's virtual clock, and refuses what QBO refuses, with QBO's own faults:

- 5010 when the SyncToken sent is not the current one;
- 6240 when an active record of a name-list already carries the name (catalogue ``name_field``;
  customers, vendors and employees share one DisplayName space, as in QBO);
- 2020 when a required field (catalogue ``required``; ``a|b`` means one of them) is missing;
- 610 when the record does not exist, or a reference points at a missing or inactive record;
- unsupported operations on read-only entities, deletes of entities that are only deactivated,
  voids of entities that cannot be voided.

Deactivation appends " (deleted)" to the name (as ``account_read_inactive.json`` shows) but
not to a person's ``PrintOnCheckName`` (the inactive vendor and employee of
``query_vendor_active_in_true_false.json`` and ``query_employee_incl_inactive.json`` print
their plain names), and reactivation removes it again; a void zeroes the amounts and lines
as the void captures show.

Derived fields are the server's, as in QBO: an invoice's or bill's ``Balance`` starts at its
total and only the transactions applied to it move it; a payment, bill payment or deposit
updates the records it applies to (balance and ``LinkedTxn`` back-link, :mod:`links`) in the
same transaction, and its delete or void undoes that. Those derived writes are new versions of
the target (SyncToken + 1, new ``LastUpdatedTime``), reported to the optional ``observer``.
Voiding or deleting a paid invoice (deleting a paid bill) works the other way round: the
payments lose their lines applying to it and keep the amount unapplied, as new versions too
(:meth:`Operations._unapply_payers` says what is known of QBO there).

What QBO adds to a record it saves (reference names, line numbers, a sales form's subtotal,
DocNumber, DueDate, addresses, defaults) is filled in by :mod:`completion` on every create and
update, as the create captures show.

Running balances move live, as in QBO (:mod:`running_balances`): every create, update,
delete or void of a transaction moves its customer's or vendor's ``Balance`` (and the
``BalanceWithJobs`` of the customer and its parents) and the ``CurrentBalance`` of the accounts
it posts to (and ``CurrentBalanceWithSubAccounts`` up the tree). The moved name keeps its
SyncToken and gets the write's ``LastUpdatedTime``, as the captures show, so CDC returns it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.sandbox import faults, links, openid, shapes, tax_compute, tax_rules
from qbo_pipeline.sandbox.clock import COMPANY_TZ, qbo_time
from qbo_pipeline.sandbox.completion import Completion, decimal_amount, json_number
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.running_balances import RunningBalances
from qbo_pipeline.sandbox.store import SandboxStore

__all__ = ["DELETED_SUFFIX", "Operations", "SandboxFault"]

DELETED_SUFFIX = " (deleted)"
"""What QBO appends to the name of a deactivated record."""

_SERVER_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")
"""Fields the server owns: a client's values are never stored."""

_SERVER_KEPT: dict[str, tuple[str, ...]] = {
    "Account": ("CurrentBalance", "CurrentBalanceWithSubAccounts"),
    "Item": ("QtyOnHand",),
}
"""Fields QBO keeps when a full update leaves them out, because postings move them (account
balances, an item's quantity moved by inventory transactions); the sandbox does not recompute
them from the ledger on every write but moves them by each transaction's postings
(:mod:`running_balances`). The other computed fields (customer and vendor balances,
a payment's unapplied amount, an attachment's file) are recalculated by :mod:`completion`."""

_RATE_KEY_FIELDS = ("SourceCurrencyCode", "AsOfDate")
"""The fields that name an exchange rate (it has no Id)."""

_PARTY_NAMES = ("Customer", "Vendor", "Employee")
"""Entities whose display name is also their FullyQualifiedName (and, by default, their
PrintOnCheckName, which keeps no " (deleted)" when they are made inactive)."""

_NO_ACTIVE_FIELD = ("TaxAgency",)
"""Name-lists whose records QBO serves without ``Active`` unless one was set
(``taxagency_doc.json``): a create does not add it."""

_SUMMARY_DETAILS = ("SubTotalLineDetail", "DiscountLineDetail", "TaxLineDetail")
"""Line kinds that do not add to a transaction's total."""

_CREDITED_LINES_TOTAL = ("Payment", "BillPayment")
"""Transactions whose total is an input, not the sum of their lines."""

_OPEN_BALANCE = ("Invoice", "Bill", "CreditMemo", "VendorCredit")
"""Transactions with an open ``Balance`` that starts at their total."""

Observer = Callable[[str, dict[str, Any], dict[str, Any]], None]
"""Called with ``(entity, before, after)`` for every record a write changed as a side effect."""


def _print_name(record: dict[str, Any]) -> str:
    """The name on a check when none is given: company name, person's name, display name.

    The customer create capture prints "Test Customer" for GivenName Test, FamilyName Customer.
    """
    if isinstance(record.get("CompanyName"), str) and record["CompanyName"]:
        return str(record["CompanyName"])
    parts = [record.get(k) for k in ("GivenName", "MiddleName", "FamilyName")]
    person = " ".join(p for p in parts if isinstance(p, str) and p)
    return person or str(record["DisplayName"])


def _present(payload: dict[str, Any], field: str) -> bool:
    value = payload.get(field)
    if value is None:
        return False
    if isinstance(value, str | list | dict) and not value:
        return False
    return True


class Operations:
    """The write rules of QBO for one realm of a :class:`SandboxStore`."""

    def __init__(
        self,
        store: SandboxStore,
        realm_id: str,
        *,
        observer: Observer | None = None,
        user_id: str = openid.APP_USER_ID,
    ) -> None:
        """Bind the rules to a realm.

        Args:
            store: The sandbox store.
            realm_id: The company.
            observer: Told of every record changed as a side effect of a write (an invoice a
                payment paid), after the change.
            user_id: The QBO user making the writes, named in ``MetaData.LastModifiedByRef``
                of the entities that carry it (the API: the user behind the access token).

        Raises:
            KeyError: If the store has no such realm.
        """
        self.store = store
        self.realm_id = realm_id
        self.observer = observer
        self.user_id = user_id
        self.completion = Completion(store, realm_id)
        self.balances = RunningBalances(store, realm_id, observer)
        store.company_name(realm_id)

    # --- helpers ----------------------------------------------------------------------------

    def _entity(self, entity: str) -> Entity:
        try:
            return entities.get(entity)
        except entities.UnknownEntityError:
            raise faults.unsupported_operation(
                f"Operation on unknown entity {entity!r} is not supported."
            ) from None

    def _writable(self, entity: str, operation: str) -> Entity:
        ent = self._entity(entity)
        if ent.read_only:
            raise faults.unsupported_operation(
                f"Operation {operation} is not supported for {ent.name}: it is read-only."
            )
        return ent

    def _now_text(self) -> str:
        return qbo_time(self.store.now(self.realm_id))

    def _load(self, ent: Entity, record_id: object) -> dict[str, Any]:
        if record_id in (None, ""):
            raise faults.required_missing("Id")
        try:
            shapes.store_key(ent.name, record_id)
        except ValueError:
            raise faults.invalid_id(record_id) from None
        record = self.store.get(self.realm_id, ent.name, str(record_id))
        if record is None:
            raise faults.not_found(
                f"Object Not Found : Something you're trying to use has been made inactive. "
                f"Check the fields with accounts, customers, items, vendors or employees. "
                f"({ent.name} {record_id})"
            )
        return shapes.flat(ent.name, record)

    @staticmethod
    def _check_sync_token(record: dict[str, Any], sync_token: object) -> None:
        if sync_token in (None, ""):
            raise faults.required_missing("SyncToken")
        if str(sync_token).strip() != str(record.get("SyncToken", "0")):
            raise faults.stale_object()

    def _check_required(self, ent: Entity, payload: dict[str, Any]) -> None:
        for requirement in ent.required:
            options = requirement.split("|")
            if not any(_present(payload, option) for option in options):
                raise faults.required_missing(options[0])

    def _check_name(self, ent: Entity, record: dict[str, Any], own_id: str | None) -> None:
        if not ent.name_field or record.get("Active") is False:
            return
        name = record.get(ent.name_field)
        if not isinstance(name, str):
            return
        if ent.name == "Account":
            # An account's name is unique among its siblings only (its FullyQualifiedName):
            # the real chart has "Depreciation" and "Truck:Depreciation" side by side.
            parent = str((record.get("ParentRef") or {}).get("value") or "")
            for other in self.store.active_ids_by_name(self.realm_id, ent.name, name):
                found = self.store.get(self.realm_id, ent.name, other) or {}
                if (
                    other != own_id
                    and str((found.get("ParentRef") or {}).get("value") or "") == parent
                ):
                    raise faults.duplicate_name(name)
            return
        if self.name_in_use(ent.name, name, own_id):
            raise faults.duplicate_name(name)

    def name_in_use(self, entity: str, name: str, own_id: str | None = None) -> bool:
        """Whether another active record holds ``name`` (case-insensitive) in the entity's list.

        Customers, vendors and employees share one DisplayName space, as in QBO.
        """
        ent = self._entity(entity)
        shared = _PARTY_NAMES if ent.name in _PARTY_NAMES else (ent.name,)
        for other_entity in shared:
            other = self.store.find_active_by_name(self.realm_id, other_entity, name)
            if other is not None and (other_entity, other) != (ent.name, own_id):
                return True
        return False

    def references_usable(self, entity: str, record: dict[str, Any]) -> bool:
        """Whether every record ``record`` depends on exists and is active, as a write requires.

        QBO refuses to save a record that points at an inactive customer, item or account
        (fault 610), even when the edit does not touch that reference.
        """
        try:
            self._check_references(entities.get(entity), record)
        except SandboxFault:
            return False
        return True

    def _check_references(self, ent: Entity, record: dict[str, Any]) -> None:
        wrapped = shapes.template_key(record) if ent.name == shapes.RECURRING else None
        if wrapped is not None:
            # A recurring template needs what the transaction it wraps needs.
            self._check_references(entities.get(wrapped), record[wrapped])
        for ref, target, target_id in entities.iter_reference_values(ent, record):
            if not ref.dependency:
                continue
            try:
                target_ent = entities.get(target)
            except entities.UnknownEntityError:
                continue
            if target_ent.is_singleton:
                continue
            found = self.store.get(self.realm_id, target_ent.name, target_id)
            if found is None:
                raise faults.not_found(
                    f"Object Not Found : Something you're trying to use has been made inactive. "
                    f"Check the fields with accounts, customers, items, vendors or employees. "
                    f"({ref.path} points at {target_ent.name} {target_id}, which does not exist)"
                )
            if target_ent.has_active and found.get("Active") is False:
                raise faults.not_found()

    def _check_payload(self, payload: object, ent: Entity) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise faults.request_error(
                f"The {ent.name} request body must be a JSON object, not {type(payload).__name__}."
            )
        return payload

    def _save(self, ent: Entity, record: dict[str, Any]) -> dict[str, Any]:
        """Store a flat record in its wire shape (:mod:`shapes`); returns what QBO would send."""
        stored = shapes.wire(ent.name, record)
        self.store.put(self.realm_id, ent.name, stored)
        return stored

    # --- derived fields ---------------------------------------------------------------------

    def _derive(self, ent: Entity, record: dict[str, Any], *, lines_changed: bool) -> None:
        """Fill the fields QBO computes: names, totals, balances, defaults."""
        record.setdefault("domain", "QBO")
        record["sparse"] = False
        if ent.has_active and ent.name not in _NO_ACTIVE_FIELD:
            record.setdefault("Active", True)
        if ent.name in _PARTY_NAMES and isinstance(record.get("DisplayName"), str):
            record.setdefault("PrintOnCheckName", _print_name(record))
        if ent.name in ("Customer", "Account", "Class", "Department", "Item"):
            name = record.get(ent.name_field or "")
            if isinstance(name, str):
                record["FullyQualifiedName"] = self._qualified_name(ent, record, name)
            if ent.name == "Customer":
                self._level(ent, record)
        if ent.kind is Kind.TRANSACTION:
            self._derive_transaction(ent, record, lines_changed=lines_changed)

    def _level(self, ent: Entity, record: dict[str, Any]) -> None:
        """A sub-customer's depth under its top-level parent (``Level``), as QBO computes it.

        The captures show it on customers only: a sub-account has a ParentRef and no Level.
        """
        parent = record.get("ParentRef")
        if not (isinstance(parent, dict) and parent.get("value")):
            record.pop("Level", None)
            return
        found = self.store.get(self.realm_id, ent.name, str(parent["value"]))
        above = found.get("Level") if found is not None else None
        record["Level"] = (above if isinstance(above, int) else 0) + 1

    def _qualified_name(self, ent: Entity, record: dict[str, Any], name: str) -> str:
        parent = record.get("ParentRef")
        if isinstance(parent, dict) and parent.get("value"):
            found = self.store.get(self.realm_id, ent.name, str(parent["value"]))
            if found is not None:
                parent_name = found.get("FullyQualifiedName") or found.get(ent.name_field or "")
                if isinstance(parent_name, str):
                    return f"{parent_name}:{name}"
        return name

    def _derive_transaction(
        self, ent: Entity, record: dict[str, Any], *, lines_changed: bool
    ) -> None:
        today = self.store.now(self.realm_id).astimezone(COMPANY_TZ).date()
        record.setdefault("TxnDate", today.isoformat())
        if ent.name != "TimeActivity":
            if "CurrencyRef" not in record:
                record["CurrencyRef"] = self.completion.home_currency()
        lines = record.get("Line")
        if ent.amount_field == "TotalAmt" and isinstance(lines, list):
            if ent.name == "JournalEntry":
                # QBO answers TotalAmt 0 for a journal entry, whatever its lines (the create
                # capture posts two lines of 100 and gets 0 back; every queried one reads 0).
                total = Decimal(0)
                self._check_balanced(lines)
            else:
                total = sum(
                    (
                        decimal_amount(line.get("Amount"))
                        for line in lines
                        if isinstance(line, dict) and line.get("DetailType") not in _SUMMARY_DETAILS
                    ),
                    Decimal(0),
                )
                tax = (record.get("TxnTaxDetail") or {}).get("TotalTax")
                total += decimal_amount(tax)
                if ent.name == "Deposit":
                    # Cash kept back from a deposit goes elsewhere: QBO's total is net of it.
                    total -= decimal_amount((record.get("CashBack") or {}).get("Amount"))
            if ent.name not in _CREDITED_LINES_TOTAL and (
                lines_changed or "TotalAmt" not in record
            ):
                record["TotalAmt"] = json_number(total)

    def _open_balance(
        self, ent: Entity, record: dict[str, Any], current: dict[str, Any] | None
    ) -> None:
        """The open balance: the total less what is applied to it.

        Nothing is applied on create; on update what the current version had applied stays
        applied, so editing the lines keeps the payments. A client's value is never taken.
        """
        if ent.name in _OPEN_BALANCE and "TotalAmt" in record:
            total = decimal_amount(record.get("TotalAmt"))
            for field in links.BALANCE_FIELDS:
                if field == "Balance" or ent.name == "CreditMemo":
                    used = Decimal(0)
                    if current is not None and field in current:
                        used = decimal_amount(current.get("TotalAmt")) - decimal_amount(
                            current[field]
                        )
                    record[field] = json_number(total - used)

    @staticmethod
    def _own_links(ent: Entity, record: dict[str, Any], current: dict[str, Any] | None) -> None:
        """Back-links are the server's: the client's are dropped, the current ones kept."""
        if ent.name in links.BACKLINK_TYPES:
            kept = links.owned_links(ent.name, (current or {}).get("LinkedTxn"))
            if "LinkedTxn" in record or kept:
                record["LinkedTxn"] = links.client_links(ent.name, record.get("LinkedTxn")) + kept

    def _apply_links(
        self,
        ent: Entity,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        skip: tuple[str, str] | None = None,
    ) -> None:
        """Update what a payment, bill payment or deposit applies to (see :mod:`links`).

        ``skip``: a target left alone, the one being voided or deleted (:meth:`_unapply_payers`).
        """
        old = links.applied(ent.name, before)
        new = links.applied(ent.name, after)
        if not old and not new:
            return
        source_id = str((after or before or {}).get("Id"))
        for key in sorted((old.keys() | new.keys()) - {skip}):
            target_name, target_id = key
            was, now = old.get(key), new.get(key)
            application = (now or was).application  # type: ignore[union-attr]
            current = self.store.get(self.realm_id, target_name, target_id)
            if current is None:
                continue
            record = {k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS}
            changed = False
            delta = (now.amount if now else Decimal(0)) - (was.amount if was else Decimal(0))
            if application.moves_balance and delta:
                for field in links.BALANCE_FIELDS:
                    if field in record:
                        record[field] = json_number(decimal_amount(record[field]) - delta)
                        changed = True
            if application.backlink is not None:
                owned = links.BACKLINK_TYPES.get(target_name, frozenset({application.backlink}))
                current_links = list(record.get("LinkedTxn") or [])
                mine = [
                    link
                    for link in current_links
                    if isinstance(link, dict)
                    and str(link.get("TxnId")) == source_id
                    and link.get("TxnType") in owned
                ]
                if now is None and mine:
                    record["LinkedTxn"] = [link for link in current_links if link not in mine]
                    changed = True
                elif now is not None and not mine:
                    record["LinkedTxn"] = [
                        *current_links,
                        {"TxnId": source_id, "TxnType": application.backlink},
                    ]
                    changed = True
            if changed:
                target = entities.get(target_name)
                self.completion.home_amounts(target, record)
                saved = self._save(target, self._next_version(target, current, record))
                if self.observer is not None:
                    self.observer(target.name, current, saved)
                when = str(saved["MetaData"]["LastUpdatedTime"])
                self.balances.moved(target, current, saved, when, ledger=False)

    def _unapply_payers(self, ent: Entity, target_id: str) -> None:
        """Unlink the payments and bill payments applying to a document being voided or deleted.

        An invoice or bill: what QBO does is not in the captures or the reference; the
        QuickBooks community answers (quickbooks.intuit.com learn-support threads on unlinking
        payments and on customer credits from unapplied payments) describe a payment that no
        longer pays a document as an unapplied credit on the customer, and no source says
        voiding or deleting the document deletes the payment; QuickBooks' help on voiding or
        deleting a bill says "When you delete a bill that you've already paid, QuickBooks
        creates a credit with the vendor". So each payer loses its line parts applying to the
        document (:func:`links.unlinked`), its amount now unapplied (a payment's
        ``UnappliedAmt`` grows, which moves the customer's ``Balance`` down by it; a bill
        payment has no such field, yet its unapplied amount moves the vendor's ``Balance``
        alike, :func:`completion.open_amount`).

        A credit memo or vendor credit (which QBO deletes but does not void): no capture shows
        one deleted while used; the payer loses the credit's line and the documents it paid
        lose what the credit covered (:func:`links.without_credit`), so they are owed again.

        Either way the payer gets a new version (SyncToken + 1, new ``LastUpdatedTime``, the
        observer told, as :meth:`_apply_links` stamps its targets) and the documents it still
        pays are moved by the difference.
        """
        for payer_name, txn_type in links.payers(ent.name):
            rows = self.store.query(
                "SELECT r.id_num FROM records r WHERE r.realm = ? AND r.entity = ? AND EXISTS ("
                " SELECT 1 FROM json_each(r.payload, '$.Line') l,"
                " json_each(l.value, '$.LinkedTxn') t"
                " WHERE json_extract(t.value, '$.TxnType') = ?"
                " AND CAST(json_extract(t.value, '$.TxnId') AS TEXT) = ?)"
                " ORDER BY r.id_num",
                (self.realm_id, payer_name, txn_type, target_id),
            )
            payer = entities.get(payer_name)
            unlink = links.without_credit if txn_type in links.CREDITS else links.unlinked
            for (id_num,) in rows:
                current = self._load(payer, str(id_num))
                if (ent.name, target_id) not in links.applied(payer.name, current):
                    continue  # a voided payer's zero lines apply nothing: left as they are
                record = {
                    k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS
                }
                record = unlink(record, txn_type, target_id)
                if "UnappliedAmt" in record or payer.name == "Payment":
                    record["UnappliedAmt"] = json_number(links.unapplied(record))
                self.completion.home_amounts(payer, record)
                saved = self._save(payer, self._next_version(payer, current, record))
                if self.observer is not None:
                    self.observer(payer.name, current, saved)
                self._apply_links(payer, current, saved, skip=(ent.name, target_id))
                self._move_balances(payer, current, saved)

    def _move_balances(
        self, ent: Entity, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """Move the running balances a write changed, stamped with the write's time."""
        meta = (after or {}).get("MetaData") or {}
        now = str(meta.get("LastUpdatedTime") or self._now_text())
        if ent.kind is Kind.TRANSACTION:
            self.balances.moved(ent, before, shapes.flat(ent.name, after) if after else None, now)
        elif after is not None:
            self.balances.name_written(ent, before, after, now)

    @staticmethod
    def _check_balanced(lines: list[Any]) -> None:
        debit = credit = Decimal(0)
        for line in lines:
            if not isinstance(line, dict):
                continue
            detail = line.get("JournalEntryLineDetail") or {}
            if detail.get("PostingType") == "Debit":
                debit += decimal_amount(line.get("Amount"))
            elif detail.get("PostingType") == "Credit":
                credit += decimal_amount(line.get("Amount"))
        if debit != credit:
            raise faults.business_validation(
                f"Transaction is not balanced: debits {debit} and credits {credit} must be equal."
            )

    # --- the operations ---------------------------------------------------------------------

    def create(self, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Create a record; returns it as stored (Id, SyncToken "0", MetaData assigned).

        Raises:
            SandboxFault: 2020, 610, 6240, 6000 or an unsupported operation.
        """
        ent = self._writable(entity, "Create")
        if ent.is_singleton:
            raise faults.unsupported_operation(
                f"Operation Create is not supported for {ent.name}: read it and update it."
            )
        payload = self._check_payload(payload, ent)
        record = {k: copy.deepcopy(v) for k, v in payload.items() if k not in _SERVER_FIELDS}
        self._check_required(ent, record)
        self._check_shape(ent, record)
        self._own_links(ent, record, None)
        with self.store.transaction():
            self._check_references(ent, record)
            tax_compute.compute_tax(self.store, self.realm_id, ent, record)
            self._derive(ent, record, lines_changed=True)
            self.completion.complete(ent, record, None)
            tax_rules.check_line_tax_codes(self.store, self.realm_id, ent, record)
            self._open_balance(ent, record, None)
            self.completion.home_amounts(ent, record)
            self._check_name(ent, record, None)
            now = self._now_text()
            record_id = self._new_id(ent, record)
            stored = {
                "domain": "QBO",
                "sparse": False,
                "Id": record_id,
                "SyncToken": "0",
                "MetaData": self._metadata(ent, {}, now),
                **{k: v for k, v in record.items() if k not in ("domain", "sparse")},
            }
            saved = self._save(ent, stored)
            self._apply_links(ent, None, saved)
            self._move_balances(ent, None, saved)
            return saved

    def update(
        self, entity: str, payload: dict[str, Any], *, sparse: bool = False
    ) -> dict[str, Any]:
        """Full or sparse update of a record; returns it with SyncToken + 1.

        A full update replaces every client field (omitted ones are cleared, except the ones
        QBO computes: :data:`_SERVER_KEPT`); a sparse update
        replaces only the top-level fields sent. Setting ``Active`` to false on a name-list
        record deactivates it (" (deleted)" appended), setting it true reactivates it.

        Raises:
            SandboxFault: 5010, 610, 2020, 2030, 6240, 6000 or an unsupported operation.
        """
        ent = self._writable(entity, "Update")
        payload = shapes.flat(ent.name, self._check_payload(payload, ent))
        with self.store.transaction():
            current = self._load(ent, payload.get("Id"))
            self._check_sync_token(current, payload.get("SyncToken"))
            changes = {k: copy.deepcopy(v) for k, v in payload.items() if k not in _SERVER_FIELDS}
            if sparse:
                record = {k: v for k, v in current.items() if k not in _SERVER_FIELDS}
                record.update(changes)
            else:
                record = changes
                for kept in _SERVER_KEPT.get(ent.name, ()):
                    if kept not in record and kept in current:
                        record[kept] = copy.deepcopy(current[kept])
                self._check_required(ent, record)
            self._check_shape(ent, record)
            if ent.name == shapes.EXCHANGE_RATE:
                # A rate is addressed by its currency and date: an update cannot move it.
                for field in _RATE_KEY_FIELDS:
                    record[field] = current.get(field)
            was_active = current.get("Active") is not False
            if ent.has_active:
                if ent.name not in _NO_ACTIVE_FIELD or "Active" in current:
                    record.setdefault("Active", True if not sparse else was_active)
                now_active = record.get("Active") is not False
                if was_active and not now_active:
                    self._mark_deleted(ent, record)
                elif now_active and not was_active:
                    self._unmark_deleted(ent, record)
            lines_changed = "Line" in changes or (not sparse and "TotalAmt" not in changes)
            self._own_links(ent, record, current)
            self._check_references(ent, record)
            if tax_compute.compute_tax(self.store, self.realm_id, ent, record):
                lines_changed = True  # QBO's tax, not the one sent: the total follows it
            self._derive(ent, record, lines_changed=lines_changed)
            self.completion.complete(ent, record, current)
            tax_rules.check_line_tax_codes(self.store, self.realm_id, ent, record)
            self._open_balance(ent, record, current)
            self.completion.home_amounts(ent, record)
            self._check_name(ent, record, str(current["Id"]))
            saved = self._save(ent, self._next_version(ent, current, record))
            self._apply_links(ent, current, saved)
            self._move_balances(ent, current, saved)
            return saved

    def save(self, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A POST of a record without an operation: an update if it names a stored record.

        A RecurringTransaction names its record inside the transaction it wraps
        (``{"Bill": {"Id": ...}}``). An ExchangeRate is named by its currency and date: a rate
        already stored is updated (its SyncToken checked), a new one created.

        Raises:
            SandboxFault: As :meth:`create` and :meth:`update` do.
        """
        ent = self._entity(entity)
        body = shapes.flat(ent.name, self._check_payload(payload, ent))
        if ent.name == shapes.EXCHANGE_RATE:
            stored = self.store.get(self.realm_id, ent.name, str(body.get("Id", "")))
            if stored is None:
                return self.create(ent.name, body)
        elif body.get("Id") in (None, ""):
            return self.create(ent.name, body)
        return self.update(ent.name, body, sparse=body.get("sparse") is True)

    def _new_id(self, ent: Entity, record: dict[str, Any]) -> str:
        """The id of a new record: the next number, or an exchange rate's currency and date."""
        if ent.name != shapes.EXCHANGE_RATE:
            return self.store.next_id(self.realm_id, ent.name)
        record.setdefault(
            "AsOfDate", self.store.now(self.realm_id).astimezone(COMPANY_TZ).date().isoformat()
        )
        key = shapes.rate_key(record)
        if key is None:
            raise faults.required_missing("SourceCurrencyCode")
        try:
            shapes.store_key(ent.name, key)
        except ValueError:
            raise faults.request_error(
                f"ExchangeRate SourceCurrencyCode and AsOfDate do not make a valid key: {key!r}"
            ) from None
        if self.store.get(self.realm_id, ent.name, key) is not None:
            raise faults.business_validation(
                f"An exchange rate for {key} exists already: update it with its SyncToken."
            )
        return key

    def _check_shape(self, ent: Entity, record: dict[str, Any]) -> None:
        """A recurring template wraps exactly one transaction, as QBO's do."""
        if ent.name == shapes.RECURRING and shapes.template_key(record) is None:
            raise faults.request_error(
                'A RecurringTransaction must wrap exactly one transaction, as {"Bill": {...}}.'
            )

    def _metadata(self, ent: Entity, meta: dict[str, Any], now: str) -> dict[str, Any]:
        """A new version's ``MetaData``: its times and, where QBO names one, who wrote it.

        In the captures' order: ``CreateTime``, ``LastModifiedByRef``, ``LastUpdatedTime``.
        """
        new_meta: dict[str, Any] = {"CreateTime": meta.get("CreateTime", now)}
        if ent.names_modifier:
            new_meta["LastModifiedByRef"] = {"value": self.user_id}
        new_meta["LastUpdatedTime"] = now
        return {**new_meta, **{k: v for k, v in meta.items() if k not in new_meta}}

    def _next_version(
        self, ent: Entity, current: dict[str, Any], record: dict[str, Any]
    ) -> dict[str, Any]:
        new_meta = self._metadata(ent, current.get("MetaData") or {}, self._now_text())
        return {
            "domain": "QBO",
            "sparse": False,
            "Id": str(current["Id"]),
            "SyncToken": str(int(str(current.get("SyncToken", "0"))) + 1),
            "MetaData": new_meta,
            **{k: v for k, v in record.items() if k not in ("domain", "sparse")},
        }

    def delete(self, entity: str, record_id: object, sync_token: object) -> dict[str, Any]:
        """Hard-delete a transaction (or other deletable record); keeps a CDC tombstone.

        ``record_id`` and ``sync_token`` are as the client sent them (a missing one is a fault).

        Returns:
            ``{"domain": "QBO", "status": "Deleted", "Id": ...}`` as the capture shows.

        Raises:
            SandboxFault: 610, 5010, 2020 or an unsupported operation.
        """
        ent = self._writable(entity, "Delete")
        if not ent.deletable:
            raise faults.unsupported_operation(
                f"Operation Delete is not supported for {ent.name}: "
                + ("deactivate it instead." if ent.has_active else "it cannot be removed.")
            )
        with self.store.transaction():
            current = self._load(ent, record_id)
            self._check_sync_token(current, sync_token)
            self._unapply_payers(ent, str(current["Id"]))
            self.store.tombstone(
                self.realm_id, ent.name, str(current["Id"]), self.store.now(self.realm_id)
            )
            self._apply_links(ent, current, None)
            self._move_balances(ent, current, None)
        return {"domain": "QBO", "status": "Deleted", "Id": str(current["Id"])}

    def void(self, entity: str, record_id: object, sync_token: object) -> dict[str, Any]:
        """Void a transaction: amounts and lines zeroed, ``PrivateNote`` "Voided".

        Raises:
            SandboxFault: 610, 5010, 2020 or an unsupported operation.
        """
        ent = self._writable(entity, "Void")
        if not ent.voidable:
            raise faults.unsupported_operation(f"Operation Void is not supported for {ent.name}.")
        with self.store.transaction():
            current = self._load(ent, record_id)
            self._check_sync_token(current, sync_token)
            record = {k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS}
            _zero(record)
            self._unapply_payers(ent, str(current["Id"]))
            saved = self._save(ent, self._next_version(ent, current, record))
            self._apply_links(ent, current, saved)
            self._move_balances(ent, current, saved)
            return saved

    def deactivate(self, entity: str, record_id: str) -> dict[str, Any]:
        """Make a name-list record inactive, " (deleted)" appended to its name.

        Raises:
            SandboxFault: 610 or an unsupported operation.
        """
        ent = self._writable(entity, "Deactivate")
        if not ent.has_active:
            raise faults.unsupported_operation(
                f"Operation Deactivate is not supported for {ent.name}."
            )
        with self.store.transaction():
            current = self._load(ent, record_id)
            if current.get("Active") is False:
                return current
            record = {k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS}
            record["Active"] = False
            self._mark_deleted(ent, record)
            return self._save(ent, self._next_version(ent, current, record))

    def reactivate(self, entity: str, record_id: str) -> dict[str, Any]:
        """Make an inactive record active again, " (deleted)" taken off its name.

        Raises:
            SandboxFault: 610, 6240 (an active record took the name) or unsupported operation.
        """
        ent = self._writable(entity, "Reactivate")
        if not ent.has_active:
            raise faults.unsupported_operation(
                f"Operation Reactivate is not supported for {ent.name}."
            )
        with self.store.transaction():
            current = self._load(ent, record_id)
            if current.get("Active") is not False:
                return current
            record = {k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS}
            record["Active"] = True
            self._unmark_deleted(ent, record)
            self._check_name(ent, record, str(current["Id"]))
            return self._save(ent, self._next_version(ent, current, record))

    def server_update(self, entity: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A change QBO makes itself as the consequence of another write.

        Deleting an invoice reopens the estimate it came from; deleting a payment takes its
        line out of the deposit that held it. QBO makes these changes whatever the record
        points at (an inactive item on the estimate, say), so no reference is checked: the
        record gets ``changes`` and a new version, and the observer is told.

        Raises:
            SandboxFault: 610 if the record does not exist.
        """
        ent = self._entity(entity)
        with self.store.transaction():
            current = self._load(ent, record_id)
            record = {k: copy.deepcopy(v) for k, v in current.items() if k not in _SERVER_FIELDS}
            record.update(copy.deepcopy(changes))
            saved = self._save(ent, self._next_version(ent, current, record))
            self._move_balances(ent, current, saved)
        if self.observer is not None:
            self.observer(ent.name, current, saved)
        return saved

    def update_singleton(self, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Update CompanyInfo or Preferences (sparse when the payload says so).

        Raises:
            SandboxFault: 5010, 610 or 2020.
        """
        ent = self._entity(entity)
        payload = self._check_payload(payload, ent)
        return self.update(ent.name, payload, sparse=payload.get("sparse") is True)

    @staticmethod
    def _name_fields(ent: Entity) -> tuple[str, ...]:
        fields = [ent.name_field] if ent.name_field else []
        if ent.name in _PARTY_NAMES or ent.name in ("Account", "Class", "Department", "Item"):
            fields.append("FullyQualifiedName")
        return tuple(f for f in fields if f)

    def _mark_deleted(self, ent: Entity, record: dict[str, Any]) -> None:
        for field in self._name_fields(ent):
            value = record.get(field)
            if isinstance(value, str) and not value.endswith(DELETED_SUFFIX):
                record[field] = value + DELETED_SUFFIX

    def _unmark_deleted(self, ent: Entity, record: dict[str, Any]) -> None:
        for field in self._name_fields(ent):
            value = record.get(field)
            if isinstance(value, str) and value.endswith(DELETED_SUFFIX):
                record[field] = value[: -len(DELETED_SUFFIX)]


def _zero(record: dict[str, Any]) -> None:
    """Zero a voided transaction as the captures show: amounts, quantities, prices, balance."""
    for key in ("TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "UnappliedAmt"):
        if key in record:
            record[key] = 0
    record["TotalAmt"] = 0
    if "TxnTaxDetail" in record:
        record["TxnTaxDetail"] = {"TotalTax": 0}
    if "LinkedTxn" in record:
        record["LinkedTxn"] = []
    record["PrivateNote"] = "Voided"
    for line in record.get("Line") or []:
        if not isinstance(line, dict):
            continue
        line["Amount"] = 0
        detail_key = line.get("DetailType")
        detail = line.get(detail_key) if isinstance(detail_key, str) else None
        if isinstance(detail, dict):
            for key in ("Qty", "UnitPrice"):
                if key in detail:
                    detail[key] = 0
