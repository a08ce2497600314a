"""Running balances of names, moved live by the transactions, as QBO keeps them.

QBO keeps a running balance on three name-lists and moves it with every transaction that
changes it (create, update, delete, void):

- a customer's ``Balance``: its open invoices less its open credit memos and unapplied payments
  (:data:`completion.OPEN_DOCUMENTS`, :meth:`Completion.open_balance`), and
  ``BalanceWithJobs``: its own balance plus its jobs' (sub-customers'), so a job's invoice
  moves its parents too;
- a vendor's ``Balance``: its open bills less its open vendor credits and what its bill
  payments paid and no longer apply (a paid bill deleted, :func:`completion.open_amount`);
- an account's ``CurrentBalance``: the debit-positive sum of its postings (the reports' posting
  rules, :func:`reports.postings`, one source of truth with the TrialBalance) for a
  balance-sheet account, 0 for an income or expense account, and
  ``CurrentBalanceWithSubAccounts``: its own plus its sub-accounts'. ``query_account_all.json``
  shows the signs (A/P -2202.67, Loan Payable -4000) and the zeros of income and expense.

What the captures show of the record, and so what a backup sees: the name keeps its
``SyncToken`` but its ``MetaData.LastUpdatedTime`` becomes the time of the transaction that moved
it (``query_customer_all_2026.json``: Cool Cars, SyncToken 0, last updated when payment 120 was
created; invoice 129 of the job 0969 Ocean View Road stamps the job and its parent Freeman
Sporting Goods alike; ``query_account_all.json``: Undeposited Funds at payment 180's time,
Savings at deposit 121's, both SyncToken 0), and an edit of a transaction that does not move the
balance leaves the name alone (Geeta Kalapatapu's invoice edited weeks later). So CDC and
``MetaData.LastUpdatedTime`` queries return the name again with its new balance, as full reads
do. The sandbox does the same: the names are rewritten in place with the new balance and
time, the same SyncToken, and reported to the write's observer like any derived change.

Balances are maintained on write, as differences: a transaction's postings and its open amount
before and after the write (and the open amount of each document a payment applies to), so a
write costs no scan of the company. Amounts are the transactions' own (the reports post those,
without exchange rates); a foreign-currency customer's balance is in its currency.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.sandbox import reports
from qbo_pipeline.sandbox.completion import (
    OPEN_DOCUMENTS,
    decimal_amount,
    json_number,
    open_amount,
)
from qbo_pipeline.sandbox.store import SandboxStore

__all__ = ["RunningBalances", "account_balances", "chart_of"]

_WITH_CHILDREN = {"Customer": "BalanceWithJobs", "Account": "CurrentBalanceWithSubAccounts"}
"""The running balance that adds the sub-records' (jobs', sub-accounts')."""

_OWN = {"Customer": "Balance", "Vendor": "Balance", "Account": "CurrentBalance"}

Observer = Callable[[str, dict[str, Any], dict[str, Any]], None]

_CHART_LISTS = ("Account", "Item", "TaxRate", "TaxAgency", "TaxCode", "Preferences")
"""What the posting rules read (:meth:`reports.Chart.from_store`)."""

_CHARTS: weakref.WeakKeyDictionary[SandboxStore, dict[str, tuple[tuple, reports.Chart]]] = (
    weakref.WeakKeyDictionary()
)
"""A store's charts per realm, with the fingerprint of the lists they were built from."""


