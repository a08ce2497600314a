"""Property (#20): no plan into another company sends an id of the source company unmapped.

Over the drill company (the generated, pinned one, every entity type) and new companies as QBO
creates them (US and Canada, multicurrency on or off), for any choice of entities to rebuild:
every reference of every payload is in the plan's id map or names a record the plan creates,
whatever the planner had to leave out, and each step that leaves something out says so. In
memory (the sandbox's store, no HTTP): the sandbox drill is test_restore_into_canada.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.restore.into_refs import foreign_references
from qbo_pipeline.restore.model import Action
from qbo_pipeline.restore.plan_into import IntoRequest, build_into_plan
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.new_company import create_new_company
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import PINNED_NOW
from tests.restore.conftest import DictLake, DictLive
from tests.restore.test_restore_into_taxes import unmapped_ids

SID = "20241231T170000.000000Z"
SOURCE = "9341450000000001"


class NewCompanyLive(DictLive):
    """A new company's records, its CompanyInfo and Preferences included."""

    def singleton(self, entity: entities.Entity) -> dict[str, Any]:
        return next(p for (name, _), p in self.records.items() if name == entity.name)


def _realm(store: SandboxStore, realm_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for entity in entities.CATALOGUE:
        for payload in store.iter_records(realm_id, entity.name):
            out[(entity.name, records.record_id(entity, payload))] = payload
    return out


@pytest.fixture(scope="module")
def companies() -> dict[str, Any]:
    """The drill company's records and four new companies' (US and CA, one currency or many)."""
    store = SandboxStore(":memory:")
    try:
        generate_company(store, SOURCE, seed=42, anchor=PINNED_NOW)
        out: dict[str, Any] = {"source": _realm(store, SOURCE)}
        for country in ("US", "CA"):
            for multicurrency in (False, True):
                realm = create_new_company(store, country=country, multicurrency=multicurrency)
                out[f"{country}-{multicurrency}"] = _realm(store, realm.realm_id)
        return out
    finally:
        store.close()


RESTORABLE = sorted(
    e.name for e in entities.CATALOGUE if not e.is_singleton and e.name not in ("ExchangeRate",)
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=st.lists(st.sampled_from(RESTORABLE), max_size=4, unique=True),
    country=st.sampled_from(["US", "CA"]),
    multicurrency=st.booleans(),
)
def test_no_plan_into_a_new_company_sends_a_source_id_unmapped(
    companies: dict[str, Any], chosen: list[str], country: str, multicurrency: bool
) -> None:
    snapshot = companies["source"]
    target = NewCompanyLive(companies[f"{country}-{multicurrency}"])
    request = IntoRequest(
        source_realm_id=SOURCE, target_realm_id="1", snapshot_id=SID, entities=tuple(chosen)
    )
    plan = build_into_plan(target, DictLake({SID: snapshot}), request)
    assert foreign_references(plan) == []
    assert unmapped_ids(plan) == []
    for step in plan.steps:
        if step.departs:
            assert step.action.writes and step.payload, step
        if step.action is Action.CREATE and "TxnTaxDetail.TaxLine" in step.departs:
            assert "TaxLine" not in step.payload["TxnTaxDetail"] and "sales tax:" in step.reason
    # Nothing is written with a tax code of the source company: they are each mapped to one of
    # the new company's.
    target_codes = {i for (name, i) in companies[f"{country}-{multicurrency}"] if name == "TaxCode"}
    for key, new_id in plan.id_map.items():
        if key.startswith("TaxCode:"):
            assert new_id in target_codes, key
