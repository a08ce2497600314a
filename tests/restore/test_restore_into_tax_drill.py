"""Drill (#20): a US company's sales tax rebuilt in a new US company through TaxService.

Everything real: the embedded sandbox over HTTP (which computes a transaction's tax from its
codes' rates, as QBO does), the pinned generated company backed up into a lake in tmp_path, a
new company as QBO creates one (only the pseudo codes TAX and NON, no agency, no rate), the
plan of its invoices, the apply and its verification. The generated company's sales carry no
tax: two invoices taxed by California (8%) and Tucson (7.1% and 2%) are added first.
"""

from __future__ import annotations

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.into_refs import foreign_references
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.run import apply_restore, plan_restore_into
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox.server import SandboxServer
from tests.restore.test_restore_into import another_new_company
from tests.restore.test_restore_into_canada import taxed_invoice


def test_the_invoices_keep_their_tax_in_a_new_us_company(
    sandbox: SandboxServer, source: QBOClient, settings: Settings
):
    realm: RealmLake = Lake(settings.lake_url).realm(source.realm_id)
    invoice = entities.ENTITIES["Invoice"]
    made = source.create(invoice, taxed_invoice(source, "3"), request_id="tucson")
    assert made["TxnTaxDetail"]["TotalTax"] == 18.2  # 7.1% and 2% of 200, computed
    made = source.create(invoice, taxed_invoice(source, "2"), request_id="california")
    assert made["TxnTaxDetail"]["TotalTax"] == 16
    snapshot = run_backup(source, realm, mode="full").snapshot.snapshot_id
    invoices = {p["Id"]: p for p in realm.iter_payloads(snapshot, "Invoice")}
    taxed = {i: p for i, p in invoices.items() if (p.get("TxnTaxDetail") or {}).get("TotalTax")}
    assert len(taxed) == 2
    with another_new_company(sandbox, settings, False) as target:
        assert not target.query("select * from TaxRate").get("TaxRate")
        plan = plan_restore_into(target, realm, snapshot=snapshot, entities=("Invoice",)).plan
        assert foreign_references(plan) == []
        steps = {(s.entity, s.old_id): s for s in plan.steps}
        for code in ("2", "3"):
            assert steps[("TaxCode", code)].action is Action.CREATE, steps[("TaxCode", code)]
        assert not [n for n in plan.notes if "tax code(s)" in n]
        store = PlanStore.for_realm(realm)
        approve(store, plan.plan_id, name="drill")
        result, report = apply_restore(target, realm, plan.plan_id, workers=4, batch=True)
        assert result.complete, [s for s in result.steps if s.state == "failed"][:5]
        assert report is not None and report["different"] == 0, report["differences"][:3]
        id_map = (store.status(plan.plan_id) or {})["id_map"]
        # The codes and rates are the new company's own, created through TaxService.
        codes = {c["Id"]: c for c in target.query("select * from TaxCode")["TaxCode"]}
        assert codes[id_map["TaxCode:3"]]["Name"] == "Tucson"
        rates = {r["Id"]: r for r in target.query("select * from TaxRate")["TaxRate"]}
        assert rates[id_map["TaxRate:3"]]["RateValue"] == 8
        assert target.calls_by_topic().get("TaxCode", 0) >= 2
        # Every taxed invoice: the same tax, which QBO computed from the codes it kept.
        for old_id, want in taxed.items():
            got = target.read(invoice, id_map[f"Invoice:{old_id}"])
            detail = got["TxnTaxDetail"]
            assert detail["TotalTax"] == want["TxnTaxDetail"]["TotalTax"], old_id
            assert got["TotalAmt"] == want["TotalAmt"]
            code = want["TxnTaxDetail"]["TxnTaxCodeRef"]["value"]
            assert detail["TxnTaxCodeRef"]["value"] == id_map[f"TaxCode:{code}"]
