"""The analysts' tables against the sandbox's own figures.

One module fixture backs up the sandbox, reads its ProfitAndLoss report for every month and its
BalanceSheet at every month end (and every live invoice's Balance through the API), simulates
days of bookkeeping and an incident, and does the same again after a second backup. The warehouse
built over both snapshots must give the same figures for each snapshot: the current-state views,
revenue_by_month, ar_by_month and ap_by_month, and the README's example queries return rows.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.models.warehouse import build_warehouse, connect
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Figures:
    """What the sandbox itself said while it was in the state a snapshot captured."""

    snapshot_id: str
    income: dict[date, Decimal] = field(default_factory=dict)
    """Month -> the ProfitAndLoss report's Total Income for that month."""
    net_income: dict[date, Decimal] = field(default_factory=dict)
    ar: dict[date, Decimal] = field(default_factory=dict)
    """Month -> the BalanceSheet's Total Accounts Receivable at the month's end."""
    ap: dict[date, Decimal] = field(default_factory=dict)
    invoice_balances: dict[str, Decimal] = field(default_factory=dict)
    """Invoice id -> Balance, read through the API."""


@dataclass
class Run:
    figures: list[Figures]
    warehouse: Path


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _months(server: SandboxServer, realm_id: str) -> list[date]:
    """Every month from the first transaction's to the last's (today's at least)."""
    assert server.store is not None
    days = [
        str(txn.get("TxnDate") or txn.get("PaymentDate"))
        for e in entities.CATALOGUE
        if e.posts_to_ledger
        for txn in server.store.iter_records(realm_id, e.name)
        if txn.get("TxnDate") or txn.get("PaymentDate")
    ]
    first = date.fromisoformat(min(days)).replace(day=1)
    last = max(date.fromisoformat(max(days)), server.store.now(realm_id).date()).replace(day=1)
    months = [first]
    while months[-1] < last:
        months.append(_month_end(months[-1]) + timedelta(days=1))
    return months


def _summary(rows: list[dict[str, Any]], group: str) -> Decimal | None:
    """The Summary amount of the report section named ``group``, searched depth first."""
    for row in rows:
        if row.get("group") == group:
            return Decimal(row["Summary"]["ColData"][1]["value"] or "0")
        found = _summary(row.get("Rows", {}).get("Row", []), group)
        if found is not None:
            return found
    return None


def _figures(client: QBOClient, server: SandboxServer, realm_id: str, sid: str) -> Figures:
    figures = Figures(sid)
    for month in _months(server, realm_id):
        end = _month_end(month).isoformat()
        pnl = client.report("ProfitAndLoss", start_date=month.isoformat(), end_date=end)["Rows"]
        figures.income[month] = _summary(pnl["Row"], "Income")
        figures.net_income[month] = _summary(pnl["Row"], "NetIncome")
        sheet = client.report("BalanceSheet", end_date=end)["Rows"]["Row"]
        figures.ar[month] = _summary(sheet, "AR")
        figures.ap[month] = _summary(sheet, "AP")
    start = 1
    while True:
        page = client.query(f"select * from Invoice startposition {start} maxresults 1000")
        invoices = page.get("Invoice", [])
        figures.invoice_balances |= {i["Id"]: Decimal(str(i["Balance"])) for i in invoices}
        if len(invoices) < 1000:
            break
        start += 1000
    return figures