def chart_of(store: SandboxStore, realm_id: str) -> reports.Chart:
    """The realm's chart, built again only when an account, item or tax list was written.

    The fingerprint is each list's count and latest update time, but for accounts, whose update
    time a balance move changes too: their SyncTokens (which every edit bumps and a balance move
    does not; a balance move needs no new chart).
    """
    placeholders = ", ".join("?" for _ in _CHART_LISTS)
    fingerprint = tuple(
        store.query(
            "SELECT entity, count(*), max(id_num), CASE WHEN entity = 'Account' THEN total("
            "CASE WHEN entity = 'Account' THEN json_extract(payload, '$.SyncToken') END"
            ") ELSE max(updated) END"
            f" FROM records WHERE realm = ? AND entity IN ({placeholders})"
            " GROUP BY entity ORDER BY entity",
            (realm_id, *_CHART_LISTS),
        )
    )
    charts = _CHARTS.setdefault(store, {})
    cached = charts.get(realm_id)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    chart = reports.Chart.from_store(store, realm_id)
    charts[realm_id] = (fingerprint, chart)
    return chart


def _parent(record: dict[str, Any] | None) -> str | None:
    ref = (record or {}).get("ParentRef")
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def account_balances(
    chart: reports.Chart, transactions: Iterable[tuple[str, dict[str, Any]]]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Every account's ``(CurrentBalance, CurrentBalanceWithSubAccounts)`` from scratch.

    Args:
        chart: The company's chart (accounts, items, tax lists).
        transactions: ``(entity, payload)`` of every transaction of the company.

    Returns:
        Per account id of the chart: its own balance (0 unless it is a balance-sheet account)
        and that plus its sub-accounts' balances.
    """
    own: dict[str, int] = defaultdict(int)
    for entity, txn in transactions:
        for account, amount in reports.postings(entity, txn, chart):
            facts = chart.accounts.get(account)
            if facts is not None and facts.classification in reports.BALANCE_SHEET_CLASSES:
                own[account] += amount
    with_subs: dict[str, int] = defaultdict(int)
    for account, amount in own.items():
        node: str | None = account
        seen: set[str] = set()
        while node and node in chart.accounts and node not in seen:
            seen.add(node)
            with_subs[node] += amount
            node = chart.accounts[node].parent
    return {
        account: (Decimal(own.get(account, 0)) / 100, Decimal(with_subs.get(account, 0)) / 100)
        for account in chart.accounts
    }


class RunningBalances:
    """Moves the running balances of one realm's names after each transaction write."""

    def __init__(
        self,
        store: SandboxStore,
        realm_id: str,
        observer: Observer | None = None,
    ) -> None:
        """Bind to a realm; ``observer`` is told of every name a balance move rewrote."""
        self.store = store
        self.realm_id = realm_id
        self.observer = observer

    # --- the entry points -------------------------------------------------------------------

    def moved(
        self,
        ent: Entity,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        now: str,
        *,
        ledger: bool = True,
    ) -> None:
        """Move the balances a transaction's write changed (``before``/``after``: None if absent).

        Args:
            ent: The transaction's entity (other entities are ignored).
            before: Its version before the write (flat), None on create.
            after: Its version after the write, None on delete.
            now: The write's time (``MetaData.LastUpdatedTime`` of what it changed).
            ledger: False when only its open amount can have changed (a payment applied to
                it), not its postings.
        """
        if ent.kind is not Kind.TRANSACTION:
            return
        changes: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
        if ent.name in OPEN_DOCUMENTS:
            self._party_moves(ent.name, before, after, changes)
        if ledger and ent.posts_to_ledger:
            self._account_moves(ent, before, after, changes)
        self._write(changes, now)

    def name_written(
        self, ent: Entity, before: dict[str, Any] | None, after: dict[str, Any], now: str
    ) -> None:
        """A customer or account saved under another parent moves both parents' totals.

        Its own ``BalanceWithJobs`` or ``CurrentBalanceWithSubAccounts`` leaves the old parent
        and its ancestors and joins the new ones.
        """
        field = _WITH_CHILDREN.get(ent.name)
        old, new = _parent(before), _parent(after)
        if field is None or old == new:
            return
        amount = decimal_amount(after.get(field))
        changes: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
        if old is not None:
            self._up(ent.name, old, field, -amount, changes)
        if new is not None:
            self._up(ent.name, new, field, amount, changes)
        self._write(changes, now)

    # --- customers and vendors --------------------------------------------------------------

    def _party_moves(
        self,
        entity: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        changes: dict[tuple[str, str], dict[str, Decimal]],
    ) -> None:
        """Move the party's Balance by the document's open amount after less before."""
        party, _, sign = OPEN_DOCUMENTS[entity]
        delta: dict[str, Decimal] = defaultdict(Decimal)
        for weight, txn in ((-1, before), (1, after)):
            party_id = reports.party_of(party, txn) if txn else ""
            if party_id and txn:
                delta[party_id] += weight * sign * open_amount(entity, txn)
        for party_id, amount in sorted(delta.items()):
            record = self._get(party, party_id, changes) if amount else None
            if record is None:
                continue
            changes[(party, party_id)]["Balance"] = record["Balance"] + amount
            if party == "Customer":
                self._up(party, party_id, "BalanceWithJobs", amount, changes)

    # --- accounts ---------------------------------------------------------------------------

    def _account_moves(
        self,
        ent: Entity,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        changes: dict[tuple[str, str], dict[str, Decimal]],
    ) -> None:
        chart = chart_of(self.store, self.realm_id)
        delta: dict[str, int] = defaultdict(int)
        for sign, txn in ((-1, before), (1, after)):
            if txn:
                for account, amount in reports.postings(ent.name, txn, chart):
                    delta[account] += sign * amount
        for account, cents in sorted(delta.items()):
            facts = chart.accounts.get(account)
            if not cents or facts is None:
                continue
            if facts.classification not in reports.BALANCE_SHEET_CLASSES:
                continue
            record = self._get("Account", account, changes)
            if record is None:
                continue
            moved = Decimal(cents) / 100
            changes[("Account", account)]["CurrentBalance"] = record["CurrentBalance"] + moved
            self._up("Account", account, "CurrentBalanceWithSubAccounts", moved, changes)

    # --- shared -----------------------------------------------------------------------------

    def _get(
        self, entity: str, record_id: str, changes: dict[tuple[str, str], dict[str, Decimal]]
    ) -> dict[str, Decimal] | None:
        """The balances of a name as moved so far in this write (None if it does not exist)."""
        found = self.store.get(self.realm_id, entity, record_id)
        if found is None:
            return None
        fields = (_OWN[entity], *((_WITH_CHILDREN[entity],) if entity in _WITH_CHILDREN else ()))
        current = {field: decimal_amount(found.get(field)) for field in fields}
        current.update(changes.get((entity, record_id), {}))
        return current

    def _up(
        self,
        entity: str,
        record_id: str,
        field: str,
        amount: Decimal,
        changes: dict[tuple[str, str], dict[str, Decimal]],
    ) -> None:
        """Add ``amount`` to ``field`` of a record and of each of its ancestors."""
        seen: set[str] = set()
        node: str | None = record_id
        while node and node not in seen:
            seen.add(node)
            record = self._get(entity, node, changes)
            if record is None:
                return
            changes[(entity, node)][field] = record[field] + amount
            node = _parent(self.store.get(self.realm_id, entity, node))

    def _write(self, changes: dict[tuple[str, str], dict[str, Decimal]], now: str) -> None:
        """Rewrite each moved name: new balances and LastUpdatedTime, the same SyncToken."""
        for (entity, record_id), fields in sorted(changes.items()):
            current = self.store.get(self.realm_id, entity, record_id)
            if current is None:
                continue
            moved = {f: json_number(v) for f, v in fields.items()}
            if all(decimal_amount(current.get(f)) == v for f, v in fields.items()):
                continue
            meta = dict(current.get("MetaData") or {})
            meta["LastUpdatedTime"] = now
            saved = {**current, **moved, "MetaData": meta}
            self.store.put(self.realm_id, entity, saved)
            if self.observer is not None:
                self.observer(entities.get(entity).name, current, saved)
