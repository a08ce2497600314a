"""After a restore into another company: its books for every month of the snapshot.

A snapshot keeps QBO's reports for one period only (all of its history). The month-by-month
side comes from the warehouse's ledger model instead: the postings of the transactions live in
the snapshot (``intermediate.int_ledger_postings``), summed per account, against the new
company's reports, account by account through the id map:

- ``TrialBalance`` at each month end (debit minus credit of everything up to then; QBO's
  TrialBalance has no columns by month, so a call per month end);
- ``ProfitAndLoss`` of each month (income and expense posted in it), every month in one call
  with ``summarize_column_by=Month``;
- ``BalanceSheet`` at each month end (assets, liabilities and equity up to then, earlier
  fiscal years' income in Retained Earnings), every month end in one call by month.

A difference is explained when it can be:

- by the transactions the plan could not write (a TaxPayment...) dated in that month (for a
  ProfitAndLoss) or on or before that month end, named with their amounts and dates;
- by the ledger model itself: when the model and the snapshot's own TrialBalance differ by the
  same amount on that account, the model derives that account differently from QBO (a gap of
  the model, not of the restore).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
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


@dataclass(frozen=True)
class Chart:
    """What the monthly ProfitAndLoss and BalanceSheet need of the snapshot's accounts.

    Attributes:
        classification: Account id (snapshot ids) -> QBO's ``Classification`` (Asset,
            Liability, Equity, Revenue, Expense).
        retained_earnings: The Retained Earnings account (``AccountSubType``
            RetainedEarnings), where a balance sheet puts earlier fiscal years' income.
        year_start_month: The fiscal year's first month (CompanyInfo ``FiscalYearStartMonth``).
    """

    classification: dict[str, str]
    retained_earnings: str | None = None
    year_start_month: int = 1

    def sign(self, account: str) -> int:
        """+1 or -1: how a report shows the account's debit-positive amount.

        Assets and expenses as they are; liabilities, equity and income negated.
        """
        return 1 if self.classification.get(account) in ("Asset", "Expense") else -1

    def on_balance_sheet(self, account: str) -> bool:
        """Whether the account accumulates from the beginning of the books."""
        return self.classification.get(account) in BALANCE_SHEET_CLASSES

    def in_profit_and_loss(self, account: str) -> bool:
        """Whether the account is income or expense."""
        return self.classification.get(account) in ("Revenue", "Expense")

    def year_start(self, day: date) -> date:
        """The first day of the fiscal year ``day`` falls in."""
        year = day.year if day.month >= self.year_start_month else day.year - 1
        return date(year, self.year_start_month, 1)


BALANCE_SHEET_CLASSES = frozenset({"Asset", "Liability", "Equity"})

_MONTHS = {name: n for n, name in enumerate(calendar.month_name) if name}


def chart_of(accounts: Iterable[dict[str, Any]], company_info: dict[str, Any] | None) -> Chart:
    """The :class:`Chart` of a snapshot's Account records and its CompanyInfo."""
    classification, retained = {}, None
    for account in accounts:
        ident = str(account.get("Id"))
        classification[ident] = str(account.get("Classification") or "")
        if account.get("AccountSubType") == "RetainedEarnings" and retained is None:
            retained = ident
    month = _MONTHS.get(str((company_info or {}).get("FiscalYearStartMonth") or ""), 1)
    return Chart(classification, retained, month)


def _explain(
    delta: Decimal, gap: Decimal, unwritten: list[dict[str, Any]], when: str
) -> tuple[str, bool]:
    """Why an account differs by ``delta``, and whether that is explained."""
    if abs(delta - gap) < _CENT:
        return (
            "the warehouse's ledger model differs from the snapshot's own TrialBalance "
            f"by {gap} on this account: the model's gap, not the restore's",
            True,
        )
    if unwritten:
        listed = ", ".join(
            f"{t['entity']} {t['old_id']} ({t.get('amount')}, {t.get('date')})" for t in unwritten
        )
        return f"the plan could not write {len(unwritten)} transaction(s) {when}: {listed}", True
    return "amounts differ and nothing the plan left out explains it", False


def _compare(
    want: dict[str, Decimal],
    got: dict[str, Decimal],
    gaps: dict[str, Decimal],
    unwritten: list[dict[str, Any]],
    when: str,
) -> tuple[dict[str, Any], int]:
    """One period's accounts compared.

    Returns:
        Its entry (accounts, equal, differences) and how many differences nothing explains.
    """
    differences, equal, unexplained = [], 0, 0
    for account in sorted(set(want) | set(got)):
        left, right = want.get(account, Decimal(0)), got.get(account, Decimal(0))
        delta = left - right
        if abs(delta) < _CENT:
            equal += 1
            continue
        why, explained = _explain(delta, gaps.get(account, Decimal(0)), unwritten, when)
        unexplained += not explained
        differences.append(
            {
                "account": account,
                "snapshot": str(left),
                "restored": str(right),
                "difference": str(delta),
                "why": why,
            }
        )
    entry = {"accounts": len(set(want) | set(got)), "equal": equal, "differences": differences}
    return entry, unexplained


