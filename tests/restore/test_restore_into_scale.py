"""The disaster-recovery drill (#20) at the size the issue names: a generated company of a few
thousand transactions (every entity type, attachments, multicurrency) rebuilt in a new company,
SIGKILLed inside a batch half way (in the transactions) and resumed, then verified in full: every
record equal modulo ids, every account of the TrialBalance, ProfitAndLoss and BalanceSheet, every
running balance, and a rerun that writes nothing. The same drill (tests/restore/into_drill.py)
runs in ``make test`` on the small pinned company; this one takes minutes, so marker ``scale``
(``make scale``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qbo_pipeline import entities
from qbo_pipeline.sandbox import sample_company
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.server import SandboxServer, realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore
from tests.conftest import PINNED_NOW
from tests.restore.into_drill import rebuild_killed_and_rerun

# The small drill's fixtures, here with this module's larger `sandbox`.
from tests.restore.test_restore_into import env, realm, settings, source, target

__all__ = ["env", "realm", "settings", "source", "target"]

pytestmark = [pytest.mark.scale, pytest.mark.timeout(2400)]

TRANSACTIONS = 3000
"""A few thousand transactions, as the issue's drill asks."""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """The sandbox serving one generated company of :data:`TRANSACTIONS`, its books ending at
    :data:`PINNED_NOW`."""
    state = tmp_path / "sandbox.sqlite3"
    store = SandboxStore(state)
    try:
        summary = generate_company(
            store, realm_id_for(0), seed=42, anchor=PINNED_NOW, transactions=TRANSACTIONS
        )
    finally:
        store.close()
    # Every transaction entity of the sample company, and files attached to records.
    made = {name for name, count in summary.counts.items() if count}
    assert set(sample_company.TRANSACTION_COUNTS) <= made, (
        set(sample_company.TRANSACTION_COUNTS) - made
    )
    assert summary.counts["Attachable"] > 0
    server = SandboxServer(state, realms=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_drill_at_a_few_thousand_transactions(source, target, realm, sandbox, env):
    assert (source.preferences().get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
    drill = rebuild_killed_and_rerun(
        source, target, realm, sandbox, env, kill_at=0.5, min_writes=TRANSACTIONS
    )
    snapshot = drill.snapshot_id
    # The kill landed half way, in the batches of transactions (past the name lists).
    killed = {drill.plan.step(n).entity for n in drill.killed_in}
    assert {entities.ENTITIES[name].kind for name in killed} == {entities.Kind.TRANSACTION}
    # Every entity of the catalogue the company holds was planned, and checked equal.
    held = {
        name
        for name in entities.ENTITIES
        if next(iter(realm.iter_payloads(snapshot, name)), None) is not None
    }
    planned = {s.entity for s in drill.plan.steps}
    assert held <= planned, held - planned
    assert (
        sum(
            1
            for s in drill.plan.steps
            if entities.ENTITIES[s.entity].kind is entities.Kind.TRANSACTION
        )
        >= TRANSACTIONS
    )
    # Multicurrency: the new company was made with it on (its home currency its first
    # CompanyCurrency, as QBO makes it), and holds every currency of the snapshot.
    assert (target.preferences().get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
    want = {p["Code"] for p in realm.iter_payloads(snapshot, "CompanyCurrency")}
    currencies = target.query("select * from CompanyCurrency")["CompanyCurrency"]
    assert want and {c["Code"] for c in currencies} == want | {"USD"}
