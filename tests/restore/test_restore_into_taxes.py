"""Sales tax of a restore into another company (#20): rebuilt, or the plan says what instead.

A US snapshot with its own tax agency, codes (California, Tucson) and rates, planned into a new
US company (only QBO's pseudo codes TAX and NON: the codes are created through TaxService) and
into a new Canadian one (GST/HST codes whose ids 3 to 7 collide with the snapshot's: nothing
carries over between countries). In-memory stand-ins (tests/restore/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.into_refs import foreign_references, rewrite_settings
from qbo_pipeline.restore.model import Action, Phase, Plan
from qbo_pipeline.restore.plan_into import IntoRequest, build_into_plan
from tests.restore.conftest import DictLake, DictLive, company

SID = "20260501T000000.000000Z"


def _rec(entity: str, payload: dict[str, Any]) -> tuple[tuple[str, str], dict[str, Any]]:
    meta = {"CreateTime": "2026-01-01T10:00:00-07:00", "LastUpdatedTime": "2026-01-01T10:00:00Z"}
    return (entity, payload["Id"]), {**payload, "SyncToken": "0", "MetaData": meta}


def _code(code_id: str, name: str, taxable: bool, rates: tuple[str, ...] = ()) -> dict[str, Any]:
    detail = [{"TaxRateRef": {"value": r}, "TaxTypeApplicable": "TaxOnAmount"} for r in rates]
    return {
        "Id": code_id,
        "Name": name,
        "Taxable": taxable,
        "TaxGroup": bool(rates),
        "Active": True,
        **({"SalesTaxRateList": {"TaxRateDetail": detail}} if code_id.isdigit() else {}),
    }


def _rate(rate_id: str, name: str, value: float, agency: str = "1") -> dict[str, Any]:
    return {"Id": rate_id, "Name": name, "RateValue": value, "AgencyRef": {"value": agency}}


def us_snapshot() -> dict[tuple[str, str], dict[str, Any]]:
    """The small company with a US sales tax set-up, a taxed invoice and a taxable customer."""
    recs = company()
    recs.update(
        dict(
            [
                _rec("TaxAgency", {"Id": "1", "DisplayName": "Arizona Dept. of Revenue"}),
                _rec("TaxRate", _rate("1", "AZ State tax", 7.1)),
                _rec("TaxRate", _rate("2", "Tucson City", 2)),
                _rec("TaxRate", _rate("3", "California", 8)),
                _rec("TaxCode", _code("2", "California", True, ("3",))),
                _rec("TaxCode", _code("3", "Tucson", True, ("1", "2"))),
                _rec("TaxCode", _code("TAX", "TAX", True)),
                _rec("TaxCode", _code("NON", "NON", False)),
            ]
        )
    )
    recs.update(dict([_rec("CompanyInfo", {"Id": "1", "CompanyName": "Amy's", "Country": "US"})]))
    recs[("Customer", "1")]["DefaultTaxCodeRef"] = {"value": "2"}
    recs[("Customer", "2")]["DefaultTaxCodeRef"] = {"value": "3"}
    invoice = recs[("Invoice", "130")]
    invoice["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "TAX"}
    invoice["TotalAmt"] = 297
    invoice["TxnTaxDetail"] = {
        "TxnTaxCodeRef": {"value": "2"},
        "TotalTax": 22,
        "TaxLine": [
            {
                "Amount": 22,
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": "3"},
                    "PercentBased": True,
                    "TaxPercent": 8,
                    "NetAmountTaxable": 275,
                },
            }
        ],
    }
    recs[("Invoice", "131")]["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "NON"}
    recs[("Invoice", "131")]["TxnTaxDetail"] = {"TotalTax": 0}
    return recs


def new_us_company() -> dict[tuple[str, str], dict[str, Any]]:
    return dict(
        [_rec("TaxCode", _code("TAX", "TAX", True)), _rec("TaxCode", _code("NON", "NON", False))]
    )


def new_ca_company() -> dict[tuple[str, str], dict[str, Any]]:
    """QBO's Canadian defaults: Out of Scope, Exempt, Zero-rated, GST, HST ON (ids 3 to 7)."""
    return dict(
        [
            _rec("TaxAgency", {"Id": "1", "DisplayName": "Canada Revenue Agency"}),
            _rec("TaxRate", {"Id": "1", "Name": "GST (Sales)", "RateValue": 5}),
            _rec("TaxRate", {"Id": "3", "Name": "HST ON (Sales)", "RateValue": 13}),
            _rec("TaxRate", {"Id": "7", "Name": "Exempt (Sales)", "RateValue": 0}),
            _rec("TaxCode", _code("3", "Out of Scope", False)),
            _rec("TaxCode", _code("4", "Exempt", False, ("7",))),
            _rec("TaxCode", _code("6", "GST", True, ("1",))),
            _rec("TaxCode", _code("7", "HST ON", True, ("3",))),
        ]
    )


