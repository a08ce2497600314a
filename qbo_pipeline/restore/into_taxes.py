"""Sales tax rebuilt in the new company of a restore ``--into`` (#20): agencies, codes, rates.

QBO computes a transaction's tax itself from its tax codes' rates ("QuickBooks Online
automatically calculates tax and returns the amount in the TxnTaxDetail.TotalTax attribute of
the transaction based on the TaxCode assigned to each line", Intuit's non-US sales tax guide;
a total tax sent is not kept, python-quickbooks#301). So the tax carries over only if the
transactions keep codes with the same rates. The plan:

- matches a tax agency by name, else creates it (``POST taxagency``);
- matches a tax code by name *and* rates (each rate's value, sales or purchase), a tax rate by
  name and value; a code the new company lacks is created through QBO's TaxService
  (``POST taxservice/taxcode``) with its rates: a rate another step already maps or creates is
  named by its id, a new one by name, value and agency (the agency through the id map). A name
  the new company already gives a code or rate with other rates gets `` (restored)``;
- puts the new TaxCode and TaxRate ids in the id map, so transactions keep their codes and QBO
  computes the same tax.

What truly cannot be rebuilt falls back to the company's code without tax
(:mod:`~qbo_pipeline.restore.into_refs`), and its step says why: a code without rates (QBO's
pseudo codes, matched by name in a company of the same country), a rate whose value changed over
time (``EffectiveTaxRate``: TaxService sets one value), a rate or agency missing from the
snapshot, and any code of a company in another country (each country's tax model is its own).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan_steps import Draft, qbo_id

if TYPE_CHECKING:
    from qbo_pipeline.restore.plan_into import IntoPlanner

RATE_LISTS = {"SalesTaxRateList": "Sales", "PurchaseTaxRateList": "Purchase"}
"""A tax code's rate lists, by what TaxService calls their ``TaxApplicableOn``."""

RESTORED = " (restored)"
"""Added to a created code's or rate's name the new company already uses otherwise."""

_WRITES = (Action.CREATE, Action.UPDATE, Action.MAP)


def code_rates(code: dict[str, Any]) -> list[tuple[str, str]]:
    """``(TaxApplicableOn, rate id)`` of a tax code's rates, sales first, in order."""
    out = []
    for key, applicable in RATE_LISTS.items():
        for detail in (code.get(key) or {}).get("TaxRateDetail") or []:
            rid = ((detail or {}).get("TaxRateRef") or {}).get("value")
            if rid not in (None, ""):
                out.append((applicable, str(rid)))
    return out


def _value(rate: dict[str, Any] | None) -> Decimal | None:
    raw = (rate or {}).get("RateValue")
    try:
        return Decimal(str(raw)) if raw is not None and not isinstance(raw, bool) else None
    except ArithmeticError:
        return None


def rate_history(rate: dict[str, Any]) -> list[Decimal]:
    """The distinct values a rate had over time (``EffectiveTaxRate``), empty when none."""
    found: list[Decimal] = []
    for entry in rate.get("EffectiveTaxRate") or []:
        value = _value(entry if isinstance(entry, dict) else None)
        if value is not None and value not in found:
            found.append(value)
    return found


