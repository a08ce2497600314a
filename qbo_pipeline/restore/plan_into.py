"""Plan the rebuild of a snapshot inside another company (``restore plan --into REALM``).

Ids of the source company mean nothing in the target, so nothing is matched by id. Every record
of the snapshot (or of the chosen entities, with what they need) becomes a create, in the
catalogue's dependency order (parents before children, invoices before the payments that pay
them, payments before deposits), except the records a new company already has: its default
accounts (full name, AccountType and AccountSubType), terms, payment methods, tax codes and rates,
items and currencies, matched by name (tax codes and rates by name and rates), which become a
mapping to the existing record (and an update when the snapshot's content differs and the
entity is writable). A tax code the new company lacks is created through QBO's TaxService with
its rates (:mod:`~qbo_pipeline.restore.into_taxes`). Every reference is written through the id
map (:mod:`~qbo_pipeline.restore.remap`) at apply time; what cannot be rebuilt (a tax code of a
company in another country) is handled as :mod:`~qbo_pipeline.restore.into_refs` says, and the
plan is refused if a payload would still carry an id of the source company.

What QBO's API cannot write is a step that says so, with its effect and what to do by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.lake import records
from qbo_pipeline.restore import into_refs, into_taxes, payloads, remap
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.into_applications import cap_applications
from qbo_pipeline.restore.into_balances import note_unpaid_balances
from qbo_pipeline.restore.model import Action, Phase, Plan
from qbo_pipeline.restore.plan import book_close_date
from qbo_pipeline.restore.plan_reads import LiveCompany, SnapshotReader
from qbo_pipeline.restore.plan_steps import (
    Draft,
    RevertWording,
    number_steps,
    qbo_id,
    singleton_revert,
)

MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "Account": ("FullyQualifiedName", "AccountType", "AccountSubType"),
    "Term": ("Name",),
    "PaymentMethod": ("Name",),
    "TaxCode": ("Name",),
    "TaxRate": ("Name",),
    "TaxAgency": ("DisplayName",),
    "CustomerType": ("Name",),
    "CompanyCurrency": ("Code",),
    "Item": ("Name",),
}
"""The fields a record of the snapshot is matched by to a record the target company already
has (a new company's defaults); names compare without regard to case, as QBO's do. An account
is matched by its full name (parents included): QBO's chart repeats names under other parents."""

CANNOT_WRITE: dict[str, str] = {
    "ReimburseCharge": (
        "QBO makes a reimbursable charge from a billable expense line and its API cannot "
        "create one: the customer's billable expense is missing until then; mark the expense "
        "line billable again in QBO by hand"
    ),
    "TaxPayment": (
        "QBO's API cannot record a sales tax payment: the sales tax liability stays higher by "
        "its amount; record it by hand in Taxes > Payments"
    ),
    "ExchangeRate": (
        "exchange rates come from QBO's currency feed and are not re-created: each restored "
        "transaction carries its own rate, so the books are unaffected; set custom rates by "
        "hand in Settings > Currencies if they matter"
    ),
}
"""Entities restore into another company does not write, and what that means for the books."""

INTO_WORDING = RevertWording(
    update="{count} writable setting(s) set as in the snapshot",
    blocked="; not writable through the API: {blocked}",
    unwritable=(
        "differs only in settings QBO's API cannot write: {blocked}; set them in QBO by hand"
    ),
    unchanged="the new company's settings already match the snapshot",
)
"""How a restore into another company explains the settings it writes."""

_HOME_AMOUNTS = ("ExchangeRate", "HomeTotalAmt", "HomeBalance")
"""What QBO adds to a transaction in a foreign currency (its rate and home-currency amounts)."""

_VOIDED_NOTE = "Voided"
"""What QBO writes in a voided transaction's ``PrivateNote``."""


class IntoError(ValueError):
    """A restore into another company that cannot be planned (the message says why)."""


@dataclass
class IntoRequest:
    """What to rebuild where.

    Attributes:
        source_realm_id: The company whose lake holds the snapshot.
        target_realm_id: The company written to.
        snapshot_id: The snapshot to rebuild.
        latest_snapshot_id: The newest snapshot of the source when planning.
        entities: Only these entities (and what they need); empty: everything.
        company_name: The target company's name, for display.
        target_transactions: How many transactions the target already holds (a new company
            has none; the plan warns when it has some).
    """

    source_realm_id: str
    target_realm_id: str
    snapshot_id: str
    latest_snapshot_id: str | None = None
    entities: tuple[str, ...] = ()
    company_name: str | None = None
    target_transactions: int = 0


def match_key(entity: Entity, payload: dict[str, Any]) -> tuple[str, ...] | None:
    """The key ``payload`` is matched by in the target company, or None if it is not matched."""
    fields = MATCH_KEYS.get(entity.name)
    if not fields:
        return None
    name = payloads.without_deleted_suffix(entity, payload)
    values = tuple(str(name.get(f) or "").strip().casefold() for f in fields)
    return values if values[0] else None


def is_voided(entity: Entity, payload: dict[str, Any]) -> bool:
    """Whether a transaction was voided (QBO zeroes it and notes "Voided")."""
    if entity.kind is not Kind.TRANSACTION or not entity.voidable:
        return False
    amount = payload.get(entity.amount_field or "TotalAmt")
    return payload.get("PrivateNote") == _VOIDED_NOTE and not amount


class IntoPlanner:
    """Builds one plan of a restore into another company; use :func:`build_into_plan`."""

    def __init__(self, target: LiveCompany, lake: SnapshotReader, request: IntoRequest) -> None:
        self.target = target
        self.lake = lake
        self.req = request
        self.sid = request.snapshot_id
        self.drafts: dict[tuple[str, str, str], Draft] = {}
        self.id_map = remap.IdMap()
        self.notes: list[str] = []
        self.close_date: date | None = None
        self._snap: dict[str, dict[str, dict[str, Any]]] = {}
        self._index: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]] = {}
        self._claimed: set[tuple[str, str]] = set()
        self._visiting: set[tuple[str, str]] = set()
        self._voided: set[tuple[str, str]] = set()
        self._no_tax: dict[str, Any] | None = None
        self._substituted: dict[str, str] = {}
        self._tax_codes: dict[tuple[str, str, str], dict[str, bool]] = {}
        self._available: set[str] = set()
        self._taxes = into_taxes.TaxRebuild(self)

    # --- reading ------------------------------------------------------------------------------

    def _records(self, name: str) -> dict[str, dict[str, Any]]:
        """The snapshot's records of an entity by id (read once)."""
        if name not in self._snap:
            entity = entities.ENTITIES[name]
            self._snap[name] = (
                {records.record_id(entity, p): p for p in self.lake.iter(self.sid, name)}
                if name in self._available
                else {}
            )
        return self._snap[name]

    def _existing(self, entity: Entity) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        """The target's records of a matched entity by match key (read once)."""
        if entity.name not in self._index:
            index: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for record in self.target.iter_records(entity):
                key = match_key(entity, record)
                if key is not None:
                    index.setdefault(key, []).append(record)
            self._index[entity.name] = index
        return self._index[entity.name]

    # --- classifying --------------------------------------------------------------------------

    def _add(self, draft: Draft) -> Draft:
        self.drafts[draft.key] = draft
        return draft

    def _visit(self, entity: Entity, rid: str) -> Draft | None:
        """The main draft of a snapshot record, classified on first sight."""
        key = (entity.name, rid, "main")
        if key in self.drafts:
            return self.drafts[key]
        snap = self._records(entity.name).get(rid)
        if snap is None or (entity.name, rid) in self._visiting:
            return None
        self._visiting.add((entity.name, rid))
        try:
            return self._classify(entity, rid, snap)
        finally:
            self._visiting.discard((entity.name, rid))

    def _classify(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft:
        if entity.is_singleton:
            return self._singleton(entity, rid, snap)
        matched = self._match(entity, rid, snap)
        if matched is not None:
            return matched
        if entity.name in CANNOT_WRITE:
            return self._add(Draft(entity, rid, Action.UNSUPPORTED, CANNOT_WRITE[entity.name]))
        if entity.created_through:
            return self._taxes.draft(entity, rid, snap)
        if entity.read_only:
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.UNSUPPORTED,
                    f"QBO's API cannot create {entity.name} records and the company has none "
                    f"named {payloads.name_of(entity, snap)!r}: create it in QBO by hand, then "
                    "set it on the records that use it",
                    target=snap,
                )
            )
        blocked = self._blocked(entity, rid, snap)
        if blocked:
            return self._add(Draft(entity, rid, Action.UNSUPPORTED, blocked, target=snap))
        reason = "created in the new company (it gets a new id)"
        if entity.name == "Attachable" and snap.get("FileName"):
            reason = "file uploaded from the lake; " + reason
        if is_voided(entity, snap):
            self._voided.add((entity.name, rid))
            reason += (
                "; voided in the snapshot: QBO's API cannot create a voided transaction, so it "
                "is created with its voided (zero) content, then voided"
            )
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.CREATE,
                reason,
                target=snap,
                payload=self._create_payload(entity, snap),
            )
        )
        if entity.has_active and snap.get("Active") is False:
            draft.reason += "; created active, deactivated at the end as in the snapshot"
            self._final_deactivate(draft)
        self._resolve(draft)
        return draft

    @staticmethod
    def _create_payload(entity: Entity, snap: dict[str, Any]) -> dict[str, Any]:
        """What creates ``snap``: created active (deactivated at the end when it was not)."""
        body = remap.drop_backlinks(entity, payloads.create_payload(entity, snap))
        if "Active" not in snap:
            body.pop("Active", None)  # as the snapshot: a record QBO keeps without the flag
        return body

    def _blocked(self, entity: Entity, rid: str, snap: dict[str, Any]) -> str | None:
        if "Line" in entity.required and not snap.get("Line"):
            # Voided or not: QBO keeps a voided transaction's lines zeroed (the void captures),
            # so only one that lost them (a bill payment whose bills were deleted) has none.
            reason = (
                f"it has no lines (a bill payment whose bills or vendor credits were deleted "
                f"keeps none) and QBO's API cannot create a {entity.name} without one: enter it "
                "by hand if it matters"
            )
            paid = snap.get("TotalAmt")
            if entity.name == "BillPayment" and paid not in (None, 0, "0"):
                # Its amount, paid and applied to nothing, is a credit with the vendor (#20).
                reason += (
                    f"; its TotalAmt {paid} is a credit with the vendor, so the vendor's "
                    "Balance in the new company is that much higher"
                )
            return reason
        if self.close_date and entity.kind is Kind.TRANSACTION:
            raw = str(snap.get("TxnDate") or "")[:10]
            if raw and raw <= self.close_date.isoformat():
                return (
                    f"dated {raw}, in a closed period of the new company (books closed through "
                    f"{self.close_date.isoformat()}): reopen the period in QBO and plan again"
                )
        if entity.name == "Attachable" and snap.get("FileName"):
            sha = self.lake.blob_of(self.sid, rid)
            if not sha or not self.lake.has_blob(sha):
                return (
                    f"the bytes of attachment {snap.get('FileName')!r} are not in the lake, so "
                    "it cannot be uploaded; attach the file again by hand"
                )
        return None

    def _match(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft | None:
        """Map a record to the target's record of the same name (and type), if there is one."""
        key = match_key(entity, snap)
        if key is None:
            return None
        found = [
            r
            for r in self._existing(entity).get(key, [])
            if (entity.name, qbo_id(entity, r)) not in self._claimed
            and self._taxes.equivalent(entity, snap, r)
        ]
        if not found:
            return None
        live = found[0]
        live_id = qbo_id(entity, live)
        self._claimed.add((entity.name, live_id))
        self.id_map.set(entity.name, rid, live_id)
        label = " / ".join(str(snap.get(f) or "") for f in MATCH_KEYS[entity.name])
        rewritten = remap.rewrite(entity, snap, self.id_map)
        wanted = (
            {**rewritten, "Active": live.get("Active", True)} if entity.has_active else rewritten
        )
        if entity.read_only or payloads.identical(
            entity, payloads.without_deleted_suffix(entity, wanted), live
        ):
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.MAP,
                    f"the new company already has {entity.name} {live_id} ({label}): "
                    "references are mapped to it",
                    live=live,
                    target=snap,
                )
            )
        changes = field_changes(
            payloads.comparable(entity, live), payloads.comparable(entity, rewritten)
        )
        token = payloads.version_of(entity, live)[1] or "0"
        body = payloads.without_deleted_suffix(entity, {**snap, "Active": True})
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.UPDATE,
                f"the new company already has {entity.name} {live_id} ({label}): mapped to it "
                "and updated to the snapshot's content",
                live=live,
                target=snap,
                changes=changes,
                payload=remap.drop_backlinks(
                    entity,
                    payloads.update_payload(entity, body, live_id=live_id, sync_token=token),
                ),
            )
        )
        if entity.has_active and snap.get("Active") is False:
            self._final_deactivate(draft)
        self._resolve(draft)
        return draft

    def _singleton(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft:
        """CompanyInfo or Preferences: the snapshot's writable settings by a sparse update."""
        live = self.target.singleton(entity)
        changes = field_changes(
            payloads.comparable(entity, live), payloads.comparable(entity, snap)
        )
        # Closing the books first would refuse every earlier transaction of the rebuild.
        closing = [c for c in changes if c.path.startswith("AccountingInfoPrefs.BookCloseDate")]
        if closing:
            changes = [c for c in changes if c not in closing]
            self.notes.append(
                f"the snapshot's books were closed through {closing[0].snapshot}: the closing "
                "date is not set by the restore (it would refuse the earlier transactions); set "
                "it by hand in Settings > Advanced once the restore is verified"
            )
        return self._add(singleton_revert(entity, rid, snap, live, changes, INTO_WORDING))

    def _final_deactivate(self, after: Draft) -> None:
        key = (after.entity.name, after.old_id, "final")
        draft = self.drafts.get(key) or self._add(
            Draft(
                after.entity,
                after.old_id,
                Action.DEACTIVATE,
                "inactive in the snapshot: deactivated once the records that need it exist",
                phase=Phase.DEACTIVATE,
                role="final",
                target=after.target,
            )
        )
        draft.depends.add(after.key)

    def _resolve(self, draft: Draft) -> None:
        """Order ``draft`` after what it references; it cannot be written if one cannot be."""
        assert draft.target is not None
        here = (draft.entity.name, draft.old_id)
        for name, target_id in remap.dependencies(draft.entity, draft.target):
            other = entities.ENTITIES.get(name)
            if other is None or (name, target_id) == here:
                continue
            needed = self._visit(other, target_id)
            if needed is None:
                if target_id in self._records(name) or not other.keyed_by_id:
                    continue  # a reference cycle through a parent: ordered by the catalogue
                continue  # neither in the snapshot nor mapped: _carry_references decides
            if needed.action in (Action.UNSUPPORTED, Action.SKIP) and needed.live is None:
                draft.action = Action.UNSUPPORTED
                draft.reason = f"needs {name} {target_id}, which cannot be created: {needed.reason}"
                draft.payload = None
                return
            if needed.action.writes:
                draft.depends.add(needed.key)
            final = self.drafts.get((name, target_id, "final"))
            if final is not None:
                final.depends.add(draft.key)

    def _note_currencies(self, preferences: dict[str, Any]) -> None:
        """Say so when the snapshot used multicurrency and the target company does not."""
        snap = (
            next(iter(self._records("Preferences").values()), {})
            if "Preferences" in self._available
            else {}
        )
        wanted = (snap.get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
        has = (preferences.get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
        if wanted and not has:
            self.notes.append(
                "the snapshot's company used multicurrency and this one does not: this plan "
                "cannot turn it on (it does not write CurrencyPrefs), so QBO refuses the "
                "records in other currencies; turn multicurrency on in QBO first (Settings, "
                "Account and settings, Advanced, Currency; it can never be turned off again), "
                "then plan again"
            )

    def _note_home_currency(self, preferences: dict[str, Any]) -> None:
        """Say what a home currency other than the snapshot's does to its transactions.

        QBO fixes a company's home currency when it is created. A transaction in the
        snapshot's home currency is a foreign-currency one in the new company: QBO gives it an
        exchange rate and home-currency amounts the snapshot does not have (the step's
        ``departs``), and its books in the new home currency are not the snapshot's.
        """
        snap = next(iter(self._records("Preferences").values()), {})
        wanted = ((snap.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
        has = ((preferences.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
        if not wanted or not has or wanted == has:
            return
        count = 0
        for draft in self.drafts.values():
            if draft.entity.kind is not Kind.TRANSACTION or not draft.action.writes:
                continue
            currency = ((draft.payload or {}).get("CurrencyRef") or {}).get("value") or wanted
            if currency != wanted or draft.payload is None:
                continue
            count += 1
            draft.departs += [p for p in _HOME_AMOUNTS if p not in draft.departs]
            draft.reason += (
                f"; in {wanted}, a foreign currency in this {has} company: QBO adds its "
                f"exchange rate and {has} amounts"
            )
        self.notes.append(
            f"the snapshot's home currency is {wanted} and this company's {has} (QBO fixes it "
            f"when a company is created): {count} transaction(s) in {wanted} are created as "
            f"foreign-currency ones at QBO's {wanted} rate of their date, so their amounts in "
            f"{wanted} carry over and the books in {has} are not the snapshot's; transactions "
            f"in other currencies keep the snapshot's rates, which are to {wanted}. If QBO "
            f"refuses {wanted}, add it in Settings > Currencies and apply again"
        )

    def _substitute_tax_code(self, old_id: str, name: str) -> bool:
        """Send tax code ``old_id`` as the target's code without tax; False if it has none."""
        if self._no_tax is None:
            return False
        self.id_map.set("TaxCode", old_id, qbo_id(entities.ENTITIES["TaxCode"], self._no_tax))
        self._substituted[old_id] = name
        return True

    def _known(self) -> set[tuple[str, str]]:
        """``(entity, old id)`` of what the new company will have: mapped or created."""
        mapped = {tuple(k.split(":", 1)) for k in self.id_map.to_json()}
        created = {
            (d.entity.name, d.old_id) for d in self.drafts.values() if d.action is Action.CREATE
        }
        return {(str(e), str(i)) for e, i in mapped} | created

    def _carry_references(self) -> None:
        """Map or take out every reference that would be sent with a source company's id.

        See :mod:`~qbo_pipeline.restore.into_refs`: tax codes the target lacks go to its code
        without tax, a transaction's tax detail leaves out what the target lacks, other
        optional references are left out, and a record needing what the target will not have
        is not written. Each record's step says so.
        """
        tax_code = entities.ENTITIES["TaxCode"]
        self._no_tax = into_refs.no_tax_code(self.target.iter_records(tax_code))
        self._taxes.visit_used()
        self._taxes.finish()
        self._taxes.order_users()
        for draft in list(self.drafts.values()):
            if (
                draft.entity is tax_code
                and draft.action is not Action.CREATE
                and self.id_map.get("TaxCode", draft.old_id) is None
            ):
                name = payloads.name_of(tax_code, draft.target or {}) or draft.old_id
                why = draft.reason
                if self._substitute_tax_code(draft.old_id, name):
                    assert self._no_tax is not None
                    draft.reason = (
                        f"{why}: references to it go to the new company's code without tax, "
                        f"{self._no_tax.get('Name')!r} ({qbo_id(tax_code, self._no_tax)}), and "
                        "transactions leave it out of their tax detail, so QBO charges them no "
                        "tax; set the right code by hand"
                    )
        writing = [
            d for d in self.drafts.values() if d.action.writes and d.payload and not d.sparse
        ]
        needs: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for draft in writing:  # one walk of each payload's references
            own = (draft.entity.name, draft.old_id)
            deps: dict[tuple[str, str], None] = {}
            codes: dict[str, bool] = {}
            for site in remap.reference_sites(draft.entity, draft.payload or {}):
                if site.is_dependency and (site.target, site.target_id) != own:
                    deps.setdefault((site.target, site.target_id), None)
                if site.target == "TaxCode" and not site.is_backlink:
                    line = site.reference.path != into_refs.TXN_TAX_CODE
                    codes[site.target_id] = codes.get(site.target_id, False) or line
            needs[draft.key] = list(deps)
            self._tax_codes[draft.key] = codes
            for code in codes:  # a code referenced but not in the snapshot
                if self.id_map.get("TaxCode", code) is None:
                    if ("TaxCode", code, "main") not in self.drafts:
                        self._substitute_tax_code(code, code)
        changed = True
        while changed:  # a record that cannot be written takes down those that need it
            changed = False
            known = self._known()
            for draft in writing:
                if draft.payload is None:
                    continue
                missing = next((n for n in needs[draft.key] if n not in known), None)
                if missing is not None:
                    self._cannot_write(draft, missing)
                    changed = True
        for draft in self.drafts.values():
            if draft.entity.name == "Preferences" and draft.payload and draft.action.writes:
                self._carry_settings(draft)
        known = self._known()
        for draft in writing:
            if draft.payload is not None:
                self._carry(
                    draft, into_refs.carry(draft.entity, draft.payload, known, self._substituted)
                )

    def _carry_settings(self, draft: Draft) -> None:
        """Map the ids the snapshot's settings name (default terms) to the new company's.

        The settings are written first, before any record is created: a setting naming a
        record the restore creates keeps the new company's own value, and the step says so.
        """
        assert draft.payload is not None
        for path, target, holder, old_id in into_refs.setting_references(draft.payload):
            group, key = path.split(".")
            new_id = self.id_map.get(target, old_id)
            if new_id is not None:
                draft.payload[group] = {**holder, key: {"value": new_id}}
                continue
            kept = ((draft.live or {}).get(group) or {}).get(key)
            draft.payload[group] = {k: v for k, v in holder.items() if k != key}
            if kept is not None:
                draft.payload[group][key] = kept
            draft.departs.append(path)
            record = self._records(target).get(old_id) or {}
            name = payloads.name_of(entities.ENTITIES[target], record) if record else old_id
            draft.reason += (
                f"; {path} names {target} {name!r}, which the restore creates after the "
                "settings: the new company's own is kept; set it by hand after the restore"
            )

    def _cannot_write(self, draft: Draft, needed: tuple[str, str]) -> None:
        name, old_id = needed
        draft.action = Action.UNSUPPORTED
        draft.payload = None
        other = self.drafts.get((name, old_id, "main"))
        draft.reason = (
            f"needs {name} {old_id}, which is not written: {other.reason}"
            if other is not None
            else f"needs {name} {old_id}, which is neither in snapshot {self.sid} nor in the new "
            "company (its id there would name another record or none): create it by hand, "
            "then this record"
        )
        self.drafts.pop((draft.entity.name, draft.old_id, "final"), None)

    def _carry(self, draft: Draft, carried: into_refs.Carried) -> None:
        """Say in ``draft``'s reason what its payload leaves out."""
        draft.departs += [p for p in carried.departs if p not in draft.departs]
        payload = draft.payload or {}
        codes = self._tax_codes.get(draft.key, {})
        lines = sorted(c for c, on_line in codes.items() if on_line and c in self._substituted)
        if lines and self._no_tax is not None:
            draft.reason += (
                f"; its tax code(s) {', '.join(self._substituted[c] for c in lines)} do not exist "
                f"in {self._target_place()}: sent as {self._no_tax.get('Name')!r} (no tax)"
            )
        if carried.tax_codes or carried.tax_rates:
            total = (payload.get("TxnTaxDetail") or {}).get("TotalTax")
            what = [f"tax code {n!r}" for n in carried.tax_codes.values()]
            if carried.tax_rates:
                rates = ", ".join(carried.tax_rates)
                what.append(f"{len(carried.tax_rates)} tax line(s) of rate(s) {rates}")
            draft.reason += (
                f"; sales tax: its {' and '.join(what)} are not in the new company and are left "
                "out of its tax detail; QBO calculates the tax from the codes, not from the "
                f"total tax sent ({total}), so the total, the amount owed and the sales tax "
                f"liability are lower by the tax it does not charge; set its tax by hand"
            )
        if carried.dropped:
            draft.reason += (
                f"; left out: {', '.join(carried.dropped)}, which the new company does not "
                "have: set it by hand"
            )

    def _target_place(self) -> str:
        """``a CA company`` when the target is in another country, else ``the new company``."""
        wanted, has = self._countries()
        return f"a {has} company" if wanted and has and wanted != has else "the new company"

    def _countries(self) -> tuple[str | None, str | None]:
        snap = next(iter(self._records("CompanyInfo").values()), {})
        return _country(snap), _country(self.target.singleton(entities.ENTITIES["CompanyInfo"]))

    def _note_taxes(self) -> None:
        """Say plainly which tax codes do not carry over, and what the plan does instead.

        Tax codes and rates are read-only in QBO's API and each country has its own (a US
        company's ``TAX``/``NON``, a Canadian one's GST/HST codes).
        """
        if not self._substituted:
            return
        used: dict[str, int] = {}
        for key, codes in self._tax_codes.items():
            draft = self.drafts[key]
            if draft.entity.kind is not Kind.TRANSACTION or draft.action is not Action.CREATE:
                continue
            for code in codes:
                if code in self._substituted:
                    used[code] = used.get(code, 0) + 1
        listed = ", ".join(
            f"{self._substituted[c]} ({used.get(c, 0)})" for c in sorted(self._substituted)
        )
        instead = (
            f"sent as its code without tax, {self._no_tax.get('Name')!r}"
            if self._no_tax is not None
            else "left out"
        )
        wanted, has = self._countries()
        if wanted and has and wanted != has:
            self.notes.append(
                f"the snapshot's company is in {wanted} and this one in {has}: sales tax does not "
                "carry over between countries (each country's tax codes and rates follow its "
                "own tax model). The snapshot's tax codes, with the number of "
                f"transactions using each: {listed}, are {instead}; QBO charges those "
                "transactions no tax, so their totals are lower by it. Set each one's "
                f"{has} tax code by hand after the restore (the verification lists what it left "
                f"out), or restore into a {wanted} company"
            )
            return
        self.notes.append(
            "tax code(s) the snapshot uses cannot be rebuilt in the new company (each step "
            f"says why): {listed} (transactions using each); they are {instead}, and QBO "
            "charges those transactions no tax, so their totals are lower by it. Set up the "
            "codes in QBO's tax centre and set them on the records by hand"
        )

    def _creates_of(self, forms: tuple[str, ...]) -> Iterator[tuple[Draft, dict[str, Any]]]:
        """The drafts that create a record of one of ``forms``, each with its payload."""
        for draft in self.drafts.values():
            if (
                draft.entity.name in forms
                and draft.action is Action.CREATE
                and draft.payload is not None
            ):
                yield draft, draft.payload

    def _note_filled_addresses(self) -> None:
        """Say which sales forms QBO gives addresses the snapshot's records do not have.

        A create that leaves out ``BillAddr`` or ``ShipAddr`` gets the customer's (its
        ``ShipAddr``, else its ``BillAddr``), as QBO's create captures show; a snapshot's form
        without one, of a customer that has one, so departs from the snapshot there.
        """
        customers = self._records("Customer")
        for draft, _ in self._creates_of(into_refs.SALES_FORMS):
            source = draft.target or {}
            customer = customers.get(str((source.get("CustomerRef") or {}).get("value"))) or {}
            filled = [
                field
                for field in ("BillAddr", "ShipAddr")
                if not source.get(field)
                and (customer.get(field) or customer.get("BillAddr"))
                and field not in draft.departs
            ]
            if filled:
                draft.departs += filled
                draft.reason += (
                    f"; QBO gives it its customer's {' and '.join(filled)}, which the "
                    "snapshot's record does not have"
                )

    def _note_purchase_tax(self) -> None:
        """Say which purchases QBO gives a tax detail the snapshot's US ones do not have.

        Outside the US, QBO computes a purchase's tax from its lines' codes and adds a
        ``TxnTaxDetail`` (of no tax where the codes carry none, as the US ones sent as the
        company's code without tax do): that part of the record departs from the snapshot.
        """
        wanted, has = self._countries()
        if wanted != "US" or not has or has == "US":
            return
        for draft, payload in self._creates_of(into_refs.PURCHASE_FORMS):
            if into_refs.PURCHASE_TAX in payload:
                continue
            draft.departs += [into_refs.PURCHASE_TAX]
            draft.reason += (
                f"; a purchase in a {has} company gets the tax detail QBO computes from its "
                f"lines' codes, which the snapshot's {wanted} purchase does not have"
            )

    # --- building -----------------------------------------------------------------------------

    def build(self, *, preferences: dict[str, Any], live_read_at: datetime) -> Plan:
        """Classify every record in scope and order the steps into a plan."""
        self.close_date = book_close_date(preferences)
        self._available = self.lake.entities(self.sid)
        unknown = [n for n in self.req.entities if n not in entities.ENTITIES]
        if unknown:
            raise IntoError(f"unknown entities: {', '.join(unknown)}")
        wanted = set(self.req.entities) or set(entities.ENTITIES)
        for name in entities.restore_order():
            if name not in wanted or name not in self._available:
                continue
            entity = entities.ENTITIES[name]
            for rid in sorted(self._records(name)):
                self._visit(entity, rid)
        if self.req.target_transactions:
            self.notes.insert(
                0,
                f"company {self.req.target_realm_id} is not new: it already holds "
                f"{self.req.target_transactions} transaction(s), and the rebuild adds the "
                "snapshot's beside them (nothing is matched by id); restore into a new company "
                "unless that is what you want",
            )
        self._carry_references()
        cap_applications(self.drafts.values())
        self._note_currencies(preferences)
        self._note_home_currency(preferences)
        self._note_taxes()
        self._note_purchase_tax()
        self._note_filled_addresses()
        if self._voided:
            self.notes.append(
                f"{len(self._voided)} voided transaction(s) are created with their voided "
                "(zero) content and voided right after: QBO's API cannot create a transaction "
                "voided, and what they held before the void is not in the snapshot"
            )
        if any(
            d.entity.name == "Item" and (d.target or {}).get("TrackQtyOnHand")
            for d in self.drafts.values()
        ):
            self.notes.append(
                "inventory items are created with the snapshot's quantity on hand and date; "
                "the quantity history before it (purchases and sales that moved it) is not "
                "rebuilt through the API: check the items' quantities after the restore"
            )
        for name, why in CANNOT_WRITE.items():
            count = sum(1 for k in self.drafts if k[0] == name)
            if count:
                self.notes.append(f"{count} {name} record(s) are not written: {why}")
        steps = number_steps(self.drafts, self.id_map, self.lake, self.sid)
        note_unpaid_balances(steps, lambda name, rid: self._records(name).get(rid))
        for step in steps:
            step.void_after = (
                step.action is Action.CREATE and (step.entity, step.old_id) in self._voided
            )
        plan = Plan(
            plan_id="",
            realm_id=self.req.target_realm_id,
            source_realm_id=self.req.source_realm_id,
            snapshot_id=self.sid,
            latest_snapshot_id=self.req.latest_snapshot_id,
            incident_snapshot_id=None,
            scope={"kind": "into", "entities": list(self.req.entities)},
            live_read_at=live_read_at.isoformat(),
            created_at=datetime.now(UTC).isoformat(),
            steps=steps,
            id_map=self.id_map.to_json(),
            notes=self.notes,
            options={"into": self.req.target_realm_id},
            book_close_date=self.close_date.isoformat() if self.close_date else None,
            company_name=self.req.company_name,
        )
        digest = hashlib.blake2b(
            orjson.dumps(plan.to_json(), option=orjson.OPT_SORT_KEYS, default=str),
            digest_size=4,
        ).hexdigest()
        plan.plan_id = f"{self.sid}-{digest}"
        foreign = into_refs.foreign_references(plan)
        if foreign:
            raise IntoError(
                "the plan would send ids of the source company the new company does not "
                f"have ({len(foreign)}): {', '.join(foreign[:5])}"
            )
        return plan


def _country(company: dict[str, Any]) -> str | None:
    """A CompanyInfo's country code (``US``, ``CA``...), from ``Country`` or its address."""
    raw = company.get("Country") or (company.get("CompanyAddr") or {}).get("Country")
    return str(raw).strip().upper() or None if raw else None


def build_into_plan(
    target: LiveCompany,
    lake: SnapshotReader,
    request: IntoRequest,
    *,
    preferences: dict[str, Any] | None = None,
) -> Plan:
    """Plan the rebuild of ``request.snapshot_id`` inside the target company (nothing written).

    Args:
        target: The company written to (read-only use here).
        lake: The source company's snapshots.
        request: Source, target, snapshot and entities.
        preferences: The target's Preferences (read from ``target`` when not given).

    Raises:
        IntoError: If an entity name is unknown.
    """
    prefs = (
        preferences
        if preferences is not None
        else target.singleton(entities.ENTITIES["Preferences"])
    )
    planner = IntoPlanner(target, lake, request)
    return planner.build(preferences=prefs, live_read_at=target.server_time())