class CountryLive(DictLive):
    """A new company of a country (its CompanyInfo says which)."""

    def __init__(self, records: dict[tuple[str, str], dict[str, Any]], country: str) -> None:
        super().__init__(records)
        self.country = country

    def singleton(self, entity: entities.Entity) -> dict[str, Any]:
        if entity.name == "CompanyInfo":
            return {"Id": "1", "CompanyName": "New", "Country": self.country}
        return super().singleton(entity)


def plan_into(target: dict[tuple[str, str], dict[str, Any]]) -> Plan:
    country = "CA" if ("TaxCode", "3") in target else "US"
    request = IntoRequest(source_realm_id="111", target_realm_id="222", snapshot_id=SID)
    live = CountryLive(target, country)
    return build_into_plan(live, DictLake({SID: us_snapshot()}), request, preferences={})


def unmapped_ids(plan: Plan) -> list[tuple[str, str, str, str]]:
    """``(step, path, entity, id)`` of every reference a written payload sends with an id of
    the source company that is neither in the plan's id map nor created by one of its steps.

    Independent of the planner's own check: what apply would send as it is.
    """
    created = {(s.entity, s.old_id) for s in plan.steps if s.action is Action.CREATE}
    found = []
    for step in plan.steps:
        if not step.action.writes or not step.payload or step.sparse:
            continue
        entity = entities.ENTITIES[step.entity]
        for site in remap.reference_sites(entity, step.payload):
            if site.is_backlink or site.target == "CompanyCurrency":
                continue
            key = (site.target, site.target_id)
            if f"{site.target}:{site.target_id}" in plan.id_map or key in created:
                continue
            found.append((step.key, site.reference.path, *key))
    return found


@pytest.mark.parametrize("target", [new_us_company, new_ca_company], ids=["US", "CA"])
def test_no_payload_sends_a_source_id_the_id_map_does_not_map(target):
    plan = plan_into(target())
    assert unmapped_ids(plan) == []
    assert foreign_references(plan) == []


