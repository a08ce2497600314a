"""Verification for every month of the snapshot (#20): ProfitAndLoss and BalanceSheet too.

The pinned company rebuilt inside a new sandbox company; the warehouse built from the real lake
gives the snapshot's postings; the new company's TrialBalance at each month end, ProfitAndLoss
of each month and BalanceSheet at each month end are compared account by account through the
id map. The fixtures are the into drill's (a new company created the way QBO creates one).
"""

from __future__ import annotations

import calendar
from collections import Counter
from decimal import Decimal

from qbo_pipeline.backup import run_backup
from qbo_pipeline.restore.apply import approve
from qbo_pipeline.restore.run import apply_restore, plan_restore_into, verify_plan
from qbo_pipeline.restore.store import PlanStore
from tests.restore.test_restore_into import env, realm, settings, source, target

__all__ = ["env", "realm", "settings", "source", "target"]

MONTH_ENDS = [
    f"2024-{month:02d}-{calendar.monthrange(2024, month)[1]:02d}" for month in range(1, 13)
]
"""The pinned company's books are 2024's."""


class CountingReports:
    """``QBOClient.report`` that counts the calls per report name."""

    def __init__(self, client) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.realm_id = client.realm_id

    def report(self, name: str, **params: str):
        self.calls[name] += 1
        return self.client.report(name, **params)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def test_every_month_s_profit_and_loss_and_balance_sheet_match_through_the_id_map(
    source, target, realm, tmp_path
):
    snapshot = run_backup(source, realm, mode="full").snapshot
    plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
    approve(PlanStore.for_realm(realm), plan.plan_id, name="drill")
    result, _ = apply_restore(target, realm, plan.plan_id, verify=False)
    assert result.complete
    counting = CountingReports(target)
    report = verify_plan(counting, realm, plan.plan_id, warehouse=tmp_path / "wh.duckdb")

    # Bounded: a TrialBalance per month end, one ProfitAndLoss and one BalanceSheet by month
    # (plus the three whole-period reports and the fresh snapshot's own).
    months = report["periods_profit_and_loss"]
    sheets = report["periods_balance_sheet"]
    assert [m["end"] for m in months] == MONTH_ENDS == [s["end"] for s in sheets]
    assert [m["start"] for m in months] == [e[:8] + "01" for e in MONTH_ENDS]
    assert counting.calls["ProfitAndLoss"] <= 3 and counting.calls["BalanceSheet"] <= 3
    assert counting.calls["TrialBalance"] <= len(MONTH_ENDS) + 2

    assert report["periods_unexplained"] == 0, [m["differences"] for m in months + sheets][:3]
    [tax_payment] = [t for t in report["not_written"] if t["entity"] == "TaxPayment"]
    # Income and expense of every month are equal per account: the tax payment moves only
    # balance-sheet accounts.
    for month in months:
        assert month["equal"] > 3, month
        assert not [d for d in month["differences"] if "could not write" in d["why"]], month
    # At every month end since the unwritten tax payment, the balance sheet differs by its
    # amount on the accounts it moves, and says so; before it, nothing differs for it.
    amount = abs(Decimal(str(tax_payment["amount"])))
    named = []
    for sheet in sheets:
        assert sheet["equal"] > 3, sheet
        for difference in sheet["differences"]:
            if "could not write" not in difference["why"]:
                assert "the model's gap, not the restore's" in difference["why"]
                continue
            assert f"TaxPayment {tax_payment['old_id']}" in difference["why"]
            assert abs(Decimal(difference["difference"])) == amount, difference
            named.append(sheet["end"])
    assert named and min(named) >= tax_payment["date"]
    assert not report["ok"]  # the books cannot equal the snapshot's without the tax payment