@pytest.fixture(scope="module")
def run(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("models-analyst")
    state = root / "sandbox.sqlite3"
    shutil.copyfile(sandbox_template, state)
    server = SandboxServer(state, realms=1)
    server.start()
    try:
        settings = Settings.from_env(
            {"QBO_DATA_DIR": str(root / "data"), "QBO_ENVIRONMENT": "embedded"}
        )
        realm_id = login_embedded(settings, server.base_url, realm_hint=server.realm_ids[0])[0]
        with open_client(settings, realm_id, api_base=server.base_url) as client:
            realm = Lake(settings.lake_url).realm(realm_id)
            first = run_backup(client, realm, mode="full").snapshot.snapshot_id
            before = _figures(client, server, realm_id, first)
            server.simulate(5, realm_id=realm_id, changes_per_day=15)
            assert server.store is not None
            dates = sorted(p["TxnDate"] for p in server.store.iter_records(realm_id, "Invoice"))
            server.incident(
                "bulk_delete_invoices", realm_id=realm_id, start=dates[5], end=dates[12]
            )
            second = run_backup(client, realm, mode="incremental").snapshot.snapshot_id
            after = _figures(client, server, realm_id, second)
    finally:
        server.stop()
    warehouse = root / "warehouse.duckdb"
    build_warehouse(settings.lake_url, warehouse)
    yield Run([before, after], warehouse)


def _by_month(rows: list[tuple[Any, ...]]) -> dict[date, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in rows}


def test_models_analyst_the_two_snapshots_differ(run: Run) -> None:
    before, after = run.figures
    assert before.invoice_balances != after.invoice_balances
    assert before.income != after.income or before.ar != after.ar


def test_models_analyst_invoices_view_sums_the_live_balances(run: Run) -> None:
    latest = run.figures[-1]
    with connect(run.warehouse, read_only=True) as con:
        rows = dict(con.execute("select invoice_id, balance from marts.invoices").fetchall())
        total, versions = con.execute(
            "select sum(balance), (select sum(balance) from staging.stg_invoice_versions) "
            "from marts.invoices"
        ).fetchone()
    assert rows == latest.invoice_balances
    assert total == sum(latest.invoice_balances.values()) > 0
    assert versions > total  # the per-version history counts edited invoices again


def test_models_analyst_revenue_by_month_equals_the_profit_and_loss(run: Run) -> None:
    with connect(run.warehouse, read_only=True) as con:
        for figures in run.figures:
            got = _by_month(
                con.execute(
                    "select month, revenue, net_income, snapshot_id from revenue_by_month(?)",
                    [figures.snapshot_id],
                ).fetchall()
            )
            assert {r[2] for r in got.values()} == {figures.snapshot_id}
            assert set(got) == set(figures.income)
            assert {m: r[0] for m, r in got.items()} == figures.income
            assert {m: r[1] for m, r in got.items()} == figures.net_income
            assert sum(figures.income.values()) > 0
        latest = con.execute("select month, revenue from marts.revenue_by_month").fetchall()
    assert dict(latest) == run.figures[-1].income


def test_models_analyst_ar_and_ap_by_month_equal_the_balance_sheet(run: Run) -> None:
    with connect(run.warehouse, read_only=True) as con:
        for figures in run.figures:
            ar = dict(
                con.execute(
                    "select month, ar_balance from ar_by_month(?)", [figures.snapshot_id]
                ).fetchall()
            )
            ap = dict(
                con.execute(
                    "select month, ap_balance from ap_by_month(?)", [figures.snapshot_id]
                ).fetchall()
            )
            assert ar == figures.ar
            assert ap == figures.ap
            assert max(ar.values()) > 0 and max(ap.values()) > 0
        latest_ar = dict(con.execute("select month, ar_balance from marts.ar_by_month").fetchall())
        latest_ap = dict(con.execute("select month, ap_balance from marts.ap_by_month").fetchall())
        flows = con.execute(
            "select sum(invoiced) - sum(received), max_by(ar_balance, month) from marts.ar_by_month"
        ).fetchone()
    assert latest_ar == run.figures[-1].ar
    assert latest_ap == run.figures[-1].ap
    assert flows[0] == flows[1]


def _readme_queries(path: Path, start: str, end: str) -> list[str]:
    text = path.read_text()
    section = text[text.index(start) : text.index(end, text.index(start))]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    statements = [s.strip() for block in blocks for s in block.split(";")]
    return [s for s in statements if re.sub(r"--[^\n]*", "", s).strip()]


@pytest.mark.parametrize(
    ("readme", "start", "end"),
    [
        ("README.md", "### The SQL models", "### Exports"),
        ("qbo_pipeline/models/README.md", "## Tables analysts can trust", "## Table macros"),
    ],
)
def test_models_analyst_readme_queries_return_rows(
    run: Run, readme: str, start: str, end: str
) -> None:
    queries = _readme_queries(REPO / readme, start, end)
    assert len(queries) >= 3
    with connect(run.warehouse, read_only=True) as con:
        for query in queries:
            assert con.execute(query).fetchall(), query