def test_into_a_us_company_the_codes_are_created_through_tax_service():
    plan = plan_into(new_us_company())
    steps = {(s.entity, s.old_id): s for s in plan.steps if s.phase is not Phase.DEACTIVATE}
    numbers = {(s.entity, s.old_id): s.number for s in plan.steps}
    # TAX and NON exist in every US company: mapped by name (and their lack of rates).
    assert plan.id_map["TaxCode:TAX"] == "TAX" and plan.id_map["TaxCode:NON"] == "NON"
    # The agency is created; California and Tucson through TaxService, with their rates,
    # the agency by its snapshot id (mapped when the step runs); the rate Tucson shares with
    # no other code goes with Tucson.
    assert steps[("TaxAgency", "1")].action is Action.CREATE
    california, tucson = steps[("TaxCode", "2")], steps[("TaxCode", "3")]
    assert california.action is Action.CREATE and tucson.action is Action.CREATE
    assert california.payload == {
        "TaxCode": "California",
        "TaxRateDetails": [
            {
                "TaxRateName": "California",
                "RateValue": 8,
                "TaxAgencyId": "1",
                "TaxApplicableOn": "Sales",
            }
        ],
    }
    assert [d["TaxRateName"] for d in tucson.payload["TaxRateDetails"]] == [
        "AZ State tax",
        "Tucson City",
    ]
    assert numbers[("TaxAgency", "1")] in california.depends_on
    assert "same tax" in california.reason and "8%" in california.reason
    for rate, code in (("1", "3"), ("2", "3"), ("3", "2")):
        step = steps[("TaxRate", rate)]
        assert step.action is Action.CREATE and numbers[("TaxCode", code)] in step.depends_on
        assert "created with tax code" in step.reason
    # Nothing is substituted: the taxed invoice keeps its code and tax lines (mapped at apply
    # time), so QBO computes the same tax; no departure, no note.
    invoice = steps[("Invoice", "130")]
    assert invoice.payload["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "2"}
    assert invoice.payload["TxnTaxDetail"]["TaxLine"][0]["TaxLineDetail"]["TaxRateRef"] == {
        "value": "3"
    }
    assert not invoice.departs and "sales tax" not in invoice.reason
    # ... and goes after the steps that create them (tax codes are not catalogue
    # dependencies, but sent before its code's step ran it would carry the snapshot's id).
    assert {numbers[("TaxCode", "2")], numbers[("TaxRate", "3")]} <= set(invoice.depends_on)
    assert numbers[("TaxCode", "2")] in steps[("Customer", "1")].depends_on
    assert not [n for n in plan.notes if "tax code(s)" in n]


def _with(recs: dict[tuple[str, str], dict[str, Any]], *extra: Any) -> Plan:
    target = new_us_company()
    target.update(dict(extra))
    live = CountryLive(target, "US")
    request = IntoRequest(source_realm_id="111", target_realm_id="222", snapshot_id=SID)
    return build_into_plan(live, DictLake({SID: recs}), request, preferences={})


def test_a_code_is_matched_by_name_and_rates():
    """California at 8% in the new company is the snapshot's; at 7.25% it is another code:
    the snapshot's is created beside it, renamed, and the step says why."""
    agency = _rec("TaxAgency", {"Id": "9", "DisplayName": "Arizona Dept. of Revenue"})
    same = _with(
        us_snapshot(),
        agency,
        _rec("TaxRate", _rate("5", "California", 8, "9")),
        _rec("TaxCode", _code("8", "California", True, ("5",))),
    )
    assert same.id_map["TaxCode:2"] == "8" and same.id_map["TaxRate:3"] == "5"
    assert same.id_map["TaxAgency:1"] == "9"
    other = _with(
        us_snapshot(),
        agency,
        _rec("TaxRate", _rate("5", "California", 7.25, "9")),
        _rec("TaxCode", _code("8", "California", True, ("5",))),
    )
    assert "TaxCode:2" not in other.id_map and "TaxRate:3" not in other.id_map
    [step] = [s for s in other.steps if (s.entity, s.old_id) == ("TaxCode", "2")]
    assert step.action is Action.CREATE
    assert step.payload["TaxCode"] == "California (restored)"
    assert step.payload["TaxRateDetails"][0]["TaxRateName"] == "California (restored)"
    assert step.payload["TaxRateDetails"][0]["TaxAgencyId"] == "1"  # mapped to 9 when applied
    assert "other rates" in step.reason and "Name" in step.departs
    [rate] = [s for s in other.steps if (s.entity, s.old_id) == ("TaxRate", "3")]
    assert "another value" in rate.reason and "Name" in rate.departs


@pytest.mark.parametrize("problem", ["history", "no agency"])
def test_a_code_that_cannot_be_rebuilt_falls_back_to_no_tax_and_says_so(problem: str):
    """A rate whose value changed over time (TaxService sets one) or that names no agency:
    its code goes to NON, the invoice loses its tax, and the step says by how much."""
    recs = us_snapshot()
    rate = recs[("TaxRate", "3")]
    if problem == "history":
        rate["EffectiveTaxRate"] = [
            {"RateValue": 7.5, "EffectiveDate": "2020-01-01"},
            {"RateValue": 8, "EffectiveDate": "2023-01-01"},
        ]
    else:
        del rate["AgencyRef"]
    plan = _with(recs)
    steps = {(s.entity, s.old_id): s for s in plan.steps if s.phase is not Phase.DEACTIVATE}
    code = steps[("TaxCode", "2")]
    assert code.action is Action.UNSUPPORTED and plan.id_map["TaxCode:2"] == "NON"
    assert "California" in code.reason and "NON" in code.reason and "by hand" in code.reason
    assert ("changed over time (7.5%, 8%)" if problem == "history" else "no tax agency") in (
        code.reason
    )
    # Tucson's rates are fine: it is still created.
    assert steps[("TaxCode", "3")].action is Action.CREATE
    invoice = steps[("Invoice", "130")]
    assert invoice.payload["TxnTaxDetail"] == {"TotalTax": 22}
    assert {"TxnTaxDetail.TotalTax", "TotalAmt", "Balance"} <= set(invoice.departs)
    assert "California" in invoice.reason and "lower by the tax" in invoice.reason
    [note] = [n for n in plan.notes if "tax code(s)" in n]
    assert "California (1)" in note and "no tax" in note
    assert foreign_references(plan) == [] and unmapped_ids(plan) == []


def test_into_a_canadian_company_no_code_keeps_its_old_id():
    plan = plan_into(new_ca_company())
    steps = {(s.entity, s.old_id): s for s in plan.steps if s.phase is not Phase.DEACTIVATE}
    # Every US code goes to Out of Scope (3), the Canadian code without tax: never to the
    # Canadian record that happens to share its id (TaxCode 3 is Tucson in the snapshot).
    for code in ("2", "3", "TAX", "NON"):
        assert plan.id_map[f"TaxCode:{code}"] == "3", code
        assert "Out of Scope" in steps[("TaxCode", code)].reason
    # The rates are not mapped by id either (TaxRate 3 is HST ON in the new company).
    assert "TaxRate:3" not in plan.id_map
    assert steps[("TaxRate", "3")].action is Action.UNSUPPORTED
    invoice = steps[("Invoice", "130")]
    assert invoice.payload["TxnTaxDetail"] == {"TotalTax": 22}
    assert "TxnTaxDetail.TaxLine" in invoice.departs
    [note] = [n for n in plan.notes if "sales tax does not carry over" in n]
    assert "in US and this one in CA" in note and "Out of Scope" in note


def test_a_taxed_credit_memo_into_a_canadian_company_departs_by_its_remaining_credit():
    """Regression (#20): the US company of 3,000 transactions rebuilt in a CA company had its
    taxed credit memos 'different': without their US tax their RemainingCredit (unused, their
    total) is lower too, which their steps did not say (fixed in the same commit)."""
    recs = us_snapshot()
    invoice = recs[("Invoice", "130")]
    memo = {
        k: v for k, v in invoice.items() if k not in ("LinkedTxn", "Balance", "DocNumber", "Id")
    }
    recs[("CreditMemo", "140")] = {**memo, "Id": "140", "RemainingCredit": 297, "Balance": 297}
    request = IntoRequest(source_realm_id="111", target_realm_id="222", snapshot_id=SID)
    live = CountryLive(new_ca_company(), "CA")
    plan = build_into_plan(live, DictLake({SID: recs}), request, preferences={})
    [step] = [s for s in plan.steps if (s.entity, s.old_id) == ("CreditMemo", "140")]
    assert {"TotalAmt", "Balance", "RemainingCredit"} <= set(step.departs), step.departs


@pytest.mark.parametrize(
    ("term", "sent"), [("9", "4"), ("10", "1")], ids=["matched", "created by the restore"]
)
def test_the_default_terms_setting_names_a_term_of_the_new_company(term: str, sent: str):
    """Preferences' ``SalesFormsPrefs.DefaultTerms`` holds a term id: the matched term's, else
    the new company's own (a term the restore creates has no id before the settings go)."""
    recs = us_snapshot()
    recs.update(
        dict(
            [
                _rec("Term", {"Id": "9", "Name": "Net 60", "DueDays": 60, "Active": True}),
                _rec("Term", {"Id": "10", "Name": "Net 90", "DueDays": 90, "Active": True}),
                _rec(
                    "Preferences",
                    {"Id": "1", "SalesFormsPrefs": {"DefaultTerms": {"value": term}}},
                ),
            ]
        )
    )
    target = new_us_company()
    target.update(dict([_rec("Term", {"Id": "4", "Name": "Net 60", "DueDays": 60})]))
    live = CountryLive(target, "US")
    live.preferences = {
        "Id": "1",
        "SyncToken": "0",
        "SalesFormsPrefs": {"DefaultTerms": {"value": "1"}, "AllowDiscount": False},
    }
    request = IntoRequest(source_realm_id="111", target_realm_id="222", snapshot_id=SID)
    plan = build_into_plan(live, DictLake({SID: recs}), request)
    [prefs] = [s for s in plan.steps if s.entity == "Preferences"]
    assert prefs.payload["SalesFormsPrefs"]["DefaultTerms"] == {"value": sent}
    if term == "10":
        assert prefs.departs == ["SalesFormsPrefs.DefaultTerms"]
        assert "Net 90" in prefs.reason and "by hand" in prefs.reason
    else:
        assert not prefs.departs


def test_verification_reads_the_settings_through_the_id_map():
    snapshot = {"SalesFormsPrefs": {"DefaultTerms": {"value": "9"}, "AllowDiscount": True}}
    expected = rewrite_settings(snapshot, remap.IdMap({"Term:9": "4"}))
    assert expected["SalesFormsPrefs"] == {"DefaultTerms": {"value": "4"}, "AllowDiscount": True}
    assert snapshot["SalesFormsPrefs"]["DefaultTerms"] == {"value": "9"}  # a copy
    assert rewrite_settings(snapshot, remap.IdMap()) == snapshot


def test_a_record_needing_one_the_new_company_will_not_have_is_not_written():
    """A class missing from the snapshot takes its invoice, the payment of that invoice and
    the deposit of that payment out of the plan (each says why); a customer type the new
    company lacks (the API cannot create one) is left out of the customer, which says so."""
    recs = us_snapshot()
    recs[("Invoice", "131")]["Line"][0]["SalesItemLineDetail"]["ClassRef"] = {"value": "77"}
    recs.update(dict([_rec("CustomerType", {"Id": "5", "Name": "Wholesale", "Active": True})]))
    recs[("Customer", "2")]["CustomerTypeRef"] = {"value": "5"}
    request = IntoRequest(source_realm_id="111", target_realm_id="222", snapshot_id=SID)
    live = CountryLive(new_us_company(), "US")
    plan = build_into_plan(live, DictLake({SID: recs}), request, preferences={})
    steps = {(s.entity, s.old_id): s for s in plan.steps if s.phase is not Phase.DEACTIVATE}
    invoice = steps[("Invoice", "131")]
    assert invoice.action is Action.UNSUPPORTED and invoice.payload is None
    assert "needs Class 77, which is neither in snapshot" in invoice.reason
    payment = steps[("Payment", "180")]
    assert payment.action is Action.UNSUPPORTED
    assert payment.reason.startswith("needs Invoice 131, which is not written: needs Class 77")
    assert steps[("Deposit", "200")].action is Action.UNSUPPORTED
    assert steps[("Invoice", "130")].action is Action.CREATE
    customer = steps[("Customer", "2")]
    assert customer.action is Action.CREATE and "CustomerTypeRef" not in customer.payload
    assert "left out: CustomerType 5" in customer.reason
    assert customer.departs == ["CustomerTypeRef"]
    assert foreign_references(plan) == [] and unmapped_ids(plan) == []
