"""Drill (#20): the generated US company's sales rebuilt inside a new Canadian company.

Everything real: the embedded sandbox over HTTP, the pinned generated company backed up into a
lake in tmp_path, a company created as QBO creates a Canadian one (GST/HST codes whose ids 3 to
7 are also the US company's ids), the plan, the apply and its verification. The part restored
is the invoices and payments with what they need (customers, items, accounts, terms, credit
memos): a US company's sales, which a Canadian company can hold in USD. The US tax codes go to
Out of Scope (each country has its own tax model), and each taxed invoice's tax code and rates
are left out of its tax detail, so QBO charges it no tax and its total is lower by the tax, as
its step says; the USD transactions get QBO's rate and CAD amounts, as the plan's note says;
the verification lists exactly those as planned, and everything else equal modulo ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.into_refs import TAX_LINES, TXN_TAX_CODE, foreign_references
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.run import apply_restore, plan_restore_into
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox.server import SandboxServer
from tests.restore.test_restore_into import another_new_company


@pytest.fixture
def canadian(sandbox: SandboxServer, settings: Settings, source: QBOClient) -> Iterator[QBOClient]:
    multicurrency = bool(
        (source.preferences().get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
    )
    with another_new_company(sandbox, settings, multicurrency, country="CA") as qbo:
        yield qbo


def taxed_invoice(source: QBOClient, tax_code: str) -> dict[str, Any]:
    """An invoice of a customer of the source taxed by ``tax_code`` with its rates' tax lines."""
    customer = source.query("select * from Customer where Active = true maxresults 1")
    item = source.query("select * from Item where Type = 'Service' maxresults 1")
    [code] = [c for c in source.query("select * from TaxCode")["TaxCode"] if c["Id"] == tax_code]
    rates = [d["TaxRateRef"]["value"] for d in code["SalesTaxRateList"]["TaxRateDetail"]]
    lines = [
        {
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": item["Item"][0]["Id"]},
                "Qty": 1,
                "UnitPrice": amount,
                "TaxCodeRef": {"value": taxed},
            },
        }
        for amount, taxed in ((200, "TAX"), (50, "NON"))
    ]
    tax_lines = [
        {
            "Amount": 8,
            "DetailType": "TaxLineDetail",
            "TaxLineDetail": {
                "TaxRateRef": {"value": rate},
                "PercentBased": True,
                "TaxPercent": 4,
                "NetAmountTaxable": 200,
            },
        }
        for rate in rates
    ]
    return {
        "CustomerRef": {"value": customer["Customer"][0]["Id"]},
        "TxnDate": "2024-11-20",
        "Line": lines,
        "TxnTaxDetail": {
            "TxnTaxCodeRef": {"value": tax_code},
            "TotalTax": 8 * len(rates),
            "TaxLine": tax_lines,
        },
    }


def test_the_us_company_s_invoices_rebuilt_in_a_canadian_company(
    source: QBOClient, canadian: QBOClient, settings: Settings
):
    realm: RealmLake = Lake(settings.lake_url).realm(source.realm_id)
    # The generated company's sales carry no tax: two taxed invoices as a US company with
    # sales tax set up writes them (the California and Tucson codes with a tax line per rate,
    # lines TAX and NON).
    for n, code in enumerate(("2", "3"), start=1):
        source.create(
            entities.ENTITIES["Invoice"], taxed_invoice(source, code), request_id=f"tax-{n}"
        )
    snapshot = run_backup(source, realm, mode="full").snapshot.snapshot_id
    assert canadian.company_info()["Country"] == "CA"
    codes = canadian.query("select * from TaxCode")["TaxCode"]
    [out_of_scope] = [c["Id"] for c in codes if c["Name"] == "Out of Scope"]

    plan = plan_restore_into(
        canadian, realm, snapshot=snapshot, entities=("Invoice", "Payment")
    ).plan
    assert foreign_references(plan) == []
    assert any("sales tax does not carry over" in n for n in plan.notes)
    invoices = {p["Id"]: p for p in realm.iter_payloads(snapshot, "Invoice")}
    taxed = {i for i, p in invoices.items() if (p.get("TxnTaxDetail") or {}).get("TaxLine")}
    assert len(taxed) == 2 and len(invoices) > 10
    steps = {s.old_id: s for s in plan.steps if s.entity == "Invoice"}
    for old_id in taxed:
        step = steps[old_id]
        assert step.action is Action.CREATE
        assert {TXN_TAX_CODE, TAX_LINES} <= set(step.departs)
        assert "sales tax:" in step.reason and "by hand" in step.reason
    store = PlanStore.for_realm(realm)
    approve(store, plan.plan_id, name="drill")

    result, report = apply_restore(canadian, realm, plan.plan_id)
    assert result.complete, [s for s in result.steps if s.state == "failed"][:5]
    assert report is not None
    # What carries over is equal modulo ids ...
    assert report["different"] == 0, sorted(
        {
            (d["entity"], c["path"].split("[")[0])
            for d in report["differences"]
            for c in d.get("changes") or [{"path": d["problem"]}]
        }
    )
    # ... and the taxed invoices differ exactly where their steps said: their tax detail's
    # code and lines, which the verification lists as planned, with the step's reason; so do
    # the transactions in USD, a foreign currency in a CAD company (their rate and CAD
    # amounts), as the plan's note says.
    assert any("home currency is USD and this company's CAD" in n for n in plan.notes)
    planned = {(d["entity"], d["old_id"]): d for d in report["as_planned"]}
    tax_paths = {"TxnTaxDetail.TxnTaxCodeRef", "TxnTaxDetail.TaxLine"}
    taxed_now = set()
    for (name, old_id), difference in planned.items():
        step = next(s for s in plan.steps if (s.entity, s.old_id) == (name, old_id))
        assert difference["why"] == step.reason
        paths = {re.sub(r"\[\d+\].*", "", c["path"]) for c in difference["changes"]}
        paths = {
            p if not p.startswith("TxnTaxDetail.") else ".".join(p.split(".")[:2]) for p in paths
        }
        totals = {"TxnTaxDetail.TotalTax", "TotalAmt", "Balance"}
        assert paths <= tax_paths | totals | {"ExchangeRate", "HomeTotalAmt", "HomeBalance"}, paths
        if paths & tax_paths:
            taxed_now.add(old_id)
            assert name == "Invoice" and "sales tax:" in step.reason
    assert taxed_now == taxed
    # The lines carry over, sent with Out of Scope, the Canadian code without tax, on which
    # QBO charges no tax: each invoice's total is the snapshot's less its tax (#20: QBO
    # calculates the tax from the codes, it does not keep a TotalTax sent).
    id_map = {**plan.id_map, **((store.status(plan.plan_id) or {}).get("id_map") or {})}
    invoice = entities.ENTITIES["Invoice"]
    for old_id in sorted(taxed)[:5]:
        restored = canadian.read(invoice, id_map[f"Invoice:{old_id}"])
        want = invoices[old_id]
        tax = want["TxnTaxDetail"]["TotalTax"]
        assert tax > 0 and restored["TxnTaxDetail"]["TotalTax"] == 0
        assert restored["TotalAmt"] == pytest.approx(want["TotalAmt"] - tax)
        line_codes = {
            site.target_id
            for site in remap.reference_sites(invoice, restored)
            if site.target == "TaxCode"
        }
        assert line_codes == {out_of_scope}