def _dated(unwritten: list[dict[str, Any]], start: date | None, end: date) -> list[dict[str, Any]]:
    """The unwritten transactions dated from ``start`` (None: ever) to ``end``."""
    first = start.isoformat() if start else ""
    return [t for t in unwritten if first <= str(t.get("date") or "")[:10] <= end.isoformat()]


def _month_columns(report: dict[str, Any] | None) -> dict[date, int]:
    """A report summarized by month: each money column's end date -> its place among them."""
    columns = ((report or {}).get("Columns") or {}).get("Column") or []
    out = {}
    for place, column in enumerate(columns[1:]):
        meta = {m.get("Name"): m.get("Value") for m in column.get("MetaData") or []}
        if meta.get("ColKey") == "total" or not meta.get("EndDate"):
            continue
        out[date.fromisoformat(str(meta["EndDate"]))] = place
    return out


def _monthly(report: dict[str, Any] | None) -> dict[date, dict[str, Decimal]]:
    """A report summarized by month: per column end date, each account's own amount."""
    columns = _month_columns(report)
    out: dict[date, dict[str, Decimal]] = {end: {} for end in columns}
    for (kind, ident), amounts in report_amounts(report).items():
        if kind != "account":
            continue
        for end, place in columns.items():
            if place < len(amounts):
                out[end][ident] = amounts[place]
    return out


class _Books:
    """The snapshot's postings and what every period's comparison shares."""

    def __init__(
        self,
        postings: list[tuple[date, str, Decimal]],
        snapshot_trial_balance: dict[str, Any] | None,
        id_map: remap.IdMap,
        not_written: list[dict[str, Any]] | None,
    ) -> None:
        self.postings = postings
        self.id_map = id_map
        self.unwritten = list(not_written or [])
        self.ends = month_ends(postings)
        model_total: dict[str, Decimal] = defaultdict(Decimal)
        for _, account, amount in postings:
            model_total[account] += amount
        reported = _balances(snapshot_trial_balance)
        self.model_gap = {
            a: model_total.get(a, Decimal(0)) - reported.get(a, Decimal(0))
            for a in set(model_total) | set(reported)
        }

    def gaps(self, chart: Chart | None = None) -> dict[str, Decimal]:
        """The model's gap per account (new ids).

        Signed as a report shows it (``chart``), or as a TrialBalance does (debit - credit).
        """
        out: dict[str, Decimal] = defaultdict(Decimal)
        for account, gap in self.model_gap.items():
            sign = chart.sign(account) if chart else 1
            out[self.id_map.resolve("Account", account)] += sign * gap
        return out

    def sums(
        self, keep: Callable[[date, str], bool], chart: Chart | None = None
    ) -> dict[str, Decimal]:
        """The postings ``keep`` chooses, summed per account (new ids), signed by ``chart``."""
        out: dict[str, Decimal] = defaultdict(Decimal)
        for day, account, amount in self.postings:
            if keep(day, account):
                sign = chart.sign(account) if chart else 1
                out[self.id_map.resolve("Account", account)] += sign * amount
        return out


def _until(day: date, _account: str, *, end: date) -> bool:
    """A posting on or before ``end``."""
    return day <= end


def _in_month_profit_and_loss(
    day: date, account: str, *, start: date, end: date, chart: Chart
) -> bool:
    """A posting between ``start`` and ``end`` to an income or expense account."""
    return start <= day <= end and chart.in_profit_and_loss(account)


def _on_balance_sheet_until(day: date, account: str, *, end: date, chart: Chart) -> bool:
    """A posting on or before ``end`` to a balance-sheet account."""
    return day <= end and chart.on_balance_sheet(account)


def _profit_and_loss_before(day: date, account: str, *, start: date, chart: Chart) -> bool:
    """A posting before ``start`` (an earlier fiscal year) to an income or expense account."""
    return day < start and chart.in_profit_and_loss(account)


def _trial_balances(books: _Books, run_report: Callable[..., dict[str, Any]]) -> tuple[list, int]:
    """The new company's TrialBalance at each month end (one report call per month end)."""
    periods, unexplained = [], 0
    gaps = books.gaps()
    for end in books.ends:
        got = _balances(
            run_report(
                "TrialBalance",
                start_date="1900-01-01",
                end_date=end.isoformat(),
                accounting_method="Accrual",
            )
        )
        want = books.sums(partial(_until, end=end))
        entry, missed = _compare(want, got, gaps, _dated(books.unwritten, None, end), "by then")
        periods.append({"end": end.isoformat(), **entry})
        unexplained += missed
    return periods, unexplained


def _by_month(
    report: str, books: _Books, run_report: Callable[..., dict[str, Any]]
) -> dict[date, dict[str, Decimal]]:
    """One report call summarized by month over the snapshot's months, its columns by end."""
    return _monthly(
        run_report(
            report,
            start_date=books.ends[0].replace(day=1).isoformat(),
            end_date=books.ends[-1].isoformat(),
            accounting_method="Accrual",
            summarize_column_by="Month",
        )
    )


