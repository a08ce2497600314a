"""Compare a company's reports with a snapshot's evidence reports, account by account.

A snapshot keeps the TrialBalance, ProfitAndLoss and BalanceSheet QBO gave when it was taken.
After a restore into another company, the same reports of the new company, for the same period,
must show the same amounts per account once the accounts' ids go through the restore's id map.
Rows are keyed by account id (a data row, or a parent account's section total) and sections by
their group or label (``GrandTotal``, ``Total Income``); amounts compare as numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from qbo_pipeline.entities import REPORTS
from qbo_pipeline.restore import remap

RowKey = tuple[str, str]
"""``("account", id)``, ``("total", id)`` or ``("section", group or label)``."""


def _amount(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw).replace(",", "")) if raw not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _rows(node: Any) -> Iterator[dict[str, Any]]:
    rows = ((node or {}).get("Rows") or {}).get("Row") or []
    for row in rows:
        if isinstance(row, dict):
            yield row


def report_amounts(report: dict[str, Any] | None) -> dict[RowKey, tuple[Decimal, ...]]:
    """The amounts of a report per row key (see :data:`RowKey`)."""
    out: dict[RowKey, tuple[Decimal, ...]] = {}

    def walk(node: Any) -> None:
        for row in _rows(node):
            cols = row.get("ColData")
            if isinstance(cols, list) and cols:
                if cols[0].get("id"):
                    out[("account", str(cols[0]["id"]))] = tuple(
                        _amount(c.get("value")) for c in cols[1:]
                    )
                continue
            walk(row)
            summary = (row.get("Summary") or {}).get("ColData") or []
            if not summary:
                continue
            header = (row.get("Header") or {}).get("ColData") or []
            amounts = tuple(_amount(c.get("value")) for c in summary[1:])
            if header and header[0].get("id"):
                out[("total", str(header[0]["id"]))] = amounts
            else:
                label = str(row.get("group") or summary[0].get("value") or "")
                out[("section", label)] = amounts

    walk(report)
    return out


def compare_report(
    name: str,
    snapshot_report: dict[str, Any] | None,
    restored_report: dict[str, Any] | None,
    id_map: remap.IdMap,
) -> dict[str, Any]:
    """Compare one report of the snapshot with the restored company's, account by account.

    Returns:
        ``{"report", "rows", "equal", "differences": [{"row", "account", "snapshot",
        "restored", "why"}]}``; ``ok`` when nothing differs.
    """
    if snapshot_report is None:
        return {
            "report": name,
            "ok": False,
            "rows": 0,
            "equal": 0,
            "differences": [
                {"row": None, "why": f"the snapshot has no {name} report to compare with"}
            ],
        }
    before = report_amounts(snapshot_report)
    after = report_amounts(restored_report)
    mapped: dict[RowKey, tuple[Decimal, ...]] = {}
    for (kind, ident), amounts in before.items():
        if kind in ("account", "total"):
            ident = id_map.resolve("Account", ident)
        mapped[(kind, ident)] = amounts
    differences = []
    equal = 0
    for key in sorted(set(mapped) | set(after)):
        want = mapped.get(key)
        got = after.get(key)
        if want is not None and got is not None and _same(want, got):
            equal += 1
            continue
        if want is None and got is not None and not any(got):
            continue
        if got is None and want is not None and not any(want):
            continue
        why = (
            "missing from the restored company's report"
            if got is None
            else "not in the snapshot's report (an account the restore added or moved)"
            if want is None
            else "amounts differ"
        )
        differences.append(
            {
                "row": f"{key[0]}:{key[1]}",
                "snapshot": [str(v) for v in want] if want is not None else None,
                "restored": [str(v) for v in got] if got is not None else None,
                "why": why,
            }
        )
    return {
        "report": name,
        "ok": not differences,
        "rows": len(mapped),
        "equal": equal,
        "differences": differences,
    }


def _same(left: tuple[Decimal, ...], right: tuple[Decimal, ...]) -> bool:
    width = max(len(left), len(right))
    pad = (Decimal(0),) * width
    return (left + pad)[:width] == (right + pad)[:width]


def period_of(report: dict[str, Any] | None) -> tuple[str, str] | None:
    """The report's ``(StartPeriod, EndPeriod)`` from its header, if it says."""
    header = (report or {}).get("Header") or {}
    start, end = header.get("StartPeriod"), header.get("EndPeriod")
    return (str(start), str(end)) if start and end else None


def compare_reports(
    snapshot_report: Callable[[str], dict[str, Any] | None],
    run_report: Callable[..., dict[str, Any]],
    id_map: remap.IdMap,
    not_written: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Compare every evidence report of a snapshot with the same report of another company.

    Args:
        snapshot_report: The snapshot's report by name (``RealmLake.report`` bound to it).
        run_report: Runs a report in the restored company (``QBOClient.report``).
        id_map: The restore's id map (accounts' old ids to new).
        not_written: The transactions that post to the books and the plan could not write
            (entity, old_id, amount, date, why): a difference they can explain says so.

    Returns:
        ``{"ok", "not_written", "reports": [per report, see :func:`compare_report`]}``.
    """
    out = []
    for name in REPORTS:
        before = snapshot_report(name)
        period = period_of(before)
        after = None
        if period is not None:
            after = run_report(
                name, start_date=period[0], end_date=period[1], accounting_method="Accrual"
            )
        out.append(compare_report(name, before, after, id_map))
    unwritten = list(not_written or [])
    if unwritten:
        total = sum(abs(_amount(t.get("amount"))) for t in unwritten)
        listed = ", ".join(f"{t['entity']} {t['old_id']} ({t.get('amount')})" for t in unwritten)
        for report in out:
            for difference in report["differences"]:
                difference["why"] += (
                    f"; the plan could not write {len(unwritten)} transaction(s) that post to "
                    f"the books, {total} in all: {listed}"
                )
    return {"ok": all(r["ok"] for r in out), "not_written": unwritten, "reports": out}
