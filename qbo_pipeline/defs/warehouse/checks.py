"""Checks of the books in the warehouse: the trial balance balances and matches QBO's report.

- ``books_balance`` on ``marts.trial_balance``: in every company's latest snapshot, the debits
  computed from the transactions equal the credits.
- ``matches_trial_balance_report`` on ``marts.trial_balance_check``: in every company's latest
  snapshot, each account's computed balance equals the TrialBalance report QBO returned when the
  snapshot was taken (kept raw in the lake as evidence), within half a cent.

Both read the published warehouse; the verdicts come from :func:`unbalanced_books` and
:func:`report_mismatches`, testable on any DuckDB file holding those two tables.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from qbo_pipeline.defs.resources import LakeResource
from qbo_pipeline.defs.warehouse.assets import model_asset_key
from qbo_pipeline.models.warehouse import connect

TRIAL_BALANCE = "marts.trial_balance"
TRIAL_BALANCE_CHECK = "marts.trial_balance_check"
TOLERANCE = 0.005
MAX_LISTED = 20
MAX_IN_DESCRIPTION = 10

_LATEST = """
    latest as (
        select realm_id, max(snapshot_id) as snapshot_id from {table} group by realm_id
    )
"""


def unbalanced_books(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Companies whose latest snapshot's computed debits and credits differ.

    Returns:
        One dict per unbalanced company: realm_id, snapshot_id, debit, credit.
    """
    rows = con.execute(
        f"""
        with {_LATEST.format(table=TRIAL_BALANCE)}
        select t.realm_id, t.snapshot_id, sum(t.debit) as debit, sum(t.credit) as credit
        from {TRIAL_BALANCE} as t
        inner join latest using (realm_id, snapshot_id)
        group by all
        having abs(sum(t.debit) - sum(t.credit)) >= {TOLERANCE}
        order by all
        """
    ).fetchall()
    return [
        {"realm_id": r, "snapshot_id": s, "debit": float(d), "credit": float(c)}
        for r, s, d, c in rows
    ]


def report_mismatches(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Accounts whose computed balance differs from QBO's report, latest snapshots only."""
    rows = con.execute(
        f"""
        with {_LATEST.format(table=TRIAL_BALANCE_CHECK)}
        select c.realm_id, c.snapshot_id, c.account_id, c.account_name, c.computed_balance,
               c.reported_balance, c.difference
        from {TRIAL_BALANCE_CHECK} as c
        inner join latest using (realm_id, snapshot_id)
        where not c.is_matching
        order by abs(c.difference) desc, c.realm_id, c.account_id
        """
    ).fetchall()
    names = ("realm_id", "snapshot_id", "account_id", "account_name")
    return [
        dict(zip(names, row[:4], strict=True))
        | {"computed": float(row[4]), "reported": float(row[5]), "difference": float(row[6])}
        for row in rows
    ]


def _open(warehouse: Path) -> duckdb.DuckDBPyConnection:
    return connect(warehouse, read_only=True)


def _table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("none")
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows[:MAX_LISTED]]
    return dg.MetadataValue.md("\n".join(lines))


def books_balance_result(warehouse: Path) -> dg.AssetCheckResult:
    """The ``books_balance`` verdict for a warehouse file."""
    con = _open(warehouse)
    try:
        bad = unbalanced_books(con)
        companies = con.execute(f"select count(distinct realm_id) from {TRIAL_BALANCE}").fetchone()
    finally:
        con.close()
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"companies": int(companies[0]) if companies else 0, "unbalanced": _table(bad)},
        description=(
            "; ".join(
                f"company {b['realm_id']} snapshot {b['snapshot_id']}: debits {b['debit']:.2f} "
                f"!= credits {b['credit']:.2f}"
                for b in bad[:MAX_LISTED]
            )
            or None
        ),
    )


def report_match_result(warehouse: Path) -> dg.AssetCheckResult:
    """The ``matches_trial_balance_report`` verdict for a warehouse file."""
    con = _open(warehouse)
    try:
        bad = report_mismatches(con)
        compared = con.execute(f"select count(*) from {TRIAL_BALANCE_CHECK}").fetchone()
    finally:
        con.close()
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"rows_compared": int(compared[0]) if compared else 0, "mismatches": _table(bad)},
        description=mismatch_description(bad),
    )


def mismatch_description(bad: list[dict[str, Any]]) -> str | None:
    """Name the accounts that differ from QBO's report and by how much, largest first.

    Returns:
        None when nothing differs; otherwise one line per company, listing up to
        :data:`MAX_IN_DESCRIPTION` accounts as ``Name (id): computed X, reported Y, off by Z``.
    """
    if not bad:
        return None
    by_company: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in bad:
        by_company.setdefault((row["realm_id"], row["snapshot_id"]), []).append(row)
    parts = []
    for (realm_id, snapshot_id), rows in by_company.items():
        listed = "; ".join(
            f"{r['account_name'] or 'account'} ({r['account_id']}): computed "
            f"{r['computed']:.2f}, reported {r['reported']:.2f}, off by {r['difference']:+.2f}"
            for r in rows[:MAX_IN_DESCRIPTION]
        )
        more = len(rows) - MAX_IN_DESCRIPTION
        parts.append(
            f"company {realm_id} snapshot {snapshot_id}: {len(rows)} accounts differ from "
            f"QBO's TrialBalance report: {listed}"
            + (f"; and {more} more (see the mismatches table)" if more > 0 else "")
        )
    return "\n".join(parts)


@dg.asset_check(
    asset=model_asset_key(TRIAL_BALANCE),
    name="books_balance",
    description="Debits equal credits in every company's latest snapshot.",
)
def books_balance(lake: LakeResource) -> dg.AssetCheckResult:
    """Fail naming every company whose books do not balance."""
    return books_balance_result(lake.warehouse)


@dg.asset_check(
    asset=model_asset_key(TRIAL_BALANCE_CHECK),
    name="matches_trial_balance_report",
    description=(
        "Every account's computed balance equals QBO's TrialBalance report kept with the "
        "company's latest snapshot (within half a cent)."
    ),
)
def matches_trial_balance_report(lake: LakeResource) -> dg.AssetCheckResult:
    """Fail naming the accounts that differ from QBO's report."""
    return report_match_result(lake.warehouse)