def _profit_and_loss(
    books: _Books, chart: Chart, run_report: Callable[..., dict[str, Any]]
) -> tuple[list, int]:
    """The new company's ProfitAndLoss of each month, all months in one report call."""
    monthly = _by_month("ProfitAndLoss", books, run_report)
    periods, unexplained = [], 0
    gaps = books.gaps(chart)
    for end in books.ends:
        start = end.replace(day=1)
        want = books.sums(
            partial(_in_month_profit_and_loss, start=start, end=end, chart=chart),
            chart,
        )
        unwritten = _dated(books.unwritten, start, end)
        entry, missed = _compare(want, monthly.get(end, {}), gaps, unwritten, "in that month")
        if end not in monthly:
            entry["differences"].insert(0, _no_column("ProfitAndLoss", end))
            missed += 1
        periods.append({"start": start.isoformat(), "end": end.isoformat(), **entry})
        unexplained += missed
    return periods, unexplained


def _balance_sheets(
    books: _Books, chart: Chart, run_report: Callable[..., dict[str, Any]]
) -> tuple[list, int]:
    """The new company's BalanceSheet at each month end, all in one report call.

    A balance sheet shows the fiscal year's income to date as Net Income (no account) and
    earlier years' in Retained Earnings: the snapshot's side adds the income and expense
    posted before the fiscal year's start to that account.
    """
    monthly = _by_month("BalanceSheet", books, run_report)
    periods, unexplained = [], 0
    gaps = books.gaps(chart)
    retained = chart.retained_earnings
    for end in books.ends:
        want = books.sums(partial(_on_balance_sheet_until, end=end, chart=chart), chart)
        if retained is not None:
            year_start = chart.year_start(end)
            earlier = books.sums(partial(_profit_and_loss_before, start=year_start, chart=chart))
            key = books.id_map.resolve("Account", retained)
            total = sum(earlier.values(), Decimal(0))
            if total or key in want:
                want[key] = want.get(key, Decimal(0)) + chart.sign(retained) * total
        unwritten = _dated(books.unwritten, None, end)
        entry, missed = _compare(want, monthly.get(end, {}), gaps, unwritten, "by then")
        if end not in monthly:
            entry["differences"].insert(0, _no_column("BalanceSheet", end))
            missed += 1
        periods.append({"end": end.isoformat(), **entry})
        unexplained += missed
    return periods, unexplained


def _no_column(report: str, end: date) -> dict[str, Any]:
    return {
        "account": None,
        "snapshot": None,
        "restored": None,
        "difference": None,
        "why": f"the new company's {report} summarized by month has no column ending {end}",
    }


def compare_periods(
    postings: list[tuple[date, str, Decimal]],
    snapshot_trial_balance: dict[str, Any] | None,
    run_report: Callable[..., dict[str, Any]],
    id_map: remap.IdMap,
    not_written: list[dict[str, Any]] | None = None,
    chart: Chart | None = None,
) -> dict[str, Any]:
    """The new company's books at each month end against the snapshot's ledger.

    The TrialBalance at every month end (a report call each); given the snapshot's ``chart``,
    also the ProfitAndLoss of every month and the BalanceSheet at every month end, each in
    one report call summarized by month. Every account is compared through the id map.

    Args:
        postings: The snapshot's postings (:func:`snapshot_postings`), in snapshot ids.
        snapshot_trial_balance: The snapshot's own TrialBalance (its evidence report).
        run_report: Runs a report in the new company (``QBOClient.report``).
        id_map: The restore's id map.
        not_written: The transactions the plan could not write (entity, old_id, amount, date).
        chart: The snapshot's accounts (:func:`chart_of`); None compares TrialBalances only.

    Returns:
        ``{"ok", "unexplained", "periods", "profit_and_loss", "balance_sheet"}``: each list
        holds one entry a month (``end``, ``accounts``, ``equal``, ``differences``:
        ``[{"account", "snapshot", "restored", "difference", "why"}]``; a ProfitAndLoss month
        also its ``start``); ``ok`` when no month of any report differs, ``unexplained`` the
        differences nothing explains.
    """
    books = _Books(postings, snapshot_trial_balance, id_map, not_written)
    periods, unexplained = _trial_balances(books, run_report)
    out: dict[str, Any] = {"periods": periods, "profit_and_loss": [], "balance_sheet": []}
    if chart is not None and books.ends:
        out["profit_and_loss"], missed = _profit_and_loss(books, chart, run_report)
        unexplained += missed
        out["balance_sheet"], missed = _balance_sheets(books, chart, run_report)
        unexplained += missed
    months = [*out["periods"], *out["profit_and_loss"], *out["balance_sheet"]]
    out["ok"] = not any(m["differences"] for m in months)
    out["unexplained"] = unexplained
    return out
