"""After a restore into another company: its trial balance at every month end of the snapshot.

A snapshot keeps QBO's reports for one period only (all of its history). The month-by-month
side comes from the warehouse's ledger model instead: the postings of the transactions live in
the snapshot (``intermediate.int_ledger_postings``), summed per account up to each month end,
against the new company's ``TrialBalance`` for the same dates, account by account through the
id map. A difference is explained when it can be:

- by the transactions the plan could not write (a TaxPayment...) dated on or before that month
  end, named with their amounts;
- by the ledger model itself: when the model and the snapshot's own TrialBalance differ by the
  same amount on that account, the model derives that account differently from QBO (a gap of
  the model, not of the restore).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb

from qbo_pipeline.restore import remap
from qbo_pipeline.restore.verify_reports import report_amounts

_CENT = Decimal("0.005")

_POSTINGS = """
select p.txn_date, p.account_id, sum(p.amount) as amount
from intermediate.int_ledger_postings as p
inner join intermediate.int_record_intervals as i
    on p.realm_id = i.realm_id
    and p.entity = i.entity
    and p.record_id = i.record_id
    and p.content_hash = i.content_hash
inner join intermediate.int_snapshot_chain as c
    on c.realm_id = i.realm_id and c.snapshot_id = ?
where p.realm_id = ?
    and p.account_id is not null
    and p.txn_date is not null
    and i.valid_from_seq <= c.snapshot_seq
    and (i.valid_to_seq is null or i.valid_to_seq > c.snapshot_seq)
group by all
"""


def snapshot_postings(
    con: duckdb.DuckDBPyConnection, realm_id: str, snapshot_id: str
) -> list[tuple[date, str, Decimal]]:
    """The snapshot's postings per (date, account) from a built warehouse."""
    rows = con.execute(_POSTINGS, [snapshot_id, realm_id]).fetchall()
    return [(d, str(a), Decimal(str(amount))) for d, a, amount in rows]


def month_ends(postings: list[tuple[date, str, Decimal]]) -> list[date]:
    """Every month end from the first posting's month to the last's."""
    if not postings:
        return []
    first, last = min(p[0] for p in postings), max(p[0] for p in postings)
    out, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(date(year, month, calendar.monthrange(year, month)[1]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _balances(report: dict[str, Any] | None) -> dict[str, Decimal]:
    """A TrialBalance report's debit minus credit per account id."""
    out = {}
    for (kind, ident), amounts in report_amounts(report).items():
        if kind == "account":
            debit = amounts[0] if amounts else Decimal(0)
            credit = amounts[1] if len(amounts) > 1 else Decimal(0)
            out[ident] = debit - credit
    return out


def compare_periods(
    postings: list[tuple[date, str, Decimal]],
    snapshot_trial_balance: dict[str, Any] | None,
    run_report: Callable[..., dict[str, Any]],
    id_map: remap.IdMap,
    not_written: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The new company's TrialBalance at each month end against the snapshot's ledger.

    Args:
        postings: The snapshot's postings (:func:`snapshot_postings`), in snapshot ids.
        snapshot_trial_balance: The snapshot's own TrialBalance (its evidence report).
        run_report: Runs a report in the new company (``QBOClient.report``).
        id_map: The restore's id map.
        not_written: The transactions the plan could not write (entity, old_id, amount, date).

    Returns:
        ``{"ok", "unexplained", "periods": [{"end", "accounts", "equal", "differences":
        [{"account", "snapshot", "restored", "why"}]}]}``; ``ok`` when no month differs,
        ``unexplained`` the differences nothing explains.
    """
    model_total: dict[str, Decimal] = defaultdict(Decimal)
    for _, account, amount in postings:
        model_total[account] += amount
    reported = _balances(snapshot_trial_balance)
    model_gap = {
        a: model_total.get(a, Decimal(0)) - reported.get(a, Decimal(0))
        for a in set(model_total) | set(reported)
    }
    unwritten = list(not_written or [])
    periods, unexplained = [], 0
    for end in month_ends(postings):
        want: dict[str, Decimal] = defaultdict(Decimal)
        gaps: dict[str, Decimal] = defaultdict(Decimal)
        for day, account, amount in postings:
            if day <= end:
                want[id_map.resolve("Account", account)] += amount
        for account, gap in model_gap.items():
            gaps[id_map.resolve("Account", account)] += gap
        got = _balances(
            run_report(
                "TrialBalance",
                start_date="1900-01-01",
                end_date=end.isoformat(),
                accounting_method="Accrual",
            )
        )
        before = [t for t in unwritten if str(t.get("date") or "")[:10] <= end.isoformat()]
        differences, equal = [], 0
        for account in sorted(set(want) | set(got)):
            left, right = want.get(account, Decimal(0)), got.get(account, Decimal(0))
            delta = left - right
            if abs(delta) < _CENT:
                equal += 1
                continue
            if abs(delta - gaps.get(account, Decimal(0))) < _CENT:
                why = (
                    "the warehouse's ledger model differs from the snapshot's own TrialBalance "
                    f"by {gaps[account]} on this account: the model's gap, not the restore's"
                )
            elif before:
                listed = ", ".join(
                    f"{t['entity']} {t['old_id']} ({t.get('amount')}, {t.get('date')})"
                    for t in before
                )
                why = f"the plan could not write {len(before)} transaction(s) by then: {listed}"
            else:
                why = "amounts differ and nothing the plan left out explains it"
                unexplained += 1
            differences.append(
                {"account": account, "snapshot": str(left), "restored": str(right), "why": why}
            )
        periods.append(
            {
                "end": end.isoformat(),
                "accounts": len(set(want) | set(got)),
                "equal": equal,
                "differences": differences,
            }
        )
    return {
        "ok": not any(p["differences"] for p in periods),
        "unexplained": unexplained,
        "periods": periods,
    }