class TaxRebuild:
    """The tax part of one :class:`~qbo_pipeline.restore.plan_into.IntoPlanner`."""

    def __init__(self, planner: IntoPlanner) -> None:
        """Work on ``planner``'s drafts, id map and the two companies it reads."""
        self.p = planner
        self._live_rates: dict[str, dict[str, Any]] | None = None
        self._owner: dict[str, tuple[str, str, str]] = {}
        self._users: list[tuple[Draft, set[tuple[str, str, str]]]] = []

    # --- matching -----------------------------------------------------------------------------

    def live_rates(self) -> dict[str, dict[str, Any]]:
        """The new company's tax rates by id (read once)."""
        if self._live_rates is None:
            rate = entities.ENTITIES["TaxRate"]
            self._live_rates = {qbo_id(rate, r): r for r in self.p.target.iter_records(rate)}
        return self._live_rates

    def _signature(
        self, code: dict[str, Any], rates: dict[str, dict[str, Any]]
    ) -> list[tuple[str, Decimal | None]]:
        return sorted(((a, _value(rates.get(r))) for a, r in code_rates(code)), key=str)

    def equivalent(self, entity: Entity, snap: dict[str, Any], live: dict[str, Any]) -> bool:
        """Whether a record of the new company with ``snap``'s name charges the same tax."""
        if entity.name == "TaxRate":
            return _value(snap) == _value(live)
        if entity.name == "TaxCode":
            return self._signature(snap, self.p._records("TaxRate")) == self._signature(
                live, self.live_rates()
            )
        return True

    # --- planning -----------------------------------------------------------------------------

    def draft(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft:
        """The step of a tax code or rate the new company lacks (called once per record)."""
        if entity.name == "TaxRate":
            return self._rate(entity, rid, snap)
        return self._code(entity, rid, snap)

    def _unsupported(self, entity: Entity, rid: str, snap: dict[str, Any], why: str) -> Draft:
        return self.p._add(Draft(entity, rid, Action.UNSUPPORTED, why, target=snap))

    def _elsewhere(self) -> str | None:
        wanted, has = self.p._countries()
        if wanted and has and wanted != has:
            return (
                f"the snapshot's company is in {wanted} and this one in {has}: each country "
                "has its own sales tax model, so its tax codes are not rebuilt here"
            )
        return None

    def _rate(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft:
        """A rate is created with the first tax code that uses it (its step says so)."""
        why = self._elsewhere() or self._rate_problem(snap)
        if why:
            return self._unsupported(entity, rid, snap, why)
        return self.p._add(
            Draft(
                entity,
                rid,
                Action.CREATE,
                "created with the first tax code that uses it, through QBO's TaxService",
                target=snap,
            )
        )

    def _rate_problem(self, rate: dict[str, Any]) -> str | None:
        history = rate_history(rate)
        if len(history) > 1:
            values = ", ".join(f"{v}%" for v in history)
            return (
                f"tax rate {rate.get('Name')!r} changed over time ({values}) and QBO's TaxService "
                "sets one value, so transactions of another period would be taxed at the wrong "
                "rate"
            )
        if _value(rate) is None:
            return f"tax rate {rate.get('Name')!r} has no RateValue"
        agency = str((rate.get("AgencyRef") or {}).get("value") or "")
        if not agency:
            return f"tax rate {rate.get('Name')!r} names no tax agency, which TaxService needs"
        found = self.p._visit(entities.ENTITIES["TaxAgency"], agency)
        if found is None or found.action not in _WRITES:
            return (
                f"tax rate {rate.get('Name')!r} is filed with TaxAgency {agency}, which the new "
                "company will not have"
            )
        return None

    def _code(self, entity: Entity, rid: str, snap: dict[str, Any]) -> Draft:
        name = str(snap.get("Name") or rid)
        why = self._elsewhere()
        rates = code_rates(snap)
        if why is None and not rates:
            why = (
                "it has no rates (a code QBO gives every company of its country) and TaxService "
                "creates a code only with rates"
            )
        rate_entity = entities.ENTITIES["TaxRate"]
        found: list[tuple[str, str, Draft | None]] = []
        for applicable, rate_id in rates if why is None else []:
            rate = self.p._visit(rate_entity, rate_id)
            if rate is None or rate.action not in _WRITES:
                why = (
                    rate.reason
                    if rate is not None
                    else f"its tax rate {rate_id} is not in the snapshot"
                )
                break
            found.append((applicable, rate_id, rate))
        if why is not None:
            return self._unsupported(
                entity, rid, snap, f"tax code {name!r} cannot be rebuilt here: {why}"
            )
        draft = Draft(entity, rid, Action.CREATE, "", target=snap)
        details: list[dict[str, Any]] = []
        for applicable, rate_id, rate in found:
            assert rate is not None
            owner = self._owner.get(rate_id)
            if rate.action is not Action.CREATE or owner is not None:
                details.append({"TaxRateId": rate_id, "TaxApplicableOn": applicable})
                draft.depends.add(owner or rate.key)
                continue
            record = rate.target or {}
            agency = str((record.get("AgencyRef") or {}).get("value"))
            agency_draft = self.p.drafts[("TaxAgency", agency, "main")]
            if agency_draft.action is not Action.MAP:
                draft.depends.add(agency_draft.key)
            detail = {
                "TaxRateName": self._free_name(rate_entity, str(record.get("Name") or rate_id)),
                "RateValue": record.get("RateValue"),
                "TaxAgencyId": agency,
                "TaxApplicableOn": applicable,
            }
            details.append(detail)
            rate.payload = dict(detail)
            rate.depends.add(draft.key)
            rate.reason = (
                f"created with tax code {name!r} (its step), through QBO's TaxService, at "
                f"{record.get('RateValue')}%; TaxService cannot set its description, so QBO's "
                "own stands"
            )
            rate.departs.append("Description")
            if detail["TaxRateName"] != record.get("Name"):
                rate.reason += (
                    f"; named {detail['TaxRateName']!r}: the new company's rate of that name "
                    "has another value"
                )
                rate.departs.append("Name")
                draft.departs += [k for k in RATE_LISTS if k not in draft.departs]
            self._owner[rate_id] = draft.key
        code_name = self._free_name(entity, name)
        draft.payload = {"TaxCode": code_name, "TaxRateDetails": details}
        rates_text = ", ".join(
            f"{(r.target or {}).get('Name')} {(r.target or {}).get('RateValue')}%"
            for _, _, r in found
            if r is not None
        )
        draft.reason = (
            f"created in the new company through QBO's TaxService with its rate(s) {rates_text}: "
            "transactions keep it, so QBO computes the same tax"
        )
        if code_name != name:
            draft.reason += f"; named {code_name!r}: the new company's {name!r} has other rates"
            draft.departs.append("Name")
        return self.p._add(draft)

    def _free_name(self, entity: Entity, name: str) -> str:
        """``name``, or with :data:`RESTORED` when the new company uses it for other rates."""
        key = (name.strip().casefold(),)
        return name + RESTORED if self.p._existing(entity).get(key) else name

    def visit_used(self) -> None:
        """Plan every tax code (then rate) a written record uses, in the plan's scope or not."""
        used: dict[str, set[str]] = {"TaxCode": set(), "TaxRate": set()}
        self._users = []
        for draft in list(self.p.drafts.values()):
            if not draft.action.writes or not draft.payload or draft.entity.created_through:
                continue
            keys = set()
            for site in remap.reference_sites(draft.entity, draft.payload):
                if site.target in used and not site.is_backlink:
                    used[site.target].add(site.target_id)
                    keys.add((site.target, site.target_id, "main"))
            if keys:
                self._users.append((draft, keys))
        for name in ("TaxCode", "TaxRate"):
            for rid in sorted(used[name]):
                if rid in self.p._records(name):
                    self.p._visit(entities.ENTITIES[name], rid)

    def order_users(self) -> None:
        """Order every record that names a created tax code or rate after its step.

        Tax references are not dependencies in the catalogue (a record can be written without
        them), but one sent before its code's step ran would carry the snapshot's id.
        """
        for draft, keys in self._users:
            for key in keys:
                found = self.p.drafts.get(key)
                if found is not None and found.action is Action.CREATE and found.payload:
                    draft.depends.add(key)

    def finish(self) -> None:
        """Mark the rates no rebuilt tax code took as not written (TaxService needs a code)."""
        for draft in list(self.p.drafts.values()):
            if (
                draft.entity.name == "TaxRate"
                and draft.action is Action.CREATE
                and draft.payload is None
            ):
                draft.action = Action.UNSUPPORTED
                draft.reason = (
                    "no tax code of the snapshot that is rebuilt uses it, and QBO creates a tax "
                    "rate only with a tax code (TaxService): create it by hand if it matters"
                )


def service_body(payload: dict[str, Any], id_map: Any) -> dict[str, Any]:
    """The TaxService request of a planned tax code, its ids the new company's.

    Raises:
        ValueError: If a rate or agency it names has no new id yet.
    """
    details = []
    for detail in payload.get("TaxRateDetails") or []:
        out = dict(detail)
        for key, entity in (("TaxRateId", "TaxRate"), ("TaxAgencyId", "TaxAgency")):
            if key in out:
                new_id = id_map.get(entity, str(out[key]))
                if new_id is None:
                    raise ValueError(
                        f"tax code {payload.get('TaxCode')!r} needs {entity} {out[key]}, which "
                        "has no id in the new company yet"
                    )
                out[key] = new_id
        details.append(out)
    return {"TaxCode": payload.get("TaxCode"), "TaxRateDetails": details}


def created_rates(
    payload: dict[str, Any], answer: dict[str, Any], rate_steps: dict[str, str]
) -> dict[str, str]:
    """``{old rate id: new id}`` of the rates a tax code's TaxService answer created.

    Args:
        payload: The planned request (rates by ``TaxRateName`` or ``TaxRateId``).
        answer: QBO's answer, its ``TaxRateDetails`` in the order sent.
        rate_steps: Old rate id by the ``TaxRateName`` the plan creates it with.
    """
    out = {}
    for sent, got in zip(
        payload.get("TaxRateDetails") or [], answer.get("TaxRateDetails") or [], strict=False
    ):
        name = sent.get("TaxRateName")
        if name in rate_steps and got.get("TaxRateId"):
            out[rate_steps[name]] = str(got["TaxRateId"])
    return out
